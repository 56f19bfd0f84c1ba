"""Formats read in-process (pure Python on bounded input): text, code, Markdown, RST, HTML, notebooks.

Anchors:
    * text, Markdown, reStructuredText and code: line ranges of the file itself (a marker every
      ``CODE_LINES_PER_ANCHOR`` lines of code, ``TEXT_LINES_PER_ANCHOR`` lines of prose);
    * HTML: the visible text (no scripts, styles or markup), anchored by the *source* lines the
      text came from, so a citation opens at the right place of the file;
    * Jupyter notebooks: the cells' sources (outputs skipped) rendered one after another under a
      ``# %% [markdown] cell 3`` line each; the line numbers are those of this rendering.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import PurePosixPath

from longdesk.engine.corpus.model import Anchor, AnchorKind, Document, DocumentKind, Segment
from longdesk.engine.corpus.segments import SegmentTable

CODE_LINES_PER_ANCHOR = 10
TEXT_LINES_PER_ANCHOR = 20

_MARKDOWN = frozenset({".md", ".markdown", ".mdown", ".mkd"})
_RST = frozenset({".rst", ".rest"})
_HTML = frozenset({".html", ".htm", ".xhtml"})
_CODE_LANGUAGES = {
    ".py": "python", ".pyi": "python", ".pyx": "cython", ".c": "c", ".h": "c", ".cc": "cpp",
    ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".cu": "cuda", ".rs": "rust",
    ".go": "go", ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".js": "javascript",
    ".mjs": "javascript", ".cjs": "javascript", ".ts": "typescript", ".tsx": "typescript",
    ".jsx": "javascript", ".rb": "ruby", ".php": "php", ".swift": "swift", ".m": "objc",
    ".mm": "objc", ".cs": "csharp", ".fs": "fsharp", ".sh": "shell", ".bash": "shell",
    ".zsh": "shell", ".fish": "shell", ".ps1": "powershell", ".bat": "batch", ".sql": "sql",
    ".r": "r", ".jl": "julia", ".lua": "lua", ".pl": "perl", ".pm": "perl", ".scala": "scala",
    ".hs": "haskell", ".ml": "ocaml", ".mli": "ocaml", ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang", ".clj": "clojure", ".el": "elisp", ".lisp": "lisp", ".scm": "scheme",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".jsonl": "json",
    ".xml": "xml", ".ini": "ini", ".cfg": "ini", ".conf": "ini", ".cmake": "cmake", ".mk": "make",
    ".gradle": "gradle", ".css": "css", ".scss": "scss", ".sass": "sass", ".less": "less",
    ".vue": "vue", ".svelte": "svelte", ".dart": "dart", ".zig": "zig", ".nim": "nim",
    ".v": "verilog", ".sv": "verilog", ".vhd": "vhdl", ".tf": "terraform", ".proto": "protobuf",
    ".graphql": "graphql", ".tex": "latex", ".asm": "asm", ".s": "asm", ".f90": "fortran",
    ".pas": "pascal", ".groovy": "groovy", ".d": "d", ".ada": "ada", ".cob": "cobol",
}  # fmt: skip
_CODE_NAMES = {
    "Makefile": "make", "GNUmakefile": "make", "Dockerfile": "docker", "CMakeLists.txt": "cmake",
    "Rakefile": "ruby", "Gemfile": "ruby", "Jenkinsfile": "groovy", "Vagrantfile": "ruby",
    "BUILD": "bazel", "WORKSPACE": "bazel", "meson.build": "meson", "SConstruct": "python",
}  # fmt: skip


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Latin-1; newlines normalised to ``\\n``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def looks_binary(head: bytes) -> bool:
    """Binary by content: a NUL byte, or bytes that are not text in UTF-8 or Latin-1 use."""
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a multi-byte character cut at the end of the sample
            return False
        controls = sum(1 for b in head if b < 9 or 13 < b < 32 or b == 127)
        return controls > len(head) // 100
    return False


def classify(name: str) -> tuple[DocumentKind, str]:
    """Kind and (for code) language of a text file, from its name."""
    path = PurePosixPath(name.rsplit("!", 1)[-1])
    suffix = path.suffix.lower()
    if path.name in _CODE_NAMES:
        return DocumentKind.CODE, _CODE_NAMES[path.name]
    if suffix in _MARKDOWN:
        return DocumentKind.MARKDOWN, ""
    if suffix in _RST:
        return DocumentKind.RST, ""
    if suffix in _HTML:
        return DocumentKind.HTML, ""
    if suffix == ".ipynb":
        return DocumentKind.NOTEBOOK, ""
    if suffix in _CODE_LANGUAGES:
        return DocumentKind.CODE, _CODE_LANGUAGES[suffix]
    return DocumentKind.TEXT, ""


def line_segments(text: str, per_anchor: int, first_line: int = 1) -> SegmentTable:
    """Blocks of ``per_anchor`` lines, each anchored by its line range (offsets into ``text``)."""
    return SegmentTable.lines(text, per_anchor, first_line)


def minified(text: str) -> bool:
    """Generated one-liners (minified bundles, data dumps): few, very long lines."""
    if len(text) < 20_000:
        return False
    lines = text.count("\n") + 1
    return len(text) / lines > 1000


_BLOCK_TAGS_TEXT = (
    "p div br hr li ul ol tr table section article header footer nav aside h1 h2 h3 h4 h5 h6 "
    "pre blockquote dd dt dl figure figcaption main title caption td th"
)
_BLOCK_TAGS = frozenset(_BLOCK_TAGS_TEXT.split())
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object"})


class _HtmlText(HTMLParser):
    """Visible text of an HTML page, each output line tagged with its source line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self._line: list[str] = []
        self._line_no = 0
        self._hidden = 0
        self._pre = 0

    def _flush(self) -> None:
        text = "".join(self._line)
        if not self._pre:
            text = " ".join(text.split())
        if text.strip():
            self.lines.append((self._line_no, text))
        self._line = []
        self._line_no = 0

    def handle_starttag(self, tag: str, _attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag == "pre":
            self._pre += 1
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS and self._hidden:
            self._hidden -= 1
        elif tag == "pre" and self._pre:
            self._pre -= 1
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        line = self.getpos()[0]
        if self._pre:
            for i, piece in enumerate(data.split("\n")):
                if i:
                    self._flush()
                    line += 1
                if not self._line_no:
                    self._line_no = line
                self._line.append(piece)
            return
        if not self._line_no and data.strip():
            self._line_no = line + data[: len(data) - len(data.lstrip())].count("\n")
        self._line.append(data)


def html_segments(text: str) -> list[Segment]:
    """Visible text in blocks of ``TEXT_LINES_PER_ANCHOR`` lines, anchored by source lines."""
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    parser._flush()
    segments = []
    rows = parser.lines
    for start in range(0, len(rows), TEXT_LINES_PER_ANCHOR):
        chunk = rows[start : start + TEXT_LINES_PER_ANCHOR]
        first, last = chunk[0][0] or 1, max(n for n, _ in chunk) or 1
        body = "\n".join(t for _, t in chunk) + "\n"
        segments.append(Segment(Anchor(AnchorKind.LINES, first, max(first, last)), body))
    return segments


class NotebookError(ValueError):
    """A notebook that is not valid JSON of the nbformat shape."""


def notebook_segments(text: str) -> list[Segment]:
    """The cells' sources (outputs skipped), one or more segments per cell.

    Raises:
        NotebookError: not a notebook.
    """
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("no cells (not a Jupyter notebook)")
    segments: list[Segment] = []
    line = 1
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        body = "".join(source) if isinstance(source, list) else str(source)
        kind = str(cell.get("cell_type", "code"))
        rendered = f"# %% [{kind}] cell {number}\n{body.rstrip()}\n"
        per = CODE_LINES_PER_ANCHOR if kind == "code" else TEXT_LINES_PER_ANCHOR
        # One cell per segment where it is short; long cells are split like code.
        seg_lines = rendered.count("\n")
        if seg_lines <= per * 2:
            segments.append(Segment(Anchor(AnchorKind.LINES, line, line + seg_lines - 1), rendered))
        else:
            segments.extend(line_segments(rendered, per, first_line=line))
        line += seg_lines
    return segments


def text_segments(kind: DocumentKind, text: str) -> Sequence[Segment]:
    """Segments of a text-like document by kind (HTML and notebooks have their own readers)."""
    if kind is DocumentKind.HTML:
        return html_segments(text)
    if kind is DocumentKind.NOTEBOOK:
        return notebook_segments(text)
    per = CODE_LINES_PER_ANCHOR if kind is DocumentKind.CODE else TEXT_LINES_PER_ANCHOR
    return line_segments(text, per)


def text_document(name: str, source: str, data: bytes, doc_id: str) -> Document:
    """A Document from the bytes of one text or code file, anchored by lines (no I/O).

    For callers that already hold the bytes (tests, pasted text); folders and archives go
    through ``engine.corpus.load.load_sources``.
    """
    kind, language = classify(name)
    return Document(
        doc_id=doc_id,
        name=name,
        source=source,
        kind=kind,
        sha256=hashlib.sha256(data).hexdigest(),
        segments=text_segments(kind, decode(data)),
        language=language,
    )
