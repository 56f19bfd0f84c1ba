"""DeepSeek-V4 hyper-parameters as one frozen dataclass, shared by the GGUF writer and the reference."""

from __future__ import annotations

import math
from dataclasses import dataclass

ARCH = "deepseek4"
CSA_RATIO = 4
HCA_RATIO = 128
SQRT_SOFTPLUS = 4  # llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE_SQRT_SOFTPLUS


@dataclass(frozen=True, slots=True)
class V4Config:
    """Architecture numbers of a DeepSeek-V4 model (defaults: a tiny model that uses every mechanism).

    ``compress_ratios[l]`` is 0 (sliding window only), 4 (CSA: overlapping compressor + lightning
    indexer top-k) or 128 (HCA: dense over all compressed blocks). The first ``n_hash_layers``
    layers route experts by token id (``tid2eid``); the others by sqrt-softplus score + bias.
    """

    n_vocab: int = 320
    dim: int = 64
    n_layer: int = 5
    n_head: int = 4
    head_dim: int = 128  # K = V, the last ``rope_dim`` dims carry RoPE
    rope_dim: int = 64
    q_lora_rank: int = 48
    o_groups: int = 2
    o_lora_rank: int = 32
    window: int = 32
    compress_ratios: tuple[int, ...] = (0, 4, 128, 4, 128)
    rope_base: float = 10000.0
    compress_rope_base: float = 160000.0
    yarn_factor: float = 16.0
    yarn_orig_ctx: int = 65536
    yarn_beta_fast: float = 32.0
    yarn_beta_slow: float = 1.0
    index_n_heads: int = 32
    index_head_dim: int = 64
    index_topk: int = 8
    n_expert: int = 8
    n_expert_used: int = 2
    n_expert_shared: int = 1
    moe_ff: int = 48
    n_hash_layers: int = 2
    route_scale: float = 1.5
    swiglu_limit: float = 1.5  # small so the clamp really acts on random weights (Flash: 10)
    hc_mult: int = 4
    hc_iters: int = 20
    hc_eps: float = 1e-6
    norm_eps: float = 1e-6
    context_length: int = 4096

    @property
    def nope_dim(self) -> int:
        return self.head_dim - self.rope_dim

    @property
    def hc_mix(self) -> int:
        """Rows of a sublayer's ``hc_fn``: 4 pre + 4 post + 16 combination weights (hc = 4)."""
        return (2 + self.hc_mult) * self.hc_mult

    def ratio(self, layer: int) -> int:
        return self.compress_ratios[layer]

    def yarn_ramp(self) -> tuple[int, int]:
        """YaRN correction range (low, high) of pair indices for the compressed layers' RoPE."""

        def corr_dim(n_rot: float) -> float:
            return (
                self.rope_dim
                * math.log(self.yarn_orig_ctx / (n_rot * 2 * math.pi))
                / (2 * math.log(self.compress_rope_base))
            )

        low = max(0, math.floor(corr_dim(self.yarn_beta_fast)))
        high = min(self.rope_dim - 1, math.ceil(corr_dim(self.yarn_beta_slow)))
        return low, high


def flash_like_mid(n_layer: int = 4, n_expert: int = 8, dim: int = 1024, n_vocab: int = 2048) -> V4Config:
    """A mid-size configuration with V4-Flash's real attention shapes, for CPU profiling."""
    ratios = tuple(4 if i % 2 == 0 else 128 for i in range(n_layer))
    return V4Config(
        n_vocab=n_vocab,
        dim=dim,
        n_layer=n_layer,
        n_head=64,
        head_dim=512,
        q_lora_rank=1024,
        o_groups=8,
        o_lora_rank=1024,
        window=128,
        compress_ratios=ratios,
        index_n_heads=64,
        index_head_dim=128,
        index_topk=512,
        n_expert=n_expert,
        n_expert_used=min(6, n_expert),
        moe_ff=512,
        n_hash_layers=1,
        swiglu_limit=10.0,
        context_length=1 << 20,
    )
