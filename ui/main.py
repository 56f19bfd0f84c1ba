"""The ``longdesk`` launcher: a command runs headless; no command opens the window.

PySide6 is imported only on the window path, so ``longdesk ask`` and ``--help`` stay fast and
work on machines without a display.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        from longdesk.app.cli import main as cli_main

        return cli_main(args)
    from longdesk.ui.application import run_gui

    return run_gui()


if __name__ == "__main__":
    raise SystemExit(main())
