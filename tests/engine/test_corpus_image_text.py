"""Pictures written as text: an SVG is reduced to its words or left out with the reason; overridable."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import importlinter

from longdesk.engine.context.pack import pack
from longdesk.engine.corpus.load import LoadOptions, load_sources
from longdesk.engine.corpus.model import AnchorKind, Problem

# A real-world SVG shipped by a package of our dev environment (import-linter's favicon, drawn
# with Inkscape): path data and styles, no words. Read from the installed package, never copied.
REAL_SVG = Path(importlinter.__file__).parent / "ui" / "static" / "favicon.svg"

LABELLED_SVG = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100">
  <title>Harbour tide chart</title>
  <desc>High water at noon, low water at six.</desc>
  <style>.t { font: 12px sans-serif; }</style>
  <path d="M0 50 C 40 0, 60 100, 100 50 S 160 0, 200 50" stroke="blue" fill="none"/>
  <text x="10" y="90" class="t">high <tspan font-weight="bold">noon</tspan></text>
  <text x="150" y="90"></text>
</svg>
"""


def _project(root: Path) -> Path:
    (root / "static").mkdir(parents=True)
    shutil.copyfile(REAL_SVG, root / "static" / "logo.svg")
    (root / "static" / "chart.svg").write_text(LABELLED_SVG)
    (root / "static" / "icon.xpm").write_text(
        '/* XPM */\nstatic char *icon[] = {"2 2 1 1", "a c #fff", "aa", "aa"};\n'
    )
    (root / "app.py").write_text("print('harbour')\n")
    return root


def test_real_svg_is_left_out_with_the_reason(tmp_path: Path) -> None:
    assert REAL_SVG.stat().st_size > 2000
    corpus = load_sources([_project(tmp_path / "site")])
    names = [d.name for d in corpus.documents]
    assert "site/static/logo.svg" not in names
    reasons = {Path(i.source).name: (i.problem, i.reason) for i in corpus.issues}
    problem, reason = reasons["logo.svg"]
    assert problem is Problem.SKIPPED
    assert reason.startswith("image data as text (SVG drawing, no title, description or text")
    assert "force-include" in reason
    assert reasons["icon.xpm"][1].startswith("image data as text (XPM image")


def test_svg_with_words_is_reduced_to_them_at_their_lines(tmp_path: Path) -> None:
    corpus = load_sources([_project(tmp_path / "site")])
    chart = next(d for d in corpus.documents if d.name == "site/static/chart.svg")
    assert chart.text == (
        "title: Harbour tide chart\ndescription: High water at noon, low water at six.\ntext: high noon\n"
    )
    assert [(s.anchor.kind, s.anchor.start) for s in chart.segments] == [
        (AnchorKind.LINES, 3),
        (AnchorKind.LINES, 4),
        (AnchorKind.LINES, 7),
    ]
    assert any("only its title, description and text" in n for n in chart.notes)
    packed = pack(corpus, len, 100_000).corpus_text
    assert "C 40 0" not in packed  # no path data reaches the model


def test_force_include_reads_the_whole_drawing(tmp_path: Path) -> None:
    root = _project(tmp_path / "site")
    corpus = load_sources([root], options=LoadOptions(force_include=("*.svg",)))
    logo = next(d for d in corpus.documents if d.name == "site/static/logo.svg")
    assert "<svg" in logo.text
    chart = next(d for d in corpus.documents if d.name == "site/static/chart.svg")
    assert "C 40 0, 60 100" in chart.text


def test_svg_in_an_archive_follows_the_same_rule(tmp_path: Path) -> None:
    archive = tmp_path / "site.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(REAL_SVG, "static/logo.svg")
        zf.writestr("static/chart.svg", LABELLED_SVG)
    corpus = load_sources([archive])
    assert [d.name for d in corpus.documents] == ["site.zip!static/chart.svg"]
    assert any(i.source.endswith("logo.svg") and "image data as text" in i.reason for i in corpus.issues)
