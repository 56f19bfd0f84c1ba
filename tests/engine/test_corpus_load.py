"""Loading: anchored documents, stable ids and order, progress, cancel, the parse cache, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from longdesk.engine.context.pack import pack
from longdesk.engine.corpus.load import LoadOptions, LoadProgress, SourceError, load_sources
from longdesk.engine.corpus.model import AnchorKind, DocumentKind, Problem
from longdesk.engine.isolation import Limits, Sandbox
from tests.engine.corpus_files import make_pdf


def _tree(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("".join(f"x{i} = {i}\n" for i in range(1, 26)))
    (root / "README.md").write_text("# Title\n\nSome prose.\n")
    (root / "notes.txt").write_text("line one\r\nline two\r\n")
    (root / "blob.txt").write_bytes(b"\x00\x01\x02binary" * 10)
    (root / "empty.txt").write_text("")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("module.exports = 1;\n")
    return root


def test_folder_becomes_anchored_documents(tmp_path: Path) -> None:
    corpus = load_sources([_tree(tmp_path / "proj")])
    names = [d.name for d in corpus.documents]
    assert names == ["proj/README.md", "proj/notes.txt", "proj/src/app.py"]
    code = corpus.documents[2]
    assert code.kind is DocumentKind.CODE
    assert code.language == "python"
    assert [(s.anchor.start, s.anchor.end) for s in code.segments] == [(1, 10), (11, 20), (21, 25)]
    assert all(s.anchor.kind is AnchorKind.LINES for s in code.segments)
    assert corpus.documents[1].text == "line one\nline two\n"  # newlines normalised
    reasons = {Path(i.source).name: (i.problem, i.reason) for i in corpus.issues}
    assert reasons["blob.txt"] == (Problem.SKIPPED, "binary content")
    assert reasons["empty.txt"] == (Problem.SKIPPED, "empty")
    assert reasons["node_modules"][1].startswith("excluded by default")


def test_same_sources_pack_to_identical_bytes(tmp_path: Path) -> None:
    root = _tree(tmp_path / "proj")
    a = pack(load_sources([root]), len, 100_000)
    b = pack(load_sources([root]), len, 100_000)
    assert a.system_text == b.system_text
    code_id = a.spans[2].doc_id
    assert f'<doc id="{code_id}" name="proj/src/app.py" kind="code">\n<L1>\nx1 = 1\n' in a.corpus_text
    assert "<L11>\nx11 = 11\n" in a.corpus_text
    for span in a.spans:
        assert a.corpus_text[span.start : span.end].startswith(f'<doc id="{span.doc_id}"')


def test_missing_path_and_empty_folder_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        load_sources([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no readable documents"):
        load_sources([tmp_path / "empty"])


def test_budget_says_by_how_much_it_does_not_fit(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("word " * 1000)
    plan = pack(load_sources([tmp_path / "a.txt"]), len, 2000, reserved_output=100)
    assert not plan.budget.fits
    assert plan.budget.over_by == plan.budget.used - 2000
    assert "does NOT fit" in plan.budget.describe()


def test_ids_are_stable_and_new_documents_are_appended(tmp_path: Path) -> None:
    root = _tree(tmp_path / "proj")
    first = load_sources([root])
    ids = {d.name: d.doc_id for d in first.documents}
    assert all(i.startswith("D") and len(i) == 6 for i in ids.values())
    (root / "src" / "aaa.py").write_text("new = 1\n")  # sorts before app.py
    natural = load_sources([root])
    assert {d.name: d.doc_id for d in natural.documents if d.name in ids} == ids  # ids did not shift
    assert [d.name for d in natural.documents].index("proj/src/aaa.py") == 2
    kept = load_sources([root], previous_order=[d.doc_id for d in first.documents])
    assert [d.name for d in kept.documents][-1] == "proj/src/aaa.py"
    old_text = pack(first, len, 10**6).corpus_text
    new_text = pack(kept, len, 10**6).corpus_text
    assert new_text.startswith(old_text.removesuffix("</corpus>\n"))  # the read prefix stays valid


def _pdfs(root: Path, count: int, pages: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        make_pdf(root / f"book{i}.pdf", [f"Book {i} page {p}. " * 40 for p in range(1, pages + 1)])
    return root


def test_progress_and_cancel_keep_what_was_read(tmp_path: Path) -> None:
    # Enough files that reading them all takes several progress periods even on a fast, idle
    # machine: the cancel must land while some are still unread.
    n_files = 12
    root = _pdfs(tmp_path / "lib", n_files, 40)
    events: list[LoadProgress] = []
    full = load_sources([root], progress=events.append)
    assert events[-1].files_done == events[-1].files_total == n_files
    assert events[-1].pages_done == n_files * 40
    assert events[-1].bytes_done == events[-1].bytes_total > 0
    assert events[-1].rate > 0
    assert events[-1].eta_s == 0
    stop_at: list[int] = []  # files done when the cancel came

    def on_progress(p: LoadProgress) -> None:
        if p.files_done >= 1 and not stop_at:
            stop_at.append(p.files_done)

    corpus = load_sources([root], progress=on_progress, cancelled=lambda: bool(stop_at))
    assert corpus.cancelled
    # Files are read one after another and a cancel is polled inside a parse: at most the file
    # being read when it came may still finish.
    assert stop_at[0] <= len(corpus.documents) <= stop_at[0] + 1
    assert len(corpus.documents) < n_files
    by_name = {d.name: d for d in full.documents}
    for doc in corpus.documents:
        assert doc.segments == by_name[doc.name].segments  # complete documents only
    unread = [i for i in corpus.issues if i.reason == "not read (cancelled)"]
    assert len(unread) + len(corpus.documents) == n_files


def test_unchanged_sources_are_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _pdfs(tmp_path / "lib", 2, 3)
    cache = tmp_path / "cache"
    first = load_sources([root], cache_dir=cache)

    def no_parsing(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(Sandbox, "call", no_parsing)
    monkeypatch.setattr(Sandbox, "_start", no_parsing)  # no parser process even boots
    again = load_sources([root], cache_dir=cache)
    assert again.documents == first.documents
    assert pack(again, len, 10**6).corpus_text == pack(first, len, 10**6).corpus_text


def test_a_changed_file_is_read_and_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _pdfs(tmp_path / "lib", 3, 2)
    cache = tmp_path / "cache"
    load_sources([root], cache_dir=cache)
    make_pdf(root / "book2.pdf", ["Rewritten page one.", "Rewritten page two."])
    parsed: list[object] = []
    real = Sandbox.call

    def recording(self: Sandbox, fn: object, what: object, *args: object, **kwargs: object) -> object:
        parsed.append(what)
        return real(self, fn, what, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Sandbox, "call", recording)
    again = load_sources([root], cache_dir=cache)
    assert parsed == [str(root / "book2.pdf")]  # that file only, the others from the cache
    book2 = next(d for d in again.documents if d.name.endswith("book2.pdf"))
    assert book2.segments[0].text.startswith("Rewritten page one.")


def test_long_documents_read_in_parallel_ranges_match_one_reader(tmp_path: Path) -> None:
    root = _pdfs(tmp_path / "lib", 1, 12)
    one = load_sources([root], options=LoadOptions(parsers=1))
    events: list[LoadProgress] = []
    split = load_sources([root], options=LoadOptions(parsers=2, split_pages_above=5), progress=events.append)
    assert split.documents == one.documents
    assert [s.anchor.start for s in split.documents[0].segments] == list(range(1, 13))
    assert events[-1].pages_done == 12


def test_parser_limits_turn_into_issues_and_the_rest_is_read(tmp_path: Path) -> None:
    root = _pdfs(tmp_path / "lib", 1, 3)
    (root / "notes.md").write_text("# Notes\n")
    slow = load_sources([root], options=LoadOptions(parse_limits=Limits(wall_s=0.001)))
    assert [d.name for d in slow.documents] == ["lib/notes.md"]
    (issue,) = slow.issues
    assert issue.problem is Problem.FAILED
    assert issue.reason == "PDF parser stopped: took longer than 0.001 s"


def test_a_long_text_is_cut_into_verses_once_and_again_only_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longdesk.engine.corpus import load

    root = tmp_path / "bible"
    root.mkdir()
    book = root / "genesis.txt"
    verse = "And God saw every thing that he had made, and, behold, it was very good."
    lines = [f"Genesis {c}:{v} {verse}\n" for c in range(1, 51) for v in range(1, 81)]
    book.write_text("".join(lines), encoding="utf-8")
    assert book.stat().st_size >= load._CACHED_TEXT_BYTES
    cache = tmp_path / "cache"
    first = load_sources([root], cache_dir=cache)
    assert first.documents[0].segments[0].anchor.kind is AnchorKind.VERSE

    real = load.text_segments
    cut: list[str] = []

    def recording(kind: DocumentKind, text: str) -> object:
        cut.append(text[:20])
        return real(kind, text)

    monkeypatch.setattr(load, "text_segments", recording)
    again = load_sources([root], cache_dir=cache)
    assert cut == []  # from the cache
    assert again.documents == first.documents

    lines[-1] = lines[-1].replace("And God", "Then God")
    book.write_text("".join(lines), encoding="utf-8")
    changed = load_sources([root], cache_dir=cache)
    assert len(cut) == 1  # read and cut again
    assert changed.documents[0].segments[-1].text.startswith("Then God")


def test_a_damaged_cache_entry_is_read_again_and_replaced(tmp_path: Path) -> None:
    import sqlite3
    import zlib

    import msgspec

    root = _pdfs(tmp_path / "lib", 1, 3)
    cache = tmp_path / "cache"
    first = load_sources([root], cache_dir=cache)
    (db_path,) = cache.glob("parse-v*-kv.sqlite")
    damaged = zlib.compress(msgspec.msgpack.encode({"status": "ok", "pages": 3, "columns": {"text": 1}}))
    with sqlite3.connect(db_path) as db:
        assert db.execute("UPDATE entries SET value = ?", (damaged,)).rowcount == 1
    again = load_sources([root], cache_dir=cache)
    assert again.documents == first.documents
    assert not again.issues
    with sqlite3.connect(db_path) as db:
        (value,) = db.execute("SELECT value FROM entries").fetchone()
    assert value != damaged  # parsed again and kept


def test_files_of_earlier_parser_versions_are_removed(tmp_path: Path) -> None:
    from longdesk.engine.corpus.cache import PARSER_VERSION, ParseCache

    cache = tmp_path / "cache"
    cache.mkdir()
    old = cache / f"parse-v{PARSER_VERSION - 1}-kv.sqlite"
    old.write_bytes(b"x" * 1000)
    ParseCache(cache).close()
    assert not old.exists()
    assert (cache / f"parse-v{PARSER_VERSION}-kv.sqlite").exists()
