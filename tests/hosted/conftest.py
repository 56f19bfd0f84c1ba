"""Servers on 127.0.0.1 for the hosted-backend tests: llama-cpp-python's own OpenAI-compatible
server with the default model, and the DeepSeek emulator. Both are always shut down."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.context.pack import pack
from engine.context.plan import ContextPlan
from engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment
from tests.hosted import deepseek_emulator

SERVER_CTX = 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(default_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the default model; yields its ``/v1`` base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(default_model),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(SERVER_CTX), "--chat_format", "gemma", "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama-cpp-python server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def emulator() -> Iterator[tuple[str, deepseek_emulator.Emulator]]:
    with deepseek_emulator.running() as (url, emu):
        yield url, emu


def kitchen_corpus(extra: str = "") -> Corpus:
    text = "The kettle is blue.\nThe oven is broken.\n" + extra
    lines = text.count("\n")
    doc = Document(
        "D1",
        "kitchen.txt",
        "/notes/kitchen.txt",
        DocumentKind.TEXT,
        "0" * 64,
        (Segment(Anchor(AnchorKind.LINES, 1, lines), text),),
    )
    return Corpus.of([doc])


SHORT_INSTRUCTIONS = "Answer from the documents below and cite them as [doc-id, place]."


def plan_for(
    corpus: Corpus, count: object, window: int = 1_000_000, instructions: str | None = None
) -> ContextPlan:
    """The packed plan; ``instructions`` short ones keep CPU prompt reading quick."""
    assert callable(count)
    return pack(corpus, count, window, instructions=instructions)
