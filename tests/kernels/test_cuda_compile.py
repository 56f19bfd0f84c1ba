"""Longdesk's CUDA kernels compile against the vendored ggml-cuda with PyPI's CUDA 13 toolkit.

No GPU here: this is the CI check that every ``engine/kernels/cuda/*.cu`` compiles for one
architecture with ggml-cuda's own flags (warnings are errors) and that the CUDA/Metal patches apply
to the vendored llama.cpp tree. Running the kernels is ``bench/gpu_ops.sh``'s job on a GPU machine.
The toolkit (~350 MB) and the sdist are installed once into ~/.cache/longdesk.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "packaging" / "cuda_check.py"
KERNELS = ROOT / "engine" / "kernels"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )


def test_every_cuda_kernel_of_ours_compiles_and_our_patches_apply() -> None:
    res = _run()
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    sources = sorted(p.name for p in (KERNELS / "cuda").glob("*.cu"))
    assert sources, "no CUDA kernels under engine/kernels/cuda"
    for name in sources:
        assert f"compile {name} for sm_90: ok" in res.stdout, out
    ours = sorted(p.name for p in (KERNELS / "patches").glob("*.patch") if p.name[:1] in {"1", "2"})
    assert "10-cuda.patch" in ours
    for name in ours:
        assert f"{name} on the unmodified tree: applies" in res.stdout, out


def test_a_kernel_that_does_not_compile_fails_the_check(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    (kernels / "cuda").mkdir(parents=True)
    (kernels / "patches").mkdir()
    src = KERNELS / "cuda" / "longdesk-sparse-attn.cu"
    shutil.copy2(KERNELS / "cuda" / "longdesk-sparse-attn.cuh", kernels / "cuda")
    # a kernel that reads a field the interface does not have
    broken = src.read_text().replace("a.n_head = (int) q->ne[1];", "a.n_head = (int) q->n_heads;", 1)
    assert broken != src.read_text()
    (kernels / "cuda" / src.name).write_text(broken)
    res = _run("--kernels", str(kernels), "--no-dispatch")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"compile {src.name} for sm_90: FAILED" in res.stdout
    assert "n_heads" in res.stderr  # nvcc's message reaches the log
