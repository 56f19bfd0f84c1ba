"""The table decision on generated pages: ruled grids come out as rows; frames and rules do not.

Every page is a real PDF page drawn with pymupdf the way TeX and office tools draw them: a
grid of lines, a grid of cell rectangles, a framed code box, a box with a title bar, rules
above and below a paragraph.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from longdesk.engine.corpus import paged

pymupdf = pytest.importorskip("pymupdf")

ROWS = (("Tool", "Speed", "Colour"), ("kettle", "fast", "blue"), ("oven", "slow", "red"))


def _text(page: object, x: float, y: float, text: str) -> None:
    page.insert_text((x, y), text, fontsize=10)  # type: ignore[attr-defined]


def _grid_lines(page: object) -> None:
    xs, ys = (60, 180, 300, 420), (100, 125, 150, 175)
    for y in ys:
        page.draw_line((xs[0], y), (xs[-1], y))  # type: ignore[attr-defined]
    for x in xs:
        page.draw_line((x, ys[0]), (x, ys[-1]))  # type: ignore[attr-defined]
    for r, row in enumerate(ROWS):
        for c, cell in enumerate(row):
            _text(page, xs[c] + 6, ys[r] + 17, cell)


def _grid_cells(page: object) -> None:
    """Each cell its own rectangle, as office tools draw tables."""
    for r, row in enumerate(ROWS):
        for c, cell in enumerate(row):
            rect = pymupdf.Rect(60 + 120 * c, 100 + 25 * r, 180 + 120 * c, 125 + 25 * r)
            page.draw_rect(rect)  # type: ignore[attr-defined]
            _text(page, rect.x0 + 6, rect.y0 + 17, cell)


def _code_frame(page: object) -> None:
    page.draw_rect(pymupdf.Rect(60, 100, 500, 220))  # type: ignore[attr-defined]
    for i, line in enumerate(("\\begin{tabular}{ll}", "kettle & blue \\\\", "\\end{tabular}")):
        _text(page, 70, 120 + 18 * i, line)


def _title_box(page: object) -> None:
    page.draw_rect(pymupdf.Rect(60, 100, 500, 240))  # type: ignore[attr-defined]
    page.draw_line((60, 125), (500, 125))  # type: ignore[attr-defined]
    _text(page, 70, 117, "Example 3: a framed example with a title")
    _text(page, 70, 145, "Tool Speed Colour kettle fast blue")


def _rules(page: object) -> None:
    page.draw_line((60, 90), (500, 90))  # type: ignore[attr-defined]
    _text(page, 60, 110, "Tool Speed Colour: the kettle is fast and blue, the oven slow.")
    page.draw_line((60, 120), (500, 120))  # type: ignore[attr-defined]
    page.draw_line((60, 123), (500, 123))  # type: ignore[attr-defined]


def _pdf(tmp_path: Path, draw: object) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    draw(page)  # type: ignore[operator]
    path = tmp_path / "page.pdf"
    doc.save(path)
    doc.close()
    return path


def _decision_and_text(path: Path) -> tuple[bool, str]:
    with pymupdf.open(path) as doc:
        grid = paged.ruled_grid(doc[0].get_cdrawings())
    result = paged.extract(str(path), "pdf")
    assert result["status"] == "ok"
    return grid, result["segments"][0][4]


@pytest.mark.parametrize("draw", [_grid_lines, _grid_cells], ids=["grid-of-lines", "grid-of-cells"])
def test_a_ruled_table_comes_out_as_rows(tmp_path: Path, draw: object) -> None:
    grid, text = _decision_and_text(_pdf(tmp_path, draw))
    assert grid
    lines = text.splitlines()
    assert "| Tool | Speed | Colour |" in lines
    assert "| kettle | fast | blue |" in lines
    assert "| oven | slow | red |" in lines


@pytest.mark.parametrize("draw", [_code_frame, _title_box, _rules], ids=["code-frame", "title-box", "rules"])
def test_frames_boxes_and_rules_are_no_table(tmp_path: Path, draw: object) -> None:
    grid, text = _decision_and_text(_pdf(tmp_path, draw))
    assert not grid  # the table finder is not even asked
    assert "|" not in text
    assert "kettle" in text


def test_the_page_without_tables_reads_as_pymupdf_reads_it(tmp_path: Path) -> None:
    path = _pdf(tmp_path, _code_frame)
    with pymupdf.open(path) as doc:
        plain = doc[0].get_text()
    assert paged.extract(str(path), "pdf")["segments"][0][4] == plain


def test_lone_surrogates_from_a_table_cell_become_replacement_characters() -> None:
    # encguide.pdf (TeX Live) p. 29: a cell of its encoding table comes back as '\ud80c'.
    notes: list[str] = []
    text = paged._cap("| ´02x | \ud80c | \uf6de |\n", 1000, "page 29", notes)
    assert text == "| ´02x | \ufffd | \uf6de |\n"
    assert text.encode("utf-8")
