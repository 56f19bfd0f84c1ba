"""Read .zip and .tar(.gz/.bz2/.xz) archives member by member in memory, never extracting.

Zip and tar bombs are bounded by caps on the member count, the bytes of one member and of the
whole archive, and the compression ratio; sizes declared in headers are checked first and the
bytes actually read are counted as they stream (a header may lie). Member names with ``..``,
absolute paths, drive letters, backslashes or NUL are refused, and so are links, devices and
archives inside the archive. Every refusal is a FileIssue with its reason.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from longdesk.engine.corpus.model import FileIssue, Problem
from longdesk.engine.corpus.options import ArchiveLimits

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class Member:
    """One file read from an archive: ``name`` is the path inside it; ``packed``: the archive's
    bytes consumed up to this member's end (for reading progress)."""

    name: str
    data: bytes
    packed: int = 0


def archive_kind(name: str) -> str | None:
    """``zip``, ``tar`` or None, from a file name."""
    lower = name.lower()
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    return None


def unsafe_name(name: str) -> str | None:
    """Why a member name is refused, or None when it is a plain relative path."""
    if "\x00" in name:
        return "name contains a NUL byte"
    if "\\" in name:
        return "name contains a backslash"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    if ".." in name.split("/"):
        return "path leaves the archive (..)"
    return None


class _Budget:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.total = 0

    def read(self, fh: IO[bytes], declared_packed: int | None) -> bytes | str:
        """The member's bytes, or why reading stopped."""
        lim = self.limits
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            self.total += len(chunk)
            if size > lim.max_member_bytes:
                return f"member larger than the cap ({lim.max_member_bytes:,} bytes)"
            if self.total > lim.max_total_bytes:
                return f"archive expands past the cap ({lim.max_total_bytes:,} bytes)"
            if (
                declared_packed is not None
                and size > lim.ratio_floor_bytes
                and size / max(declared_packed, 1) > lim.max_ratio
            ):
                return f"compression ratio above {lim.max_ratio:g}:1 (zip bomb?)"
            parts.append(chunk)


def _zip_members(path: Path, source: str, limits: ArchiveLimits, issues: list[FileIssue]) -> Iterator[Member]:
    with zipfile.ZipFile(path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > limits.max_members:
            issues.append(
                FileIssue(
                    source,
                    Problem.SKIPPED,
                    f"{len(infos):,} members, more than the cap ({limits.max_members:,})",
                )
            )
            return
        budget = _Budget(limits)
        packed = 0
        for info in sorted(infos, key=lambda i: i.filename):
            packed += info.compress_size
            where = f"{source}!{info.filename}"
            why = unsafe_name(info.filename)
            mode = info.external_attr >> 16
            if why is None and stat.S_ISLNK(mode):
                why = "symbolic link"
            if why is None and info.flag_bits & 0x1:
                why = "password required"
            if why is None and archive_kind(info.filename):
                why = "archive inside an archive (not opened)"
            if why is None and info.file_size > limits.max_member_bytes:
                why = f"member larger than the cap ({info.file_size:,} > {limits.max_member_bytes:,} bytes)"
            if (
                why is None
                and info.file_size > limits.ratio_floor_bytes
                and info.file_size / max(info.compress_size, 1) > limits.max_ratio
            ):
                why = f"compression ratio above {limits.max_ratio:g}:1 (zip bomb?)"
            if why is not None:
                issues.append(FileIssue(where, Problem.SKIPPED, why))
                continue
            try:
                with zf.open(info) as fh:
                    data = budget.read(fh, info.compress_size)
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                NotImplementedError,
                RuntimeError,
                OSError,
            ) as exc:
                issues.append(FileIssue(where, Problem.FAILED, f"cannot read member: {exc}"))
                continue
            if isinstance(data, str):
                issues.append(FileIssue(where, Problem.SKIPPED, data))
                if budget.total > limits.max_total_bytes:
                    return
                continue
            yield Member(info.filename, data, packed)


class _Counting:
    """A file wrapper that counts the compressed bytes tarfile pulls through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


def _tar_members(path: Path, source: str, limits: ArchiveLimits, issues: list[FileIssue]) -> Iterator[Member]:
    with path.open("rb") as raw:
        counting = _Counting(raw)
        budget = _Budget(limits)
        seen = 0
        with tarfile.open(fileobj=counting, mode="r|*") as tf:  # type: ignore[call-overload]
            for info in tf:
                seen += 1
                if seen > limits.max_members:
                    issues.append(
                        FileIssue(
                            source,
                            Problem.SKIPPED,
                            f"more members than the cap ({limits.max_members:,}); rest not read",
                        )
                    )
                    return
                expanded = budget.total + info.size
                if (
                    expanded > limits.ratio_floor_bytes
                    and expanded / max(counting.count, 1) > limits.max_ratio
                ):
                    issues.append(
                        FileIssue(
                            source,
                            Problem.SKIPPED,
                            f"compression ratio above {limits.max_ratio:g}:1 (tar bomb?)",
                        )
                    )
                    return
                if info.isdir():
                    continue
                where = f"{source}!{info.name}"
                why = unsafe_name(info.name)
                if why is None and (info.issym() or info.islnk()):
                    why = "link"
                if why is None and not info.isreg():
                    why = "not a regular file (device or FIFO)"
                if why is None and archive_kind(info.name):
                    why = "archive inside an archive (not opened)"
                if why is None and info.size > limits.max_member_bytes:
                    why = f"member larger than the cap ({info.size:,} > {limits.max_member_bytes:,} bytes)"
                if why is not None:
                    budget.total += info.size if info.isreg() else 0
                    issues.append(FileIssue(where, Problem.SKIPPED, why))
                    if budget.total > limits.max_total_bytes:
                        issues.append(
                            FileIssue(source, Problem.SKIPPED, "archive expands past the cap; rest not read")
                        )
                        return
                    continue
                fh = tf.extractfile(info)
                if fh is None:
                    continue
                data = budget.read(fh, None)
                if isinstance(data, str):
                    issues.append(FileIssue(where, Problem.SKIPPED, data))
                    if budget.total > limits.max_total_bytes:
                        return
                    continue
                yield Member(info.name.removeprefix("./"), data, counting.count)


def read_archive(
    path: Path,
    source: str,
    limits: ArchiveLimits,
    issues: list[FileIssue],
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[Member]:
    """The readable members of one archive, in name order for zip and stored order for tar.

    Failures of the archive as a whole (corrupt, truncated) are appended to ``issues``.
    """
    kind = archive_kind(path.name) or archive_kind(source)
    members = _zip_members if kind == "zip" else _tar_members
    try:
        for member in members(path, source, limits, issues):
            if cancelled is not None and cancelled():
                return
            yield member
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as exc:
        issues.append(FileIssue(source, Problem.FAILED, f"corrupt or unreadable archive: {exc}"))
