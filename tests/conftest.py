"""Shared fixtures: an isolated Longdesk home, the real default model, generated GGUF files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# `longdesk ask` answers in its own process unless a test asks for the resident worker
# (tests/app/test_worker.py), so that no test leaves a model loaded behind it.
os.environ["LONGDESK_KEEP_ALIVE"] = "0"

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The real embedded default model (Gemma 3 270M Q4_K_M), assembled once per machine."""
    import platformdirs

    from engine.models.default_model import ensure_default_model

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
