"""`longdesk ask` with the local engine: snapshots across runs, memory refusals before loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.app.test_cli import longdesk


def write_huge_header(path: Path) -> Path:
    """A llama-architecture GGUF whose header claims a 80-layer, 1M-context model."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("huge-llama")
    w.add_context_length(1_048_576)
    w.add_block_count(80)
    w.add_embedding_length(8192)
    w.add_head_count(64)
    w.add_head_count_kv(8)
    w.add_feed_forward_length(28672)
    w.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_context_too_large_for_memory_exits_4_before_loading(longdesk_home: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("The kettle is blue.\n")
    model = write_huge_header(tmp_path / "huge.gguf")
    r = longdesk("ask", str(tmp_path / "notes.txt"), "-q", "hi", "--model", str(model), "--ctx", "1048576")
    assert r.returncode == 4, r.stderr
    assert "loading huge.gguf" not in r.stderr  # refused by the planner: llama.cpp never saw it
    line = r.stderr.strip().splitlines()[-1]
    assert "huge.gguf does not fit in memory" in line
    assert "at 1,048,576 tokens" in line
    assert "MiB are available" in line
    assert "the largest context that fits is" in line


@pytest.mark.model
def test_second_ask_on_the_same_corpus_restores_the_snapshot(longdesk_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "house.txt").write_text(
        "".join(f"Room {i}: the kettle is blue and the oven is broken.\n" for i in range(40))
    )
    first = longdesk("ask", str(folder), "-q", "What colour is the kettle?", "--max-tokens", "8")
    assert first.returncode == 0, first.stderr
    assert "prefill:" in first.stderr
    assert "snapshot saved" in first.stderr
    assert list((longdesk_home / "snapshots").glob("*.state"))
    second = longdesk("ask", str(folder), "-q", "Is the oven working?", "--max-tokens", "8")
    assert second.returncode == 0, second.stderr
    assert "restored the reading of" in second.stderr
    assert "prefill:" not in second.stderr
    assert second.stdout.strip()
