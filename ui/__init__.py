"""Longdesk's PySide6 shell: windows, widgets and the worker threads that own models."""
