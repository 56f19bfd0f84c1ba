"""Longdesk's DeepSeek-V4 ops, tested the way ggml tests ops: the optimised CPU kernel against its
plain reference branch (``use_ref``), both against a float64 numpy definition, and once against
upstream's own decomposition (lightning_indexer + top_k; dense mask + flash_attn_ext) on the same
inputs. Runs on the installed wheel's libggml through ctypes.

Edge shapes from issue 13: decode T=1 and prefill T=512; visible rows 0, < 512, = 512, > 512;
-1 padding; a partly filled raw window at sequence start; sinks on and off; ties compared as sets;
F16 and Q8_0 keys; several sequences (streams).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from tests.kernels.ggml_ctypes import F16, F32, I32, Q8_0, Ggml, Graph

TOP_K = 512


@pytest.fixture(scope="module")
def ggml() -> Iterator[Ggml]:
    g = Ggml()
    if not g.has_ops:
        pytest.fail(
            "the installed llama-cpp-python has none of Longdesk's DSV4 ops (LONGDESK_OPS=off build?)"
        )
    return g


# --------------------------------------------------------------------------------------------
# Op A: fused lightning indexer + causal bound + top-k


@dataclass
class IndexerCase:
    T: int
    N: int
    n_vis: list[int] | str  # per token, or "causal" (token t sees (base + t + 1) // 4 rows)
    S: int = 1
    H: int = 8
    ktype: int = F16
    base: int = 0
    ties: bool = False
    threads: int = 2


def _indexer_inputs(case: IndexerCase, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    D = 128
    q = rng.standard_normal((case.S, case.T, case.H, D)).astype(np.float32)
    k = rng.standard_normal((case.S, case.N, 1, D)).astype(np.float32)
    if case.ties:  # many exactly equal keys -> equal scores
        k[:, ::3] = k[:, :1]
    if case.ktype == F16:
        k = k.astype(np.float16).astype(np.float32)
    w = (rng.standard_normal((case.S, 1, case.T, case.H)) / np.sqrt(D * case.H)).astype(np.float32)
    if isinstance(case.n_vis, str):
        nv = np.array(
            [[min(case.N, (case.base + t + 1) // 4) for t in range(case.T)]] * case.S, dtype=np.int32
        )
    else:
        nv = np.array([case.n_vis] * case.S, dtype=np.int32)
    return {"q": q, "k": k, "w": w, "n_vis": nv}


def _indexer_scores(x: dict[str, np.ndarray], k_used: np.ndarray) -> np.ndarray:
    """float64 scores [S, T, N]: sum_h w[h,t] * relu(q[:,h,t] . k[:,j])."""
    kt = np.swapaxes(k_used[:, :, 0].astype(np.float64), 1, 2)[:, None]  # [S, 1, D, N]
    dots = np.matmul(x["q"].astype(np.float64), kt)  # [S, T, H, N]
    return np.matmul(x["w"][:, 0, :, None, :].astype(np.float64), np.maximum(dots, 0.0))[:, :, 0]


def _run_indexer(ggml: Ggml, case: IndexerCase, x: dict[str, np.ndarray], use_ref: bool) -> np.ndarray:
    with Graph(ggml) as gr:
        q = gr.tensor(x["q"])
        k = gr.tensor(x["k"], case.ktype)
        w = gr.tensor(x["w"])
        nv = gr.tensor(x["n_vis"], I32)
        out = ggml.base.ggml_dsv4_indexer_topk(gr.ctx, q, k, w, nv, TOP_K)
        gr.compute(out, use_ref=use_ref, threads=case.threads)
        return gr.read(out, (case.S, 1, case.T, TOP_K), np.int32)[:, 0]


def _dequantized_keys(case: IndexerCase, k: np.ndarray) -> np.ndarray:
    if case.ktype != Q8_0:
        return k
    from gguf import GGMLQuantizationType, quants

    q8 = quants.quantize(k, GGMLQuantizationType.Q8_0)
    return quants.dequantize(q8, GGMLQuantizationType.Q8_0).reshape(k.shape)


def _check_topk(sel: np.ndarray, scores: np.ndarray, n_vis: np.ndarray, label: str) -> None:
    """Each token's list is a valid top-k of its visible rows: right size, -1 padding, no
    duplicates, nothing past n_vis, and no unselected row scores above a selected one (ties allowed)."""
    S, T, _ = sel.shape
    for s in range(S):
        for t in range(T):
            nv = int(n_vis[s, t])
            want = min(nv, TOP_K)
            row = sel[s, t]
            chosen = row[row >= 0]
            assert len(chosen) == want, f"{label} s={s} t={t}: {len(chosen)} rows chosen, want {want}"
            assert np.all(row[want:] == -1), f"{label} s={s} t={t}: padding is not -1"
            assert len(np.unique(chosen)) == want, f"{label} s={s} t={t}: duplicate rows"
            assert np.all(chosen < nv), f"{label} s={s} t={t}: a row past the causal bound"
            if want < nv:
                sc = scores[s, t, :nv]
                mask = np.zeros(nv, dtype=bool)
                mask[chosen] = True
                tol = 1e-4 * (np.abs(sc).max() + 1e-12)
                assert sc[mask].min() >= sc[~mask].max() - tol, f"{label} s={s} t={t}: not the top {TOP_K}"


INDEXER_CASES = {
    "decode-vis0": IndexerCase(T=1, N=4, n_vis=[0]),
    "decode-vis<512": IndexerCase(T=1, N=300, n_vis=[257]),
    "decode-vis=512": IndexerCase(T=1, N=512, n_vis=[512]),
    "decode-vis>512-h64": IndexerCase(T=1, N=1500, n_vis=[1377], H=64),
    "prefill-512-causal-crossing-512": IndexerCase(T=512, N=700, n_vis="causal", base=2048 - 512 + 300),
    "prefill-512-start": IndexerCase(T=512, N=128, n_vis="causal"),
    "q8_0-keys": IndexerCase(T=17, N=900, n_vis="causal", base=3000, ktype=Q8_0),
    "two-streams": IndexerCase(T=9, N=800, n_vis="causal", base=2900, S=2),
    "ties": IndexerCase(T=3, N=1200, n_vis=[1200, 1100, 700], ties=True),
    # decode on several threads: one token's keys split into ranges, merged after a barrier
    "decode-split-4-ranges": IndexerCase(T=1, N=5000, n_vis=[4731], H=16, threads=4),
    "decode-split-two-streams": IndexerCase(T=1, N=3000, n_vis=[2999], S=2, threads=4),
    "decode-split-ties": IndexerCase(T=1, N=2600, n_vis=[2600], ties=True, threads=3),
    "decode-split-few-visible": IndexerCase(T=1, N=4096, n_vis=[600], threads=4),
}


@pytest.mark.parametrize("name", list(INDEXER_CASES))
def test_indexer_topk_matches_reference(ggml: Ggml, name: str) -> None:
    case = INDEXER_CASES[name]
    x = _indexer_inputs(case, seed=zlib.crc32(name.encode()))
    scores = _indexer_scores(x, _dequantized_keys(case, x["k"]))
    fast = _run_indexer(ggml, case, x, use_ref=False)
    ref = _run_indexer(ggml, case, x, use_ref=True)
    _check_topk(ref, scores, x["n_vis"], "reference")
    _check_topk(fast, scores, x["n_vis"], "optimised")
    # as sets: equal wherever the scores are not tied at the cut
    for s in range(case.S):
        for t in range(case.T):
            a, b = set(fast[s, t][fast[s, t] >= 0]), set(ref[s, t][ref[s, t] >= 0])
            if a != b:
                diff = np.array(sorted(a ^ b))
                cut = np.sort(scores[s, t, list(a)])[0]
                assert np.allclose(scores[s, t, diff], cut, rtol=1e-4, atol=1e-6), (name, s, t)


def test_indexer_topk_matches_upstream_decomposition(ggml: Ggml) -> None:
    """Our fused op picks the same rows as upstream's lightning_indexer + top_k."""
    case = IndexerCase(T=64, N=900, n_vis="causal", base=3000, H=64)
    x = _indexer_inputs(case, seed=7)
    fast = _run_indexer(ggml, case, x, use_ref=False)
    mask = np.where(np.arange(case.N)[None, None, :] < x["n_vis"][:, :, None], 0.0, -np.inf)
    with Graph(ggml) as gr:
        q = gr.tensor(x["q"])
        k = gr.tensor(x["k"], F16)
        w = gr.tensor(x["w"])
        m = gr.tensor(mask[:, None].astype(np.float32), F16)
        score = ggml.base.ggml_lightning_indexer(gr.ctx, q, k, w, m)
        top = ggml.base.ggml_cont(gr.ctx, ggml.base.ggml_top_k(gr.ctx, score, TOP_K))
        gr.compute(top)
        up = gr.read(top, (case.S, 1, case.T, TOP_K), np.int32)[:, 0]
    scores = _indexer_scores(x, x["k"])
    for t in range(case.T):
        nv = int(x["n_vis"][0, t])
        a = set(fast[0, t][fast[0, t] >= 0])
        b = {int(i) for i in up[0, t] if i < nv}
        if a != b:
            diff = np.array(sorted(a ^ b))
            cut = np.sort(scores[0, t, list(a)])[0]
            assert np.allclose(scores[0, t, diff], cut, rtol=1e-3, atol=1e-6), t


# --------------------------------------------------------------------------------------------
# Op B: sparse attention by gather


@dataclass
class AttnCase:
    T: int
    n_raw: int
    N: int
    pos0: int  # position of the first token of the batch
    window: int = 128
    H: int = 4
    S: int = 1
    sinks: bool = True
    idx_k: int | None = TOP_K  # None: HCA (all visible rows)
    ratio: int = 4


def _attn_inputs(case: AttnCase, seed: int) -> dict[str, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    D = 512
    q = (rng.standard_normal((case.S, case.T, case.H, D)) * 0.06).astype(np.float32)
    raw_k = rng.standard_normal((case.S, case.n_raw, 1, D)).astype(np.float16).astype(np.float32)
    comp_k = rng.standard_normal((case.S, case.N, 1, D)).astype(np.float16).astype(np.float32)
    # raw cache row r holds position r (a fresh sequence): token at p sees rows p-window < r <= p
    pos = case.pos0 + np.arange(case.T)
    r = np.arange(case.n_raw)
    ok = (r[None, :] <= pos[:, None]) & (r[None, :] > pos[:, None] - case.window)
    raw_mask = np.where(ok, 0.0, -np.inf).astype(np.float32)[None, None]  # [1, 1, T, n_raw]
    n_vis = np.array([[min(case.N, (p + 1) // case.ratio) for p in pos]] * case.S, dtype=np.int32)
    idx = None
    if case.idx_k is not None:
        idx = np.full((case.S, 1, case.T, case.idx_k), -1, dtype=np.int32)
        for s in range(case.S):
            for t in range(case.T):
                nv = int(n_vis[s, t])
                take = rng.permutation(nv)[: min(nv, case.idx_k)]
                idx[s, 0, t, : len(take)] = take
                idx[s, 0, t] = rng.permutation(idx[s, 0, t])  # -1 anywhere in the list
    sinks = (rng.standard_normal(case.H) * 2).astype(np.float32) if case.sinks else None
    return {
        "q": q,
        "raw_k": raw_k,
        "raw_mask": raw_mask,
        "comp_k": comp_k,
        "idx": idx,
        "n_vis": n_vis,
        "sinks": sinks,
    }


def _attn_numpy(x: dict[str, np.ndarray | None], scale: float) -> np.ndarray:
    q, raw_k, comp_k, n_vis = x["q"], x["raw_k"], x["comp_k"], x["n_vis"]
    assert q is not None
    assert raw_k is not None
    assert comp_k is not None
    assert n_vis is not None
    raw_mask, idx, sinks = x["raw_mask"], x["idx"], x["sinks"]
    assert raw_mask is not None
    S, T, H, D = q.shape
    out = np.zeros((S, T, H, D))
    for s in range(S):
        for t in range(T):
            rows = [raw_k[s, r, 0] for r in range(raw_k.shape[1]) if np.isfinite(raw_mask[0, 0, t, r])]
            sel = (
                range(int(n_vis[s, t])) if idx is None else [j for j in idx[s, 0, t] if 0 <= j < n_vis[s, t]]
            )
            rows += [comp_k[s, j, 0] for j in sel]
            if not rows:
                continue
            kk = np.array(rows, dtype=np.float64)
            logits = q[s, t].astype(np.float64) @ kk.T * scale  # [H, n]
            m = logits.max(axis=1, keepdims=True)
            if sinks is not None:
                m = np.maximum(m, sinks[:, None])
            p = np.exp(logits - m)
            den = p.sum(axis=1) + (np.exp(sinks - m[:, 0]) if sinks is not None else 0.0)
            out[s, t] = (p @ kk) / den[:, None]
    return out


def _run_attn(ggml: Ggml, x: dict[str, np.ndarray | None], scale: float, use_ref: bool) -> np.ndarray:
    q = x["q"]
    assert q is not None
    with Graph(ggml, mem_mb=512) as gr:
        tq = gr.tensor(q)
        rk = gr.tensor(x["raw_k"], F16)  # type: ignore[arg-type]
        rm = gr.tensor(x["raw_mask"], F16)  # type: ignore[arg-type]
        ck = gr.tensor(x["comp_k"], F16)  # type: ignore[arg-type]
        idx = gr.tensor(x["idx"], I32) if x["idx"] is not None else None
        nv = gr.tensor(x["n_vis"], I32)  # type: ignore[arg-type]
        sk = gr.tensor(x["sinks"], F32) if x["sinks"] is not None else None
        out = ggml.base.ggml_dsv4_sparse_attn(gr.ctx, tq, rk, rm, ck, idx, nv, sk, scale)
        gr.compute(out, use_ref=use_ref)
        return gr.read(out, q.shape)


ATTN_CASES = {
    "decode-h64-vis>512": AttnCase(T=1, n_raw=128, N=1100, pos0=4400, H=64),
    "decode-vis0-window-start": AttnCase(T=1, n_raw=128, N=4, pos0=2),
    "decode-no-sinks-vis<512": AttnCase(T=1, n_raw=128, N=300, pos0=1203, sinks=False),
    "prefill-512-start": AttnCase(T=512, n_raw=640, N=128, pos0=0),
    "prefill-512-crossing-512": AttnCase(T=512, n_raw=640, N=700, pos0=2048 - 512 + 100),
    "prefill-vis=512": AttnCase(T=8, n_raw=640, N=512, pos0=2044),
    "hca-all-visible": AttnCase(T=33, n_raw=640, N=40, pos0=4000, idx_k=None, ratio=128),
    "two-streams": AttnCase(T=5, n_raw=256, N=600, pos0=2300, S=2),
    "idx-shorter-than-512": AttnCase(T=6, n_raw=256, N=200, pos0=790, idx_k=200),
}


@pytest.mark.parametrize("name", list(ATTN_CASES))
def test_sparse_attn_matches_reference(ggml: Ggml, name: str) -> None:
    case = ATTN_CASES[name]
    x = _attn_inputs(case, seed=zlib.crc32(name.encode()))
    scale = 1.0 / np.sqrt(512)
    want = _attn_numpy(x, scale)
    fast = _run_attn(ggml, x, scale, use_ref=False)
    ref = _run_attn(ggml, x, scale, use_ref=True)
    np.testing.assert_allclose(ref, want, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(fast, want, atol=2e-5, rtol=1e-4)
    assert np.abs(want).max() > 1e-3  # the case produces real output, not all zeros


def test_sparse_attn_matches_upstream_flash_attention(ggml: Ggml) -> None:
    """Same inputs through upstream's path: dense mask over raw + compressed rows, concatenated
    K, flash_attn_ext with sinks."""
    case = AttnCase(T=64, n_raw=640, N=700, pos0=2800, H=8)
    x = _attn_inputs(case, seed=11)
    scale = 1.0 / np.sqrt(512)
    ours = _run_attn(ggml, x, scale, use_ref=False)
    raw_k, comp_k, idx, n_vis, raw_mask = x["raw_k"], x["comp_k"], x["idx"], x["n_vis"], x["raw_mask"]
    assert raw_k is not None
    assert comp_k is not None
    assert idx is not None
    assert n_vis is not None
    assert raw_mask is not None
    assert x["q"] is not None
    comp_mask = np.full((case.T, case.N), -np.inf, dtype=np.float32)
    for t in range(case.T):
        js = [j for j in idx[0, 0, t] if 0 <= j < n_vis[0, t]]
        comp_mask[t, js] = 0.0
    mask = np.concatenate([raw_mask[0, 0], comp_mask], axis=1)[None, None]
    k_all = np.concatenate([raw_k, comp_k], axis=1)
    with Graph(ggml, mem_mb=512) as gr:
        q = gr.tensor(x["q"])
        qp = ggml.base.ggml_permute(gr.ctx, q, 0, 2, 1, 3)
        k = gr.tensor(k_all, F16)
        kp = ggml.base.ggml_permute(gr.ctx, k, 0, 2, 1, 3)
        m = gr.tensor(mask, F16)
        fa = ggml.base.ggml_flash_attn_ext(gr.ctx, qp, kp, kp, m, scale, 0.0, 0.0)
        ggml.base.ggml_flash_attn_ext_add_sinks(fa, gr.tensor(x["sinks"], F32))  # type: ignore[arg-type]
        gr.compute(fa)
        up = gr.read(fa, x["q"].shape)
    # upstream's CPU flash attention rounds Q to F16 for the dot products
    np.testing.assert_allclose(ours, up, atol=3e-3, rtol=1e-2)
