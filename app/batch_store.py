"""The results log of a batch run: one JSONL file, appended one whole record at a time.

Every line is one JSON record: a ``run`` record (the corpus fingerprint and its documents),
one ``model`` record per model used (its identity: file or endpoint, options), and one
``answer`` record per finished answer. A record is written with a single ``write`` of the
whole line on a file opened for appending, then ``fsync``; a process killed in the middle of
that write leaves at most a torn last line without its newline, which the next run cuts off
before it appends anything. So a record is either in the file whole or not at all, and a run
killed at any moment loses at most the answer it was producing.

A run started again reads the log and skips every question already answered by the same
model on the same corpus. A log made from another corpus, or by a model of the same label
with another identity, is refused (``RunMismatch``) unless the caller passes ``mix=True``;
answers then keep the fingerprints they were made with and the report marks the older ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from longdesk.app.citations import DocRef, check_citations
from longdesk.engine.corpus.model import Corpus

FORMAT = 1
ANSWERED = "answered"  # finished (stop or length): counts as done
FAILED = "failed"  # the backend failed this question: tried again by the next run
STOPPED = "stopped"  # cancelled halfway (never written by the CLI; the window keeps them)


class RunMismatch(Exception):
    """The log was made from another corpus or model; the message says what changed."""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def corpus_fingerprint(corpus: Corpus) -> str:
    """Identity of what the model reads: every document's id, name and source bytes' hash."""
    h = hashlib.sha256()
    for doc in corpus.documents:
        h.update(f"{doc.doc_id}\0{doc.name}\0{doc.sha256}\n".encode())
    return h.hexdigest()[:24]


def corpus_documents(corpus: Corpus) -> list[dict[str, Any]]:
    return [
        {"doc_id": d.doc_id, "name": d.name, "source": d.source, "kind": d.kind.value, "sha256": d.sha256}
        for d in corpus.documents
    ]


@dataclass(slots=True)
class ResultsLog:
    """The records of one results file, and appends to it.

    Attributes:
        path: the JSONL file.
        records: every whole record, in file order.
        repaired: bytes of a torn last line cut off when the file was opened.
    """

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    repaired: int = 0

    @staticmethod
    def open(path: Path) -> ResultsLog:
        """Read ``path`` (missing: an empty log), cutting off a torn last line.

        Raises:
            OSError: the file exists but cannot be read or repaired.
        """
        log = ResultsLog(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return log
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.repaired = len(data) - end
            with path.open("r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        for line in data[:end].splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    log.records.append(record)
        return log

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record whole (one write, then fsync).

        Raises:
            OSError: the disk refused it; the file holds what it held before, or a torn line
                that the next open cuts off.
        """
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.append(dict(record))

    # ---------------------------------------------------------------- what the log holds
    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") == kind]

    def run_record(self) -> dict[str, Any] | None:
        runs = self.of_type("run")
        return runs[-1] if runs else None

    def model_record(self, label: str) -> dict[str, Any] | None:
        found = [r for r in self.of_type("model") if r.get("label") == label]
        return found[-1] if found else None

    def latest_answers(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The last answer record per (model label, question id); an answered one wins over a
        later failure of the same question."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.of_type("answer"):
            key = (str(r.get("model")), str(r.get("qid")))
            if r.get("status") == ANSWERED or out.get(key, {}).get("status") != ANSWERED:
                out[key] = r
        return out

    def done(self, label: str, keys: Mapping[str, str]) -> set[str]:
        """Ids of questions ``label`` has answered with the same text and options."""
        return {
            qid
            for (model, qid), r in self.latest_answers().items()
            if model == label and r.get("status") == ANSWERED and keys.get(qid) == r.get("qkey")
        }

    # ---------------------------------------------------------------- identity checks
    def check_corpus(self, fingerprint: str, documents: Sequence[Mapping[str, Any]], *, mix: bool) -> None:
        """Refuse a log made from another corpus unless ``mix``; record the corpus when new.

        Raises:
            RunMismatch: another corpus, and ``mix`` is False.
            OSError: the record could not be written.
        """
        run = self.run_record()
        if run is not None and run.get("corpus") == fingerprint:
            return
        if run is not None and not mix:
            changes = describe_changes(run.get("documents", []), documents)
            raise RunMismatch(
                f"{self.path} holds answers about another version of the corpus ({changes}); "
                "pass --force to keep them and add answers about this one (the report marks which "
                "is which), or --restart to set them aside and start again"
            )
        self.append({"type": "run", "format": FORMAT, "corpus": fingerprint, "documents": list(documents),
                     "at": now_iso()})  # fmt: skip

    def check_model(
        self, label: str, identity: Mapping[str, Any], info: Mapping[str, Any], *, mix: bool
    ) -> None:
        """Refuse answers of ``label`` made by another model or options unless ``mix``.

        Raises:
            RunMismatch: the same label had another identity, and ``mix`` is False.
            OSError: the record could not be written.
        """
        known = self.model_record(label)
        if known is not None and known.get("identity") == dict(identity):
            return
        if known is not None and not mix:
            old = known.get("identity", {})
            changed = [
                f"{k}: {old.get(k)!r} → {identity.get(k)!r}"
                for k in identity
                if old.get(k) != identity.get(k)
            ]
            raise RunMismatch(
                f"{self.path} holds answers of {label} made with other settings ({'; '.join(changed)}); "
                "pass --force to mix them with new ones, or --restart to start again"
            )
        self.append({"type": "model", "label": label, "identity": dict(identity), "info": dict(info),
                     "at": now_iso()})  # fmt: skip


def describe_changes(old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> str:
    """``2 changed (a.txt, b.md), 1 added (c.txt)``: how two document lists differ."""
    before = {str(d.get("name")): d.get("sha256") for d in old}
    after = {str(d.get("name")): d.get("sha256") for d in new}
    parts = []
    for word, names in (
        ("changed", [n for n in after if n in before and before[n] != after[n]]),
        ("added", [n for n in after if n not in before]),
        ("removed", [n for n in before if n not in after]),
    ):
        if names:
            shown = ", ".join(names[:3]) + (f", … {len(names) - 3} more" if len(names) > 3 else "")
            parts.append(f"{len(names)} {word}: {shown}")
    return "; ".join(parts) or "the documents were renumbered"


def set_aside(path: Path) -> Path | None:
    """Rename an earlier results file to ``<name>.old-N`` (``--restart``); None when none."""
    if not path.exists():
        return None
    n = 1
    while path.with_name(f"{path.name}.old-{n}").exists():
        n += 1
    aside = path.with_name(f"{path.name}.old-{n}")
    path.rename(aside)
    return aside


def citation_records(answer: str, corpus: Corpus | None, refs: Mapping[str, DocRef]) -> list[dict[str, Any]]:
    """The answer's citations, checked against ``corpus``: text, file and place, check, reason."""
    out = []
    for c in check_citations(answer, corpus, refs):
        ref = refs.get(c.doc_id)
        where = "" if ref is None else f"{ref.name}, {c.place()}" if c.place() else ref.name
        out.append(
            {
                "text": c.raw,
                "doc_id": c.doc_id,
                "where": where,
                "check": c.check.value,
                "reason": c.reason,
                "quote": c.quote,
            }
        )
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one question got from one model (before it becomes a record)."""

    status: str
    stop_reason: str
    answer: str
    thinking: str = ""
    error: str = ""
    error_kind: str = ""
    seconds: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    currency: str = ""
    where: str = "local"
    usage_reported: bool = True


def answer_record(
    label: str,
    qid: str,
    qkey: str,
    question: str,
    outcome: Outcome,
    corpus_fp: str,
    corpus: Corpus | None,
    refs: Mapping[str, DocRef],
) -> dict[str, Any]:
    """The ``answer`` record of one question and model, citations checked."""
    record: dict[str, Any] = {
        "type": "answer",
        "model": label,
        "qid": qid,
        "qkey": qkey,
        "question": question,
    }
    record.update(asdict(outcome))
    record["citations"] = citation_records(outcome.answer, corpus, refs) if outcome.answer else []
    record["corpus"] = corpus_fp
    record["at"] = now_iso()
    return record


class RunBusy(Exception):
    """Another ``longdesk batch`` is writing to the same results folder."""


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold the results folder for this run: a second run on it is refused, not interleaved.

    Two runs appending to one log would each cut the other's half-written record off as torn.
    The lock is the OS's (``flock`` on ``folder/.lock``), so a killed run releases it at once.
    Where ``fcntl`` does not exist (Windows) runs are not locked.

    Raises:
        RunBusy: another process holds the folder.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise RunBusy(f"another `longdesk batch` is writing to {folder}; wait for it or stop it") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
