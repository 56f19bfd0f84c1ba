"""Loading a GGUF for the local backend: settings, checks before loading, tensor placement.

Everything here happens before or while llama.cpp builds a model: the load settings and
their automatic values, the header checks that turn a bad file into a clear error, the
vocabulary-only tokenizer used to count tokens before a load, and the tensor buffer
overrides that keep MoE experts in system RAM.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from longdesk.engine.backends.base import BackendError, FailureKind
from longdesk.engine.models.gguf_header import GGUFError, GGUFHeader, check_shards, read_header
from longdesk.engine.models.memory import full_swa_cache
from longdesk.engine.models.registry import check_supported

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

# ggml type ids of the KV cache types users may choose.
KV_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "bf16": 30}


def chat_template_for(header: GGUFHeader) -> str:
    """The GGUF's own template, else a built-in one for its architecture, else the fallback."""
    if header.chat_template:
        return header.chat_template
    name = _BUILTIN_TEMPLATES.get(header.architecture)
    if name:
        from importlib import resources

        template = resources.files("longdesk.assets").joinpath(f"chat_templates/{name}.jinja")
        return template.read_text(encoding="utf-8")
    return FALLBACK_TEMPLATE


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def accelerator_built() -> bool:
    """True when the loaded llama.cpp can offload layers to a GPU."""
    from longdesk.engine.llama_libs import preload_cuda_libraries

    preload_cuda_libraries()
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """Load settings. Those that change the saved state's layout are part of snapshot keys.

    Attributes:
        n_ctx: context size in tokens (clamped to the model's trained context).
        n_batch, n_ubatch: 0 picks 512 on a CPU and 2048 with an accelerator. The batch is
            also the prefill chunk: progress and cancel happen between chunks.
        n_gpu_layers: -1 all layers where llama.cpp has an accelerator, 0 none; None decides.
        type_k, type_v: KV cache types (must be equal; see ``KV_TYPES``).
        checkpoint_interval_s: seconds of prefill between checkpoints (0 disables them).
        checkpoint_on_cancel: save a checkpoint when a prefill is cancelled.
        snapshot_dir, snapshot_budget_bytes: where snapshots go (None: no snapshots) and
            the folder's byte budget.
        check_memory: refuse a load the memory planner says will not fit.
        prompt_format: ``auto`` (from the GGUF: base or instruction model), ``reading`` or
            ``chat`` (``engine.models.prompt_encoder.PromptKind``); part of snapshot keys
            through the prompt format's identity.
    """

    n_ctx: int = 4096
    n_batch: int = 0
    n_ubatch: int = 0
    n_threads: int = 0  # 0: physical cores
    n_gpu_layers: int | None = None
    flash_attn: bool = True
    swa_full: bool | None = None  # None: per architecture (``full_swa_cache``)
    type_k: str = "f16"
    type_v: str = "f16"
    checkpoint_interval_s: float = 180.0
    checkpoint_on_cancel: bool = True
    snapshot_dir: Path | None = None
    snapshot_budget_bytes: int = 20 << 30
    check_memory: bool = True
    prompt_format: str = "auto"

    def threads(self) -> int:
        return self.n_threads or physical_cores()

    def full_swa(self) -> bool:
        """The full-size window cache choice, once ``resolve_settings`` has made it."""
        assert self.swa_full is not None, "resolve_settings() decides the window cache"
        return self.swa_full

    def state_layout(self) -> str:
        """The settings that change a saved state's layout, for snapshot keys."""
        return (
            f"type_k={self.type_k} type_v={self.type_v} flash_attn={int(self.flash_attn)} "
            f"swa_full={int(self.full_swa())} n_ubatch={self.n_ubatch}"
        )


def resolve_settings(settings: LocalSettings, header: GGUFHeader) -> LocalSettings:
    """Fill in automatic values and check the combination.

    Raises:
        BackendError: unequal or unknown K/V cache types.
    """
    s = settings
    if s.type_k not in KV_TYPES or s.type_v not in KV_TYPES:
        raise BackendError(
            FailureKind.BAD_INPUT, f"unknown KV cache type; choose one of {', '.join(KV_TYPES)}"
        )
    if s.type_k != s.type_v:
        raise BackendError(
            FailureKind.BAD_INPUT,
            f"K and V cache types must be equal (got {s.type_k} and {s.type_v}); DeepSeek-V4 requires it",
        )
    gpu = accelerator_built()
    layers = s.n_gpu_layers if s.n_gpu_layers is not None else (-1 if gpu else 0)
    big = 2048 if gpu and layers != 0 else 512
    n_ctx = min(s.n_ctx, header.context_length or s.n_ctx)
    n_batch = min(s.n_batch or big, n_ctx)
    n_ubatch = min(s.n_ubatch or n_batch, n_batch)
    swa_full = full_swa_cache(header.architecture) if s.swa_full is None else s.swa_full
    return replace(s, n_ctx=n_ctx, n_gpu_layers=layers, n_batch=n_batch, n_ubatch=n_ubatch, swa_full=swa_full)


# Headers already checked in this process, by (path, size, modification time): the CLI and the
# window ask for the same file several times (count, plan, load) and a big vocabulary costs
# a tenth of a second to skip each time.
_CHECKED: dict[tuple[str, int, int], GGUFHeader] = {}


def inspect_model(path: Path) -> GGUFHeader:
    """Read and check a model file before anything is loaded.

    Raises:
        BackendError: missing file, not a GGUF, truncated, missing shard, unknown architecture.
    """
    try:
        st = path.stat()
    except OSError:
        st = None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns) if st is not None else None
    if key is not None and key in _CHECKED:
        return _CHECKED[key]
    header = _inspect_model(path)
    if key is not None:
        if len(_CHECKED) > 32:
            _CHECKED.clear()
        _CHECKED[key] = header
    return header


def _inspect_model(path: Path) -> GGUFHeader:
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
        from longdesk.engine.llama_libs import preload_cuda_libraries

        preload_cuda_libraries()
        from llama_cpp import Llama

        from longdesk.engine.backends import llama_log

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

    def pieces(self) -> Iterator[bytes]:
        """Every token piece of the vocabulary (to prove where texts can be cut exactly)."""
        from longdesk.engine.context.tokens import llama_vocabulary

        return llama_vocabulary(self._llm)

    def close(self) -> None:
        self._llm.close()


class _BuftOverride(ctypes.Structure):
    """``struct llama_model_tensor_buft_override``: a tensor-name regex and a buffer type."""

    _fields_ = (("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p))


@contextmanager
def tensor_overrides(patterns: Sequence[str]) -> Iterator[None]:
    """Place tensors whose names match ``patterns`` in system RAM while a model loads.

    llama-cpp-python 0.3.36 binds ``llama_model_params.tensor_buft_overrides`` (the mechanism
    behind llama.cpp's ``-ot exps=CPU``) but its ``Llama`` class never sets it, so the
    default-params factory it calls is wrapped for the duration of the load only.
    """
    if not patterns:
        yield
        return
    from longdesk.engine.llama_libs import preload_cuda_libraries

    preload_cuda_libraries()
    import llama_cpp
    import llama_cpp.llama_cpp as bindings

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    names = ("libggml.so", "libggml.dylib", "ggml.dll")
    ggml = ctypes.CDLL(str(next((lib_dir / n for n in names if (lib_dir / n).exists()), lib_dir / names[0])))
    ggml.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    ggml.ggml_backend_dev_buffer_type.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_buffer_type.argtypes = [ctypes.c_void_p]
    cpu_buft = ggml.ggml_backend_dev_buffer_type(ggml.ggml_backend_dev_by_type(0))
    encoded = [p.encode("utf-8") for p in patterns]
    table = (_BuftOverride * (len(encoded) + 1))()
    for i, pattern in enumerate(encoded):
        table[i].pattern = pattern
        table[i].buft = cpu_buft
    original = bindings.llama_model_default_params

    def with_overrides() -> Any:
        params = original()
        params.tensor_buft_overrides = ctypes.cast(table, ctypes.c_void_p)
        return params

    bindings.llama_model_default_params = with_overrides
    try:
        yield
    finally:
        bindings.llama_model_default_params = original
