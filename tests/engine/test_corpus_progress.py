"""Reading progress inside one big file: per page of a PDF, per member of an archive, in the CLI.

The time to the CLI's first line (`longdesk inspect BIG.pdf`) is measured by
``bench/cli_first_progress.py``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from longdesk.app.cli import commands as cli
from longdesk.engine.corpus import load
from longdesk.engine.corpus.load import LoadProgress, load_sources

BIG_PAGES = 1_100


def make_big_pdf(path: Path, pages: int = BIG_PAGES, lines: int = 1) -> Path:
    """A generated book of ``pages`` small pages (a few seconds to write)."""
    import pymupdf

    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=300, height=120 + 10 * lines)
        text = "\n".join(f"Page {i + 1}, line {n + 1}: the tide comes in and goes out." for n in range(lines))
        page.insert_text((20, 30), text, fontsize=8)
    doc.save(path)
    doc.close()
    return path


@pytest.fixture(scope="module")
def big_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_big_pdf(tmp_path_factory.mktemp("big") / "harbour-book.pdf")


def test_one_big_pdf_reports_pages_rate_and_eta_before_it_ends(big_pdf: Path) -> None:
    events: list[LoadProgress] = []
    corpus = load_sources([big_pdf], progress=events.append)
    assert len(corpus.documents[0].segments) == BIG_PAGES
    during = [e for e in events if e.files_done == 0 and e.doc_pages[0] > 0]
    assert during, "no progress was reported while the book was being read"
    first = during[0]
    # Before the only file is finished, the reader already knows how far it is and how fast.
    assert first.current == "harbour-book.pdf"
    assert first.doc_pages[1] == BIG_PAGES
    assert 0 < first.bytes_done < first.bytes_total
    assert first.rate > 0
    assert first.eta_s is not None
    assert "harbour-book.pdf: page" in first.describe()
    assert f"of {BIG_PAGES:,}" in first.describe()
    assert [e.bytes_done for e in events] == sorted(e.bytes_done for e in events)
    assert events[-1].bytes_done == events[-1].bytes_total


def test_archive_progress_moves_member_by_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "notes.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(40):
            zf.writestr(f"notes/{i:02d}.txt", "".join(f"note {i} line {n} {i * n}\n" for n in range(400)))
    events: list[LoadProgress] = []
    clock = [1000.0]  # the loader's clock only: each report takes longer than the 0.1 s throttle
    monkeypatch.setattr(load, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    def slow_listener(p: LoadProgress) -> None:
        events.append(p)
        clock[0] += 0.12

    load_sources([archive], progress=slow_listener)
    inside = [e for e in events if e.files_done == 0 and "!" in e.current]
    assert inside, "no progress inside the archive"
    assert inside[0].current.startswith("notes.zip!notes/")
    # The bytes advance with the members read, before the archive (the one file) is done.
    assert len({e.bytes_done for e in inside}) > 1
    assert all(0 <= e.bytes_done <= e.bytes_total for e in inside)


def test_cli_line_shows_the_page_a_rate_and_an_eta(big_pdf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events of a real read, shown by the CLI's printer as they would be after 0.6 s."""
    events: list[LoadProgress] = []
    load_sources([big_pdf], progress=events.append)
    first_during = next(e for e in events if e.files_done == 0 and e.doc_pages[0] > 0)
    clock = [100.0]
    monkeypatch.setattr(cli.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    show = cli._load_progress(out)
    clock[0] += 0.4
    show(first_during)
    assert out.getvalue() == "", "a load under half a second prints nothing"
    clock[0] += 0.2
    show(first_during)
    line = out.getvalue().strip()
    assert line.startswith(
        f"reading: harbour-book.pdf p. {first_during.doc_pages[0]:,}/{BIG_PAGES:,}, 0/1 files"
    )
    assert "pages/s" in line
    assert "ETA ?" not in line
    assert " MB/s" in line
