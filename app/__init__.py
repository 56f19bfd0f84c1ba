"""Longdesk's Qt-free application core, shared by the GUI and the CLI."""

__version__ = "0.1.0"
