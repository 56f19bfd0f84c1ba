"""A ~1M-token real codebase (part of the Python standard library) walked, read, anchored and counted.

Times, in one run: cold (empty caches: walk, read, anchor, exact counts with the default
model's own tokenizer, through llama.cpp, packed into the plan) and warm (the same with the
on-disk caches).

Memory, cold and warm, each measured in a fresh child process so that nothing earlier in this
process is counted: the pipeline (``load_sources`` + ``pack``) runs between two points, and the
child reports
    * the tracemalloc peak (Python allocations made by the pipeline), and
    * the peak RSS above the RSS just before the pipeline (sampled every 2 ms; includes
      llama.cpp's native allocations, minus memory the allocator reuses from before),
against the size of the text (the documents' text as UTF-8). Also reported: the peak when the
one packed string (``plan.corpus_text``, 2 bytes a character once any character is past
Latin-1) is then built from the blocks, as a backend does before reading.
Run: .venv/bin/python -m bench.corpus_code [target_tokens]
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from longdesk.engine.context.pack import markup_overhead, pack
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.context.tokens import counter_for_gguf
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.corpus.model import Corpus

SKIP = {"test", "idlelib", "site-packages", "__pycache__", "lib2to3", "tkinter", "turtledemo", "ensurepip"}
CHARS_PER_TOKEN = 3.4  # only to choose folders; every reported count is exact
TARGET_RATIO = 3.0


def choose(stdlib: Path, target_tokens: int) -> list[Path]:
    folders, chars = [], 0
    candidates = (p for p in stdlib.iterdir() if p.is_dir() and p.name not in SKIP)
    for folder in sorted(p for p in candidates if not p.name.startswith("config-")):
        size = sum(f.stat().st_size for f in folder.rglob("*.py"))
        if size == 0:
            continue
        if chars + size > target_tokens * CHARS_PER_TOKEN:
            continue
        folders.append(folder)
        chars += size
    return folders


def _model() -> Path:
    import platformdirs

    from longdesk.engine.models.default_model import ensure_default_model

    return ensure_default_model(Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models")


def run(
    folders: list[Path], tokenizer: object, model: Path, cache: Path
) -> tuple[float, Corpus, ContextPlan]:
    t0 = time.perf_counter()
    corpus = load_sources(folders, cache_dir=cache)
    counter = counter_for_gguf(tokenizer, model, cache)
    plan = pack(corpus, counter, 1_100_000)
    counter.close()
    return time.perf_counter() - t0, corpus, plan


class _RssPeak:
    """Samples this process's RSS every 2 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        return self.peak - self.base


def measure(target: int, cache: Path) -> dict[str, Any]:
    """One pipeline run in this (fresh) process: its memory peaks, as numbers."""
    from longdesk.engine.backends.local import Tokenizer

    folders = choose(Path(sysconfig.get_paths()["stdlib"]), target)
    model = _model()
    tokenizer = Tokenizer(model)
    gc.collect()
    rss = _RssPeak()
    tracemalloc.start()
    _, corpus, plan = run(folders, tokenizer, model, cache)
    _, peak = tracemalloc.get_traced_memory()
    rss_delta = rss.stop()
    tracemalloc.reset_peak()
    joined = plan.corpus_text  # the one string a backend builds before reading
    _, peak_joined = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    text_bytes = sum(len(d.text.encode("utf-8")) for d in corpus.documents)
    del joined
    tokenizer.close()
    return {"peak": peak, "peak_joined": peak_joined, "rss_delta": rss_delta, "text_bytes": text_bytes}


def _measure_in_child(target: int, cache: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.corpus_code", "--measure", str(target), str(cache)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    from longdesk.engine.backends.local import Tokenizer

    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(int(sys.argv[2]), Path(sys.argv[3]))))
        return
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    folders = choose(stdlib, target)
    model = _model()
    t0 = time.perf_counter()
    tokenizer = Tokenizer(model)
    print(f"tokenizer ({model.name}) loaded in {time.perf_counter() - t0:.1f} s (not in the times below)")
    with tempfile.TemporaryDirectory() as tmp:
        cold, corpus, plan = run(folders, tokenizer, model, Path(tmp) / "cache")
        warm, _, warm_plan = run(folders, tokenizer, model, Path(tmp) / "cache")
        assert warm_plan.system_text == plan.system_text  # byte-identical
        text_bytes = sum(len(d.text.encode()) for d in corpus.documents)
        plain, packed = markup_overhead(corpus, counter_for_gguf(tokenizer, model, Path(tmp) / "cache"))
        memory = {
            "cold": _measure_in_child(target, Path(tmp) / "cache-cold"),
            "warm": _measure_in_child(target, Path(tmp) / "cache"),
        }
    docs = corpus.documents
    print(f"folders: {', '.join(f.name for f in folders)}")
    print(
        f"documents: {len(docs):,}, left out: {len(corpus.issues):,}, text: {text_bytes / 1e6:.2f} MB (UTF-8)"
    )
    print(f"exact tokens (packed, with instructions): {plan.prefix_tokens:,}")
    print(
        f"markup overhead: {packed / plain - 1:.2%} ({plain:,} -> {packed:,} tokens; target <= 15% for code)"
    )
    print(f"cold: {cold:6.1f} s (target <= 60 s)")
    print(f"warm: {warm:6.1f} s (target <= 5 s)   cold/warm = {cold / warm:.1f}x")
    print("memory of load_sources + pack, each in a fresh process (target <= 3x the text):")
    for name, m in memory.items():
        size = m["text_bytes"]
        verdict = "ok" if max(m["peak"], m["rss_delta"]) <= TARGET_RATIO * size else "OVER"
        print(
            f"  {name}: tracemalloc peak {m['peak'] / 1e6:5.1f} MB = {m['peak'] / size:.2f}x; "
            f"peak RSS delta {m['rss_delta'] / 1e6:5.1f} MB = {m['rss_delta'] / size:.2f}x  [{verdict}]"
        )
        print(
            f"        then building the one packed string: tracemalloc peak "
            f"{m['peak_joined'] / 1e6:5.1f} MB = {m['peak_joined'] / size:.2f}x"
        )
    tokenizer.close()


if __name__ == "__main__":
    main()
