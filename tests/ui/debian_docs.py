"""Real-world documents from Debian documentation packages, fetched at run time (never committed).

``apt-get download`` fetches the package into the user's cache folder once; ``dpkg-deb -x``
unpacks it beside. Tests that need one skip, saying why, where apt is missing or offline.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import platformdirs
import pytest


def debian_package(name: str) -> Path:
    """The unpacked tree of Debian package ``name`` (skips the test when it cannot be had)."""
    root = Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "debian-docs" / "polish"
    tree = root / name
    if (tree / ".complete").exists():
        return tree
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs apt-get and dpkg-deb to fetch a Debian documentation package")
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(
        ["apt-get", "download", name], cwd=debs, capture_output=True, text=True, timeout=300, check=False
    )
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        pytest.skip(f"could not fetch the Debian package {name}: {got.stderr.strip()[-300:]}")
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(tree)], check=True, timeout=300)
    (tree / ".complete").write_text("ok\n", encoding="utf-8")
    return tree
