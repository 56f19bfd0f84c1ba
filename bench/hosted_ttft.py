"""Time to first token through the hosted backend vs a raw HTTP streaming request, same server.

Starts llama-cpp-python's OpenAI-compatible server with the default model on 127.0.0.1 (or,
with ``--server emulator``, the DeepSeek emulator of the tests), then alternates the two
clients on the same request: the backend (messages, parameters, the ``openai`` client, SSE
parsing, events) and a bare ``http.client`` POST that stops at the first ``data:`` line with
text. The server's prompt cache is warm for both after the first round. Prints medians and
the backend's overhead (target: at most 50 ms).

    .venv/bin/python bench/hosted_ttft.py [--runs 7] [--server llama|emulator]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from longdesk.engine.backends.base import AnswerDelta, AskOptions, Event, ThinkingDelta  # noqa: E402
from longdesk.engine.backends.hosted import HostedBackend, build_messages  # noqa: E402
from longdesk.engine.backends.hosted_presets import make_config  # noqa: E402
from longdesk.engine.context.pack import pack  # noqa: E402
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment  # noqa: E402

QUESTION = "What colour is the kettle?"


@contextmanager
def llama_server(model: Path, port: int = 18765) -> Iterator[str]:
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "1024", "--chat_format", "gemma",
        "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def raw_ttft(base_url: str, body: dict[str, object], headers: dict[str, str]) -> float:
    """Seconds from sending the request to the first SSE data line that carries text."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    conn.request(
        "POST",
        parts.path.rstrip("/") + "/chat/completions",
        data,
        {**headers, "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    try:
        while True:
            line = resp.readline()
            if not line:
                raise RuntimeError("stream ended before any text")
            if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                continue
            delta = json.loads(line[5:])["choices"][0]["delta"] if json.loads(line[5:])["choices"] else {}
            if delta.get("content") or delta.get("reasoning_content"):
                return time.perf_counter() - t0
    finally:
        conn.close()


def backend_ttft(backend: HostedBackend, reading: object) -> float:
    first: list[float] = []
    t0 = time.perf_counter()

    def on_event(ev: Event) -> None:
        if isinstance(ev, AnswerDelta | ThinkingDelta) and not first:
            first.append(time.perf_counter() - t0)

    backend.ask(reading, (), QUESTION, AskOptions(max_output_tokens=4), on_event, lambda: bool(first))  # type: ignore[arg-type]
    return first[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--server", choices=("llama", "emulator"), default="llama")
    parser.add_argument("--settle", type=float, default=0.5, help="idle seconds before each request")
    ns = parser.parse_args()
    doc = Document(
        "D1", "kitchen.txt", "/k", DocumentKind.TEXT, "0",
        (Segment(Anchor(AnchorKind.LINES, 1, 2), "The kettle is blue.\nThe oven is broken.\n"),),
    )  # fmt: skip
    if ns.server == "llama":
        import platformdirs

        from longdesk.engine.models.default_model import ensure_default_model

        model = ensure_default_model(
            Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models"
        )
        ctx = llama_server(model)
        key = ""
    else:
        from tests.hosted.deepseek_emulator import running

        ctx = running()  # type: ignore[assignment]
    with ctx as started:
        if ns.server == "llama":
            url = str(started)
            config = make_config("openai-compatible", base_url=url, model=str(model), tokenizer_gguf=model)
        else:
            url, emu = started  # type: ignore[misc]
            key = emu.api_key
            config = make_config("deepseek", base_url=url, api_key=key)
        backend = HostedBackend(config)
        plan = pack(Corpus.of([doc]), backend.count_tokens, 1024)
        backend.permit(backend.fingerprint(plan))
        reading = backend.read(plan, lambda _e: None, lambda: False)
        body = backend.request_params(build_messages(plan, (), QUESTION), AskOptions(max_output_tokens=4))
        body.update(body.pop("extra_body", {}))
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        raw_ttft(url, body, headers)  # warm-up: model, prompt cache, imports, connections
        backend_ttft(backend, reading)
        raw, ours = [], []
        # Alternate which goes first, and let the server finish the cancelled request before
        # the next one (it notices a closed connection only at its next token).
        for i in range(ns.runs):
            pair = {}
            for name in ("ours", "raw") if i % 2 else ("raw", "ours"):
                time.sleep(ns.settle)
                pair[name] = (
                    backend_ttft(backend, reading) if name == "ours" else raw_ttft(url, body, headers)
                )
            raw.append(pair["raw"])
            ours.append(pair["ours"])
        backend.close()
    raw_ms, ours_ms = statistics.median(raw) * 1e3, statistics.median(ours) * 1e3
    print(f"server: {ns.server}, runs: {ns.runs} each, interleaved (order alternating)")
    print(f"raw HTTP streaming TTFT   median {raw_ms:8.1f} ms  (min {min(raw) * 1e3:.1f})")
    print(f"hosted backend TTFT       median {ours_ms:8.1f} ms  (min {min(ours) * 1e3:.1f})")
    paired = statistics.median(o - r for o, r in zip(ours, raw, strict=True)) * 1e3
    print(
        f"overhead {ours_ms - raw_ms:+.1f} ms (ratio {ours_ms / raw_ms:.3f}); median of paired differences "
        f"{paired:+.1f} ms; target <= 50 ms"
    )
    return 0 if ours_ms - raw_ms <= 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
