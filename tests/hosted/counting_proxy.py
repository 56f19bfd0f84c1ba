"""An HTTP listener on 127.0.0.1 that counts every request and passes it on to a server.

Put in front of llama-cpp-python's server or the DeepSeek emulator, it shows exactly what
left the client: ``proxy.requests`` lists (method, path) of every request received, whether
or not the server behind it answers. Responses are streamed back chunk by chunk (SSE), and a
server that drops the connection mid-answer is passed on as a dropped connection.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.hosted.deepseek_emulator import serving

_HOP = {"connection", "transfer-encoding", "content-length", "keep-alive"}


@dataclass
class Counter:
    """What reached the listener."""

    upstream: str
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def chats(self) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == "POST" and p.endswith("/chat/completions"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        counter = self.server.counter
        with counter.lock:
            counter.requests.append((self.command, self.path))
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else None
        up = urlsplit(counter.upstream)
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}}
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP:
                    self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                piece = resp.read1(65536)
                if not piece:
                    break
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (http.client.HTTPException, OSError):
            # The server dropped the answer (or the client went away): drop the client too.
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        finally:
            conn.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    counter: Counter


@contextmanager
def counting(upstream: str) -> Iterator[tuple[str, Counter]]:
    """Listen on a free port of 127.0.0.1; yields (base URL with the upstream's path, counter)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.counter = Counter(upstream)
    with serving(server, "counting-proxy") as url:
        yield url + urlsplit(upstream).path, server.counter
