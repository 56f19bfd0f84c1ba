"""The DeepSeek count of a long text, taken in pieces, is exactly the count of the whole."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from longdesk.engine.backends import hosted_tokens
from longdesk.engine.backends.hosted_tokens import (
    CHILD_COUNT_MIN_CHARS,
    CountingChildren,
    _deepseek_encoder,
    count_pieces,
    deepseek_counter,
    line_pieces,
)
from longdesk.engine.isolation import Limits


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


def _long_text() -> str:
    lib = Path(json.__file__).parents[1]
    code = "".join(p.read_text(encoding="utf-8") for p in sorted((lib / "json").glob("*.py")))
    return (code + "Café — naïve 東京 ½\n\tdef f(x):\n\n\n        return x  # ok\n" * 300) * 4


def test_long_texts_are_counted_in_children_side_by_side_with_the_same_count() -> None:
    pieces = list(line_pieces(_long_text()))
    assert len(pieces) >= 4
    children = CountingChildren(2, idle_s=0)
    try:
        assert children.count(pieces) == count_pieces(pieces)
        assert [s.starts for s in children._sandboxes] == [1, 1]  # two children, both used
        assert children.fallbacks == 0
        assert children.count(pieces[:1]) == count_pieces(pieces[:1])  # one piece: one group
        assert children.count([]) == 0
    finally:
        children.close()
    assert children._sandboxes == []


def test_a_child_that_fails_costs_only_a_count_here() -> None:
    pieces = list(line_pieces(_long_text()))
    children = CountingChildren(2, idle_s=0, limits=Limits(wall_s=0.001))  # every call times out
    try:
        assert children.count(pieces) == count_pieces(pieces)
        assert children.fallbacks == 2
    finally:
        children.close()


def test_a_counter_sends_long_texts_to_the_children_and_short_ones_not() -> None:
    counter = deepseek_counter()
    text = _long_text()
    assert len(text) >= CHILD_COUNT_MIN_CHARS
    children = hosted_tokens._children()
    before = children.fallbacks
    assert counter.count(text) == _whole(text)
    assert children._sandboxes  # started for the long text
    assert children.fallbacks == before
    assert counter.count("short text\n") == _whole("short text\n")


def test_release_drops_the_tokenizers_split_words_and_counts_stay_the_same() -> None:
    counter = deepseek_counter()
    # Short texts: counted here, not in the children (whose words are theirs to keep).
    texts = ["".join(f"word{i}x{j} and counted{i * 7}\n" for i in range(400)) for j in range(5)]
    assert all(len(t) < CHILD_COUNT_MIN_CHARS for t in texts)
    before = [counter.count(t) for t in texts]
    words = _deepseek_encoder()._tokenizer.bpe.cache  # the package's own cache of split words
    assert len(words) > 1000
    counter.release()
    assert len(words) == 0
    assert [deepseek_counter().count(t + "x\n") for t in texts] == [_whole(t + "x\n") for t in texts]
    assert before == [_whole(t) for t in texts]
