"""Prompt formats per model kind: base models read, instruction models chat (issue: the base
Gemma 3 270M wrapped in chat turns repeated the instructions instead of answering)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from longdesk.engine.backends.base import AnswerDelta, AskOptions, BackendError, Event, Finished, ThinkingMode
from longdesk.engine.backends.local import LocalBackend, LocalSettings
from longdesk.engine.context.pack import pack
from longdesk.engine.corpus.load import load_sources
from longdesk.engine.models.gguf_header import GGUFHeader, read_header
from longdesk.engine.models.prompt_encoder import (
    JinjaPromptEncoder,
    PromptKind,
    ReadingPromptEncoder,
    detect_prompt_kind,
    prefix_text,
)
from tests.ggufs import with_string_metadata

LIGHTHOUSE = "The lighthouse keeper on Skerry Island is named Tobias Venn.\n"
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' "
    "else 'user' }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def _header(**metadata: object) -> GGUFHeader:
    return GGUFHeader("/models/x.gguf", 3, 0, {"general.architecture": "gemma3", **metadata}, {}, ())


@pytest.mark.parametrize(
    ("metadata", "kind"),
    [
        ({}, PromptKind.READING),
        ({"general.tags": ["gemma3", "gemma", "google", "text-generation"]}, PromptKind.READING),
        ({"tokenizer.chat_template": TEMPLATE}, PromptKind.CHAT),
        ({"general.finetune": "it"}, PromptKind.CHAT),
        ({"general.finetune": "Instruct"}, PromptKind.CHAT),
        ({"general.finetune": "base"}, PromptKind.READING),
        ({"general.tags": ["text-generation", "conversational"]}, PromptKind.CHAT),
        ({"general.name": "Gemma 3 270m It"}, PromptKind.CHAT),
        ({"general.name": "Qwen2.5 7B Instruct"}, PromptKind.CHAT),
        ({"general.name": "Gemma 3 270m"}, PromptKind.READING),
        ({"general.name": "Llama 3 8B Chat"}, PromptKind.CHAT),
        ({"general.name": "Bitter Instructions"}, PromptKind.READING),  # not a tuning word
    ],
)
def test_kind_is_read_from_what_the_gguf_says(metadata: dict[str, object], kind: PromptKind) -> None:
    got, why = detect_prompt_kind(_header(**metadata))
    assert got is kind, why
    assert why


def test_the_shipped_default_model_is_a_base_model(default_model: Path) -> None:
    kind, why = detect_prompt_kind(read_header(default_model))
    assert kind is PromptKind.READING
    assert "base model" in why


def test_reading_format_puts_the_corpus_first_and_a_short_frame_after(tmp_path: Path) -> None:
    (tmp_path / "keeper.txt").write_text(LIGHTHOUSE)
    plan = pack(load_sources([tmp_path]), len, 4096)
    encoder = ReadingPromptEncoder("<bos>")
    text = prefix_text(encoder, plan, encoder.thinking_modes[0])
    assert text.startswith("<bos>" + encoder.header)
    assert plan.instructions not in text  # no citing contract for a model that cannot follow it
    assert text.endswith(plan.corpus_text)
    turn = encoder.first_turn("  Who keeps\nthe lighthouse? ", encoder.thinking_modes[0])
    assert turn == "\nQuestion: Who keeps the lighthouse?\nAnswer:"
    assert encoder.policy().stops == ("\n", "Question:")
    assert encoder.policy().cap is not None
    assert encoder.policy().cap <= 64


@pytest.fixture(scope="module")
def instruct_model(default_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model's file with a chat template in its header: an instruction model's file."""
    dst = tmp_path_factory.mktemp("it") / "gemma-chat.gguf"
    return with_string_metadata(default_model, dst, "tokenizer.chat_template", TEMPLATE)


@pytest.mark.model
def test_base_and_instruction_fixtures_each_get_their_format(
    default_model: Path, instruct_model: Path, tmp_path: Path
) -> None:
    base_header, chat_header = read_header(default_model), read_header(instruct_model)
    assert chat_header.chat_template == TEMPLATE
    assert chat_header.tensors == base_header.tensors  # the same weights, only one key more
    assert chat_header.array_lengths == base_header.array_lengths
    assert {k: v for k, v in chat_header.metadata.items() if k != "tokenizer.chat_template"} == (
        base_header.metadata
    )
    settings = LocalSettings(n_ctx=1024, n_threads=2, checkpoint_interval_s=0)
    base = LocalBackend(default_model, settings)
    try:
        assert isinstance(base.encoder, ReadingPromptEncoder)
        assert any("Prompt format: reading" in n for n in base.describe().notes)
        (tmp_path / "keeper.txt").write_text(LIGHTHOUSE)
        plan = pack(load_sources([tmp_path]), base.count_tokens, 1024)
        base_key = base.snapshot_key(base.tokenize(prefix_text(base.encoder, plan, base._thinking)))
    finally:
        base.close()
    chat = LocalBackend(instruct_model, settings)
    try:
        assert isinstance(chat.encoder, JinjaPromptEncoder)
        assert chat.encoder.template == TEMPLATE
        assert any("Prompt format: chat" in n for n in chat.describe().notes)
        text = prefix_text(chat.encoder, plan, chat._thinking)
        assert plan.instructions in text  # the citing contract stays for instruction models
        assert text.startswith("<bos><start_of_turn>user\n")
    finally:
        chat.close()
    # The format is part of the snapshot key: a reading never restores into the other format.
    forced = LocalBackend(default_model, LocalSettings(n_ctx=1024, n_threads=2, prompt_format="chat"))
    try:
        assert isinstance(forced.encoder, JinjaPromptEncoder)
        key = forced.snapshot_key(forced.tokenize(prefix_text(forced.encoder, plan, forced._thinking)))
        assert key.template != base_key.template
        assert key.digest != base_key.digest
    finally:
        forced.close()


@pytest.mark.model
def test_an_unknown_format_setting_is_refused(default_model: Path) -> None:
    with pytest.raises(BackendError, match="unknown prompt format 'poem'"):
        LocalBackend(default_model, LocalSettings(n_ctx=512, prompt_format="poem"))


@pytest.mark.model
def test_the_base_model_answers_a_one_line_corpus_in_the_reading_format(
    default_model: Path, tmp_path: Path
) -> None:
    (tmp_path / "keeper.txt").write_text(LIGHTHOUSE)
    backend = LocalBackend(default_model, LocalSettings(n_ctx=1024, n_threads=2, checkpoint_interval_s=0))
    try:
        plan = pack(load_sources([tmp_path]), backend.count_tokens, 1024)
        reading = backend.read(plan, lambda _e: None, lambda: False)
        events: list[Event] = []
        result = backend.ask(
            reading, (), "Who keeps the lighthouse?", AskOptions(), events.append, lambda: False
        )
    finally:
        backend.close()
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert result == Finished("stop")
    assert "Tobias Venn" in answer
    assert "\n" not in answer  # the answer ends at the end of its line
    assert "Question" not in answer


@pytest.mark.model
def test_a_reading_format_answer_starts_on_its_line(default_model: Path, tmp_path: Path) -> None:
    """Asked about code, the base model's likeliest first token is a line break, after which it
    writes the next corpus line marker (``<L41>``), which the guard stops: an empty answer. The
    answer is the rest of the ``Answer:`` line, so that line break is refused."""
    source = Path(json.__file__).read_text(encoding="utf-8").split("\n")[:60]
    (tmp_path / "mod.py").write_text("\n".join(source) + "\n")
    backend = LocalBackend(default_model, LocalSettings(n_ctx=2048, n_threads=2, checkpoint_interval_s=0))
    question = "In which file and on which line is the function `dumps` defined?"
    try:
        plan = pack(load_sources([tmp_path]), backend.count_tokens, 2048)
        reading = backend.read(plan, lambda _e: None, lambda: False)
        logits = backend.probe_logits(backend.encoder.first_turn(question, ThinkingMode.OFF))
        first = backend._piece_bytes(int(np.argmax(logits))).decode("utf-8", "replace")
        assert "\n" in first, f"the case no longer arises: the first choice is {first!r}"
        events: list[Event] = []
        result = backend.ask(reading, (), question, AskOptions(), events.append, lambda: False)
    finally:
        backend.close()
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert result == Finished("stop"), answer
    assert answer.strip()
    assert "<L" not in answer
