"""Reports of a batch run, made from its results log: Markdown, and a CSV summary on request.

The Markdown report has a summary table (one row per model: answered, citations verified,
time per question, tokens, cost and cache hits), the sources, then every question with its
answer and its citations resolved to file and page/line, each marked ✓ (the place exists and
the quoted words are there), ✗ (with the reason) or → (located: not the model's citation, the
place where Longdesk found the answer's words). With two or more models the answers stand
side by side in one table per question. Nothing here judges an answer: it shows what each
model said and what the citation check found.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from longdesk.app.batch_questions import Question
from longdesk.app.batch_store import ANSWERED, ResultsLog
from longdesk.engine.backends.hosted_prices import format_money

VERIFIED = "verified"
LOCATED = "located"  # not the model's citation: Longdesk found the answer's words there


@dataclass(frozen=True, slots=True)
class ModelFigures:
    """One model's totals over the answers in the report."""

    label: str
    answered: int
    failed: int
    citations: int  # the model's own citations
    verified: int
    located: int  # answers Longdesk located in the sources (not counted as citations)
    seconds: tuple[float, ...]  # per answered question, in the order they were answered
    prompt_tokens: int
    cached_tokens: int
    output_tokens: int
    cost: float | None
    currency: str

    @property
    def verified_rate(self) -> str:
        located = f" (+{self.located} located)" if self.located else ""
        if not self.citations:
            return "no citations" + located
        return f"{self.verified}/{self.citations} ({100 * self.verified / self.citations:.0f}%){located}"

    @property
    def after_first(self) -> float | None:
        """Mean seconds per question after the first one answered."""
        rest = self.seconds[1:]
        return statistics.fmean(rest) if rest else None


def figures(label: str, answers: Sequence[Mapping[str, Any]]) -> ModelFigures:
    done = sorted((a for a in answers if a.get("status") == ANSWERED), key=lambda a: str(a.get("at", "")))
    every = [c for a in done for c in a.get("citations", [])]
    cites = [c for c in every if c.get("check") != LOCATED]
    costs = [float(a["cost"]) for a in done if a.get("cost") is not None]
    return ModelFigures(
        label=label,
        answered=len(done),
        failed=sum(1 for a in answers if a.get("status") != ANSWERED),
        citations=len(cites),
        verified=sum(1 for c in cites if c.get("check") == VERIFIED),
        located=len(every) - len(cites),
        seconds=tuple(float(a.get("seconds", 0.0)) for a in done),
        prompt_tokens=sum(int(a.get("prompt_tokens", 0)) for a in done),
        cached_tokens=sum(int(a.get("cached_tokens", 0)) for a in done),
        output_tokens=sum(int(a.get("output_tokens", 0)) for a in done),
        cost=sum(costs) if costs else None,
        currency=next((str(a.get("currency")) for a in done if a.get("currency")), ""),
    )


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} s"


def _html(text: str) -> str:
    """The model's text shown as written: its ``<``, ``>`` and ``&`` are not markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return (
        _html(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>").strip()
    )


def _quote_block(text: str) -> list[str]:
    lines = _html(text).strip().splitlines() or [""]
    # A line of the answer that starts with # is text the model wrote, not a heading of the report.
    out = []
    for line in lines:
        body = line.lstrip()
        indent = line[: len(line) - len(body)]
        escape = "\\" if body.startswith("#") else ""
        out.append(f"> {indent}{escape}{body}".rstrip())
    return out


def citation_line(c: Mapping[str, Any]) -> str:
    mark = {VERIFIED: "✓", LOCATED: "→"}.get(str(c.get("check")), "✗")
    return f"{mark} `{c.get('text', '')}` {c.get('where', '')} — {c.get('reason', '')}".rstrip(" —")


def turn_figures(a: Mapping[str, Any]) -> str:
    """``4.2 s · prompt 5,120 tokens (5,100 cached) · answer 37 tokens · stop`` (+ cost)."""
    parts = [f"{float(a.get('seconds', 0.0)):,.1f} s"]
    prompt, cached = int(a.get("prompt_tokens", 0)), int(a.get("cached_tokens", 0))
    if prompt:
        if a.get("where") == "hosted":
            parts.append(
                f"prompt {prompt:,} tokens (cache hit {cached:,}, miss {max(0, prompt - cached):,})"
                if a.get("usage_reported", True)
                else f"prompt {prompt:,} tokens (counted here: the server reports no cache figures)"
            )
        else:
            parts.append(f"prompt {prompt:,} tokens ({cached:,} from the corpus state)")
    parts.append(f"answer {int(a.get('output_tokens', 0)):,} tokens")
    if a.get("cost") is not None:
        parts.append(f"cost {format_money(float(a['cost']), str(a.get('currency') or 'USD'))}")
    status = str(a.get("status"))
    parts.append(
        f"stop: {a.get('stop_reason')}" if status == ANSWERED else f"**{status}**: {a.get('error', '')}"
    )
    return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What a report is made of."""

    title: str
    questions: Sequence[Question]
    labels: Sequence[str]  # the models, in the order they were run
    log: ResultsLog
    corpus: str  # the current corpus fingerprint: answers about another one are marked


def _answers_by(inp: ReportInput) -> dict[tuple[str, str], dict[str, Any]]:
    return inp.log.latest_answers()


def markdown_report(inp: ReportInput) -> str:
    """The whole report as Markdown (single model, or side by side for a comparison)."""
    answers = _answers_by(inp)
    run = inp.log.run_record() or {}
    docs = run.get("documents", [])
    out = [f"# Longdesk batch: {inp.title}", ""]
    done = sum(1 for k, a in answers.items() if a.get("status") == ANSWERED and k[0] in inp.labels)
    total = len(inp.questions) * len(inp.labels)
    out.append(
        f"*{len(inp.questions)} question(s) × {len(inp.labels)} model(s): {done} of {total} answered · "
        f"{len(docs)} document(s), corpus {inp.corpus} · each question is its own thread from the "
        "read corpus*"
    )
    out += ["", "## Summary", ""]
    out += _summary_table(inp, answers)
    out += ["", "## Models", ""]
    for label in inp.labels:
        out.append(f"- **{label}**: {_model_line(inp.log, label)}")
    out += ["", "## Sources", ""]
    for d in docs:
        out.append(f"- **{d.get('doc_id')}** {d.get('name')} ({d.get('kind')}) — `{d.get('source')}`")
    out += ["", "## Answers", ""]
    for q in inp.questions:
        out += _question_section(inp, q, answers)
    return "\n".join(out).rstrip() + "\n"


def _summary_table(inp: ReportInput, answers: Mapping[tuple[str, str], dict[str, Any]]) -> list[str]:
    rows = [
        "| model | answered | failed | citations verified | time per question | after the first | "
        "prompt tokens (cached) | answer tokens | cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in inp.labels:
        f = figures(label, [a for (m, _q), a in answers.items() if m == label])
        mean = statistics.fmean(f.seconds) if f.seconds else None
        cost = format_money(f.cost, f.currency or "USD") if f.cost is not None else "–"
        rows.append(
            f"| {_cell(label)} | {f.answered} | {f.failed} | {f.verified_rate} | {_secs(mean)} | "
            f"{_secs(f.after_first)} | {f.prompt_tokens:,} ({f.cached_tokens:,}) | "
            f"{f.output_tokens:,} | {cost} |"
        )
    return rows


def _model_line(log: ResultsLog, label: str) -> str:
    model = log.model_record(label) or {}
    info = model.get("info", {})
    ident = model.get("identity", {})
    where = info.get("where", "")
    readings = [r for r in log.of_type("reading") if r.get("label") == label]
    name = readings[-1].get("model_name") if readings else None
    bits = [f"{name or info.get('name', '?')} ({where}"]
    if info.get("endpoint"):
        bits[0] += f", {info['endpoint']}"
    bits[0] += ")"
    if ident.get("thinking"):
        bits.append(f"thinking {ident['thinking']}")
    if ident.get("max_tokens"):
        bits.append(f"answers up to {ident['max_tokens']} tokens")
    if readings:
        r = readings[-1]
        how = "restored from a snapshot" if r.get("restored") else "read"
        if where == "hosted":
            bits.append(f"corpus {int(r.get('prefix_tokens', 0)):,} tokens, sent first in every request")
            return "; ".join(bits)
        bits.append(
            f"corpus {int(r.get('prefix_tokens', 0)):,} tokens, {how} in {float(r.get('seconds', 0)):.1f} s"
        )
    return "; ".join(bits)


def _stale(inp: ReportInput, a: Mapping[str, Any]) -> str:
    return (
        "" if a.get("corpus") == inp.corpus else f" *(answered about an earlier corpus, {a.get('corpus')})*"
    )


def _question_section(
    inp: ReportInput, q: Question, answers: Mapping[tuple[str, str], dict[str, Any]]
) -> list[str]:
    out = [f"### {q.qid}. {q.text}", ""]
    if len(inp.labels) == 1:
        a = answers.get((inp.labels[0], q.qid))
        if a is None:
            return [*out, "*(not answered yet)*", ""]
        out += _quote_block(str(a.get("answer", ""))) if a.get("answer") else ["*(no answer)*"]
        out.append("")
        cites = a.get("citations", [])
        if cites:
            out += [f"- {citation_line(c)}" for c in cites]
        else:
            out.append("- no citations")
        out += ["", f"*{turn_figures(a)}*{_stale(inp, a)}", ""]
        return out
    out.append("| | " + " | ".join(_cell(label) for label in inp.labels) + " |")
    out.append("|---|" + "---|" * len(inp.labels))
    cells: dict[str, list[str]] = {"answer": [], "citations": [], "figures": []}
    for label in inp.labels:
        a = answers.get((label, q.qid))
        if a is None:
            cells["answer"].append("*(not answered yet)*")
            cells["citations"].append("")
            cells["figures"].append("")
            continue
        cells["answer"].append(_cell(str(a.get("answer", ""))) or "*(no answer)*")
        cites = a.get("citations", [])
        cells["citations"].append(
            "<br>".join(_cell(citation_line(c)) for c in cites) if cites else "no citations"
        )
        cells["figures"].append(_cell(turn_figures(a) + _stale(inp, a)))
    for name, row in cells.items():
        out.append(f"| **{name}** | " + " | ".join(row) + " |")
    return [*out, ""]


CSV_FIELDS = (
    "question_id", "question", "model", "status", "stop_reason", "seconds", "prompt_tokens",
    "cached_tokens", "output_tokens", "cost", "currency", "citations", "citations_verified", "answer",
)  # fmt: skip


def csv_summary(inp: ReportInput) -> str:
    """One row per question and model: figures, citation counts and the answer."""
    answers = _answers_by(inp)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for q in inp.questions:
        for label in inp.labels:
            a = answers.get((label, q.qid))
            if a is None:
                writer.writerow([q.qid, q.text, label, "pending", *[""] * (len(CSV_FIELDS) - 4)])
                continue
            cites = a.get("citations", [])
            writer.writerow([
                q.qid, q.text, label, a.get("status"), a.get("stop_reason", ""),
                f"{float(a.get('seconds', 0.0)):.2f}", a.get("prompt_tokens", 0), a.get("cached_tokens", 0),
                a.get("output_tokens", 0), "" if a.get("cost") is None else f"{float(a['cost']):.6f}",
                a.get("currency", ""), len(cites), sum(1 for c in cites if c.get("check") == VERIFIED),
                a.get("answer", ""),
            ])  # fmt: skip
    return buf.getvalue()
