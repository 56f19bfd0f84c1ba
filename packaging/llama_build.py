"""Build llama-cpp-python once per (version, recipe, CPU) and cache the wheel.

PyPI ships llama-cpp-python as source only, so every install compiles llama.cpp (3-6 minutes on
two cores). This script compiles it with the accelerator recipe chosen by ``ACCEL`` (cpu, cuda,
metal, vulkan; default cpu), keeps the wheel in a cache folder keyed by everything that makes two
wheels differ, and installs the cached wheel on every later run.

The CPU recipe builds for the instruction sets of the running CPU, read from ``/proc/cpuinfo``,
and never with AMX: GCC 12's ``_tile_loadconfig`` declares an 8-byte memory operand, so -O3 drops
the stores to the 64-byte tile config and the first AMX matmul faults. The detected instruction
sets are part of the cache key, so a wheel that needs AVX-512 is never installed on a CPU without
it.

Longdesk's own GGML ops for DeepSeek-V4 (engine/kernels/) are built in: the sdist is unpacked,
the kernel sources are copied into its vendored llama.cpp and the patches under
engine/kernels/patches/ are applied (00-09 core, always; 10-19 CUDA, with ACCEL=cuda; 20-29
Metal, only with LONGDESK_METAL_OPS=on), then the wheel is compiled from that tree. The cache key
includes a hash of engine/kernels/ and the switches. ``LONGDESK_OPS=off`` builds upstream
llama.cpp unpatched, for comparison.

Standard library only: it runs before the virtual environment has anything in it.

Usage:
    python packaging/llama_build.py --python VENV/bin/python      # build if needed, install
    python packaging/llama_build.py --print-key                    # show the cache key
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
KERNELS_DIR = Path(__file__).resolve().parent.parent / "engine" / "kernels"
# kernel folder -> where its files go inside the vendored llama.cpp
_KERNEL_DESTS = {
    "cpu": "ggml/src/ggml-cpu/longdesk",
    "cuda": "ggml/src/ggml-cuda",
    "metal": "ggml/src/ggml-metal",
}

# /proc/cpuinfo flag -> ggml CMake option. Order is the order in which they are passed.
_ISA_OPTIONS: tuple[tuple[str, str], ...] = (
    ("sse4_2", "GGML_SSE42"),
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("bmi2", "GGML_BMI2"),
    ("avx_vnni", "GGML_AVX_VNNI"),
    ("avx512f", "GGML_AVX512"),
    ("avx512vbmi", "GGML_AVX512_VBMI"),
    ("avx512_vnni", "GGML_AVX512_VNNI"),
    ("avx512_bf16", "GGML_AVX512_BF16"),
)


def default_cache_dir() -> Path:
    """Where built wheels are kept; ``LONGDESK_WHEEL_CACHE`` overrides it."""
    env = os.environ.get("LONGDESK_WHEEL_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "longdesk" / "wheels"


def cpu_flags() -> set[str]:
    """The CPU feature flags of this machine (Linux); empty where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def isa_cmake_args(flags: set[str]) -> list[str]:
    """ggml ISA options, each explicitly ON or OFF, for the given CPU flags."""
    return [f"-D{option}={'ON' if flag in flags else 'OFF'}" for flag, option in _ISA_OPTIONS]


def load_recipe(name: str) -> dict[str, object]:
    path = RECIPES_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.toml")))
        raise SystemExit(f"llama_build: unknown ACCEL recipe {name!r} (known: {known})")
    with path.open("rb") as fh:
        return tomllib.load(fh)


def cmake_args_for(recipe: dict[str, object]) -> list[str]:
    """The full CMAKE_ARGS list for a recipe on this machine."""
    args = [str(a) for a in recipe.get("cmake_args", [])]  # type: ignore[attr-defined]
    machine = platform.machine().lower()
    if recipe.get("detect_isa") and machine in {"x86_64", "amd64"}:
        flags = cpu_flags()
        if flags:
            args += isa_cmake_args(flags)
        else:
            # No /proc/cpuinfo (not Linux): let the compiler target this CPU, still without AMX.
            args = [a for a in args if not a.startswith("-DGGML_NATIVE=")] + ["-DGGML_NATIVE=ON"]
    if recipe.get("cuda_toolkit") == "pypi":  # CUDA from PyPI's NVIDIA wheels (packaging/cuda_toolkit.py)
        import cuda_toolkit

        args += cuda_toolkit.cmake_args_for_recipe(recipe)
    env_cmake = recipe.get("env_cmake", {})
    for env_name, template in dict(env_cmake).items():  # type: ignore[call-overload]
        value = os.environ.get(env_name)
        if value:
            args.append(str(template).format(value))
    return args


def ops_switches(accel: str) -> dict[str, object]:
    """Which of our ops go into the build: LONGDESK_OPS=off for upstream, metal behind its switch."""
    on = os.environ.get("LONGDESK_OPS", "on").strip().lower() not in {"off", "0", "no", "false"}
    metal = os.environ.get("LONGDESK_METAL_OPS", "off").strip().lower() in {"on", "1", "yes", "true"}
    return {"ops": on, "cuda": on and accel == "cuda", "metal": on and metal}


def _selected_patches(switches: dict[str, object]) -> list[Path]:
    if not switches["ops"]:
        return []
    out = []
    for path in sorted((KERNELS_DIR / "patches").glob("*.patch")):
        band = int(path.name[:2]) if path.name[:2].isdigit() else -1
        if (
            0 <= band <= 9
            or (10 <= band <= 19 and switches["cuda"])
            or (20 <= band <= 29 and switches["metal"])
        ):
            out.append(path)
    return out


def _selected_kernel_dirs(switches: dict[str, object]) -> list[str]:
    if not switches["ops"]:
        return []
    return [name for name in ("cpu", "cuda", "metal") if name == "cpu" or switches[name]]


def kernels_digest(switches: dict[str, object]) -> str:
    """Hash of every kernel source and patch that goes into the build (empty when ops are off)."""
    h = hashlib.sha256(json.dumps(switches, sort_keys=True).encode())
    files = list(_selected_patches(switches))
    for name in _selected_kernel_dirs(switches):
        files += sorted(p for p in (KERNELS_DIR / name).rglob("*") if p.is_file())
    for path in files:
        h.update(str(path.relative_to(KERNELS_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def sdist_path(python: str = sys.executable, cache_root: Path | None = None) -> Path:
    """llama-cpp-python's sdist, downloaded once into ``~/.cache/longdesk/sdist`` (the CPU and CUDA
    builds, the CUDA compile check and the encoding tests all read this one file)."""
    folder = (cache_root or default_cache_dir().parent) / "sdist"
    name = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    path = folder / name
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="longdesk-sdist-", dir=folder) as tmp:
        subprocess.run(
            [
                python, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                "--no-binary", ":all:", "-d", tmp, f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
            ],
            check=True,
        )
        got = Path(tmp) / name
        if not got.is_file():
            raise SystemExit(f"llama_build: pip did not download {name}")
        os.replace(got, path)
    return path


def prepare_source(python: str, workdir: Path, switches: dict[str, object]) -> Path:
    """Unpack the sdist, copy our kernels in and apply our patches; return the tree."""
    import tarfile

    with tarfile.open(sdist_path(python)) as tar:
        tar.extractall(workdir, filter="data")
    tree = workdir / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}"
    vendor = tree / "vendor" / "llama.cpp"
    for name in _selected_kernel_dirs(switches):
        dest = vendor / _KERNEL_DESTS[name]
        dest.mkdir(parents=True, exist_ok=True)
        for src in sorted((KERNELS_DIR / name).rglob("*")):
            if src.is_file():
                target = dest / src.relative_to(KERNELS_DIR / name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    for patch in _selected_patches(switches):
        print(f"llama_build: applying {patch.name}", flush=True)
        subprocess.run(
            ["patch", "-p1", "--forward", "--batch", "-d", str(vendor), "-i", str(patch)], check=True
        )
    return tree


def _compiler_id() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or ""
    if not cc:
        return "none"
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def cache_key(recipe_name: str, args: list[str], python: str) -> str:
    """A short hash of everything that makes two builds differ (our kernels and switches too)."""
    switches = ops_switches(recipe_name)
    base = _cache_key_base(recipe_name, args, python)
    if not switches["ops"]:
        return base  # upstream llama.cpp: the same key (and cached wheel) as before our ops existed
    return f"{base}-ops{kernels_digest(switches)[:8]}"


def _cache_key_base(recipe_name: str, args: list[str], python: str) -> str:
    """A short hash of everything that makes two builds differ."""
    py_tag = subprocess.run(
        [
            python,
            "-c",
            "import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    material = json.dumps(
        {
            "version": LLAMA_CPP_PYTHON_VERSION,
            "recipe": recipe_name,
            "cmake_args": args,
            "python": py_tag,
            "machine": platform.machine(),
            "compiler": _compiler_id(),
        },
        sort_keys=True,
    )
    return f"{recipe_name}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def _installed_version(python: str) -> str | None:
    probe = "import importlib.metadata as m; print(m.version('llama_cpp_python'))"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def _installed_key(python: str) -> str | None:
    probe = (
        "import importlib.util, pathlib; s = importlib.util.find_spec('llama_cpp'); "
        "p = pathlib.Path(s.submodule_search_locations[0], 'LONGDESK_BUILD') if s else None; "
        "print(p.read_text() if p and p.exists() else '')"
    )
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def build_wheel(python: str, args: list[str], dest: Path, accel: str = "cpu") -> Path:
    """Compile the wheel into ``dest`` (a fresh folder) and return its path."""
    env = dict(os.environ)
    env["CMAKE_ARGS"] = " ".join(args)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    env["FORCE_CMAKE"] = "1"
    import cuda_toolkit  # ACCEL=cuda: the CUDA toolkit from PyPI's wheels (packaging/cuda_toolkit.py)

    cuda_toolkit.prepare_build(env)
    print(
        f"llama_build: compiling llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} (a few minutes, once)",
        flush=True,
    )
    print(f"llama_build: CMAKE_ARGS={env['CMAKE_ARGS']}", flush=True)
    switches = ops_switches(accel)
    with tempfile.TemporaryDirectory(prefix="longdesk-wheel-") as tmp:
        if switches["ops"]:
            tree = prepare_source(python, Path(tmp) / "src", switches)
            target = str(tree)
        else:
            target = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
        cmd = [
            python,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-binary",
            "llama-cpp-python",
            "-w",
            tmp,
            target,
        ]
        subprocess.run(cmd, env=env, check=True)
        wheels = list(Path(tmp).glob("llama_cpp_python-*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"llama_build: expected one wheel, found {wheels}")
        dest.mkdir(parents=True, exist_ok=True)
        final = dest / wheels[0].name
        partial = dest / (wheels[0].name + ".partial")
        shutil.copy2(wheels[0], partial)
        os.replace(partial, final)  # a killed build never leaves a half wheel under the real name
    return final


def ensure(python: str, accel: str, cache_dir: Path) -> Path:
    """Make sure ``python`` has the llama-cpp-python build for ``accel``; return the wheel."""
    recipe = load_recipe(accel)
    args = cmake_args_for(recipe)
    key = cache_key(accel, args, python)
    folder = cache_dir / key
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if wheels:
        wheel = wheels[-1]
        print(f"llama_build: cached wheel {key}", flush=True)
    else:
        wheel = build_wheel(python, args, folder, accel)
        meta = {"accel": accel, "cmake_args": args, "longdesk_ops": ops_switches(accel)}
        (folder / "recipe.json").write_text(json.dumps(meta, indent=1))
    if _installed_version(python) == LLAMA_CPP_PYTHON_VERSION and _installed_key(python) == key:
        return wheel
    # Its own small dependencies (numpy, diskcache, jinja2, typing-extensions) come from PyPI.
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel)], check=True
    )
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True)
    if recipe.get("cuda_toolkit") == "pypi":
        import cuda_toolkit

        # What the CUDA build links against at run time (engine/llama_libs.py loads them).
        subprocess.run([python, "-m", "pip", "install", "-q", *cuda_toolkit.RUNTIME_PACKAGES], check=True)
    marker_cmd = (
        "import importlib.util, pathlib, sys; s = importlib.util.find_spec('llama_cpp'); "
        "pathlib.Path(s.submodule_search_locations[0], 'LONGDESK_BUILD').write_text(sys.argv[1])"
    )
    subprocess.run([python, "-c", marker_cmd, key], check=True)
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the target venv")
    parser.add_argument("--accel", default=os.environ.get("ACCEL", "cpu"), help="cpu, cuda, metal or vulkan")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--print-key", action="store_true", help="print the cache key and exit")
    ns = parser.parse_args(argv)
    if ns.print_key:
        args = cmake_args_for(load_recipe(ns.accel))
        print(cache_key(ns.accel, args, ns.python))
        print(" ".join(args))
        return 0
    ensure(ns.python, ns.accel, ns.cache_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
