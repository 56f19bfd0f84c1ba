"""The bundle's entry point: the ``longdesk`` executable inside the PyInstaller folder.

It does three things, in this order:

1. **Stands in for the Python interpreter** when the app starts one of its own helper
   processes. Longdesk starts children as ``sys.executable -m longdesk.app.resident serve``
   (the model worker), ``sys.executable -I -c ...`` (the isolated parser) and
   ``sys.executable -c ...`` (the chat-template renderer). In a bundle ``sys.executable`` is
   this program, so those flags must mean what they mean to ``python``: ``-c CODE ARGS`` runs
   CODE with ``sys.argv == ["-c", *ARGS]``; ``-m MODULE ARGS`` runs the module as
   ``__main__``; ``-I -E -s -S -B -u`` before them are accepted and ignored (the bundle has no
   site-packages or environment-driven paths to drop). This applies only when frozen, and only
   when the first argument is one of those flags; ``longdesk`` itself has no such option.
2. **Smoke mode** (``LONGDESK_SMOKE_WINDOW=PATH.png``, used by packaging/bundle.py and
   tests/packaging/test_bundle.py): starts the window exactly as a user does, and once the
   main window is shown and exposed prints ``LONGDESK_SMOKE window-shown <unix time>``, saves a
   screenshot to PATH (the whole screen when the platform can grab it, as under Xvfb; the
   window's own rendering offscreen), prints ``LONGDESK_SMOKE screenshot <PATH>`` and quits.
3. Otherwise runs ``longdesk`` (``longdesk.ui.main.main``) with the command line as given.
"""

from __future__ import annotations

import os
import runpy
import sys
import time

_INTERPRETER_FLAGS = {"-I", "-E", "-P", "-s", "-S", "-B", "-u", "-O", "-OO"}
_SMOKE_ENV = "LONGDESK_SMOKE_WINDOW"
_SMOKE_SETTLE_S = 1.5  # after the window is exposed: the first paints and the theme
_SMOKE_GIVE_UP_S = 120.0


def _run_as_interpreter(args: list[str]) -> int | None:
    """Handle ``-c``/``-m`` the way ``python`` does; None when ``args`` is not such a call."""
    i = 0
    while i < len(args) and args[i] in _INTERPRETER_FLAGS:
        i += 1
    if i >= len(args) or args[i] not in {"-c", "-m"} or i + 1 >= len(args):
        return None
    flag, target, rest = args[i], args[i + 1], args[i + 2 :]
    if flag == "-c":
        sys.argv = ["-c", *rest]
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(target, "<string>", "exec"), namespace)
        return 0
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
    return 0


def _install_smoke_probe(screenshot: str) -> None:
    """Have the window, once shown, report itself, save a screenshot and quit."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    started = time.monotonic()
    state: dict[str, float] = {}
    original_exec = QApplication.exec

    def main_window() -> QMainWindow | None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMainWindow) and widget.isVisible():
                handle = widget.windowHandle()
                if handle is not None and handle.isExposed():
                    return widget
        return None

    def probe() -> None:
        window = main_window()
        now = time.monotonic()
        if window is None:
            if now - started > _SMOKE_GIVE_UP_S:
                print("LONGDESK_SMOKE no-window", flush=True)
                QApplication.exit(3)
                return
            QTimer.singleShot(20, probe)
            return
        if "shown" not in state:
            state["shown"] = now
            print(f"LONGDESK_SMOKE window-shown {time.time():.3f}", flush=True)
            print(f"LONGDESK_SMOKE window-title {window.windowTitle()}", flush=True)
        if now - state["shown"] < _SMOKE_SETTLE_S:
            QTimer.singleShot(50, probe)
            return
        screen = window.screen()
        image = screen.grabWindow(0) if screen is not None else None
        if image is None or image.isNull() or QApplication.platformName() == "offscreen":
            image = window.grab()
        image.save(screenshot)
        print(f"LONGDESK_SMOKE screenshot {screenshot} {image.width()}x{image.height()}", flush=True)
        window.close()
        QApplication.exit(0)

    def exec_with_probe(*_args: object) -> int:  # QApplication.exec is static in PySide6
        QTimer.singleShot(0, probe)
        return int(original_exec())

    QApplication.exec = exec_with_probe  # type: ignore[method-assign]


def main() -> int:
    args = sys.argv[1:]
    if getattr(sys, "frozen", False):
        code = _run_as_interpreter(args)
        if code is not None:
            return code
    screenshot = os.environ.get(_SMOKE_ENV)
    if screenshot and not args:
        _install_smoke_probe(screenshot)
    from longdesk.ui.main import main as longdesk_main

    return longdesk_main(args)


if __name__ == "__main__":
    sys.exit(main())
