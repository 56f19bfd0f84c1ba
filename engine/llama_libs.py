"""Make a CUDA build of llama.cpp loadable: its CUDA runtime and cuBLAS from NVIDIA's PyPI wheels.

``ACCEL=cuda`` builds llama-cpp-python against the CUDA 13 toolkit from PyPI (no system CUDA;
``packaging/cuda_toolkit.py``) and installs the two runtime wheels it links against,
``nvidia-cuda-runtime`` and ``nvidia-cublas``, into the same environment (``nvidia/cu13/lib``).
Nothing tells the dynamic loader to look there, so ``import llama_cpp`` would fail with
"libcublas.so.13: cannot open shared object file". ``preload_cuda_libraries()`` loads those
libraries first, globally, so that ``libggml-cuda`` finds them already loaded by their names; on
Windows it adds their folder to the DLL search path instead. It does nothing for a build without
CUDA, and it is called before every import of ``llama_cpp`` in Longdesk (it runs once).
The NVIDIA driver (``libcuda``) is the system's, as always.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

# In load order: cuBLAS needs cuBLASLt, both need the runtime.
CUDA_LIBRARIES = ("libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13")
_loaded: list[Path] | None = None


def _package_dirs(name: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def is_cuda_build(llama_dirs: list[Path]) -> bool:
    """Whether the installed llama.cpp libraries include the CUDA backend."""
    return any(
        any((d / "lib").glob("libggml-cuda*")) or any((d / "lib").glob("ggml-cuda*.dll")) for d in llama_dirs
    )


def cuda_library_paths(nvidia_dirs: list[Path]) -> list[Path]:
    """The runtime libraries to load, in order, from the first ``nvidia/cu13/lib`` that has each."""
    found = []
    for name in CUDA_LIBRARIES:
        for base in nvidia_dirs:
            path = base / "cu13" / "lib" / name
            if path.is_file():
                found.append(path)
                break
    return found


def preload_cuda_libraries() -> list[Path]:
    """Load the CUDA runtime libraries a CUDA build of llama.cpp needs; returns what was loaded."""
    global _loaded
    if _loaded is not None:
        return _loaded
    _loaded = []
    if not is_cuda_build(_package_dirs("llama_cpp")):
        return _loaded
    nvidia = _package_dirs("nvidia")
    if sys.platform == "win32":
        for base in nvidia:
            if (base / "cu13" / "bin").is_dir():
                os.add_dll_directory(str(base / "cu13" / "bin"))
        return _loaded
    for path in cuda_library_paths(nvidia):
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        _loaded.append(path)
    return _loaded
