"""One typed serialisation layer for records that cross a process boundary (msgspec).

``to_wire`` turns a record (a dataclass of the engine: events, plans, readings, options, load
settings) into JSON-ready builtins; ``from_wire`` checks builtins against the record's type and
builds it, enums and nested tuples included. A value of the wrong shape is a ``WireError`` that
names the field, never a half-built record. The resident worker's messages use it
(``app.resident``); nothing is pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class WireError(ValueError):
    """A message field does not have the type its record declares."""


def _enc_hook(obj: object) -> object:
    if isinstance(obj, Path):
        return str(obj)
    raise NotImplementedError(f"{type(obj).__name__} cannot go on the wire")


def _dec_hook(kind: type, obj: object) -> object:
    if kind is Path:
        if not isinstance(obj, str):
            raise TypeError(f"Expected a path string, got `{type(obj).__name__}`")  # msgspec adds the field
        return Path(obj)
    if kind is object:  # free-form detail (``Reading.detail``): JSON values as they are
        return obj
    raise NotImplementedError(f"{kind.__name__} cannot come off the wire")


def to_wire(record: object) -> Any:
    """``record`` as JSON-ready builtins (dicts, lists, strings, numbers, None)."""
    return msgspec.to_builtins(record, enc_hook=_enc_hook)


def from_wire(data: object, kind: type[T]) -> T:
    """Build a ``kind`` from builtins, checking every field's type.

    Raises:
        WireError: a field is missing, unknown or of the wrong type.
    """
    try:
        return msgspec.convert(data, kind, dec_hook=_dec_hook)
    except (msgspec.ValidationError, NotImplementedError) as exc:
        raise WireError(f"{kind.__name__}: {exc}") from exc
