"""The local backend: a GGUF model run in-process by llama.cpp through llama-cpp-python.

One thread owns an instance (llama.cpp contexts are not thread-safe). The prefix (system
instructions + packed corpus, wrapped by the model's chat template) is prefilled in chunks with
progress and cancel between chunks. Its sequence state is then kept, so every question starts
from exactly the state after the prefix: a new question restores it instead of re-reading.
(Truncating the KV cache to an earlier position does not work for sliding-window and
DeepSeek-V4 caches, so restore is the only reuse.)

Load settings follow the measurements in the reference notes: flash attention on (1.5x prefill
at 8K), full-size SWA cache off (3.7x smaller state, and restored state matches live state
bit for bit), batch = ubatch = 512, threads = physical cores.
"""

from __future__ import annotations

import codecs
import ctypes
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from engine.backends.base import (
    AnswerDelta,
    AskOptions,
    BackendError,
    BackendInfo,
    CancelCheck,
    EventSink,
    Failed,
    FailureKind,
    Finished,
    Progress,
    Reading,
    ThinkingMode,
    Turn,
    Usage,
)
from engine.context.plan import ContextPlan
from engine.models.chat_template import PromptParts, TemplateError, question_suffix, render, split_prompt
from engine.models.gguf_header import GGUFError, GGUFHeader, check_shards, read_header
from engine.models.registry import check_supported

# Used when a GGUF carries no chat template: a plain, role-labelled layout.
FALLBACK_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}Question: {{ m['content'] }}\n"
    "{% else %}Answer: {{ m['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Answer:{% endif %}"
)


# Turn formats for architectures whose GGUFs often ship without a template.
_BUILTIN_TEMPLATES = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma"}


def chat_template_for(header: GGUFHeader) -> str:
    """The GGUF's own template, else a built-in one for its architecture, else the fallback."""
    if header.chat_template:
        return header.chat_template
    name = _BUILTIN_TEMPLATES.get(header.architecture)
    if name:
        from importlib import resources

        return resources.files("assets").joinpath(f"chat_templates/{name}.jinja").read_text(encoding="utf-8")
    return FALLBACK_TEMPLATE


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """Load settings that change speed, memory and (some of them) the saved state."""

    n_ctx: int = 4096
    n_batch: int = 512
    n_ubatch: int = 512
    n_threads: int = 0  # 0: physical cores
    n_gpu_layers: int = 0  # -1: all layers, where built with an accelerator
    flash_attn: bool = True
    swa_full: bool = False

    def threads(self) -> int:
        return self.n_threads or physical_cores()


def inspect_model(path: Path) -> GGUFHeader:
    """Read and check a model file before anything is loaded.

    Raises:
        BackendError: missing file, not a GGUF, truncated, missing shard, unknown architecture.
    """
    if not path.exists():
        raise BackendError(FailureKind.BAD_INPUT, f"no such model file: {path}")
    if not path.is_file():
        raise BackendError(FailureKind.BAD_INPUT, f"not a model file: {path}")
    try:
        header = read_header(path)
    except GGUFError as exc:
        raise BackendError(FailureKind.BAD_INPUT, str(exc)) from exc
    except OSError as exc:
        raise BackendError(FailureKind.BAD_INPUT, f"cannot read {path}: {exc.strerror or exc}") from exc
    problems = list(check_shards(path))
    if problems:
        raise BackendError(FailureKind.BAD_INPUT, f"{path.name}: " + "; ".join(problems))
    reason = check_supported(header)
    if reason:
        raise BackendError(FailureKind.BAD_INPUT, reason)
    return header


class Tokenizer:
    """A model's own tokenizer, loaded without its weights (vocab only)."""

    def __init__(self, path: Path) -> None:
        from llama_cpp import Llama

        from engine.backends import llama_log

        self.header = inspect_model(path)
        llama_log.install()
        try:
            with llama_log.captured_stderr():
                self._llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(
                FailureKind.MODEL, f"llama.cpp could not read the vocabulary of {path.name}: {exc}"
            ) from exc

    def tokenize(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count(self, text: str) -> int:
        return len(self.tokenize(text))

    def close(self) -> None:
        self._llm.close()


class LocalBackend:
    """A loaded GGUF model that holds one prefix and answers questions about it."""

    def __init__(self, path: Path, settings: LocalSettings | None = None) -> None:
        from llama_cpp import Llama

        from engine.backends import llama_log

        self.path = path
        self.header = inspect_model(path)
        llama_log.install()
        wanted = settings or LocalSettings()
        trained = self.header.context_length or wanted.n_ctx
        self.settings = LocalSettings(**{**_asdict(wanted), "n_ctx": min(wanted.n_ctx, trained)})
        s = self.settings
        capture = llama_log.captured_stderr()
        try:
            with capture:
                self._llm = Llama(
                    model_path=str(path),
                    n_ctx=s.n_ctx,
                    n_batch=s.n_batch,
                    n_ubatch=s.n_ubatch,
                    n_threads=s.threads(),
                    n_threads_batch=s.threads(),
                    n_gpu_layers=s.n_gpu_layers,
                    flash_attn=s.flash_attn,
                    swa_full=s.swa_full,
                    logits_all=False,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            why = [x for x in capture.text.splitlines() if "error" in x.lower() or "failed" in x.lower()]
            detail = f" ({why[-1].strip()})" if why else ""
            raise BackendError(
                FailureKind.MODEL, f"llama.cpp could not load {path.name}: {exc}{detail}"
            ) from exc
        import llama_cpp

        self._lib: Any = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._template = chat_template_for(self.header)
        self._parts: PromptParts | None = None
        self._prefix_state: bytes | None = None
        self._prefix_len = 0

    # ------------------------------------------------------------------ Backend
    def describe(self) -> BackendInfo:
        notes: tuple[str, ...] = ()
        if self.path.name == "gemma-3-270m-q4_k_m.gguf":
            from engine.models.default_model import DEFAULT_MODEL_LIMITS

            notes = (DEFAULT_MODEL_LIMITS,)
        return BackendInfo(
            name=self.header.name,
            where="local",
            context_window=self.settings.n_ctx,
            thinking_modes=(ThinkingMode.OFF,),
            architecture=self.header.architecture,
            notes=notes,
        )

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def prompt_parts(self, system_text: str) -> PromptParts:
        bos = self._piece(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        eos = self._piece(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""
        try:
            return split_prompt(self._template, system_text, bos_token=bos, eos_token=eos)
        except TemplateError:
            if self._template == FALLBACK_TEMPLATE:
                raise
            return split_prompt(FALLBACK_TEMPLATE, system_text, bos_token=bos, eos_token=eos)

    def read(self, plan: ContextPlan, on_event: EventSink, cancelled: CancelCheck) -> Reading:
        """Prefill the prefix in chunks; keep its state for every later question.

        Raises:
            BackendError: the prefix does not fit the context, or was cancelled.
        """
        t0 = time.perf_counter()
        try:
            parts = self.prompt_parts(plan.system_text)
        except TemplateError as exc:
            raise BackendError(FailureKind.MODEL, str(exc)) from exc
        tokens = self.tokenize(parts.prefix, special=True)
        if len(tokens) >= self.settings.n_ctx:
            raise BackendError(
                FailureKind.CONTEXT,
                f"the corpus needs {len(tokens):,} tokens; the loaded context holds {self.settings.n_ctx:,}",
            )
        self._llm.reset()  # type: ignore[no-untyped-call]
        self._prefill(tokens, on_event, cancelled, stage="prefill")
        self._parts = parts
        self._prefix_len = len(tokens)
        self._prefix_state = self._save_seq()
        return Reading(prefix_tokens=len(tokens), restored=False, seconds=time.perf_counter() - t0)

    def ask(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed:
        if self._parts is None or self._prefix_state is None:
            return Failed(FailureKind.INTERNAL, "ask() before read(): the corpus has not been read")
        if reading.prefix_tokens != self._prefix_len:
            return Failed(FailureKind.INTERNAL, "this reading belongs to another corpus; read it again")
        try:
            suffix = self._conversation_suffix(history, question)
        except TemplateError as exc:
            return Failed(FailureKind.MODEL, str(exc))
        suffix_tokens = self.tokenize(suffix, special=True)
        room = self.settings.n_ctx - self._prefix_len - len(suffix_tokens)
        if room < 1:
            return Failed(
                FailureKind.CONTEXT,
                f"the conversation no longer fits the context ({-room + 1:,} tokens over)",
            )
        self._restore_prefix()
        try:
            self._prefill(suffix_tokens, on_event, cancelled, stage="question")
        except BackendError as exc:
            return Failed(exc.kind, exc.message)
        produced = 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        rng = np.random.default_rng(options.seed)
        limit = min(options.max_output_tokens, room)
        stop = "length"
        t_first = time.perf_counter()
        while produced < limit:
            if cancelled():
                stop = "cancelled"
                break
            token = self._next_token(options.temperature, rng)
            if self._lib.llama_vocab_is_eog(self._vocab, token):
                stop = "stop"
                break
            produced += 1
            text = decoder.decode(self._llm.detokenize([token]))
            if text:
                on_event(AnswerDelta(text))
            self._llm.eval([token])
        tail = decoder.decode(b"", final=True)
        if tail:
            on_event(AnswerDelta(tail))
        on_event(
            Usage(
                prompt_tokens=self._prefix_len + len(suffix_tokens),
                cached_tokens=self._prefix_len,
                output_tokens=produced,
                seconds=max(time.perf_counter() - t_first, 1e-9),
            )
        )
        return Finished(stop)

    def close(self) -> None:
        self._llm.close()

    # ------------------------------------------------------------------ internals
    def _piece(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def _conversation_suffix(self, history: Sequence[Turn], question: str) -> str:
        """Text after the prefix for ``question`` with ``history`` before it.

        The whole conversation is rendered with a stand-in system text; what follows the
        stand-in, less the glue that the prefix already ends with, is the suffix.
        """
        assert self._parts is not None
        if not history:
            return question_suffix(self._parts, question)
        marker = "\u2063LONGDESK-SYSTEM\u2063"
        bos = self._piece(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        glue_parts = split_prompt(self._template, marker, bos_token=bos)
        glue = glue_parts.prefix[glue_parts.prefix.index(marker) + len(marker) :]
        messages = [{"role": "system", "content": marker}]
        for turn in history:
            messages += [
                {"role": "user", "content": turn.question},
                {"role": "assistant", "content": turn.answer},
            ]
        messages.append({"role": "user", "content": question})
        full = render(self._template, messages, bos_token=bos)
        after = full[full.index(marker) + len(marker) :] if marker in full else ""
        if not after.startswith(glue):
            raise TemplateError("chat template renders the system text differently once there is history")
        return after[len(glue) :]

    def _prefill(
        self, tokens: Sequence[int], on_event: EventSink, cancelled: CancelCheck, *, stage: str
    ) -> None:
        total = len(tokens)
        step = self.settings.n_batch
        t0 = time.perf_counter()
        for done in range(0, total, step):
            if cancelled():
                raise BackendError(FailureKind.CANCELLED, f"cancelled after {done:,} of {total:,} tokens")
            chunk = list(tokens[done : done + step])
            try:
                self._llm.eval(chunk)
            except RuntimeError as exc:
                raise BackendError(FailureKind.MODEL, f"llama.cpp failed while reading: {exc}") from exc
            finished = done + len(chunk)
            elapsed = time.perf_counter() - t0
            rate = finished / elapsed if elapsed > 0 else 0.0
            eta = (total - finished) / rate if rate > 0 else None
            on_event(Progress(stage, finished, total, rate, eta))

    def _next_token(self, temperature: float, rng: np.random.Generator) -> int:
        ptr = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),))
        if temperature <= 0:
            return int(np.argmax(logits))
        scaled = (logits - logits.max()) / temperature
        probs = np.exp(scaled)
        probs /= probs.sum()
        return int(rng.choice(len(probs), p=probs))

    def last_logits(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        """A copy of the logits after the last evaluated token (for tests and checks)."""
        ptr = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),)).copy()

    def _save_seq(self) -> bytes:
        lib = self._lib
        size = lib.llama_state_seq_get_size(self._llm.ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        written = lib.llama_state_seq_get_data(self._llm.ctx, buf, size, 0)
        # string_at copies in C; bytes(buf[:n]) built a list of ints while holding the GIL.
        return ctypes.string_at(buf, written)

    def _restore_prefix(self) -> None:
        assert self._prefix_state is not None
        if self._llm.n_tokens == self._prefix_len:
            return
        lib = self._lib
        mem = lib.llama_get_memory(self._llm.ctx)
        lib.llama_memory_clear(mem, True)
        data = self._prefix_state
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if lib.llama_state_seq_set_data(self._llm.ctx, buf, len(data), 0) == 0:
            raise BackendError(FailureKind.MODEL, "could not restore the corpus state")
        self._llm.n_tokens = self._prefix_len


def _asdict(settings: LocalSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__slots__}
