"""Read the sources a user names (files and folders) into a Corpus.

This first reader covers plain text, Markdown and source code, in files and folder trees. Every
file that is left out is listed with its reason; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from engine.corpus.model import (
    Anchor,
    AnchorKind,
    Corpus,
    Document,
    DocumentKind,
    FileIssue,
    Problem,
    Segment,
)

# Lines per anchor block: code is cited by line, so markers come more often there.
CODE_LINES_PER_ANCHOR = 10
TEXT_LINES_PER_ANCHOR = 20
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024

_DEFAULT_EXCLUDED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "env",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        "build",
        "dist",
        ".idea",
        ".vscode",
    }
)

_MARKDOWN = frozenset({".md", ".markdown", ".mdown"})
_TEXT = frozenset({".txt", ".text", ".log", ".csv", ".tsv", ".rst", ".adoc", ""})
_CODE_LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cu": "cuda",
    ".rs": "rust",
    ".go": "go",
    ".java": "java",
    ".kt": "kotlin",
    ".js": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".jsx": "javascript",
    ".rb": "ruby",
    ".php": "php",
    ".swift": "swift",
    ".m": "objc",
    ".cs": "csharp",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".ps1": "powershell",
    ".sql": "sql",
    ".r": "r",
    ".jl": "julia",
    ".lua": "lua",
    ".pl": "perl",
    ".scala": "scala",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".ex": "elixir",
    ".erl": "erlang",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".xml": "xml",
    ".ini": "ini",
    ".cfg": "ini",
    ".cmake": "cmake",
    ".mk": "make",
    ".gradle": "gradle",
    ".css": "css",
    ".scss": "scss",
    ".vue": "vue",
    ".svelte": "svelte",
    ".dart": "dart",
    ".zig": "zig",
    ".nim": "nim",
}
_CODE_NAMES = {"Makefile": "make", "Dockerfile": "docker", "CMakeLists.txt": "cmake"}

ProgressFn = Callable[[int, int, str], None]


class SourceError(Exception):
    """A source the user named cannot be used at all (missing path, nothing readable)."""


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is not binary.
        return exc.start < len(head) - 4
    return False


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def classify(path: Path) -> tuple[DocumentKind, str]:
    """Kind and (for code) language of a text file, from its name."""
    suffix = path.suffix.lower()
    if path.name in _CODE_NAMES:
        return DocumentKind.CODE, _CODE_NAMES[path.name]
    if suffix in _MARKDOWN:
        return DocumentKind.MARKDOWN, ""
    if suffix == ".rst":
        return DocumentKind.RST, ""
    if suffix in _CODE_LANGUAGES:
        return DocumentKind.CODE, _CODE_LANGUAGES[suffix]
    return DocumentKind.TEXT, ""


def line_segments(text: str, per_anchor: int) -> tuple[Segment, ...]:
    """Split text into blocks of ``per_anchor`` lines, each anchored by its line range."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    segments = []
    for start in range(0, len(lines), per_anchor):
        chunk = lines[start : start + per_anchor]
        anchor = Anchor(AnchorKind.LINES, start + 1, start + len(chunk))
        segments.append(Segment(anchor, "\n".join(chunk) + "\n"))
    return tuple(segments)


def text_document(name: str, source: str, data: bytes, doc_id: str) -> Document:
    """A Document from the bytes of a text or code file."""
    kind, language = classify(Path(name))
    per_anchor = CODE_LINES_PER_ANCHOR if kind is DocumentKind.CODE else TEXT_LINES_PER_ANCHOR
    return Document(
        doc_id=doc_id,
        name=name,
        source=source,
        kind=kind,
        sha256=hashlib.sha256(data).hexdigest(),
        segments=line_segments(_decode(data), per_anchor),
        language=language,
    )


def _walk(root: Path) -> Iterable[tuple[Path, str | None]]:
    """Files under ``root`` in a stable order, with a skip reason for directories left out."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        kept = []
        for d in dirnames:
            if d in _DEFAULT_EXCLUDED_DIRS:
                yield Path(dirpath) / d, f"excluded by default ({d}/)"
            else:
                kept.append(d)
        dirnames[:] = kept
        for f in sorted(filenames):
            yield Path(dirpath) / f, None


def expand_sources(paths: Sequence[Path]) -> tuple[list[tuple[Path, str]], list[FileIssue]]:
    """Files to read (path, display name) and the entries left out, from user-named paths.

    Raises:
        SourceError: a named path does not exist.
    """
    files: list[tuple[Path, str]] = []
    issues: list[FileIssue] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise SourceError(f"no such file or folder: {raw}")
        if path.is_dir():
            root = path.resolve()
            for item, reason in _walk(root):
                rel = item.relative_to(root).as_posix()
                if reason is not None:
                    issues.append(FileIssue(str(item), Problem.SKIPPED, reason))
                elif item.is_symlink() and not item.resolve().is_relative_to(root):
                    issues.append(FileIssue(str(item), Problem.SKIPPED, "symbolic link out of the folder"))
                elif not item.is_file():
                    issues.append(FileIssue(str(item), Problem.SKIPPED, "not a regular file"))
                else:
                    files.append((item, f"{root.name}/{rel}"))
        else:
            files.append((path.resolve(), path.name))
    return files, issues


def load_sources(
    paths: Sequence[Path],
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: ProgressFn | None = None,
) -> Corpus:
    """Read files and folders into a Corpus; unreadable files become issues, not exceptions.

    Raises:
        SourceError: a named path is missing, or nothing readable was found.
    """
    files, issues = expand_sources(paths)
    documents: list[Document] = []
    for index, (path, name) in enumerate(files):
        if progress is not None:
            progress(index, len(files), name)
        try:
            size = path.stat().st_size
            if size > max_file_bytes:
                issues.append(
                    FileIssue(
                        str(path),
                        Problem.SKIPPED,
                        f"larger than the per-file cap ({size:,} > {max_file_bytes:,} bytes)",
                    )
                )
                continue
            data = path.read_bytes()
        except OSError as exc:
            issues.append(FileIssue(str(path), Problem.FAILED, f"cannot read: {exc.strerror or exc}"))
            continue
        if _looks_binary(data[:8192]):
            issues.append(FileIssue(str(path), Problem.SKIPPED, "binary content"))
            continue
        if not data.strip():
            issues.append(FileIssue(str(path), Problem.SKIPPED, "empty"))
            continue
        documents.append(text_document(name, str(path), data, f"D{len(documents) + 1}"))
    if progress is not None:
        progress(len(files), len(files), "")
    if not documents:
        where = ", ".join(str(p) for p in paths)
        detail = f" ({len(issues)} file(s) skipped)" if issues else ""
        raise SourceError(f"no readable documents in {where}{detail}")
    return Corpus.of(documents, issues)
