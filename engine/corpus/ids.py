"""Stable document ids and the order of documents in a corpus.

Ids: ``D`` + 5 characters of base32 of sha256(display name), e.g. ``DK7Q2M``. They depend on
the document's own name only, so they do not shift when other documents are added or removed,
and they are short enough to cite. When two names share the 5 characters, those documents (and
only those) get longer ids; identical names (the same file dropped twice) get ``-2``, ``-3``.

Order: the order the user gave the sources, and inside a folder or archive the sorted path.
When the previous order of the same workspace is passed, documents already there keep their
places and new ones are appended at the end, so the prefix the model has read stays valid; a
removed document closes its gap (the prefix after it must then be read again).
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Sequence

ID_PREFIX = "D"
ID_CHARS = 5
_MAX_CHARS = 16


def _digest(name: str) -> str:
    raw = hashlib.sha256(name.encode("utf-8")).digest()
    return base64.b32encode(raw).decode("ascii")


def assign_ids(names: Sequence[str]) -> list[str]:
    """One stable id per name (see the module docstring), in the order of ``names``."""
    digests = [_digest(n) for n in names]
    length = [ID_CHARS] * len(names)
    while True:
        groups: dict[str, set[str]] = defaultdict(set)
        for i, name in enumerate(names):
            groups[digests[i][: length[i]]].add(name)
        clash = False
        for i in range(len(names)):
            if len(groups[digests[i][: length[i]]]) > 1 and length[i] < _MAX_CHARS:
                length[i] += 1
                clash = True
        if not clash:
            break
    ids: list[str] = []
    seen: dict[str, int] = defaultdict(int)
    for i in range(len(names)):
        base = ID_PREFIX + digests[i][: length[i]]
        seen[base] += 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def keep_previous_order(ids: Sequence[str], previous: Sequence[str]) -> list[int]:
    """Indexes of ``ids`` in reading order: those in ``previous`` first, as they were, then new ones."""
    where = {doc_id: rank for rank, doc_id in enumerate(previous)}
    old = sorted((i for i, d in enumerate(ids) if d in where), key=lambda i: where[ids[i]])
    new = [i for i, d in enumerate(ids) if d not in where]
    return old + new
