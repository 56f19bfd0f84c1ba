"""The V4 chat encoding follows the official rules and matches llama.cpp's V4 templates byte for byte."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import platformdirs
import pytest

from longdesk.engine.dsv4.encoding import (
    PastTurn,
    Thinking,
    ThinkingSplitter,
    Variant,
    effort_preamble,
    encode,
    prefix_text,
    suffix_text,
    variant_of,
)
from longdesk.engine.models.chat_template import render

B, E, U, A = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"
HISTORY = (
    PastTurn("What is on page 3?", "A map [p3].", "The user asks about page 3."),
    PastTurn("And 4?", "A table."),
)

TEMPLATE_FILES: dict[Variant, str] = {
    "v4": "deepseek-ai-DeepSeek-V4.jinja",
    "v4-0731": "deepseek-ai-DeepSeek-V4-Flash-0731.jinja",
}


@functools.cache
def _templates_dir() -> Path | None:
    """llama.cpp's ``models/templates`` from the llama-cpp-python 0.3.36 source.

    Looked for in ``LONGDESK_LLAMA_CPP_SRC``, then in the test cache, where the two V4 templates
    are extracted from the source distribution (``llama_build.sdist_path``: downloaded once into
    the cache the builds use). The templates are data read at test time, never
    committed.
    """
    env = os.environ.get("LONGDESK_LLAMA_CPP_SRC", "")
    if env and (Path(env) / "models/templates" / TEMPLATE_FILES["v4"]).is_file():
        return Path(env) / "models/templates"
    cache = Path(platformdirs.user_cache_dir("longdesk", appauthor=False)) / "test-data" / "v4-templates"
    if all((cache / name).is_file() for name in TEMPLATE_FILES.values()):
        return cache
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packaging"))
    import llama_build  # the one cached download of the sdist (standard-library module)

    try:
        sdist = llama_build.sdist_path(sys.executable)
    except (subprocess.CalledProcessError, SystemExit):
        return None
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tf:
        for member in tf.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if (
                member.isfile()
                and "/models/templates/" in member.name
                and name in TEMPLATE_FILES.values()
            ):
                data = tf.extractfile(member)
                if data is not None:
                    (cache / name).write_bytes(data.read())
    return cache if all((cache / name).is_file() for name in TEMPLATE_FILES.values()) else None


def test_non_think_first_question() -> None:
    text = encode("You read books.", (), "Who?", "off")
    assert text == f"{B}You read books.{U}Who?{A}</think>"


def test_think_high_opens_the_reasoning() -> None:
    assert encode("S", (), "Q", "high") == f"{B}S{U}Q{A}<think>"
    assert effort_preamble("high") == ""  # reasoning_effort="high" renders like none


def test_think_max_puts_its_preamble_right_after_bos() -> None:
    text = encode("S", (), "Q", "max")
    assert text.startswith(B + "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n")
    assert text.endswith(f"\n\nS{U}Q{A}<think>")
    assert prefix_text("S", "max") != prefix_text("S", "high")  # a different prefix to read


def test_multi_turn_drops_earlier_reasoning() -> None:
    text = suffix_text(HISTORY, "And 5?", "high")
    assert "The user asks" not in text
    assert text == (
        f"{U}What is on page 3?{A}</think>A map [p3].{E}{U}And 4?{A}</think>A table.{E}{U}And 5?{A}<think>"
    )


def test_variant_is_read_from_the_embedded_template() -> None:
    assert variant_of("{%- set reasoning_effort_high = 'x' -%}") == "v4-0731"
    assert variant_of("{{ bos_token }}") == "v4"
    assert effort_preamble("high", "v4-0731") == effort_preamble("max", "v4")
    assert effort_preamble("max", "v4-0731").startswith("Reasoning Effort: Beyond maximum")


@pytest.mark.parametrize("variant", ["v4", "v4-0731"])
@pytest.mark.parametrize("thinking", ["off", "high", "max"])
@pytest.mark.parametrize("turns", [0, 1, 2])
@pytest.mark.parametrize("system", ["", "You answer from the corpus.\n\n<doc>…</doc>"])
def test_matches_the_shipped_template_byte_for_byte(
    variant: Variant, thinking: Thinking, turns: int, system: str
) -> None:
    folder = _templates_dir()
    if folder is None:
        pytest.skip(
            "llama.cpp's models/templates not found (set LONGDESK_LLAMA_CPP_SRC to the vendored llama.cpp)"
        )
    template = (folder / TEMPLATE_FILES[variant]).read_text(encoding="utf-8")
    assert variant_of(template) == variant
    messages: list[dict[str, str]] = [{"role": "system", "content": system}]
    for t in HISTORY[:turns]:
        messages += [
            {"role": "user", "content": t.question},
            {"role": "assistant", "content": t.answer, "reasoning_content": t.thinking},
        ]
    messages.append({"role": "user", "content": "Where is the proof?"})
    extra: dict[str, object] = {"thinking": thinking != "off"}
    if thinking != "off":
        extra["reasoning_effort"] = thinking
    expected = render(template, messages, bos_token=B, eos_token=E, extra=extra)
    assert encode(system, HISTORY[:turns], "Where is the proof?", thinking, variant) == expected


@pytest.mark.parametrize("cuts", [[3], [1, 5, 9], list(range(1, 40))])
def test_thinking_streams_apart_from_the_answer(cuts: list[int]) -> None:
    text = "Let me check page 4.</think>It is on page 4 [p4]."
    pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True) if text[i:j]]
    splitter = ThinkingSplitter(thinking=True)
    out = [p for piece in pieces for p in splitter.feed(piece)] + splitter.flush()
    thinking = "".join(t for k, t in out if k == "thinking")
    answer = "".join(t for k, t in out if k == "answer")
    assert (thinking, answer) == ("Let me check page 4.", "It is on page 4 [p4].")
    kinds = [k for k, _ in out]
    assert kinds == sorted(kinds, key=lambda k: k == "answer")  # all reasoning before any answer


def test_unfinished_reasoning_stays_reasoning() -> None:
    splitter = ThinkingSplitter(thinking=True)
    out = splitter.feed("still thinking </thi") + splitter.flush()
    assert "".join(t for _, t in out) == "still thinking </thi"
    assert {k for k, _ in out} == {"thinking"}
    assert ThinkingSplitter(thinking=False).feed("</think>x") == [("answer", "</think>x")]
