"""The GUI process's interpreter settings: a short GIL switch interval, and frozen long-lived objects."""

from __future__ import annotations

import gc
import sys

# How long a thread running Python may keep the GIL while another waits for it. Python's 5 ms
# default means each GIL hand-over the GUI thread waits for (one per Qt-to-Python call) can
# cost 5 ms while a worker counts tokens or a pool thread imports numpy and llama.cpp; a tick
# of the event loop needs several. 1 ms keeps those phases inside the 50 ms stall budget
# (bench/gui_startup.py) at a negligible cost to the workers, whose heavy parts run in C.
GIL_SWITCH_INTERVAL_S = 0.001


def tune_interpreter() -> None:
    """Make the GUI thread wait less for the GIL (process-wide; the GUI process only)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def freeze_long_lived_objects() -> None:
    """Exempt the objects alive now (modules, widgets, the loaded libraries' Python side) from
    later garbage-collector passes.

    A full collection walks every tracked object holding the GIL: with Qt, numpy and
    llama-cpp-python loaded that is 25-50 ms, and when a worker thread triggers it the GUI
    thread waits that long (measured in bench/gui_startup.py as the model-load stall). The
    HTTP client and the vocabulary of a hosted endpoint are another 160,000 objects, 80-100 ms
    a pass (bench/million.py). Called once the window is built, once the model is loaded and
    once a hosted endpoint is opened, so later passes walk only what was made since. Objects
    frozen here are never collected: startup garbage stays, a few hundred kilobytes at most.
    """
    gc.freeze()
