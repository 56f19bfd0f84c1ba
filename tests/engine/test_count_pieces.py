"""The DeepSeek count of a long text, taken in pieces, is exactly the count of the whole."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from longdesk.engine.backends.hosted_tokens import _deepseek_encoder, deepseek_counter, line_pieces


def _whole(text: str) -> int:
    return len(_deepseek_encoder().encode(text, add_special_tokens=False))


def test_pieces_cover_the_text_and_cut_only_before_a_line_that_starts_with_text() -> None:
    text = "a\n  indented\n\nword\n" * 5000 + "x" * 70_000 + "\ntail"
    pieces = list(line_pieces(text, size=4096))
    assert "".join(pieces) == text
    assert len(pieces) > 10
    for piece, after in itertools.pairwise(pieces):
        assert piece.endswith("\n")
        assert not after[0].isspace()


def test_counts_in_pieces_equal_the_count_of_the_whole() -> None:
    lib = Path(json.__file__).parents[1]
    code = "".join(p.read_text(encoding="utf-8") for p in sorted((lib / "json").glob("*.py")) * 2)
    prose = "In the beginning God created the heaven and the earth.\n  And the earth was void.\n" * 1000
    mixed = "Café — naïve 東京 ½\n\tdef f(x):\n\n\n        return x  # ok\n" * 2500
    count = deepseek_counter().count
    for text in (code, prose, mixed, code + prose + mixed):
        assert len(text) > 1 << 16  # long enough to be cut
        assert count(text) == _whole(text)


def test_release_drops_the_tokenizers_split_words_and_counts_stay_the_same() -> None:
    counter = deepseek_counter()
    text = "".join(f"word{i} and counted{i * 7}\n" for i in range(3000))
    before = counter.count(text)
    words = _deepseek_encoder()._tokenizer.bpe.cache  # the package's own cache of split words
    assert len(words) > 1000
    counter.release()
    assert len(words) == 0
    assert deepseek_counter().count(text + "x\n") == _whole(text + "x\n")
    assert before == _whole(text)
