"""The memory planner: its estimate against real RSS, refusals with numbers, expert placement."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from longdesk.engine.models.gguf_header import read_header
from longdesk.engine.models.memory import (
    EXPERT_PATTERN,
    MIB,
    largest_fitting_context,
    plan_memory,
    plan_placement,
)

ROOT = Path(__file__).resolve().parents[2]

MEASURE = """
import json, sys
from pathlib import Path
import psutil
from longdesk.engine.backends.local import LocalBackend, LocalSettings
b = LocalBackend(Path(sys.argv[1]), LocalSettings(n_ctx=int(sys.argv[2])))
b._llm.eval(list(range(1000, 1512)))  # touch every weight and the compute buffers
print(json.dumps({"rss": psutil.Process().memory_info().rss, "plan": b.placement.memory.total}))
"""


@pytest.mark.model
def test_estimate_matches_measured_rss_of_the_default_model(default_model: Path) -> None:
    """At 4K here; bench/local_memory.py checks 4K, 16K and 32K (within 15% each)."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(default_model), "4096"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert abs(figures["plan"] - figures["rss"]) / figures["rss"] < 0.15, figures


def test_a_context_too_large_is_refused_with_numbers_and_what_fits(default_model: Path) -> None:
    header = read_header(default_model)
    available = 400 * MIB
    placement = plan_placement(header, 32768, 0, available=available, vram=None)
    assert not placement.memory.fits
    best = placement.largest_context
    assert 0 < best < 32768
    assert plan_memory(header, best, available=available).fits
    assert not plan_memory(header, best + 1024, available=available).fits
    message = placement.refusal()
    assert "32,768 tokens" in message
    assert "400 MiB are available" in message
    assert f"the largest context that fits is {best:,} tokens" in message
    # The reduced sliding-window cache needs less: more context fits.
    assert largest_fitting_context(header, available=available, swa_full=False) > best


def test_weights_alone_too_large_says_no_context_fits(default_model: Path) -> None:
    header = read_header(default_model)
    placement = plan_placement(header, 4096, 0, available=100 * MIB, vram=None)
    assert "no context fits" in placement.refusal()


def write_moe(path: Path) -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), "qwen3moe")
    w.add_context_length(4096)
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_feed_forward_length(128)
    for layer in range(2):
        w.add_tensor(f"blk.{layer}.attn_q.weight", np.zeros((64, 64), np.float32))
        for part in ("up", "down", "gate"):
            w.add_tensor(f"blk.{layer}.ffn_{part}_exps.weight", np.zeros((8, 128, 64), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_moe_experts_stay_in_ram_when_vram_is_short(tmp_path: Path) -> None:
    header = read_header(write_moe(tmp_path / "moe.gguf"))
    experts = 2 * 3 * 8 * 128 * 64 * 4
    dense = 2 * 64 * 64 * 4
    full = plan_memory(header, 4096, available=1 << 40)
    # Enough VRAM for everything: all on the GPU, nothing in RAM but the runtime.
    roomy = plan_placement(header, 4096, -1, available=1 << 34, vram=(1 << 34, 1 << 34))
    assert (roomy.n_gpu_layers, roomy.cpu_tensor_patterns, roomy.memory.weights) == (-1, (), 0)
    # VRAM for attention and KV but not the experts: experts pinned to system RAM.
    short = int((dense + full.kv_cache + full.compute + experts // 2) / 0.9)
    placed = plan_placement(header, 4096, -1, available=1 << 34, vram=(short, short))
    assert placed.cpu_tensor_patterns == (EXPERT_PATTERN,)
    assert placed.n_gpu_layers == -1
    assert placed.memory.weights == experts
    assert "expert tensors" in placed.note
    # No accelerator: everything in RAM.
    cpu = plan_placement(header, 4096, -1, available=1 << 34, vram=None)
    assert (cpu.n_gpu_layers, cpu.memory.weights) == (0, header.weights_bytes)


def test_the_window_cache_size_follows_the_architecture(default_model: Path, tmp_path: Path) -> None:
    """Gemma keeps the full-size window cache (its reduced one does not restore exactly);
    DeepSeek-V4 keeps the reduced one (exact, and 43 GiB less at 1M tokens for V4-Flash)."""
    from longdesk.engine.backends.local_load import LocalSettings, resolve_settings
    from longdesk.engine.dsv4.tiny_gguf import write_tiny_v4
    from longdesk.engine.models.memory import kv_bytes

    gemma = read_header(default_model)
    v4 = read_header(write_tiny_v4(tmp_path / "tiny-v4.gguf"))
    assert resolve_settings(LocalSettings(), gemma).swa_full is True
    assert resolve_settings(LocalSettings(), v4).swa_full is False
    assert resolve_settings(LocalSettings(swa_full=True), v4).swa_full is True  # a setting wins
    assert kv_bytes(gemma, 32768) == kv_bytes(gemma, 32768, swa_full=True)
    assert kv_bytes(v4, 4096) == kv_bytes(v4, 4096, swa_full=False) < kv_bytes(v4, 4096, swa_full=True)


def test_tensor_sizes_come_from_gguf_constants(default_model: Path) -> None:
    """Each tensor of the real default model fills the gap to the next one (less than the alignment)."""
    from longdesk.engine.models.gguf_header import ggml_type

    assert ggml_type(9) == ("Q8_1", 32, 40)  # our own table once said 36 bytes
    assert ggml_type(12) == ("Q4_K", 256, 144)
    header = read_header(default_model)
    tensors = sorted(header.tensors, key=lambda t: t.offset)
    assert {t.type_name for t in tensors} >= {"Q4_K", "Q6_K", "F32"}
    for this, following in itertools.pairwise(tensors):
        gap = following.offset - this.offset
        assert this.n_bytes <= gap < this.n_bytes + 32, (this.name, this.type_name, this.n_bytes, gap)
    assert header.weights_bytes < header.file_size


def test_an_unknown_tensor_type_is_refused_not_counted_as_nothing(tmp_path: Path) -> None:
    import struct

    from longdesk.engine.models.gguf_header import GGUFError
    from tests.ggufs import gguf_string, raw_header

    info = gguf_string(b"blk.0.mystery.weight") + struct.pack("<IQIQ", 1, 64, 99, 0)
    body = raw_header(1, 0) + info
    path = tmp_path / "mystery.gguf"
    path.write_bytes(body + b"\0" * (-len(body) % 32) + b"\1" * 4096)
    with pytest.raises(GGUFError, match=r"'blk\.0\.mystery\.weight' has ggml type 99"):
        read_header(path)
