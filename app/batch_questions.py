"""Question lists for ``longdesk batch``: plain text, JSONL or YAML, read into ``Question`` values.

Formats (chosen by the file's suffix; anything else is read as plain text):

- **Plain text** (``.txt``, ``.md``, …): one question a line. Blank lines and lines starting
  with ``#`` are skipped. Ids are ``q1``, ``q2``, … in order.
- **JSONL** (``.jsonl``): one object a line, ``{"id": "auth", "question": "…",
  "max_tokens": 256, "thinking": "high"}``; only ``question`` is required (``q`` and ``text``
  are accepted too). Ids default to ``q<line>``.
- **YAML** (``.yaml``, ``.yml``): a list of strings or of objects as in JSONL, or a mapping
  with such a list under ``questions``. Read with PyYAML (a dependency through gguf).

A question's ``key`` covers its text and options: a resumed run redoes a question whose
text or options changed, even under the same id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longdesk.engine.backends.base import ThinkingMode

MAX_QUESTIONS = 100_000
MAX_FILE_BYTES = 64 * 1024 * 1024
_OPTION_KEYS = {"max_tokens", "thinking"}
_TEXT_KEYS = ("question", "q", "text")


class QuestionFileError(Exception):
    """The question file cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a batch.

    Attributes:
        qid: the id the results and reports use (unique in the file).
        text: the question as asked.
        max_tokens: longest answer for this question; 0 takes the run's.
        thinking: thinking mode for this question; None takes the run's.
    """

    qid: str
    text: str
    max_tokens: int = 0
    thinking: ThinkingMode | None = None

    @property
    def key(self) -> str:
        """What identifies the question's work: text and options (not the id)."""
        raw = json.dumps([self.text, self.max_tokens, self.thinking.value if self.thinking else ""])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def read_questions(path: Path) -> list[Question]:
    """The questions of ``path``.

    Raises:
        QuestionFileError: missing, unreadable, malformed, empty, or with repeated ids.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise QuestionFileError(f"{path}: {size / 1e6:,.0f} MB is too large for a question list")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise QuestionFileError(f"{path}: no such question file") from exc
    except UnicodeDecodeError as exc:
        raise QuestionFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise QuestionFileError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        questions = _from_jsonl(path, text)
    elif suffix in (".yaml", ".yml"):
        questions = _from_yaml(path, text)
    else:
        questions = _from_text(text)
    if not questions:
        raise QuestionFileError(f"{path}: no questions in it")
    if len(questions) > MAX_QUESTIONS:
        raise QuestionFileError(f"{path}: {len(questions):,} questions; at most {MAX_QUESTIONS:,}")
    seen: dict[str, int] = {}
    for n, q in enumerate(questions, 1):
        if q.qid in seen:
            raise QuestionFileError(
                f"{path}: question {n} repeats the id {q.qid!r} of question {seen[q.qid]}"
            )
        seen[q.qid] = n
    return questions


def _from_text(text: str) -> list[Question]:
    lines = [line.strip() for line in text.splitlines()]
    kept = [line for line in lines if line and not line.startswith("#")]
    return [Question(f"q{n}", line) for n, line in enumerate(kept, 1)]


def _from_jsonl(path: Path, text: str) -> list[Question]:
    out: list[Question] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise QuestionFileError(f"{path}, line {n}: not JSON ({exc})") from exc
        out.append(_from_entry(raw, f"{path}, line {n}", f"q{len(out) + 1}"))
    return out


def _from_yaml(path: Path, text: str) -> list[Question]:
    import yaml  # type: ignore[import-untyped]

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise QuestionFileError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from exc
    if isinstance(raw, dict):
        raw = raw.get("questions")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise QuestionFileError(f"{path}: expected a list of questions (or `questions:` with one)")
    return [_from_entry(e, f"{path}, question {n}", f"q{n}") for n, e in enumerate(raw, 1)]


def _from_entry(raw: Any, where: str, default_id: str) -> Question:
    if isinstance(raw, str):
        if not raw.strip():
            raise QuestionFileError(f"{where}: an empty question")
        return Question(default_id, raw.strip())
    if not isinstance(raw, dict):
        raise QuestionFileError(f"{where}: expected a question text or an object with `question`")
    text = next((raw[k] for k in _TEXT_KEYS if k in raw), None)
    if not isinstance(text, str) or not text.strip():
        raise QuestionFileError(f"{where}: no `question` text")
    unknown = set(raw) - {"id", *_TEXT_KEYS, *_OPTION_KEYS}
    if unknown:
        raise QuestionFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    qid = str(raw.get("id", default_id)).strip()
    if not qid or len(qid) > 120 or any(c in qid for c in "\n\r\t"):
        raise QuestionFileError(f"{where}: an id must be one short line")
    max_tokens = raw.get("max_tokens", 0)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 0 <= max_tokens <= 1_000_000:
        raise QuestionFileError(f"{where}: max_tokens must be a whole number of tokens")
    thinking = raw.get("thinking")
    try:
        mode = ThinkingMode(thinking) if thinking is not None else None
    except ValueError as exc:
        choices = ", ".join(m.value for m in ThinkingMode)
        raise QuestionFileError(f"{where}: thinking must be one of {choices}") from exc
    return Question(qid, text.strip(), max_tokens, mode)
