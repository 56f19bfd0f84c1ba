"""The bundled llama.cpp and the numpy reference give the same DeepSeek-V4 logits on a tiny file.

Tolerance (F32 weights, F32 KV cache, no flash attention): max |Δlogit| ≤ 1e-3 at every
position, logits of magnitude ~10. llama.cpp computes in float32 with float32 accumulation,
the reference in float64; over 5 layers of ~40 chained ops the float32 rounding we observe is
≤ 1e-4, so 1e-3 leaves a 10x margin. Any wrong mechanism costs far more (the controls
below each move some logit by more than 3). The discrete steps, the indexer's top-k and the
learned MoE routing, are only comparable when no two scores tie at the boundary: the test
asserts that the smallest relative gap between the k-th and (k+1)-th score stays above
float32 noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from longdesk.engine.dsv4.config import V4Config
from longdesk.engine.dsv4.reference import ops
from longdesk.engine.dsv4.reference.model import V4Reference
from longdesk.engine.dsv4.tiny_gguf import write_tiny_v4

pytestmark = pytest.mark.model

TOLERANCE = 1e-3
PROMPT = 600  # > 4 HCA blocks of 128; 150 CSA entries against a top-k of 8
DECODE = 16
CONTROL_TOKENS = 300


@dataclass(frozen=True)
class Run:
    path: Path
    tokens: list[int]
    llama: np.ndarray  # [n, vocab]
    reference: np.ndarray  # [n, vocab]
    ref: V4Reference
    margins: list[float]


def _llama_logits(path: Path, prompt: list[int], decode: int, **kw: object) -> tuple[np.ndarray, list[int]]:
    """Prefill ``prompt`` in ubatches of 256, then greedy-decode ``decode`` tokens one by one."""
    import llama_cpp

    llm = llama_cpp.Llama(
        str(path), n_ctx=1024, n_batch=256, n_ubatch=256, logits_all=True, n_threads=2, verbose=False, **kw
    )
    try:
        llm.eval(prompt)
        rows = [np.array(r) for r in llm.scores[: len(prompt)]]
        tokens = list(prompt)
        for _ in range(decode):
            nxt = int(np.argmax(rows[-1]))
            llm.eval([nxt])
            tokens.append(nxt)
            rows.append(np.array(llm.scores[llm.n_tokens - 1]))
        return np.array(rows), tokens
    finally:
        llm.close()


def _reference_logits(ref: V4Reference, tokens: list[int]) -> np.ndarray:
    return np.array([ref.step(t) for t in tokens])


def _prompt(cfg: V4Config, n: int) -> list[int]:
    rng = np.random.default_rng(1)
    return [0] + [int(t) for t in rng.integers(2, cfg.n_vocab, n - 1)]


@pytest.fixture(scope="module")
def f32_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = write_tiny_v4(tmp_path_factory.mktemp("dsv4") / "tiny-v4-f32.gguf", wtype="f32")
    ref = V4Reference.from_gguf(path)
    llama, tokens = _llama_logits(path, _prompt(ref.cfg, PROMPT), DECODE, type_k=0, type_v=0)
    margins: list[float] = []
    original = ops.top_k

    def spy(scores: np.ndarray, k: int) -> np.ndarray:
        """Record how far apart the k-th and (k+1)-th scores are (indexer top-k and MoE routing)."""
        if len(scores) > k:
            top = np.sort(scores)[::-1]
            margins.append(float((top[k - 1] - top[k]) / np.abs(top).max()))
        return original(scores, k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ops, "top_k", spy)
        reference = _reference_logits(ref, tokens)
    return Run(path, tokens, llama, reference, ref, margins)


def test_every_mechanism_is_exercised(f32_run: Run) -> None:
    cfg, ref = f32_run.ref.cfg, f32_run.ref
    assert set(cfg.compress_ratios) == {0, 4, 128}
    assert cfg.hc_mult == 4
    assert 0 < cfg.n_hash_layers < cfg.n_layer  # hash-routed and learned-routing layers
    csa = [il for il in range(cfg.n_layer) if cfg.ratio(il) == 4]
    hca = [il for il in range(cfg.n_layer) if cfg.ratio(il) == 128]
    for il in csa:  # the indexer really drops entries
        main = ref.layers[il].main
        assert main is not None
        assert len(main.entries) >= 10 * cfg.index_topk
    for il in hca:  # several 128-token blocks completed
        main = ref.layers[il].main
        assert main is not None
        assert len(main.entries) >= 4


def test_topk_boundary_has_no_ties(f32_run: Run) -> None:
    """Precondition of an exact comparison: no near-tie in a top-k choice (float32 noise ~1e-7)."""
    assert len(f32_run.margins) > 2000  # indexer selections + learned-routing choices
    assert min(f32_run.margins) > 2e-6, "a near-tie at the top-k boundary: change the seed or the prompt"


def test_logits_match_at_every_position_prefill_and_decode(f32_run: Run) -> None:
    diff = np.abs(f32_run.llama - f32_run.reference).max(axis=1)  # [n]
    assert f32_run.llama.shape == (PROMPT + DECODE, f32_run.ref.cfg.n_vocab)
    assert np.abs(f32_run.reference).max() > 3.0  # logits are not trivially small
    bad = np.flatnonzero(diff > TOLERANCE)
    assert bad.size == 0, f"positions {bad[:10].tolist()} differ by up to {diff.max():.3g}"
    assert diff[PROMPT:].max() <= TOLERANCE  # decoding with the carried compressor state


def _no_sink(original: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    return lambda q, k, s: original(q, k, np.full_like(s, -np.inf))


CONTROLS: dict[str, Callable[[pytest.MonkeyPatch, V4Reference], None]] = {
    "attention sink": lambda mp, ref: mp.setattr(ops, "attend_with_sink", _no_sink(ops.attend_with_sink)),
    "YaRN on compressed layers": lambda mp, ref: mp.setattr(
        ref, "freqs_comp", ops.rope_freqs(ref.cfg.rope_dim, ref.cfg.compress_rope_base, None)
    ),
    "indexer top-k": lambda mp, ref: mp.setattr(ref, "cfg", replace(ref.cfg, index_topk=10**6)),
    "SwiGLU clamp": lambda mp, ref: mp.setattr(
        ops, "swiglu_clamped", lambda x, g, u, d, lim, f=ops.swiglu_clamped: f(x, g, u, d, np.inf)
    ),
    "hash routing": lambda mp, ref: mp.setattr(
        ops, "route", lambda x, g, b, h, k, s, f=ops.route: f(x, g, b, None, k, s)
    ),
    "Sinkhorn iterations": lambda mp, ref: mp.setattr(
        ops, "sinkhorn", lambda m, it, eps, f=ops.sinkhorn: f(m, 1, eps)
    ),
}


@pytest.fixture
def patched(request: pytest.FixtureRequest, f32_run: Run) -> Iterator[V4Reference]:
    ref = V4Reference.from_gguf(f32_run.path)
    with pytest.MonkeyPatch.context() as mp:
        CONTROLS[request.param](mp, ref)
        yield ref


@pytest.mark.parametrize("patched", list(CONTROLS), indirect=True)
def test_a_wrong_mechanism_is_caught(patched: V4Reference, f32_run: Run) -> None:
    """Control: dropping one mechanism from the reference breaks the agreement well past tolerance."""
    wrong = _reference_logits(patched, f32_run.tokens[:CONTROL_TOKENS])
    diff = np.abs(f32_run.llama[:CONTROL_TOKENS] - wrong).max()
    assert diff > 5 * TOLERANCE


@pytest.mark.parametrize(("wtype", "min_agree", "max_median"), [("f16", 0.97, 0.05), ("q8_0", 0.85, 0.3)])
def test_low_precision_files_stay_close(
    tmp_path: Path, wtype: str, min_agree: float, max_median: float
) -> None:
    """F16 / Q8_0 files with the default F16 KV: same model, float16/8-bit noise (see docs/dsv4.md)."""
    path = write_tiny_v4(tmp_path / f"tiny-v4-{wtype}.gguf", wtype=wtype)  # type: ignore[arg-type]
    ref = V4Reference.from_gguf(path)  # dequantised weights: the same numbers llama.cpp multiplies
    llama, tokens = _llama_logits(path, _prompt(ref.cfg, 256), 0)
    reference = _reference_logits(ref, tokens)
    agree = float((llama.argmax(axis=1) == reference.argmax(axis=1)).mean())
    median = float(np.median(np.abs(llama - reference)))
    assert agree >= min_agree, (agree, median)
    assert median <= max_median, (agree, median)
