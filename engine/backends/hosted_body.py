"""A chat request's JSON body, encoded without ever joining the corpus into one string.

The message that carries the corpus is some 4 MB of text for a million tokens. Joined into one
Python string it takes the width of its widest character: a single character outside the Basic
Multilingual Plane (a mathematical letter in a PDF) makes every character 4 bytes, 16 MB. The
``openai`` client then JSON-encodes the messages, which makes an escaped copy of that string and
then the whole document as one more string before the UTF-8 bytes: some 50 MB at once, for a
request whose body is 4 MB. Here the corpus message's content stays the plan's blocks (each a
string of its own width, ``LeadContent``) and is encoded block by block straight into the UTF-8
body. The body is the same JSON the client would write (``ensure_ascii=False``, compact
separators, ``extra_body`` merged at the top level); JSON escapes character by character, so
escaping the blocks one by one gives exactly the bytes of escaping their join.
"""

from __future__ import annotations

import inspect
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LeadContent:
    """The content of the message that carries the corpus: ``blocks`` then ``tail``, unjoined."""

    blocks: tuple[str, ...]
    tail: str = ""

    def pieces(self) -> Iterator[str]:
        yield from self.blocks
        if self.tail:
            yield self.tail

    def text(self) -> str:
        """The content as one string (what the message says; joins a copy)."""
        return "".join(self.pieces())

    def __len__(self) -> int:
        return sum(len(b) for b in self.blocks) + len(self.tail)


def _dumps(value: object) -> bytes:
    """UTF-8 JSON as ``openai``'s client writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _string(content: LeadContent) -> Iterator[bytes]:
    """``content`` as a UTF-8 JSON string, quotes included, one piece per block."""
    yield b'"'
    for piece in content.pieces():
        yield _dumps(piece)[1:-1]
    yield b'"'


def body_of(params: Mapping[str, Any]) -> bytes:
    """The request body for ``params`` (keyword arguments of ``chat.completions.create``).

    ``extra_body`` is merged at the top level, as the client does; a message whose content is
    a ``LeadContent`` is written as the string it stands for.
    """
    body = {k: v for k, v in params.items() if k != "extra_body"}
    body.update(params.get("extra_body") or {})
    leads: dict[str, LeadContent] = {}
    messages = []
    for message in body.get("messages", ()):
        content = message.get("content")
        if isinstance(content, LeadContent):
            marker = f"longdesk-lead-{secrets.token_hex(16)}"
            leads[marker] = content
            messages.append({**message, "content": marker})
        else:
            messages.append(message)
    if "messages" in body:
        body["messages"] = messages
    encoded = _dumps(body)
    if not leads:
        return encoded
    parts: list[bytes] = []
    for marker, content in leads.items():
        quoted = _dumps(marker)
        head, sep, encoded = encoded.partition(quoted)
        if not sep or quoted in encoded:  # a marker must stand exactly once (it is random)
            raise ValueError("request body marker not found exactly once")
        parts.append(head)
        parts.extend(_string(content))
    parts.append(encoded)
    return b"".join(parts)


def joined(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every ``LeadContent`` joined into its string (what the client takes)."""
    messages = [
        {**m, "content": m["content"].text()} if isinstance(m.get("content"), LeadContent) else m
        for m in params.get("messages", ())
    ]
    return {**params, "messages": messages} if "messages" in params else dict(params)


def post_chat(client: Any, params: Mapping[str, Any]) -> Any:
    """Send a streaming chat request with the body ``body_of(params)``; the client's stream.

    The response is read exactly as ``client.chat.completions.create(stream=True)`` reads it.
    A client too old to take a raw body (``post(content=...)``) gets the joined messages.
    """
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    if "content" not in inspect.signature(client.post).parameters:
        return client.chat.completions.create(**joined(params))
    return client.post(
        "/chat/completions",
        content=body_of(params),
        cast_to=ChatCompletion,
        stream=True,
        stream_cls=openai.Stream[ChatCompletionChunk],
    )
