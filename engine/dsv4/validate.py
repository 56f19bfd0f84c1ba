"""Checks a deepseek4 GGUF's header against what llama.cpp will assume, before it is loaded.

llama.cpp aborts the whole process (``GGML_ASSERT``) on some malformed DeepSeek-V4 files,
e.g. a hyper-connection count other than 4, so these are refused here with a message.
Tensor shapes are compared in GGUF order (``ne``, fastest dimension first), as the loader does.
"""

from __future__ import annotations

from collections.abc import Iterator

from longdesk.engine.dsv4.config import CSA_RATIO, HCA_RATIO, SQRT_SOFTPLUS
from longdesk.engine.models.gguf_header import GGUFHeader

_MAX_PROBLEMS = 3


def _expected_tensors(h: GGUFHeader, ratios: list[int]) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Every tensor the loader requires, with its ``ne`` shape from the metadata."""
    d = h.arch_int("embedding_length")
    n_vocab = h.vocab_size or h.arch_int("vocab_size")
    n_layer = h.arch_int("block_count")
    n_head = h.arch_int("attention.head_count")
    hd = h.arch_int("attention.key_length")
    q_rank = h.arch_int("attention.q_lora_rank")
    groups = h.arch_int("attention.output_group_count")
    o_rank = h.arch_int("attention.output_lora_rank")
    hc = h.arch_int("hyper_connection.count")
    mix = (2 + hc) * hc
    n_exp, n_used = h.arch_int("expert_count"), h.arch_int("expert_used_count")
    ff = h.arch_int("expert_feed_forward_length")
    sff = ff * h.arch_int("expert_shared_count", 1)
    n_hash = h.arch_int("hash_layer_count")
    ih, idim = h.arch_int("attention.indexer.head_count"), h.arch_int("attention.indexer.key_length")
    yield "token_embd.weight", (d, n_vocab)
    yield "output_norm.weight", (d,)
    yield "output.weight", (d, n_vocab)
    yield "output_hc_fn.weight", (hc * d, hc)
    yield "output_hc_base.weight", (hc,)
    yield "output_hc_scale.weight", (1,)
    for il in range(n_layer):
        p = f"blk.{il}."
        yield p + "attn_norm.weight", (d,)
        yield p + "attn_sinks.weight", (n_head,)
        yield p + "attn_q_a.weight", (d, q_rank)
        yield p + "attn_q_a_norm.weight", (q_rank,)
        yield p + "attn_q_b.weight", (q_rank, n_head * hd)
        yield p + "attn_kv.weight", (d, hd)
        yield p + "attn_kv_a_norm.weight", (hd,)
        yield p + "attn_output_a.weight", (n_head * hd // max(groups, 1), o_rank * groups)
        yield p + "attn_output_b.weight", (groups * o_rank, d)
        for site in ("attn", "ffn"):
            yield p + f"hc_{site}_fn.weight", (hc * d, mix)
            yield p + f"hc_{site}_base.weight", (mix,)
            yield p + f"hc_{site}_scale.weight", (3,)
        ratio = ratios[il]
        if ratio:
            coff = 2 if ratio == CSA_RATIO else 1
            yield p + "attn_compressor_kv.weight", (d, coff * hd)
            yield p + "attn_compressor_gate.weight", (d, coff * hd)
            yield p + "attn_compressor_ape.weight", (coff * hd, ratio)
            yield p + "attn_compressor_norm.weight", (hd,)
        if ratio == CSA_RATIO:
            yield p + "indexer.proj.weight", (d, ih)
            yield p + "indexer.attn_q_b.weight", (q_rank, ih * idim)
            yield p + "indexer_compressor_kv.weight", (d, 2 * idim)
            yield p + "indexer_compressor_gate.weight", (d, 2 * idim)
            yield p + "indexer_compressor_ape.weight", (2 * idim, ratio)
            yield p + "indexer_compressor_norm.weight", (idim,)
        yield p + "ffn_norm.weight", (d,)
        yield p + "ffn_gate_inp.weight", (d, n_exp)
        if il < n_hash:
            yield p + "ffn_gate_tid2eid.weight", (n_used, n_vocab)
        else:
            yield p + "exp_probs_b.bias", (n_exp,)
        yield p + "ffn_gate_exps.weight", (d, ff, n_exp)
        yield p + "ffn_up_exps.weight", (d, ff, n_exp)
        yield p + "ffn_down_exps.weight", (ff, d, n_exp)
        yield p + "ffn_gate_shexp.weight", (d, sff)
        yield p + "ffn_up_shexp.weight", (d, sff)
        yield p + "ffn_down_shexp.weight", (sff, d)


def _hparam_problems(h: GGUFHeader, ratios: list[int]) -> list[str]:
    out: list[str] = []
    n_layer = h.arch_int("block_count")
    hc = h.arch_int("hyper_connection.count")
    if hc != 4:
        out.append(f"hyper_connection.count is {hc}; DeepSeek-V4 has 4 residual streams")
    if len(ratios) < n_layer:
        out.append(f"compress_ratios has {len(ratios)} entries for {n_layer} layers")
    bad = sorted({r for r in ratios if r not in (0, CSA_RATIO, HCA_RATIO)})
    if bad:
        out.append(f"compress_ratios contains {bad}; only 0, 4 and 128 exist")
    gating = h.arch_int("expert_gating_func")
    if gating != SQRT_SOFTPLUS:
        out.append(
            f"expert_gating_func is {gating}; DeepSeek-V4 scores experts with sqrt-softplus ({SQRT_SOFTPLUS})"
        )
    n_head, groups = h.arch_int("attention.head_count"), h.arch_int("attention.output_group_count")
    if not groups or n_head % groups:
        out.append(f"{n_head} heads do not split into {groups} output groups")
    rope = h.arch_int("rope.dimension_count")
    if h.arch_int("attention.key_length") < rope or (
        CSA_RATIO in ratios and h.arch_int("attention.indexer.key_length") < rope
    ):
        out.append(f"a head is narrower than its {rope} RoPE dimensions")
    if h.arch_int("hash_layer_count") >= n_layer:
        out.append("every layer is hash-routed; hash_layer_count must be below block_count")
    if h.arch_int("attention.key_length") != h.arch_int(
        "attention.value_length", h.arch_int("attention.key_length")
    ):
        out.append("key_length and value_length differ; DeepSeek-V4 keys are its values")
    return out


def _is_grouped(got: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """``attn_output_a`` may also be stored 3-D, ``[group in, rank, groups]`` (the loader reshapes)."""
    return len(got) == 3 and got[0] == shape[0] and got[1] * got[2] == shape[1]


def dsv4_problems(header: GGUFHeader) -> list[str]:
    """Reasons llama.cpp would fail on (or misread) this deepseek4 file; empty when it is sound."""
    raw = header.metadata.get(f"{header.architecture}.attention.compress_ratios")
    ratios = [int(r) for r in raw] if isinstance(raw, list) else []
    problems = _hparam_problems(header, ratios)
    if problems:
        return problems
    present = {t.name: t.shape for t in header.tensors}
    for name, shape in _expected_tensors(header, ratios):
        got = present.get(name)
        if got is None:
            problems.append(f"tensor {name} is missing")
        elif tuple(got) != shape and not (name.endswith("attn_output_a.weight") and _is_grouped(got, shape)):
            problems.append(f"tensor {name} has shape {list(got)}, the metadata implies {list(shape)}")
        if len(problems) >= _MAX_PROBLEMS:
            break
    return problems


def check_dsv4(header: GGUFHeader) -> str:
    """Empty when the file is a sound deepseek4 model, else one line saying why it is not."""
    problems = dsv4_problems(header)
    if not problems:
        return ""
    return f"{header.path}: not a valid DeepSeek-V4 file: " + "; ".join(problems)
