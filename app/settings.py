"""User settings: a frozen dataclass saved as JSON, atomically.

Keys for hosted endpoints never live here (they are in the OS keyring). A settings file that
cannot be parsed is kept aside as ``settings.json.corrupt-N`` and the defaults are used.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longdesk.engine.atomic import atomic_write_text

SETTINGS_FILE = "settings.json"


@dataclass(frozen=True, slots=True)
class Settings:
    models_dir: str = ""  # extra folder scanned for GGUF files
    default_model: str = ""  # path of the model to use; empty: the embedded default
    prompt_format: str = "auto"  # auto (base or instruction model, from the GGUF), reading, chat
    n_threads: int = 0  # 0: physical cores
    n_gpu_layers: int = 0
    max_output_tokens: int = 512
    snapshot_budget_gb: float = 20.0
    extra_model_paths: tuple[str, ...] = field(default_factory=tuple)
    context_tokens: int = 0  # 0: the model's trained context, capped by the window's default
    hosted_preset: str = "deepseek"  # "deepseek" or "openai-compatible" (engine.backends.hosted_presets)
    hosted_endpoint: str = ""  # base URL of the hosted endpoint (its key is in the keyring); '': none
    hosted_model: str = ""  # '': the preset's default, else the first model the server lists
    hosted_context_tokens: int = 0  # 0: the preset's (DeepSeek: 1M), else unknown
    hosted_tokenizer: str = ""  # the GGUF a private server runs, for exact token counts
    hosted_leave_out_secrets: bool = True  # privacy default: flagged files never leave the machine

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["extra_model_paths"] = list(self.extra_model_paths)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> Settings:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("settings file is not a JSON object")
        known = {f.name: f for f in dataclasses.fields(Settings)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                continue  # a newer version's key: ignore, keep the rest
            default = getattr(Settings(), key)
            if isinstance(default, tuple):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"settings key {key!r} must be a list of strings")
                values[key] = tuple(value)
            elif isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, type(default)):
                if isinstance(default, float) and isinstance(value, int):
                    values[key] = float(value)
                else:
                    raise ValueError(f"settings key {key!r} has the wrong type")
            else:
                values[key] = value
        return Settings(**values)


def load_settings(config_dir: Path) -> tuple[Settings, str]:
    """The saved settings, or defaults; the second value is a warning for the user, or ''."""
    path = config_dir / SETTINGS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Settings(), ""
    except OSError as exc:
        return Settings(), f"could not read {path}: {exc.strerror or exc}; using defaults"
    try:
        return Settings.from_json(data.decode("utf-8")), ""
    except (ValueError, TypeError) as exc:
        n = 1
        while path.with_name(f"{SETTINGS_FILE}.corrupt-{n}").exists():
            n += 1
        aside = path.with_name(f"{SETTINGS_FILE}.corrupt-{n}")
        path.rename(aside)
        return Settings(), f"settings file was unreadable ({exc}); kept aside as {aside.name}, using defaults"


def save_settings(config_dir: Path, settings: Settings) -> None:
    atomic_write_text(config_dir / SETTINGS_FILE, settings.to_json())
