"""Tiny DeepSeek-V4 (``deepseek4``) GGUF files with seeded random weights, for tests and profiles.

The keys and tensor names are those the bundled llama.cpp reads (``src/models/deepseek4.cpp``
loader); numpy shapes below are PyTorch order ``[out, in]``, i.e. GGUF ``ne`` reversed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from longdesk.engine.dsv4.config import ARCH, CSA_RATIO, SQRT_SOFTPLUS, V4Config
from longdesk.engine.dsv4.vocab import TinyVocab, tiny_vocab

WeightType = Literal["f32", "f16", "q8_0"]
Weights = dict[str, np.ndarray]

# Tensors that stay F32 whatever the file type (norms, hyper-connection params, sinks, biases).
_ALWAYS_F32 = ("_norm.", "hc_", "_sinks.", "exp_probs_b", "_ape.", "output_hc_")


def tiny_weights(cfg: V4Config, seed: int = 0) -> Weights:
    """Random weights scaled so that every mechanism stays in a non-degenerate regime.

    Linears are N(0, 1/fan_in) so activations stay O(1); norm weights are near 1; the hc
    projections give O(1) mixes; sinks, APE and routing biases are O(1) so they matter.
    """
    rng = np.random.default_rng(seed)
    w: Weights = {}

    def lin(out: int, inp: int, gain: float = 1.0) -> np.ndarray:
        return np.asarray((rng.standard_normal((out, inp)) * gain / np.sqrt(inp)).astype(np.float32))

    def near_one(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    def normal(shape: tuple[int, ...], scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    d, hd, hc = cfg.dim, cfg.head_dim, cfg.hc_mult
    w["token_embd.weight"] = normal((cfg.n_vocab, d), 1.0)
    w["output_norm.weight"] = near_one(d)
    w["output.weight"] = lin(cfg.n_vocab, d, 2.0)
    w["output_hc_fn.weight"] = lin(hc, hc * d)
    w["output_hc_base.weight"] = normal((hc,), 0.5)
    w["output_hc_scale.weight"] = (0.5 + rng.random(1)).astype(np.float32)
    for il in range(cfg.n_layer):
        p = f"blk.{il}."
        w[p + "attn_norm.weight"] = near_one(d)
        w[p + "attn_sinks.weight"] = normal((cfg.n_head,), 1.0)
        w[p + "attn_q_a.weight"] = lin(cfg.q_lora_rank, d)
        w[p + "attn_q_a_norm.weight"] = near_one(cfg.q_lora_rank)
        w[p + "attn_q_b.weight"] = lin(cfg.n_head * hd, cfg.q_lora_rank)
        w[p + "attn_kv.weight"] = lin(hd, d)
        w[p + "attn_kv_a_norm.weight"] = near_one(hd)
        group_in = cfg.n_head * hd // cfg.o_groups
        w[p + "attn_output_a.weight"] = lin(cfg.o_groups * cfg.o_lora_rank, group_in)
        w[p + "attn_output_b.weight"] = lin(d, cfg.o_groups * cfg.o_lora_rank)
        for site in ("attn", "ffn"):
            w[p + f"hc_{site}_fn.weight"] = lin(cfg.hc_mix, hc * d)
            w[p + f"hc_{site}_base.weight"] = normal((cfg.hc_mix,), 0.5)
            w[p + f"hc_{site}_scale.weight"] = (0.5 + rng.random(3)).astype(np.float32)
        ratio = cfg.ratio(il)
        if ratio:
            coff = 2 if ratio == CSA_RATIO else 1
            w[p + "attn_compressor_kv.weight"] = lin(coff * hd, d)
            w[p + "attn_compressor_gate.weight"] = lin(coff * hd, d)
            w[p + "attn_compressor_ape.weight"] = normal((ratio, coff * hd), 0.5)
            w[p + "attn_compressor_norm.weight"] = near_one(hd)
        if ratio == CSA_RATIO:
            di, nh = cfg.index_head_dim, cfg.index_n_heads
            w[p + "indexer.proj.weight"] = lin(nh, d, 4.0)
            w[p + "indexer.attn_q_b.weight"] = lin(nh * di, cfg.q_lora_rank)
            w[p + "indexer_compressor_kv.weight"] = lin(2 * di, d)
            w[p + "indexer_compressor_gate.weight"] = lin(2 * di, d)
            w[p + "indexer_compressor_ape.weight"] = normal((ratio, 2 * di), 0.5)
            w[p + "indexer_compressor_norm.weight"] = near_one(di)
        w[p + "ffn_norm.weight"] = near_one(d)
        w[p + "ffn_gate_inp.weight"] = lin(cfg.n_expert, d, 2.0)
        if il < cfg.n_hash_layers:
            table = np.stack([rng.permutation(cfg.n_expert)[: cfg.n_expert_used] for _ in range(cfg.n_vocab)])
            w[p + "ffn_gate_tid2eid.weight"] = table.astype(np.int32)
        else:
            w[p + "exp_probs_b.bias"] = normal((cfg.n_expert,), 0.3)
        ff = cfg.moe_ff
        w[p + "ffn_gate_exps.weight"] = np.stack([lin(ff, d, 2.0) for _ in range(cfg.n_expert)])
        w[p + "ffn_up_exps.weight"] = np.stack([lin(ff, d, 2.0) for _ in range(cfg.n_expert)])
        w[p + "ffn_down_exps.weight"] = np.stack([lin(d, ff) for _ in range(cfg.n_expert)])
        sff = ff * cfg.n_expert_shared
        w[p + "ffn_gate_shexp.weight"] = lin(sff, d, 2.0)
        w[p + "ffn_up_shexp.weight"] = lin(sff, d, 2.0)
        w[p + "ffn_down_shexp.weight"] = lin(d, sff)
    return w


def write_metadata(writer: object, cfg: V4Config, vocab: TinyVocab) -> None:
    """The ``deepseek4.*`` and ``tokenizer.ggml.*`` keys, named exactly as llama.cpp reads them."""
    import gguf

    assert isinstance(writer, gguf.GGUFWriter)
    a = ARCH
    u32, f32 = writer.add_uint32, writer.add_float32
    writer.add_name("longdesk-tiny-v4")
    u32(f"{a}.context_length", cfg.context_length)
    u32(f"{a}.embedding_length", cfg.dim)
    u32(f"{a}.block_count", cfg.n_layer)
    u32(f"{a}.vocab_size", cfg.n_vocab)
    u32(f"{a}.attention.head_count", cfg.n_head)
    u32(f"{a}.attention.head_count_kv", 1)
    u32(f"{a}.attention.key_length", cfg.head_dim)
    u32(f"{a}.attention.value_length", cfg.head_dim)
    u32(f"{a}.rope.dimension_count", cfg.rope_dim)
    u32(f"{a}.attention.q_lora_rank", cfg.q_lora_rank)
    u32(f"{a}.attention.output_lora_rank", cfg.o_lora_rank)
    u32(f"{a}.attention.output_group_count", cfg.o_groups)
    u32(f"{a}.attention.sliding_window", cfg.window)
    f32(f"{a}.attention.layer_norm_rms_epsilon", cfg.norm_eps)
    writer.add_array(f"{a}.attention.compress_ratios", [int(r) for r in cfg.compress_ratios])
    f32(f"{a}.attention.compress_rope_freq_base", cfg.compress_rope_base)
    u32(f"{a}.attention.indexer.head_count", cfg.index_n_heads)
    u32(f"{a}.attention.indexer.key_length", cfg.index_head_dim)
    u32(f"{a}.attention.indexer.top_k", cfg.index_topk)
    f32(f"{a}.rope.freq_base", cfg.rope_base)
    writer.add_string(f"{a}.rope.scaling.type", "yarn")
    f32(f"{a}.rope.scaling.factor", cfg.yarn_factor)
    u32(f"{a}.rope.scaling.original_context_length", cfg.yarn_orig_ctx)
    f32(f"{a}.rope.scaling.yarn_beta_fast", cfg.yarn_beta_fast)
    f32(f"{a}.rope.scaling.yarn_beta_slow", cfg.yarn_beta_slow)
    u32(f"{a}.expert_count", cfg.n_expert)
    u32(f"{a}.expert_used_count", cfg.n_expert_used)
    u32(f"{a}.expert_shared_count", cfg.n_expert_shared)
    u32(f"{a}.expert_feed_forward_length", cfg.moe_ff)
    f32(f"{a}.expert_weights_scale", cfg.route_scale)
    writer.add_bool(f"{a}.expert_weights_norm", True)
    u32(f"{a}.expert_gating_func", SQRT_SOFTPLUS)
    u32(f"{a}.expert_group_count", 0)
    u32(f"{a}.expert_group_used_count", 0)
    u32(f"{a}.hash_layer_count", cfg.n_hash_layers)
    writer.add_array(f"{a}.swiglu_clamp_exp", [float(cfg.swiglu_limit)] * cfg.n_layer)
    u32(f"{a}.hyper_connection.count", cfg.hc_mult)
    u32(f"{a}.hyper_connection.sinkhorn_iterations", cfg.hc_iters)
    f32(f"{a}.hyper_connection.epsilon", cfg.hc_eps)
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_string("tokenizer.ggml.pre", "joyai-llm")
    writer.add_array("tokenizer.ggml.tokens", list(vocab.tokens))
    writer.add_array("tokenizer.ggml.token_type", list(vocab.token_types))
    writer.add_array("tokenizer.ggml.merges", list(vocab.merges))
    u32("tokenizer.ggml.bos_token_id", vocab.bos_id)
    u32("tokenizer.ggml.eos_token_id", vocab.eos_id)
    u32("tokenizer.ggml.padding_token_id", vocab.eos_id)
    writer.add_bool("tokenizer.ggml.add_bos_token", False)
    writer.add_bool("tokenizer.ggml.add_eos_token", False)


def _add_tensor(writer: object, name: str, arr: np.ndarray, wtype: WeightType) -> None:
    import gguf

    assert isinstance(writer, gguf.GGUFWriter)
    is_matrix = arr.ndim >= 2 and arr.dtype == np.float32 and not any(k in name for k in _ALWAYS_F32)
    if not is_matrix or wtype == "f32":
        writer.add_tensor(name, arr)
    elif wtype == "f16":
        writer.add_tensor(name, arr.astype(np.float16))
    else:
        qtype = gguf.GGMLQuantizationType.Q8_0
        if arr.shape[-1] % 32:
            writer.add_tensor(name, arr.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)


def write_tiny_v4(
    path: Path,
    cfg: V4Config | None = None,
    *,
    seed: int = 0,
    wtype: WeightType = "f32",
    mutate: Callable[[Weights], None] | None = None,
    metadata_override: dict[str, int] | None = None,
) -> Path:
    """Write a ``deepseek4`` GGUF with seeded random weights and the tiny V4 vocabulary.

    Args:
        path: where to write the file.
        cfg: the architecture (default: ``V4Config()``, the tiny model).
        seed: random seed for the weights.
        wtype: storage of the weight matrices (norms, hc, sinks, biases stay F32).
        mutate: edits the weight dict before writing (tests of malformed files).
        metadata_override: ``deepseek4.<key>`` u32 values written instead of the config's.
    """
    import gguf

    cfg = cfg or V4Config()
    vocab = tiny_vocab(cfg.n_vocab)
    weights = tiny_weights(cfg, seed)
    if mutate is not None:
        mutate(weights)
    writer = gguf.GGUFWriter(str(path), ARCH)
    write_metadata(writer, cfg, vocab)
    for key, value in (metadata_override or {}).items():
        full = f"{ARCH}.{key}"
        writer.kv_data[0].pop(full, None)
        writer.add_uint32(full, value)
    for name, arr in weights.items():
        _add_tensor(writer, name, arr, wtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
