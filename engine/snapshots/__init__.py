"""Saved model state after a prefix: read once, ask forever."""
