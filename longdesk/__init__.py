"""Longdesk: a desktop workbench for reading whole books, document sets and codebases with one
long-context model, with checked citations.

The installed distribution claims this one import name. Its subpackages live in the repository's
top-level folders (``app/``, ``ui/``, ``engine/``, ``assets/``) and are mapped under ``longdesk``
by setuptools' package-dir (pyproject.toml); the links in this folder give in-tree tools (mypy,
import-linter, ``python -m longdesk.ui.main`` from a checkout) the same names.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("longdesk")
except _metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
