"""The GGUF header reader under fuzzing: any bytes give a header or a GGUFError, fast.

A bounded run (fixed seed, fixed count) goes in every CI run; hypothesis explores further
locally with more examples.
"""

from __future__ import annotations

import contextlib
import random
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longdesk.engine.models.gguf_header import GGUFError, read_header
from tests.ggufs import gguf_string, raw_header, write_gguf
from tests.reliability.conftest import Ledger

FUZZ_CASES = 600
PER_CASE_LIMIT_S = 0.5


def _try(path: Path, data: bytes) -> tuple[bool, float]:
    """Read ``data`` as a GGUF; True if it was accepted or refused with a GGUFError."""
    path.write_bytes(data)
    t0 = time.perf_counter()
    with contextlib.suppress(GGUFError):
        read_header(path)
    return True, time.perf_counter() - t0


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    op = rng.randrange(4)
    if op == 0:  # flip bytes in the header region
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(min(len(data), 512))] = rng.randrange(256)
    elif op == 1:  # truncate
        del data[rng.randrange(len(data)) :]
    elif op == 2:  # overwrite a 64-bit field with an extreme count or length
        at = rng.randrange(8, min(len(data) - 8, 400))
        data[at : at + 8] = struct.pack("<Q", rng.choice([0, 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]))
    else:  # splice random bytes
        at = rng.randrange(len(data))
        data[at:at] = rng.randbytes(rng.randint(1, 64))
    return bytes(data)


def test_bounded_mutation_fuzz(tmp_path: Path, ledger: Ledger) -> None:
    seed = write_gguf(tmp_path / "seed.gguf", "llama", n_tensors=3).read_bytes()
    rng = random.Random(20261128)
    target = tmp_path / "case.gguf"
    slowest = 0.0
    for i in range(FUZZ_CASES):
        data = _mutate(rng, seed)
        ok, elapsed = _try(target, data)
        slowest = max(slowest, elapsed)
        hung = elapsed > PER_CASE_LIMIT_S
        ledger.hostile(hung=hung, what=f"fuzz case {i}: {elapsed:.2f} s")
        assert ok
        assert not hung, f"case {i} took {elapsed:.2f} s"
    assert slowest < PER_CASE_LIMIT_S


@settings(max_examples=150, deadline=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_tensors=st.integers(0, 2**64 - 1),
    n_kv=st.integers(0, 2**64 - 1),
    version=st.integers(0, 2**32 - 1),
    tail=st.binary(max_size=256),
)
def test_arbitrary_counts_never_escape_as_other_errors(
    tmp_path: Path, n_tensors: int, n_kv: int, version: int, tail: bytes
) -> None:
    p = tmp_path / "h.gguf"
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + tail)
    with contextlib.suppress(GGUFError):
        read_header(p)


@pytest.mark.parametrize("size", [1, 1024, 16 * 1024 * 1024 + 1])
def test_huge_metadata_strings_are_bounded(tmp_path: Path, size: int, ledger: Ledger) -> None:
    """A string longer than the cap is refused without being read; shorter ones are kept."""
    body = raw_header(0, 1) + gguf_string(b"general.name")
    body += struct.pack("<IQ", 8, size)
    p = tmp_path / "s.gguf"
    with p.open("wb") as fh:
        fh.write(body)
        fh.write(b"x" * min(size, 2 * 1024 * 1024))
    t0 = time.perf_counter()
    if size > 16 * 1024 * 1024:
        with pytest.raises(GGUFError, match="claims"):
            read_header(p)
    elif size <= 2 * 1024 * 1024:
        assert read_header(p).metadata["general.name"] == "x" * size
    ledger.hostile(hung=time.perf_counter() - t0 > 1.0, what=f"string of {size} bytes")
