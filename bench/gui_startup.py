"""GUI responsiveness: start-to-window time, and the GUI thread's longest stall while working.

Run: ``.venv/bin/python bench/gui_startup.py [--files 2000] [--skip-model]``

1. Start to window shown, measured in fresh processes (interpreter start included), 3 runs.
2. A heartbeat timer on the GUI thread (every 5 ms) records the longest gap between ticks,
   per phase: ingesting a generated ~1M-token codebase (read, listed, counted), reading a small
   corpus with the real default model (prefill), and streaming an answer. A stall is the gap
   beyond the timer's own period. The budget is 50 ms per stall.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

STARTUP_CHILD = r"""
import time
t0 = time.perf_counter()
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv)
from longdesk.ui.main_window import MainWindow
window = MainWindow()
window.show()
def shown():
    print(f"SHOWN {time.perf_counter() - t0:.3f}", flush=True)
    window.close()
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""

HEARTBEAT_MS = 5
STALL_BUDGET_MS = 50.0


def startup_times(runs: int, home: Path) -> list[tuple[float, float]]:
    """(in-process seconds to first event-loop turn after show, wall seconds incl. interpreter)."""
    out = []
    env = {**os.environ, "LONGDESK_HOME": str(home)}
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", STARTUP_CHILD],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - t0
        line = next(x for x in proc.stdout.splitlines() if x.startswith("SHOWN"))
        out.append((float(line.split()[1]), wall))
    return out


def make_codebase(root: Path, files: int) -> int:
    """A synthetic Python codebase; returns its size in bytes (~4 bytes per token)."""
    total = 0
    for i in range(files):
        folder = root / f"pkg{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        body = "\n".join(
            f"def function_{i}_{j}(value: int) -> int:\n    '''Return {j} more.'''\n    return value + {j}\n"
            for j in range(40)
        )
        text = f'"""Module {i} of the benchmark codebase."""\n\n{body}'
        (folder / f"module_{i:05d}.py").write_text(text, encoding="utf-8")
        total += len(text)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000, help="files in the generated codebase")
    parser.add_argument("--skip-model", action="store_true", help="only startup and ingestion")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--count-timeout", type=float, default=300.0, help="seconds to wait for counting")
    ns = parser.parse_args()

    import platformdirs

    from longdesk.engine.models.default_model import ensure_default_model

    model = ensure_default_model(Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models")
    tmp = Path(tempfile.mkdtemp(prefix="longdesk-bench-"))
    home = tmp / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / model.name).symlink_to(model)
    stamp = model.with_name(model.name + ".verified")
    if stamp.exists():
        (home / "models" / stamp.name).write_text(stamp.read_text())
    (home / "config").mkdir()
    (home / "config" / "settings.json").write_text(
        json.dumps({"context_tokens": 4096, "max_output_tokens": 40})
    )
    os.environ["LONGDESK_HOME"] = str(home)

    figures: dict[str, object] = {}
    runs = startup_times(3, home)
    figures["startup_in_process_s"] = [round(a, 3) for a, _ in runs]
    figures["startup_wall_s"] = [round(b, 3) for _, b in runs]
    print(f"start -> window shown (in process): {', '.join(f'{a:.2f} s' for a, _ in runs)}  (budget 1.5 s)")
    print(f"start -> window shown (wall, incl. interpreter): {', '.join(f'{b:.2f} s' for _, b in runs)}")

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from longdesk.ui.application import freeze_long_lived_objects, tune_interpreter
    from longdesk.ui.main_window import MainWindow

    tune_interpreter()  # as ui.application.run_gui does

    window = MainWindow(restore_last_session=False)
    from longdesk.ui.theme import apply_theme

    apply_theme(app, window.theme)  # as ui.application.run_gui does, before the window shows
    window.theme_applied = True
    window.resize(1300, 820)
    window.show()
    freeze_long_lived_objects()  # as ui.application.run_gui does

    clock = QElapsedTimer()
    clock.start()
    state = {"last": 0.0, "phase": "idle", "cpu": time.thread_time()}
    worst: dict[str, float] = {}
    worst_cpu: dict[str, float] = {}
    gaps: dict[str, list[float]] = {}

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        gap = now - state["last"] - HEARTBEAT_MS
        state["last"] = now
        cpu_now = time.thread_time()
        busy = (cpu_now - float(state["cpu"])) * 1000
        state["cpu"] = cpu_now
        phase = str(state["phase"])
        worst_cpu[phase] = max(worst_cpu.get(phase, 0.0), busy)
        worst[phase] = max(worst.get(phase, 0.0), gap)
        gaps.setdefault(phase, []).append(gap)

    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(tick)
    state["last"] = clock.nsecsElapsed() / 1e6
    heartbeat.start()

    def enter(phase: str) -> None:
        """Start measuring ``phase`` now: synchronous bench work before it is not a stall."""
        state["phase"] = phase
        state["last"] = clock.nsecsElapsed() / 1e6
        state["cpu"] = time.thread_time()

    def wait_for(predicate: object, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            app.processEvents()
            if predicate():  # type: ignore[operator]
                return True
            time.sleep(0.001)
        return False

    loaded: list[object] = []
    window.model_loaded.connect(loaded.append)
    window.start_background_work()
    enter("model load")
    assert wait_for(lambda: bool(loaded), 300), "the model did not load"

    if not ns.skip_model:
        small = tmp / "small"
        small.mkdir()
        (small / "notes.md").write_text(
            "\n".join(
                f"Line {i}: the harbour floods at noon and the boats return at dusk." for i in range(40)
            ),
            encoding="utf-8",
        )
        planned: list[object] = []
        window.corpus_planned.connect(planned.append)
        window.add_paths([small])
        assert wait_for(lambda: bool(planned), 600)
        finished: list[object] = []
        window.answer_finished.connect(finished.append)
        streamed: list[float] = []
        window.engine.text_streamed.connect(lambda *_a: streamed.append(time.perf_counter()))

        def on_progress(_rid: int, _p: object) -> None:
            state["phase"] = "prefill"

        def on_text(*_a: object) -> None:
            state["phase"] = "streaming"

        window.engine.progressed.connect(on_progress)
        window.engine.text_streamed.connect(on_text)
        window.question.setPlainText("When does the harbour flood?")
        t_ask = time.perf_counter()
        window.ask()
        click_ms = (time.perf_counter() - t_ask) * 1000
        print(f"Ask click handled on the GUI thread in {click_ms:.0f} ms (question shown, request queued)")
        enter("prefill")
        assert wait_for(lambda: bool(finished), 900), "the answer did not finish"
        turn = finished[-1]
        span = (streamed[-1] - streamed[0]) if len(streamed) > 1 else 0.0
        figures["answer"] = {
            "output_tokens": turn.output_tokens,  # type: ignore[attr-defined]
            "text_signals": len(streamed),
            "signals_per_s": round(len(streamed) / span, 1) if span else None,
            "seconds": round(time.perf_counter() - t_ask, 1),
        }
        print(
            f"answer: {turn.output_tokens} tokens, {len(streamed)} text signals"  # type: ignore[attr-defined]
            + (f" ({len(streamed) / span:.1f}/s, cap 30/s)" if span else "")
        )
    code = tmp / "codebase"
    size = make_codebase(code, ns.files)
    window.new_session()
    planned = []
    window.corpus_planned.connect(planned.append)
    t0 = time.perf_counter()
    window.add_paths([code])
    enter("ingest")
    assert wait_for(lambda: window.corpus is not None, 1800), "reading the files did not finish"
    read_s = time.perf_counter() - t0
    listed = len(window.sources.model.documents())
    print(f"read and listed {listed:,} files, {size / 1e6:.1f} MB, in {read_s:.1f} s")
    enter("counting")
    finished_count = wait_for(lambda: bool(planned), ns.count_timeout)
    ingest_s = time.perf_counter() - t0
    tokens = planned[-1].prefix_tokens if planned else 0  # type: ignore[attr-defined]
    figures["ingest"] = {
        "files": ns.files,
        "bytes": size,
        "tokens": tokens,
        "read_s": round(read_s, 1),
        "counted_s": round(ingest_s, 1) if finished_count else None,
    }
    if finished_count:
        print(f"counted {tokens:,} tokens (exact, model tokenizer) after {ingest_s:.1f} s")
    else:
        print(f"counting still running after {ns.count_timeout:.0f} s (measured the GUI meanwhile)")

    heartbeat.stop()
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"GUI-thread longest stall per phase (heartbeat {HEARTBEAT_MS} ms, budget {STALL_BUDGET_MS:.0f} ms):"
    )
    stalls = {}
    for phase, value in worst.items():
        ordered = sorted(gaps[phase])
        p99 = ordered[int(0.99 * (len(ordered) - 1))]
        cpu = worst_cpu.get(phase, 0.0)
        stalls[phase] = {
            "max_ms": round(value, 1),
            "p99_ms": round(p99, 1),
            "max_gui_cpu_ms": round(cpu, 1),
            "ticks": len(ordered),
        }
        verdict = "ok" if value <= STALL_BUDGET_MS else "OVER"
        print(
            f"  {phase:<11} max {value:7.1f} ms  p99 {p99:6.1f} ms  "
            f"GUI-thread CPU in the worst gap {cpu:6.1f} ms  ({len(ordered):,} ticks) {verdict}"
        )
    figures["stalls"] = stalls
    window.close()
    if ns.json:
        ns.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
