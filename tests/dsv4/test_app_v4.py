"""A tiny DeepSeek-V4 file runs through the local backend and `longdesk ask`, in every thinking mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    Event,
    Finished,
    Progress,
    ThinkingDelta,
    ThinkingMode,
)
from longdesk.engine.context.plan import Budget, ContextPlan
from longdesk.engine.dsv4.encoding import THINK_MAX_MIN_CONTEXT, effort_preamble
from longdesk.engine.dsv4.tiny_gguf import write_tiny_v4
from tests.app.test_cli import longdesk

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tiny_v4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_v4(tmp_path_factory.mktemp("v4") / "tiny-v4.gguf")


def _plan() -> ContextPlan:
    text = "<doc id=1>The gate is painted green.</doc>"
    return ContextPlan("Answer from the documents.", (text,), 20, (), Budget(context_window=2048, prefix=20))


def test_backend_offers_modes_and_streams_thinking_apart(tiny_v4: Path) -> None:
    from longdesk.engine.backends.local import LocalBackend, LocalSettings

    backend = LocalBackend(tiny_v4, LocalSettings(n_ctx=2048, n_threads=2))
    try:
        info = backend.describe()
        assert info.architecture == "deepseek4"
        assert info.thinking_modes == (ThinkingMode.OFF, ThinkingMode.HIGH, ThinkingMode.MAX)
        assert any(f"{THINK_MAX_MIN_CONTEXT:,}" in n for n in info.notes)
        # The V4 markers are single tokens of the vocabulary, so the prompt is what the model saw in training.
        assert backend.tokenize("<｜Assistant｜><think>", special=True) == [3, 5]

        events: list[Event] = []
        reading = backend.read(_plan(), events.append, lambda: False)
        plain_prefix = reading.prefix_tokens
        by_mode: dict[ThinkingMode, list[Event]] = {}
        off_answers: list[str] = []
        # OFF first runs on the live state, then on restored snapshots (V4 state cannot be
        # truncated, so restore is the only reuse); MAX re-reads, the last OFF reads back.
        for mode in (
            ThinkingMode.OFF,
            ThinkingMode.OFF,
            ThinkingMode.HIGH,
            ThinkingMode.MAX,
            ThinkingMode.OFF,
        ):
            got: list[Event] = []
            options = AskOptions(mode, 12)
            result = backend.ask(reading, (), "What colour is the gate?", options, got.append, lambda: False)
            assert isinstance(result, Finished), result
            by_mode[mode] = got
            if mode is ThinkingMode.MAX:  # its preamble sits before the corpus: the prefix was read again
                assert reading.prefix_tokens - plain_prefix == len(backend.tokenize(effort_preamble("max")))
                assert any(isinstance(e, Progress) for e in got)
            else:
                assert reading.prefix_tokens == plain_prefix
            if mode is ThinkingMode.OFF:
                off_answers.append("".join(e.text for e in got if isinstance(e, AnswerDelta)))
        assert off_answers[0]
        assert off_answers == [off_answers[0]] * 3  # live, restored and re-read states agree
        off = [e for e in by_mode[ThinkingMode.OFF] if isinstance(e, AnswerDelta | ThinkingDelta)]
        assert off
        assert all(isinstance(e, AnswerDelta) for e in off)
        high = [e for e in by_mode[ThinkingMode.HIGH] if isinstance(e, AnswerDelta | ThinkingDelta)]
        assert high
        assert isinstance(high[0], ThinkingDelta)
        first_answer = next((i for i, e in enumerate(high) if isinstance(e, AnswerDelta)), len(high))
        assert all(isinstance(e, AnswerDelta) for e in high[first_answer:])
    finally:
        backend.close()


def test_restored_v4_state_gives_the_live_logits_with_the_reduced_window_cache(
    tiny_v4: Path, tmp_path: Path
) -> None:
    """Read a prefix long enough for the raw-window cache to wrap, in several chunks; a fresh
    process-like backend restores it from disk and sees the same next-token logits, bit for bit.
    The window cache stays reduced (window + ubatch rows): at 1M tokens the full-size one would
    cost DeepSeek-V4-Flash 43 GiB."""
    import numpy as np

    from longdesk.engine.backends.local import LocalBackend, LocalSettings
    from longdesk.engine.snapshots.store import SnapshotStore

    words = " ".join(f"gate {i} is painted colour {i % 11}." for i in range(140))
    text = f"<doc id=1>{words}</doc>"
    plan = ContextPlan("Answer from the documents.", (text,), 0, (), Budget(context_window=4096, prefix=0))
    settings = LocalSettings(n_ctx=4096, n_threads=2, n_batch=256, n_ubatch=256, checkpoint_interval_s=0)
    question = "What colour is gate 7?"

    live = LocalBackend(tiny_v4, settings)
    try:
        assert live.settings.swa_full is False
        window = live.header.arch_int("attention.sliding_window")
        live.store = SnapshotStore(tmp_path / "snapshots")
        reading = live.read(plan, lambda _e: None, lambda: False)
        assert reading.prefix_tokens > 4 * (window + 256)  # the window cache wrapped several times
        assert reading.detail["snapshot"] == "saved"
        expected = live.probe_logits(live.encoder.first_turn(question, live._thinking))
    finally:
        live.close()

    again = LocalBackend(tiny_v4, settings)
    try:
        again.store = SnapshotStore(tmp_path / "snapshots")
        restored = again.read(plan, lambda _e: None, lambda: False)
        assert restored.restored
        got = again.probe_logits(again.encoder.first_turn(question, again._thinking))
    finally:
        again.close()
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("mode", ["high"])
def test_longdesk_ask_streams_with_each_thinking_mode(
    tiny_v4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("LONGDESK_HOME", str(tmp_path / "home"))
    (tmp_path / "book.txt").write_text("The gate is painted green.\n")
    r = longdesk(
        "ask",
        str(tmp_path / "book.txt"),
        "-q",
        "Gate colour?",
        "--model",
        str(tiny_v4),
        "--thinking",
        mode,
        "--max-tokens",
        "8",
    )
    assert r.returncode == 0, r.stderr
    assert "8 tokens in" in r.stderr  # generated and streamed (reasoning goes to stderr)
    assert "read " in r.stderr


def test_thinking_mode_the_model_lacks_is_refused(
    default_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGDESK_HOME", str(tmp_path / "home"))
    (tmp_path / "book.txt").write_text("The gate is painted green.\n")
    r = longdesk(
        "ask", str(tmp_path / "book.txt"), "-q", "Gate?", "--model", str(default_model), "--thinking", "max"
    )
    assert r.returncode != 0
    assert "has no thinking mode 'max'" in r.stderr
