"""The ``longdesk`` launcher: a command runs headless; files, folders or nothing open the window.

    longdesk                      the window (the last session reopens)
    longdesk book.pdf notes/      the window, on a new session with those sources
    longdesk ask|inspect|... ARGS the command line (``app.cli``)
    longdesk -- ask               a file named like a command

A second launch with files while a window is open hands them to that window
(``ui.single_instance``). PySide6 is imported only on the window path, so ``longdesk ask`` and
``--help`` stay fast and work on machines without a display.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

# The subcommands of ``app.cli`` (kept here so that opening the window does not import the CLI;
# a test checks that they match the parser's).
COMMANDS = frozenset({"ask", "batch", "inspect", "models", "key", "worker"})
EXIT_BAD_INPUT = 2


def split_args(args: Sequence[str]) -> tuple[bool, list[str]]:
    """(is_command, rest): a subcommand or an option goes to the CLI, anything else is paths.

    ``--`` ends the options: everything after it is a path, even ``ask``.
    """
    if args and args[0] == "--":
        return False, list(args[1:])
    if args and (args[0] in COMMANDS or args[0].startswith("-")):
        return True, list(args)
    return False, list(args)


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
    is_command, rest = split_args(args)
    if is_command:
        from longdesk.app.cli.commands import main as cli_main

        return cli_main(rest)
    missing = [p for p in rest if not Path(p).expanduser().exists()]
    if missing:
        names = ", ".join(missing)
        hint = f" (commands: {', '.join(sorted(COMMANDS))})" if len(rest) == 1 else ""
        sys.stderr.write(f"longdesk: error: no such file or folder: {names}{hint}\n")
        return EXIT_BAD_INPUT
    from longdesk.app import logs
    from longdesk.app.paths import Paths

    logs.configure(Paths.default().logs)
    route_qt_messages()
    from longdesk.ui.application import run_gui

    return run_gui([Path(p).expanduser().absolute() for p in rest])


if __name__ == "__main__":
    raise SystemExit(main())
