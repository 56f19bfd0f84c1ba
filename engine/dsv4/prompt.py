"""DeepSeek-V4's conversation format as the local backend's PromptEncoder.

The texts come from ``engine.dsv4.encoding`` (the official non-think / think-high / think-max
rules). The local backend continues a follow-up in place from the live state; the model's
previous answer (its reasoning included) is then already in the context, where a fresh
rendering of the conversation would drop earlier reasoning. A new thread restores the corpus
snapshot and starts clean.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from longdesk.engine.dsv4 import encoding
from longdesk.engine.dsv4.vocab import EOS, THINK_CLOSE, THINK_OPEN
from longdesk.engine.events import ThinkingMode


@dataclass(frozen=True)
class V4PromptEncoder:
    """Prefix, first turn and follow-up texts of DeepSeek-V4 for each thinking mode."""

    variant: encoding.Variant = "v4"

    @property
    def thinking_modes(self) -> tuple[ThinkingMode, ...]:
        return (ThinkingMode.OFF, ThinkingMode.HIGH, ThinkingMode.MAX)

    @property
    def think_markers(self) -> tuple[str, str] | None:
        return (THINK_OPEN, THINK_CLOSE)

    def identity(self) -> str:
        return hashlib.sha256(f"dsv4-encoding\n{self.variant}".encode()).hexdigest()[:32]

    def prefix(self, system_text: str, thinking: ThinkingMode) -> str:
        return encoding.prefix_text(system_text, encoding.thinking_of(thinking.value), self.variant)

    def first_turn(self, question: str, thinking: ThinkingMode) -> str:
        return encoding.suffix_text([], question, encoding.thinking_of(thinking.value))

    def next_turn(self, question: str, thinking: ThinkingMode) -> str:
        # The previous answer ended with an end-of-sentence token that was generated but not
        # evaluated: close that turn, then open the next one.
        return EOS + encoding.suffix_text([], question, encoding.thinking_of(thinking.value))

    def starts_thinking(self, thinking: ThinkingMode) -> bool:
        return thinking is not ThinkingMode.OFF


def encoder_for(chat_template: str) -> V4PromptEncoder:
    """The encoder for a deepseek4 GGUF, by the release its embedded template belongs to."""
    return V4PromptEncoder(encoding.variant_of(chat_template))
