"""A small ctypes binding to the installed wheel's libggml: enough to build one-op graphs the way
ggml's own op tests do (new tensors, our ops, upstream's ops) and compute them on the CPU backend
with or without ``use_ref`` (the kernels' plain reference branches)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import numpy as np

F32, F16, Q8_0, I32 = 0, 1, 8, 26
GGML_PREC_F32 = 10


class InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


class CPlan(ctypes.Structure):
    _fields_ = [
        ("work_size", ctypes.c_size_t),
        ("work_data", ctypes.c_void_p),
        ("n_threads", ctypes.c_int),
        ("threadpool", ctypes.c_void_p),
        ("abort_callback", ctypes.c_void_p),
        ("abort_callback_data", ctypes.c_void_p),
        ("use_ref", ctypes.c_bool),
    ]


def _lib_dir() -> Path:
    """The installed wheel's libraries, or LONGDESK_GGML_LIB_DIR (a llama.cpp build folder's bin/)."""
    override = os.environ.get("LONGDESK_GGML_LIB_DIR")
    if override:
        return Path(override)
    import llama_cpp

    return Path(llama_cpp.__file__).parent / "lib"


class Ggml:
    """The functions we need from libggml-base and libggml-cpu, typed."""

    def __init__(self) -> None:
        d = _lib_dir()
        self.base = ctypes.CDLL(str(d / "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
        self.cpu = ctypes.CDLL(str(d / "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
        b, c, P = self.base, self.cpu, ctypes.c_void_p
        i64 = ctypes.c_int64
        sig: dict[str, tuple[Any, list[Any]]] = {
            "ggml_init": (P, [InitParams]),
            "ggml_free": (None, [P]),
            "ggml_new_tensor_4d": (P, [P, ctypes.c_int, i64, i64, i64, i64]),
            "ggml_get_data": (P, [P]),
            "ggml_nbytes": (ctypes.c_size_t, [P]),
            "ggml_permute": (P, [P, P, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
            "ggml_cont": (P, [P, P]),
            "ggml_new_graph": (P, [P]),
            "ggml_build_forward_expand": (None, [P, P]),
            "ggml_lightning_indexer": (P, [P, P, P, P, P]),
            "ggml_top_k": (P, [P, P, ctypes.c_int]),
            "ggml_flash_attn_ext": (P, [P, P, P, P, P, ctypes.c_float, ctypes.c_float, ctypes.c_float]),
            "ggml_flash_attn_ext_add_sinks": (None, [P, P]),
            "ggml_flash_attn_ext_set_prec": (None, [P, ctypes.c_int]),
            "ggml_softplus": (P, [P, P]),
            "ggml_sqrt": (P, [P, P]),
            "ggml_add": (P, [P, P, P]),
            "ggml_argsort_top_k": (P, [P, P, ctypes.c_int]),
        }
        for name, (res, args) in sig.items():
            fn = getattr(b, name)
            fn.restype, fn.argtypes = res, args
        self.has_ops = hasattr(b, "ggml_dsv4_indexer_topk") and hasattr(b, "ggml_dsv4_sparse_attn")
        if self.has_ops:
            b.ggml_dsv4_indexer_topk.restype = P
            b.ggml_dsv4_indexer_topk.argtypes = [P, P, P, P, P, ctypes.c_int]
            b.ggml_dsv4_sparse_attn.restype = P
            b.ggml_dsv4_sparse_attn.argtypes = [P, P, P, P, P, P, P, P, ctypes.c_float]
        self.has_route_ops = hasattr(b, "ggml_dsv4_moe_topk")
        if self.has_route_ops:
            f32, flag = ctypes.c_float, ctypes.c_bool
            b.ggml_dsv4_moe_topk.restype = P
            b.ggml_dsv4_moe_topk.argtypes = [P, P, P, ctypes.c_int]
            b.ggml_dsv4_moe_combine.restype = P
            b.ggml_dsv4_moe_combine.argtypes = [P, P, P, P, flag, f32, f32]
            b.ggml_dsv4_hc_gates.restype = P
            b.ggml_dsv4_hc_gates.argtypes = [P, P, P, P, ctypes.c_int, flag, f32]
        c.ggml_graph_plan.restype = CPlan
        c.ggml_graph_plan.argtypes = [P, ctypes.c_int, P]
        c.ggml_graph_compute.restype = ctypes.c_int
        c.ggml_graph_compute.argtypes = [P, ctypes.POINTER(CPlan)]


class Graph:
    """One ggml context holding the inputs and the op; compute() fills the outputs."""

    def __init__(self, g: Ggml, mem_mb: int = 256) -> None:
        self.g = g
        self.ctx = g.base.ggml_init(InitParams(mem_mb << 20, None, False))
        if not self.ctx:
            raise MemoryError("ggml_init failed")

    def close(self) -> None:
        self.g.base.ggml_free(self.ctx)

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tensor(self, arr: np.ndarray, gtype: int = F32) -> int:
        """A new tensor holding ``arr`` (numpy shape is ggml's ne reversed); F16/Q8_0 converted."""
        shape = list(arr.shape)[::-1] + [1] * (4 - arr.ndim)
        t = self.g.base.ggml_new_tensor_4d(self.ctx, gtype, *shape)
        if gtype == F32:
            raw = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        elif gtype == F16:
            raw = np.ascontiguousarray(arr, dtype=np.float16).tobytes()
        elif gtype == I32:
            raw = np.ascontiguousarray(arr, dtype=np.int32).tobytes()
        elif gtype == Q8_0:
            from gguf import GGMLQuantizationType, quants

            raw = quants.quantize(
                np.ascontiguousarray(arr, dtype=np.float32), GGMLQuantizationType.Q8_0
            ).tobytes()
        else:
            raise ValueError(gtype)
        assert len(raw) == self.g.base.ggml_nbytes(t), (len(raw), self.g.base.ggml_nbytes(t))
        ctypes.memmove(self.g.base.ggml_get_data(t), raw, len(raw))
        return int(t)

    def compute(self, out: int, *, use_ref: bool = False, threads: int = 2) -> None:
        gf = self.g.base.ggml_new_graph(self.ctx)
        self.g.base.ggml_build_forward_expand(gf, out)
        plan = self.g.cpu.ggml_graph_plan(gf, threads, None)
        work = ctypes.create_string_buffer(max(plan.work_size, 1))
        plan.work_data = ctypes.cast(work, ctypes.c_void_p)
        plan.use_ref = use_ref
        rc = self.g.cpu.ggml_graph_compute(gf, ctypes.byref(plan))
        if rc != 0:
            raise RuntimeError(f"ggml_graph_compute failed: {rc}")

    def read(self, t: int, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        assert n == self.g.base.ggml_nbytes(t)
        buf = (ctypes.c_char * n).from_address(self.g.base.ggml_get_data(t))
        return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape).copy()
