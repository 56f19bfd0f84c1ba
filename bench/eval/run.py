"""Long-context evaluation: needle and citation questions over the KJV Bible and a codebase.

Runs against any Backend (the local GGUF backend, or a hosted one that follows the Backend
protocol), at chosen lengths, and reports answer accuracy and citation validity per length as
a Markdown table, a PNG plot and one JSON line per question.

    python -m bench.eval --lengths 4k,8k,16k                 # the embedded default model
    python -m bench.eval --model V4-Flash.gguf --lengths 32k,128k,1m --threads 32
    python -m bench.eval --backend hosted --base-url https://api.deepseek.com \\
        --api-model deepseek-v4-flash --api-key-env DEEPSEEK_API_KEY --lengths 128k,1m

Scores per question:
    answer: share of the expected words (needle word, ingredients, verse reference, function
        name) found in the answer; ``locate`` questions also count when a citation points there.
    right place: share of the ground-truth places that some citation of the answer covers
        (a verse ± 1, a line ± 5).
    valid: citations that engine.grounding verifies (anchor exists, quotes found) over all
        citations the answer makes.
    located: where no citation of the model verified, the places Longdesk finds the answer's
        words at (``engine.grounding.locate``); "located right" is the share of right answers
        (answer score 1) whose located or verified citation covers the ground-truth place.

Base models are asked in the reading format (``engine.models.prompt_encoder``) and are asked
the bare question: the citing request ("cite the verse ...") is for models that can cite.
A ``locate`` answer scores only by the model's own words and citations, never by a place
Longdesk located (the question quotes the words, so locating them would prove nothing).
Readings are saved as snapshots (``--snapshots``), so a second run reads nothing again.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/eval/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.eval.haystack import Haystack, Question, bible_haystack, code_haystack
from bench.eval.plot import line_plot
from longdesk.engine.backends.base import (
    AnswerDelta,
    AskOptions,
    Backend,
    BackendError,
    Event,
    Failed,
    ThinkingMode,
)
from longdesk.engine.corpus.model import AnchorKind
from longdesk.engine.grounding import CitationTracker, CorpusIndex, Locator, Verdict

_SLACK = {AnchorKind.VERSE: 1, AnchorKind.LINES: 5, AnchorKind.PAGE: 0, AnchorKind.CHAPTER: 0}
TASKS = ("needle", "multi_needle", "locate")


def parse_length(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def label(length: int) -> str:
    return f"{length // (1024 * 1024)}M" if length >= 1024 * 1024 else f"{length // 1024}K"


@dataclass
class Result:
    """One question asked at one length."""

    corpus: str
    length: int
    prefix_tokens: int
    task: str
    depth: float
    question: str
    answer: str
    answer_score: float
    place_score: float
    citations: int
    valid: int
    seconds: float
    verdicts: list[str] = field(default_factory=list)
    error: str = ""
    read_seconds: float = 0.0  # reading the haystack (prefill), shared by its questions
    located: list[str] = field(default_factory=list)
    located_place: float = 0.0  # share of the ground-truth places a located citation covers
    stop: str = ""


# ---------------------------------------------------------------- backends
class LocalSource:
    """The local GGUF backend: one model instance per length, sized to it."""

    def __init__(self, model: Path, threads: int, snapshots: Path | None = None) -> None:
        from longdesk.engine.backends.local import Tokenizer

        self.model = model
        self.threads = threads
        self.snapshots = snapshots
        self._tok = Tokenizer(model)
        self.window = self._tok.header.context_length or 4096
        self.name = model.name

    def count_tokens(self, text: str) -> int:
        return self._tok.count(text)

    def open(self, n_ctx: int) -> Backend:
        from longdesk.engine.backends.local import LocalBackend, LocalSettings

        return LocalBackend(
            self.model,
            LocalSettings(n_ctx=min(n_ctx, self.window), n_threads=self.threads, snapshot_dir=self.snapshots),
        )

    def close(self) -> None:
        self._tok.close()


class OpenedSource:
    """Any already constructed Backend (a hosted one): its own window and tokenizer."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        info = backend.describe()
        self.window = info.context_window
        self.name = info.name

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def open(self, n_ctx: int) -> Backend:  # noqa: ARG002 - a hosted context is not sized per call
        return self.backend

    def close(self) -> None:
        self.backend.close()


def hosted_backend(ns: argparse.Namespace) -> Backend:
    """Build the hosted backend from ``--backend-factory module:callable`` or the hosted module.

    The callable receives the keyword arguments it accepts among ``base_url``, ``model``,
    ``api_key`` and ``context_window``.
    """
    spec = ns.backend_factory or "bench.eval.run:consented_hosted"
    module_name, _, attr = spec.partition(":")
    try:
        factory: Callable[..., Backend] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"eval: cannot load the backend {spec!r}: {exc}") from exc
    offered: dict[str, Any] = {
        "base_url": ns.base_url,
        "model": ns.api_model,
        "api_key": os.environ.get(ns.api_key_env, "") if ns.api_key_env else "",
        "context_window": ns.context_window,
    }
    params = inspect.signature(factory).parameters
    kwargs = {k: v for k, v in offered.items() if k in params and v}
    try:
        return factory(**kwargs)
    except (TypeError, BackendError) as exc:
        raise SystemExit(f"eval: cannot start the backend {spec!r} with {sorted(kwargs)}: {exc}") from exc


def consented_hosted(
    base_url: str = "", model: str = "", api_key: str = "", context_window: int = 0
) -> Backend:
    """The hosted backend for an evaluation run.

    Running the evaluation against an endpoint is the user's consent to send it the
    synthetic haystacks (public-domain Bible text and standard-library code), so each plan's
    fingerprint is permitted before it is read.
    """
    from longdesk.engine.backends.hosted import HostedBackend
    from longdesk.engine.backends.hosted_presets import make_config

    preset = "deepseek" if not base_url or "api.deepseek.com" in base_url else "openai-compatible"
    config = make_config(
        preset, base_url=base_url, model=model, api_key=api_key, context_window=context_window
    )
    backend = HostedBackend(config)
    original_read = backend.read

    def read(plan: Any, on_event: Any, cancelled: Any) -> Any:
        backend.permit(backend.fingerprint(plan))
        return original_read(plan, on_event, cancelled)

    backend.read = read  # type: ignore[method-assign]
    return backend


# ---------------------------------------------------------------- scoring
def _covers(verdict: Verdict, doc_id: str, place: int) -> bool:
    c = verdict.citation
    if c.doc_id != doc_id or c.anchor is None:
        return False
    slack = _SLACK.get(c.anchor.kind, 0)
    return c.anchor.start - slack <= place <= c.anchor.end + slack


def score(q: Question, answer: str, verdicts: list[Verdict]) -> tuple[float, float]:
    """(answer score, right-place score) of one answer, both 0..1."""
    text = " ".join(answer.casefold().split())
    found = [e for e in q.expected if " ".join(e.casefold().split()) in text]
    places = [p for p in q.places if any(_covers(v, q.doc_id, p) for v in verdicts)]
    place_score = len(places) / len(q.places) if q.places else 0.0
    answer_score = len(found) / len(q.expected)
    if q.task == "locate":
        answer_score = max(answer_score if not q.expected[0].isidentifier() else 0.0, place_score)
    return answer_score, place_score


def ask(
    backend: Backend,
    reading: Any,
    hay: Haystack,
    index: CorpusIndex,
    q: Question,
    max_tokens: int,
    thinking: ThinkingMode = ThinkingMode.OFF,
) -> Result:
    tracker = CitationTracker(index)
    parts: list[str] = []
    encoder = getattr(backend, "encoder", None)
    reading_format = encoder is not None and type(encoder).__name__ == "ReadingPromptEncoder"
    failure: list[str] = []

    def on_event(ev: Event) -> None:
        if isinstance(ev, AnswerDelta):
            parts.append(ev.text)
            tracker.feed(ev.text)
        elif isinstance(ev, Failed):
            failure.append(ev.message)

    t0 = time.perf_counter()
    options = AskOptions(thinking=thinking, max_output_tokens=max_tokens)
    result = backend.ask(reading, (), q.prompt(cite=not reading_format), options, on_event, lambda: False)
    if isinstance(result, Failed):
        failure.append(result.message)
    tracker.finish()
    verdicts = tracker.verdicts()
    answer = "".join(parts)
    a_score, p_score = score(q, answer, verdicts)
    located = Locator(index).locate(answer, verdicts)
    right = [v for v in (*verdicts, *located) if v.ok or v.located]
    covered = [p for p in q.places if any(_covers(v, q.doc_id, p) for v in right)]
    return Result(
        corpus=hay.name.split("-")[0],
        length=0,
        prefix_tokens=hay.plan.prefix_tokens,
        task=q.task,
        depth=q.depth,
        question=q.text,
        answer=answer,
        answer_score=a_score,
        place_score=p_score,
        citations=len(verdicts),
        valid=sum(v.ok for v in verdicts),
        seconds=time.perf_counter() - t0,
        verdicts=[f"{'ok' if v.ok else 'NO'} {v.citation.text}: {v.reason}" for v in verdicts],
        error="; ".join(failure),
        located=[f"{v.citation.text}: {v.reason}" for v in located],
        located_place=len(covered) / len(q.places) if q.places else 0.0,
        stop=getattr(result, "stop_reason", ""),
    )


# ---------------------------------------------------------------- running
def run(
    source: LocalSource | OpenedSource,
    ns: argparse.Namespace,
    log: Callable[[str], None],
    done: Callable[[list[Result]], None] = lambda _r: None,
) -> list[Result]:
    """Ask every question at every length; ``done`` gets the results so far after each length."""
    results: list[Result] = []
    builders = {"bible": bible_haystack, "code": code_haystack}
    reserve = ns.max_tokens + 512
    for length in ns.lengths:
        target = length
        if length + reserve > source.window:
            # A model trained for 32K tokens reads a "32K" haystack cut to leave room for the
            # question and the answer; the table shows the prefix it really read.
            target = source.window - reserve
            if target < length * 0.9:
                log(f"{label(length)}: skipped, the model's context is {source.window:,} tokens")
                continue
            log(f"{label(length)}: haystack of {target:,} tokens, {reserve} kept for question and answer")
        n_ctx = target + reserve
        backend = source.open((n_ctx + 1023) // 1024 * 1024)
        try:
            for corpus_name in ns.corpora:
                hay = builders[corpus_name](target, source.count_tokens, source.window, ns.seed)
                questions = [q for q in hay.questions if q.task in ns.tasks]
                t0 = time.perf_counter()
                try:
                    reading = backend.read(hay.plan, lambda _ev: None, lambda: False)
                except BackendError as exc:
                    log(f"{label(length)} {corpus_name}: could not read: {exc.message}")
                    continue
                read_s = time.perf_counter() - t0
                log(
                    f"{label(length)} {corpus_name}: {hay.plan.prefix_tokens:,} tokens "
                    f"read in {read_s:.1f} s; "
                    f"{len(questions)} questions"
                )
                index = CorpusIndex(hay.corpus)
                for q in questions:
                    r = ask(backend, reading, hay, index, q, ns.max_tokens, ThinkingMode(ns.thinking))
                    r.length = length
                    r.read_seconds = read_s
                    results.append(r)
                    log(
                        f"  {q.task:<12} depth {q.depth:.2f}  answer {r.answer_score:.2f}  "
                        f"place {r.place_score:.2f}"
                        f"  citations {r.valid}/{r.citations} valid  located {r.located_place:.2f}"
                        f"  {r.seconds:.1f} s  {r.stop}  {r.answer[:70]!r}"
                    )
        finally:
            if isinstance(source, LocalSource):
                backend.close()
        done(results)
    return results


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def table(results: list[Result], model: str) -> str:
    """Per length and corpus: accuracy by task, citation validity, right place."""
    head = (
        f"Model: {model}\n\n"
        "| length | corpus | prefix tokens | read s | needle | multi-needle | locate | answer (all) "
        "| citations | valid | right place | located right |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    keys = sorted({(r.length, r.corpus) for r in results})
    for length, corpus in keys:
        rs = [r for r in results if (r.length, r.corpus) == (length, corpus)]
        by_task = {t: _mean([r.answer_score for r in rs if r.task == t]) for t in TASKS}
        cites = sum(r.citations for r in rs)
        valid = sum(r.valid for r in rs)
        rows.append(
            f"| {label(length)} | {corpus} | {rs[0].prefix_tokens:,} | {rs[0].read_seconds:.0f} "
            f"| {_pct(by_task['needle'])} "
            f"| {_pct(by_task['multi_needle'])} | {_pct(by_task['locate'])} "
            f"| {_pct(_mean([r.answer_score for r in rs]))} | {cites} "
            f"| {_pct(valid / cites if cites else None)} | {_pct(_mean([r.place_score for r in rs]))} "
            f"| {_located_right(rs)} |"
        )
    return head + "\n".join(rows) + "\n"


def _located_right(rs: Sequence[Result]) -> str:
    """``k/n``: right answers (score 1) whose located or verified citation covers the place."""
    right = [r for r in rs if r.answer_score >= 1.0 and r.task != "locate"]
    if not right:
        return "–"
    return f"{sum(r.located_place >= 1.0 for r in right)}/{len(right)}"


def plot(results: list[Result], path: Path, model: str) -> None:
    lengths = sorted({r.length for r in results})
    series: dict[str, list[float | None]] = {}
    series["needle"] = [
        _mean([r.answer_score for r in results if r.task == "needle" and r.length == n]) for n in lengths
    ]
    for corpus in sorted({r.corpus for r in results}):
        series[f"{corpus} answer"] = [
            _mean([r.answer_score for r in results if r.corpus == corpus and r.length == n]) for n in lengths
        ]
    valid: list[float | None] = []
    place: list[float | None] = []
    located: list[float | None] = []
    for n in lengths:
        rs = [r for r in results if r.length == n]
        cites = sum(r.citations for r in rs)
        valid.append(sum(r.valid for r in rs) / cites if cites else None)
        place.append(_mean([r.place_score for r in rs]))
        right = [r for r in rs if r.answer_score >= 1.0 and r.task != "locate"]
        located.append(_mean([float(r.located_place >= 1.0) for r in right]))
    if any(v is not None for v in valid):
        series["citations valid"] = valid
        series["right place"] = place
    series["located right"] = located
    line_plot(path, f"LONGDESK EVAL {model}"[:60], [label(n) for n in lengths], series)


def report(paths: Sequence[Path], out: Path, model: str) -> str:
    """Table and plot from saved ``results.jsonl`` files (runs of different lengths merged)."""
    results = [
        Result(**json.loads(line))
        for p in paths
        for line in p.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    results.sort(key=lambda r: r.length)
    out.mkdir(parents=True, exist_ok=True)
    md = table(results, model)
    (out / "table.md").write_text(md, encoding="utf-8")
    plot(results, out / "eval.png", model)
    return md


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="GGUF file (default: the embedded default model)")
    p.add_argument("--backend", choices=("local", "hosted"), default="local")
    p.add_argument("--backend-factory", help="module:callable returning a Backend (hosted)")
    p.add_argument("--base-url", help="hosted endpoint")
    p.add_argument("--api-model", help="hosted model name")
    p.add_argument("--api-key-env", help="environment variable holding the API key")
    p.add_argument("--context-window", type=int, default=0, help="hosted context window, if needed")
    p.add_argument("--lengths", default="4k,8k,16k", type=lambda s: [parse_length(x) for x in s.split(",")])
    p.add_argument("--corpora", default="bible,code", type=lambda s: s.split(","))
    p.add_argument("--tasks", default=",".join(TASKS), type=lambda s: s.split(","))
    p.add_argument("--max-tokens", type=int, default=96, help="longest answer, in tokens")
    p.add_argument("--thinking", choices=[m.value for m in ThinkingMode], default="off")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench/out/eval"))
    p.add_argument(
        "--report", type=Path, nargs="+", help="only rebuild the table and plot from results.jsonl files"
    )
    p.add_argument(
        "--snapshots", type=Path, default=Path("bench/out/snapshots"), help="saved readings ('' for none)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if ns.report:
        print(report(ns.report, ns.out, ns.model.name if ns.model else "gemma-3-270m-q4_k_m.gguf"))
        return 0
    if ns.backend == "hosted":
        source: LocalSource | OpenedSource = OpenedSource(hosted_backend(ns))
    else:
        model = ns.model
        if model is None:
            import platformdirs

            from longdesk.engine.models.default_model import ensure_default_model

            model = ensure_default_model(
                Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "models"
            )
        snapshots = ns.snapshots if str(ns.snapshots) not in ("", ".") else None
        source = LocalSource(model, ns.threads, snapshots)
    t0 = time.perf_counter()
    ns.out.mkdir(parents=True, exist_ok=True)

    def write(results: list[Result]) -> str:
        with (ns.out / "results.jsonl").open("w", encoding="utf-8") as fh:
            for r in results:
                fh.write(json.dumps(asdict(r)) + "\n")
        md = table(results, source.name)
        md += f"\n{len(results)} questions in {time.perf_counter() - t0:.0f} s; plot: {ns.out / 'eval.png'}\n"
        (ns.out / "table.md").write_text(md, encoding="utf-8")
        if results:
            plot(results, ns.out / "eval.png", source.name)
        return md

    try:
        results = run(source, ns, log, write)
    finally:
        source.close()
    md = write(results)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
