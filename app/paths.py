"""Per-user folders (platformdirs), overridable with LONGDESK_HOME for tests and portable use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True, slots=True)
class Paths:
    config: Path  # settings.json
    data: Path  # sessions
    cache: Path  # token-count cache, parse cache
    models: Path  # the assembled default model and downloaded models
    snapshots: Path  # saved model states (large)
    logs: Path

    @staticmethod
    def default() -> Paths:
        home = os.environ.get("LONGDESK_HOME")
        if home:
            root = Path(home).expanduser()
            return Paths(
                root / "config",
                root / "data",
                root / "cache",
                root / "models",
                root / "snapshots",
                root / "logs",
            )
        cache = Path(platformdirs.user_cache_dir("longdesk", appauthor=False))
        return Paths(
            config=Path(platformdirs.user_config_dir("longdesk", appauthor=False)),
            data=Path(platformdirs.user_data_dir("longdesk", appauthor=False)),
            cache=cache,
            models=cache / "models",
            snapshots=cache / "snapshots",
            logs=Path(platformdirs.user_log_dir("longdesk", appauthor=False)),
        )
