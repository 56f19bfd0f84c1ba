"""Errors of hosted endpoints as values a user understands, and when to try again.

DeepSeek documents its codes (400 format, 401 auth, 402 balance, 422 parameters, 429 rate or
concurrency limit, 500 server error, 503 overloaded); other OpenAI-compatible servers use the
same ones. 429, 500, 502, 503, 504 and connection failures are worth another try after a
pause (exponential backoff with full jitter, honouring ``Retry-After``); the others are not:
repeating them only repeats the refusal, or charges again.

A message never contains the API key: ``scrub`` removes it from anything a server echoes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from longdesk.engine.backends.base import Failed, FailureKind

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before another try.

    Attributes:
        attempts: tries in all (1 = no retry).
        base_s: the first pause's upper bound; doubles each time.
        max_s: no pause is longer than this (nor a server's ``Retry-After``).
    """

    attempts: int = 4
    base_s: float = 0.5
    max_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Pause before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_s)
        ceiling = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)


def scrub(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` (and its tail) blanked."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
        if len(secret) >= 12:
            text = text.replace(secret[-8:], "***")
    return text


def _server_detail(body: Any, fallback: str) -> str:
    message = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail")
        elif isinstance(err, str):
            message = err
        if message is None and isinstance(body.get("detail"), str):
            message = body["detail"]
    text = str(message or fallback or "").strip().replace("\n", " ")
    return text[:300]


def status_failure(status: int, body: Any, fallback: str, *, host: str, model: str, tries: int) -> Failed:
    """The Failed event for an HTTP error status of ``host``."""
    detail = _server_detail(body, fallback)
    said = f" (server said: {detail})" if detail else ""
    after = f" after {tries} tries" if tries > 1 else ""
    low = detail.lower()
    if status == 400 and any(w in low for w in ("context", "too long", "maximum", "exceed")):
        return Failed(FailureKind.CONTEXT, f"the request is longer than the model's context (400){said}")
    if status == 400:
        return Failed(FailureKind.BAD_INPUT, f"{host} refused the request as malformed (400){said}")
    if status == 401:
        return Failed(FailureKind.AUTH, f"{host} refused the API key (401); check the key for this endpoint")
    if status == 402:
        return Failed(
            FailureKind.QUOTA,
            f"the account balance is exhausted (402): top up at {host}, then ask again",
        )
    if status == 403:
        return Failed(FailureKind.AUTH, f"{host} denied access (403){said}")
    if status == 404:
        return Failed(FailureKind.BAD_INPUT, f"{host} does not offer model {model!r} or this API (404){said}")
    if status == 422:
        return Failed(FailureKind.BAD_INPUT, f"{host} rejected a parameter of the request (422){said}")
    if status == 429:
        return Failed(
            FailureKind.QUOTA,
            f"{host} is rate-limiting this account (429: too many requests at once){after}; "
            "wait a minute and ask again",
        )
    if status == 503:
        return Failed(FailureKind.SERVER, f"{host} is overloaded (503){after}; try again later")
    if status >= 500:
        return Failed(FailureKind.SERVER, f"{host} had a server error ({status}){after}{said}")
    return Failed(FailureKind.SERVER, f"{host} answered with HTTP {status}{said}")


def connection_failure(kind: str, reason: str, *, host: str, tries: int, timeout_s: float) -> Failed:
    """The Failed event for a connection problem (``kind``: ``timeout`` or ``connect``)."""
    after = f" after {tries} tries" if tries > 1 else ""
    if kind == "timeout":
        return Failed(FailureKind.NETWORK, f"no answer from {host} within {timeout_s:g} s{after}")
    why = f": {reason}" if reason else ""
    return Failed(FailureKind.NETWORK, f"could not reach {host}{after}{why}")


def cut_failure(host: str, received: bool) -> Failed:
    """The stream ended before the server said it was done."""
    if received:
        return Failed(
            FailureKind.NETWORK,
            f"the connection to {host} dropped in the middle of the answer; the part received is kept, "
            "marked incomplete, and can be continued",
            partial=True,
        )
    return Failed(FailureKind.NETWORK, f"the connection to {host} dropped before an answer came")


def stall_failure(host: str, timeout_s: float, received: bool) -> Failed:
    """The server went silent (not even keep-alives) for longer than the read timeout."""
    kept = "; the part received is kept, marked incomplete, and can be continued" if received else ""
    return Failed(
        FailureKind.NETWORK,
        f"{host} sent nothing for {timeout_s:g} s and the answer was given up{kept}",
        partial=received,
    )


def retry_after_seconds(headers: Any) -> float | None:
    """``Retry-After`` in seconds when the server sent a number of seconds."""
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
