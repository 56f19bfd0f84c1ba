"""The local backend on the real default model: read once, restore exactly, ask forever.

One model load (4K context) for the module; two corpora are prefilled once each into
"golden" snapshot folders that the tests copy, so that most tests restore instead of reading.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    Event,
    FailureKind,
    Finished,
    Progress,
    Reading,
    Turn,
    Usage,
)
from longdesk.engine.backends.local import LocalBackend, LocalSettings, inspect_model
from longdesk.engine.context.pack import pack
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.snapshots.store import SnapshotStore
from tests.ggufs import write_gguf

pytestmark = pytest.mark.model

QUESTION = "What colour is the kettle?"


@dataclass(frozen=True)
class Golden:
    """A corpus, the folder holding its snapshot, and the logits of the live prefill."""

    plan: ContextPlan
    folder: Path
    live_logits: np.ndarray
    prefix_tokens: int


@pytest.fixture(scope="module")
def backend(default_model: Path) -> Iterator[LocalBackend]:
    b = LocalBackend(default_model, LocalSettings(n_ctx=4096, checkpoint_interval_s=0))
    yield b
    b.close()


def make_golden(backend: LocalBackend, root: Path, lines: int) -> Golden:
    corpus = root / "corpus"
    corpus.mkdir()
    text = [
        f"Line {i}: the kettle in room {i} is blue, the oven in room {i} is broken." for i in range(lines)
    ]
    (corpus / "house.txt").write_text("\n".join(text) + "\n")
    plan = pack(load_sources([corpus]), backend.count_tokens, 4096)
    backend.store = SnapshotStore(root / "snapshots")
    reading = backend.read(plan, ignore, lambda: False)
    assert reading.detail["snapshot"] == "saved"
    logits = backend.probe_logits(backend.encoder.first_turn(QUESTION, backend._thinking))
    return Golden(plan, root / "snapshots", logits, reading.prefix_tokens)


@pytest.fixture(scope="module")
def big(backend: LocalBackend, tmp_path_factory: pytest.TempPathFactory) -> Golden:
    """~1.7K tokens: past the 512-token window + 512-token batch, so the window cache wraps."""
    return make_golden(backend, tmp_path_factory.mktemp("big"), 60)


@pytest.fixture(scope="module")
def small(backend: LocalBackend, tmp_path_factory: pytest.TempPathFactory) -> Golden:
    """~800 tokens: two prefill chunks."""
    return make_golden(backend, tmp_path_factory.mktemp("small"), 22)


def use_copy(backend: LocalBackend, golden: Golden | None, where: Path) -> SnapshotStore:
    if golden is not None:
        shutil.copytree(golden.folder, where)
    backend.store = SnapshotStore(where)
    return backend.store


def ignore(_event: Event) -> None:
    pass


def answer(
    backend: LocalBackend, reading: Reading, history: tuple[Turn, ...], question: str
) -> tuple[str, list[Event]]:
    events: list[Event] = []
    options = AskOptions(max_output_tokens=6)
    result = backend.ask(reading, history, question, options, events.append, lambda: False)
    assert isinstance(result, Finished), result
    return "".join(e.text for e in events if isinstance(e, AnswerDelta)), events


def probe(backend: LocalBackend) -> np.ndarray:
    return backend.probe_logits(backend.encoder.first_turn(QUESTION, backend._thinking))


def test_restored_snapshot_gives_the_same_logits_as_a_live_prefill(
    backend: LocalBackend, big: Golden, tmp_path: Path
) -> None:
    assert big.prefix_tokens > 1024
    use_copy(backend, big, tmp_path / "s")
    events: list[Event] = []
    reading = backend.read(big.plan, events.append, lambda: False)  # from the file on disk
    assert reading.restored
    assert [e.stage for e in events if isinstance(e, Progress)] == ["restore", "restore"]
    assert np.array_equal(probe(backend), big.live_logits)  # bit for bit


def test_follow_up_continues_in_place_and_a_new_thread_restores(
    backend: LocalBackend, big: Golden, tmp_path: Path
) -> None:
    use_copy(backend, big, tmp_path / "s")
    reading = backend.read(big.plan, ignore, lambda: False)
    assert reading.restored
    first, _ = answer(backend, reading, (), QUESTION)
    follow = "And the oven?"
    _, events = answer(backend, reading, (Turn(QUESTION, first),), follow)
    usage = next(e for e in events if isinstance(e, Usage))
    turn_tokens = len(backend.tokenize(backend.encoder.next_turn(follow, backend._thinking), special=True))
    # Only the follow-up's own tokens were evaluated; prefix, question and answer were kept.
    assert usage.prompt_tokens - usage.cached_tokens == turn_tokens
    assert usage.cached_tokens > reading.prefix_tokens
    assert [e.total for e in events if isinstance(e, Progress)][-1] == turn_tokens
    # A new thread on the same corpus starts from the corpus state: the same answer again.
    again, events = answer(backend, reading, (), QUESTION)
    assert again == first
    assert next(e for e in events if isinstance(e, Usage)).cached_tokens == reading.prefix_tokens


def test_cancelled_prefill_resumes_from_the_last_checkpoint(
    backend: LocalBackend, small: Golden, tmp_path: Path
) -> None:
    store = use_copy(backend, None, tmp_path / "s")
    settings = backend.settings
    # A checkpoint after every chunk, none on cancel (as after a crash or power loss).
    backend.settings = replace(settings, checkpoint_interval_s=1e-6, checkpoint_on_cancel=False)
    try:
        chunks: list[int] = []

        def count(event: Event) -> None:
            if isinstance(event, Progress) and event.stage == "prefill":
                chunks.append(event.done)

        with pytest.raises(BackendError) as info:
            backend.read(small.plan, count, lambda: len(chunks) >= 1)
        assert info.value.kind is FailureKind.CANCELLED
        assert [(r.complete, r.n_done) for _p, r in store.records()] == [(False, 512)]
        events: list[Event] = []
        reading = backend.read(small.plan, events.append, lambda: False)
    finally:
        backend.settings = settings
    assert reading.detail["resumed_from"] == 512
    prefill = [e for e in events if isinstance(e, Progress) and e.stage == "prefill"]
    assert [e.done for e in prefill] == [small.prefix_tokens]  # only the rest was read
    assert np.array_equal(probe(backend), small.live_logits)
    assert [r.complete for _p, r in store.records()] == [True]  # the checkpoint was replaced


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_snapshot_falls_back_to_reading(
    backend: LocalBackend, small: Golden, tmp_path: Path, damage: str
) -> None:
    store = use_copy(backend, small, tmp_path / "s")
    state = next(store.folder.glob("*.state"))
    data = bytearray(state.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 3 :]
    state.write_bytes(bytes(data))
    reading = backend.read(small.plan, ignore, lambda: False)
    assert not reading.restored
    assert "damaged" in str(reading.detail["snapshot_note"])
    assert reading.detail["snapshot"] == "saved"  # a good one replaced it
    assert np.array_equal(probe(backend), small.live_logits)


def test_a_snapshot_from_another_build_is_refused_with_the_reason(
    backend: LocalBackend, small: Golden, tmp_path: Path
) -> None:
    store = use_copy(backend, small, tmp_path / "s")
    record = next(store.folder.glob("*.json"))
    raw = json.loads(record.read_text())
    raw["key"]["build"] = "llama-cpp-python 0.3.20 (000000000000)"
    record.write_text(json.dumps(raw))
    reading = backend.read(small.plan, ignore, lambda: False)
    assert not reading.restored
    assert "another llama.cpp build (llama-cpp-python 0.3.20" in str(reading.detail["snapshot_note"])


def test_bad_model_files_are_clear_errors(tmp_path: Path, default_model: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    truncated = tmp_path / "truncated.gguf"
    with default_model.open("rb") as fh:
        truncated.write_bytes(fh.read(50_000_000))
    first = write_gguf(tmp_path / "split-00001-of-00002.gguf")
    odd = write_gguf(tmp_path / "odd.gguf", "notanarch")
    cases = [
        (corrupt, "unsupported GGUF version"),
        (truncated, "truncated"),
        (first, "missing shard split-00002-of-00002.gguf"),
        (odd, "unknown model architecture 'notanarch'"),
    ]
    for path, message in cases:
        with pytest.raises(BackendError, match=message) as info:
            LocalBackend(path)
        assert info.value.kind is FailureKind.BAD_INPUT
    # Passes the header checks but llama.cpp cannot build it (no vocabulary, no real tensors).
    with pytest.raises(BackendError, match="could not load") as info:
        LocalBackend(write_gguf(tmp_path / "hollow.gguf", "llama"), LocalSettings(n_ctx=512))
    assert info.value.kind is FailureKind.MODEL
    assert inspect_model(default_model).architecture == "gemma3"
