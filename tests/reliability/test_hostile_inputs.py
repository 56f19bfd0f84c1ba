"""Hostile files dropped together with good ones: each bad file costs one entry, never the app.

The whole folder goes through ``longdesk inspect`` as a user runs it. Every good document must
be read and counted; every hostile file must be listed once with a reason that names its
problem; the process must neither crash nor hang; nothing is written outside the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability import hostile
from tests.reliability.conftest import Ledger

ROOT = Path(__file__).resolve().parents[2]

# file name -> words its reason must contain
EXPECTED = {
    "truncated.pdf": ("damaged (repaired by the reader): no text recovered",),
    "garbage.pdf": ("corrupt or unreadable pdf",),
    "deep-nesting.pdf": ("damaged (repaired by the reader)",),
    "cyclic-outline.pdf": ("damaged (repaired by the reader)",),
    "encrypted.pdf": ("password required",),
    "scanned.pdf": ("no text layer (scanned?)",),
    "broken.epub": ("corrupt or unreadable epub",),
    "bomb.zip!zeros-0.txt": ("compression ratio", "zip bomb"),
    "traversal.zip!../../escaped.txt": ("leaves the archive",),
    "traversal.zip!/etc/absolute.txt": ("absolute path",),
    "traversal.zip!link-to-passwd": ("link",),
    "traversal.tar.gz!../evil.txt": ("leaves the archive",),
    "traversal.tar.gz!sym": ("link",),
    "one-line.txt": ("very long lines",),
    "looks-like-text.md": ("binary",),
    "pipe.txt": ("not a regular file",),
    "passwd-link.txt": ("symbolic link", "not followed"),
}


@pytest.mark.slow
def test_hostile_folder_costs_one_entry_per_bad_file(
    tmp_path: Path, longdesk_home: Path, ledger: Ledger
) -> None:
    folder = tmp_path / "dropped"
    folder.mkdir()
    for make in (
        hostile.good_pdf,
        hostile.truncated_pdf,
        hostile.garbage_pdf,
        hostile.deep_nesting_pdf,
        hostile.cyclic_outline_pdf,
        hostile.encrypted_pdf,
        hostile.scanned_pdf,
        hostile.broken_epub,
        hostile.zip_bomb,
        hostile.traversal_zip,
        hostile.traversal_tar,
        hostile.long_single_line,
        hostile.binary_with_text_extension,
        hostile.fifo,
        hostile.symlink_out_of_root,
    ):
        make(folder)
    (folder / "notes.txt").write_text("Plain notes about the harbour and its lighthouse.\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    exe = Path(sys.executable).with_name("longdesk")
    try:  # a hang fails at the timeout (and is counted as one), never by a clock in the test
        r = subprocess.run(
            [str(exe), "inspect", str(folder)],
            capture_output=True,
            text=True,
            timeout=240,
            env=os.environ.copy(),
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        for _ in EXPECTED:
            ledger.hostile(hung=True, what="longdesk inspect on the hostile folder hung")
        raise
    crashed = r.returncode != 0
    out = r.stdout
    for name, words in EXPECTED.items():
        lines = [ln for ln in out.splitlines() if f"{folder}/{name}:" in ln]
        named = len(lines) == 1 and all(w in lines[0].lower() for w in words)
        ledger.hostile(crashed=crashed, named=named, what=f"{name}: {lines or 'not listed'}")
    assert not crashed, r.stderr
    # Every good document is read and counted.
    good = next(ln for ln in out.splitlines() if "dropped/good.pdf" in ln)
    assert "3 pages" in good
    assert "dropped/notes.txt" in out
    assert "traversal.zip!fine/inside.txt" in out
    assert "traversal.tar.gz!ok/readme.txt" in out
    for name, words in EXPECTED.items():
        lines = [ln for ln in out.splitlines() if f"{folder}/{name}:" in ln]
        assert len(lines) == 1, (name, out)
        assert all(w in lines[0].lower() for w in words), lines[0]
    # Archive members are never extracted: nothing new appeared anywhere under tmp_path.
    after = sorted(p.name for p in tmp_path.rglob("*"))
    new = set(after) - set(before)
    assert not {"escaped.txt", "absolute.txt", "evil.txt"} & new
