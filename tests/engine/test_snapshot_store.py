"""The snapshot folder: atomic writes, checksums, refusals with reasons, LRU within a budget."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from longdesk.engine.atomic import atomic_produce, atomic_write_bytes, remove_stale_temps
from longdesk.engine.snapshots.store import SnapshotError, SnapshotKey, SnapshotStore


def make_key(tokens: str = "t" * 64, n: int = 100, **kw: str) -> SnapshotKey:
    base = SnapshotKey(
        model="m1",
        model_name="model.gguf, 1,000 bytes",
        build="llama-cpp-python 0.3.36 (abc)",
        settings="type_k=f16 type_v=f16 flash_attn=1 swa_full=0 n_ubatch=512",
        template="tpl",
        tokens=tokens,
        n_tokens=n,
    )
    return replace(base, **kw)


def writer(payload: bytes):  # type: ignore[no-untyped-def]
    def write(path: Path) -> None:
        path.write_bytes(payload)

    return write


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "state.bin"
    atomic_write_bytes(target, b"old")

    def failing(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_produce(target, failing)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]  # no temporary left behind


def test_stale_temporaries_are_cleared(tmp_path: Path) -> None:
    (tmp_path / ".x.state.abc.tmp").write_bytes(b"torn")
    (tmp_path / "keep.state").write_bytes(b"ok")
    assert remove_stale_temps(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.state"]


def test_save_find_verify_round_trip(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    key = make_key()
    record = store.save(key, writer(b"x" * 1000), n_done=100, seconds_to_make=12.5)
    assert record.complete
    assert record.payload_bytes == 1000
    found = store.find(key)
    assert found == record
    assert store.verified_state(found).read_bytes() == b"x" * 1000
    assert store.find(make_key(tokens="u" * 64)) is None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:500]), "truncated"),
        (lambda p: p.write_bytes(b"y" + p.read_bytes()[1:]), "checksum mismatch"),
        (lambda p: p.unlink(), "missing"),
    ],
)
def test_damaged_state_is_refused_and_removed(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    store = SnapshotStore(tmp_path)
    key = make_key()
    record = store.save(key, writer(b"x" * 1000), n_done=100)
    damage(store.payload_of(store.find(key)))  # type: ignore[arg-type]
    with pytest.raises(SnapshotError, match=message):
        store.verified_state(record)
    assert store.find(key) is None  # the next reading makes a fresh one


def test_unreadable_record_is_dropped(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    key = make_key()
    store.save(key, writer(b"x"), n_done=100)
    store.record_path(key).write_bytes(b"{not json")
    assert store.find(key) is None
    assert not store.record_path(key).exists()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("model", "m2", "another model file"),
        ("build", "llama-cpp-python 0.3.35 (def)", "another llama.cpp build"),
        ("settings", "type_k=q8_0 type_v=q8_0 flash_attn=1 swa_full=0 n_ubatch=512", "other load settings"),
        ("template", "tpl2", "another chat template"),
    ],
)
def test_a_state_from_another_model_or_build_is_refused_with_the_reason(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    store = SnapshotStore(tmp_path)
    theirs = make_key(**{field: value})
    store.save(theirs, writer(b"x" * 10), n_done=100)
    ours = make_key()
    # Content addressing: the other state simply is not found under our digest ...
    assert store.find(ours) is None
    # ... and the miss is explained.
    assert reason in store.explain_miss(ours)
    # A record copied under our digest (e.g. from another machine) is refused by name.
    store.record_path(theirs).replace(store.record_path(ours))
    with pytest.raises(SnapshotError, match=reason):
        store.find(ours)


def test_checkpoint_is_replaced_and_removed_by_the_complete_state(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    key = make_key(n=300)
    store.save(key, writer(b"a" * 10), n_done=100)
    store.save(key, writer(b"b" * 20), n_done=200)
    ckpt = store.find(key, checkpoint=True)
    assert ckpt is not None
    assert (ckpt.n_done, ckpt.complete) == (200, False)
    assert store.find(key) is None
    store.save(key, writer(b"c" * 30), n_done=300)
    assert store.find(key, checkpoint=True) is None
    assert not list(tmp_path.glob("*.ckpt*.state"))
    done = store.find(key)
    assert done is not None
    assert done.complete


def test_least_recently_used_states_are_evicted_to_fit_the_budget(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, budget_bytes=6000)
    keys = [make_key(tokens=str(i) * 64) for i in range(3)]
    for i, key in enumerate(keys):
        store.save(key, writer(b"x" * 1000), n_done=100)
        rec = store.record_path(key)
        os.utime(rec, (1000 + i, 1000 + i))
    first = store.find(keys[0])
    assert first is not None
    store.verified_state(first)  # using it makes it the most recent
    store.save(make_key(tokens="new" * 20), writer(b"x" * 1000), n_done=100)
    assert store.find(keys[0]) is not None
    assert store.find(keys[1]) is None  # the least recently used went first
    assert store.find(keys[2]) is not None
    assert store.usage() <= 6000


def test_orphan_payload_from_an_interrupted_save_is_removed(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    orphan = tmp_path / ("0" * 40 + ".state")
    orphan.write_bytes(b"no record was ever written")
    store.evict()
    assert not orphan.exists()
