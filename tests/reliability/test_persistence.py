"""Crash-safe persistence: a killed writer, a full disk and a corrupt file lose nothing saved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from longdesk.app.settings import SETTINGS_FILE, Settings, load_settings, save_settings
from longdesk.engine.atomic import atomic_write_bytes
from tests.reliability.conftest import Ledger

ROOT = Path(__file__).resolve().parents[2]

_WRITER = """
import sys, pathlib
from longdesk.engine.atomic import atomic_write_bytes
target = pathlib.Path(sys.argv[1])
blob = b"N" * (64 * 1024 * 1024)
print("writing", flush=True)
while True:
    atomic_write_bytes(target, blob)
"""

_FSIZE_WRITER = """
import resource, signal, sys, pathlib
from longdesk.engine.atomic import atomic_write_bytes
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))
try:
    atomic_write_bytes(pathlib.Path(sys.argv[1]), b"Z" * (4 * 1024 * 1024))
except OSError as exc:
    print("refused:", exc.strerror)
    sys.exit(3)
sys.exit(0)
"""


def test_writer_killed_mid_write_leaves_the_previous_file(tmp_path: Path, ledger: Ledger) -> None:
    target = tmp_path / "session.json"
    previous = json.dumps({"turns": ["q1", "a1"]}).encode()
    atomic_write_bytes(target, previous)
    for delay in (0.05, 0.2, 0.5):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        data = target.read_bytes()
        intact = data == previous or data == b"N" * (64 * 1024 * 1024)
        ledger.fault(lost=not intact, what=f"kill after {delay} s left {len(data)} bytes")
        assert intact
        atomic_write_bytes(target, previous)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "session.json"]
    # A killed writer may leave its temporary file; it never replaces the real one.
    assert all(name.startswith(".session.json.") for name in leftovers)


def test_full_disk_keeps_the_previous_file(tmp_path: Path, ledger: Ledger) -> None:
    target = tmp_path / "settings.json"
    atomic_write_bytes(target, b'{"ok": true}')
    r = subprocess.run(
        [sys.executable, "-c", _FSIZE_WRITER, str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    ledger.fault(lost=target.read_bytes() != b'{"ok": true}', what="write past the file-size limit")
    assert r.returncode == 3, r.stderr
    assert "refused: File too large" in r.stdout
    assert target.read_bytes() == b'{"ok": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\x00\xff\xfe garbage", b"[1, 2, 3]", b'{"n_threads": "many"}', b'{"models_dir": 5}'],
)
def test_corrupt_settings_are_kept_aside_and_defaults_used(
    tmp_path: Path, content: bytes, ledger: Ledger
) -> None:
    (tmp_path / SETTINGS_FILE).write_bytes(content)
    settings, warning = load_settings(tmp_path)
    ledger.hostile(named="kept aside" in warning, what=f"settings {content[:20]!r}")
    assert settings == Settings()
    assert "kept aside as settings.json.corrupt-1" in warning
    assert (tmp_path / "settings.json.corrupt-1").read_bytes() == content
    save_settings(tmp_path, Settings(n_threads=3))
    assert load_settings(tmp_path) == (Settings(n_threads=3), "")


def test_settings_from_a_newer_version_keep_what_we_know(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"n_threads": 4, "future_key": {"x": 1}}))
    assert load_settings(tmp_path) == (Settings(n_threads=4), "")


def test_unreadable_settings_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        (tmp_path / SETTINGS_FILE).mkdir()  # root reads any file; a folder cannot be read as one
    else:
        (tmp_path / SETTINGS_FILE).write_text("{}")
        (tmp_path / SETTINGS_FILE).chmod(0)
    settings, warning = load_settings(tmp_path)
    assert settings == Settings()
    assert "using defaults" in warning
