"""Longdesk's engine: documents in, tokens counted, contexts packed, models run (Qt-free, app-free)."""
