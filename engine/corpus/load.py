"""Read the sources a user names (files, folders, archives) into a Corpus.

Every file that is left out is listed with its reason; nothing is dropped silently. Untrusted
formats (PDF, EPUB, MOBI, FB2, XPS, CBZ) are parsed by pymupdf in an isolated child process
(:mod:`engine.isolation`) whose results are kept in a content-hash cache on disk; text, code,
Markdown, reStructuredText, HTML and notebooks are read in-process (a long one's segments are
kept in the same cache). Every file is read and hashed on every load, so a changed file is
always parsed again; an unchanged one costs a read, a hash and a cache lookup, and no parser
process is started for a load whose first paged file is in the cache. Walking rules are in
:mod:`engine.corpus.walk`, archives in :mod:`engine.corpus.archives`, ids and order in
:mod:`engine.corpus.ids`.

Progress comes as :class:`LoadProgress` events; ``cancelled`` is polled between files and
every 50 ms inside a parse, and a cancelled load returns what was read (``Corpus.cancelled``),
with the unread files listed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from longdesk.engine.corpus.archives import archive_kind, read_archive
from longdesk.engine.corpus.cache import ParseCache
from longdesk.engine.corpus.formats import (
    NotebookError,
    classify,
    decode,
    looks_binary,
    minified,
    text_segments,
)
from longdesk.engine.corpus.ids import assign_ids, keep_previous_order
from longdesk.engine.corpus.image_text import image_text_kind, left_out_reason, svg_segments
from longdesk.engine.corpus.model import (
    Anchor,
    AnchorKind,
    Corpus,
    Document,
    DocumentKind,
    FileIssue,
    Problem,
    Segment,
    TocEntry,
)
from longdesk.engine.corpus.options import LoadOptions
from longdesk.engine.corpus.paged import PAGED_SUFFIXES
from longdesk.engine.corpus.segments import SegmentTable
from longdesk.engine.corpus.verses import maybe_verses
from longdesk.engine.corpus.walk import Candidate, Rules, WalkError, display_name, walk_sources
from longdesk.engine.isolation import Cancelled, IsolationError, Raised, Sandbox

__all__ = ["LoadOptions", "LoadProgress", "SourceError", "classify", "load_sources"]

_KIND_OF_FILETYPE = {
    "pdf": DocumentKind.PDF,
    "xps": DocumentKind.XPS,
    "cbz": DocumentKind.COMIC,
    "epub": DocumentKind.EPUB,
    "mobi": DocumentKind.EBOOK,
    "fb2": DocumentKind.EBOOK,
}
_PROGRESS_EVERY_S = 0.1
# Text files from this size on keep their segments in the parse cache (a long verse text takes
# ~0.6 s to cut into verses, its cached segments ~0.1 s to read); smaller ones are read again.
_CACHED_TEXT_BYTES = 256 << 10
_PEEK_BYTES = 64 << 20  # the largest paged file read once more to see whether it was parsed before


class SourceError(Exception):
    """A source the user named cannot be used at all (missing path, nothing readable)."""


@dataclass(frozen=True, slots=True)
class LoadProgress:
    """Where reading (or, with ``stage="count"``, token counting) stands.

    ``bytes_done`` counts the finished files and the part of the current one already read
    (its pages for a paged document, its members for an archive), so a single big book has a
    rate and an ETA from its first pages on. ``doc_pages`` is ``(done, total)`` pages of the
    document being read, ``(0, 0)`` when it is not a paged one.
    """

    stage: str
    files_done: int
    files_total: int
    pages_done: int
    bytes_done: int
    bytes_total: int
    tokens_done: int
    elapsed_s: float
    current: str = ""
    doc_pages: tuple[int, int] = (0, 0)

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.bytes_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def page_rate(self) -> float:
        """Pages per second so far."""
        return self.pages_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.bytes_done <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, (self.bytes_total - self.bytes_done) / self.rate)

    def describe(self) -> str:
        """``harbour.pdf: page 412 of 1,221 · 0 of 2 files · 12.3 of 40.0 MB · 5.1 MB/s``."""
        parts = []
        if self.current:
            page_done, page_total = self.doc_pages
            parts.append(
                f"{self.current}: page {page_done:,} of {page_total:,}" if page_total else self.current
            )
        parts.append(f"{self.files_done:,} of {self.files_total:,} files")
        parts.append(f"{self.bytes_done / 1e6:,.1f} of {self.bytes_total / 1e6:,.1f} MB")
        if self.pages_done and self.page_rate > 0:
            parts.append(f"{self.page_rate:,.0f} pages/s")
        parts.append(f"{self.rate / 1e6:,.1f} MB/s")
        return " · ".join(parts)


ProgressFn = Callable[[LoadProgress], None]


_HEAD = 8192


def _read_file(path: Path, limit: int, *, binary_ok: bool) -> bytes | None:
    """The bytes of a regular file, without following a final link or blocking on a FIFO.

    Returns None, having read only the first 8 KiB, for binary content when ``binary_ok`` is
    False (a large binary file costs nothing).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        head = os.read(fd, _HEAD)
        if not binary_ok and head[:5] != b"%PDF-" and looks_binary(head):
            return None
        chunks = [head]
        size = len(head)
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _Loader:
    """One load: the state shared by the files of one ``load_sources`` call."""

    def __init__(
        self,
        options: LoadOptions,
        cache_dir: Path | None,
        progress: ProgressFn | None,
        cancelled: Callable[[], bool] | None,
    ) -> None:
        self.options = options
        self.rules = Rules(options)
        self.cache = ParseCache(cache_dir)
        self.progress = progress
        self.cancelled = cancelled
        self.sandboxes: list[Sandbox] = []
        self.docs: list[Document] = []
        self.issues: list[FileIssue] = []
        self.start = time.monotonic()
        self.last_report = 0.0
        self.files_done = 0
        self.files_total = 0
        self.pages_done = 0
        self.bytes_done = 0
        self.bytes_total = 0
        # The part of the current file already read (bytes), and its pages (done, total).
        self.partial_bytes = 0
        self.current_size = 0
        self.doc_pages = (0, 0)
        self.stopped = False

    # ------------------------------------------------------------------ progress
    def report(self, current: str = "", *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self.last_report < _PROGRESS_EVERY_S:
            return
        self.last_report = now
        self.progress(
            LoadProgress(
                "read",
                self.files_done,
                self.files_total,
                self.pages_done,
                self.bytes_done + min(self.partial_bytes, self.current_size),
                self.bytes_total,
                0,
                now - self.start,
                current,
                self.doc_pages,
            )
        )

    def is_cancelled(self) -> bool:
        if not self.stopped and self.cancelled is not None and self.cancelled():
            self.stopped = True
        return self.stopped

    # ------------------------------------------------------------------ files
    def run(self, files: Sequence[Candidate]) -> None:
        paged = [c for c in files if _paged_filetype(c.name, b"") is not None]
        if paged and not self.parsed_before(paged[0]):
            # The parser processes boot while the first files are read. When the first paged
            # file was parsed before (a reopened session), its sources most likely were too:
            # no process is started unless a parse is really needed.
            for index in range(
                max(1, self.options.parsers) if len(paged) > 1 or paged[0].size > 256_000 else 1
            ):
                self._sandbox(index).start()
        self.files_total = len(files)
        self.bytes_total = sum(c.size for c in files)
        for index, cand in enumerate(files):
            if self.is_cancelled():
                for rest in files[index:]:
                    self.issues.append(FileIssue(rest.source, Problem.SKIPPED, "not read (cancelled)"))
                return
            if index >= self.options.max_files or self.bytes_done + cand.size > self.options.max_total_bytes:
                cap = "file count" if index >= self.options.max_files else "total size"
                for rest in files[index:]:
                    self.issues.append(
                        FileIssue(rest.source, Problem.SKIPPED, f"not read: the {cap} cap was reached")
                    )
                return
            self.current_size, self.partial_bytes, self.doc_pages = cand.size, 0, (0, 0)
            self.report(cand.name, force=index == 0)
            self.read_candidate(cand)
            self.files_done += 1
            self.bytes_done += cand.size
            self.current_size, self.partial_bytes, self.doc_pages = 0, 0, (0, 0)
        self.report(force=True)

    def parsed_before(self, cand: Candidate) -> bool:
        """True when the parse cache holds ``cand``'s present bytes (read and hashed here; a
        file over ``_PEEK_BYTES`` is not read twice and counts as new)."""
        if cand.size > _PEEK_BYTES:
            return False
        try:
            data = _read_file(cand.path, _PEEK_BYTES, binary_ok=True)
        except OSError:
            return False
        filetype = _paged_filetype(cand.name, b"")
        if data is None or len(data) > _PEEK_BYTES or filetype is None:
            return False
        return self.cache.has(self.parse_key(hashlib.sha256(data).hexdigest(), filetype))

    def parse_key(self, sha: str, filetype: str) -> str:
        opts = self.options
        return ParseCache.key(sha, filetype, opts.max_chars_per_page, opts.tables)

    def read_candidate(self, cand: Candidate) -> None:
        if self.options.read_archives and archive_kind(cand.name) is not None:
            self.read_archive(cand)  # streamed member by member, never read whole
            return
        paged = _paged_filetype(cand.name, b"") is not None
        try:
            data = _read_file(cand.path, self.options.max_file_bytes, binary_ok=paged)
        except OSError as exc:
            self.issues.append(FileIssue(cand.source, Problem.FAILED, f"cannot read: {exc.strerror or exc}"))
            return
        if data is None:
            self.issues.append(FileIssue(cand.source, Problem.SKIPPED, "binary content"))
            return
        if len(data) > self.options.max_file_bytes:
            self.issues.append(FileIssue(cand.source, Problem.SKIPPED, "larger than the per-file cap"))
            return
        self.read_bytes(cand.name, cand.source, data, str(cand.path), cand.secret, forced=cand.forced)

    def read_archive(self, cand: Candidate) -> None:
        for member in read_archive(
            cand.path, cand.source, self.options.archive_limits, self.issues, self.is_cancelled
        ):
            source = f"{cand.source}!{member.name}"
            self.partial_bytes = member.packed  # per member: how far into the archive file
            self.report(display_name(f"{cand.name}!{member.name}"))
            forced = self.rules.forced_in(member.name)
            if not forced:
                reason = self.rules.default_reason(member.name)
                if reason is not None:
                    self.issues.append(FileIssue(source, Problem.SKIPPED, reason))
                    continue
            secret = self.rules.is_secret(PurePosixPath(member.name).name)
            if secret and self.options.skip_secrets:
                self.issues.append(
                    FileIssue(source, Problem.SKIPPED, "looks like a secrets file (left out by option)")
                )
                continue
            name = display_name(f"{cand.name}!{member.name}")
            self.read_bytes(name, source, member.data, None, secret, forced=forced)
            if self.stopped:
                return

    def read_bytes(
        self, name: str, source: str, data: bytes, path: str | None, secret: bool, *, forced: bool = False
    ) -> None:
        sha = hashlib.sha256(data).hexdigest()
        flags = frozenset({"secret"}) if secret else frozenset()
        filetype = _paged_filetype(name, data)
        if filetype is not None:
            self.read_paged(name, source, data, path, sha, filetype, flags)
            return
        if not data.strip():
            self.issues.append(FileIssue(source, Problem.SKIPPED, "empty"))
            return
        if looks_binary(data[:8192]):
            self.issues.append(FileIssue(source, Problem.SKIPPED, "binary content"))
            return
        picture = image_text_kind(name)
        if picture is not None and not forced:
            self.read_picture(name, source, data, sha, flags, picture)
            return
        kind, language = classify(name)
        key = ParseCache.key(sha, "text", kind.value, self.options.verses)
        cached = self.cache.get(key) if len(data) >= _CACHED_TEXT_BYTES else None
        segments: Sequence[Segment] | None = None
        if cached is not None:
            try:
                segments = _segments(cached)
            except (ValueError, KeyError, TypeError):
                segments = None  # a damaged entry: read again, and replaced
        if segments is None:
            text = decode(data)
            if kind in (DocumentKind.CODE, DocumentKind.TEXT) and minified(text):
                reason = "minified or generated (very long lines)"
                self.issues.append(FileIssue(source, Problem.SKIPPED, reason))
                return
            try:
                segments = text_segments(kind, text)
            except NotebookError as exc:
                self.issues.append(FileIssue(source, Problem.FAILED, f"cannot read notebook: {exc}"))
                return
            if kind in (DocumentKind.TEXT, DocumentKind.MARKDOWN, DocumentKind.HTML):
                segments = maybe_verses(segments, self.options.verses) or segments
            if segments and len(data) >= _CACHED_TEXT_BYTES:
                segments = SegmentTable.of(segments)
                self.cache.put(key, {"columns": segments.columns()})
        if not segments:
            self.issues.append(FileIssue(source, Problem.SKIPPED, "no text"))
            return
        self.docs.append(Document("", name, source, kind, sha, segments, language, flags))

    def read_picture(
        self, name: str, source: str, data: bytes, sha: str, flags: frozenset[str], picture: str
    ) -> None:
        """A picture written as text: an SVG's own words, else left out with the reason."""
        segments = svg_segments(decode(data)) if name.lower().endswith(".svg") else []
        if not segments:
            detail = "" if not name.lower().endswith(".svg") else ", no title, description or text"
            self.issues.append(FileIssue(source, Problem.SKIPPED, left_out_reason(picture + detail)))
            return
        note = f"{picture}: only its title, description and text are read (force-include it to read it whole)"
        self.docs.append(Document("", name, source, DocumentKind.TEXT, sha, segments, "", flags, (), (note,)))

    def read_paged(
        self,
        name: str,
        source: str,
        data: bytes,
        path: str | None,
        sha: str,
        filetype: str,
        flags: frozenset[str],
    ) -> None:
        opts = self.options
        key = self.parse_key(sha, filetype)
        result = self.cache.get(key)
        table: SegmentTable | None = None
        if result is not None:
            try:
                table = _segments(result) if result.get("status") == "ok" else None
            except (ValueError, KeyError, TypeError):
                result = None  # a damaged entry: parsed again, and replaced
            else:
                self.pages_done += int(result.get("pages", 0))
        if result is None:
            result = self.parse_isolated(name, source, path if path is not None else data, filetype)
            if result is None:
                return
            if result.get("status") == "ok":
                try:
                    table = _segments(result)
                except (ValueError, KeyError, TypeError) as exc:
                    reason = f"the parser gave malformed text: {exc}"
                    self.issues.append(FileIssue(source, Problem.FAILED, reason))
                    return
            rest = {k: v for k, v in result.items() if k != "segments"}
            self.cache.put(key, {**rest, "columns": table.columns() if table is not None else None})
        status = str(result.get("status", ""))
        if status != "ok" or table is None:
            self.issues.append(FileIssue(source, Problem.FAILED, status or "cannot read"))
            return
        if not table:
            self.issues.append(FileIssue(source, Problem.SKIPPED, "no text"))
            return
        segments = maybe_verses(table, opts.verses) or table
        toc = tuple(
            TocEntry(int(level), str(title), Anchor(AnchorKind(kind), int(number), int(number)))
            for level, title, kind, number in result.get("toc", [])
        )
        notes = tuple(str(n) for n in result.get("notes", []))
        kind = _KIND_OF_FILETYPE[filetype]
        self.docs.append(Document("", name, source, kind, sha, segments, "", flags, toc, notes))

    def _sandbox(self, index: int) -> Sandbox:
        while len(self.sandboxes) <= index:
            self.sandboxes.append(Sandbox(self.options.parse_limits, preload=("pymupdf",)))
        return self.sandboxes[index]

    def _call(
        self,
        index: int,
        what: str | bytes,
        filetype: str,
        pages: tuple[int, int] | None,
        on_pages: Callable[[int, int], None] | None,
    ) -> dict[str, Any] | IsolationError:
        from longdesk.engine.corpus import paged

        def on_progress(value: Any) -> None:
            if on_pages is not None and isinstance(value, tuple) and len(value) == 3 and value[0] == "pages":
                on_pages(int(value[1]), int(value[2]))

        try:
            result: object = self._sandbox(index).call(
                paged.extract,
                what,
                filetype,
                self.options.max_chars_per_page,
                self.options.tables,
                pages,
                self.options.split_pages_above if self.options.parsers > 1 else 0,
                on_progress=on_progress if self.progress is not None else None,
                cancelled=self.is_cancelled,
            )
        except IsolationError as exc:
            return exc
        if not isinstance(result, dict):
            return IsolationError("the parser gave no result")
        return result

    def parse_isolated(
        self, name: str, source: str, what: str | bytes, filetype: str
    ) -> dict[str, Any] | None:
        """The child's result for one document; big paged documents are read in parallel ranges."""
        base_pages = self.pages_done
        done = [0] * max(1, self.options.parsers)

        in_archive = isinstance(what, bytes)  # a member: the archive's progress is per member

        def on_pages(part: int) -> Callable[[int, int], None]:
            def update(n: int, total: int) -> None:
                done[part] = n
                if part == 0:  # only the calling thread reports
                    read = sum(done)
                    self.pages_done = base_pages + read
                    self.doc_pages = (read, total)
                    if not in_archive and total > 0:
                        self.partial_bytes = self.current_size * min(read, total) // total
                    self.report(name)

            return update

        first = self._call(0, what, filetype, None, on_pages(0))
        outcome: list[dict[str, Any] | IsolationError] = [first]
        if isinstance(first, dict) and first.get("status") == "split":
            total = int(first["pages"])
            n = len(done)
            ranges = [(i * total // n, (i + 1) * total // n) for i in range(n)]
            outcome = [IsolationError("not run")] * n
            for i in range(1, n):
                self._sandbox(i)

            def run(i: int) -> None:
                outcome[i] = self._call(i, what, filetype, ranges[i], on_pages(i))

            helpers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(1, n)]
            for t in helpers:
                t.start()
            run(0)
            for t in helpers:
                t.join()
            self.pages_done = base_pages + total
        for part in outcome:
            if isinstance(part, Cancelled):
                self.issues.append(FileIssue(source, Problem.SKIPPED, "not read (cancelled)"))
                return None
            if isinstance(part, IsolationError):
                self.issues.append(FileIssue(source, Problem.FAILED, _describe_failure(filetype, part)))
                return None
        parts = [p for p in outcome if isinstance(p, dict)]
        merged = dict(parts[0])
        merged["segments"] = [seg for p in parts for seg in p["segments"]]
        merged["notes"] = [note for p in parts for note in p.get("notes", [])]
        if merged["segments"]:
            merged["status"] = "ok"
        return merged

    def close(self) -> None:
        for sandbox in self.sandboxes:
            sandbox.close()
        self.cache.close()


def _segments(result: dict[str, Any]) -> SegmentTable:
    """The segments of a parse result: rows as the child gives them, columns as the parse
    cache keeps them (``SegmentTable.columns``).

    Raises:
        ValueError: neither form, or a malformed one.
    """
    if "columns" in result:
        columns = result["columns"]
        if not isinstance(columns, dict):
            raise ValueError("malformed segment columns")
        return SegmentTable.of_columns(columns)
    return SegmentTable.of_rows(result["segments"])


def _paged_filetype(name: str, data: bytes) -> str | None:
    suffix = PurePosixPath(name.rsplit("!", 1)[-1]).suffix.lower()
    if suffix in PAGED_SUFFIXES:
        return PAGED_SUFFIXES[suffix]
    if data[:5] == b"%PDF-":
        return "pdf"
    return None


def _describe_failure(filetype: str, exc: IsolationError) -> str:
    label = filetype.upper()
    text = exc.message.strip().splitlines()[0] if exc.message.strip() else type(exc).__name__
    if isinstance(exc, Raised):  # the parser refused the file; the others stopped the child
        return f"corrupt or unreadable {label}: {text}"
    return f"{label} parser stopped: {text}"


def load_sources(
    paths: Sequence[Path],
    *,
    options: LoadOptions | None = None,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
    cancelled: Callable[[], bool] | None = None,
    previous_order: Sequence[str] = (),
) -> Corpus:
    """Read files, folders and archives into a Corpus; unreadable files become issues.

    Args:
        paths: what the user dropped, in the order given.
        options: caps, excludes and format switches (defaults: ``LoadOptions()``).
        cache_dir: where the parse cache lives (e.g. ``Paths.default().cache``); None: no cache.
        progress: called with :class:`LoadProgress` about ten times a second.
        cancelled: polled often (also from a helper thread while a long document is read in
            parallel ranges, so it must be thread-safe, e.g. ``threading.Event().is_set``);
            when it returns True reading stops within a second and what was read is kept.
        previous_order: the document ids of this workspace's previous corpus; those documents
            keep their places and new ones are appended (see :mod:`engine.corpus.ids`).

    Raises:
        SourceError: a named path is missing, or nothing readable was found.
    """
    opts = options or LoadOptions()
    try:
        files, walk_issues = walk_sources(paths, opts)
    except WalkError as exc:
        raise SourceError(str(exc)) from exc
    loader = _Loader(opts, cache_dir, progress, cancelled)
    loader.issues.extend(walk_issues)
    try:
        loader.run(files)
    finally:
        loader.close()
    docs = loader.docs
    ids = assign_ids([d.name for d in docs])
    docs = [dataclasses.replace(d, doc_id=i) for d, i in zip(docs, ids, strict=True)]
    docs = [docs[i] for i in keep_previous_order(ids, previous_order)]
    if not docs and not loader.stopped:
        where = ", ".join(str(p) for p in paths)
        detail = f" ({len(loader.issues)} file(s) left out)" if loader.issues else ""
        raise SourceError(f"no readable documents in {where}{detail}")
    issues = sorted(
        (dataclasses.replace(i, source=display_name(i.source)) for i in loader.issues), key=lambda i: i.source
    )
    return Corpus.of(docs, issues, cancelled=loader.stopped)
