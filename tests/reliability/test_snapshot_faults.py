"""A process killed while it saves snapshots and checkpoints: what was saved before still loads."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from longdesk.engine.snapshots.store import SnapshotKey, SnapshotStore
from tests.reliability.conftest import Ledger

ROOT = Path(__file__).resolve().parents[2]

_SAVER = """
import sys, pathlib
from longdesk.engine.snapshots.store import SnapshotKey, SnapshotStore
folder = pathlib.Path(sys.argv[1])
key = SnapshotKey(model="m", model_name="model.gguf", build="b", settings="s", template="t",
                  tokens="f" * 64, n_tokens=1_000_000)
store = SnapshotStore(folder, budget_bytes=1 << 40)
print("saving", flush=True)
n = int(sys.argv[2])
while True:
    n += 1
    blob = n.to_bytes(8, "little") * (2 << 20)  # 16 MB, different for every checkpoint
    store.save(key, lambda p, b=blob: p.write_bytes(b), n_done=n * 1000)
"""


def _key() -> SnapshotKey:
    return SnapshotKey(
        model="m",
        model_name="model.gguf",
        build="b",
        settings="s",
        template="t",
        tokens="f" * 64,
        n_tokens=1_000_000,
    )


def test_kill_during_checkpoint_saves_keeps_a_loadable_checkpoint(tmp_path: Path, ledger: Ledger) -> None:
    rng = random.Random(7)
    store_dir = tmp_path / "snapshots"
    last_seen = 0
    for attempt in range(30):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(store_dir), str(last_seen // 1000)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "saving"
        time.sleep(rng.uniform(0.05, 0.3))  # a 16 MB save takes tens of ms: the kill lands in one
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        store = SnapshotStore(store_dir, budget_bytes=1 << 40)
        record = store.find(_key(), checkpoint=True)
        ok = False
        if record is not None:
            payload = store.verified_state(record).read_bytes()
            ok = payload[:8] == (record.n_done // 1000).to_bytes(8, "little") and record.n_done >= last_seen
            last_seen = record.n_done
        elif last_seen == 0:
            ok = True  # killed before the first checkpoint was complete: nothing was saved yet
        ledger.fault(lost=not ok, what=f"kill {attempt}: checkpoint {record} after {last_seen}")
        listing = sorted(p.name for p in store_dir.iterdir())
        assert ok, f"attempt {attempt}: the last saved checkpoint did not survive the kill: {listing}"
    assert last_seen > 0
