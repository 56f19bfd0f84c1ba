"""Threads between the window and the engine: one owner per model, a pool for short jobs."""
