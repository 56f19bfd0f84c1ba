"""Chat templates from GGUF files, rendered in a Jinja sandbox with size limits.

A GGUF's ``tokenizer.chat_template`` is untrusted code: it is rendered in Jinja's immutable
sandbox (no attribute access to internals, no mutation of our objects), with a cap on the
template's size and on the rendered output.

The prefix a backend prefills is the rendered conversation cut at a sentinel that stands for
the first question: everything before the sentinel (system text and corpus) is the same for
every question, so it is read once and reused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_TEMPLATE_CHARS = 64 * 1024
QUESTION_SENTINEL = "\u2063LONGDESK-QUESTION\u2063"


class TemplateError(Exception):
    """The chat template is missing, too large, unsafe or failed to render."""


@dataclass(frozen=True, slots=True)
class PromptParts:
    """A rendered conversation split at the first question.

    Attributes:
        prefix: the text up to the first question (system instructions + corpus).
        suffix: the text from the first question to the start of the model's answer.
    """

    prefix: str
    suffix: str


def _raise(message: str) -> None:
    raise TemplateError(f"the chat template refused the conversation: {message}")


def render(
    template: str,
    messages: Sequence[Mapping[str, str]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
    extra: Mapping[str, object] | None = None,
    max_output_chars: int = 64 * 1024 * 1024,
) -> str:
    """Render ``messages`` with ``template`` in the sandbox.

    Raises:
        TemplateError: the template is too large, unsafe, or fails to render.
    """
    import jinja2
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"chat template is {len(template):,} characters; the limit is {MAX_TEMPLATE_CHARS:,}"
        )
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise
    try:
        compiled = env.from_string(template)
        chunks: list[str] = []
        size = 0
        for chunk in compiled.generate(
            messages=[dict(m) for m in messages],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
            **dict(extra or {}),
        ):
            size += len(chunk)
            if size > max_output_chars:
                raise TemplateError("chat template output exceeds its size limit")
            chunks.append(chunk)
    except TemplateError:
        raise
    except SecurityError as exc:
        raise TemplateError(f"chat template tried an unsafe operation: {exc}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"chat template is invalid: {exc}") from exc
    except (RecursionError, MemoryError) as exc:
        raise TemplateError("chat template exhausted its resources") from exc
    return "".join(chunks)


def split_prompt(
    template: str,
    system_text: str,
    *,
    bos_token: str = "",
    eos_token: str = "",
    extra: Mapping[str, object] | None = None,
) -> PromptParts:
    """Render [system, user] and cut it at the question.

    Raises:
        TemplateError: the template does not place the question after the system text.
    """
    messages = [{"role": "system", "content": system_text}, {"role": "user", "content": QUESTION_SENTINEL}]
    text = render(template, messages, bos_token=bos_token, eos_token=eos_token, extra=extra)
    cut = text.find(QUESTION_SENTINEL)
    if cut < 0 or text.find(system_text) > cut or system_text not in text:
        raise TemplateError("chat template does not render the system text before the question")
    return PromptParts(prefix=text[:cut], suffix=text[cut:])


def question_suffix(parts: PromptParts, question: str) -> str:
    """The text to evaluate after the prefix for ``question``."""
    return parts.suffix.replace(QUESTION_SENTINEL, question, 1)
