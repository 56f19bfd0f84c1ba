"""Cheap, stable identities of a model file and of the llama.cpp build, for snapshot keys.

Hashing a 100 GB model on every open would take minutes, so a model file is identified by
its size and the sha256 of its first and last 4 MiB (the GGUF header with every
hyper-parameter and the tokenizer, and the tail of the weights). Renaming or moving the
file keeps its snapshots; re-quantising, re-converting or truncating it does not.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

_EDGE = 4 << 20


@functools.lru_cache(maxsize=64)
def _file_identity(path: str, size: int, mtime_ns: int) -> str:
    del mtime_ns  # part of the cache key only: a rewritten file is hashed again
    h = hashlib.sha256()
    h.update(size.to_bytes(8, "little"))
    with Path(path).open("rb") as fh:
        h.update(fh.read(_EDGE))
        if size > 2 * _EDGE:
            fh.seek(size - _EDGE)
            h.update(fh.read(_EDGE))
    return h.hexdigest()


def model_identity(paths: Sequence[Path]) -> str:
    """Identity of a model made of ``paths`` (one file, or every shard in order).

    Raises:
        OSError: a file cannot be read.
    """
    parts = []
    for p in paths:
        st = p.stat()
        parts.append(_file_identity(str(p.resolve()), st.st_size, st.st_mtime_ns))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=1)
def build_identity() -> str:
    """llama-cpp-python's version and a hash of the libllama it loaded.

    A state written by one build may not load, or load wrongly, in another (the state format
    and cache layouts change between llama.cpp releases).
    """
    from longdesk.engine.llama_libs import preload_cuda_libraries

    preload_cuda_libraries()
    import llama_cpp

    version = str(getattr(llama_cpp, "__version__", "?"))
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    libs = sorted(lib_dir.glob("libllama*")) + sorted(lib_dir.glob("llama*.dll"))
    h = hashlib.sha256()
    for lib in libs:
        if lib.is_file() and not lib.is_symlink():
            h.update(lib.read_bytes())
    return f"llama-cpp-python {version} ({h.hexdigest()[:12]})"
