"""Crash-safe writes of the app's files (settings, sessions, exports): the engine's one writer.

The implementation lives in ``engine.snapshots.atomic`` (model snapshots use it too, and the
engine may not import ``app``); this module only gives the app and the window its names.
"""

from __future__ import annotations

from longdesk.engine.snapshots.atomic import atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_text"]
