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
from longdesk.engine.grounding import check_answer


@pytest.fixture(scope="module")
def count(default_model: Path) -> Iterator[object]:
    from longdesk.engine.backends.local import Tokenizer

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


class ReadingBackend:
    """A perfect reader over the packed text, behind the Backend protocol.

    A model that answers these questions cannot run here; this stand-in finds each answer in
    the text it was given (never in the harness's ground truth) and answers the way the citing
    contract asks, streamed in small pieces. The harness must then score 100%.
    """

    def __init__(self) -> None:
        self.text = ""

    def describe(self) -> object:
        from longdesk.engine.backends.base import BackendInfo

        return BackendInfo(name="reader", where="local", context_window=1 << 20)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def read(self, plan: object, on_event: object, cancelled: object) -> object:
        from longdesk.engine.backends.base import Reading

        self.text = plan.corpus_text  # type: ignore[attr-defined]
        return Reading(prefix_tokens=plan.prefix_tokens)  # type: ignore[attr-defined]

    def _place(self, at: int) -> tuple[str, str]:
        """Document id and place (verse label or line number) of character ``at``."""
        import re

        doc = re.findall(r'<doc id="(D\d+)"', self.text[:at])[-1]
        marker = list(re.finditer(r"^<(v [^>]+|L\d+)>$", self.text[:at], re.M))[-1]
        if marker[1].startswith("v "):  # ``<v Genesis 1>``, then one verse a line: ``3 And God said``
            verse = re.match(r"\d+", self.text[self.text.rfind("\n", 0, at) + 1 :])
            assert verse is not None
            return doc, f"{marker[1][2:]}:{verse[0]}"
        line = int(marker[1][1:]) + self.text[marker.end() + 1 : at].count("\n")
        return doc, f"line {line}"

    def _answer(self, question: str) -> str:
        import re

        if m := re.search(r"secret word of the ([\w ]+)\?", question):
            hit = re.search(rf"The secret word of the {m[1]} is (\w+)\.", self.text)
            assert hit is not None
            doc, place = self._place(hit.start())
            return f'It is {hit[1]}: "{hit[0]}" [{doc}, {place}].'
        if "ingredients" in question:
            parts = []
            for hit in re.finditer(r"Ingredient number \d of the keeper's bread is (\w+)\.", self.text):
                doc, place = self._place(hit.start())
                parts.append(f'{hit[1]} "{hit[0]}" [{doc}, {place}]')
            return "; ".join(parts)
        if m := re.search(r'contains the words "(.+)"\?', question):
            at = self.text.index(m[1])
            doc, place = self._place(at)
            return f'{place}: "{m[1]}" [{doc}, {place}]'
        if "passphrase" in question:
            hit = re.search(r'passphrase is "([\w-]+)"', self.text)
            assert hit is not None
            doc, place = self._place(hit.start())
            return f'{hit[1]} [{doc}, {place}]: "The deployment passphrase is"'
        m = re.search(r"function `(\w+)`", question)
        assert m is not None
        at = re.search(rf"^def {m[1]}\(", self.text, re.M)
        assert at is not None
        doc, place = self._place(at.start())
        return f'"def {m[1]}(" [{doc}, {place}]'

    def ask(self, reading, history, question, options, on_event, cancelled):  # type: ignore[no-untyped-def]
        from longdesk.engine.backends.base import AnswerDelta, Finished

        answer = self._answer(question)
        for i in range(0, len(answer), 3):
            on_event(AnswerDelta(answer[i : i + 3]))
        return Finished("stop")

    def close(self) -> None:
        pass


def test_harness_scores_a_perfect_reader_at_100_percent(tmp_path: Path) -> None:
    from bench.eval.run import OpenedSource, build_parser, run

    ns = build_parser().parse_args(["--lengths", "3k,12k", "--out", str(tmp_path)])
    results = run(OpenedSource(ReadingBackend()), ns, lambda _line: None)  # type: ignore[arg-type]
    assert {(r.corpus, r.length) for r in results} == {
        ("bible", 3072),
        ("code", 3072),
        ("bible", 12288),
        ("code", 12288),
    }
    assert len(results) == 2 * (7 + 4)
    for r in results:
        assert (r.answer_score, r.place_score) == (1.0, 1.0), (r.question, r.answer, r.verdicts)
        assert r.citations == r.valid > 0, r.verdicts
    md = table(results, "reader")
    assert "| 12K | code | " in md
    rows = [line for line in md.splitlines() if line.startswith("| 3K") or line.startswith("| 12K")]
    assert len(rows) == 4
    # Every percentage in the table (answers by task, valid citations, right place) is 100%.
    assert all("%" not in row.replace("100%", "") for row in rows), md
