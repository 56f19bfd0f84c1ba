"""The bounded GGUF header reader on the real default model and on hostile files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from longdesk.engine.models.gguf_header import GGUFError, check_shards, read_header, shard_paths
from tests.ggufs import gguf_string, raw_header, write_gguf


def test_reads_the_default_model_right_without_its_vocabulary(default_model: Path) -> None:
    h = read_header(default_model)
    assert h.architecture == "gemma3"
    assert h.context_length == 32768
    assert h.arch_int("block_count") == 18
    assert h.vocab_size == 262144
    assert h.quantization == "Q4_K_M"
    assert h.chat_template == ""  # this GGUF ships none; Longdesk supplies the Gemma turn format
    assert 200e6 < h.weights_bytes < 260e6
    assert 250e6 < h.n_params < 300e6
    # The gguf package needs ~10 s for this vocabulary; we skip the arrays (their lengths only).
    assert "tokenizer.ggml.tokens" not in h.metadata
    assert h.array_lengths["tokenizer.ggml.tokens"] == 262144


def test_generated_file_round_trips(tmp_path: Path) -> None:
    h = read_header(write_gguf(tmp_path / "t.gguf", "qwen2", n_tensors=3))
    assert h.architecture == "qwen2"
    assert len(h.tensors) == 3
    assert h.tensors[0].shape == (8, 8)
    assert h.name == "tiny-qwen2"


def test_bad_magic_is_named(tmp_path: Path) -> None:
    p = tmp_path / "notes.gguf"
    p.write_bytes(b"This is a text file, not a model.\n" * 10)
    with pytest.raises(GGUFError, match="not a GGUF"):
        read_header(p)


def test_truncated_data_is_named(tmp_path: Path) -> None:
    p = write_gguf(tmp_path / "t.gguf")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 100])
    with pytest.raises(GGUFError, match="truncated"):
        read_header(p)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (raw_header(2**40, 0), "absurd tensor count"),
        (raw_header(0, 2**40), "absurd metadata count"),
        (raw_header(0, 1) + gguf_string(b"k") + struct.pack("<IQ", 8, 2**50), "claims"),
        (raw_header(0, 1) + gguf_string(b"k") + struct.pack("<IIQ", 9, 4, 2**45), "claims"),
        (raw_header(0, 1, version=7), "unsupported GGUF version"),
        (raw_header(0, 1) + gguf_string(b"k") + struct.pack("<I", 99), "unknown metadata value type"),
        (raw_header(1, 0) + gguf_string(b"t") + struct.pack("<I", 1000), "dimensions"),
    ],
)
def test_hostile_headers_fail_fast(tmp_path: Path, blob: bytes, message: str) -> None:
    p = tmp_path / "bad.gguf"
    p.write_bytes(blob + b"\0" * 64)
    with pytest.raises(GGUFError, match=message) as refused:  # a hang fails at pytest's timeout
        read_header(p)
    assert "\n" not in str(refused.value)  # one line in words, not a dump


def test_split_model_shards(tmp_path: Path) -> None:
    first = tmp_path / "big-00001-of-00003.gguf"
    assert [p.name for p in shard_paths(first)] == [
        "big-00001-of-00003.gguf",
        "big-00002-of-00003.gguf",
        "big-00003-of-00003.gguf",
    ]
    write_gguf(first)
    write_gguf(tmp_path / "big-00003-of-00003.gguf")
    assert list(check_shards(first)) == ["missing shard big-00002-of-00003.gguf"]
