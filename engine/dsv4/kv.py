"""DeepSeek-V4's compressed KV cache size (reference notes §2.8), for the memory planner."""

from __future__ import annotations

from engine.models.gguf_header import GGUFHeader


def dsv4_kv_bytes(header: GGUFHeader, n_ctx: int, *, bytes_per_value: int = 2) -> int:
    """Bytes of KV cache at ``n_ctx`` tokens.

    Every layer keeps a sliding window of uncompressed entries; CSA layers (ratio 4) add
    n_ctx / 4 compressed entries plus the lightning indexer's keys, HCA layers (ratio 128)
    add n_ctx / 128 compressed entries. One latent of ``key_length`` values per entry (K = V).
    """
    arch = header.architecture
    n_layer = header.arch_int("block_count")
    head_dim = header.arch_int("attention.key_length", 512)
    window = header.arch_int("attention.sliding_window", 128)
    index_dim = header.arch_int("attention.indexer.key_length", 128)
    raw = header.metadata.get(f"{arch}.attention.compress_ratios")
    ratios = [int(r) for r in raw] if isinstance(raw, list) else [0] * n_layer
    total_values = 0
    for layer in range(n_layer):
        ratio = ratios[layer] if layer < len(ratios) else 0
        entries = min(n_ctx, window)
        if ratio:
            entries += n_ctx // ratio
            if ratio == 4:
                total_values += (n_ctx // ratio) * index_dim
        total_values += entries * head_dim
    return total_values * bytes_per_value
