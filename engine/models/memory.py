"""Memory planning before a load: weights + KV cache at a context + compute buffers vs free RAM.

A load that does not fit is refused with the numbers, and the largest context that fits is
proposed, instead of letting the OS kill the process half-way through a long prefill.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from engine.models.gguf_header import GGUFHeader

MIB = 1024 * 1024
# Interpreter, Qt-free app, llama.cpp libraries and allocator slack, measured on the default
# model at small contexts (RSS after load minus the file size and KV).
BASE_OVERHEAD = 120 * MIB
# Layers between two global-attention layers for sliding-window architectures whose pattern
# is fixed in llama.cpp rather than stored in the GGUF.
_SWA_PERIOD = {"gemma3": 6, "gemma2": 2, "gemma3n": 5, "cohere2": 4}


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
    header: GGUFHeader, n_ctx: int, *, n_ubatch: int = 512, swa_full: bool = False, bytes_per_value: int = 2
) -> int:
    """KV cache bytes at ``n_ctx`` tokens for a standard-attention architecture.

    Per layer: cached tokens x KV heads x (key length + value length) x bytes per value. Sliding
    window layers cache only ``window + ubatch`` tokens unless the full-size SWA cache is on.
    """
    arch = header.architecture
    if arch == "deepseek4":
        from engine.dsv4.kv import dsv4_kv_bytes

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


def available_ram() -> int:
    return int(psutil.virtual_memory().available)


def plan_memory(
    header: GGUFHeader,
    n_ctx: int,
    *,
    available: int | None = None,
    n_ubatch: int = 512,
    swa_full: bool = False,
) -> MemoryPlan:
    return MemoryPlan(
        weights=header.weights_bytes,
        kv_cache=kv_bytes(header, n_ctx, n_ubatch=n_ubatch, swa_full=swa_full),
        compute=compute_bytes(header, n_ubatch),
        overhead=BASE_OVERHEAD,
        available=available_ram() if available is None else available,
        n_ctx=n_ctx,
    )


def largest_fitting_context(header: GGUFHeader, *, available: int | None = None, step: int = 1024) -> int:
    """The largest context (a multiple of ``step``, at most the trained one) that fits; 0 if none."""
    limit = header.context_length or 4096
    avail = available_ram() if available is None else available
    lo, hi = 0, limit // step
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if plan_memory(header, mid * step, available=avail).fits:
            lo = mid
        else:
            hi = mid - 1
    return lo * step
