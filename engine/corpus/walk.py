"""Walk the files and folders a user named: ignore files, default excludes, links, caps.

Rules (each file left out becomes a FileIssue with its reason):
    * ``.gitignore`` and ``.ignore`` at every level with git's semantics (a deeper file wins, the
      last matching pattern wins, ``!`` re-includes, an excluded folder is not entered), plus
      ``.git/info/exclude`` of the root and git's per-user excludes file.
    * The default excludes of :mod:`engine.corpus.options`, each with its reason; a folder that
      holds ``pyvenv.cfg`` is a virtual environment whatever its name.
    * Symbolic links are never followed out of the root; links to folders are not entered (no
      loops); links to files inside the root are read under the link's name.
    * FIFOs, sockets and devices are skipped (opening a FIFO would block forever).
    * Order is stable: the user's paths in the order given, inside a folder by sorted path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from longdesk.engine.corpus.model import FileIssue, Problem
from longdesk.engine.corpus.options import SECRET_PATTERNS, LoadOptions

IGNORE_FILES = (".gitignore", ".ignore")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A regular file to read.

    Attributes:
        path: the real path to open (a link inside the root is resolved).
        name: display name relative to the dropped root (``proj/src/app.py``).
        source: the path as the user sees it.
        size: bytes, from ``stat``.
        secret: the name looks like a credentials file.
        forced: a ``force_include`` pattern names it: it is read whole even where a format
            rule would leave it out or reduce it (pictures written as text, see
            :mod:`engine.corpus.image_text`).
    """

    path: Path
    name: str
    source: str
    size: int
    secret: bool
    forced: bool = False


def display_name(name: str) -> str:
    """A name that is valid text: undecodable bytes of a file name become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class WalkError(Exception):
    """A path the user named does not exist."""


def _spec(lines: Sequence[str]) -> pathspec.GitIgnoreSpec | None:
    kept = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return pathspec.GitIgnoreSpec.from_lines(kept) if kept else None


def _read_spec(path: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        if not path.is_file() or path.stat().st_size > 1 << 20:
            return None
        return _spec(path.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:
        return None


def _global_excludes() -> pathspec.GitIgnoreSpec | None:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return _read_spec(Path(base) / "git" / "ignore")


class Rules:
    """The decisions shared by every folder of one load."""

    def __init__(self, options: LoadOptions) -> None:
        self.options = options
        self.defaults = _spec([e.pattern for e in options.default_excludes])
        self.forced = _spec(options.force_include)
        self.secrets = pathspec.GitIgnoreSpec.from_lines(SECRET_PATTERNS)
        self.global_spec = _global_excludes() if options.global_excludes else None

    def default_reason(self, rel: str) -> str | None:
        if self.defaults is None:
            return None
        hit = self.defaults.check_file(rel)
        if hit.include and hit.index is not None:
            rule = self.options.default_excludes[hit.index]
            return f"excluded by default: {rule.reason} ({rule.pattern})"
        return None

    def forced_in(self, rel: str) -> bool:
        return self.forced is not None and bool(self.forced.check_file(rel).include)

    def is_secret(self, name: str) -> bool:
        return bool(self.secrets.check_file(name).include)


# (folder relative to the root with a trailing slash, its rules, the file they came from)
_Chain = list[tuple[str, pathspec.GitIgnoreSpec, str]]


def _ignored(chain: _Chain, rel: str) -> str | None:
    """The ignore file that excludes ``rel`` (the deepest decision wins), or None."""
    verdict: str | None = None
    for base, spec, label in chain:
        if base and not rel.startswith(base):
            continue
        hit = spec.check_file(rel[len(base) :])
        if hit.include is True:
            verdict = f"ignored by {label}"
        elif hit.include is False:
            verdict = None
    return verdict


def _walk_folder(root: Path, rules: Rules, issues: list[FileIssue]) -> Iterator[Candidate]:
    root_real = os.path.realpath(root)
    top = root.name or root_real
    chain: _Chain = []
    if rules.options.respect_ignore_files:
        for spec, label in (
            (rules.global_spec, "git's per-user excludes"),
            (_read_spec(root / ".git" / "info" / "exclude"), ".git/info/exclude"),
        ):
            if spec is not None:
                chain.append(("", spec, label))
    yield from _walk_dir(root, root_real, "", top, chain, rules, issues)


def _walk_dir(
    folder: Path,
    root_real: str,
    rel_dir: str,
    top: str,
    chain: _Chain,
    rules: Rules,
    issues: list[FileIssue],
) -> Iterator[Candidate]:
    if rules.options.respect_ignore_files:
        chain = list(chain)
        for name in IGNORE_FILES:
            spec = _read_spec(folder / name)
            if spec is not None:
                chain.append((rel_dir, spec, f"{top}/{rel_dir}{name}"))
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        issues.append(FileIssue(str(folder), Problem.FAILED, f"cannot list folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        rel = rel_dir + entry.name
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError as exc:
            issues.append(FileIssue(entry.path, Problem.FAILED, f"cannot read: {exc.strerror or exc}"))
            continue
        probe = rel + "/" if is_dir else rel
        forced = rules.forced_in(probe)
        if not forced:
            reason = rules.default_reason(probe)
            if reason is None and is_dir and Path(entry.path, "pyvenv.cfg").is_file():
                reason = "excluded by default: virtual environment (pyvenv.cfg)"
            if reason is None and chain:
                reason = _ignored(chain, probe)
            if reason is not None:
                issues.append(FileIssue(entry.path + ("/" if is_dir else ""), Problem.SKIPPED, reason))
                continue
        if is_dir:
            yield from _walk_dir(Path(entry.path), root_real, probe, top, chain, rules, issues)
            continue
        candidate = _file_candidate(entry.path, f"{top}/{rel}", root_real, rules, issues, is_link, forced)
        if candidate is not None:
            yield candidate


def _file_candidate(
    path: str,
    name: str,
    root_real: str | None,
    rules: Rules,
    issues: list[FileIssue],
    is_link: bool,
    forced: bool,
) -> Candidate | None:
    real = os.path.realpath(path) if is_link else path
    if is_link and root_real is not None and os.path.commonpath([root_real, real]) != root_real:
        issues.append(FileIssue(path, Problem.SKIPPED, "symbolic link out of the folder (not followed)"))
        return None
    try:
        st = os.stat(real, follow_symlinks=False)  # noqa: PTH116 - str paths keep the walk fast
    except OSError as exc:
        why = "broken symbolic link" if is_link else f"cannot read: {exc.strerror or exc}"
        issues.append(FileIssue(path, Problem.SKIPPED if is_link else Problem.FAILED, why))
        return None
    if stat.S_ISDIR(st.st_mode):
        issues.append(FileIssue(path, Problem.SKIPPED, "symbolic link to a folder (not followed)"))
        return None
    if not stat.S_ISREG(st.st_mode):
        issues.append(FileIssue(path, Problem.SKIPPED, "not a regular file (FIFO, socket or device)"))
        return None
    base = path.rsplit("/", 1)[-1]
    secret = rules.is_secret(base)
    if secret and rules.options.skip_secrets:
        issues.append(FileIssue(path, Problem.SKIPPED, "looks like a secrets file (left out by option)"))
        return None
    max_bytes = rules.options.max_file_bytes
    if st.st_size > max_bytes:
        issues.append(
            FileIssue(
                path, Problem.SKIPPED, f"larger than the per-file cap ({st.st_size:,} > {max_bytes:,} bytes)"
            )
        )
        return None
    return Candidate(Path(real), display_name(name), path, st.st_size, secret, forced)


def walk_sources(paths: Sequence[Path], options: LoadOptions) -> tuple[list[Candidate], list[FileIssue]]:
    """Files to read and the entries left out, from the paths the user named.

    Raises:
        WalkError: a named path does not exist.
    """
    rules = Rules(options)
    files: list[Candidate] = []
    issues: list[FileIssue] = []
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if not os.path.lexists(path):
            raise WalkError(f"no such file or folder: {raw}")
        if path.is_dir() and not path.is_symlink():
            files.extend(_walk_folder(path, rules, issues))
        elif path.is_dir():
            files.extend(_walk_folder(Path(os.path.realpath(path)), rules, issues))
        else:
            forced = rules.forced_in(path.name)
            candidate = _file_candidate(str(path), path.name, None, rules, issues, path.is_symlink(), forced)
            if candidate is not None:
                files.append(candidate)
    return files, issues
