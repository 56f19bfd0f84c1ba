"""What the corpus loader reads and leaves out: caps, default excludes and secrets, as options.

Every default exclude carries the reason that is shown to the user when it applies, and every
one of them can be switched off (``LoadOptions(default_excludes=...)``) or overridden for
single paths (``LoadOptions(force_include=...)``, gitignore-style patterns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longdesk.engine.isolation import Limits


@dataclass(frozen=True, slots=True)
class Exclude:
    """A default exclude: a gitignore-style pattern and why it is left out."""

    pattern: str
    reason: str


def _group(patterns: str, reason: str) -> tuple[Exclude, ...]:
    return tuple(Exclude(p, reason) for p in patterns.split())


DEFAULT_EXCLUDES: tuple[Exclude, ...] = (
    *_group(".git/ .hg/ .svn/ .bzr/ _darcs/ CVS/", "version-control data"),
    *_group(".venv/ venv/ .virtualenv/ .conda/ site-packages/", "virtual environment"),
    *_group("node_modules/ bower_components/ jspm_packages/ vendor/bundle/", "installed dependencies"),
    *_group(
        "__pycache__/ .mypy_cache/ .pytest_cache/ .ruff_cache/ .tox/ .nox/ .gradle/ .next/ .nuxt/ "
        ".parcel-cache/ .cache/ .ipynb_checkpoints/ *.egg-info/",
        "tool cache",
    ),
    *_group(
        "build/ dist/ target/ _build/ cmake-build-*/ .eggs/ *.pyc *.pyo *.o *.so *.class", "build output"
    ),
    *_group(".idea/ .vscode/ .DS_Store Thumbs.db", "editor or system file"),
    *_group(
        "package-lock.json yarn.lock pnpm-lock.yaml poetry.lock Pipfile.lock Cargo.lock composer.lock "
        "Gemfile.lock uv.lock go.sum bun.lockb *.lock",
        "lock file",
    ),
    *_group("*.min.js *.min.css *.min.mjs *.bundle.js *.js.map *.css.map", "minified bundle or source map"),
)

# Names that usually hold credentials: read (when text) but flagged ``secret`` so that the hosted
# path can leave them out; ``LoadOptions(skip_secrets=True)`` leaves them out everywhere.
SECRET_PATTERNS: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_rsa.*",
    "id_dsa.*",
    "id_ecdsa.*",
    "id_ed25519.*",
    ".netrc",
    ".pgpass",
    ".pypirc",
    ".npmrc",
    ".htpasswd",
    "credentials",
    "credentials.json",
    "secrets.json",
    "secrets.yaml",
    "secrets.yml",
    "secrets.toml",
    "*.secret",
    "*.tfvars",
)


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Caps for reading archives in memory (zip bombs, tar bombs).

    Attributes:
        max_members: entries per archive.
        max_total_bytes: uncompressed bytes read from one archive.
        max_member_bytes: uncompressed bytes of one member.
        max_ratio: uncompressed / compressed, checked for members past ``ratio_floor_bytes``.
        ratio_floor_bytes: small members may compress well without being bombs.
    """

    max_members: int = 10_000
    max_total_bytes: int = 512 * 1024 * 1024
    max_member_bytes: int = 64 * 1024 * 1024
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How sources are read.

    Attributes:
        max_file_bytes: files (and archive members) larger than this are skipped.
        max_total_bytes: reading stops, with the rest listed, past this many source bytes.
        max_files: files per load, likewise.
        default_excludes: see ``DEFAULT_EXCLUDES``; pass ``()`` to read everything.
        force_include: gitignore-style patterns that override every exclude (defaults and
            ignore files), e.g. ``("build/", "*.lock")``.
        respect_ignore_files: honour ``.gitignore`` / ``.ignore`` files and ``.git/info/exclude``.
        global_excludes: also git's per-user excludes file (``$XDG_CONFIG_HOME/git/ignore``).
        skip_secrets: leave secrets files out instead of flagging them.
        read_archives: open ``.zip`` / ``.tar*`` files and read their members.
        archive_limits: caps for archives.
        parse_limits: wall-clock and memory limit of each isolated parse (PDF, EPUB, ...).
        max_chars_per_page: longer pages are cut (with a note) - a hostile page can expand to
            hundreds of millions of characters.
        tables: render tables found by pymupdf as rows (pages with vector graphics only).
        verses: ``None`` detects ``Book C:V`` verse texts, ``True``/``False`` forces it.
        parsers: child processes for isolated parsing; a paged document longer than
            ``split_pages_above`` pages is read by all of them at once, in page ranges.
        split_pages_above: see ``parsers``.
    """

    max_file_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 4 * 1024 * 1024 * 1024
    max_files: int = 200_000
    default_excludes: tuple[Exclude, ...] = DEFAULT_EXCLUDES
    force_include: tuple[str, ...] = ()
    respect_ignore_files: bool = True
    global_excludes: bool = True
    skip_secrets: bool = False
    read_archives: bool = True
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    parse_limits: Limits = field(default_factory=lambda: Limits(wall_s=120.0, memory_bytes=2 << 30))
    max_chars_per_page: int = 200_000
    tables: bool = True
    verses: bool | None = None
    parsers: int = 2
    split_pages_above: int = 300
