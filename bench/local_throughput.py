"""Engine prefill vs plain llama-cpp-python eval, interleaved (A B A B ...) on one context.

On a shared machine the load changes from minute to minute; alternating the two paths on
the same tokens, same context and same process makes the ratio fair. Run:
``.venv/bin/python -u -m bench.local_throughput [--tokens 4000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.local_session import corpus_for, ignore
from longdesk.engine.backends.local import LocalBackend, LocalSettings


def main() -> int:
    import platformdirs

    from longdesk.engine.models.default_model import ensure_default_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    model = ensure_default_model(Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models")
    with tempfile.TemporaryDirectory() as tmp:
        n_ctx = (args.tokens + 2048) // 1024 * 1024
        backend = LocalBackend(model, LocalSettings(n_ctx=n_ctx, checkpoint_interval_s=0))
        plan = corpus_for(backend, Path(tmp) / "corpus", args.tokens)
        tokens = backend.tokenize(backend.encoder.prefix(plan.system_text, backend._thinking), special=True)
        engine_s: list[float] = []
        plain_s: list[float] = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            backend._prefill(tokens, 0, ignore, lambda: False, stage="prefill", key=None)
            engine_s.append(time.perf_counter() - t0)
            backend._clear()
            t0 = time.perf_counter()
            backend._llm.eval(tokens)
            plain_s.append(time.perf_counter() - t0)
            backend._clear()
        backend.close()
    n = len(tokens)
    ratio = sum(plain_s) / sum(engine_s)
    print(f"{n:,} tokens, {args.rounds} rounds, batch {backend.settings.n_batch}")
    print(
        "engine chunked prefill s:",
        " ".join(f"{s:.1f}" for s in engine_s),
        f"({n * len(engine_s) / sum(engine_s):,.0f} tok/s)",
    )
    print(
        "plain llama-cpp eval s:  ",
        " ".join(f"{s:.1f}" for s in plain_s),
        f"({n * len(plain_s) / sum(plain_s):,.0f} tok/s)",
    )
    print(f"engine/plain throughput {ratio:.3f}x (target >= 0.95x): {'OK' if ratio >= 0.95 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
