"""The whole DeepSeek-V4 model in numpy, token by token, with the decode-time compressor state.

Reads the weights from a ``deepseek4`` GGUF (dequantised), so it runs exactly the file that
llama.cpp runs. Prefill is the same code as decoding: one token at a time, each layer keeping
its raw window, compressed entries, indexer keys and the compressors' pending blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from longdesk.engine.dsv4.config import ARCH, CSA_RATIO, HCA_RATIO, V4Config
from longdesk.engine.dsv4.reference import ops

Array = np.ndarray


def config_from_gguf(path: Path) -> V4Config:
    """The ``V4Config`` stored in a deepseek4 GGUF's metadata."""
    import gguf

    reader = gguf.GGUFReader(str(path))

    def val(key: str) -> object:
        f = reader.fields[f"{ARCH}.{key}"]
        return f.contents()

    def num(key: str) -> float:
        v = val(key)
        assert isinstance(v, int | float)
        return v

    ratios = val("attention.compress_ratios")
    limits = val("swiglu_clamp_exp")
    assert isinstance(ratios, list)
    assert isinstance(limits, list)
    n_layer = int(num("block_count"))
    return V4Config(
        n_vocab=len(reader.fields["tokenizer.ggml.tokens"].data),
        dim=int(num("embedding_length")),
        n_layer=n_layer,
        n_head=int(num("attention.head_count")),
        head_dim=int(num("attention.key_length")),
        rope_dim=int(num("rope.dimension_count")),
        q_lora_rank=int(num("attention.q_lora_rank")),
        o_groups=int(num("attention.output_group_count")),
        o_lora_rank=int(num("attention.output_lora_rank")),
        window=int(num("attention.sliding_window")),
        compress_ratios=tuple(int(r) for r in ratios[:n_layer]),
        rope_base=num("rope.freq_base"),
        compress_rope_base=num("attention.compress_rope_freq_base"),
        yarn_factor=num("rope.scaling.factor"),
        yarn_orig_ctx=int(num("rope.scaling.original_context_length")),
        yarn_beta_fast=num("rope.scaling.yarn_beta_fast"),
        yarn_beta_slow=num("rope.scaling.yarn_beta_slow"),
        index_n_heads=int(num("attention.indexer.head_count")),
        index_head_dim=int(num("attention.indexer.key_length")),
        index_topk=int(num("attention.indexer.top_k")),
        n_expert=int(num("expert_count")),
        n_expert_used=int(num("expert_used_count")),
        n_expert_shared=int(num("expert_shared_count")),
        moe_ff=int(num("expert_feed_forward_length")),
        n_hash_layers=int(num("hash_layer_count")),
        route_scale=num("expert_weights_scale"),
        swiglu_limit=float(limits[0]),
        hc_mult=int(num("hyper_connection.count")),
        hc_iters=int(num("hyper_connection.sinkhorn_iterations")),
        hc_eps=num("hyper_connection.epsilon"),
        norm_eps=num("attention.layer_norm_rms_epsilon"),
        context_length=int(num("context_length")),
    )


def load_weights(path: Path) -> dict[str, Array]:
    """Every tensor of the file as float64 (integer tables stay integer), numpy order [out, in]."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    out: dict[str, Array] = {}
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape))
        if t.tensor_type == gguf.GGMLQuantizationType.I32:
            out[t.name] = np.asarray(t.data, dtype=np.int64).reshape(shape)
        else:
            out[t.name] = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float64)
    return out


@dataclass
class Compressor:
    """A compressor's pending tokens and finished entries (one per ``ratio`` tokens).

    With ``overlap`` (CSA), each token row is 2·d wide: the first half pools into the *next*
    block's entry, the second half into its own block's; ``prev_*`` keep the last full block.
    """

    ratio: int
    overlap: bool
    values: list[Array] = field(default_factory=list)  # this block's a_t rows
    scores: list[Array] = field(default_factory=list)  # this block's s_t rows
    prev_values: Array | None = None  # [ratio, 2d] of the previous block (overlap only)
    prev_scores: Array | None = None
    entries: list[Array] = field(default_factory=list)

    def push(self, a: Array, s: Array) -> Array | None:
        """Add one token's (a, s); return the raw pooled entry when its block completes."""
        self.values.append(a)
        self.scores.append(s)
        if len(self.values) < self.ratio:
            return None
        cur_a, cur_s = np.stack(self.values), np.stack(self.scores)  # [ratio, coff·d]
        self.values, self.scores = [], []
        if not self.overlap:
            return ops.pool_block(cur_a, cur_s)
        d = cur_a.shape[1] // 2
        if self.prev_values is None or self.prev_scores is None:  # block 0: no previous block
            prev_a, prev_s = np.zeros((self.ratio, d)), np.full((self.ratio, d), -np.inf)
        else:
            prev_a, prev_s = self.prev_values[:, :d], self.prev_scores[:, :d]
        self.prev_values, self.prev_scores = cur_a, cur_s
        cand_a = np.concatenate([prev_a, cur_a[:, d:]])  # [2·ratio, d]
        cand_s = np.concatenate([prev_s, cur_s[:, d:]])
        return ops.pool_block(cand_a, cand_s)


@dataclass
class LayerState:
    window: list[Array] = field(default_factory=list)  # raw kv of the last `window` tokens
    main: Compressor | None = None
    index: Compressor | None = None


class V4Reference:
    """A deepseek4 model in numpy that decodes one token at a time.

    ``step(token)`` returns the logits after that token; the state (raw windows, compressor
    blocks, compressed entries, indexer keys) carries over, so a prompt and its continuation
    are checked with the same code.
    """

    def __init__(self, cfg: V4Config, weights: dict[str, Array]) -> None:
        self.cfg = cfg
        self.w = weights
        self.pos = 0
        low, high = cfg.yarn_ramp()
        self.freqs_plain = ops.rope_freqs(cfg.rope_dim, cfg.rope_base, None)
        self.freqs_comp = ops.rope_freqs(cfg.rope_dim, cfg.compress_rope_base, (cfg.yarn_factor, low, high))
        self.layers = [self._new_layer(il) for il in range(cfg.n_layer)]
        self.selected: list[dict[int, Array]] = [{} for _ in range(cfg.n_layer)]  # pos → top-k ids

    @classmethod
    def from_gguf(cls, path: Path) -> V4Reference:
        return cls(config_from_gguf(path), load_weights(path))

    def _new_layer(self, il: int) -> LayerState:
        ratio = self.cfg.ratio(il)
        state = LayerState()
        if ratio:
            state.main = Compressor(ratio, overlap=ratio == CSA_RATIO)
        if ratio == CSA_RATIO:
            state.index = Compressor(ratio, overlap=True)
        return state

    # --- one token ------------------------------------------------------------------------

    def step(self, token: int) -> Array:
        """Feed ``token`` at the next position; return its logits [n_vocab]."""
        cfg, w = self.cfg, self.w
        x = np.repeat(w["token_embd.weight"][token][None, :], cfg.hc_mult, axis=0)  # [hc, D]
        for il in range(cfg.n_layer):
            x = self._block(il, x, token)
        y = ops.hc_head(
            x,
            w["output_hc_fn.weight"],
            w["output_hc_base.weight"],
            w["output_hc_scale.weight"],
            hc_eps=cfg.hc_eps,
            norm_eps=cfg.norm_eps,
        )  # [D]
        y = ops.rms_norm(y, w["output_norm.weight"], cfg.norm_eps)
        self.pos += 1
        return np.asarray(w["output.weight"] @ y)  # [n_vocab]

    def _block(self, il: int, x: Array, token: int) -> Array:
        cfg, p = self.cfg, f"blk.{il}."
        for site in ("attn", "ffn"):
            u, post, comb = ops.hc_pre(
                x,
                self.w[p + f"hc_{site}_fn.weight"],
                self.w[p + f"hc_{site}_base.weight"],
                self.w[p + f"hc_{site}_scale.weight"],
                hc_eps=cfg.hc_eps,
                iters=cfg.hc_iters,
                norm_eps=cfg.norm_eps,
            )
            h = ops.rms_norm(u, self.w[p + f"{site}_norm.weight"], cfg.norm_eps)  # [D]
            f = self._attention(il, h) if site == "attn" else self._moe(il, h, token)
            x = ops.hc_post(f, x, post, comb)  # [hc, D]
        return x

    def _attention(self, il: int, h: Array) -> Array:
        cfg, w, p, t = self.cfg, self.w, f"blk.{il}.", self.pos
        st = self.layers[il]
        ratio = cfg.ratio(il)
        freqs = self.freqs_comp if ratio else self.freqs_plain
        cq = ops.rms_norm(
            w[p + "attn_q_a.weight"] @ h, w[p + "attn_q_a_norm.weight"], cfg.norm_eps
        )  # [q_rank]
        q = (w[p + "attn_q_b.weight"] @ cq).reshape(cfg.n_head, cfg.head_dim)  # [H, hd]
        q = ops.rope_tail(ops.rms_norm(q, None, cfg.norm_eps), t, freqs)
        kv = ops.rms_norm(w[p + "attn_kv.weight"] @ h, w[p + "attn_kv_a_norm.weight"], cfg.norm_eps)  # [hd]
        kv = ops.rope_tail(kv, t, freqs)
        st.window = [*st.window, kv][-cfg.window :]
        keys = list(st.window)
        if st.main is not None:
            self._compress(st.main, h, p + "attn_compressor_", t)
        if ratio == HCA_RATIO and st.main is not None:
            keys += st.main.entries
        if ratio == CSA_RATIO and st.main is not None and st.index is not None:
            self._compress(st.index, h, p + "indexer_compressor_", t)
            n = len(st.index.entries)
            if n:
                qi = (w[p + "indexer.attn_q_b.weight"] @ cq).reshape(cfg.index_n_heads, cfg.index_head_dim)
                qi = ops.rope_tail(qi, t, freqs)  # [Hi, di]
                hw = (w[p + "indexer.proj.weight"] @ h) / np.sqrt(cfg.index_head_dim * cfg.index_n_heads)
                scores = ops.indexer_scores(qi, np.stack(st.index.entries), hw)  # [n]
                chosen = ops.top_k(scores, min(cfg.index_topk, n))
                self.selected[il][t] = chosen
                keys += [st.main.entries[i] for i in chosen]
        o = ops.attend_with_sink(q, np.stack(keys), w[p + "attn_sinks.weight"])  # [H, hd]
        o = ops.rope_tail(o, t, freqs, inverse=True)
        return ops.grouped_out(o, w[p + "attn_output_a.weight"], w[p + "attn_output_b.weight"], cfg.o_groups)

    def _compress(self, comp: Compressor, h: Array, prefix: str, t: int) -> None:
        """Push token t into a compressor; on a finished block store its normed, rotated entry."""
        w = self.w
        a = w[prefix + "kv.weight"] @ h  # [coff·d]
        s = w[prefix + "gate.weight"] @ h + w[prefix + "ape.weight"][t % comp.ratio]
        pooled = comp.push(a, s)
        if pooled is not None:
            entry = ops.rms_norm(pooled, w[prefix + "norm.weight"], self.cfg.norm_eps)
            comp.entries.append(ops.rope_tail(entry, t + 1 - comp.ratio, self.freqs_comp))

    def _moe(self, il: int, h: Array, token: int) -> Array:
        cfg, w, p = self.cfg, self.w, f"blk.{il}."
        hashed = w[p + "ffn_gate_tid2eid.weight"][token] if il < cfg.n_hash_layers else None
        bias = w.get(p + "exp_probs_b.bias")
        ids, gw = ops.route(h, w[p + "ffn_gate_inp.weight"], bias, hashed, cfg.n_expert_used, cfg.route_scale)
        lim = cfg.swiglu_limit
        y = ops.swiglu_clamped(
            h,
            w[p + "ffn_gate_shexp.weight"],
            w[p + "ffn_up_shexp.weight"],
            w[p + "ffn_down_shexp.weight"],
            lim,
        )
        for e, g in zip(ids, gw, strict=True):
            y = y + g * ops.swiglu_clamped(
                h,
                w[p + "ffn_gate_exps.weight"][e],
                w[p + "ffn_up_exps.weight"][e],
                w[p + "ffn_down_exps.weight"][e],
                lim,
            )
        return y
