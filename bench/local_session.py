"""Read once, ask forever: the local engine's figures on the default model, side by side.

One run measures, on a generated ~32K-token corpus (and an ~8K one for the size figures):

1. time to the first answer token after restoring the snapshot vs after re-reading the corpus
   (target: >= 50x);
2. the engine's chunked, progress-reporting prefill vs one plain llama-cpp-python ``eval`` of
   the same tokens on the same context (target: >= 0.95x);
3. snapshot bytes per token and save / restore seconds at 8K and 32K;
4. resume: a prefill stopped at ~60% without a final checkpoint (as a crash would) and
   started again redoes at most one checkpoint interval of work;
5. the same logits after a restore as after the live prefill (bit for bit);
6. a second ``longdesk ask`` on the 32K corpus: time to the first answer byte in a fresh
   process and from the resident worker.

Run: ``.venv/bin/python -m bench.local_session [--tokens 32000] [--interval 30]``. Takes
about 10 minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    Event,
    Progress,
    ThinkingDelta,
)
from longdesk.engine.backends.local import LocalBackend, LocalSettings
from longdesk.engine.context.pack import pack
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.snapshots.store import SnapshotStore

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Which room has the green door?"
WORDS = (
    "amber",
    "basil",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "grove",
    "harbor",
    "island",
    "juniper",
    "kestrel",
    "lantern",
    "meadow",
)


def ignore(_event: Event) -> None:
    """An event sink that drops everything."""


def write_corpus(folder: Path, lines: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(lines):
        a, b, c = WORDS[i % 13], WORDS[(i * 7) % 13], WORDS[(i * 11) % 13]
        rows.append(f"Room {i}: the {a} shelf holds {i * 3 % 97} books about {b} and {c}; the door is grey.")
    rows[len(rows) // 2] = f"Room {len(rows) // 2}: the door of this room is painted green."
    (folder / "rooms.txt").write_text("\n".join(rows) + "\n")
    return folder


def corpus_for(backend: LocalBackend, folder: Path, target_tokens: int) -> ContextPlan:
    """A corpus whose prefix is close to ``target_tokens`` (line count fitted on a sample)."""
    sample = write_corpus(folder, 200)
    per_line = pack(load_sources([sample]), backend.count_tokens, 10**9).prefix_tokens / 200
    write_corpus(folder, int(target_tokens / per_line * 0.98))
    return pack(load_sources([folder]), backend.count_tokens, 10**9)


def ttft(backend: LocalBackend, plan: ContextPlan) -> tuple[float, float, dict[str, object]]:
    """(seconds to read, seconds from the start of read to the first answer token, detail)."""
    t0 = time.perf_counter()
    reading = backend.read(plan, ignore, lambda: False)
    read_s = time.perf_counter() - t0
    first: list[float] = []

    def on_event(ev: Event) -> None:
        if isinstance(ev, AnswerDelta | ThinkingDelta) and not first:
            first.append(time.perf_counter())

    backend.ask(reading, (), QUESTION, AskOptions(max_output_tokens=4), on_event, lambda: False)
    return read_s, (first[0] if first else time.perf_counter()) - t0, reading.detail


def timed_stages(events: list[tuple[float, Event]], stage: str) -> float:
    times = [t for t, e in events if isinstance(e, Progress) and e.stage == stage]
    return times[-1] - times[0] if len(times) >= 2 else 0.0


def size_figures(backend: LocalBackend, plan: ContextPlan, label: str) -> None:
    events: list[tuple[float, Event]] = []
    reading = backend.read(plan, lambda e: events.append((time.perf_counter(), e)), lambda: False)
    save_s = timed_stages(events, "snapshot")
    events.clear()
    t0 = time.perf_counter()
    restored = backend.read(plan, lambda e: events.append((time.perf_counter(), e)), lambda: False)
    restore_s = time.perf_counter() - t0
    assert restored.restored
    assert backend.store is not None
    state = next(p for p in backend.store.folder.glob("*.state") if ".ckpt" not in p.name)
    size = state.stat().st_size
    print(
        f"[{label}] snapshot: {reading.prefix_tokens:,} tokens, {size / 1e6:,.1f} MB, "
        f"{size / reading.prefix_tokens:,.0f} bytes/token; save {save_s:.2f} s; "
        f"restore {restore_s:.2f} s (checksum + load)"
    )


def main() -> int:
    import platformdirs

    from longdesk.engine.models.default_model import ensure_default_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=31_500)
    ap.add_argument("--interval", type=float, default=30.0, help="checkpoint interval, seconds")
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    model = ensure_default_model(Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models")
    work = Path(tempfile.mkdtemp(prefix="longdesk-bench-"))
    home = work / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / model.name).symlink_to(model)
    stamp = model.with_name(model.name + ".verified")
    if stamp.exists():
        shutil.copy(stamp, home / "models" / stamp.name)
    try:
        # ---------------------------------------------------------------- 8K sizes
        small = LocalBackend(
            model, LocalSettings(n_ctx=8192, snapshot_dir=work / "s8k", checkpoint_interval_s=0)
        )
        plan8 = corpus_for(small, work / "c8k", 7_800)
        size_figures(small, plan8, "8K")
        small.close()

        # ---------------------------------------------------------------- 32K
        # No checkpoints while measuring throughput; the resume run below uses them.
        settings = LocalSettings(n_ctx=32768, snapshot_dir=home / "snapshots", checkpoint_interval_s=0)
        backend = LocalBackend(model, settings)
        plan = corpus_for(backend, work / "c32k", args.tokens)
        tokens = backend.tokenize(backend.encoder.prefix(plan.system_text, backend._thinking), special=True)
        print(f"[32K] corpus: {len(tokens):,} prefix tokens; batch {backend.settings.n_batch}")

        # 1+2: re-read (engine prefill + snapshot), then restore, then a plain eval.
        events: list[tuple[float, Event]] = []
        t0 = time.perf_counter()
        reading = backend.read(plan, lambda e: events.append((time.perf_counter(), e)), lambda: False)
        last_chunk = max(t for t, e in events if isinstance(e, Progress) and e.stage == "prefill")
        prefill_s = engine_s = last_chunk - t0  # template, tokenize, snapshot lookup, chunks
        save_s = timed_stages(events, "snapshot")
        assert backend.store is not None
        state = next(p for p in backend.store.folder.glob("*.state") if ".ckpt" not in p.name)
        print(
            f"[32K] snapshot: {state.stat().st_size / 1e6:,.1f} MB, "
            f"{state.stat().st_size / len(tokens):,.0f} bytes/token"
        )
        print(
            f"[32K] engine read: {reading.seconds:.1f} s incl. snapshot save {save_s:.2f} s; "
            f"prefill {prefill_s:.1f} s = {len(tokens) / prefill_s:,.0f} tok/s"
        )
        suffix = backend.encoder.first_turn(QUESTION, backend._thinking)
        live_logits = backend.probe_logits(suffix)
        reread_first = prefill_s
        first_ask = backend.ask(reading, (), QUESTION, AskOptions(max_output_tokens=4), ignore, lambda: False)
        del first_ask
        read_s, restore_ttft, detail = ttft(backend, plan)
        assert detail["snapshot"] == "restored", detail
        restored_logits = backend.probe_logits(suffix)
        same = np.array_equal(live_logits, restored_logits)
        print(
            f"[32K] restore: read {read_s:.2f} s, first answer token {restore_ttft:.2f} s after the start; "
            f"logits after restore == live: {same} "
            f"(max |d| {float(np.abs(live_logits - restored_logits).max())})"
        )
        # TTFT after re-reading = the engine prefill (measured above) + the same first-token work.
        reread_ttft = reread_first + (restore_ttft - read_s)
        print(
            f"[32K] TTFT re-read {reread_ttft:.1f} s vs restore {restore_ttft:.2f} s: "
            f"{reread_ttft / restore_ttft:.0f}x (target >= 50x)"
        )

        backend._clear()
        backend._key = None
        t0 = time.perf_counter()
        backend._llm.eval(tokens)
        plain_s = time.perf_counter() - t0
        print(
            f"[32K] plain llama-cpp-python eval: {plain_s:.1f} s = {len(tokens) / plain_s:,.0f} tok/s; "
            f"engine/plain throughput {plain_s / engine_s:.3f}x (engine incl. progress, "
            f"checkpoints excluded; target >= 0.95x)"
        )

        # 4: resume after a stop at ~60% with no checkpoint on cancel (a crash keeps none).
        backend.store = SnapshotStore(work / "resume")
        stop_at = int(len(tokens) * 0.6)
        backend.settings = replace(
            backend.settings, checkpoint_interval_s=args.interval, checkpoint_on_cancel=False
        )
        done = {"n": 0}

        def on_progress(ev: Event) -> None:
            if isinstance(ev, Progress) and ev.stage == "prefill":
                done["n"] = ev.done

        t0 = time.perf_counter()
        with contextlib.suppress(BackendError):
            backend.read(plan, on_progress, lambda: done["n"] >= stop_at)
        first_run_s = time.perf_counter() - t0
        rate = done["n"] / first_run_s
        t0 = time.perf_counter()
        again = backend.read(plan, ignore, lambda: False)
        resumed = int(again.detail.get("resumed_from", 0))  # type: ignore[call-overload]
        redo = done["n"] - resumed
        print(
            f"[32K] resume: stopped at {done['n']:,} tokens ({done['n'] / len(tokens):.0%}) after "
            f"{first_run_s:.0f} s; resumed from {resumed:,}; redone {redo:,} tokens = {redo / rate:.1f} s "
            f"of work vs checkpoint interval {args.interval:.0f} s: "
            f"{'OK' if redo / rate <= args.interval + 5 else 'FAIL'}; "
            f"second run {time.perf_counter() - t0:.0f} s"
        )
        backend.close()

        # 6: the CLI on the same corpus, restoring the snapshot made above: a fresh process
        # vs the resident worker (bench/cli_second_ask.py).
        if not args.skip_cli:
            from bench.cli_second_ask import compare

            fresh, held = compare(home, work / "c32k", 3)
            print(
                f"[CLI] second ask, first answer byte: fresh process {fresh:.2f} s, "
                f"resident worker {held:.2f} s ({fresh / held:.1f}x sooner)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
