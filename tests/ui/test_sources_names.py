"""Sources shows every name readable: a real codebase and a real book, at the window's first size
on a small screen and when the panel is narrow, in the light and the dark theme.

The book is the Debian maintainers' guide as EPUB and PDF (package ``debmake-doc``, fetched at
run time); the folders are two of this repository's packages (``engine/backends``, ``engine/dsv4``). One
window reads them once and is checked in both themes; the light-theme picture (in the README)
waits for the model and the counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from longdesk.app.paths import Paths
from longdesk.ui.main_window import MainWindow
from longdesk.ui.theme import ThemeMode
from tests.ui.debian_docs import debian_package
from tests.ui.helpers import ready_shot, shot

pytestmark = [pytest.mark.gui, pytest.mark.model, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _cut_names(window: MainWindow) -> list[str]:
    """Names in the Document column that do not fit their cell (so are shown elided)."""
    tree = window.sources.tree
    model = window.sources.model
    metrics = tree.fontMetrics()
    cut = []
    for gi, group in enumerate(model.groups):
        if group.is_issues:
            continue
        parent = model.index(gi, 0)
        for ri in range(min(len(group.rows), 40)):
            index = model.index(ri, 0, parent)
            text = model.data(index, Qt.ItemDataRole.DisplayRole)
            cell = tree.visualRect(index)
            check = tree.style().pixelMetric(tree.style().PixelMetric.PM_IndicatorWidth) + 8
            if metrics.horizontalAdvance(text) > cell.width() - check:
                cut.append(text)
    return cut


def test_names_of_a_real_folder_and_a_real_book_are_readable(
    qtbot: QtBot, ui_home: Path, artifacts: Path
) -> None:
    docs = debian_package("debmake-doc") / "usr" / "share" / "doc" / "debmake-doc"
    book = docs / "debmake-doc.en.epub"
    pdf = docs / "debmake-doc.en.pdf"
    assert book.is_file()
    window = MainWindow(Paths.default(), restore_last_session=False)
    qtbot.addWidget(window)
    window.resize(1216, 760)  # the first size on a 1280 x 800 screen
    window.show()
    qtbot.waitExposed(window)
    window.set_theme(ThemeMode.LIGHT)
    with qtbot.waitSignal(window.model_loaded, timeout=180_000):
        window.start_background_work()
    with qtbot.waitSignal(window.corpus_planned, timeout=300_000):
        window.add_paths([ROOT / "engine" / "backends", ROOT / "engine" / "dsv4", book, pdf])
    names = {d.name for d in window.session.documents}
    assert {"debmake-doc.en.epub", "debmake-doc.en.pdf", "backends/hosted_presets.py"} <= names
    assert "dsv4/reference/__init__.py" in names
    qtbot.waitUntil(window.sources.tree.isVisible)
    QApplication.processEvents()
    wide = window.splitter.sizes()
    header = window.sources.tree.header()
    # One window, one reading of the book, both themes: the names' widths are the theme's to keep.
    for theme in (ThemeMode.LIGHT, ThemeMode.DARK):
        window.set_theme(theme)
        window.splitter.setSizes(wide)
        QApplication.processEvents()
        if theme is ThemeMode.LIGHT:  # the README's picture: the window at rest, counted
            ready_shot(qtbot, window, artifacts, f"sources-real-names-{theme.value}.png")
        else:
            shot(window, artifacts, f"sources-real-names-{theme.value}.png")
        assert _cut_names(window) == [], theme
        assert all(not header.isSectionHidden(c) for c in range(1, 4)), theme  # room for Kind, Extent, Tokens

        # A narrow panel (the source viewer open beside): Status and Kind make room for the names,
        # the Document column is the widest, and a name longer than it elides in the middle.
        window.splitter.setSizes([330, 500, 380])
        QApplication.processEvents()
        assert header.isSectionHidden(4), theme
        assert header.isSectionHidden(1), theme
        assert not header.isSectionHidden(3), theme  # tokens stay: they are what the budget is made of
        viewport = window.sources.tree.viewport().width()
        widths = [header.sectionSize(c) for c in range(5) if not header.isSectionHidden(c)]
        assert header.sectionSize(0) == max(widths) >= 0.6 * viewport, theme
        assert window.sources.tree.textElideMode() == Qt.TextElideMode.ElideMiddle
        shot(window, artifacts, f"sources-narrow-{theme.value}.png")
    first = window.sources.model.index(0, 0, window.sources.model.index(0, 0))
    tip = window.sources.model.data(first, Qt.ItemDataRole.ToolTipRole)
    assert str(ROOT / "engine" / "backends") in tip  # the full path
    assert "tokens" in tip
    window.close()


def test_status_column_widens_for_a_longer_status(qtbot: QtBot) -> None:
    from longdesk.app.sessions import DocRecord
    from longdesk.ui.widgets.sources_panel import SourcesPanel

    panel = SourcesPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 400)
    panel.show()
    qtbot.waitExposed(panel)
    doc = DocRecord("D1", "notes/tides.md", "/tmp/notes/tides.md", "markdown", "3 lines", 41, True)
    panel.set_documents([doc], [], ["/tmp/notes"])
    panel.model.set_status({"D1": "read (snapshot)"})
    QApplication.processEvents()
    header = panel.tree.header()
    assert not header.isSectionHidden(4)
    assert header.sectionSize(4) >= panel.tree.fontMetrics().horizontalAdvance("read (snapshot)")
