"""A ~1M-token real codebase (part of the Python standard library) walked, read, anchored and counted.

Times, in one run: cold (empty caches: walk, read, anchor, exact counts with the default
model's own tokenizer, through llama.cpp) and warm (the same with the on-disk caches), and the
peak of Python memory (tracemalloc, a separate cold run) against the size of the text.
Run: .venv/bin/python bench/corpus_code.py [target_tokens]
"""

from __future__ import annotations

import sys
import sysconfig
import tempfile
import time
import tracemalloc
from pathlib import Path

from engine.context.pack import markup_overhead, pack
from engine.context.tokens import counter_for_gguf
from engine.corpus.load import load_sources

SKIP = {"test", "idlelib", "site-packages", "__pycache__", "lib2to3", "tkinter", "turtledemo", "ensurepip"}
CHARS_PER_TOKEN = 3.4  # only to choose folders; every reported count is exact


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


def run(folders: list[Path], tokenizer: object, model: Path, cache: Path) -> tuple[float, object, object]:
    t0 = time.perf_counter()
    corpus = load_sources(folders, cache_dir=cache)
    counter = counter_for_gguf(tokenizer, model, cache)
    plan = pack(corpus, counter, 1_100_000)
    counter.close()
    return time.perf_counter() - t0, corpus, plan


def main() -> None:
    import platformdirs

    from engine.backends.local import Tokenizer
    from engine.models.default_model import ensure_default_model

    target = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    folders = choose(stdlib, target)
    model = ensure_default_model(Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models")
    t0 = time.perf_counter()
    tokenizer = Tokenizer(model)
    print(f"tokenizer ({model.name}) loaded in {time.perf_counter() - t0:.1f} s (not in the times below)")
    with tempfile.TemporaryDirectory() as tmp:
        cold, corpus, plan = run(folders, tokenizer, model, Path(tmp) / "cache")
        warm, _, warm_plan = run(folders, tokenizer, model, Path(tmp) / "cache")
        assert warm_plan.system_text == plan.system_text  # type: ignore[attr-defined]
        text_bytes = sum(len(d.text.encode()) for d in corpus.documents)  # type: ignore[attr-defined]
        in_memory = sum(sys.getsizeof(s.text) for d in corpus.documents for s in d.segments)  # type: ignore[attr-defined]
        tracemalloc.start()
        run(folders, tokenizer, model, Path(tmp) / "cache2")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        plain, packed = markup_overhead(corpus, counter_for_gguf(tokenizer, model, Path(tmp) / "cache"))  # type: ignore[arg-type]
    docs = corpus.documents  # type: ignore[attr-defined]
    print(f"folders: {', '.join(f.name for f in folders)}")
    print(f"documents: {len(docs):,}, left out: {len(corpus.issues):,}, text: {text_bytes / 1e6:.1f} MB")  # type: ignore[attr-defined]
    print(f"exact tokens (packed, with instructions): {plan.prefix_tokens:,}")  # type: ignore[attr-defined]
    print(
        f"markup overhead: {packed / plain - 1:.2%} ({plain:,} -> {packed:,} tokens; target <= 15% for code)"
    )
    print(f"cold: {cold:6.1f} s (target <= 60 s)")
    print(f"warm: {warm:6.1f} s (target <= 5 s)   cold/warm = {cold / warm:.1f}x")
    print(
        f"peak Python memory: {peak / 1e6:.1f} MB = {peak / text_bytes:.2f}x the text as UTF-8 "
        f"({text_bytes / 1e6:.1f} MB), {peak / in_memory:.2f}x the text as held in memory "
        f"({in_memory / 1e6:.1f} MB) (target <= 3x)"
    )
    tokenizer.close()


if __name__ == "__main__":
    main()
