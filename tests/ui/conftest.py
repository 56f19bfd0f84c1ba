"""Fixtures for the window tests: a small settings file, tiny real sources, a generated PDF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Small enough that loading and reading stay quick on a busy 2-core machine.
TEST_CONTEXT = 2048
TEST_OUTPUT = 40

PAGE_TEXTS = (
    "Chapter one. The harbour wakes before dawn and the boats go out.",
    "The tide tables say the moon pulls the sea twice a day, so the harbour floods at noon.",
    "At dusk the nets are mended on the quay and the lamps are lit.",
)


@pytest.fixture
def ui_home(longdesk_home: Path) -> Path:
    """LONGDESK_HOME with settings for fast tests: a 2K context and 40-token answers."""
    config = longdesk_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    settings = {"context_tokens": TEST_CONTEXT, "max_output_tokens": TEST_OUTPUT, "n_threads": 2}
    (config / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return longdesk_home


@pytest.fixture
def code_folder(tmp_path: Path) -> Path:
    """A tiny project: one Python module, one README, one binary file and a skipped folder."""
    root = tmp_path / "harbour"
    (root / "src").mkdir(parents=True)
    lines = [f"# line {i}" for i in range(1, 13)]
    lines[4] = "def tide(hour):"
    lines[5] = "    return 'high' if hour == 12 else 'low'"
    (root / "src" / "tides.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "README.md").write_text("# Harbour\n\nThe harbour floods at noon.\n", encoding="utf-8")
    (root / "logo.bin").write_bytes(b"\x00\x01\x02" * 100)
    (root / "node_modules").mkdir()
    (root / "node_modules" / "x.js").write_text("x", encoding="utf-8")
    return root


@pytest.fixture
def pdf_book(tmp_path: Path) -> Path:
    """A real three-page PDF made with pymupdf; page N holds PAGE_TEXTS[N-1]."""
    import pymupdf

    path = tmp_path / "harbour-book.pdf"
    doc = pymupdf.open()
    for text in PAGE_TEXTS:
        page = doc.new_page(width=420, height=595)
        page.insert_textbox(pymupdf.Rect(40, 60, 380, 400), text, fontsize=13)
    doc.save(str(path))
    doc.close()
    return path
