"""Opening a hosted endpoint from the user's choice: preset, base URL, model, key, prices.

Shared by the CLI (``longdesk ask --preset/--base-url``) and the window's hosted switch. The
key comes from the OS keyring or the environment (``app.secrets``) at the moment the backend
is opened, on the thread that will own it; it never travels in a request, a setting or a log.
Opening sends nothing but, for a server of unknown model, one ``GET /models``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from longdesk.app.secrets import find_key
from longdesk.engine.backends.base import BackendError, FailureKind, ThinkingMode
from longdesk.engine.backends.hosted import HostedBackend
from longdesk.engine.backends.hosted_presets import PRESETS, HostedConfig, make_config
from longdesk.engine.backends.hosted_prices import PriceTable, load_price_table

PRICES_FILE = "prices.json"  # the user's edited price table, in the config folder


@dataclass(frozen=True, slots=True)
class HostedSpec:
    """What the user chose for a hosted endpoint (no key: that is looked up when opening).

    Attributes:
        preset: ``deepseek`` or ``openai-compatible``.
        base_url: '' takes the preset's own.
        model: '' takes the preset's default, else the first model the server lists.
        context_window: tokens per request; 0 takes the preset's (or unknown).
        tokenizer_gguf: the GGUF the server runs, for exact counts on other servers.
        thinking: the session's thinking mode.
    """

    preset: str = "deepseek"
    base_url: str = ""
    model: str = ""
    context_window: int = 0
    tokenizer_gguf: Path | None = None
    thinking: ThinkingMode = ThinkingMode.OFF

    @property
    def url(self) -> str:
        preset = PRESETS.get(self.preset)
        return self.base_url or (preset.base_url if preset else "")

    def label(self) -> str:
        """``DeepSeek API at https://api.deepseek.com``: how offers and messages name it."""
        preset = PRESETS.get(self.preset)
        name = preset.label if preset else self.preset
        return f"{name} at {self.url}" if self.url else name


def hosted_config(spec: HostedSpec) -> HostedConfig:
    """The endpoint config with its key from the keyring or the environment.

    Raises:
        BackendError: unknown preset, missing base URL (BAD_INPUT), or no key where one is
            required (AUTH, saying where a key can be kept).
    """
    preset = PRESETS.get(spec.preset)
    if preset is None:
        raise BackendError(
            FailureKind.BAD_INPUT, f"unknown preset {spec.preset!r}; choose one of {', '.join(PRESETS)}"
        )
    base_url = spec.url
    api_key = find_key(base_url, preset.key_env) if base_url else None
    if preset.key_required and not api_key:
        hint = f"; {api_key.warning}" if api_key is not None and api_key.warning else ""
        raise BackendError(
            FailureKind.AUTH,
            f"no API key for {base_url}: store one in the OS keyring or set {preset.key_env[0]}{hint}",
        )
    try:
        return make_config(
            spec.preset,
            base_url=base_url,
            model=spec.model,
            api_key=api_key.value if api_key is not None else "",
            context_window=max(0, spec.context_window),
            tokenizer_gguf=spec.tokenizer_gguf,
            thinking=spec.thinking,
        )
    except ValueError as exc:
        raise BackendError(FailureKind.BAD_INPUT, str(exc)) from exc


def price_table(config_dir: Path) -> tuple[PriceTable, str]:
    """The user's edited price table when there is one, else the bundled one; and a warning."""
    return load_price_table(config_dir / PRICES_FILE)


def with_listed_model(backend: HostedBackend) -> tuple[HostedBackend, str]:
    """The same endpoint with the first model its ``/models`` lists (servers of one model).

    Returns:
        The new backend (the old one is closed) and the model's name.

    Raises:
        BackendError: the server lists nothing, or cannot be asked.
    """
    config = backend.config
    models = backend.list_models()
    backend.close()
    if not models:
        raise BackendError(FailureKind.BAD_INPUT, f"{config.host} lists no models; name one")
    listed = HostedBackend(
        replace(config, model=models[0]), prices=backend.prices, count_cache=backend.count_cache
    )
    return listed, models[0]


def open_hosted(
    spec: HostedSpec, config_dir: Path, cache_dir: Path | None = None
) -> tuple[HostedBackend, str]:
    """A HostedBackend for ``spec``; the second value is a note for the user, or ''.

    Args:
        spec: the endpoint chosen.
        config_dir: where the user's price table is.
        cache_dir: where token counts are cached by content (None: not on disk).

    Raises:
        BackendError: as ``hosted_config``, or the server's model list failed.
    """
    config = hosted_config(spec)
    prices, warning = price_table(config_dir)
    backend = HostedBackend(config, prices=prices if config.preset.priced else None, count_cache=cache_dir)
    if not config.model:
        backend, model = with_listed_model(backend)
        warning = "; ".join(w for w in (warning, f"using model {model} (listed by {config.host})") if w)
    return backend, warning
