"""The local backend on the real default model: read once, restore exactly, ask forever."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    Event,
    FailureKind,
    Finished,
    Progress,
    Turn,
    Usage,
)
from engine.backends.local import LocalBackend, LocalSettings, inspect_model
from engine.context.pack import pack
from engine.context.plan import ContextPlan
from engine.corpus.load import load_sources
from engine.snapshots.store import SnapshotStore
from tests.ggufs import write_gguf

pytestmark = pytest.mark.model

QUESTION = "What colour is the kettle?"


@pytest.fixture(scope="module")
def backend(default_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    snaps = tmp_path_factory.mktemp("snapshots")
    b = LocalBackend(default_model, LocalSettings(n_ctx=4096, snapshot_dir=snaps, checkpoint_interval_s=0))
    yield b
    b.close()


@pytest.fixture(scope="module")
def plan(backend: LocalBackend, tmp_path_factory: pytest.TempPathFactory) -> ContextPlan:
    folder = tmp_path_factory.mktemp("corpus")
    lines = [f"Line {i}: the kettle in room {i} is blue, the oven in room {i} is broken." for i in range(60)]
    (folder / "house.txt").write_text("\n".join(lines) + "\n")
    return pack(load_sources([folder]), backend.count_tokens, 4096)


def fresh_store(backend: LocalBackend, folder: Path) -> SnapshotStore:
    backend.store = SnapshotStore(folder)
    return backend.store


def answer(backend: LocalBackend, reading, history, question: str) -> tuple[str, list[Event]]:  # type: ignore[no-untyped-def]
    events: list[Event] = []
    result = backend.ask(reading, history, question, AskOptions(max_output_tokens=12), events.append, lambda: False)
    assert isinstance(result, Finished), result
    return "".join(e.text for e in events if isinstance(e, AnswerDelta)), events


def test_restored_snapshot_gives_the_same_logits_as_a_live_prefill(
    backend: LocalBackend, plan: ContextPlan, tmp_path: Path
) -> None:
    store = fresh_store(backend, tmp_path)
    live = backend.read(plan, lambda e: None, lambda: False)
    assert not live.restored
    assert live.detail["snapshot"] == "saved"
    assert live.prefix_tokens > 1024  # longer than window + ubatch: the window cache has wrapped
    suffix = backend.encoder.first_turn(QUESTION, backend._thinking)
    live_logits = backend.probe_logits(suffix)
    events: list[Event] = []
    restored = backend.read(plan, events.append, lambda: False)  # from the file on disk
    assert restored.restored
    assert [e.stage for e in events if isinstance(e, Progress)] == ["restore", "restore"]
    restored_logits = backend.probe_logits(suffix)
    assert np.array_equal(live_logits, restored_logits)  # bit for bit
    assert len(list(store.records())) == 1


def test_follow_up_continues_in_place_and_a_new_thread_restores(
    backend: LocalBackend, plan: ContextPlan, tmp_path: Path
) -> None:
    fresh_store(backend, tmp_path)
    reading = backend.read(plan, lambda e: None, lambda: False)
    first, _ = answer(backend, reading, (), QUESTION)
    history = (Turn(QUESTION, first),)
    follow = "And the oven?"
    _, events = answer(backend, reading, history, follow)
    usage = next(e for e in events if isinstance(e, Usage))
    turn_tokens = len(backend.tokenize(backend.encoder.next_turn(follow, backend._thinking), special=True))
    # Only the follow-up's own tokens were evaluated; prefix, question and answer were kept.
    assert usage.prompt_tokens - usage.cached_tokens == turn_tokens
    assert usage.cached_tokens > reading.prefix_tokens
    evaluated = [e for e in events if isinstance(e, Progress)]
    assert evaluated[-1].total == turn_tokens
    # A new thread on the same corpus starts from the corpus state: the same answer again.
    again, events = answer(backend, reading, (), QUESTION)
    assert again == first
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.cached_tokens == reading.prefix_tokens


def test_cancelled_prefill_resumes_from_the_last_checkpoint(
    backend: LocalBackend, plan: ContextPlan, tmp_path: Path
) -> None:
    fresh_store(backend, tmp_path / "reference")
    backend.read(plan, lambda e: None, lambda: False)
    reference = backend.probe_logits(backend.encoder.first_turn(QUESTION, backend._thinking))

    store = fresh_store(backend, tmp_path / "resume")
    chunks = {"n": 0}

    def cancel_after_two_chunks(event: Event) -> None:
        if isinstance(event, Progress) and event.stage == "prefill":
            chunks["n"] += 1

    with pytest.raises(BackendError) as info:
        backend.read(plan, cancel_after_two_chunks, lambda: chunks["n"] >= 2)
    assert info.value.kind is FailureKind.CANCELLED
    records = [r for _p, r in store.records()]
    assert [(r.complete, r.n_done) for r in records] == [(False, 1024)]
    events: list[Event] = []
    reading = backend.read(plan, events.append, lambda: False)
    assert reading.detail["resumed_from"] == 1024
    prefill = [e for e in events if isinstance(e, Progress) and e.stage == "prefill"]
    assert prefill[0].done > 1024  # nothing before the checkpoint was read again
    assert np.array_equal(backend.probe_logits(backend.encoder.first_turn(QUESTION, backend._thinking)), reference)
    assert [r.complete for _p, r in store.records()] == [True]  # the checkpoint was replaced


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_snapshot_falls_back_to_reading(
    backend: LocalBackend, plan: ContextPlan, tmp_path: Path, damage: str
) -> None:
    store = fresh_store(backend, tmp_path)
    backend.read(plan, lambda e: None, lambda: False)
    state = next(store.folder.glob("*.state"))
    data = bytearray(state.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 3 :]
    state.write_bytes(bytes(data))
    reading = backend.read(plan, lambda e: None, lambda: False)
    assert not reading.restored
    assert "damaged" in str(reading.detail["snapshot_note"])
    assert reading.detail["snapshot"] == "saved"  # a good one replaced it
    assert backend.read(plan, lambda e: None, lambda: False).restored


def test_a_snapshot_from_another_build_is_refused_with_the_reason(
    backend: LocalBackend, plan: ContextPlan, tmp_path: Path
) -> None:
    store = fresh_store(backend, tmp_path)
    backend.read(plan, lambda e: None, lambda: False)
    record = next(store.folder.glob("*.json"))
    raw = json.loads(record.read_text())
    raw["key"]["build"] = "llama-cpp-python 0.3.20 (000000000000)"
    record.write_text(json.dumps(raw))
    reading = backend.read(plan, lambda e: None, lambda: False)
    assert not reading.restored
    assert "another llama.cpp build (llama-cpp-python 0.3.20" in str(reading.detail["snapshot_note"])


def test_bad_model_files_are_clear_errors(tmp_path: Path, default_model: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(default_model.read_bytes()[: 50_000_000])
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
