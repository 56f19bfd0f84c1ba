"""The ``longdesk`` launcher: a command runs headless; no command opens the window.

PySide6 is imported only on the window path, so ``longdesk ask`` and ``--help`` stay fast and
work on machines without a display.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

_QT_LOG = logging.getLogger("longdesk.qt")


def route_qt_messages() -> None:
    """Send Qt's own warnings and errors (``qWarning`` and the like) to the Longdesk log."""
    from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def handler(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        where = f" ({context.file}:{context.line})" if context.file else ""
        _QT_LOG.log(levels.get(kind, logging.WARNING), "%s%s", message, where)

    qInstallMessageHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        from longdesk.app.cli import main as cli_main

        return cli_main(args)
    from longdesk.app import logs
    from longdesk.app.paths import Paths

    logs.configure(Paths.default().logs)
    route_qt_messages()
    from longdesk.ui.application import run_gui

    return run_gui()


if __name__ == "__main__":
    raise SystemExit(main())
