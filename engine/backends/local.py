"""The local backend: a GGUF model run in-process by llama.cpp through llama-cpp-python.

One thread owns an instance (llama.cpp contexts are not thread-safe); cancel is a flag
checked between prefill chunks and between tokens.

Read once, ask forever:
- ``read`` renders the prefix (system instructions + packed corpus) with the model's prompt
  format, and restores its saved state from the snapshot folder when one exists. Otherwise it
  prefills in chunks with progress (tokens/s, ETA), checkpoints the state every few minutes
  (a cancel, crash or power loss resumes from the last checkpoint), and saves the finished
  state as a snapshot (``engine.snapshots``).
- ``ask`` with no history starts a new thread: it restores the prefix state, evaluates the
  question and streams the answer. A follow-up (history = the turns this backend just
  answered) continues from the live state: only the new question is evaluated, never the
  conversation again. Memory is never truncated to an earlier position (DeepSeek-V4's cannot
  be), so going back means restoring the snapshot.

Load settings: flash attention on (1.5x prefill at 8K); equal K and V cache types
(DeepSeek-V4 requires it); threads = physical cores; every layer on the accelerator where
llama.cpp was built with one, with a large batch and ubatch there (on a CPU the batch stays at
512 tokens so that cancel lands within a couple of seconds).

The full-size sliding-window cache is chosen per architecture (``full_swa_cache``), against
the first plan of always reducing it. Measured on the default model (Gemma 3, window 512) with
the sequence-state API and 512-token chunks: with the full-size cache a chunked prefill gives
exactly the logits of a single-pass one, and a state restored from disk gives exactly the live
state's logits, at every length tried; with the reduced cache the chunked prefill already differs
from the single pass once the window cache wraps (max |dlogit| 1.1 at 1.3K tokens) and a
restored state differs from the live one (1.2-1.4 at 1.3K-1.7K tokens, with either state API).
So Gemma-style models keep the full-size cache (3.7x larger). DeepSeek-V4's raw-window cache
restores bit for bit when reduced, and at 1M tokens the full-size one would cost 43 GiB, so it
is reduced there. States are saved and restored with the sequence-state API, the one that is
exact in both cases.
"""

from __future__ import annotations

import codecs
import ctypes
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longdesk.engine.backends.base import (
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
    Stage,
    StopReason,
    ThinkingDelta,
    ThinkingMode,
    Turn,
    Usage,
    Where,
)
from longdesk.engine.backends.local_load import (
    FALLBACK_TEMPLATE,
    KV_TYPES,
    LocalSettings,
    Tokenizer,
    chat_template_for,
    inspect_model,
    physical_cores,
    resolve_settings,
    tensor_overrides,
)
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.events import RateMeter
from longdesk.engine.models.answer_guard import AnswerGuard, GuardStop
from longdesk.engine.models.chat_template import TemplateError
from longdesk.engine.models.gguf_header import GGUFHeader, shard_paths
from longdesk.engine.models.memory import Placement, plan_placement
from longdesk.engine.models.prompt_encoder import (
    JinjaPromptEncoder,
    PromptEncoder,
    PromptKind,
    ReadingPromptEncoder,
    ThinkingSplitter,
    detect_prompt_kind,
    instructions_of,
    kind_of,
    policy_of,
    prefix_text,
)
from longdesk.engine.models.sampling import choose_token
from longdesk.engine.snapshots.identity import build_identity, model_identity
from longdesk.engine.snapshots.store import SnapshotError, SnapshotKey, SnapshotStore


@dataclass
class _Live:
    """What the context holds beyond the prefix: the turns answered in place."""

    questions: list[str]
    clean: bool = True  # False after a failed or cancelled evaluation


class LocalBackend:
    """A loaded GGUF model that holds one prefix and answers questions about it."""

    def __init__(
        self,
        path: Path,
        settings: LocalSettings | None = None,
        *,
        encoder: PromptEncoder | None = None,
    ) -> None:
        """Check, plan and load a model.

        Args:
            encoder: the prompt format; by default the GGUF's chat template (or a built-in
                one for its architecture). Architectures with their own encoding pass theirs.

        Raises:
            BackendError: bad file (BAD_INPUT), would not fit in memory (MEMORY), or
                llama.cpp failed to load it (MODEL).
        """
        from longdesk.engine.llama_libs import preload_cuda_libraries

        preload_cuda_libraries()
        from llama_cpp import Llama

        from longdesk.engine.backends import llama_log

        self.path = path
        self.header = inspect_model(path)
        llama_log.install()
        self.settings = s = resolve_settings(settings or LocalSettings(), self.header)
        self.placement: Placement = plan_placement(
            self.header, s.n_ctx, s.n_gpu_layers or 0, swa_full=s.full_swa()
        )
        if s.check_memory and not self.placement.memory.fits:
            raise BackendError(
                FailureKind.MEMORY, f"{path.name} does not fit in memory: {self.placement.refusal()}"
            )
        capture = llama_log.captured_stderr()
        try:
            with capture, tensor_overrides(self.placement.cpu_tensor_patterns):
                self._llm = Llama(
                    model_path=str(path),
                    n_ctx=s.n_ctx,
                    n_batch=s.n_batch,
                    n_ubatch=s.n_ubatch,
                    n_threads=s.threads(),
                    n_threads_batch=s.threads(),
                    n_gpu_layers=self.placement.n_gpu_layers,
                    flash_attn=s.flash_attn,
                    swa_full=s.full_swa(),
                    type_k=KV_TYPES[s.type_k],
                    type_v=KV_TYPES[s.type_v],
                    logits_all=False,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            why = [x for x in capture.text.splitlines() if "error" in x.lower() or "failed" in x.lower()]
            detail = f" ({why[-1].strip()})" if why else ""
            raise BackendError(
                FailureKind.MODEL, f"llama.cpp could not load {path.name}: {exc}{detail}"
            ) from exc
        from longdesk.engine.llama_libs import preload_cuda_libraries

        preload_cuda_libraries()
        import llama_cpp

        self._lib: Any = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        bos = self._piece(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
        eos = self._piece(self._llm.token_eos()) if self._llm.token_eos() >= 0 else ""
        self.template = chat_template_for(self.header)
        self.prompt_reason = ""
        if encoder is None:
            encoder, self.prompt_reason = _default_encoder(
                self.header, self.template, bos, eos, s.prompt_format
            )
        self.encoder: PromptEncoder = encoder
        self.store = SnapshotStore(s.snapshot_dir, s.snapshot_budget_bytes) if s.snapshot_dir else None
        self._model_id = model_identity(shard_paths(path))
        self._key: SnapshotKey | None = None
        self._thinking = ThinkingMode.OFF
        self._plan: ContextPlan | None = None
        self._prefix_tokens: list[int] = []
        self._prefix_state: bytes | None = None  # in memory only when there is no snapshot on disk
        self._live: _Live | None = None

    # ------------------------------------------------------------------ Backend
    def describe(self) -> BackendInfo:
        notes: tuple[str, ...] = ()
        if self.path.name == "gemma-3-270m-q4_k_m.gguf":
            from longdesk.engine.models.default_model import DEFAULT_MODEL_LIMITS

            notes = (DEFAULT_MODEL_LIMITS,)
        if self.placement.note:
            notes = (*notes, self.placement.note)
        if self.prompt_reason:
            notes = (*notes, f"Prompt format: {kind_of(self.encoder).value} ({self.prompt_reason})")
        if self.header.architecture == "deepseek4":
            from longdesk.engine.dsv4.encoding import think_max_note

            note = think_max_note(self.settings.n_ctx)
            notes = (*notes, note) if note else notes
        return BackendInfo(
            name=self.header.name,
            where=Where.LOCAL,
            context_window=self.settings.n_ctx,
            thinking_modes=self.encoder.thinking_modes,
            architecture=self.header.architecture,
            notes=notes,
        )

    @property
    def instructions(self) -> str | None:
        """What to pack before the corpus for this prompt format (None: the citing contract)."""
        return self.encoder.header if isinstance(self.encoder, ReadingPromptEncoder) else None

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def snapshot_key(self, tokens: Sequence[int]) -> SnapshotKey:
        """The content address of the state after ``tokens`` under this model and settings."""
        digest = hashlib.sha256(np.asarray(tokens, dtype="<i4").tobytes()).hexdigest()
        return SnapshotKey(
            model=self._model_id,
            model_name=f"{self.path.name}, {self.header.file_size:,} bytes",
            build=build_identity(),
            settings=self.settings.state_layout(),
            template=self.encoder.identity(),
            tokens=digest,
            n_tokens=len(tokens),
        )

    def read(
        self,
        plan: ContextPlan,
        on_event: EventSink,
        cancelled: CancelCheck,
        *,
        thinking: ThinkingMode = ThinkingMode.OFF,
        keep_held: bool = False,
    ) -> Reading:
        """Make the model hold the prefix: restore its snapshot, or prefill (and save one).

        With ``keep_held``, a prefix this context already holds is kept as it is (a resident
        worker's next client); otherwise it is always restored or read again.

        Raises:
            BackendError: the prefix does not fit the context (CONTEXT), the prompt format
                failed (MODEL), llama.cpp failed (MODEL), or cancelled (CANCELLED; a
                checkpoint is kept and the next read resumes from it).
        """
        t0 = time.perf_counter()
        detail: dict[str, object] = {"snapshot": "none"}
        try:
            text = prefix_text(self.encoder, plan, thinking)
        except TemplateError as exc:
            raise BackendError(FailureKind.MODEL, str(exc)) from exc
        tokens = self.tokenize(text, special=True)
        if len(tokens) >= self.settings.n_ctx:
            raise BackendError(
                FailureKind.CONTEXT,
                f"the corpus needs {len(tokens):,} tokens; the loaded context holds {self.settings.n_ctx:,}",
            )
        key = self.snapshot_key(tokens)
        detail["key"] = key.digest
        if keep_held and key == self._key and thinking == self._thinking:
            # This context already holds the prefix (a resident worker's next client): only
            # the conversation on top of it, if any, is dropped when the next thread starts.
            self._plan = plan
            detail["snapshot"] = "held"
            return Reading(len(tokens), restored=True, seconds=time.perf_counter() - t0, detail=detail)
        self._key, self._live, self._prefix_state = None, None, None
        self._thinking = thinking
        self._plan = plan
        if self.store is not None:
            note = self._restore_snapshot(key, tokens, on_event)
            if note == "":
                self._prefix_tokens, self._key = tokens, key
                self._live = _Live([])
                detail["snapshot"] = "restored"
                return Reading(len(tokens), restored=True, seconds=time.perf_counter() - t0, detail=detail)
            detail["snapshot_note"] = note
        start = self._resume_checkpoint(key, tokens, on_event) if self.store is not None else 0
        if start:
            detail["resumed_from"] = start
        else:
            self._clear()
        self._prefill(tokens, start, on_event, cancelled, stage=Stage.PREFILL, key=key)
        seconds = time.perf_counter() - t0
        self._prefix_tokens, self._key = tokens, key
        self._live = _Live([])
        detail["snapshot"] = self._save_snapshot(key, tokens, seconds, on_event)
        return Reading(len(tokens), restored=False, seconds=time.perf_counter() - t0, detail=detail)

    def ask(
        self,
        reading: Reading,
        history: tuple[Turn, ...],
        question: str,
        options: AskOptions,
        on_event: EventSink,
        cancelled: CancelCheck,
    ) -> Finished | Failed:
        """Answer ``question``; a follow-up of the live conversation continues in place."""
        if self._key is None:
            return Failed(FailureKind.INTERNAL, "ask() before read(): the corpus has not been read")
        if reading.detail.get("key", self._key.digest) != self._key.digest:
            return Failed(FailureKind.INTERNAL, "this reading belongs to another corpus; read it again")
        if options.thinking not in self.encoder.thinking_modes:
            return Failed(
                FailureKind.BAD_INPUT, f"{self.header.name} has no thinking mode {options.thinking}"
            )
        try:
            if self.encoder.prefix("", options.thinking) != self.encoder.prefix("", self._thinking):
                # This model writes the mode before the corpus (DeepSeek-V4's think-max
                # preamble): hold the prefix of that mode, from its snapshot where one exists.
                if self._plan is None or history:
                    return Failed(
                        FailureKind.BAD_INPUT,
                        f"the corpus was read for thinking mode {self._thinking}; this model's prompt "
                        f"places the mode before the corpus, so start a new thread for {options.thinking}",
                    )
                fresh = self.read(self._plan, on_event, cancelled, thinking=options.thinking)
                reading.prefix_tokens, reading.restored = fresh.prefix_tokens, fresh.restored
                reading.seconds += fresh.seconds
                reading.detail = fresh.detail
            text = self._turn_text(history, question, options.thinking)
        except TemplateError as exc:
            return Failed(FailureKind.MODEL, str(exc))
        except BackendError as exc:
            return Failed(exc.kind, exc.message)
        turn_tokens = self.tokenize(text, special=True)
        room = self.settings.n_ctx - self._llm.n_tokens - len(turn_tokens)
        if room < 1:
            return Failed(
                FailureKind.CONTEXT,
                f"the conversation no longer fits the context ({-room + 1:,} tokens over)",
            )
        assert self._live is not None
        self._live.clean = False
        try:
            self._prefill(turn_tokens, 0, on_event, cancelled, stage=Stage.QUESTION, key=None)
        except BackendError as exc:
            return Failed(exc.kind, exc.message)
        prompt_tokens = self._llm.n_tokens
        cap = policy_of(self.encoder).cap or options.max_output_tokens
        result, produced, seconds = self._generate(
            options, min(options.max_output_tokens, cap, room), on_event, cancelled
        )
        self._live.questions.append(question)
        self._live.clean = True
        on_event(
            Usage(
                prompt_tokens=prompt_tokens,
                cached_tokens=prompt_tokens - len(turn_tokens),
                output_tokens=produced,
                seconds=seconds,
            )
        )
        return result

    def close(self) -> None:
        self._llm.close()

    # ------------------------------------------------------------------ checks
    def rewind(self) -> None:
        """Bring the context back to the prefix now, so that the next new thread starts at once.

        Raises:
            BackendError: the prefix state could not be restored.
        """
        if self._key is not None:
            self._restore_prefix()

    def probe_logits(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Next-token logits after the prefix followed by ``text`` (restore checks, tests).

        The live conversation is dropped: the next ``ask`` starts from the prefix state.
        """
        if self._key is None:
            raise BackendError(FailureKind.INTERNAL, "probe before read()")
        self._restore_prefix()
        self._live = _Live([], clean=False)
        self._llm.eval(self.tokenize(text, special=True))
        return self.last_logits()

    def last_logits(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        """A copy of the logits after the last evaluated token."""
        ptr = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),)).copy()

    # ------------------------------------------------------------------ conversation
    def _turn_text(self, history: Sequence[Turn], question: str, thinking: ThinkingMode) -> str:
        """Text to evaluate for ``question``; restores the prefix unless this is a follow-up."""
        live = self._live
        asked = [t.question for t in history]
        if live is not None and live.clean and asked and asked == live.questions:
            return self.encoder.next_turn(question, thinking)
        self._restore_prefix()
        if not history:
            return self.encoder.first_turn(question, thinking)
        # Another thread of the same corpus: its turns after the prefix, then the question.
        parts = [self.encoder.first_turn(history[0].question, thinking), history[0].answer]
        for turn in history[1:]:
            parts += [self.encoder.next_turn(turn.question, thinking), turn.answer]
        parts.append(self.encoder.next_turn(question, thinking))
        self._live = _Live(asked)
        return "".join(parts)

    def _generate(
        self, options: AskOptions, limit: int, on_event: EventSink, cancelled: CancelCheck
    ) -> tuple[Finished, int, float]:
        """Sample up to ``limit`` tokens; the answer guard ends it early (stop sequence, repeats).

        A token that completes a stop sequence or a repeat is not evaluated, so a follow-up
        continues from the end of the answer as shown. Where the format's answer starts on its
        line (``AnswerPolicy.starts_on_its_line``), line breaks are refused until the answer
        shows a visible character.
        """
        splitter = ThinkingSplitter(
            self.encoder.think_markers, thinking=self.encoder.starts_thinking(options.thinking)
        )
        instructions = instructions_of(self.encoder, self._plan) if self._plan is not None else ""
        policy = policy_of(self.encoder)
        guard = AnswerGuard(instructions, policy.stops)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        rng = np.random.default_rng(options.seed)
        produced = 0
        stop = StopReason.LENGTH
        t0 = time.perf_counter()
        blank = policy.starts_on_its_line  # no visible answer yet, and line breaks are refused

        def emit(events: list[ThinkingDelta | AnswerDelta]) -> None:
            nonlocal blank
            for event in events:
                if isinstance(event, AnswerDelta):
                    if event.text.strip():
                        blank = False
                    text = guard.feed(event.text)
                    if text:
                        on_event(AnswerDelta(text))
                else:
                    on_event(event)

        while produced < limit:
            if cancelled():
                stop = StopReason.CANCELLED
                break
            token = self._next_token(options.temperature, rng, self._breaks_line if blank else None)
            if self._lib.llama_vocab_is_eog(self._vocab, token):
                stop = StopReason.STOP
                break
            produced += 1
            emit(splitter.feed(decoder.decode(self._piece_bytes(token))))
            if guard.stopped is not None:
                stop = StopReason(guard.stopped.value)
                break
            self._llm.eval([token])
        if guard.stopped is None:
            emit(splitter.feed(decoder.decode(b"", final=True)) + splitter.flush())
            rest = guard.flush()
            if rest:
                on_event(AnswerDelta(rest))
        if guard.stopped is GuardStop.REPEATED:
            stop = StopReason.REPEATED
        return Finished(stop), produced, max(time.perf_counter() - t0, 1e-9)

    # ------------------------------------------------------------------ prefill
    def _prefill(
        self,
        tokens: Sequence[int],
        start: int,
        on_event: EventSink,
        cancelled: CancelCheck,
        *,
        stage: Stage,
        key: SnapshotKey | None,
    ) -> None:
        """Evaluate ``tokens[start:]`` in chunks; checkpoint the prefix every interval."""
        total = len(tokens)
        step = self.settings.n_batch
        interval = self.settings.checkpoint_interval_s
        meter = RateMeter(stage, total, start=start, clock=time.perf_counter)
        last_checkpoint = time.perf_counter()
        checkpointed = start
        for done in range(start, total, step):
            if cancelled():
                if key is not None and self.settings.checkpoint_on_cancel and done > checkpointed:
                    self._checkpoint(key, tokens, done, on_event)
                raise BackendError(FailureKind.CANCELLED, f"cancelled after {done:,} of {total:,} tokens")
            chunk = list(tokens[done : done + step])
            try:
                self._llm.eval(chunk)
            except RuntimeError as exc:
                raise BackendError(FailureKind.MODEL, f"llama.cpp failed while reading: {exc}") from exc
            finished = done + len(chunk)
            now = time.perf_counter()
            on_event(meter.at(finished))
            if key is not None and interval > 0 and now - last_checkpoint >= interval and finished < total:
                self._checkpoint(key, tokens, finished, on_event)
                checkpointed, last_checkpoint = finished, time.perf_counter()

    def _next_token(
        self, temperature: float, rng: np.random.Generator, refuse: Callable[[int], bool] | None = None
    ) -> int:
        ptr = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),))
        return choose_token(logits, temperature, rng, refuse)

    def _breaks_line(self, token: int) -> bool:
        """True for a token whose text holds a line break."""
        piece = self._piece_bytes(token)
        return b"\n" in piece or b"\r" in piece

    # ------------------------------------------------------------------ state
    def _clear(self) -> None:
        mem = self._lib.llama_get_memory(self._llm.ctx)
        self._lib.llama_memory_clear(mem, True)
        self._llm.n_tokens = 0

    def _write_state(self, tokens: Sequence[int], n: int) -> Any:
        """A writer for ``SnapshotStore.save``: llama.cpp writes sequence 0's state to the file.

        The sequence-state API, not the whole-context one: with the full-size window cache it
        restores bit for bit and the whole-context API does not (max |dlogit| 0.9 at 1.3K
        tokens on Gemma 3); DeepSeek-V4's reduced window cache restores bit for bit through it.
        """
        lib, ctx = self._lib, self._llm.ctx
        arr = (lib.llama_token * n)(*tokens[:n])

        def write(path: Path) -> None:
            ok = lib.llama_state_seq_save_file(ctx, str(path).encode(), 0, arr, n) != 0
            if not ok:
                raise OSError(f"llama.cpp could not write the state to {path}")

        return write

    def _load_state(self, path: Path, expected: Sequence[int]) -> None:
        """Load a verified state file into sequence 0 and check the tokens it holds.

        Raises:
            SnapshotError: llama.cpp refused the file, or it holds other tokens.
        """
        lib = self._lib
        self._clear()
        n = len(expected)
        out = (lib.llama_token * max(n, 1))()
        count = ctypes.c_size_t(0)
        name = str(path).encode()
        ok = lib.llama_state_seq_load_file(self._llm.ctx, name, 0, out, n, ctypes.byref(count)) != 0
        if not ok or count.value != n or list(out[:n]) != list(expected):
            self._clear()
            raise SnapshotError(f"llama.cpp could not restore {path.name} into this context")
        self._llm.n_tokens = n
        self._llm.input_ids[:n] = expected

    def _restore_snapshot(self, key: SnapshotKey, tokens: Sequence[int], on_event: EventSink) -> str:
        """Restore the complete snapshot of ``key``: '' when done, else why not."""
        assert self.store is not None
        try:
            record = self.store.find(key)
            if record is None:
                return self.store.explain_miss(key) or "no saved state yet"
            meter = RateMeter(Stage.RESTORE, len(tokens), clock=time.perf_counter)
            on_event(meter.at(0))
            self._load_state(self.store.verified_state(record), tokens)
        except SnapshotError as exc:
            return str(exc)
        on_event(meter.at(len(tokens)))
        return ""

    def _resume_checkpoint(self, key: SnapshotKey, tokens: Sequence[int], on_event: EventSink) -> int:
        """Restore the last checkpoint of ``key``; the number of prefix tokens it holds (or 0)."""
        assert self.store is not None
        try:
            record = self.store.find(key, checkpoint=True)
            if record is None or not 0 < record.n_done < len(tokens):
                return 0
            self._load_state(self.store.verified_state(record), tokens[: record.n_done])
        except SnapshotError:
            self.store.discard_checkpoint(key)
            return 0
        on_event(Progress(Stage.RESUME, record.n_done, len(tokens)))
        return record.n_done

    def _checkpoint(self, key: SnapshotKey, tokens: Sequence[int], n: int, on_event: EventSink) -> None:
        if self.store is None:
            return  # no snapshot folder (``--no-snapshot``): nothing to resume from
        on_event(Progress(Stage.CHECKPOINT, n, len(tokens)))
        try:
            self.store.save(key, self._write_state(tokens, n), n_done=n)
        except OSError:
            return  # a failed checkpoint costs only the resume point; the prefill goes on

    def _save_snapshot(
        self, key: SnapshotKey, tokens: Sequence[int], seconds: float, on_event: EventSink
    ) -> str:
        if self.store is None:
            self._prefix_state = self._state_bytes()
            return "kept in memory"
        on_event(Progress(Stage.SNAPSHOT, 0, len(tokens)))
        try:
            self.store.save(
                key, self._write_state(tokens, len(tokens)), n_done=len(tokens), seconds_to_make=seconds
            )
        except OSError as exc:
            self._prefix_state = self._state_bytes()
            return f"not saved ({exc}); kept in memory"
        on_event(Progress(Stage.SNAPSHOT, len(tokens), len(tokens), 0.0, 0.0))
        return "saved"

    def _state_bytes(self) -> bytes:
        lib = self._lib
        ctx = self._llm.ctx
        size = lib.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        written = lib.llama_state_seq_get_data(ctx, buf, size, 0)
        return ctypes.string_at(buf, written)  # copies in C, without a list of ints under the GIL

    def _restore_prefix(self) -> None:
        """Bring the context back to exactly the prefix state.

        Raises:
            BackendError: neither the in-memory copy nor the snapshot could be restored.
        """
        tokens = self._prefix_tokens
        live = self._live
        if live is not None and live.clean and not live.questions and self._llm.n_tokens == len(tokens):
            return
        self._live = None
        if self._prefix_state is not None:
            self._clear()
            data = self._prefix_state
            buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            ctx, lib = self._llm.ctx, self._lib
            ok = lib.llama_state_seq_set_data(ctx, buf, len(data), 0) != 0
            if not ok:
                raise BackendError(FailureKind.MODEL, "could not restore the corpus state")
            self._llm.n_tokens = len(tokens)
        else:
            assert self.store is not None
            assert self._key is not None
            try:
                record = self.store.find(self._key)
                if record is None:
                    raise SnapshotError("the corpus snapshot was removed")
                self._load_state(self.store.verified_state(record), tokens)
            except SnapshotError as exc:
                raise BackendError(FailureKind.MODEL, f"{exc}; read the corpus again") from exc
        self._live = _Live([])

    def _piece(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def _piece_bytes(self, token: int) -> bytes:
        return bytes(self._llm.detokenize([token], special=True))


__all__ = [
    "FALLBACK_TEMPLATE",
    "KV_TYPES",
    "LocalBackend",
    "LocalSettings",
    "Tokenizer",
    "chat_template_for",
    "inspect_model",
    "physical_cores",
    "resolve_settings",
]


def _default_encoder(
    header: GGUFHeader, template: str, bos: str, eos: str, wanted: str = "auto"
) -> tuple[PromptEncoder, str]:
    """The prompt format for this file, and why: the reading format for base models,
    DeepSeek-V4's own encoding for deepseek4 files, the chat template for other instruction
    models. ``wanted`` (``auto``, ``reading``, ``chat``) is the user's override.

    Raises:
        BackendError: ``wanted`` is not a known format (BAD_INPUT).
    """
    try:
        choice = PromptKind(wanted or "auto")
    except ValueError as exc:
        raise BackendError(
            FailureKind.BAD_INPUT, f"unknown prompt format {wanted!r}; choose auto, reading or chat"
        ) from exc
    if choice is PromptKind.AUTO:
        kind, reason = detect_prompt_kind(header)
    else:
        kind, reason = choice, "chosen in the settings"
    if kind is PromptKind.READING:
        return ReadingPromptEncoder(bos), reason
    if header.architecture == "deepseek4":
        from longdesk.engine.dsv4.prompt import encoder_for

        return encoder_for(header.chat_template), reason
    return JinjaPromptEncoder(template, bos, eos), reason
