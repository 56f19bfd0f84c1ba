"""Compile-check Longdesk's CUDA kernels against the vendored ggml-cuda, without a GPU.

1. The CUDA 13 toolkit from PyPI's NVIDIA wheels (nvcc, cicc, CCCL, cudart, cuBLAS headers) is
   installed once into a cache folder (``packaging/cuda_toolkit.py``, kind "compile", ~350 MB).
2. llama-cpp-python's sdist (cached) is unpacked into a scratch folder; engine/kernels/cuda/* is
   copied into ``ggml/src/ggml-cuda/`` as the real build does.
3. The patches are checked against that tree: core patches (``00-09``), when present, are applied,
   then the CUDA patches (``1*.patch``) and Metal patches (``2*.patch``) must apply on top; the
   CUDA and Metal patches must also apply to the unmodified tree.
4. Each ``.cu`` of ours is compiled for one architecture with ggml-cuda's own flags (those CMake
   gives its TUs, warnings as errors). When the core patches are present, the patched
   ``ggml-cuda.cu`` (the dispatch and supports_op cases) is compiled too.

Standard library only. Exit status 0 when everything compiled and applied.

    python3 packaging/cuda_check.py [--arch 90] [--jobs 2] [--no-dispatch]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cuda_toolkit

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "engine" / "kernels"  # --kernels overrides it (tests point it at a broken copy)

# The definitions and flags CMake gives every ggml-cuda TU (vendored ggml/src/ggml-cuda/CMakeLists.txt
# and ggml/src/CMakeLists.txt, read from `ninja -t commands` of a configured CUDA build).
GGML_CUDA_DEFINES = (
    "GGML_BACKEND_BUILD",
    "GGML_BACKEND_SHARED",
    "GGML_CUDA_NO_VMM",
    "GGML_CUDA_USE_GRAPHS",
    "GGML_SCHED_MAX_COPIES=4",
    "GGML_SHARED",
    "_GNU_SOURCE",
    "_XOPEN_SOURCE=600",
    "ggml_cuda_EXPORTS",
)
HOST_WARNINGS = (
    "-Wmissing-declarations -Wmissing-noreturn -Wall -Wextra -Wpedantic -Wcast-qual "
    "-Wno-unused-function -Wno-array-bounds -Wextra-semi -Wno-pedantic"
)


def nvcc_command(
    tk: cuda_toolkit.Toolkit, tree: Path, src: Path, out: Path, arch: str, werror: bool
) -> list[str]:
    cmd = [str(tk.nvcc), "-forward-unknown-to-host-compiler"]
    cmd += [f"-D{d}" for d in GGML_CUDA_DEFINES]
    cmd += [
        f"-I{tree / 'ggml' / 'src'}",
        f"-I{tree / 'ggml' / 'include'}",
        f"-I{tree / 'ggml' / 'src' / 'ggml-cuda'}",
        f"-isystem={tk.root / 'include'}",
        "-O3",
        "-DNDEBUG",
        f"--generate-code=arch=compute_{arch},code=[sm_{arch}]",
        "-Xcompiler=-fPIC",
        "-use_fast_math",
        "-extended-lambda",
        "-Xcompiler",
        HOST_WARNINGS + (" -Werror" if werror else ""),
        "-std=c++17",
    ]
    if werror:
        cmd += ["-Werror", "all-warnings"]
    cmd += ["-x", "cu", "-c", str(src), "-o", str(out)]
    return cmd


def _apply(tree: Path, patch: Path, check_only: bool) -> tuple[bool, str]:
    """Apply (or check) a patch whose paths are relative to the vendored llama.cpp tree; a patch
    written against the sdist's root (``vendor/llama.cpp/...`` paths) is accepted too."""
    cmd = ["git", "apply", "--whitespace=nowarn"] + (["--check"] if check_only else []) + [str(patch)]
    res = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
    if res.returncode != 0 and "vendor/llama.cpp/" in patch.read_text(errors="replace"):
        res = subprocess.run(cmd, cwd=tree.parent.parent, capture_output=True, text=True, check=False)
    return res.returncode == 0, (res.stderr or res.stdout).strip()


def check_patches(tree: Path, kernels: Path) -> tuple[list[str], bool]:
    """Apply/check the patches; return failure messages and whether core patches were applied."""
    patches = sorted((kernels / "patches").glob("*.patch"))
    core = [p for p in patches if p.name[:1] == "0"]
    ours = [p for p in patches if p.name[:1] in {"1", "2"}]
    failures: list[str] = []
    # ours on the unmodified tree
    for p in ours:
        ok, msg = _apply(tree, p, check_only=True)
        print(f"cuda_check: {p.name} on the unmodified tree: {'applies' if ok else 'FAILS'}", flush=True)
        if not ok:
            failures.append(f"{p.name} does not apply to the unmodified tree: {msg}")
    for p in core:
        ok, msg = _apply(tree, p, check_only=False)
        print(f"cuda_check: core {p.name}: {'applied' if ok else 'FAILS'}", flush=True)
        if not ok:
            failures.append(f"core patch {p.name} does not apply: {msg}")
            return failures, False
    for p in ours:
        is_cuda = p.name[:1] == "1"
        ok, msg = _apply(tree, p, check_only=not is_cuda)
        if core:
            print(
                f"cuda_check: {p.name} on top of the core patches: {'applies' if ok else 'FAILS'}", flush=True
            )
            if not ok:
                failures.append(f"{p.name} does not apply on top of the core patches: {msg}")
    return failures, bool(core)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="90", help="one compute capability, e.g. 90 (default) or 86")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-dispatch", action="store_true", help="skip compiling the patched ggml-cuda.cu")
    parser.add_argument("--no-werror", action="store_true", help="warnings do not fail the check")
    parser.add_argument("--kernels", type=Path, default=KERNELS, help="folder with cuda/ and patches/")
    ns = parser.parse_args(argv)
    kernels: Path = ns.kernels

    sources = sorted((kernels / "cuda").glob("*.cu"))
    if not sources:
        print(f"cuda_check: no .cu files under {kernels / 'cuda'}", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    tk = cuda_toolkit.ensure("compile")
    print(f"cuda_check: {tk.version()} at {tk.nvcc} ({time.monotonic() - t0:.0f} s)", flush=True)

    with tempfile.TemporaryDirectory(prefix="longdesk-cuda-check-") as tmp:
        tree = cuda_toolkit.unpack_sdist(Path(tmp))
        cuda_dir = tree / "ggml" / "src" / "ggml-cuda"
        for f in sorted((kernels / "cuda").iterdir()):
            if f.suffix in {".cu", ".cuh"}:
                shutil.copy2(f, cuda_dir / f.name)
        failures, core_applied = check_patches(tree, kernels)

        jobs: list[tuple[str, Path, bool]] = [(f.name, cuda_dir / f.name, not ns.no_werror) for f in sources]
        if core_applied and not ns.no_dispatch:
            # upstream's own file: its warnings are not ours to fail on
            jobs.insert(0, ("ggml-cuda.cu (patched)", cuda_dir / "ggml-cuda.cu", False))  # longest first
        elif not core_applied:
            print(
                "cuda_check: no core patch (00-09) present: ggml-cuda.cu's dispatch is not compiled",
                flush=True,
            )

        def compile_one(job: tuple[str, Path, bool]) -> tuple[str, int, float, str]:
            name, src, werror = job
            start = time.monotonic()
            out = Path(tmp) / (src.name + ".o")
            res = subprocess.run(
                nvcc_command(tk, tree, src, out, ns.arch, werror),
                capture_output=True,
                text=True,
                env=tk.env(),
                check=False,
            )
            return name, res.returncode, time.monotonic() - start, (res.stderr + res.stdout).strip()

        with ThreadPoolExecutor(max_workers=max(1, ns.jobs)) as pool:
            for name, rc, secs, log in pool.map(compile_one, jobs):
                status = "ok" if rc == 0 else "FAILED"
                print(f"cuda_check: compile {name} for sm_{ns.arch}: {status} ({secs:.1f} s)", flush=True)
                if rc != 0:
                    print(log, file=sys.stderr)
                    failures.append(f"{name} does not compile")

    print(f"cuda_check: done in {time.monotonic() - t0:.0f} s", flush=True)
    for f in failures:
        print(f"cuda_check: FAILURE: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
