"""Longdesk's own GGML ops for DeepSeek-V4, and which of them the loaded llama.cpp carries.

The C sources (cpu/, cuda/, metal/) and the patches that register them in llama.cpp
(patches/NN-name.patch) are compiled into the llama-cpp-python wheel by packaging/llama_build.py;
nothing here is imported by the build. At run time ``active_ops()`` asks the loaded llama.cpp
library whether it has our ops, and ``LONGDESK_DSV4_OPS=0`` switches the DeepSeek-V4 graph back
to upstream's decomposition in the same binary (read when a context builds its graph).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

#: our ops and the ggml constructor each one exports
OPS: tuple[tuple[str, str], ...] = (
    ("DSV4_INDEXER_TOPK", "ggml_dsv4_indexer_topk"),
    ("DSV4_SPARSE_ATTN", "ggml_dsv4_sparse_attn"),
    ("DSV4_MOE_TOPK", "ggml_dsv4_moe_topk"),
    ("DSV4_MOE_COMBINE", "ggml_dsv4_moe_combine"),
    ("DSV4_HC_GATES", "ggml_dsv4_hc_gates"),
)

RUNTIME_SWITCH = "LONGDESK_DSV4_OPS"


@dataclass(frozen=True)
class OpsStatus:
    """What the loaded llama.cpp carries and what the DeepSeek-V4 graph will use."""

    built: tuple[str, ...]  # ops compiled into the library
    enabled: bool  # the runtime switch leaves them on
    library: str  # the ggml library asked, or why none could be

    @property
    def active(self) -> tuple[str, ...]:
        return self.built if self.enabled else ()

    def describe(self) -> str:
        if not self.built:
            return "upstream llama.cpp ops (this build has none of Longdesk's DeepSeek-V4 ops)"
        names = ", ".join(self.built)
        if not self.enabled:
            return f"upstream path ({RUNTIME_SWITCH}=0); built in: {names}"
        return f"Longdesk ops active for DeepSeek-V4: {names}"


def runtime_enabled(environ: dict[str, str] | None = None) -> bool:
    """False when ``LONGDESK_DSV4_OPS=0`` asks for upstream's graph (the check llama.cpp makes)."""
    value = (os.environ if environ is None else environ).get(RUNTIME_SWITCH, "")
    return not value.startswith("0")


def _ggml_base_library() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib_dir = Path(next(iter(spec.submodule_search_locations))) / "lib"
    for name in ("libggml-base.so", "libggml-base.dylib", "ggml-base.dll"):
        if (lib_dir / name).exists():
            return lib_dir / name
    return None


def active_ops() -> OpsStatus:
    """Ask the installed llama.cpp which of our ops it was built with (loads libggml-base only)."""
    path = _ggml_base_library()
    if path is None:
        return OpsStatus((), runtime_enabled(), "llama-cpp-python is not installed")
    lib = ctypes.CDLL(str(path))
    built = tuple(op for op, symbol in OPS if hasattr(lib, symbol))
    return OpsStatus(built, runtime_enabled(), str(path))
