"""packaging/llama_build.py with our kernels: which patches and sources go in, and a cache key that
changes with every kernel source and switch (so a cached wheel never hides a kernel change)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packaging"))
import llama_build


@pytest.fixture
def kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of engine/kernels with one patch in each band, used as the build's kernel folder."""
    root = tmp_path / "kernels"
    shutil.copytree(llama_build.KERNELS_DIR, root)
    for real in (root / "patches").glob("[12]*.patch"):  # the repository's own GPU patches
        real.unlink()
    for name in ("10-cuda-test.patch", "20-metal-test.patch"):
        (root / "patches" / name).write_text("")
    monkeypatch.setattr(llama_build, "KERNELS_DIR", root)
    for var in ("LONGDESK_OPS", "LONGDESK_METAL_OPS"):
        monkeypatch.delenv(var, raising=False)
    return root


def _args() -> list[str]:
    return llama_build.cmake_args_for(llama_build.load_recipe("cpu"))


def test_the_core_patch_and_cpu_kernels_are_in_every_build(kernels: Path) -> None:
    sw = llama_build.ops_switches("cpu")
    assert [p.name for p in llama_build._selected_patches(sw)] == ["00-core.patch"]
    assert llama_build._selected_kernel_dirs(sw) == ["cpu"]
    cuda = llama_build.ops_switches("cuda")
    assert [p.name for p in llama_build._selected_patches(cuda)] == ["00-core.patch", "10-cuda-test.patch"]


def test_metal_needs_its_switch(kernels: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGDESK_METAL_OPS", "on")
    names = [p.name for p in llama_build._selected_patches(llama_build.ops_switches("cpu"))]
    assert names == ["00-core.patch", "20-metal-test.patch"]


def test_cache_key_follows_kernel_sources(kernels: Path) -> None:
    before = llama_build.cache_key("cpu", _args(), sys.executable)
    assert "-ops" in before
    src = kernels / "cpu" / "longdesk-dsv4.c"
    src.write_text(src.read_text() + "\n// changed\n")
    after = llama_build.cache_key("cpu", _args(), sys.executable)
    assert after != before
    (kernels / "patches" / "00-core.patch").write_text("changed")
    assert llama_build.cache_key("cpu", _args(), sys.executable) not in {before, after}


def test_ops_off_builds_upstream_under_the_plain_key(kernels: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on = llama_build.cache_key("cpu", _args(), sys.executable)
    monkeypatch.setenv("LONGDESK_OPS", "off")
    off = llama_build.cache_key("cpu", _args(), sys.executable)
    assert off != on
    assert on.startswith(off + "-ops")
    assert llama_build._selected_patches(llama_build.ops_switches("cpu")) == []
