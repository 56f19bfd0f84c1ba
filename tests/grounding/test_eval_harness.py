"""The evaluation harness: haystacks of the right length with findable needles, scoring, plot."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.eval.haystack import bible_haystack, code_haystack
from bench.eval.plot import line_plot
from bench.eval.run import parse_length, score, table
from engine.grounding import check_answer


@pytest.fixture(scope="module")
def count(default_model: Path) -> Iterator[object]:
    from engine.backends.local import Tokenizer

    tok = Tokenizer(default_model)
    yield tok.count
    tok.close()


def test_lengths_parse() -> None:
    assert [parse_length(x) for x in ("4k", "32K", "1m", "1000")] == [4096, 32768, 1048576, 1000]


@pytest.mark.model
def test_bible_haystack_fits_its_length_and_answers_are_where_it_says(count: object) -> None:
    hay = bible_haystack(4096, count, 32768)  # type: ignore[arg-type]
    assert 4096 * 0.97 <= hay.plan.prefix_tokens <= 4096
    doc = hay.corpus.documents[0]
    tasks = [q.task for q in hay.questions]
    assert tasks == ["needle"] * 3 + ["multi_needle"] + ["locate"] * 3
    for q in hay.questions:
        if q.task == "needle":
            (verse,) = q.places
            assert q.expected[0] in doc.segments[verse - 1].text
            # An answer that quotes the needle and cites its verse scores full marks and verifies.
            label = doc.segments[verse - 1].anchor.label
            answer = f'The word is {q.expected[0]}: "the secret word of the" [{label}].'
            verdicts, summary = check_answer(answer, hay.corpus)
            assert summary.verified == 1, verdicts[0].reason
            assert score(q, answer, verdicts) == (1.0, 1.0)
            wrong = "The word is lantern [Genesis 1:1]."
            assert score(q, wrong, check_answer(wrong, hay.corpus)[0]) == (0.0, 0.0)
        if q.task == "locate":
            (verse,) = q.places
            assert doc.segments[verse - 1].anchor.label == q.expected[0]
    multi = hay.questions[3]
    assert all(item in hay.plan.corpus_text for item in multi.expected)
    half = f"{multi.expected[0]} and {multi.expected[1]}"
    assert score(multi, half, [])[0] == pytest.approx(2 / 3)


@pytest.mark.model
def test_code_haystack_plants_the_passphrase_on_the_stated_line(count: object) -> None:
    hay = code_haystack(8192, count, 32768)  # type: ignore[arg-type]
    assert 8192 * 0.97 <= hay.plan.prefix_tokens <= 8192
    needle = hay.questions[0]
    doc = hay.corpus.by_id(needle.doc_id)
    assert doc is not None
    line = doc.text.split("\n")[needle.places[0] - 1]
    assert needle.expected[0] in line
    answer = f'It is {needle.expected[0]} [{doc.name}, line {needle.places[0]}]: "{line.strip()}"'
    verdicts, summary = check_answer(answer, hay.corpus)
    assert summary.verified == 1, verdicts[0].reason
    assert score(needle, answer, verdicts) == (1.0, 1.0)
    for q in hay.questions[1:]:
        d = hay.corpus.by_id(q.doc_id)
        assert d is not None
        assert d.text.split("\n")[q.places[0] - 1].startswith(f"def {q.expected[0]}(")


def test_plot_is_a_valid_png(tmp_path: Path) -> None:
    path = tmp_path / "eval.png"
    line_plot(path, "EVAL", ["4K", "8K"], {"bible answer": [0.5, None], "citations valid": [1.0, 0.25]})
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (720, 400)
    (idat_len,) = struct.unpack(">I", data[33:37])
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == height * (1 + width * 3)
    assert raw.count(b"\x1f\x77\xb4") > 10  # the first series' colour was drawn


def test_table_lists_lengths_and_validity() -> None:
    from bench.eval.run import Result

    rows = [
        Result("bible", 4096, 4080, "needle", 0.1, "q", "a", 1.0, 1.0, 2, 1, 1.0),
        Result("bible", 4096, 4080, "locate", 0.2, "q", "a", 0.0, 0.0, 0, 0, 1.0),
    ]
    md = table(rows, "m.gguf")
    assert "| 4K | bible | 4,080 | 0 | 100% | – | 0% | 50% | 2 | 50% | 50% |" in md
