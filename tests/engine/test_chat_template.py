"""Chat templates: hostile templates are stopped, the conversation texts are cut right."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from longdesk.engine.backends.base import AnswerDelta, ThinkingDelta, ThinkingMode
from longdesk.engine.models.chat_template import RenderJob, TemplateError, render_isolated
from longdesk.engine.models.prompt_encoder import JinjaPromptEncoder, ThinkingSplitter

MESSAGES = ({"role": "system", "content": "S"}, {"role": "user", "content": "Q"})


def gemma_template() -> str:
    template = resources.files("longdesk.assets").joinpath("chat_templates/gemma.jinja")
    return template.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "payload",
    [
        "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
        "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
        "{{ joiner.__init__.__globals__.__builtins__.open('MARKER', 'w').write('x') }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages|attr('__class__')|attr('__mro__') }}",
        "{{ '{0.__class__.__init__.__globals__}'.format(messages) }}",
        "{% set x = messages.append({'role': 'user', 'content': 'injected'}) %}{{ messages }}",
        "{{ namespace.__init__.__globals__ }}",
    ],
)
def test_sandbox_escapes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: str) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        text = render_isolated(payload, [RenderJob(MESSAGES, {})])
    except TemplateError as exc:
        text = str(exc)
        assert any(word in text for word in ("unsafe", "invalid", "failed"))
    assert "<module 'os'" not in text
    assert "<class 'object'>" not in text
    assert "injected" not in text
    assert not (tmp_path / "MARKER").exists()


def test_a_template_that_loops_for_ever_is_stopped_in_time() -> None:
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x"
    import psutil

    def alive() -> set[int]:
        return {
            c.pid for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE
        }

    before = alive()  # children of earlier tests (parser pools, servers) are not this test's
    with pytest.raises(TemplateError, match="did not finish rendering within 1 s"):
        render_isolated(loop, [RenderJob(MESSAGES, {})], time_limit_s=1.0)
    # The looping renderer was stopped, not left running behind the error.
    assert alive() - before == set()


@pytest.mark.parametrize(
    "bomb",
    [
        "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",  # huge output
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
        "{{ ns.s|length }}",
    ],
)
def test_templates_that_exhaust_memory_or_output_are_stopped(bomb: str) -> None:
    with pytest.raises(TemplateError):
        render_isolated(bomb, [RenderJob(MESSAGES, {})], time_limit_s=10.0, memory_limit=256 << 20)


def test_oversized_template_is_refused_before_rendering() -> None:
    with pytest.raises(TemplateError, match="characters; the limit"):
        render_isolated("x" * 70_000, [RenderJob(MESSAGES, {})])


def test_gemma_conversation_texts() -> None:
    enc = JinjaPromptEncoder(gemma_template(), bos_token="<bos>")
    assert enc.thinking_modes == (ThinkingMode.OFF,)
    assert enc.prefix("CORPUS", ThinkingMode.OFF) == "<bos><start_of_turn>user\nCORPUS\n\n"
    assert enc.first_turn("Why?", ThinkingMode.OFF) == "Why?<end_of_turn>\n<start_of_turn>model\n"
    # A follow-up continues after the model's answer (its end-of-turn token was not evaluated).
    assert (
        enc.next_turn("And?", ThinkingMode.OFF)
        == "<end_of_turn>\n<start_of_turn>user\nAnd?<end_of_turn>\n<start_of_turn>model\n"
    )


THINKING_TEMPLATE = (
    "{{ bos_token }}{% if reasoning_effort == 'max' %}Reasoning Effort: max\n{% endif %}"
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}<|end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% if enable_thinking %}<think>{% else %}</think>{% endif %}"
    "{% endif %}"
)


def test_thinking_modes_from_a_template_that_supports_them() -> None:
    enc = JinjaPromptEncoder(THINKING_TEMPLATE)
    assert enc.thinking_modes == (ThinkingMode.OFF, ThinkingMode.HIGH, ThinkingMode.MAX)
    assert enc.think_markers == ("<think>", "</think>")
    assert enc.starts_thinking(ThinkingMode.HIGH)
    assert not enc.starts_thinking(ThinkingMode.OFF)
    assert enc.first_turn("Q", ThinkingMode.HIGH).endswith("<|assistant|><think>")
    # The effort preamble sits before the corpus: the prefix differs per mode.
    assert enc.prefix("C", ThinkingMode.MAX).startswith("Reasoning Effort: max")
    assert enc.prefix("C", ThinkingMode.HIGH) == "<|system|>C<|user|>"


def test_a_template_that_drops_the_system_text_is_refused() -> None:
    enc = JinjaPromptEncoder("{% for m in messages if m['role'] == 'user' %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(TemplateError, match="drops a message"):
        enc.prefix("C", ThinkingMode.OFF)


def test_thinking_is_streamed_apart_from_the_answer_even_when_markers_are_split() -> None:
    splitter = ThinkingSplitter(("<think>", "</think>"), thinking=True)
    events = []
    for piece in ["Let me ", "see.</th", "ink>\n", "The answer", " is 4.<", "3"]:
        events += splitter.feed(piece)
    events += splitter.flush()
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert thinking == "Let me see."
    assert answer == "The answer is 4.<3"
