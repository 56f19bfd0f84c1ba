"""Turning files, folders and archives into anchored Documents (see architecture §2-3)."""
