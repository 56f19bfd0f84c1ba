"""The models a ``longdesk batch`` run answers with: the ask-style flags, or ``--compare`` entries.

A ``--compare`` entry is ``default``, a ``FILE.gguf``, an ``http(s)://HOST/v1`` endpoint or a
preset name (``deepseek``), with options after commas: ``thinking=high``, ``label=NAME``, and for
endpoints ``model=NAME``, ``context=TOKENS``, ``tokenizer=FILE.gguf``. Each becomes a ``Target``
whose label names its answers in the results and the report (unique in a run).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from longdesk.app.cli import commands as cli
from longdesk.app.paths import Paths
from longdesk.engine.backends.base import ThinkingMode
from longdesk.engine.backends.hosted_presets import PRESETS


@dataclass(frozen=True, slots=True)
class Target:
    """One model or endpoint a batch runs, as the user named it.

    Attributes:
        label: its name in the results and the report (unique in a run).
        where: ``local`` or ``hosted``.
        model: local: the GGUF file.
        preset, base_url, api_model, api_context, api_tokenizer: hosted: the endpoint.
        thinking: the thinking mode of its answers (a question may ask for another).
    """

    label: str
    where: str
    model: Path | None = None
    preset: str = ""
    base_url: str = ""
    api_model: str = ""
    api_context: int = 0
    api_tokenizer: str = ""
    thinking: ThinkingMode = ThinkingMode.OFF


def _host(url: str) -> str:
    return urlparse(url).netloc or url


def _local_target(path_text: str, thinking: ThinkingMode, label: str) -> Target:
    from longdesk.app.models import resolve_model
    from longdesk.app.settings import load_settings
    from longdesk.engine.models.default_model import DefaultModelError

    app_paths = Paths.default()
    settings, _warning = load_settings(app_paths.config)
    try:
        model = resolve_model(app_paths, settings, path_text or None)
    except DefaultModelError as exc:
        raise cli.CliError(cli.EXIT_MODEL, str(exc)) from exc
    suffix = f" thinking={thinking.value}" if thinking is not ThinkingMode.OFF else ""
    return Target(label or f"{model.stem}{suffix}", "local", model=model, thinking=thinking)


def parse_target(spec: str, ns: argparse.Namespace) -> Target:
    """A ``--compare`` entry: ``default``, ``FILE.gguf``, ``http(s)://HOST/v1`` or ``deepseek``,
    with options after commas: ``thinking=high``, ``label=NAME``, and for endpoints
    ``model=NAME``, ``context=TOKENS``, ``tokenizer=FILE.gguf``.

    Raises:
        cli.CliError: a spec or option that means nothing (exit 2).
    """
    head, *rest = spec.split(",")
    options: dict[str, str] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in ("thinking", "label", "model", "context", "tokenizer"):
            raise cli.CliError(cli.EXIT_BAD_INPUT, f"--compare {spec!r}: unknown option {item!r}")
        options[key.strip()] = value.strip()
    try:
        thinking = ThinkingMode(options.get("thinking", ns.thinking))
        context = int(options.get("context", ns.api_context or 0))
    except ValueError as exc:
        raise cli.CliError(cli.EXIT_BAD_INPUT, f"--compare {spec!r}: {exc}") from exc
    label = options.get("label", "")
    head = head.strip()
    if head in ("default", "local"):
        return _local_target("", thinking, label)
    if head.startswith(("http://", "https://")) or head in PRESETS:
        url = head if head.startswith("http") else ""
        preset = head if head in PRESETS else (ns.preset or "openai-compatible")
        api_model = options.get("model", "")
        suffix = f" thinking={thinking.value}" if thinking is not ThinkingMode.OFF else ""
        name = f"{api_model} @ " if api_model else ""
        return Target(
            label or f"{name}{_host(url or PRESETS[preset].base_url)}{suffix}",
            "hosted",
            preset=preset,
            base_url=url,
            api_model=api_model,
            api_context=context,
            api_tokenizer=options.get("tokenizer", ns.api_tokenizer or ""),
            thinking=thinking,
        )
    if head.endswith(".gguf") or Path(head).is_file():
        return _local_target(head, thinking, label)
    raise cli.CliError(
        cli.EXIT_BAD_INPUT,
        f"--compare {spec!r}: name `default`, a .gguf file, an http(s):// endpoint or a preset "
        f"({', '.join(PRESETS)})",
    )


def targets_from(ns: argparse.Namespace) -> list[Target]:
    """The models of this run: the ``--compare`` list, else the one the ask-style flags name."""
    if ns.compare:
        if len(ns.compare) < 2:
            raise cli.CliError(cli.EXIT_BAD_INPUT, "--compare needs two or more models or endpoints")
        targets = [parse_target(s, ns) for s in ns.compare]
    elif ns.backend == "hosted" or (ns.backend is None and (ns.preset or ns.base_url)):
        from longdesk.app.cli.hosted_ask import preset_key

        preset = preset_key(ns)
        url = ns.base_url or PRESETS[preset].base_url
        mode = ThinkingMode(ns.thinking)
        suffix = f" thinking={mode.value}" if mode is not ThinkingMode.OFF else ""
        name = f"{ns.api_model} @ " if ns.api_model else ""
        targets = [
            Target(
                f"{name}{_host(url)}{suffix}",
                "hosted",
                preset=preset,
                base_url=ns.base_url or "",
                api_model=ns.api_model or "",
                api_context=max(0, ns.api_context),
                api_tokenizer=ns.api_tokenizer or "",
                thinking=mode,
            )
        ]
    else:
        targets = [_local_target(ns.model or "", ThinkingMode(ns.thinking), "")]
    seen: dict[str, int] = {}
    unique = []
    for t in targets:
        seen[t.label] = seen.get(t.label, 0) + 1
        unique.append(
            t if seen[t.label] == 1 else Target(**{**_fields(t), "label": f"{t.label} #{seen[t.label]}"})
        )
    return unique


def _fields(t: Target) -> dict[str, Any]:
    return {name: getattr(t, name) for name in Target.__slots__}
