"""Saved model states on disk: content-addressed, checksummed, atomic, within a disk budget.

A snapshot is the llama.cpp sequence state after a prefix (the packed corpus), written by
``llama_state_seq_save_file`` and read back by ``llama_state_seq_load_file``. Reading a
1M-token book takes minutes to hours; restoring its snapshot takes seconds.

Layout of the snapshot folder, one pair per state:

    <digest>.state   the payload, exactly as llama.cpp wrote it
    <digest>.json    the commit record: key fields, token count, payload size and sha256

The payload is written first and the record last, each atomically (temporary file, fsync,
rename, fsync the folder), so a crash leaves either a complete pair, a payload without a
record (garbage, removed), or nothing. A record whose payload is missing, short or fails its
checksum is reported and removed, and the caller prefills instead: a damaged snapshot never
reaches llama.cpp (its state reader is not hardened against hostile files).

The digest addresses the content: the model file identity, the llama.cpp build, the load
settings that change the state's layout, the chat template, and the prefix tokens. Partial
states saved while a long prefill runs (checkpoints) live under ``<digest>.ckpt.*`` and
record how many of the prefix tokens they hold.

Least-recently-used snapshots are evicted when the folder exceeds its budget; using a
snapshot refreshes its record's modification time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from longdesk.engine.atomic import atomic_produce, atomic_write_bytes, remove_stale_temps

FORMAT = 1
STATE_SUFFIX = ".state"
RECORD_SUFFIX = ".json"
CHECKPOINT_TAG = ".ckpt"
_BLOCK = 16 << 20


class SnapshotError(Exception):
    """A snapshot cannot be used; the message says why in words a user understands."""


@dataclass(frozen=True, slots=True)
class SnapshotKey:
    """Everything that decides whether a saved state is valid for a prefix.

    Attributes:
        model: identity of the model file(s): sizes and hashes of their head and tail.
        model_name: the model's display name (for messages only; not part of the digest).
        build: the llama.cpp build that wrote the state.
        settings: the load settings that change the state's layout (K/V types, flash
            attention, SWA cache size, ubatch), as ``name=value`` pairs.
        template: sha256 of the prompt format (chat template text and encoder).
        tokens: sha256 of the prefix tokens (int32, little-endian).
        n_tokens: length of the prefix in tokens.
    """

    model: str
    model_name: str
    build: str
    settings: str
    template: str
    tokens: str
    n_tokens: int

    @property
    def digest(self) -> str:
        text = "\n".join(
            (f"format={FORMAT}", self.model, self.build, self.settings, self.template, self.tokens)
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]

    def mismatch(self, other: SnapshotKey) -> str:
        """Why a state saved under ``other`` cannot stand for this key ('' when it can)."""
        if other.model != self.model:
            return f"it was made with another model file ({other.model_name}), not {self.model_name}"
        if other.build != self.build:
            return f"it was made by another llama.cpp build ({other.build}; this is {self.build})"
        if other.settings != self.settings:
            return f"it was made with other load settings ({other.settings}; now {self.settings})"
        if other.template != self.template:
            return "it was made with another chat template or thinking mode"
        if other.tokens != self.tokens or other.n_tokens != self.n_tokens:
            return "it holds a different prefix (the corpus or instructions changed)"
        return ""


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """The commit record of one saved state."""

    key: SnapshotKey
    n_done: int  # prefix tokens the state holds (== key.n_tokens when complete)
    complete: bool
    payload_bytes: int
    payload_sha256: str
    created: float
    seconds_to_make: float  # prefill seconds this state saves (for the UI's "saved you" line)

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1, sort_keys=True).encode("utf-8")

    @staticmethod
    def from_json(data: bytes) -> SnapshotRecord:
        raw = json.loads(data.decode("utf-8"))
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError("unknown snapshot record format")
        key = raw["key"]
        if not isinstance(key, dict):
            raise ValueError("bad key")
        return SnapshotRecord(
            key=SnapshotKey(
                model=str(key["model"]),
                model_name=str(key["model_name"]),
                build=str(key["build"]),
                settings=str(key["settings"]),
                template=str(key["template"]),
                tokens=str(key["tokens"]),
                n_tokens=int(key["n_tokens"]),
            ),
            n_done=int(raw["n_done"]),
            complete=bool(raw["complete"]),
            payload_bytes=int(raw["payload_bytes"]),
            payload_sha256=str(raw["payload_sha256"]),
            created=float(raw["created"]),
            seconds_to_make=float(raw["seconds_to_make"]),
        )


def file_sha256(path: Path, expected_size: int | None = None) -> str:
    """Checksum of a file: sha256 over the sha256 digests of its 16 MiB blocks.

    The blocks are hashed on every core (hashlib releases the GIL), so verifying a
    multi-gigabyte state before a restore costs a fraction of a plain sha256's time.

    Raises:
        SnapshotError: the file is shorter or longer than ``expected_size``.
        OSError: the file cannot be read.
    """
    outer = hashlib.sha256()
    size = 0
    workers = max(1, os.cpu_count() or 1)
    with path.open("rb") as fh, ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[Future[bytes]] = []
        while block := fh.read(_BLOCK):
            size += len(block)
            pending.append(pool.submit(_block_digest, block))
            if len(pending) >= 2 * workers:
                outer.update(pending.pop(0).result())
        for future in pending:
            outer.update(future.result())
    if expected_size is not None and size != expected_size:
        raise SnapshotError(
            f"the saved state is {size:,} bytes; its record says {expected_size:,} (truncated)"
        )
    return outer.hexdigest()


def _block_digest(block: bytes) -> bytes:
    return hashlib.sha256(block).digest()


class SnapshotStore:
    """A folder of saved states with a byte budget and least-recently-used eviction."""

    def __init__(self, folder: Path, budget_bytes: int = 20 << 30) -> None:
        self.folder = folder
        self.budget_bytes = budget_bytes
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(folder)

    # ------------------------------------------------------------------ paths
    def _stem(self, key: SnapshotKey, checkpoint: bool) -> str:
        return key.digest + (CHECKPOINT_TAG if checkpoint else "")

    def state_path(self, key: SnapshotKey, *, checkpoint: bool = False, n_done: int = 0) -> Path:
        """Where a state's payload lives.

        A checkpoint's payload name carries its token count, so that saving a newer checkpoint
        never overwrites the payload the current record describes: a kill between the two
        writes leaves the old record with its old payload, still loadable.
        """
        if checkpoint:
            return self.folder / f"{self._stem(key, True)}-{n_done}{STATE_SUFFIX}"
        return self.folder / (self._stem(key, checkpoint) + STATE_SUFFIX)

    def payload_of(self, record: SnapshotRecord) -> Path:
        return self.state_path(record.key, checkpoint=not record.complete, n_done=record.n_done)

    def record_path(self, key: SnapshotKey, *, checkpoint: bool = False) -> Path:
        return self.folder / (self._stem(key, checkpoint) + RECORD_SUFFIX)

    # ------------------------------------------------------------------ read
    def find(self, key: SnapshotKey, *, checkpoint: bool = False) -> SnapshotRecord | None:
        """The record saved under ``key``, or None. A damaged record is removed.

        Raises:
            SnapshotError: a record under this digest belongs to another key (it was copied
                in from elsewhere or the file was edited); it is left in place.
        """
        path = self.record_path(key, checkpoint=checkpoint)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            record = SnapshotRecord.from_json(data)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            self._remove(path)
            return None
        why = key.mismatch(record.key)
        if why:
            raise SnapshotError(f"the saved state {path.name} cannot be used: {why}")
        return record

    def find_quietly(self, key: SnapshotKey, *, checkpoint: bool = False) -> SnapshotRecord | None:
        """Like ``find``, with a record of another key counted as no record."""
        try:
            return self.find(key, checkpoint=checkpoint)
        except SnapshotError:
            return None

    def verified_state(self, record: SnapshotRecord) -> Path:
        """Check a state's size and checksum before llama.cpp reads it; refresh its LRU time.

        Raises:
            SnapshotError: the state is missing, truncated or corrupt; it is removed so that
                the next reading makes a fresh one.
        """
        checkpoint = not record.complete
        state = self.payload_of(record)
        rec = self.record_path(record.key, checkpoint=checkpoint)
        try:
            digest = file_sha256(state, record.payload_bytes)
        except FileNotFoundError:
            self._remove(rec)
            raise SnapshotError(f"the saved state {state.name} is missing") from None
        except SnapshotError as exc:
            self._remove(rec, state)
            raise SnapshotError(f"the saved state {state.name} is damaged: {exc}") from None
        if digest != record.payload_sha256:
            self._remove(rec, state)
            raise SnapshotError(f"the saved state {state.name} is damaged (checksum mismatch)")
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(rec, (now, now))
        return state

    def records(self) -> Iterator[tuple[Path, SnapshotRecord]]:
        """Every readable record in the folder (damaged ones are skipped)."""
        for path in sorted(self.folder.glob("*" + RECORD_SUFFIX)):
            try:
                yield path, SnapshotRecord.from_json(path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue

    def explain_miss(self, key: SnapshotKey) -> str:
        """Why no saved state serves ``key`` although one for the same prefix text exists."""
        for _path, record in self.records():
            if record.complete and record.key.tokens == key.tokens:
                why = key.mismatch(record.key)
                if why:
                    return f"a saved state of this corpus exists but {why}"
        return ""

    # ------------------------------------------------------------------ write
    def save(
        self,
        key: SnapshotKey,
        write_state: Callable[[Path], None],
        *,
        n_done: int,
        seconds_to_make: float = 0.0,
    ) -> SnapshotRecord:
        """Write a state atomically with its checksum; a partial one (``n_done < n_tokens``)
        replaces the previous checkpoint of ``key``, a complete one removes it.

        Args:
            write_state: writes the payload to the path it is given (llama.cpp's file API).

        Raises:
            OSError: the disk refused the write; an older state under the same name is intact.
        """
        complete = n_done >= key.n_tokens
        checkpoint = not complete
        state = self.state_path(key, checkpoint=checkpoint, n_done=n_done)
        # The checkpoint being superseded stays until its successor is recorded.
        current = self.find_quietly(key, checkpoint=True)
        keep = {self.payload_of(current).name} if current is not None else set()
        self.evict(reserve=self._expected_size(key), keep=keep)
        atomic_produce(state, write_state)
        size = state.stat().st_size
        record = SnapshotRecord(
            key=key,
            n_done=n_done,
            complete=complete,
            payload_bytes=size,
            payload_sha256=file_sha256(state, size),
            created=time.time(),
            seconds_to_make=seconds_to_make,
        )
        atomic_write_bytes(self.record_path(key, checkpoint=checkpoint), record.to_json())
        if complete:
            self.discard_checkpoint(key)
        self.evict(keep={state.name})
        return record

    def discard_checkpoint(self, key: SnapshotKey) -> None:
        self._remove(self.record_path(key, checkpoint=True))
        self._remove(*self.folder.glob(f"{self._stem(key, True)}-*{STATE_SUFFIX}"))

    def remove(self, key: SnapshotKey) -> None:
        self._remove(self.record_path(key), self.state_path(key))
        self.discard_checkpoint(key)

    # ------------------------------------------------------------------ budget
    def usage(self) -> int:
        """Bytes the folder's states and records take."""
        total = 0
        for p in self.folder.iterdir():
            with contextlib.suppress(OSError):
                total += p.stat().st_size
        return total

    def evict(self, *, reserve: int = 0, keep: set[str] | None = None) -> list[str]:
        """Remove least-recently-used states until usage + ``reserve`` fits the budget.

        Orphan payloads (no record: an interrupted save) go first. Returns removed names.
        """
        keep = keep or set()
        removed: list[str] = []
        entries: list[tuple[float, Path, Path]] = []
        recorded: set[str] = set()
        for record_file, record in self.records():
            payload = self.payload_of(record)
            recorded.add(payload.name)
            with contextlib.suppress(OSError):
                entries.append((record_file.stat().st_mtime, record_file, payload))
        for state in self.folder.glob("*" + STATE_SUFFIX):
            if state.name not in recorded and state.name not in keep:
                self._remove(state)
                removed.append(state.name)
        used = self.usage()
        for _mtime, record_file, payload in sorted(entries, key=lambda e: e[0]):
            if used + reserve <= self.budget_bytes:
                break
            if payload.name in keep:
                continue
            freed = sum(p.stat().st_size for p in (record_file, payload) if p.exists())
            self._remove(record_file, payload)
            used -= freed
            removed.append(payload.name)
        return removed

    def _expected_size(self, key: SnapshotKey) -> int:
        """A guess of a new state's size from the largest per-token size seen so far."""
        per_token = 0.0
        for _path, record in self.records():
            if record.n_done:
                per_token = max(per_token, record.payload_bytes / record.n_done)
        return int(per_token * key.n_tokens)

    @staticmethod
    def _remove(*paths: Path) -> None:
        for p in paths:
            with contextlib.suppress(OSError):
                p.unlink()
