"""`longdesk batch` pieces without a model: question files, the results log (torn records,
refused mixes), the reports, and a hosted batch priced, consented and answered through the
DeepSeek emulator (cache hits and cost per question, citations checked)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from longdesk.app.batch_questions import Question, QuestionFileError, read_questions
from longdesk.app.batch_report import ReportInput, csv_summary, markdown_report
from longdesk.app.batch_store import ANSWERED, FAILED, Outcome, ResultsLog, RunMismatch, answer_record
from longdesk.app.citations import doc_refs
from longdesk.engine.backends.base import ThinkingMode
from longdesk.engine.corpus.load import load_sources
from tests.app.test_cli import longdesk
from tests.hosted import deepseek_emulator

# ---------------------------------------------------------------------------- question files


def test_plain_text_questions_skip_blanks_and_comments(tmp_path: Path) -> None:
    f = tmp_path / "q.txt"
    f.write_text("# about the kitchen\nWhat colour is the kettle?\n\n  Is the oven working?  \n")
    qs = read_questions(f)
    assert [(q.qid, q.text) for q in qs] == [
        ("q1", "What colour is the kettle?"),
        ("q2", "Is the oven working?"),
    ]


def test_jsonl_questions_carry_ids_and_options(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text(
        '{"id": "kettle", "question": "What colour is the kettle?", "max_tokens": 32}\n'
        "\n"
        '{"question": "Why?", "thinking": "high"}\n'
    )
    qs = read_questions(f)
    assert qs == [
        Question("kettle", "What colour is the kettle?", 32, None),
        Question("q2", "Why?", 0, ThinkingMode.HIGH),
    ]
    assert (
        qs[0].key != Question("kettle", "What colour is the kettle?", 64).key
    )  # options are part of the work


def test_yaml_questions_as_a_list_or_under_questions(tmp_path: Path) -> None:
    f = tmp_path / "q.yaml"
    f.write_text(
        "questions:\n  - What colour is the kettle?\n  - id: oven\n    question: Is the oven working?\n"
    )
    assert [(q.qid, q.text) for q in read_questions(f)] == [
        ("q1", "What colour is the kettle?"),
        ("oven", "Is the oven working?"),
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("q.jsonl", '{"question": "a"}\n{"question": "b",\n', "q.jsonl, line 2: not JSON"),
        ("q.jsonl", '{"id": "x", "question": "a"}\n{"id": "x", "question": "b"}\n', "repeats the id 'x'"),
        ("q.jsonl", '{"question": "a", "temperature": 2}\n', "unknown field(s) temperature"),
        ("q.jsonl", '{"question": "a", "thinking": "very"}\n', "thinking must be one of off, high, max"),
        ("q.yaml", "questions: [a, b\n", "not valid YAML"),
        ("q.txt", "\n# only a comment\n", "no questions in it"),
    ],
)
def test_bad_question_files_name_the_problem(tmp_path: Path, name: str, text: str, message: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(QuestionFileError, match=re.escape(message)):
        read_questions(f)


# ---------------------------------------------------------------------------- results log


def _outcome(answer: str, status: str = ANSWERED) -> Outcome:
    return Outcome(status, "stop" if status == ANSWERED else "failed", answer, seconds=1.5, prompt_tokens=100,
                   cached_tokens=90, output_tokens=7)  # fmt: skip


def test_a_torn_last_record_is_cut_off_and_whole_ones_are_kept(tmp_path: Path) -> None:
    log = ResultsLog.open(tmp_path / "results.jsonl")
    log.append({"type": "answer", "model": "m", "qid": "q1", "qkey": "k1", "status": ANSWERED})
    with (tmp_path / "results.jsonl").open("ab") as fh:
        fh.write(b'{"type": "answer", "model": "m", "qid": "q2", "qk')  # killed in the middle of a write
    again = ResultsLog.open(tmp_path / "results.jsonl")
    assert again.repaired > 0
    assert again.done("m", {"q1": "k1", "q2": "k2"}) == {"q1"}
    again.append({"type": "answer", "model": "m", "qid": "q2", "qkey": "k2", "status": ANSWERED})
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["qid"] for line in lines] == ["q1", "q2"]


def test_done_needs_the_same_question_text_and_a_finished_answer(tmp_path: Path) -> None:
    log = ResultsLog.open(tmp_path / "r.jsonl")
    log.append({"type": "answer", "model": "m", "qid": "q1", "qkey": "old", "status": ANSWERED})
    log.append({"type": "answer", "model": "m", "qid": "q2", "qkey": "k2", "status": FAILED})
    log.append({"type": "answer", "model": "other", "qid": "q3", "qkey": "k3", "status": ANSWERED})
    assert log.done("m", {"q1": "new", "q2": "k2", "q3": "k3"}) == set()


def test_another_corpus_or_model_is_refused_unless_mixing_is_asked(tmp_path: Path) -> None:
    log = ResultsLog.open(tmp_path / "r.jsonl")
    docs = [{"name": "a.txt", "sha256": "1"}, {"name": "b.txt", "sha256": "2"}]
    log.check_corpus("fp1", docs, mix=False)
    log.check_model("m", {"model": "x.gguf:1", "max_tokens": 64}, {}, mix=False)
    changed = [{"name": "a.txt", "sha256": "9"}, {"name": "c.txt", "sha256": "3"}]
    with pytest.raises(RunMismatch, match=r"1 changed: a\.txt; 1 added: c\.txt; 1 removed: b\.txt"):
        ResultsLog.open(tmp_path / "r.jsonl").check_corpus("fp2", changed, mix=False)
    with pytest.raises(RunMismatch, match=r"max_tokens: 64 → 32"):
        ResultsLog.open(tmp_path / "r.jsonl").check_model(
            "m", {"model": "x.gguf:1", "max_tokens": 32}, {}, mix=False
        )
    mixed = ResultsLog.open(tmp_path / "r.jsonl")
    mixed.check_corpus("fp2", changed, mix=True)
    assert mixed.run_record() is not None
    assert mixed.run_record()["corpus"] == "fp2"  # type: ignore[index]


# ---------------------------------------------------------------------------- reports


@pytest.fixture
def kitchen(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "kitchen.txt").write_text("The kettle is blue.\nThe oven is broken.\n")
    corpus = load_sources([folder])
    return folder, corpus.documents[0].doc_id


def test_reports_resolve_citations_and_put_models_side_by_side(
    tmp_path: Path, kitchen: tuple[Path, str]
) -> None:
    folder, doc = kitchen
    corpus = load_sources([folder])
    refs = doc_refs(corpus)
    log = ResultsLog.open(tmp_path / "r.jsonl")
    log.check_corpus(
        "fp", [{"doc_id": doc, "name": "kitchen.txt", "kind": "text", "source": "/x"}], mix=False
    )
    qs = [Question("q1", "What colour is the kettle?"), Question("q2", "Is the oven working?")]
    good = f'The kettle is blue [{doc}, line 1] "The kettle is blue".'
    bad = f'It is red [{doc}, line 9] "red kettle".'
    for label, a1, a2 in (("small", good, "No idea.\n# <L1> is not a heading"), ("large", bad, "")):
        log.append(answer_record(label, "q1", qs[0].key, qs[0].text, _outcome(a1), "fp", corpus, refs))
        out2 = _outcome(a2, FAILED if not a2 else ANSWERED)
        log.append(answer_record(label, "q2", qs[1].key, qs[1].text, out2, "fp", corpus, refs))
    single = markdown_report(ReportInput("q.txt", qs, ["small"], log, "fp"))
    assert f"- ✓ `[{doc}, line 1]` notes/kitchen.txt, line 1" in single
    assert "> The kettle is blue" in single
    assert "| small | 2 | 0 | 1/1 (100%) |" in single
    assert "prompt 100 tokens (90 from the corpus state)" in single
    assert "> \\# &lt;L1&gt; is not a heading" in single  # the model's text, shown as it wrote it
    both = markdown_report(ReportInput("q.txt", qs, ["small", "large"], log, "fp"))
    assert "| | small | large |" in both
    assert f"✗ `[{doc}, line 9]`" in both
    assert f"notes/kitchen.txt, line 9 — line 9 does not exist in {doc} (2 lines)" in both
    assert "| large | 1 | 1 | 0/1 (0%) |" in both
    rows = list(
        csv.DictReader(io.StringIO(csv_summary(ReportInput("q.txt", qs, ["small", "large"], log, "fp"))))
    )
    assert [(r["question_id"], r["model"], r["status"], r["citations_verified"]) for r in rows] == [
        ("q1", "small", "answered", "1"),
        ("q1", "large", "answered", "0"),
        ("q2", "small", "answered", "0"),
        ("q2", "large", "failed", "0"),
    ]


# ---------------------------------------------------------------------------- hosted, emulated


@pytest.fixture
def emulator() -> Iterator[tuple[str, deepseek_emulator.Emulator]]:
    with deepseek_emulator.running() as (url, emu):
        yield url, emu


def test_hosted_batch_is_priced_before_anything_is_sent_then_reports_cost_and_cache_hits(
    emulator: tuple[str, deepseek_emulator.Emulator],
    longdesk_home: Path,
    kitchen: tuple[Path, str],
    tmp_path: Path,
) -> None:
    url, emu = emulator
    folder, doc = kitchen
    emu.answer_text = f'The kettle is blue [{doc}, line 1] "The kettle is blue".'
    questions = tmp_path / "q.txt"
    questions.write_text("What colour is the kettle?\nIs the oven working?\nWhat is in the kitchen?\n")
    out = tmp_path / "out"
    args = ["batch", str(folder), "--questions", str(questions), "-o", str(out),
            "--preset", "deepseek", "--base-url", url, "--max-tokens", "64", "--csv"]  # fmt: skip
    env = {"DEEPSEEK_API_KEY": emu.api_key}
    refused = _longdesk(*args, env=env)
    assert refused.returncode == 5, refused.stderr
    assert emu.requests == []
    assert "Questions: 3, each its own request" in refused.stderr
    assert "Expected cache hits: 3 of 3 requests reuse the" in refused.stderr  # the corpus is primed
    assert re.search(r"Estimated cost of the batch: at most \$0\.\d+", refused.stderr)
    assert "nothing was sent to 127.0.0.1" in refused.stderr

    ran = _longdesk(*args, "--yes", env=env)
    assert ran.returncode == 0, ran.stderr
    assert len(emu.requests) >= 3
    firsts = [r["messages"][1]["content"] for r in emu.requests if len(r["messages"]) > 1]
    assert len({m.split("Question: ")[0] for m in firsts}) == 1  # the corpus is byte-identical each time
    assert all(len(r["messages"]) == 2 for r in emu.requests)  # every question is its own thread
    assert len(emu.requests) == 4  # the priming request (the corpus alone), then one per question
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    answers = [r for r in records if r["type"] == "answer"]
    assert [a["qid"] for a in answers] == ["q1", "q2", "q3"]
    assert all(a["cost"] and a["cost"] > 0 for a in answers)
    assert all(a["cached_tokens"] > 0 for a in answers)  # every question hits the primed corpus
    report = (out / "report.md").read_text()
    assert f"✓ `[{doc}, line 1]` notes/kitchen.txt, line 1" in report
    assert re.search(r"cache hit [1-9][\d,]*, miss", report)
    assert re.search(r"cost \$0\.\d+", report)
    assert (out / "summary.csv").read_text().count("\n") == 4

    again = _longdesk(*args, "--yes", env=env)
    assert again.returncode == 0, again.stderr
    assert "3 already answered" in again.stderr
    assert "Questions: none left" not in again.stderr  # nothing to price: no consent asked
    assert len([r for r in emu.requests if len(r["messages"]) > 1]) == len(firsts)


def _longdesk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("longdesk")
    full = {**os.environ, **env}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=180, env=full,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip


def test_batch_without_questions_file_is_bad_input(longdesk_home: Path, kitchen: tuple[Path, str]) -> None:
    folder, _doc = kitchen
    r = longdesk("batch", str(folder), "--questions", str(folder / "missing.txt"))
    assert r.returncode == 2
    assert "missing.txt: no such question file" in r.stderr


def test_a_second_run_on_the_same_results_folder_is_refused(
    longdesk_home: Path, kitchen: tuple[Path, str], tmp_path: Path
) -> None:
    from longdesk.app.batch_store import exclusive

    folder, _doc = kitchen
    questions = tmp_path / "q.txt"
    questions.write_text("What colour is the kettle?\n")
    out = tmp_path / "out"
    with exclusive(out):  # as a run in progress holds it
        r = longdesk("batch", str(folder), "--questions", str(questions), "-o", str(out))
    assert r.returncode == 2
    assert f"another `longdesk batch` is writing to {out}" in r.stderr
    assert not (out / "results.jsonl").exists()


def test_a_question_the_endpoint_refuses_is_reported_and_asked_again_next_run(
    emulator: tuple[str, deepseek_emulator.Emulator],
    longdesk_home: Path,
    kitchen: tuple[Path, str],
    tmp_path: Path,
) -> None:
    url, emu = emulator
    folder, _doc = kitchen
    questions = tmp_path / "q.txt"
    questions.write_text("What colour is the kettle?\nIs the oven working?\nWhat is in the kitchen?\n")
    out = tmp_path / "out"
    args = ["batch", str(folder), "--questions", str(questions), "-o", str(out),
            "--preset", "deepseek", "--base-url", url, "--max-tokens", "32", "--yes"]  # fmt: skip
    env = {"DEEPSEEK_API_KEY": emu.api_key}
    emu.faults.extend(["", "", "400"])  # priming, q1, then q2 is refused as malformed
    first = _longdesk(*args, env=env)
    assert first.returncode == 2, first.stderr
    assert "1 question(s) could not be answered" in first.stderr
    report = (out / "report.md").read_text()
    assert "**failed**: 127.0.0.1" in report
    assert "refused the request as malformed (400)" in report
    assert "2 of 3 answered" in report
    second = _longdesk(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "2 already answered" in second.stderr
    assert "Questions: 1, each its own request" in second.stderr
    assert "3 of 3 answered" in (out / "report.md").read_text()


def test_a_located_place_is_marked_apart_and_not_counted_as_a_citation() -> None:
    from longdesk.app.batch_report import citation_line, figures

    located = {"check": "located", "text": "[D1, line 3]", "where": "a.py, line 3", "reason": "not cited"}
    verified = {"check": "verified", "text": "[D1, line 1]", "where": "a.py, line 1", "reason": "found"}
    failed = {"check": "failed", "text": "[D1, line 9]", "where": "a.py, line 9", "reason": "not there"}
    assert citation_line(located).startswith("→ ")
    assert citation_line(verified).startswith("✓ ")
    assert citation_line(failed).startswith("✗ ")
    answers = [
        {"status": ANSWERED, "citations": [located], "at": "1"},
        {"status": ANSWERED, "citations": [verified, failed], "at": "2"},
    ]
    f = figures("m", answers)
    assert (f.citations, f.verified, f.located) == (2, 1, 1)
    assert f.verified_rate == "1/2 (50%) (+1 located)"
    assert figures("m", answers[:1]).verified_rate == "no citations (+1 located)"
