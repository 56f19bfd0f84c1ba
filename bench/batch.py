"""`longdesk batch` against a fresh `longdesk ask` per question, side by side in one run.

Both sides answer the same questions about the same corpus with the same model and answer
length, as a user runs them (real processes, the installed `longdesk` command). Before either
side is timed, one `longdesk ask` saves the corpus snapshot, so both start from a saved reading:
the batch restores it once and asks every question from it; each fresh `ask` pays its own start,
model load and snapshot restore. The resident worker is off (``LONGDESK_KEEP_ALIVE=0``) so that
"fresh" means fresh.

Printed: questions per hour (all questions, wall clock, start-up included) and the time per
question after the first (the batch: between its first and last answer; ask: the mean of the
runs after the first), and the ratios.

    python -m bench.batch [--corpus DIR] [--questions 6] [--max-tokens 16] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = (
    "Which function produces the SQL text that recreates a database?",
    "What is the value of paramstyle?",
    "What is Binary an alias for?",
    "What does register_adapters_and_converters register?",
    "How is version_info computed?",
    "What is the first statement the dump yields?",
    "What does DateFromTicks return?",
    "Why is enable_shared_cache deprecated?",
)


def _exe() -> list[str]:
    exe = Path(sys.executable).with_name("longdesk")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "longdesk.ui.main"]


def _home(tmp: Path) -> dict[str, str]:
    """A private LONGDESK_HOME whose models folder links the default model (no re-assembly)."""
    import platformdirs

    from longdesk.engine.models.default_model import ensure_default_model

    model = ensure_default_model(Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models")
    models = tmp / "home" / "models"
    models.mkdir(parents=True)
    (models / model.name).symlink_to(model)
    stamp = model.with_name(model.name + ".verified")
    if stamp.exists():
        (models / stamp.name).write_text(stamp.read_text())
    return {**os.environ, "LONGDESK_HOME": str(tmp / "home"), "LONGDESK_KEEP_ALIVE": "0"}


def _default_corpus() -> Path:
    sqlite = (
        Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "sqlite3"
    )
    return sqlite if sqlite.is_dir() else ROOT / "docs"


def run_batch(
    corpus: Path, qfile: Path, out: Path, max_tokens: int, env: dict[str, str], extra: list[str]
) -> tuple[float, list[float]]:
    """Wall time of the whole batch, and the wall clock of each answer as it was reported."""
    cmd = [*_exe(), "batch", str(corpus), "--questions", str(qfile), "-o", str(out)]
    cmd += ["--max-tokens", str(max_tokens), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    answered: list[float] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        if re.search(r"\] .* · q\d+: answered in", line):
            answered.append(time.perf_counter() - t0)
    if proc.wait() != 0:
        raise SystemExit(f"longdesk batch failed ({proc.returncode})")
    return time.perf_counter() - t0, answered


def run_asks(
    corpus: Path, questions: list[str], max_tokens: int, env: dict[str, str], extra: list[str]
) -> list[float]:
    """Wall time of one fresh `longdesk ask` per question."""
    times = []
    for q in questions:
        t0 = time.perf_counter()
        r = subprocess.run([*_exe(), "ask", str(corpus), "-q", q, "--max-tokens", str(max_tokens), *extra],
                           capture_output=True, text=True, env=env, check=False)  # fmt: skip
        if r.returncode != 0:
            raise SystemExit(f"longdesk ask failed ({r.returncode}): {r.stderr[-500:]}")
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=_default_corpus())
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=0, help="llama.cpp threads for both (0: longdesk's default)"
    )
    ns = parser.parse_args()
    extra = ["--threads", str(ns.threads)] if ns.threads else []
    questions = list(QUESTIONS[: max(2, min(ns.questions, len(QUESTIONS)))])
    with tempfile.TemporaryDirectory(prefix="longdesk-bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        env = _home(tmp)
        qfile = tmp / "questions.txt"
        qfile.write_text("\n".join(questions) + "\n")
        print(
            f"corpus {ns.corpus}, {len(questions)} questions, answers of {ns.max_tokens} tokens", flush=True
        )
        warm = subprocess.run([*_exe(), "ask", str(ns.corpus), "-q", "hi", "--max-tokens", "1", *extra],
                              capture_output=True, text=True, env=env, check=False)  # fmt: skip
        if warm.returncode != 0:
            raise SystemExit(f"warm-up failed: {warm.stderr[-500:]}")
        batch_wall, answered = run_batch(ns.corpus, qfile, tmp / "out", ns.max_tokens, env, extra)
        asks = run_asks(ns.corpus, questions, ns.max_tokens, env, extra)
    n = len(questions)
    batch_after = (answered[-1] - answered[0]) / (n - 1)
    ask_after = statistics.fmean(asks[1:])
    ask_wall = sum(asks)
    print(f"{'':28}{'batch':>12}{'fresh ask':>12}{'ratio':>8}")
    print(f"{'questions per hour':28}{n / batch_wall * 3600:>12,.0f}{n / ask_wall * 3600:>12,.0f}"
          f"{ask_wall / batch_wall:>7.2f}x")  # fmt: skip
    print(
        f"{'time per question, after 1st':28}{batch_after:>11.1f}s{ask_after:>11.1f}s"
        f"{ask_after / batch_after:>7.2f}x"
    )
    print(f"{'first answer':28}{answered[0]:>11.1f}s{asks[0]:>11.1f}s")
    print(f"{'all questions':28}{batch_wall:>11.1f}s{ask_wall:>11.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
