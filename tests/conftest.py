"""Shared fixtures: an isolated Longdesk home, the real default model, generated GGUF files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# `longdesk ask` answers in its own process unless a test asks for the resident worker
# (tests/app/test_resident.py), so that no test leaves a model loaded behind it.
os.environ["LONGDESK_KEEP_ALIVE"] = "0"

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``perf`` tests are measurements: they run only when asked for (``-m perf``)."""
    if "perf" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a measurement: run with -m perf")
    for item in items:
        if item.get_closest_marker("perf") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The real embedded default model (Gemma 3 270M Q4_K_M), assembled once per machine."""
    import platformdirs

    from longdesk.engine.models.default_model import ensure_default_model

    models = Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models"
    return ensure_default_model(models)


@pytest.fixture
def longdesk_home(tmp_path: Path, default_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty per-test LONGDESK_HOME whose models folder already holds the default model."""
    home = tmp_path / "home"
    models = home / "models"
    models.mkdir(parents=True)
    (models / default_model.name).symlink_to(default_model)
    stamp = default_model.with_name(default_model.name + ".verified")
    if stamp.exists():
        # The stamp records size and mtime of the real file, which the link shares.
        (models / stamp.name).write_text(stamp.read_text())
    monkeypatch.setenv("LONGDESK_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


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
