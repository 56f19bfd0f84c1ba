"""The CUDA toolkit from PyPI's NVIDIA wheels, so CUDA code compiles on a machine without a GPU.

The CUDA 13 split wheels together make a working ``nvcc`` (``nvidia-cuda-nvcc``: nvcc, cudafe++,
ptxas, fatbinary, nvlink; ``nvidia-nvvm``: cicc; ``nvidia-cuda-crt``, ``nvidia-cuda-runtime``,
``nvidia-cuda-cccl``: headers and libcudart). ggml-cuda also includes ``cublas_v2.h`` and, for a
real build, links libcublas: ``nvidia-cublas`` (a 444 MB wheel). The 12.x ``nvidia-cuda-nvcc-cu12``
wheel holds only ptxas and cannot compile.

Two installs, each kept in a cache folder and made once:

* ``compile``: the toolkit plus cuBLAS *headers* only (taken out of the cuBLAS wheel, which is then
  deleted) -- enough to compile any ggml-cuda file (``packaging/cuda_check.py``);
* ``full``: the toolkit plus all of cuBLAS -- what ``ACCEL=cuda`` builds llama-cpp-python with.

Neither needs libcuda.so: the CUDA build uses ``GGML_CUDA_NO_VMM=ON`` (otherwise ggml-cuda links the
driver library, which no wheel ships) and an explicit ``CMAKE_CUDA_ARCHITECTURES`` (the default,
``native``, needs a visible GPU).

Standard library only. ``llama_build.py`` calls :func:`cmake_args_for_recipe` for recipes that set
``cuda_toolkit = "pypi"``.

    python packaging/cuda_toolkit.py install [--full]      # install (cached), print the nvcc path
    python packaging/cuda_toolkit.py configure-check       # CMake configure of the CUDA variant + 2 TUs
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Pinned: a toolkit that is known to compile ggml-cuda (13.5 nvcc with CCCL 3.3, cuBLAS 13.10).
TOOLKIT_PACKAGES: tuple[str, ...] = (
    "nvidia-cuda-nvcc==13.5.37",
    "nvidia-nvvm==13.5.37",
    "nvidia-cuda-crt==13.5.37",
    "nvidia-cuda-runtime==13.5.37",
    "nvidia-cuda-cccl==13.3.5.0.6",
)
CUBLAS_PACKAGE = "nvidia-cublas==13.10.0.20"
# Installed beside a CUDA build of llama-cpp-python: the libraries it needs at run time
# (libcudart, libcublas, libcublasLt in nvidia/cu13/lib; longdesk.engine.llama_libs loads them).
RUNTIME_PACKAGES = ("nvidia-cuda-runtime==13.5.37", CUBLAS_PACKAGE)

# The architectures llama-cpp-python's own CUDA 13 wheels are built for (its build-wheels-cuda
# workflow): Turing to Hopper as real code, plus Hopper PTX that newer GPUs JIT-compile.
DEFAULT_ARCHITECTURES = "75-real;80-real;86-real;89-real;90-real;90-virtual"
ARCHS_ENV = "LONGDESK_CUDA_ARCHS"

LLAMA_CPP_PYTHON_VERSION = "0.3.36"


def default_cache_dir() -> Path:
    """Where the toolkit installs are kept; ``LONGDESK_CUDA_CACHE`` overrides it."""
    env = os.environ.get("LONGDESK_CUDA_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "longdesk" / "cuda"


@dataclass(frozen=True)
class Toolkit:
    """One installed toolkit: ``root`` is the wheels' ``nvidia/cu13`` folder."""

    root: Path

    @property
    def nvcc(self) -> Path:
        return self.root / "bin" / "nvcc"

    @property
    def include_dirs(self) -> list[Path]:
        return [self.root / "include", self.root / "include" / "cccl"]

    @property
    def lib_dir(self) -> Path:
        return self.root / "lib"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment in which CMake and nvcc find this toolkit."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["CUDACXX"] = str(self.nvcc)
        env["CUDAToolkit_ROOT"] = str(self.root)
        ld = env.get("LD_LIBRARY_PATH", "")
        env["LD_LIBRARY_PATH"] = f"{self.lib_dir}{os.pathsep}{ld}" if ld else str(self.lib_dir)
        return env

    def version(self) -> str:
        out = subprocess.run([str(self.nvcc), "--version"], capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]


def _tag(kind: str) -> str:
    material = "\n".join([kind, *TOOLKIT_PACKAGES, CUBLAS_PACKAGE])
    return f"{kind}-{hashlib.sha256(material.encode()).hexdigest()[:12]}"


def _pip(python: str, *args: str) -> None:
    cmd = [python, "-m", "pip", *args, "--disable-pip-version-check", "-q"]
    subprocess.run(cmd, check=True)


def _link_unversioned(lib_dir: Path) -> None:
    """CMake's find_library looks for ``libX.so``; the wheels ship only ``libX.so.13``."""
    for lib in sorted(lib_dir.glob("lib*.so.*")):
        stem = lib.name.split(".so.")[0] + ".so"
        link = lib_dir / stem
        if not link.exists():
            link.symlink_to(lib.name)


def _extract_cublas_headers(python: str, root: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="longdesk-cublas-") as tmp:
        # --no-cache-dir: the 444 MB wheel is not kept, only its headers are
        _pip(
            python,
            "download",
            "--no-deps",
            "--no-cache-dir",
            "--only-binary=:all:",
            "-d",
            tmp,
            CUBLAS_PACKAGE,
        )
        wheels = list(Path(tmp).glob("nvidia_cublas-*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"cuda_toolkit: expected one cuBLAS wheel, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in zf.namelist():
                if name.startswith("nvidia/cu13/include/") and name.endswith(".h"):
                    target = root / "include" / Path(name).name
                    target.write_bytes(zf.read(name))


def ensure(kind: str = "compile", cache_dir: Path | None = None, python: str = sys.executable) -> Toolkit:
    """Install the toolkit of ``kind`` ("compile" or "full") once and return it."""
    if kind not in {"compile", "full"}:
        raise ValueError(f"unknown toolkit kind {kind!r}")
    cache = cache_dir or default_cache_dir()
    prefix = cache / _tag(kind)
    root = prefix / "nvidia" / "cu13"
    if (prefix / ".complete").is_file():
        return Toolkit(root)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / (prefix.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    packages = list(TOOLKIT_PACKAGES) + ([CUBLAS_PACKAGE] if kind == "full" else [])
    print(f"cuda_toolkit: installing the CUDA toolkit wheels ({kind}) into {prefix} (once)", flush=True)
    _pip(
        python,
        "install",
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--target",
        str(partial),
        *packages,
    )
    part_root = partial / "nvidia" / "cu13"
    if kind == "compile":
        _extract_cublas_headers(python, part_root)
    _link_unversioned(part_root / "lib")
    tk = Toolkit(part_root)
    if not tk.nvcc.is_file() or not (part_root / "nvvm" / "bin" / "cicc").is_file():
        raise SystemExit(f"cuda_toolkit: the wheels did not give nvcc and cicc under {part_root}")
    tk.version()  # it runs
    shutil.rmtree(prefix, ignore_errors=True)
    os.replace(partial, prefix)  # a killed install never looks complete
    (prefix / ".complete").write_text("\n".join(packages) + "\n")
    return Toolkit(root)


def architectures(recipe: dict[str, object] | None = None) -> str:
    """The one explicit architecture list: ``LONGDESK_CUDA_ARCHS``, else the recipe's, else the default."""
    env = os.environ.get(ARCHS_ENV, "").strip()
    if env:
        return env.replace(",", ";")
    if recipe and recipe.get("cuda_architectures"):
        return str(recipe["cuda_architectures"])
    return DEFAULT_ARCHITECTURES


def cmake_args(tk: Toolkit, archs: str) -> list[str]:
    """CMake options that point ggml-cuda at this toolkit (installed or not yet)."""
    args = [
        f"-DCMAKE_CUDA_COMPILER={tk.nvcc}",
        f"-DCUDAToolkit_ROOT={tk.root}",
        f"-DCMAKE_CUDA_ARCHITECTURES={archs}",
        "-DGGML_CUDA_NO_VMM=ON",
    ]
    # The wheel's libggml-cuda finds libcudart/libcublas through the RPATH CMake adds for link
    # directories outside the build tree (llama-cpp-python sets CMAKE_INSTALL_RPATH_USE_LINK_PATH),
    # i.e. in this toolkit folder.
    args += [f"-DCUDA_{name}_LIBRARY={tk.lib_dir / f'lib{name}.so'}" for name in ("cublas", "cublasLt")]
    return args


def planned(kind: str = "full", cache_dir: Path | None = None) -> Toolkit:
    """Where :func:`ensure` installs (or installed) the toolkit of ``kind``; installs nothing."""
    return Toolkit((cache_dir or default_cache_dir()) / _tag(kind) / "nvidia" / "cu13")


def cmake_args_for_recipe(recipe: dict[str, object]) -> list[str]:
    """llama_build.cmake_args_for's hook: the CMake options for the recipe's architectures and the
    full toolkit's (planned) location. Installs nothing: :func:`prepare_build` does, before compiling."""
    return cmake_args(planned("full"), architectures(recipe))


def prepare_build(env: dict[str, str]) -> None:
    """llama_build.build_wheel's hook: when ``CMAKE_ARGS`` name the PyPI toolkit, install it (once)
    and put it on the build's PATH."""
    tk = planned("full")
    if f"-DCMAKE_CUDA_COMPILER={tk.nvcc}" not in env.get("CMAKE_ARGS", ""):
        return
    tk = ensure("full")
    env.update(tk.env(env))
    print(f"cuda_toolkit: building with {tk.nvcc} ({tk.version()})", flush=True)


# --------------------------------------------------------------------------------------------------
# The sdist: fetched once, unpacked into a scratch folder (as llama_build.py does for the CPU build).


def sdist_path(cache_dir: Path | None = None, python: str = sys.executable) -> Path:
    """llama-cpp-python's sdist, downloaded once into the cache (``llama_build.sdist_path``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import llama_build  # standard-library module next to this one

    return llama_build.sdist_path(python, (cache_dir or default_cache_dir()).parent)


def unpack_sdist(dest: Path, cache_dir: Path | None = None) -> Path:
    """Unpack the sdist under ``dest``; return its vendored llama.cpp folder."""
    with tarfile.open(sdist_path(cache_dir)) as tf:
        tf.extractall(dest, filter="data")
    tree = dest / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
    if not (tree / "ggml" / "src" / "ggml-cuda").is_dir():
        raise SystemExit(f"cuda_toolkit: no ggml-cuda in {tree}")
    return tree


def configure_check(build_dir: Path, targets: list[str], archs: str) -> int:
    """Configure the CUDA variant of the vendored llama.cpp with the full toolkit and build a few
    object files: proof that ``ACCEL=cuda`` works here, without the 30-minute full build."""
    tk = ensure("full")
    src = unpack_sdist(build_dir / "src")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import llama_build  # standard-library module next to this one

    # Longdesk's kernels go where the real build puts them (ggml-cuda globs *.cu at configure time).
    kernels = Path(__file__).resolve().parents[1] / "engine" / "kernels" / "cuda"
    for f in sorted(kernels.glob("*.cu*")):
        shutil.copy2(f, src / "ggml" / "src" / "ggml-cuda" / f.name)
    recipe = llama_build.load_recipe("cuda")
    args = [a for a in llama_build.cmake_args_for(recipe) if not a.startswith("-DCMAKE_CUDA")]
    args += cmake_args(tk, archs)
    out = build_dir / "build"
    cmd = [
        "cmake",
        "-S",
        str(src),
        "-B",
        str(out),
        "-G",
        "Ninja",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_TOOLS=OFF",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DLLAMA_CURL=OFF",
        *args,
    ]
    print("cuda_toolkit:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=tk.env())
    objs = [f"ggml/src/ggml-cuda/CMakeFiles/ggml-cuda.dir/{t}.o" for t in targets]
    subprocess.run(["ninja", "-C", str(out), "-j", "2", *objs], check=True, env=tk.env())
    for obj in objs:
        size = (out / obj).stat().st_size
        print(f"cuda_toolkit: built {obj} ({size} bytes)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    inst = sub.add_parser("install", help="install the toolkit (cached) and print nvcc's path")
    inst.add_argument("--full", action="store_true", help="with all of cuBLAS (for a real build)")
    conf = sub.add_parser("configure-check", help="configure the CUDA variant and build a few TUs")
    conf.add_argument("--build-dir", type=Path, default=None)
    conf.add_argument("--arch", default="90-real")
    conf.add_argument("--target", action="append", default=None, help="e.g. fill.cu (repeatable)")
    ns = parser.parse_args(argv)
    if ns.cmd == "install":
        tk = ensure("full" if ns.full else "compile")
        print(tk.nvcc)
        print(tk.version())
        return 0
    targets = ns.target or ["fill.cu", "longdesk-sparse-attn.cu"]
    if ns.build_dir:
        return configure_check(ns.build_dir, targets, ns.arch)
    with tempfile.TemporaryDirectory(prefix="longdesk-cuda-configure-") as tmp:
        return configure_check(Path(tmp), targets, ns.arch)


if __name__ == "__main__":
    raise SystemExit(main())
