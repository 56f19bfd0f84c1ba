"""The session store: round trips, rename/delete/recent, damaged and huge files, Markdown export."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from longdesk.app.citations import Check, check_citations, parse_citations
from longdesk.app.sessions import (
    MAX_SESSION_BYTES,
    DocRecord,
    Session,
    SessionError,
    SessionStore,
    TurnRecord,
    export_markdown,
    title_from_question,
)
from longdesk.engine.corpus.model import AnchorKind


def _session(title: str = "Tides") -> Session:
    docs = (
        DocRecord("D1", "book.pdf", "/data/book.pdf", "pdf", "40 pages", 12_000, True, 40),
        DocRecord("D2", "src/app.py", "/data/src/app.py", "code", "120 lines", 900, True, 120),
    )
    turn = TurnRecord(
        "Where are tides explained?",
        'On page 12 [D1, p. 12] "the moon pulls the sea", and the code [D2, lines 40-44]. Bad: [D9, p. 1].',
        output_tokens=30,
        seconds=1.5,
    )
    return replace(Session.new(title, ("/data/book.pdf", "/data/src")), documents=docs, turns=(turn,))


def test_save_list_load_round_trip(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    saved = store.save(_session())
    assert store.load(saved.session_id) == saved
    listing = store.list()
    assert [s.title for s in listing.sessions] == ["Tides"]
    assert listing.problems == ()


def test_rename_delete_and_recent_order(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    a = store.save(_session("first"))
    b = store.save(replace(_session("second"), session_id=a.session_id + "b"))
    store.rename(a.session_id, "  renamed   one ")
    assert [s.title for s in store.recent()] == ["renamed one", "second"]
    with pytest.raises(SessionError, match="needs a name"):
        store.rename(b.session_id, "   ")
    store.delete(b.session_id)
    assert [s.session_id for s in store.list().sessions] == [a.session_id]
    with pytest.raises(SessionError, match="no longer exists"):
        store.load(b.session_id)


def test_damaged_file_is_kept_aside_and_never_empties_the_list(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    good = store.save(_session("good"))
    bad = tmp_path / "broken.longdesk.json"
    bad.write_text('{"session_id": "broken", "turns": [ {"question": ', encoding="utf-8")
    listing = store.list()
    assert [s.title for s in listing.sessions] == ["good"]
    assert len(listing.problems) == 1
    assert "kept aside as broken.longdesk.json.corrupt-1" in listing.problems[0]
    assert (tmp_path / "broken.longdesk.json.corrupt-1").exists()
    # Loading a damaged file directly also keeps it aside with a message.
    path = store.path_for(good.session_id)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(SessionError, match=r"damaged.*kept aside"):
        store.load(good.session_id)
    assert store.list().sessions == ()


def test_huge_session_is_listed_from_its_head_and_refused_on_open(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    saved = store.save(_session("huge"))
    path = store.path_for(saved.session_id)
    data = json.loads(path.read_text())
    data["turns"] = data["turns"] * 1
    text = json.dumps(data)
    # Pad far past the limit with whitespace (valid JSON, cheap to write sparse).
    with path.open("w", encoding="utf-8") as fh:
        fh.write(text[:-1])
        fh.seek(MAX_SESSION_BYTES + 10)
        fh.write(" }")
    listing = store.list()
    assert [s.title for s in listing.sessions] == ["huge"]
    with pytest.raises(SessionError, match="more than"):
        store.load(saved.session_id)
    assert path.exists()


def test_invalid_ids_are_refused(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    with pytest.raises(SessionError):
        store.path_for("../escape")


def test_export_resolves_citations_to_file_and_place() -> None:
    md = export_markdown(_session())
    assert md.startswith("# Tides\n")
    assert "[D1, p. 12] (book.pdf, page 12)" in md
    assert "[D2, lines 40-44] (src/app.py, lines 40-44)" in md
    assert "[D9, p. 1] (unresolved: there is no document D9)" in md
    assert "- **D1** book.pdf (pdf, 40 pages, 12,000 tokens)" in md


def test_title_from_question() -> None:
    assert title_from_question("  what\nis this? ") == "what is this?"
    assert len(title_from_question("x" * 200)) == 58


def test_parse_citations_variants() -> None:
    text = (
        "See [D2, p. 12] and [D5, lines 40-44]; also [D3, ch. 2], [D1, Gen 1:1] "
        "[D4, pp. 3–5; D6, L7]. [D7, ???]"
    )
    cites = parse_citations(text)
    got = [(c.doc_id, c.kind, c.first, c.last, c.label) for c in cites]
    assert got == [
        ("D2", AnchorKind.PAGE, 12, 12, ""),
        ("D5", AnchorKind.LINES, 40, 44, ""),
        ("D3", AnchorKind.CHAPTER, 2, 2, ""),
        ("D1", AnchorKind.VERSE, 0, 0, "Gen 1:1"),
        ("D4", AnchorKind.PAGE, 3, 5, ""),
        ("D6", AnchorKind.LINES, 7, 7, ""),
    ]
    # A bracket whose place cannot be read is prose, not a citation.
    assert all(c.doc_id != "D7" for c in cites)
    assert text[cites[0].start : cites[0].end] == "[D2, p. 12]"


def test_check_marks_missing_places_unresolved_and_others_unverified() -> None:
    refs = _session().refs()
    cites = check_citations('[D1, p. 12] "the moon pulls the sea" and [D1, p. 99]', None, refs)
    assert [c.check for c in cites] == [Check.UNVERIFIED, Check.UNRESOLVED]
    assert cites[0].quote == "the moon pulls the sea"
    assert "has no page 99" in cites[1].reason
