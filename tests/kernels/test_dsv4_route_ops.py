"""Longdesk's Op C for DeepSeek-V4 (fused MoE routing and hyper-connection gates), tested the way
ggml tests ops: the optimised CPU kernel and its plain reference branch (``use_ref``) against a
float64 numpy definition, and the expert choice once against upstream's own decomposition
(softplus, sqrt, bias add, argsort top-k) on the same inputs. Runs on the installed wheel's libggml
through ctypes.

Edge shapes: decode (one token, so the sum is split over columns) and prefill (512 tokens);
V4-Flash's 256 experts with 6 used, few experts, one used, every expert used; exact ties; routing
weights with and without normalisation and scale; the head's pre-only gates.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.kernels.ggml_ctypes import I32, Ggml, Graph


@pytest.fixture(scope="module")
def ggml() -> Iterator[Ggml]:
    g = Ggml()
    if not g.has_route_ops:
        pytest.fail("the installed llama-cpp-python lacks Longdesk's Op C (LONGDESK_OPS=off build?)")
    return g


def _sqrt_softplus(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return np.sqrt(np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0)))))


# --------------------------------------------------------------------------------------------
# expert choice


def _topk(
    ggml: Ggml, logits: np.ndarray, bias: np.ndarray, n_used: int, use_ref: bool, threads: int = 2
) -> np.ndarray:
    with Graph(ggml) as gr:
        out = ggml.base.ggml_dsv4_moe_topk(gr.ctx, gr.tensor(logits), gr.tensor(bias), n_used)
        gr.compute(out, use_ref=use_ref, threads=threads)
        return gr.read(out, (logits.shape[0], n_used), np.int32)


def _check_choice(ids: np.ndarray, scores: np.ndarray, label: str) -> None:
    """Each row holds distinct experts, best first, and no expert left out scores higher than the
    weakest one taken (ties at the cut may go either way)."""
    T, n_used = ids.shape
    for t in range(T):
        row = ids[t]
        assert len(set(row.tolist())) == n_used, (label, t, row)
        taken = scores[t, row]
        assert np.all(np.diff(taken) <= 1e-6), (label, t, "not best first", taken)
        rest = np.delete(scores[t], row)
        if rest.size:
            assert rest.max() <= taken.min() + 1e-6, (label, t, rest.max(), taken.min())


@pytest.mark.parametrize(
    ("T", "n_expert", "n_used"),
    [(1, 256, 6), (512, 256, 6), (37, 8, 2), (5, 8, 1), (9, 6, 6), (3, 64, 32)],
)
def test_moe_topk_matches_reference(ggml: Ggml, T: int, n_expert: int, n_used: int) -> None:
    rng = np.random.default_rng(T * 1000 + n_expert)
    logits = (rng.standard_normal((T, n_expert)) * 3).astype(np.float32)
    logits[0, :3] = [25.0, -30.0, 19.5]  # both sides of softplus' linear cut-over
    bias = (rng.standard_normal(n_expert) * 0.3).astype(np.float32)
    scores = _sqrt_softplus(logits) + bias
    fast = _topk(ggml, logits, bias, n_used, use_ref=False)
    ref = _topk(ggml, logits, bias, n_used, use_ref=True)
    _check_choice(fast, scores, "optimised")
    _check_choice(ref, scores, "reference")
    assert np.array_equal(fast, ref)  # no ties here: the same experts in the same order


def test_moe_topk_ties_are_sets_of_equal_scores(ggml: Ggml) -> None:
    """Every expert scores the same for some tokens: any n_used distinct experts are right."""
    T, n_expert, n_used = 16, 32, 6
    logits = np.zeros((T, n_expert), dtype=np.float32)
    logits[8:, ::4] = 1.0  # half the tokens: 8 equal winners for 6 places
    bias = np.zeros(n_expert, dtype=np.float32)
    scores = _sqrt_softplus(logits) + bias
    for use_ref in (False, True):
        ids = _topk(ggml, logits, bias, n_used, use_ref=use_ref)
        _check_choice(ids, scores, f"use_ref={use_ref}")
        assert np.all(ids[8:] % 4 == 0), ids[8:]


def test_moe_topk_matches_upstream_decomposition(ggml: Ggml) -> None:
    """The same experts as upstream's sqrt(softplus(logits)) + bias -> argsort top-k."""
    rng = np.random.default_rng(11)
    T, n_expert, n_used = 64, 256, 6
    logits = (rng.standard_normal((T, n_expert)) * 2).astype(np.float32)
    bias = (rng.standard_normal(n_expert) * 0.2).astype(np.float32)
    ours = _topk(ggml, logits, bias, n_used, use_ref=False)
    with Graph(ggml) as gr:
        b = ggml.base
        probs = b.ggml_sqrt(gr.ctx, b.ggml_softplus(gr.ctx, gr.tensor(logits)))
        sel = b.ggml_add(gr.ctx, probs, gr.tensor(bias))
        top = b.ggml_cont(gr.ctx, b.ggml_argsort_top_k(gr.ctx, sel, n_used))
        gr.compute(top)
        up = gr.read(top, (T, n_used), np.int32)
    assert np.array_equal(np.sort(ours, axis=1), np.sort(up, axis=1))


# --------------------------------------------------------------------------------------------
# routing weights + weighted expert sum


def _combine_expected(
    experts: np.ndarray, logits: np.ndarray, ids: np.ndarray, norm: bool, scale: float
) -> np.ndarray:
    w = _sqrt_softplus(np.take_along_axis(logits, ids, axis=1))  # [T, n_used]
    if norm:
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 6.103515625e-5)
    w = w * scale
    return np.einsum("tu,tue->te", w, experts.astype(np.float64))


def _combine(
    ggml: Ggml,
    experts: np.ndarray,
    logits: np.ndarray,
    ids: np.ndarray,
    norm: bool,
    scale: float,
    use_ref: bool,
    threads: int,
) -> np.ndarray:
    with Graph(ggml) as gr:
        out = ggml.base.ggml_dsv4_moe_combine(
            gr.ctx, gr.tensor(experts), gr.tensor(logits), gr.tensor(ids, I32), norm, 6.103515625e-5, scale
        )
        gr.compute(out, use_ref=use_ref, threads=threads)
        return gr.read(out, (experts.shape[0], experts.shape[2]))


@pytest.mark.parametrize(
    ("T", "n_embd", "n_expert", "n_used", "norm", "scale", "threads"),
    [
        (1, 1100, 256, 6, True, 1.5, 2),  # decode: columns split over threads, not a 512 multiple
        (1, 64, 8, 2, True, 1.0, 2),
        (512, 256, 256, 6, True, 2.5, 2),  # prefill
        (7, 96, 8, 1, False, 1.0, 3),  # one expert, no normalisation
        (3, 40, 6, 6, False, 0.5, 1),
    ],
)
def test_moe_combine_matches_reference(
    ggml: Ggml, T: int, n_embd: int, n_expert: int, n_used: int, norm: bool, scale: float, threads: int
) -> None:
    rng = np.random.default_rng(T * 7 + n_embd)
    experts = rng.standard_normal((T, n_used, n_embd)).astype(np.float32)
    logits = (rng.standard_normal((T, n_expert)) * 2).astype(np.float32)
    ids = np.stack([rng.choice(n_expert, n_used, replace=False) for _ in range(T)]).astype(np.int32)
    want = _combine_expected(experts, logits, ids, norm, scale)
    for use_ref in (False, True):
        got = _combine(ggml, experts, logits, ids, norm, scale, use_ref, threads)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=f"use_ref={use_ref}")


def test_moe_combine_weights_that_vanish_give_zero_not_nan(ggml: Ggml) -> None:
    """Logits far below zero make every chosen weight 0 in float32 (softplus underflows, as in
    upstream's kernel); the clamped sum keeps 0/0 from turning the layer's output into NaN."""
    experts = np.ones((1, 2, 16), dtype=np.float32)
    logits = np.full((1, 4), -30.0, dtype=np.float32)
    ids = np.array([[0, 3]], dtype=np.int32)
    for use_ref in (False, True):
        got = _combine(ggml, experts, logits, ids, True, 1.0, use_ref=use_ref, threads=2)
        assert np.all(np.isfinite(got)), got
        assert np.all(np.abs(got) < 1e-3), got


# --------------------------------------------------------------------------------------------
# hyper-connection gates


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


@pytest.mark.parametrize(("T", "with_post"), [(1, True), (512, True), (5, False)])
def test_hc_gates_match_definition(ggml: Ggml, T: int, with_post: bool) -> None:
    rng = np.random.default_rng(T)
    hc, eps = 4, 1e-6
    width = (2 + hc) * hc if with_post else hc  # a block's full mixes, or the head's
    mixes = (rng.standard_normal((T, width)) * 3).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, 3 if with_post else 1).astype(np.float32)
    base = rng.standard_normal(width).astype(np.float32)
    groups = 2 if with_post else 1
    pre = _sigmoid(mixes[:, :hc] * scale[0] + base[:hc]) + eps
    with Graph(ggml) as gr:
        out = ggml.base.ggml_dsv4_hc_gates(
            gr.ctx, gr.tensor(mixes), gr.tensor(scale), gr.tensor(base), hc, with_post, eps
        )
        gr.compute(out)
        got = gr.read(out, (groups, T, hc))
    np.testing.assert_allclose(got[0], pre, rtol=1e-6, atol=1e-6)
    if with_post:
        post = 2.0 * _sigmoid(mixes[:, hc : 2 * hc] * scale[1] + base[hc : 2 * hc])
        np.testing.assert_allclose(got[1], post, rtol=1e-6, atol=1e-6)


def test_gates_ignore_the_comb_part_of_the_mixes(ggml: Ggml) -> None:
    """The gates read only the pre and post columns: changing the comb columns changes nothing."""
    rng = np.random.default_rng(5)
    mixes = rng.standard_normal((3, 24)).astype(np.float32)
    other = mixes.copy()
    other[:, 8:] += 100.0
    scale = np.ones(3, dtype=np.float32)
    base = np.zeros(24, dtype=np.float32)
    outs = []
    for m in (mixes, other):
        with Graph(ggml) as gr:
            t_m, t_scale, t_base = gr.tensor(m), gr.tensor(scale), gr.tensor(base)
            out = ggml.base.ggml_dsv4_hc_gates(gr.ctx, t_m, t_scale, t_base, 4, True, 0.0)
            gr.compute(out)
            outs.append(gr.read(out, (2, 3, 4)))
    assert np.array_equal(outs[0], outs[1])
