"""Real PDFs through the pipeline: TeX Live manuals from Debian, against plain pymupdf and poppler.

Fetches its inputs at run time (never committed): ``apt-get download`` of Debian documentation
packages (default ``texlive-latex-base-doc texlive-latex-recommended-doc``: a few hundred real
LaTeX manuals with ruled boxes, framed code and tables) and ``dpkg-deb -x`` into a cache folder
(``~/.cache/longdesk/debian-docs``; ``--cache`` to change it). Then, side by side in one run:

    plain     - pymupdf.open + page.get_text() of every page, in this process, one thread;
    pipeline  - load_sources() on the files: read, hash, isolated parse in child processes
                (start-up included), table decision (``paged.ruled_grid``), anchors; no cache;
    tables    - how many pages the table finder ran on, how many held a table, and how many
                the old pre-check ("the page draws paths") would have sent to it;
    pdftotext - poppler's text of every page against the pipeline's, word for word.

Prints pages/s, the ratio to plain pymupdf and the text comparison. Needs apt-get and
dpkg-deb (Debian/Ubuntu) and poppler-utils for pdftotext.
Run: .venv/bin/python -m bench.corpus_pdf_real [--packages P ...] [--files N]
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import time
from pathlib import Path

from longdesk.engine.corpus import paged
from longdesk.engine.corpus.load import LoadOptions, load_sources
from longdesk.engine.corpus.model import AnchorKind

PACKAGES = ("texlive-latex-base-doc", "texlive-latex-recommended-doc")
CACHE = Path.home() / ".cache" / "longdesk" / "debian-docs"
_WORD = re.compile(r"\w+")


def fetch(packages: tuple[str, ...], cache: Path) -> list[Path]:
    """The PDFs of ``packages``, downloaded and unpacked into ``cache`` once."""
    debs = cache / "debs"
    tree = cache / "tree"
    debs.mkdir(parents=True, exist_ok=True)
    for package in packages:
        marker = cache / f"{package}.unpacked"
        if marker.exists():
            continue
        if not list(debs.glob(f"{package}_*.deb")):
            print(f"apt-get download {package} ...", flush=True)
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        for deb in debs.glob(f"{package}_*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        marker.write_text("ok\n", encoding="utf-8")
    return sorted(p for p in tree.rglob("*.pdf") if p.is_file() and not p.is_symlink())


def plain(files: list[Path]) -> tuple[int, float, dict[tuple[str, int], str]]:
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    texts: dict[tuple[str, int], str] = {}
    t0 = time.perf_counter()
    pages = 0
    for path in files:
        try:
            doc = pymupdf.open(path)
        except Exception:  # noqa: BLE001 - the pipeline reports these; plain just skips
            continue
        for i, page in enumerate(doc):
            texts[(str(path), i + 1)] = page.get_text()
            pages += 1
        doc.close()
    return pages, time.perf_counter() - t0, texts


def table_census(files: list[Path]) -> tuple[int, int, int]:
    """(pages the old pre-check sent to the table finder, pages now sent, pages with a table)."""
    import pymupdf

    old = new = found = 0
    for path in files:
        try:
            doc = pymupdf.open(path)
        except Exception:  # noqa: BLE001
            continue
        for page in doc:
            if not paged._may_have_tables(page):
                continue
            drawings = page.get_cdrawings()
            old += bool(drawings)
            if paged.ruled_grid(drawings):
                new += 1
                found += bool(page.find_tables().tables)
        doc.close()
    return old, new, found


def poppler_pages(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-q", str(path), "-"], capture_output=True, check=False)
    return out.stdout.decode("utf-8", "replace").split("\f")


def word_agreement(a: str, b: str) -> float:
    """Share of words the two texts have in common (multiset), over the larger word count."""
    wa, wb = collections.Counter(_WORD.findall(a.lower())), collections.Counter(_WORD.findall(b.lower()))
    total = max(sum(wa.values()), sum(wb.values()))
    return 1.0 if total == 0 else sum((wa & wb).values()) / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--packages", nargs="+", default=list(PACKAGES))
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--files", type=int, default=0, help="only the first N PDFs (0: all)")
    ap.add_argument("--parsers", type=int, default=2)
    args = ap.parse_args()
    files = fetch(tuple(args.packages), args.cache)
    if args.files:
        files = files[: args.files]
    size = sum(p.stat().st_size for p in files)
    print(f"{len(files)} PDFs, {size / 1e6:.0f} MB, from {' '.join(args.packages)}")

    pages, plain_s, plain_texts = plain(files)
    t0 = time.perf_counter()
    corpus = load_sources(files, options=LoadOptions(parsers=args.parsers))
    pipe_s = time.perf_counter() - t0
    pipe_pages = sum(1 for d in corpus.documents for s in d.segments if s.anchor.kind is AnchorKind.PAGE)
    print(f"plain pymupdf      : {plain_s:6.1f} s  {pages / plain_s:6.0f} pages/s  ({pages:,} pages)")
    print(
        f"pipeline, {args.parsers} parsers: {pipe_s:6.1f} s  {pages / pipe_s:6.0f} pages/s  "
        f"{pipe_s / plain_s:.2f}x plain  ({pipe_pages:,} pages with text, {len(corpus.documents)} documents)"
    )
    print("targets: >= 300 pages/s and <= 2x plain")

    old, new, found = table_census(files)
    table_rows = sum(
        1 for d in corpus.documents for s in d.segments if re.search(r"^\| .* \|$", s.text, re.MULTILINE)
    )
    print(
        f"table finder: ran on {new} pages (the old 'draws paths' check: {old}); "
        f"{found} held a table; {table_rows} pages come out with table rows"
    )

    if shutil.which("pdftotext") is None:
        print("pdftotext: not installed (apt-get install poppler-utils); comparison skipped")
        return
    by_path = {d.source: d for d in corpus.documents}
    scores: list[float] = []
    plain_scores: list[float] = []
    low: list[tuple[float, str, int]] = []
    for path in files:
        doc = by_path.get(str(path))
        if doc is None:
            continue
        theirs = poppler_pages(path)
        ours = {s.anchor.start: s.text for s in doc.segments if s.anchor.kind is AnchorKind.PAGE}
        for number in range(1, len(theirs)):
            text = ours.get(number, "")
            if not text.strip() and not theirs[number - 1].strip():
                continue
            score = word_agreement(text, theirs[number - 1])
            scores.append(score)
            plain_scores.append(word_agreement(plain_texts.get((str(path), number), ""), theirs[number - 1]))
            if score < 0.9:
                low.append((score, path.name, number))
    scores.sort()
    mean = sum(scores) / len(scores)
    print(
        f"pdftotext: {len(scores):,} pages compared; words in common: mean {mean:.1%}, "
        f"median {scores[len(scores) // 2]:.1%}; pages under 90%: {len(low)} "
        f"(plain pymupdf against pdftotext: mean {sum(plain_scores) / len(plain_scores):.1%})"
    )
    for score, name, number in sorted(low)[:8]:
        print(f"  {score:.0%}  {name} p. {number}")


if __name__ == "__main__":
    main()
