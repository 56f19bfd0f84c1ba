"""The GGUF header reader under fuzzing: any bytes give a header or a GGUFError, fast.

A bounded run (fixed seed, fixed count) goes in every CI run; hypothesis explores further
locally with more examples.
"""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longdesk.engine.models.gguf_header import GGUFError, GGUFHeader, read_header
from tests.ggufs import gguf_string, raw_header, write_gguf
from tests.reliability.conftest import Ledger

FUZZ_CASES = 600
PER_CASE_LIMIT_S = 0.5
# What a GGUFError from the reader may look like: one line in words, never a Python internal.
_NOT_WORDS = ("Traceback", "struct.error", "index out of range", "object has no attribute", "codec")


def _outcome(path: Path, data: bytes) -> GGUFHeader | str:
    """Read ``data`` as a GGUF: the header, or the message of the GGUFError that refused it.

    Any other exception propagates and fails the test: that is the bug this fuzzing looks for.
    """
    path.write_bytes(data)
    try:
        return read_header(path)
    except GGUFError as exc:
        return str(exc)


def _names_the_problem(message: str) -> bool:
    return bool(message.strip()) and "\n" not in message and not any(w in message for w in _NOT_WORDS)


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
    """600 mutated files: each is read into a consistent header or refused in words."""
    seed = write_gguf(tmp_path / "seed.gguf", "llama", n_tensors=3).read_bytes()
    rng = random.Random(20261128)
    target = tmp_path / "case.gguf"
    accepted = refused = 0
    for i in range(FUZZ_CASES):
        data = _mutate(rng, seed)
        got = _outcome(target, data)
        if isinstance(got, str):
            refused += 1
            named = _names_the_problem(got)
            ledger.hostile(named=named, what=f"fuzz case {i}: {got!r}")
            assert named, f"case {i}: {got!r}"
        else:
            accepted += 1
            ledger.hostile(what=f"fuzz case {i}")
            # An accepted header describes the file it came from: every tensor's data is inside it.
            assert got.file_size == len(data)
            assert all(t.offset + t.n_bytes <= len(data) for t in got.tensors), f"case {i}"
            assert got.weights_bytes <= len(data)
    # The mutations reach both outcomes (a reader that refuses everything would pass the above).
    assert refused >= FUZZ_CASES // 4, (accepted, refused)
    assert accepted >= FUZZ_CASES // 20, (accepted, refused)


@pytest.mark.perf
def test_fuzz_cases_are_read_quickly(tmp_path: Path) -> None:
    """Each mutated file is read or refused in well under half a second (a bounded reader)."""
    seed = write_gguf(tmp_path / "seed.gguf", "llama", n_tensors=3).read_bytes()
    rng = random.Random(20261128)
    target = tmp_path / "case.gguf"
    slowest = 0.0
    for _ in range(FUZZ_CASES):
        data = _mutate(rng, seed)
        t0 = time.perf_counter()
        _outcome(target, data)
        slowest = max(slowest, time.perf_counter() - t0)
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
    got = _outcome(tmp_path / "h.gguf", b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + tail)
    if isinstance(got, str):
        assert _names_the_problem(got), got
    else:  # only the versions this reader knows, with counts the few bytes can hold
        assert got.version in (2, 3)
        assert len(got.tensors) == n_tensors
        assert len(got.metadata) <= n_kv


@pytest.mark.parametrize("size", [1, 1024, 16 * 1024 * 1024 + 1])
def test_huge_metadata_strings_are_bounded(tmp_path: Path, size: int, ledger: Ledger) -> None:
    """A string longer than the cap is refused without being read; shorter ones are kept."""
    body = raw_header(0, 1) + gguf_string(b"general.name")
    body += struct.pack("<IQ", 8, size)
    p = tmp_path / "s.gguf"
    with p.open("wb") as fh:
        fh.write(body)
        fh.write(b"x" * min(size, 2 * 1024 * 1024))
    if size > 16 * 1024 * 1024:
        with pytest.raises(GGUFError, match="claims") as refused:
            read_header(p)
        ledger.hostile(named=_names_the_problem(str(refused.value)), what=f"string of {size} bytes")
    else:
        assert read_header(p).metadata["general.name"] == "x" * size
        ledger.hostile(what=f"string of {size} bytes")
