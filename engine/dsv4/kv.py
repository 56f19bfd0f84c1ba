"""DeepSeek-V4's KV cache size as the bundled llama.cpp allocates it, for the memory planner.

Per layer (``llama_kv_cache_dsv4``; one latent per entry, K = V so only K is stored):
* raw window: ``pad256(min(n_ctx, window + n_ubatch))`` entries of ``key_length`` values,
  or ``n_ctx`` entries with the full-size SWA cache (llama.cpp's default when not told
  otherwise: 43 GiB at 1M tokens for V4-Flash in F16, against ~7 GiB without it);
* CSA layers (ratio 4): ``pad256(ceil(n_ctx/4))`` compressed entries of ``key_length`` values
  plus as many lightning-indexer keys of ``indexer.key_length`` values;
* HCA layers (ratio 128): ``pad256(ceil(n_ctx/128))`` compressed entries;
* F32 compressor state: CSA ``8 x 2·key_length``, indexer ``8 x 2·indexer.key_length``,
  HCA ``128 x key_length`` rows, each twice (values and scores).
"""

from __future__ import annotations

from longdesk.engine.models.gguf_header import GGUFHeader

_PAD = 256
_F32 = 4


def _pad(n: int) -> int:
    return -(-n // _PAD) * _PAD


def dsv4_kv_bytes(
    header: GGUFHeader, n_ctx: int, *, n_ubatch: int = 512, swa_full: bool = False, bytes_per_value: int = 2
) -> int:
    """Bytes of KV cache and compressor state at ``n_ctx`` tokens (one sequence)."""
    arch = header.architecture
    n_layer = header.arch_int("block_count")
    head_dim = header.arch_int("attention.key_length", 512)
    window = header.arch_int("attention.sliding_window", 128)
    index_dim = header.arch_int("attention.indexer.key_length", 128)
    raw = header.metadata.get(f"{arch}.attention.compress_ratios")
    ratios = [int(r) for r in raw] if isinstance(raw, list) else [0] * n_layer
    raw_rows = n_ctx if swa_full else _pad(min(n_ctx, window + n_ubatch))
    total = n_layer * raw_rows * head_dim * bytes_per_value
    for layer in range(n_layer):
        ratio = ratios[layer] if layer < len(ratios) else 0
        if not ratio:
            continue
        rows = _pad(max(1, -(-n_ctx // ratio)))
        total += rows * head_dim * bytes_per_value
        if ratio == 4:
            total += rows * index_dim * bytes_per_value
            total += (8 * 2 * head_dim + 8 * 2 * index_dim) * 2 * _F32
        else:
            total += ratio * head_dim * 2 * _F32
    return total
