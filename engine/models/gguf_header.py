"""A bounded reader of GGUF headers: metadata and tensor table, never the weights.

GGUF files come from model hubs and are untrusted. Parsers have overflowed on absurd counts
and string lengths (see the reliability notes), and the ``gguf`` package parses the whole
tokenizer in Python (seconds for a 262k vocabulary). This reader checks every count and length
against the file size and fixed caps before it reads, keeps only the keys it is asked for
(large arrays are skipped, their length recorded), and stops at the tensor table.

Layout (little-endian): magic ``GGUF``, u32 version (2 or 3), u64 tensor count, u64 KV count,
then KV pairs (string key, u32 type, value), then per tensor: string name, u32 n_dims,
u64 dims[n_dims], u32 ggml type, u64 offset.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
MAX_KV = 100_000
MAX_TENSORS = 1_000_000
MAX_STRING = 16 * 1024 * 1024  # the longest metadata string we accept (chat templates are KBs)
MAX_ARRAY = 50_000_000
MAX_DIMS = 8
MAX_KEEP_ARRAY = 64  # arrays up to this length are kept as values; longer ones only counted

_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_STRING = 8
_ARRAY = 9


def ggml_type(type_id: int) -> tuple[str, int, int] | None:
    """``(name, block size, bytes per block)`` of a ggml tensor type; None for a type unknown here.

    Taken from ``gguf.constants`` (the gguf package that llama.cpp's own tools use), never
    from a table of our own: an unknown type is refused, it never counts as 0 bytes.
    """
    return _ggml_types().get(type_id)


@functools.cache
def _ggml_types() -> dict[int, tuple[str, int, int]]:
    from gguf.constants import GGML_QUANT_SIZES

    return {int(t): (t.name, block, size) for t, (block, size) in GGML_QUANT_SIZES.items()}


# llama_ftype (general.file_type) -> the name users know the quantisation by.
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}

_SHARD_RE = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


class GGUFError(Exception):
    """The file is not a GGUF this reader accepts; the message names the problem."""


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int

    @property
    def type_name(self) -> str:
        known = ggml_type(self.type_id)
        return known[0] if known is not None else f"type{self.type_id}"

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def n_bytes(self) -> int:
        """Bytes of the tensor's data.

        Raises:
            GGUFError: the type is unknown (``read_header`` refuses such files first).
        """
        known = ggml_type(self.type_id)
        if known is None:
            raise GGUFError(f"tensor {self.name} has ggml type {self.type_id}, which is unknown here")
        _, block, size = known
        return -(-self.n_elements // block) * size


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    """What a GGUF header says, read without touching the weights.

    Attributes:
        metadata: key -> value; arrays longer than ``MAX_KEEP_ARRAY`` are not kept (see
            ``array_lengths``).
        array_lengths: key -> length for every array value.
    """

    path: str
    version: int
    file_size: int
    metadata: dict[str, object]
    array_lengths: dict[str, int]
    tensors: tuple[TensorInfo, ...] = field(repr=False)

    @property
    def architecture(self) -> str:
        value = self.metadata.get("general.architecture", "")
        return value if isinstance(value, str) else ""

    def arch_int(self, suffix: str, default: int = 0) -> int:
        value = self.metadata.get(f"{self.architecture}.{suffix}", default)
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            return max(int(v) for v in value)
        return default

    @property
    def context_length(self) -> int:
        return self.arch_int("context_length")

    @property
    def name(self) -> str:
        value = self.metadata.get("general.name", "")
        return value if isinstance(value, str) and value else Path(self.path).stem

    @property
    def chat_template(self) -> str:
        value = self.metadata.get("tokenizer.chat_template", "")
        return value if isinstance(value, str) else ""

    @property
    def n_params(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def weights_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @property
    def quantization(self) -> str:
        """``general.file_type`` by name (``Q4_K_M``), else the commonest 2-D weight type."""
        file_type = self.metadata.get("general.file_type")
        if isinstance(file_type, int) and file_type in FILE_TYPES:
            return FILE_TYPES[file_type]
        by_type: dict[str, int] = {}
        for t in self.tensors:
            if len(t.shape) >= 2 and t.name != "token_embd.weight":
                by_type[t.type_name] = by_type.get(t.type_name, 0) + 1
        return max(by_type, key=lambda k: by_type[k]) if by_type else "?"

    @property
    def vocab_size(self) -> int:
        return self.array_lengths.get("tokenizer.ggml.tokens", 0)


class _Reader:
    """Bounds-checked reads from a read-only memory map of the file.

    Mapping costs nothing for a 100 GB file (only the header pages are touched) and lets a
    262K-entry vocabulary be skipped without a system call per entry.
    """

    def __init__(self, buf: mmap.mmap | bytes, size: int) -> None:
        self.buf = buf
        self.size = size
        self.pos = 0

    def tell(self) -> int:
        return self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise GGUFError("the header runs past the end of the file (truncated or corrupt)")
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return bytes(data)

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GGUFError("the header runs past the end of the file (truncated or corrupt)")
        self.pos += n

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` length-prefixed strings (a vocabulary) in one tight loop."""
        buf, pos, end, unpack = self.buf, self.pos, self.size, struct.unpack_from
        for _ in range(count):
            if pos + 8 > end:
                raise GGUFError("the header runs past the end of the file (truncated or corrupt)")
            (n,) = unpack("<Q", buf, pos)
            if n > MAX_STRING:
                raise GGUFError(f"a metadata string claims {n:,} bytes (limit {MAX_STRING:,})")
            pos += 8 + n
        if pos > end:
            raise GGUFError("the header runs past the end of the file (truncated or corrupt)")
        self.pos = pos

    def scalar(self, fmt: str, size: int) -> int | float | bool:
        if self.pos + size > self.size:
            raise GGUFError("the header runs past the end of the file (truncated or corrupt)")
        value: int | float | bool = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def u32(self) -> int:
        return int(self.scalar("<I", 4))

    def u64(self) -> int:
        return int(self.scalar("<Q", 8))

    def string(self, keep: bool = True) -> str:
        n = self.u64()
        if n > MAX_STRING:
            raise GGUFError(f"a metadata string claims {n:,} bytes (limit {MAX_STRING:,})")
        if not keep:
            self.skip(n)
            return ""
        return self.take(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, keep: bool) -> tuple[object, int | None]:
        if vtype in _SCALARS:
            fmt, size = _SCALARS[vtype]
            return self.scalar(fmt, size), None
        if vtype == _STRING:
            return self.string(keep), None
        if vtype == _ARRAY:
            etype = self.u32()
            count = self.u64()
            if count > MAX_ARRAY:
                raise GGUFError(f"a metadata array claims {count:,} entries (limit {MAX_ARRAY:,})")
            keep_items = keep and count <= MAX_KEEP_ARRAY
            if etype in _SCALARS and not keep_items:
                self.skip(count * _SCALARS[etype][1])
                return None, count
            if etype == _STRING and not keep_items:
                self.skip_strings(count)
                return None, count
            items = [self.value(etype, keep_items)[0] for _ in range(count)]
            return (items if keep_items else None), count
        raise GGUFError(f"unknown metadata value type {vtype}")


@contextlib.contextmanager
def _mapped(fh: BinaryIO, size: int) -> Iterator[mmap.mmap | bytes]:
    if size == 0:
        yield b""
        return
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        yield buf


def read_header(path: str | Path) -> GGUFHeader:
    """Read and check the header of ``path``.

    Raises:
        GGUFError: not a GGUF, unsupported version, truncated, or absurd counts/sizes.
        OSError: the file cannot be opened.
    """
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as fh, _mapped(fh, size) as buf:
        r = _Reader(buf, size)
        if size < 24 or r.take(4) != MAGIC:
            raise GGUFError(f"{p.name} is not a GGUF model file (bad magic)")
        version = r.u32()
        if version not in (2, 3):
            raise GGUFError(f"{p.name}: unsupported GGUF version {version}")
        n_tensors = r.u64()
        n_kv = r.u64()
        if n_tensors > MAX_TENSORS:
            raise GGUFError(f"{p.name}: absurd tensor count {n_tensors:,}")
        if n_kv > MAX_KV:
            raise GGUFError(f"{p.name}: absurd metadata count {n_kv:,}")
        metadata: dict[str, object] = {}
        lengths: dict[str, int] = {}
        for _ in range(n_kv):
            key = r.string()
            vtype = r.u32()
            value, count = r.value(vtype, keep=True)
            if count is not None:
                lengths[key] = count
            if value is not None:
                metadata[key] = value
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.u32()
            if n_dims == 0 or n_dims > MAX_DIMS:
                raise GGUFError(f"{p.name}: tensor {name!r} has {n_dims} dimensions")
            dims = tuple(r.u64() for _ in range(n_dims))
            if any(d == 0 or d > 1 << 40 for d in dims):
                raise GGUFError(f"{p.name}: tensor {name!r} has absurd shape {dims}")
            type_id = r.u32()
            offset = r.u64()
            if ggml_type(type_id) is None:
                raise GGUFError(
                    f"{p.name}: tensor {name!r} has ggml type {type_id}, which this version of Longdesk "
                    "does not know (update Longdesk, or use a file with common quantisation types)"
                )
            tensors.append(TensorInfo(name, dims, type_id, offset))
        data_start = r.tell()
    header = GGUFHeader(str(p), version, size, metadata, lengths, tuple(tensors))
    _check_data_size(header, data_start)
    return header


def _check_data_size(header: GGUFHeader, data_start: int) -> None:
    if not header.tensors:  # nothing to hold (a metadata-only file or shard)
        return
    align_value = header.metadata.get("general.alignment", 32)
    align = align_value if isinstance(align_value, int) and align_value > 0 else 32
    start = (data_start + align - 1) // align * align
    end = max((t.offset + t.n_bytes for t in header.tensors), default=0)
    if start + end > header.file_size:
        missing = start + end - header.file_size
        raise GGUFError(
            f"{Path(header.path).name} is truncated: its tensors need {missing:,} bytes more than it has"
        )


def shard_paths(path: str | Path) -> list[Path]:
    """All shards of a split GGUF (``name-00001-of-00003.gguf``), or just ``[path]``."""
    p = Path(path)
    m = _SHARD_RE.match(p.name)
    if not m:
        return [p]
    count = int(m["count"])
    return [p.with_name(f"{m['stem']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def check_shards(path: str | Path) -> Iterator[str]:
    """Problems with a split model's shards (missing or unreadable), as messages.

    ``path`` itself is the caller's to read; only the other shards are checked here.
    """
    for shard in shard_paths(path):
        if shard == Path(path):
            continue
        if not shard.is_file():
            yield f"missing shard {shard.name}"
            continue
        try:
            read_header(shard)
        except (GGUFError, OSError) as exc:
            yield f"shard {shard.name}: {exc}"
