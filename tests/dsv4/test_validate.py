"""Malformed deepseek4 files are refused before llama.cpp sees them; the KV formula matches llama.cpp."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from longdesk.engine.backends.base import BackendError, FailureKind
from longdesk.engine.backends.local import inspect_model
from longdesk.engine.dsv4.config import V4Config
from longdesk.engine.dsv4.kv import dsv4_kv_bytes
from longdesk.engine.dsv4.tiny_gguf import Weights, write_tiny_v4
from longdesk.engine.models.gguf_header import read_header
from longdesk.engine.models.memory import kv_bytes


def _refused(path: Path) -> str:
    with pytest.raises(BackendError) as info:
        inspect_model(path)
    assert info.value.kind is FailureKind.BAD_INPUT
    return info.value.message


def test_a_sound_tiny_file_is_accepted(tmp_path: Path) -> None:
    header = inspect_model(write_tiny_v4(tmp_path / "ok.gguf"))
    assert header.architecture == "deepseek4"


def test_wrong_hyper_connection_count_is_refused_before_llama_cpp_aborts(tmp_path: Path) -> None:
    """A self-consistent file with 2 streams loads in llama.cpp, then GGML_ASSERT kills the process."""
    path = write_tiny_v4(tmp_path / "hc2.gguf", V4Config(hc_mult=2))
    assert "hyper_connection.count is 2" in _refused(path)
    code = f"import llama_cpp; llama_cpp.Llama({str(path)!r}, verbose=False)"
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert run.returncode != 0
    assert "GGML_ASSERT(hc == 4)" in run.stderr


def test_hyper_connection_count_disagreeing_with_tensors_is_refused(tmp_path: Path) -> None:
    path = write_tiny_v4(tmp_path / "hc8.gguf", metadata_override={"hyper_connection.count": 8})
    assert "hyper_connection.count is 8" in _refused(path)


def test_missing_tensor_is_named(tmp_path: Path) -> None:
    def drop(w: Weights) -> None:
        del w["blk.3.indexer.proj.weight"]

    message = _refused(write_tiny_v4(tmp_path / "missing.gguf", mutate=drop))
    assert "tensor blk.3.indexer.proj.weight is missing" in message


def test_inconsistent_shape_is_named(tmp_path: Path) -> None:
    def widen(w: Weights) -> None:
        w["blk.2.attn_kv.weight"] = np.zeros((96, 64), dtype=np.float32)

    message = _refused(write_tiny_v4(tmp_path / "shape.gguf", mutate=widen))
    assert re.search(
        r"blk\.2\.attn_kv\.weight has shape \[64, 96\], the metadata implies \[64, 128\]", message
    )


def test_unknown_compression_ratio_is_refused(tmp_path: Path) -> None:
    path = write_tiny_v4(tmp_path / "r8.gguf", V4Config(compress_ratios=(0, 4, 8, 4, 128)))
    assert "only 0, 4 and 128 exist" in _refused(path)


@pytest.mark.model
@pytest.mark.parametrize(("n_ctx", "swa_full"), [(4096, False), (8192, False), (4096, True)])
def test_kv_formula_matches_what_llama_cpp_allocates(tmp_path: Path, n_ctx: int, swa_full: bool) -> None:
    import ctypes

    import llama_cpp

    from longdesk.engine.backends import llama_log

    lines: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def collect(_level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))

    path = write_tiny_v4(tmp_path / "kv.gguf")
    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        llm = llama_cpp.Llama(
            str(path), n_ctx=n_ctx, n_ubatch=512, swa_full=swa_full, flash_attn=True, verbose=False
        )
        llm.close()
    finally:
        llama_log._installed = None
        llama_log.install()  # give the log back to Longdesk's logger
    log = "".join(lines)
    sizes = [float(m) for m in re.findall(r"(?:KV|state) buffer size =\s+([\d.]+) MiB", log)]
    assert len(sizes) == 7  # raw window, CSA, HCA, indexer caches + 3 compressor states
    expected = dsv4_kv_bytes(read_header(path), n_ctx, n_ubatch=512, swa_full=swa_full) / 2**20
    assert abs(sum(sizes) - expected) <= 0.005 * len(sizes)
    assert kv_bytes(read_header(path), n_ctx, n_ubatch=512, swa_full=swa_full) == dsv4_kv_bytes(
        read_header(path), n_ctx, n_ubatch=512, swa_full=swa_full
    )


def test_flash_kv_at_one_million_tokens() -> None:
    """V4-Flash (reference notes §2.8): ~7 GiB of F16 KV at 1M; 43 GiB more with a full-size raw cache."""
    from longdesk.engine.models.gguf_header import GGUFHeader

    ratios = [0, 0] + [4 if i % 2 == 0 else 128 for i in range(2, 43)] + [0]
    meta: dict[str, object] = {
        "general.architecture": "deepseek4",
        "deepseek4.block_count": 43,
        "deepseek4.attention.key_length": 512,
        "deepseek4.attention.sliding_window": 128,
        "deepseek4.attention.indexer.key_length": 128,
        "deepseek4.attention.compress_ratios": ratios,
    }
    header = GGUFHeader("flash.gguf", 3, 0, meta, {}, ())
    gib = dsv4_kv_bytes(header, 1 << 20) / 2**30
    assert 6.5 < gib < 7.0
    full = dsv4_kv_bytes(header, 1 << 20, swa_full=True) / 2**30
    assert 49 < full < 51
