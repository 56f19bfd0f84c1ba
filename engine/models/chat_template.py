"""Chat templates from GGUF files, rendered in a Jinja sandbox with time and size limits.

A GGUF's ``tokenizer.chat_template`` is untrusted code (template injection is a known attack,
see the reliability notes). It is rendered in Jinja's immutable sandbox (no access to
internals, no mutation of our objects), with a cap on the template's size and on the rendered
output. ``render_isolated`` goes further: it renders in a separate Python process with a
wall-clock limit and an address-space limit, so a template that loops for ever or allocates
without bound costs that child process, never the app. Backends render only a handful of
short skeleton conversations per model (see ``engine.models.prompt_encoder``), so the ~0.1 s
start of the child is paid once per model and thinking mode.

The prefix a backend prefills is the rendered conversation cut at a sentinel that stands for
the first question: everything before the sentinel (system text and corpus) is the same for
every question, so it is read once and reused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_TEMPLATE_CHARS = 64 * 1024
RENDER_TIME_LIMIT_S = 5.0
RENDER_MEMORY_LIMIT = 512 * 1024 * 1024
ISOLATED_OUTPUT_LIMIT = 4 * 1024 * 1024


class TemplateError(Exception):
    """The chat template is missing, too large, unsafe or failed to render."""


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
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateError(f"chat template failed: {type(exc).__name__}: {exc}") from exc
    return "".join(chunks)


@dataclass(frozen=True, slots=True)
class RenderJob:
    """One conversation to render: messages, and extra template variables (e.g. thinking)."""

    messages: tuple[Mapping[str, str], ...]
    extra: Mapping[str, object]
    add_generation_prompt: bool = True


def render_isolated(
    template: str,
    jobs: Sequence[RenderJob],
    *,
    bos_token: str = "",
    eos_token: str = "",
    time_limit_s: float = RENDER_TIME_LIMIT_S,
    memory_limit: int = RENDER_MEMORY_LIMIT,
) -> list[str]:
    """Render ``jobs`` in a child process with a wall-clock and a memory limit.

    Returns:
        The rendered texts, one per job.

    Raises:
        TemplateError: the template is too large, unsafe, invalid, ran past ``time_limit_s``
            or exhausted ``memory_limit``; the message says which.
    """
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"chat template is {len(template):,} characters; the limit is {MAX_TEMPLATE_CHARS:,}"
        )
    request = {
        "template": template,
        "bos_token": bos_token,
        "eos_token": eos_token,
        "memory_limit": memory_limit,
        "jobs": [
            {
                "messages": [dict(m) for m in j.messages],
                "extra": dict(j.extra),
                "gen": j.add_generation_prompt,
            }
            for j in jobs
        ],
    }
    code = "from longdesk.engine.models.chat_template import _child_main; _child_main()"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(request).encode("utf-8"),
            capture_output=True,
            timeout=time_limit_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TemplateError(f"chat template did not finish rendering within {time_limit_s:g} s") from None
    except OSError as exc:
        raise TemplateError(f"could not start the template renderer: {exc}") from exc
    try:
        reply = json.loads(proc.stdout.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        reply = None
    if not isinstance(reply, dict):
        why = "it exhausted its memory limit" if proc.returncode != 0 else "it returned nothing"
        raise TemplateError(f"chat template rendering failed: {why}")
    if "error" in reply:
        raise TemplateError(str(reply["error"]))
    texts = reply.get("texts")
    if not isinstance(texts, list) or len(texts) != len(jobs) or not all(isinstance(t, str) for t in texts):
        raise TemplateError("chat template rendering failed: malformed reply")
    return texts


def _child_main() -> None:
    """Entry point of the render child: JSON request on stdin, JSON reply on stdout."""
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    try:
        import resource

        limit = int(request["memory_limit"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not POSIX, or the limit is already lower
        pass
    try:
        texts = [
            render(
                request["template"],
                job["messages"],
                bos_token=request["bos_token"],
                eos_token=request["eos_token"],
                add_generation_prompt=job["gen"],
                extra=job["extra"],
                max_output_chars=ISOLATED_OUTPUT_LIMIT,
            )
            for job in request["jobs"]
        ]
        reply: dict[str, object] = {"texts": texts}
    except TemplateError as exc:
        reply = {"error": str(exc)}
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()
