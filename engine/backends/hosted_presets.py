"""Hosted endpoints Longdesk knows how to talk to: DeepSeek's API and any OpenAI-compatible server.

A preset says which request parameters an endpoint understands. Longdesk never sends a
parameter that the preset does not list as supported: servers such as vLLM, SGLang and
llama.cpp's answer 400/422 to fields they do not know, or silently ignore them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from longdesk.engine.backends.base import ThinkingMode

DEEPSEEK_FLASH_NOTE = (
    "The hosted deepseek-flash is DeepSeek-V4.1-Flash, a newer model than the local "
    "DeepSeek-V4-Flash: answers and token counts can differ between the two."
)


@dataclass(frozen=True, slots=True)
class Preset:
    """What an endpoint is and which parameters it understands.

    Attributes:
        key: the preset's id (``deepseek``, ``openai-compatible``).
        label: name shown to users.
        base_url: default base URL ('' when the user must give one).
        default_model: model used when none is chosen ('' when the user must give one).
        models: models known without asking the server.
        context_window: tokens per request, by model ('' key: any model).
        max_output: largest ``max_tokens`` the endpoint accepts.
        thinking: DeepSeek's ``thinking`` / ``reasoning_effort`` parameters are understood.
        user_id: DeepSeek's ``user_id`` (KV-cache isolation) is understood.
        seed: the ``seed`` parameter is understood.
        stream_usage: ``stream_options.include_usage`` is understood.
        key_required: requests without an API key are refused by the endpoint.
        key_env: environment variables that may hold the key, in order.
        priced: the bundled price table covers its models.
        exact_counts: the offline DeepSeek-V4 vocabulary counts its models exactly.
        notes: shown in the model bar and the consent summary.
    """

    key: str
    label: str
    base_url: str
    default_model: str
    models: tuple[str, ...] = ()
    context_window: dict[str, int] = field(default_factory=dict)
    max_output: int = 0
    thinking: bool = False
    user_id: bool = False
    seed: bool = False
    stream_usage: bool = True
    key_required: bool = False
    key_env: tuple[str, ...] = ("LONGDESK_API_KEY",)
    priced: bool = False
    exact_counts: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    def window_for(self, model: str) -> int:
        return self.context_window.get(model, self.context_window.get("", 0))

    def note_for(self, model: str) -> str:
        return self.notes.get(model, "")


DEEPSEEK = Preset(
    key="deepseek",
    label="DeepSeek API",
    base_url="https://api.deepseek.com",
    default_model="deepseek-flash",
    models=("deepseek-flash", "deepseek-v4-pro"),
    context_window={"": 1_048_576},
    max_output=393_216,
    thinking=True,
    user_id=True,
    seed=False,
    stream_usage=True,
    key_required=True,
    key_env=("DEEPSEEK_API_KEY", "LONGDESK_API_KEY"),
    priced=True,
    exact_counts=True,
    notes={"deepseek-flash": DEEPSEEK_FLASH_NOTE, "deepseek-v4-flash": DEEPSEEK_FLASH_NOTE},
)

OPENAI_COMPATIBLE = Preset(
    key="openai-compatible",
    label="OpenAI-compatible server (vLLM, SGLang, llama.cpp, ...)",
    base_url="",
    default_model="",
    seed=True,
    stream_usage=True,
)

PRESETS: dict[str, Preset] = {p.key: p for p in (DEEPSEEK, OPENAI_COMPATIBLE)}


@dataclass(frozen=True, slots=True)
class ThinkingBudget:
    """Output tokens kept for reasoning, by thinking mode (part of the budget and of the estimate)."""

    high: int = 16_384
    max: int = 65_536

    def reserve(self, mode: ThinkingMode) -> int:
        if mode is ThinkingMode.HIGH:
            return self.high
        if mode is ThinkingMode.MAX:
            return self.max
        return 0


@dataclass(frozen=True, slots=True)
class HostedConfig:
    """Everything needed to talk to one endpoint. The key is never shown in ``repr``.

    Attributes:
        preset: what the endpoint understands.
        base_url: where requests go (``…/v1`` for most servers).
        model: the model name the server knows.
        api_key: '' when the endpoint needs none.
        context_window: tokens per request; 0 takes the preset's or what ``/models`` says.
        user_id: constant per user (``[A-Za-z0-9_-]``), so the provider's cache is shared
            between this user's requests and nobody else's.
        prime_cache: ``read`` sends one request that ends exactly at the corpus, so that the
            provider persists the corpus as a cache unit before the first question.
        connect_timeout_s: connecting must succeed within this.
        read_timeout_s: silence allowed between two pieces of a response (keep-alives count).
            Long because a server reading a million-token corpus may say nothing for minutes
            (vLLM sends no keep-alives; DeepSeek closes requests after 30 minutes itself);
            a cancel ends the wait at any time.
        tokenizer_gguf: the GGUF that the server runs, for exact counts on other servers.
        thinking_budget: tokens reserved for reasoning by mode.
        thinking: the session's thinking mode, used by the priming request (switching modes
            within a session may change how the provider renders the prefix, and so miss
            the cache).
    """

    preset: Preset
    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    context_window: int = 0
    user_id: str = "longdesk-user"
    prime_cache: bool = False
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 1800.0
    tokenizer_gguf: Path | None = None
    thinking_budget: ThinkingBudget = field(default_factory=ThinkingBudget)
    thinking: ThinkingMode = ThinkingMode.OFF

    @property
    def host(self) -> str:
        parts = urlsplit(self.base_url)
        return parts.netloc or self.base_url

    @property
    def endpoint(self) -> str:
        """The base URL without a trailing slash: what consent is given for."""
        return self.base_url.rstrip("/")


def make_config(
    preset_key: str,
    *,
    base_url: str = "",
    model: str = "",
    api_key: str = "",
    **extra: object,
) -> HostedConfig:
    """A config from a preset, with the user's base URL and model where given.

    Raises:
        ValueError: unknown preset, or no base URL / model where the preset has none.
    """
    preset = PRESETS.get(preset_key)
    if preset is None:
        raise ValueError(f"unknown preset {preset_key!r}; choose one of {', '.join(PRESETS)}")
    url = base_url or preset.base_url
    if not url:
        raise ValueError(f"the {preset.label} preset needs a base URL (e.g. http://127.0.0.1:8000/v1)")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    return HostedConfig(preset, url, model or preset.default_model, api_key, **extra)  # type: ignore[arg-type]


def request_fingerprint(endpoint: str, model: str, system_text: str | Iterable[str]) -> str:
    """What a consent covers: this endpoint, this model, exactly this prefix text.

    ``system_text`` may come in pieces (a plan's ``system_parts``): the digest is that of
    their join, without making it.
    """
    digest = hashlib.sha256()
    for part in (endpoint.rstrip("/"), model):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    for piece in (system_text,) if isinstance(system_text, str) else system_text:
        digest.update(piece.encode("utf-8"))
    digest.update(b"\x00")
    return digest.hexdigest()
