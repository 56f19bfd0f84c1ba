"""API keys of hosted endpoints: read from the OS keyring or an environment variable.

Keys are kept in the keyring under the service ``longdesk`` with the endpoint (scheme, host
and port) as the account name, so one key serves every model of that endpoint. When the
keyring has none (or the platform has no keyring, as on a headless server), the first set
environment variable of the preset's list is used: ``DEEPSEEK_API_KEY`` for DeepSeek, then
``LONGDESK_API_KEY`` for any endpoint.

A key is never written anywhere by Longdesk: not to settings, sessions, logs, usage ledgers
or error messages. ``ApiKey`` hides its value from ``repr`` and ``str``; ask for ``.value``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SERVICE = "longdesk"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key and where it came from (``keyring``, ``env DEEPSEEK_API_KEY``, ``none``)."""

    value: str = field(repr=False)
    origin: str
    warning: str = ""

    def __bool__(self) -> bool:
        return bool(self.value)

    def __str__(self) -> str:
        return f"<API key from {self.origin}>" if self.value else "<no API key>"


def account_for(base_url: str) -> str:
    """The keyring account of an endpoint: ``https://api.deepseek.com`` for any path below it."""
    parts = urlsplit(base_url)
    if not parts.scheme or not parts.netloc:
        return base_url.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _keyring_get(account: str) -> tuple[str, str]:
    """(key or '', warning or '')."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return "", "the keyring package is missing"
    try:
        return keyring.get_password(SERVICE, account) or "", ""
    except KeyringError as exc:
        return "", f"the OS keyring is not available ({type(exc).__name__})"
    except RuntimeError as exc:  # some backends raise plain RuntimeError (locked, no D-Bus)
        return "", f"the OS keyring is not available ({exc})"


def find_key(base_url: str, env_names: Sequence[str]) -> ApiKey:
    """The key for ``base_url``: the keyring first, then the environment variables in order."""
    value, warning = _keyring_get(account_for(base_url))
    if value:
        return ApiKey(value, "keyring")
    for name in env_names:
        env = os.environ.get(name, "").strip()
        if env:
            return ApiKey(env, f"env {name}")
    return ApiKey("", "none", warning)


def store_key(base_url: str, key: str) -> str:
    """Save ``key`` in the OS keyring; returns '' or a message saying why it could not."""
    if not key.strip():
        return "an empty key was not saved"
    try:
        import keyring
        from keyring.errors import KeyringError

        keyring.set_password(SERVICE, account_for(base_url), key.strip())
    except (KeyringError, RuntimeError) as exc:
        return (
            f"the key could not be saved in the OS keyring ({type(exc).__name__}); "
            "set the LONGDESK_API_KEY environment variable instead"
        )
    return ""


def forget_key(base_url: str) -> str:
    """Remove the endpoint's key from the keyring; returns '' or why it could not."""
    try:
        import keyring
        from keyring.errors import KeyringError, PasswordDeleteError

        try:
            keyring.delete_password(SERVICE, account_for(base_url))
        except PasswordDeleteError:
            return ""
    except (KeyringError, RuntimeError) as exc:
        return f"the OS keyring is not available ({type(exc).__name__})"
    return ""


def keyring_problem() -> str:
    """'' when the OS keyring can keep keys; else why not (shown before a key is typed)."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return "the keyring package is missing"
    try:
        backend = keyring.get_keyring()
        keyring.get_password(SERVICE, "longdesk-keyring-check")
    except (KeyringError, RuntimeError) as exc:
        return f"the OS keyring is not available ({type(exc).__name__})"
    if float(getattr(backend, "priority", 1)) <= 0:  # keyring's fail and null backends
        return f"the OS keyring is not available ({type(backend).__name__})"
    return ""
