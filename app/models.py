"""Which model to use, and what is known about the GGUF files on this machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longdesk.app.paths import Paths
from longdesk.app.settings import Settings
from longdesk.engine.backends.base import BackendError
from longdesk.engine.backends.local_load import inspect_model
from longdesk.engine.models.default_model import DEFAULT_MODEL_NAME, ensure_default_model
from longdesk.engine.models.gguf_header import shard_paths
from longdesk.engine.models.memory import MemoryPlan, plan_memory

# The context used to judge whether a model fits when nothing else is asked for.
FIT_CONTEXT = 32_768


def default_model_path(paths: Paths) -> Path:
    """The embedded default model, assembled into the models folder on first use."""
    return ensure_default_model(paths.models)


def resolve_model(paths: Paths, settings: Settings, explicit: str | None) -> Path:
    """``--model`` if given, else the default from the settings, else the embedded default."""
    if explicit:
        return Path(explicit).expanduser()
    if settings.default_model:
        return Path(settings.default_model).expanduser()
    return default_model_path(paths)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    path: Path
    origin: str  # "default", "models folder", "--model", "settings"
    name: str = ""
    architecture: str = ""
    quantization: str = ""
    size_bytes: int = 0
    context_length: int = 0
    memory: MemoryPlan | None = None
    error: str = ""


def describe_model(path: Path, origin: str) -> ModelEntry:
    """Header facts and a memory verdict for one file; errors are kept as text."""
    try:
        header = inspect_model(path)
    except BackendError as exc:
        return ModelEntry(path, origin, error=exc.message)
    size = sum(p.stat().st_size for p in shard_paths(path) if p.is_file())
    ctx = min(header.context_length or FIT_CONTEXT, FIT_CONTEXT)
    return ModelEntry(
        path=path,
        origin=origin,
        name=header.name,
        architecture=header.architecture,
        quantization=header.quantization,
        size_bytes=size,
        context_length=header.context_length,
        memory=plan_memory(header, ctx),
    )


def known_models(paths: Paths, settings: Settings, extra: list[str]) -> list[ModelEntry]:
    """The default model, the models folder, the settings' extra paths and ``extra``."""
    entries = [describe_model(default_model_path(paths), "default")]
    seen = {entries[0].path.resolve()}
    candidates: list[tuple[Path, str]] = []
    if settings.models_dir:
        folder = Path(settings.models_dir).expanduser()
        if folder.is_dir():
            for p in sorted(folder.rglob("*.gguf")):
                if p.name == DEFAULT_MODEL_NAME and p.parent == paths.models:
                    continue
                # Only the first shard of a split model stands for it.
                if shard_paths(p)[0] != p:
                    continue
                candidates.append((p, "models folder"))
    candidates += [(Path(p).expanduser(), "settings") for p in settings.extra_model_paths]
    candidates += [(Path(p).expanduser(), "--model") for p in extra]
    for path, origin in candidates:
        key = path.resolve() if path.exists() else path
        if key in seen:
            continue
        seen.add(key)
        entries.append(describe_model(path, origin))
    return entries
