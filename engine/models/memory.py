"""Memory planning before a load: weights + KV cache at a context + compute buffers vs free RAM.

A load that does not fit is refused with the numbers, and the largest context that fits is
proposed, instead of letting the OS kill the process half-way through a long prefill.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from longdesk.engine.models.gguf_header import GGUFHeader

MIB = 1024 * 1024
# Interpreter, Qt-free app, llama.cpp libraries and allocator slack, measured on the default
# model at small contexts (RSS after load minus the file size and KV).
BASE_OVERHEAD = 120 * MIB
# Layers between two global-attention layers for sliding-window architectures whose pattern
# is fixed in llama.cpp rather than stored in the GGUF.
_SWA_PERIOD = {"gemma3": 6, "gemma2": 2, "gemma3n": 5, "cohere2": 4}

# Architectures whose restored state is bit-exact with the reduced sliding-window cache
# (window + ubatch rows), measured with the sequence-state API: DeepSeek-V4's raw-window cache
# restores exactly (tiny V4 file, 3.2K tokens, 128- and 512-token chunks), and the full-size one
# would cost 43 GiB more at 1M tokens. Gemma-style caches do not restore exactly when reduced
# (max |dlogit| 1.2-1.4 at 1.3K-1.7K tokens), so every other architecture keeps the full size.
_REDUCED_SWA_EXACT = frozenset({"deepseek4"})


def full_swa_cache(architecture: str) -> bool:
    """Whether ``architecture`` gets the full-size window cache (needed for exact restores)."""
    return architecture not in _REDUCED_SWA_EXACT


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """An estimate of what a load will take, in bytes."""

    weights: int
    kv_cache: int
    compute: int
    overhead: int
    available: int
    n_ctx: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute + self.overhead

    @property
    def fits(self) -> bool:
        return self.total <= self.available

    def describe(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        return (
            f"{self.total / MIB:,.0f} MiB at {self.n_ctx:,} tokens (weights {self.weights / MIB:,.0f}, "
            f"KV {self.kv_cache / MIB:,.0f}, compute {self.compute / MIB:,.0f}) of "
            f"{self.available / MIB:,.0f} MiB available: {verdict}"
        )


def kv_bytes(
    header: GGUFHeader,
    n_ctx: int,
    *,
    n_ubatch: int = 512,
    swa_full: bool | None = None,
    bytes_per_value: int = 2,
) -> int:
    """KV cache bytes at ``n_ctx`` tokens for a standard-attention architecture.

    Per layer: cached tokens x KV heads x (key length + value length) x bytes per value. Sliding
    window layers cache only ``window + ubatch`` tokens unless the full-size SWA cache is on
    (``None``: the architecture's choice, ``full_swa_cache``).
    """
    arch = header.architecture
    if swa_full is None:
        swa_full = full_swa_cache(arch)
    if arch == "deepseek4":
        from longdesk.engine.dsv4.kv import dsv4_kv_bytes

        return dsv4_kv_bytes(
            header, n_ctx, n_ubatch=n_ubatch, swa_full=swa_full, bytes_per_value=bytes_per_value
        )
    n_layer = header.arch_int("block_count")
    n_head = header.arch_int("attention.head_count", 1)
    n_head_kv = header.arch_int("attention.head_count_kv", n_head) or n_head
    n_embd = header.arch_int("embedding_length")
    head_dim = n_embd // n_head if n_head else 0
    k_len = header.arch_int("attention.key_length", head_dim)
    v_len = header.arch_int("attention.value_length", head_dim)
    per_token_layer = n_head_kv * (k_len + v_len) * bytes_per_value
    window = header.arch_int("attention.sliding_window")
    period = _SWA_PERIOD.get(arch, 0)
    if window and period and not swa_full:
        n_global = n_layer // period
        n_swa = n_layer - n_global
        swa_tokens = min(n_ctx, window + n_ubatch)
        return per_token_layer * (n_global * n_ctx + n_swa * swa_tokens)
    return per_token_layer * n_layer * n_ctx


def compute_bytes(header: GGUFHeader, n_ubatch: int = 512) -> int:
    """Scratch buffers of one ubatch: activations plus the output logits row."""
    n_embd = header.arch_int("embedding_length")
    n_ff = header.arch_int("feed_forward_length", 4 * n_embd)
    return n_ubatch * (n_embd * 8 + n_ff * 4) + header.vocab_size * 4 * 2


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup v2 memory limit (containers), if there is one."""
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().splitlines()[0].split("::", 1)[1]
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text().strip())
    except (OSError, IndexError, ValueError):
        return None


def available_ram() -> int:
    """RAM this process can still take: the OS's available memory, within a cgroup limit."""
    avail = int(psutil.virtual_memory().available)
    room = _cgroup_room()
    return min(avail, room) if room is not None else avail


def plan_memory(
    header: GGUFHeader,
    n_ctx: int,
    *,
    available: int | None = None,
    n_ubatch: int = 512,
    swa_full: bool | None = None,
) -> MemoryPlan:
    return MemoryPlan(
        weights=header.weights_bytes,
        kv_cache=kv_bytes(header, n_ctx, n_ubatch=n_ubatch, swa_full=swa_full),
        compute=compute_bytes(header, n_ubatch),
        overhead=BASE_OVERHEAD,
        available=available_ram() if available is None else available,
        n_ctx=n_ctx,
    )


def largest_fitting_context(
    header: GGUFHeader, *, available: int | None = None, step: int = 1024, swa_full: bool | None = None
) -> int:
    """The largest context (a multiple of ``step``, at most the trained one) that fits; 0 if none."""
    limit = header.context_length or 4096
    avail = available_ram() if available is None else available
    lo, hi = 0, limit // step
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if plan_memory(header, mid * step, available=avail, swa_full=swa_full).fits:
            lo = mid
        else:
            hi = mid - 1
    return lo * step


# ---------------------------------------------------------------- accelerators and placement
EXPERT_PATTERN = r"\.ffn_(up|down|gate|gate_up)_exps\."


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a model's parts go, and the memory verdict for system RAM.

    Attributes:
        n_gpu_layers: layers llama.cpp offloads (0 on a CPU-only build).
        cpu_tensor_patterns: tensor-name regexes kept in system RAM (MoE experts when VRAM
            is short), passed to llama.cpp as tensor buffer overrides.
        memory: the system-RAM plan (weights left in RAM + KV when not offloaded + compute).
        vram_needed, vram_free: bytes on the accelerator (0 without one).
        note: one line for the user when a choice was made for them.
    """

    n_gpu_layers: int
    cpu_tensor_patterns: tuple[str, ...]
    memory: MemoryPlan
    vram_needed: int = 0
    vram_free: int = 0
    note: str = ""
    largest_context: int = 0

    def refusal(self) -> str:
        """The message for a load that does not fit, with the numbers and what would fit."""
        m = self.memory
        fit = (
            f"the largest context that fits is {self.largest_context:,} tokens"
            if self.largest_context
            else "no context fits: the weights alone exceed it"
        )
        return (
            f"the model needs about {m.total / MIB:,.0f} MiB of RAM at {m.n_ctx:,} tokens "
            f"(weights {m.weights / MIB:,.0f}, KV cache {m.kv_cache / MIB:,.0f}, compute "
            f"{m.compute / MIB:,.0f}, runtime {m.overhead / MIB:,.0f}) but {m.available / MIB:,.0f} MiB "
            f"are available; {fit}"
        )


def accelerator_memory() -> tuple[int, int] | None:
    """(free, total) bytes of the first GPU llama.cpp sees, or None without one."""
    import ctypes
    from pathlib import Path

    from longdesk.engine.llama_libs import preload_cuda_libraries

    preload_cuda_libraries()
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        return None
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    candidates = [lib_dir / n for n in ("libggml.so", "libggml.dylib", "ggml.dll")]
    path = next((c for c in candidates if c.exists()), None)
    if path is None:
        return None
    ggml = ctypes.CDLL(str(path))
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    ggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_dev_memory.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.POINTER(ctypes.c_size_t),
    ]
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        if ggml.ggml_backend_dev_type(dev) in (1, 2):  # GGML_BACKEND_DEVICE_TYPE_GPU / IGPU
            free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
            ggml.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            return int(free.value), int(total.value)
    return None


def expert_bytes(header: GGUFHeader) -> int:
    """Bytes of MoE expert tensors (0 for a dense model)."""
    return sum(t.n_bytes for t in header.tensors if "_exps." in t.name)


def plan_placement(
    header: GGUFHeader,
    n_ctx: int,
    n_gpu_layers: int,
    *,
    swa_full: bool | None = None,
    available: int | None = None,
    vram: tuple[int, int] | bool | None = True,
) -> Placement:
    """Decide offload and expert placement, and plan system RAM for what stays there.

    Without an accelerator (or ``n_gpu_layers == 0``) everything is in RAM. With one: the
    whole model when weights + KV fit the free VRAM; else, for a MoE model, every layer on
    the GPU but the expert tensors in RAM (llama.cpp's ``-ot exps=CPU``); else as many layers
    as fit, in proportion.

    Args:
        vram: (free, total) of the GPU, None for none, or True to ask llama.cpp.
    """
    avail = available_ram() if available is None else available
    gpu = accelerator_memory() if vram is True else vram
    full = plan_memory(header, n_ctx, available=avail, swa_full=swa_full)
    if not gpu or n_gpu_layers == 0:
        best = 0 if full.fits else largest_fitting_context(header, available=avail, swa_full=swa_full)
        return Placement(0, (), full, largest_context=best)
    free = int(gpu[0] * 0.9)
    need = full.weights + full.kv_cache + full.compute
    if need <= free:
        ram = replace(full, weights=0, kv_cache=0)
        return Placement(-1, (), ram, vram_needed=need, vram_free=gpu[0])
    experts = expert_bytes(header)
    if experts and need - experts <= free:
        ram = replace(full, weights=experts, kv_cache=0)
        note = (
            f"VRAM is short ({gpu[0] / MIB:,.0f} MiB free): the MoE expert tensors "
            f"({experts / MIB:,.0f} MiB) stay in system RAM"
        )
        return Placement(-1, (EXPERT_PATTERN,), ram, vram_needed=need - experts, vram_free=gpu[0], note=note)
    n_layer = max(header.arch_int("block_count"), 1)
    layers = max(0, min(n_layer, int(n_layer * free / max(need, 1))))
    share = layers / n_layer
    ram = replace(full, weights=int(full.weights * (1 - share)), kv_cache=int(full.kv_cache * (1 - share)))
    note = f"VRAM is short ({gpu[0] / MIB:,.0f} MiB free): {layers} of {n_layer} layers on the GPU"
    return Placement(layers, (), ram, vram_needed=int(need * share), vram_free=gpu[0], note=note)
