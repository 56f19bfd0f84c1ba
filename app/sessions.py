"""The session store: conversations with their sources, saved as JSON files, atomically.

A session is a corpus (the paths the user dropped, what was left out, a summary of each
document), a model choice and a conversation. It never stores document text: reopening a
session lists its documents and shows its conversation from this file alone, and the sources
are read again only when they are needed (lazy reopen). A file that cannot be parsed is kept
aside as ``<name>.corrupt-N`` and reported; it never empties the list. Files larger than
``MAX_SESSION_BYTES`` are refused with a message instead of being loaded.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from longdesk.app.citations import DocRef, describe_for_export, parse_citations, resolve
from longdesk.engine.atomic import atomic_write_text
from longdesk.engine.events import StopReason

SESSION_SUFFIX = ".longdesk.json"
FORMAT_VERSION = 1
MAX_SESSION_BYTES = 64 * 1024 * 1024
# Listing reads only the head of very large files (title and dates are written first).
_HEAD_BYTES = 8192
_LIST_PARSE_LIMIT = 2 * 1024 * 1024


class SessionError(Exception):
    """A session cannot be opened, saved or changed; the message says why."""


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One question and its answer, with the figures shown under it."""

    question: str
    answer: str
    thinking: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    cost: float | None = None
    currency: str = ""
    stop_reason: str = "stop"  # stop, length, cancelled, failed, incomplete (a cut stream, text kept)
    model: str = ""
    created: float = 0.0
    where: str = "local"  # "local" or "hosted" (hosted turns show cache hits, misses and cost)
    located: tuple[str, ...] = ()  # located citations found for the finished answer, as shown


@dataclass(frozen=True, slots=True)
class DocRecord:
    """A document of the session's corpus, as listed (no text)."""

    doc_id: str
    name: str
    source: str
    kind: str
    extent: str
    tokens: int
    included: bool = True
    last_place: int = 0


@dataclass(frozen=True, slots=True)
class Session:
    """A saved conversation over a corpus.

    Attributes:
        session_id: file-name-safe id, stable for the session's life.
        title: shown in the session list; the first question until renamed.
        sources: the files and folders the user added, in order.
        excluded: names of documents the user left out of the context.
        documents: the last known document list, for a lazy reopen.
        model: path of the model (or hosted endpoint name) the session uses.
        thinking: the thinking mode (off / high / max).
        turns: the conversation.
    """

    session_id: str
    title: str = "New session"
    created: float = 0.0
    updated: float = 0.0
    sources: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    documents: tuple[DocRecord, ...] = ()
    model: str = ""
    thinking: str = "off"
    turns: tuple[TurnRecord, ...] = ()

    @staticmethod
    def new(title: str = "New session", sources: tuple[str, ...] = ()) -> Session:
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        return Session(f"{stamp}-{secrets.token_hex(3)}", title, now, now, sources)

    def refs(self) -> dict[str, DocRef]:
        return {d.doc_id: DocRef(d.doc_id, d.name, d.source, d.kind, d.last_place) for d in self.documents}

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "title": self.title,
            "updated": self.updated,
            "created": self.created,
            "format": FORMAT_VERSION,
            "session_id": self.session_id,
            "model": self.model,
            "thinking": self.thinking,
            "sources": list(self.sources),
            "excluded": list(self.excluded),
            "documents": [asdict(d) for d in self.documents],
            "turns": [_turn_json(t) for t in self.turns],
        }
        return json.dumps(data, ensure_ascii=False, indent=1) + "\n"

    @staticmethod
    def from_json(text: str) -> Session:
        """Parse a session file.

        Raises:
            SessionError: not a session file, or one with fields of the wrong type.
        """
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or "session_id" not in raw:
                raise SessionError("not a Longdesk session file")
            if int(raw.get("format", 1)) > FORMAT_VERSION:
                raise SessionError("written by a newer Longdesk")
            return Session(
                session_id=str(raw["session_id"]),
                title=str(raw.get("title", "Untitled")),
                created=float(raw.get("created", 0.0)),
                updated=float(raw.get("updated", 0.0)),
                sources=tuple(str(s) for s in raw.get("sources", [])),
                excluded=tuple(str(s) for s in raw.get("excluded", [])),
                documents=tuple(DocRecord(**d) for d in raw.get("documents", [])),
                model=str(raw.get("model", "")),
                thinking=str(raw.get("thinking", "off")),
                turns=tuple(_turn(t) for t in raw.get("turns", [])),
            )
        except SessionError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise SessionError(f"the session file is damaged ({exc})") from exc


def _turn_json(turn: TurnRecord) -> dict[str, Any]:
    """A turn as saved; no ``located`` key when there are none, so files stay as they were."""
    data = asdict(turn)
    if not turn.located:
        del data["located"]
    return data


def _turn(raw: object) -> TurnRecord:
    if not isinstance(raw, dict):
        raise SessionError("the session file is damaged (a turn is not an object)")
    located = raw.get("located", ())
    if not isinstance(located, list | tuple) or not all(isinstance(x, str) for x in located):
        raise SessionError("the session file is damaged (located citations are not a list of texts)")
    return TurnRecord(**{**raw, "located": tuple(located)})


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """A row of the session list."""

    session_id: str
    title: str
    updated: float
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class Listing:
    """The session list and the problems met while making it."""

    sessions: tuple[SessionSummary, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)


def _safe_id(session_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", session_id) or session_id.startswith("."):
        raise SessionError(f"not a valid session id: {session_id!r}")
    return session_id


class SessionStore:
    """Session files in one folder (``Paths.data / "sessions"``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, session_id: str) -> Path:
        return self.folder / f"{_safe_id(session_id)}{SESSION_SUFFIX}"

    def save(self, session: Session) -> Session:
        """Write ``session`` atomically (stamping ``updated``) and return what was written.

        Raises:
            SessionError: the disk refused the write; the previous file is untouched.
        """
        stamped = replace(session, updated=time.time())
        try:
            atomic_write_text(self.path_for(session.session_id), stamped.to_json())
        except OSError as exc:
            raise SessionError(f"could not save the session: {exc.strerror or exc}") from exc
        return stamped

    def _keep_aside(self, path: Path) -> Path:
        n = 1
        while path.with_name(f"{path.name}.corrupt-{n}").exists():
            n += 1
        aside = path.with_name(f"{path.name}.corrupt-{n}")
        path.rename(aside)
        return aside

    def list(self) -> Listing:
        """All sessions, most recently updated first; damaged files are kept aside and reported."""
        if not self.folder.is_dir():
            return Listing(())
        rows: list[SessionSummary] = []
        problems: list[str] = []
        for path in sorted(self.folder.glob(f"*{SESSION_SUFFIX}")):
            try:
                size = path.stat().st_size
                summary = self._summary(path, size)
            except (SessionError, OSError, UnicodeDecodeError) as exc:
                try:
                    aside = self._keep_aside(path)
                    problems.append(f"{path.name} could not be read ({exc}); kept aside as {aside.name}")
                except OSError as exc2:
                    problems.append(f"{path.name} could not be read ({exc}) nor moved aside ({exc2})")
                continue
            rows.append(summary)
        rows.sort(key=lambda r: r.updated, reverse=True)
        return Listing(tuple(rows), tuple(problems))

    def _summary(self, path: Path, size: int) -> SessionSummary:
        session_id = path.name[: -len(SESSION_SUFFIX)]
        if size > _LIST_PARSE_LIMIT:
            with path.open("rb") as fh:
                head = fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")
            title = re.search(r'"title":\s*("(?:[^"\\]|\\.)*")', head)
            updated = re.search(r'"updated":\s*([0-9.eE+-]+)', head)
            if not title or not updated:
                raise SessionError("not a Longdesk session file")
            return SessionSummary(session_id, json.loads(title.group(1)), float(updated.group(1)), path, size)
        session = Session.from_json(path.read_text(encoding="utf-8"))
        return SessionSummary(session_id, session.title, session.updated, path, size)

    def recent(self, count: int = 8) -> tuple[SessionSummary, ...]:
        return self.list().sessions[:count]

    def load(self, session_id: str) -> Session:
        """Read one session.

        Raises:
            SessionError: missing, too large, or damaged (then kept aside).
        """
        path = self.path_for(session_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise SessionError("the session no longer exists") from exc
        if size > MAX_SESSION_BYTES:
            raise SessionError(
                f"the session file is {size / 1e6:,.0f} MB, more than the {MAX_SESSION_BYTES / 1e6:,.0f} MB "
                "a session may hold; it was left untouched"
            )
        try:
            return Session.from_json(path.read_text(encoding="utf-8"))
        except (SessionError, UnicodeDecodeError) as exc:
            aside = self._keep_aside(path)
            raise SessionError(f"{exc}; the file was kept aside as {aside.name}") from exc

    def rename(self, session_id: str, title: str) -> Session:
        title = " ".join(title.split())
        if not title:
            raise SessionError("a session needs a name")
        return self.save(replace(self.load(session_id), title=title[:200]))

    def delete(self, session_id: str) -> None:
        try:
            self.path_for(session_id).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise SessionError(f"could not delete the session: {exc.strerror or exc}") from exc


def title_from_question(question: str) -> str:
    """A session title from its first question: one line, at most 60 characters."""
    line = " ".join(question.split())
    return line if len(line) <= 60 else line[:57].rstrip() + "…"


def export_markdown(session: Session) -> str:
    """The conversation as Markdown, each citation followed by the file and place it names."""
    refs = session.refs()
    out = [f"# {session.title}", ""]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(session.updated or session.created))
    out.append(f"*Exported from Longdesk · {when} · model: {Path(session.model).name or 'unknown'}*")
    out.append("")
    included = [d for d in session.documents if d.included]
    if included:
        out.append("## Sources")
        out.append("")
        for d in included:
            out.append(
                f"- **{d.doc_id}** {d.name} ({d.kind}, {d.extent}, {d.tokens:,} tokens) — `{d.source}`"
            )
        out.append("")
    for n, turn in enumerate(session.turns, 1):
        out.append(f"## {n}. {turn.question}")
        out.append("")
        if turn.thinking:
            out.append("<details><summary>Reasoning</summary>")
            out.append("")
            out.append(turn.thinking.strip())
            out.append("")
            out.append("</details>")
            out.append("")
        out.append(_resolve_inline(turn.answer, refs).strip() or "*(no answer)*")
        if turn.stop_reason == StopReason.CANCELLED:
            out.append("")
            out.append("*(stopped before the end)*")
        elif turn.stop_reason == StopReason.INCOMPLETE:
            out.append("")
            out.append("*(incomplete: the connection dropped in the middle of the answer)*")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _resolve_inline(answer: str, refs: dict[str, DocRef]) -> str:
    """Append ``(file, place)`` after each citation bracket of ``answer``."""
    cites = [resolve(c, refs) for c in parse_citations(answer)]
    by_bracket: dict[tuple[int, int], list[str]] = {}
    for c in cites:
        by_bracket.setdefault((c.start, c.end), []).append(describe_for_export(c, refs))
    parts: list[str] = []
    pos = 0
    for (_start, end), places in sorted(by_bracket.items()):
        parts.append(answer[pos:end])
        parts.append(" (" + "; ".join(places) + ")")
        pos = end
    parts.append(answer[pos:])
    return "".join(parts)
