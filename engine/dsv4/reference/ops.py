"""DeepSeek-V4 mechanisms in numpy, one function each, in float64 for an unambiguous oracle.

Shape legend: D model width, hc residual streams (4), H heads, hd head dim (K = V), r RoPE
dims (the last r of a head), E experts, k experts per token, n keys attended.
The quantisation simulations of the official code (FP8 KV, FP4 indexer) and the Hadamard
rotation of the indexer (orthogonal, so it leaves q·k unchanged) are left out: the reference
is the exact-arithmetic model; see ``docs/dsv4.md`` for what that means for tolerances.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def rms_norm(x: Array, weight: Array | None, eps: float) -> Array:
    """x · rsqrt(mean(x²) + eps) · weight over the last axis."""
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return np.asarray(y if weight is None else y * weight)


def sigmoid(x: Array) -> Array:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def softplus(x: Array) -> Array:
    return np.asarray(np.logaddexp(0.0, x))


# --- RoPE ---------------------------------------------------------------------------------


def rope_freqs(r: int, base: float, yarn: tuple[float, int, int] | None) -> Array:
    """Angular frequency of each of the r/2 adjacent pairs; YaRN blends in ``f/factor`` above ``low``.

    ``yarn`` = (factor, low, high): pair j keeps f_j below ``low``, uses f_j/factor above ``high``
    and a linear ramp between. No magnitude (mscale) factor: cos/sin stay unit (V4 cancels it).
    """
    j = np.arange(r // 2, dtype=np.float64)
    f = base ** (-2.0 * j / r)  # [r/2]
    if yarn is None:
        return f
    factor, low, high = yarn
    ramp = np.clip((j - low) / max(0.001, high - low), 0.0, 1.0)
    return f / factor * ramp + f * (1.0 - ramp)


def rope_tail(x: Array, pos: int, freqs: Array, inverse: bool = False) -> Array:
    """Rotate the last ``2·len(freqs)`` dims of ``x [..., d]`` at position ``pos`` (pairs 2i, 2i+1)."""
    r = 2 * len(freqs)
    theta = pos * freqs * (-1.0 if inverse else 1.0)  # [r/2]
    cos, sin = np.cos(theta), np.sin(theta)
    out = x.copy()
    even, odd = x[..., -r::2], x[..., -r + 1 :: 2]  # [..., r/2] each
    out[..., -r::2] = even * cos - odd * sin
    out[..., -r + 1 :: 2] = even * sin + odd * cos
    return out


# --- mHC hyper-connections ----------------------------------------------------------------


def sinkhorn(m: Array, iters: int, eps: float) -> Array:
    """Doubly-stochastic projection of ``m [src, dst]``: row softmax, then column/row scaling."""
    m = np.exp(m - m.max(axis=1, keepdims=True))
    m = m / m.sum(axis=1, keepdims=True) + eps  # softmax over destinations, per source
    m = m / (m.sum(axis=0, keepdims=True) + eps)  # columns
    for _ in range(iters - 1):
        m = m / (m.sum(axis=1, keepdims=True) + eps)  # rows
        m = m / (m.sum(axis=0, keepdims=True) + eps)  # columns
    return m


def hc_mixes(x: Array, fn: Array, norm_eps: float) -> Array:
    """μ = (fn · flat(X)) · rsqrt(mean(flat²) + eps).  x [hc, D], fn [m, hc·D] → [m]."""
    flat = x.reshape(-1)  # [hc·D]
    return np.asarray((fn @ flat) / np.sqrt(np.mean(flat * flat) + norm_eps))


def hc_pre(
    x: Array, fn: Array, base: Array, scale: Array, *, hc_eps: float, iters: int, norm_eps: float
) -> tuple[Array, Array, Array]:
    """Collapse the streams for a sublayer.  x [hc, D] → (u [D], post [hc], comb [src hc, dst hc])."""
    hc = x.shape[0]
    mu = hc_mixes(x, fn, norm_eps)  # [(2+hc)·hc]
    pre = sigmoid(mu[:hc] * scale[0] + base[:hc]) + hc_eps  # [hc]
    post = 2.0 * sigmoid(mu[hc : 2 * hc] * scale[1] + base[hc : 2 * hc])  # [hc]
    comb = (mu[2 * hc :] * scale[2] + base[2 * hc :]).reshape(hc, hc)  # [src, dst]
    comb = sinkhorn(comb, iters, hc_eps)
    u = pre @ x  # [D] = Σ_j pre_j X_j
    return u, post, comb


def hc_post(f: Array, x: Array, post: Array, comb: Array) -> Array:
    """New streams: X'_b = post_b · f + Σ_a comb[a, b] · X_a.  f [D], x [hc, D] → [hc, D]."""
    return np.asarray(post[:, None] * f[None, :] + comb.T @ x)


def hc_head(x: Array, fn: Array, base: Array, scale: Array, *, hc_eps: float, norm_eps: float) -> Array:
    """Final collapse of the streams (no Sinkhorn).  x [hc, D] → [D]."""
    w = sigmoid(hc_mixes(x, fn, norm_eps) * scale[0] + base) + hc_eps  # [hc]
    return np.asarray(w @ x)


# --- compressor, indexer, attention --------------------------------------------------------


def pool_block(values: Array, scores: Array) -> Array:
    """Per-channel softmax pooling: Σ_t softmax_t(s[t, c]) · a[t, c].  [n, d] × [n, d] → [d]."""
    s = scores - scores.max(axis=0, keepdims=True)
    p = np.exp(s)
    return np.asarray((p * values).sum(axis=0) / p.sum(axis=0))


def indexer_scores(q: Array, keys: Array, head_w: Array) -> Array:
    """Lightning indexer I(s) = Σ_h w_h · ReLU(q_h · K_s).  q [Hi, di], keys [n, di], w [Hi] → [n]."""
    return np.asarray(head_w @ np.maximum(q @ keys.T, 0.0))


def top_k(scores: Array, k: int) -> Array:
    """Indices of the k largest scores (k ≤ len), in descending score order."""
    order = np.argsort(-scores, kind="stable")
    return order[:k]


def attend_with_sink(q: Array, keys: Array, sinks: Array) -> Array:
    """One softmax per head over ``keys`` plus a zero-value sink logit.  q [H, hd], keys [n, hd] → [H, hd]."""
    hd = q.shape[-1]
    s = q @ keys.T / np.sqrt(hd)  # [H, n]
    m = np.maximum(s.max(axis=1), sinks)  # [H]
    p = np.exp(s - m[:, None])  # [H, n]
    denom = p.sum(axis=1) + np.exp(sinks - m)  # [H]
    return np.asarray((p @ keys) / denom[:, None])


def grouped_out(o: Array, wo_a: Array, wo_b: Array, groups: int) -> Array:
    """Grouped low-rank output.  o [H, hd]; wo_a [G·rank, H·hd/G]; wo_b [D, G·rank] → [D]."""
    og = o.reshape(groups, -1)  # [G, H·hd/G]
    wa = wo_a.reshape(groups, -1, og.shape[1])  # [G, rank, H·hd/G]
    z = np.einsum("grc,gc->gr", wa, og).reshape(-1)  # [G·rank]
    return np.asarray(wo_b @ z)


# --- MoE ----------------------------------------------------------------------------------


def swiglu_clamped(x: Array, w_gate: Array, w_up: Array, w_down: Array, limit: float) -> Array:
    """W2 · (silu(min(W1 x, limit)) · clamp(W3 x, ±limit)).  x [D] → [D]."""
    g = np.minimum(w_gate @ x, limit)
    u = np.clip(w_up @ x, -limit, limit)
    return np.asarray(w_down @ (g * sigmoid(g) * u))


def route(
    x: Array, gate: Array, bias: Array | None, hashed: Array | None, k: int, scale: float
) -> tuple[Array, Array]:
    """Experts and weights: sqrt-softplus scores; bias only for choosing; hash table if given.

    x [D], gate [E, D], bias [E] | None, hashed [k] | None → (ids [k], weights [k]).
    """
    p = np.sqrt(softplus(gate @ x))  # [E]
    ids = hashed if hashed is not None else top_k(p + (0.0 if bias is None else bias), k)
    w = p[ids]
    return ids, w / max(float(w.sum()), 6.103515625e-5) * scale
