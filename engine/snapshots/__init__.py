"""Saved model states on disk: read once, ask forever (architecture §3, Snapshot)."""
