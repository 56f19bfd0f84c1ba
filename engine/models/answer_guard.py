"""Guards on a streamed answer: stop sequences, and a stop when the model repeats the source.

A model that does not answer keeps writing: a base model wrapped in chat turns restates the
instructions, copies the corpus markup (``<doc id=...>``, ``<L321>``) or loops over its own
last lines until the output limit. ``AnswerGuard`` sits between the token stream and the user
and ends the answer, with the reason ``repeated``, at the first of:

* anchor markup of the packed corpus (``<doc ``, ``</doc>``, ``<corpus>``, ``<p12>``,
  ``<L40>``, ``<c3>``, ``<v Genesis 1>``): an answer never needs it (citations are
  ``[D2, p. 12]``);
* ``RUN_WORDS`` consecutive words of the instructions (a sentence such as "the documents do
  not contain the answer" is shorter and passes);
* a line of the answer written again (``LINE_WORDS`` words or more), or the same short
  sequence of words repeated ``LOOP_TIMES`` times in a row at the end of the answer.

The offending text is cut off, never shown: text that might start such a run (trailing words
that also occur, in order, in the instructions; an unclosed ``<``; the start of a stop
sequence) is held back until it is known to be harmless. Stop sequences end the answer with
the reason ``stop`` and are not part of it. Leading whitespace of the answer is dropped, and so
is one anchor marker that opens it (a model quoting the line it means: the line is the answer).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

RUN_WORDS = 10
LINE_WORDS = 5
LOOP_TIMES = 3
LOOP_MIN_WORDS = 12
_TAIL = 4000  # characters of the answer the checks look at (answers can be long)
_MARKUP = re.compile(r"</?doc[\s>]|</?corpus>|<[pcL]\d+>|<v [^<>\n]{1,60}>")
_WORD = re.compile(r"\w+")
# One page/line/chapter anchor at the very start of an answer: a base model answering about code
# or a book often quotes the place it means (``<L12> def iterdump(connection):``).
_LEAD_ANCHOR = re.compile(r"<[pcL]\d+>[ \t]*")


class GuardStop(enum.StrEnum):
    STOP = "stop"  # a stop sequence ended the answer
    REPEATED = "repeated"  # the model started repeating the source, the instructions or itself


REPEATED_NOTE = "stopped: the model repeated the source"


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


@dataclass
class AnswerGuard:
    """Filter answer text as it streams: ``feed`` returns what may be shown, and why it ended.

    Args:
        instructions: the text the model read before the corpus (the citing contract, or the
            reading format's header).
        stops: stop sequences (after the first visible character of the answer).
    """

    instructions: str = ""
    stops: tuple[str, ...] = ()
    stopped: GuardStop | None = None
    _text: str = ""
    _sent: int = 0
    _grams: list[set[tuple[str, ...]]] = field(default_factory=list, repr=False)
    _lead_dropped: bool = False

    def __post_init__(self) -> None:
        words = _words(self.instructions)
        self._grams = [
            {tuple(words[i : i + n]) for i in range(len(words) - n + 1)} for n in range(1, RUN_WORDS + 1)
        ]

    @property
    def text(self) -> str:
        """The answer as shown so far."""
        return self._text[: self._sent]

    def feed(self, piece: str) -> str:
        """Add generated text; returns the part that may be shown now ('' once stopped)."""
        if self.stopped is not None:
            return ""
        if not self._text:
            piece = piece.lstrip()
        if not piece:
            return ""
        self._text += piece
        if self._sent == 0 and not self._lead_dropped:
            lead = _LEAD_ANCHOR.match(self._text)
            if lead is not None:  # the model quotes the line it means: keep the line, not its marker
                self._lead_dropped = True
                self._text = self._text[lead.end() :]
                if not self._text:
                    return ""
        end, why = self._verdict()
        if why is not None:
            self.stopped = why
            return self._release(end, final=True)
        return self._release(self._safe_end())

    def flush(self) -> str:
        """The generation ended: the held-back rest (minus a trailing partial stop sequence)."""
        if self.stopped is not None:
            return ""
        return self._release(len(self._text), final=True)

    # ------------------------------------------------------------------ checks
    def _release(self, end: int, *, final: bool = False) -> str:
        end = max(end, self._sent)
        out = self._text[self._sent : end]
        if final:
            out = out.rstrip()
        self._sent = end if not final else self._sent + len(out)
        return out

    def _verdict(self) -> tuple[int, GuardStop | None]:
        """(where the answer ends, why) for the first stop or repeat; (len, None) for none."""
        text = self._text
        ends: list[tuple[int, GuardStop]] = []
        for stop in self.stops:
            i = text.find(stop, max(0, self._sent - len(stop)))
            if i >= 0:
                ends.append((i, GuardStop.STOP))
        base = max(0, len(text) - _TAIL)
        tail = text[base:]
        m = _MARKUP.search(tail)
        if m is not None:
            ends.append((base + m.start(), GuardStop.REPEATED))
        spans = [(base + w.start(), w.group().casefold()) for w in _WORD.finditer(tail)]
        run = self._instruction_run([w for _, w in spans], full=True)
        if run is not None:
            ends.append((spans[run][0], GuardStop.REPEATED))
        loop = _loop_start([w for _, w in spans])
        if loop is not None:
            ends.append((spans[loop][0], GuardStop.REPEATED))
        again = _repeated_line(tail)
        if again is not None:
            ends.append((base + again, GuardStop.REPEATED))
        if not ends:
            return len(text), None
        at, why = min(ends)
        return at, why

    def _instruction_run(self, words: list[str], *, full: bool) -> int | None:
        """Index of the first word of a ``RUN_WORDS`` run of instruction words (``full``), or of
        the longest run of instruction words the answer ends with (else)."""
        if not self._grams or not self._grams[0]:
            return None
        if full:
            n = RUN_WORDS
            for i in range(len(words) - n + 1):
                if tuple(words[i : i + n]) in self._grams[n - 1]:
                    return i
            return None
        for n in range(min(RUN_WORDS - 1, len(words)), 0, -1):
            if tuple(words[-n:]) in self._grams[n - 1]:
                return len(words) - n
        return None

    def _safe_end(self) -> int:
        """How much of the text can be shown: everything before what might start a repeat."""
        text = self._text
        end = len(text)
        for stop in self.stops:  # a partial stop sequence at the end
            for k in range(min(len(stop) - 1, len(text)), 0, -1):
                if stop.startswith(text[-k:]):
                    end = min(end, len(text) - k)
                    break
        lt = text.rfind("<")
        if lt >= 0 and ">" not in text[lt:] and len(text) - lt < 64:
            end = min(end, lt)  # maybe the start of corpus markup
        base = max(0, len(text) - 400)
        spans = [(base + w.start(), w.group().casefold()) for w in _WORD.finditer(text[base:])]
        if spans and spans[-1][0] + len(spans[-1][1]) == len(text):
            end = min(end, spans[-1][0])  # a word that may go on
            spans.pop()
        run = self._instruction_run([w for _, w in spans], full=False)
        if run is not None:
            end = min(end, spans[run][0])
        nl = text.rfind("\n")
        if nl >= 0:  # a line that starts like an earlier one may be its repeat
            current = _words(text[nl + 1 :])
            if current and text[-1:].isalnum():
                current.pop()  # a word that may go on
            earlier = [tuple(_words(line)) for line in text[max(0, nl - _TAIL) : nl].split("\n")]
            n = len(current)
            if any(len(key) >= max(LINE_WORDS, n + 1) and key[:n] == tuple(current) for key in earlier):
                end = min(end, nl + 1)
        return len(text[:end].rstrip())  # spaces are shown with the word after them


def _loop_start(words: list[str]) -> int | None:
    """Start of the second copy when the answer ends in one word sequence repeated: at least
    ``LOOP_TIMES`` copies and ``LOOP_MIN_WORDS`` words in all ("very very" passes)."""
    n = len(words)
    for p in range(1, 33):
        times = max(LOOP_TIMES, -(-LOOP_MIN_WORDS // p))
        if p * times > n:
            continue
        unit = words[n - p :]
        if all(words[n - k * p : n - (k - 1) * p] == unit for k in range(2, times + 1)):
            return n - (times - 1) * p
    return None


def _repeated_line(text: str) -> int | None:
    """Offset of the first complete line (``LINE_WORDS`` words or more) that repeats an earlier one."""
    seen: set[tuple[str, ...]] = set()
    pos = 0
    lines = text.split("\n")
    for line in lines[:-1]:  # the last line may still grow
        key = tuple(_words(line))
        if len(key) >= LINE_WORDS:
            if key in seen:
                return pos
            seen.add(key)
        pos += len(line) + 1
    return None
