"""A second `longdesk ask` on the same corpus: fresh process vs the resident worker, side by side.

The first ask reads the corpus (and saves its snapshot); then, alternating, a fresh process
(``LONGDESK_KEEP_ALIVE=0``: imports, model load, context, snapshot restore) and an ask served by
the worker that holds the model and the corpus state. Prints the time from process start to
the first answer byte for each, their medians and the ratio.

Run: ``.venv/bin/python -m bench.cli_second_ask [--tokens 31500] [--rounds 3]``, or with
``--home H --corpus C`` to reuse a Longdesk home whose snapshot of C exists already.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ("Which shelf holds 5 books?", "Which room has a green door?", "How many books are in room 7?")


def first_byte(home: Path, corpus: Path, question: str, keep_alive: str) -> tuple[float, float, str]:
    """Seconds to the first answer byte and to the end, and stderr, of one `longdesk ask`."""
    env = {**os.environ, "LONGDESK_HOME": str(home), "LONGDESK_KEEP_ALIVE": keep_alive}
    exe = Path(sys.executable).with_name("longdesk")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "ask", str(corpus), "-q", question, "--max-tokens", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    proc.stdout.read(1)
    first = time.perf_counter() - t0
    _out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"longdesk ask failed ({proc.returncode}): {err.decode()[-500:]}")
    return first, time.perf_counter() - t0, err.decode()


def compare(home: Path, corpus: Path, rounds: int) -> tuple[float, float]:
    """Median first-byte seconds (fresh process, worker) over ``rounds`` alternating pairs."""
    first_byte(home, corpus, QUESTIONS[0], "600")  # starts the worker, which restores the snapshot
    fresh: list[float] = []
    held: list[float] = []
    for i in range(rounds):
        q = QUESTIONS[i % len(QUESTIONS)]
        f, _, err = first_byte(home, corpus, q, "0")
        assert "restored the reading" in err, err
        fresh.append(f)
        w, _, err = first_byte(home, corpus, q, "600")
        assert "already holds the reading" in err, err
        held.append(w)
        print(f"  round {i + 1}: fresh process {f:.2f} s, worker {w:.2f} s", flush=True)
    env = {**os.environ, "LONGDESK_HOME": str(home)}
    subprocess.run([str(Path(sys.executable).with_name("longdesk")), "worker", "stop"], env=env, check=False)
    return statistics.median(fresh), statistics.median(held)


def main() -> int:
    import platformdirs

    from bench.local_session import write_corpus
    from longdesk.engine.models.default_model import ensure_default_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=31_500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--home", type=Path, help="a Longdesk home that already holds the corpus snapshot")
    ap.add_argument("--corpus", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="longdesk-bench-"))
    try:
        if args.home and args.corpus:
            home, corpus = args.home, args.corpus
        else:
            model = ensure_default_model(
                Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models"
            )
            home, corpus = work / "home", work / "corpus"
            (home / "models").mkdir(parents=True)
            (home / "models" / model.name).symlink_to(model)
            stamp = model.with_name(model.name + ".verified")
            if stamp.exists():
                shutil.copy(stamp, home / "models" / stamp.name)
            write_corpus(corpus, int(args.tokens / 25.7))  # ~25.7 tokens per generated line
            t0 = time.perf_counter()
            first_byte(home, corpus, QUESTIONS[0], "0")
            print(f"first ask (reads the corpus, saves the snapshot): {time.perf_counter() - t0:.0f} s")
        fresh, held = compare(home, corpus, args.rounds)
        print(
            f"second ask, first answer byte (median of {args.rounds}): fresh process {fresh:.2f} s, "
            f"resident worker {held:.2f} s; worker {fresh / held:.1f}x sooner"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
