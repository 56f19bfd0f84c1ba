"""Longdesk's DeepSeek-V4 ops against upstream llama.cpp's decomposition, in the same binary.

``LONGDESK_DSV4_OPS=0`` makes the deepseek4 graph use upstream's lightning_indexer + top_k,
dense top-k mask, concatenated caches and flash attention; the default uses our fused indexer
top-k and sparse attention by gather. On the tiny F32 file both paths must give the same logits
within the cross-check's tolerance (test_crosscheck.py checks our path against the numpy
reference), and because the ops do not change the cache layout, a sequence state saved on one
path must restore on the other and continue with that path's own logits.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from longdesk.engine.dsv4.config import V4Config
from longdesk.engine.dsv4.tiny_gguf import write_tiny_v4
from longdesk.engine.kernels import OPS, RUNTIME_SWITCH, active_ops, runtime_enabled

pytestmark = pytest.mark.model

TOLERANCE = 1e-3  # as test_crosscheck.py
PROMPT = 600
SUFFIX = 24


def _prompt(n: int) -> list[int]:
    rng = np.random.default_rng(5)
    return [0] + [int(t) for t in rng.integers(2, V4Config().n_vocab, n - 1)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_v4(tmp_path_factory.mktemp("dsv4-ops") / "tiny-v4-f32.gguf", wtype="f32")


class Path_:
    """One context on one path; logits of every evaluated position."""

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(
            str(path),
            n_ctx=1024,
            n_batch=256,
            n_ubatch=256,
            logits_all=True,
            n_threads=2,
            verbose=False,
            type_k=0,
            type_v=0,
            swa_full=False,
        )

    def eval(self, tokens: list[int]) -> np.ndarray:
        start = self.llm.n_tokens
        self.llm.eval(tokens)
        return np.array(self.llm.scores[start : start + len(tokens)])

    def save(self) -> bytes:
        ctx = self.llm._ctx.ctx
        size = self.lib.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = self.lib.llama_state_seq_get_data(ctx, buf, size, 0)
        return bytes(buf[:n])

    def restore(self, state: bytes, tokens: list[int]) -> None:
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        assert self.lib.llama_state_seq_set_data(self.llm._ctx.ctx, buf, len(state), 0) == len(state)
        self.llm.n_tokens = len(tokens)
        self.llm.input_ids[: len(tokens)] = tokens

    def close(self) -> None:
        self.llm.close()


@pytest.fixture
def open_path(tiny: Path) -> Iterator[object]:
    opened: list[Path_] = []

    def make(ours: bool) -> Path_:
        """A context on our path or upstream's: the caller holds LONGDESK_DSV4_OPS set while it
        builds and runs graphs (llama.cpp reads it at each graph build)."""
        assert runtime_enabled() == ours
        p = Path_(tiny)
        opened.append(p)
        return p

    yield make
    for p in opened:
        p.close()


def test_the_build_carries_our_ops() -> None:
    status = active_ops()
    assert status.built == tuple(op for op, _ in OPS), status


def _logits(open_path: object, ours: bool, tokens: list[int]) -> np.ndarray:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RUNTIME_SWITCH, "1" if ours else "0")
        p = open_path(ours)  # type: ignore[operator]
        return p.eval(tokens)  # type: ignore[no-any-return]


def test_our_path_and_upstreams_give_the_same_logits(open_path: object) -> None:
    tokens = _prompt(PROMPT)
    ours = _logits(open_path, True, tokens)
    upstream = _logits(open_path, False, tokens)
    assert np.abs(ours).max() > 3.0
    assert not np.array_equal(ours, upstream), "the runtime switch changed nothing: are our ops in the graph?"
    diff = np.abs(ours - upstream).max(axis=1)
    bad = np.flatnonzero(diff > TOLERANCE)
    assert bad.size == 0, f"positions {bad[:10].tolist()} differ by up to {diff.max():.3g}"


@pytest.mark.parametrize("saved_on_ours", [True, False], ids=["ours-to-upstream", "upstream-to-ours"])
def test_a_state_saved_on_one_path_restores_on_the_other(open_path: object, saved_on_ours: bool) -> None:
    prompt, suffix = _prompt(PROMPT), _prompt(PROMPT + SUFFIX)[PROMPT:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RUNTIME_SWITCH, "1" if saved_on_ours else "0")
        writer = open_path(saved_on_ours)  # type: ignore[operator]
        writer.eval(prompt)
        state = writer.save()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RUNTIME_SWITCH, "0" if saved_on_ours else "1")
        reader = open_path(not saved_on_ours)  # type: ignore[operator]
        reader.restore(state, prompt)
        restored = reader.eval(suffix)
        live = open_path(not saved_on_ours)  # type: ignore[operator]
        fresh = live.eval(prompt + suffix)[PROMPT:]
    assert np.abs(restored - fresh).max() <= TOLERANCE
