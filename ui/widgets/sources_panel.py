"""The sources panel: drop files and folders, see every document with its exact tokens.

The tree has one group per source the user added and one for the files left out, each with
the reason. The model is lazy (``QAbstractItemModel`` over plain rows), so a codebase of
thousands of files is listed without building thousands of widgets on the GUI thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QStyle,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from longdesk.app.sessions import DocRecord

Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("Document", "Kind", "Extent", "Tokens", "Status")
# Columns a narrow panel hides first, so that the names stay readable (the tooltip keeps them).
HIDE_ORDER = (4, 1, 2)
# Columns are hidden until the Document column holds the longest name, or this share of the width.
NAME_SHARE = 0.7
MODEL_SUFFIX = ".gguf"
EXPAND_LIMIT = 200
# The roles ``SourcesModel.data`` answers (as ints: comparing enum members costs more).
_ROLES = frozenset(
    int(r.value)
    for r in (
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.CheckStateRole,
        Qt.ItemDataRole.ToolTipRole,
        Qt.ItemDataRole.TextAlignmentRole,
        Qt.ItemDataRole.UserRole,
    )
)


@dataclass(slots=True)
class _Group:
    title: str
    rows: list[DocRecord | _Issue] = field(default_factory=list)
    is_issues: bool = False
    # Aggregates, kept up to date by ``summarise`` (data() is called thousands of times).
    docs: int = 0
    included: int = 0
    included_tokens: int = 0

    def summarise(self) -> None:
        docs = [r for r in self.rows if isinstance(r, DocRecord)]
        self.docs = len(docs)
        self.included = sum(1 for d in docs if d.included)
        self.included_tokens = sum(d.tokens for d in docs if d.included)


@dataclass(frozen=True, slots=True)
class _Issue:
    name: str
    problem: str
    reason: str


def split_dropped(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(sources, models): GGUF files become the model, everything else a source."""
    sources: list[Path] = []
    models: list[Path] = []
    for p in paths:
        (models if p.suffix.lower() == MODEL_SUFFIX else sources).append(p)
    return sources, models


class SourcesModel(QAbstractItemModel):
    """Groups (sources, left-out files) of rows (documents or issues); documents are checkable.

    Signals:
        inclusion_changed(): a document was included or excluded.
        status_changed(): the Status texts changed (e.g. "read (restored from a snapshot)").
    """

    inclusion_changed = Signal()
    status_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.groups: list[_Group] = []
        self.status: dict[str, str] = {}

    # ----------------------------------------------------------------- filling
    def set_documents(
        self, documents: Sequence[DocRecord], issues: Sequence[tuple[str, str, str]], roots: Sequence[str]
    ) -> None:
        """Replace the contents: documents grouped under the root they came from."""
        self.beginResetModel()
        groups: dict[str, _Group] = {}
        for root in roots:
            name = Path(root).name or root
            groups.setdefault(name, _Group(name))
        files = _Group("Files")
        for doc in documents:
            head = doc.name.split("/", 1)[0] if "/" in doc.name else ""
            group = groups.setdefault(head, _Group(head)) if head else files
            group.rows.append(doc)
        groups["\0files"] = files
        self.groups = [g for g in groups.values() if g.rows]
        for g in self.groups:
            g.summarise()
        if issues:
            rows: list[DocRecord | _Issue] = [_Issue(n, p, r) for n, p, r in issues]
            self.groups.append(_Group(f"Left out ({len(issues)})", rows, is_issues=True))
        self.endResetModel()

    def update_documents(self, documents: Sequence[DocRecord]) -> bool:
        """New figures for the same documents in the same order (token counts after counting).

        Changes the rows in place and repaints the tokens column, instead of a reset that makes
        the view and its filter proxy walk every row again on the GUI thread.

        Returns:
            False when the documents are not the ones listed (then call ``set_documents``).
        """
        rows = [(gi, ri) for gi, g in enumerate(self.groups) if not g.is_issues for ri in range(len(g.rows))]
        if len(rows) != len(documents):
            return False
        for (gi, ri), doc in zip(rows, documents, strict=True):
            old = self.groups[gi].rows[ri]
            if not isinstance(old, DocRecord) or old.doc_id != doc.doc_id:
                return False
        for (gi, ri), doc in zip(rows, documents, strict=True):
            self.groups[gi].rows[ri] = doc
        for g in self.groups:
            g.summarise()
        self._changed_all(3)
        if self.groups:
            self.dataChanged.emit(self.index(0, 3), self.index(len(self.groups) - 1, 3))
        return True

    def documents(self) -> list[DocRecord]:
        return [r for g in self.groups if not g.is_issues for r in g.rows if isinstance(r, DocRecord)]

    def excluded_names(self) -> set[str]:
        return {d.name for d in self.documents() if not d.included}

    def set_status(self, status: dict[str, str]) -> None:
        self.status = status
        self._changed_all(4)
        self.status_changed.emit()

    def _changed_all(self, column: int) -> None:
        for gi, g in enumerate(self.groups):
            parent = self.index(gi, 0)
            if g.rows:
                self.dataChanged.emit(
                    self.index(0, column, parent), self.index(len(g.rows) - 1, column, parent)
                )

    # ----------------------------------------------------------------- Qt model
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not parent.isValid():
            if 0 <= row < len(self.groups):
                return self.createIndex(row, column, None)
            return QModelIndex()
        group = self.groups[parent.row()]
        if 0 <= row < len(group.rows):
            return self.createIndex(row, column, group)
        return QModelIndex()

    def parent(self, child: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not child.isValid():
            return QModelIndex()
        group = child.internalPointer()
        if group is None:
            return QModelIndex()
        return self.createIndex(self.groups.index(group), 0, None)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self.groups)
        if parent.internalPointer() is None and parent.column() == 0:
            return len(self.groups[parent.row()].rows)
        return 0

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: ARG002, B008
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole and section == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def row_at(self, index: Index) -> DocRecord | _Issue | _Group | None:
        if not index.isValid():
            return None
        group = index.internalPointer()
        if group is None:
            return self.groups[index.row()]
        assert isinstance(group, _Group)
        return group.rows[index.row()]

    def data(self, index: Index, role: int = 0) -> Any:
        # A view asks ~8 roles per cell on every paint; most are not ours: answer those first.
        if role not in _ROLES:
            return None
        item = self.row_at(index)
        col = index.column()
        if item is None:
            return None
        if isinstance(item, _Group):
            return self._group_data(item, col, role)
        if isinstance(item, _Issue):
            if role == Qt.ItemDataRole.DisplayRole:
                return f"{item.name} — {item.problem}: {item.reason}" if col == 0 else ""
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{item.name}\n{item.problem}: {item.reason}"
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            status = "excluded" if not item.included else self.status.get(item.doc_id, "in context")
            tokens = f"{item.tokens:,}" if item.tokens else "…"
            return (item.name.split("/", 1)[-1], item.kind, item.extent, tokens, status)[col]
        if role == Qt.ItemDataRole.CheckStateRole and col == 0:
            return Qt.CheckState.Checked if item.included else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ToolTipRole:
            # The full path, and every column's figure (narrow panels hide some columns).
            status = "excluded" if not item.included else self.status.get(item.doc_id, "in context")
            tokens = f"{item.tokens:,} tokens" if item.tokens else "tokens not counted yet"
            return f"{item.source}\n{item.doc_id} · {item.kind} · {item.extent} · {tokens} · {status}"
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return f"{item.name} {item.kind} {item.source}"
        return None

    def _group_data(self, group: _Group, col: int, role: int) -> Any:
        if group.is_issues:
            if role == Qt.ItemDataRole.DisplayRole and col == 0:
                return group.title
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return group.title
            if col == 2:
                return f"{group.docs} doc{'s' if group.docs != 1 else ''}"
            if col == 3:
                return f"{group.included_tokens:,}"
            return ""
        if role == Qt.ItemDataRole.CheckStateRole and col == 0:
            if group.included == group.docs:
                return Qt.CheckState.Checked
            return Qt.CheckState.Unchecked if group.included == 0 else Qt.CheckState.PartiallyChecked
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and col == 0:
            return group.title
        return None

    def longest(self, column: int, count: int = 8) -> list[str]:
        """The ``count`` longest texts of a column (by characters), to size it without asking
        the view to measure every row."""
        texts: set[str] = set()
        for g in self.groups:
            if g.is_issues:
                continue
            if column == 0:
                texts.add(g.title)
            for r in g.rows:
                if isinstance(r, DocRecord):
                    texts.add((r.name.split("/", 1)[-1], r.kind, r.extent, f"{r.tokens:,}")[column])
        return sorted(texts, key=len, reverse=True)[:count]

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        item = self.row_at(index)
        if index.column() == 0 and (
            isinstance(item, DocRecord) or (isinstance(item, _Group) and not item.is_issues)
        ):
            base |= Qt.ItemFlag.ItemIsUserCheckable
        return base

    def setData(self, index: Index, value: Any, role: int = 0) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or index.column() != 0:
            return False
        item = self.row_at(index)
        checked = Qt.CheckState(value) == Qt.CheckState.Checked
        if isinstance(item, DocRecord):
            self.set_included([item.doc_id], checked)
            return True
        if isinstance(item, _Group) and not item.is_issues:
            self.set_included([r.doc_id for r in item.rows if isinstance(r, DocRecord)], checked)
            return True
        return False

    def set_included(self, doc_ids: Iterable[str], included: bool) -> None:
        wanted = set(doc_ids)
        for g in self.groups:
            g.rows = [
                dataclasses.replace(r, included=included)
                if isinstance(r, DocRecord) and r.doc_id in wanted
                else r
                for r in g.rows
            ]
            g.summarise()
        self._changed_all(0)
        self._changed_all(4)
        top = len(self.groups) - 1
        if top >= 0:
            self.dataChanged.emit(self.index(0, 0), self.index(top, 4))
        self.inclusion_changed.emit()


class SourcesPanel(QWidget):
    """Drop target, search field, document tree and a one-line summary.

    Signals:
        sources_dropped(list): paths of files and folders to add.
        model_dropped(object): a GGUF file Path to use as the model.
        add_files_requested(), add_folder_requested(): the buttons.
        inclusion_changed(): a document was included or excluded.
    """

    sources_dropped = Signal(list)
    model_dropped = Signal(object)
    add_files_requested = Signal()
    add_folder_requested = Signal()
    inclusion_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourcesPanel")
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        head = QHBoxLayout()
        title = QLabel("<b>Sources</b>", self)
        self.add_files_button = QPushButton("Add files…", self)
        self.add_folder_button = QPushButton("Add folder…", self)
        self.add_files_button.clicked.connect(self.add_files_requested)
        self.add_folder_button.clicked.connect(self.add_folder_requested)
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.add_files_button)
        head.addWidget(self.add_folder_button)
        layout.addLayout(head)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter documents")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.model = SourcesModel(self)
        self.model.inclusion_changed.connect(self.inclusion_changed)
        self.model.status_changed.connect(self.on_model_status_changed)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setRecursiveFilteringEnabled(True)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(0)
        self.search.textChanged.connect(self.on_search_text_changed)
        self.tree = QTreeView(self)
        self.tree.setObjectName("sourcesTree")
        # The view shows the model itself, and the filter proxy only while a filter is typed:
        # through a proxy each painted cell costs two calls into Python instead of one.
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._size_columns()
        self.tree.viewport().installEventFilter(self)
        layout.addWidget(self.tree, 1)
        self.empty_hint = QLabel(
            "Drop books, documents, folders or a codebase here.\nDrop a .gguf file to use it as the model.",
            self,
        )
        self.empty_hint.setObjectName("dropHint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        layout.addWidget(self.empty_hint)
        self.summary = QLabel("", self)
        self.summary.setObjectName("sourcesSummary")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self._refresh_empty()

    def _size_columns(self) -> None:
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        self._measure()
        self._fit_columns()

    def _measure(self) -> None:
        """Natural widths of Kind, Extent, Tokens and Status, and the room the names need.

        From the longest texts (not ResizeToContents, which asks every row for its size on
        each change: seconds on the GUI thread for a codebase of thousands of files).
        """
        metrics = self.tree.fontMetrics()
        pad = 2 * self.tree.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin) + 12
        samples = {
            1: ["Kind"],
            2: ["Extent"],
            3: ["Tokens", "1,234,567"],
            4: ["Status", "in context", "excluded", "not sent"],
        }
        for col in (1, 2, 3):
            samples[col] += self.model.longest(col)
        samples[4] += sorted(set(self.model.status.values()))  # a few texts, however many rows
        self._natural = {
            col: max(metrics.horizontalAdvance(t) for t in texts) + pad for col, texts in samples.items()
        }
        indent = 2 * self.tree.indentation() + self.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth)
        names = self.model.longest(0)
        self._name_need = max((metrics.horizontalAdvance(n) for n in names), default=0) + indent + 8

    def _fit_columns(self) -> None:
        """The Document column takes the width the other columns leave; when the names would be
        cut short, Status, then Kind, then Extent are hidden (each row's tooltip gives them all)."""
        header = self.tree.header()
        width = self.tree.viewport().width()
        natural = self._natural
        shown = set(natural)
        for col in HIDE_ORDER:
            if width - sum(natural[c] for c in shown) >= min(self._name_need, int(width * NAME_SHARE)):
                break
            shown.discard(col)
        for col, w in natural.items():
            header.setSectionHidden(col, col not in shown)
            header.resizeSection(col, w)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The tree's viewport changes width with the panel, and when its scroll bar comes or goes.
        if watched is self.tree.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return super().eventFilter(watched, event)

    def _shown(self, source: QModelIndex) -> QModelIndex:
        """``source`` as the view knows it (through the proxy while filtering)."""
        return self.proxy.mapFromSource(source) if self.tree.model() is self.proxy else source

    def _expand_small_groups(self) -> None:
        # Expand small lists only: expanding thousands of rows is work the user did not ask for.
        for gi, group in enumerate(self.model.groups):
            if len(group.rows) <= EXPAND_LIMIT:
                self.tree.expand(self._shown(self.model.index(gi, 0)))

    def set_documents(
        self, documents: Sequence[DocRecord], issues: Sequence[tuple[str, str, str]], roots: Sequence[str]
    ) -> None:
        self.model.set_documents(documents, issues, roots)
        self._measure()
        self._fit_columns()
        self._expand_small_groups()
        self._span_issue_rows()
        self._refresh_empty()

    def update_documents(self, documents: Sequence[DocRecord], issues: Sequence[tuple[str, str, str]],
                         roots: Sequence[str]) -> None:  # fmt: skip
        """New token counts for the listed documents: in place when the list is unchanged."""
        if not self.model.update_documents(documents):
            self.set_documents(documents, issues, roots)
        else:
            self._measure()  # the token counts may be wider now
            self._fit_columns()

    def _span_issue_rows(self) -> None:
        """Left-out files show their reason across the whole row."""
        for gi, group in enumerate(self.model.groups):
            if not group.is_issues:
                continue
            parent = self._shown(self.model.index(gi, 0))
            for row in range(self.tree.model().rowCount(parent)):
                self.tree.setFirstColumnSpanned(row, parent, True)

    def _refresh_empty(self) -> None:
        empty = not self.model.groups
        self.tree.setVisible(not empty)
        self.empty_hint.setVisible(empty)

    @Slot()
    def on_model_status_changed(self) -> None:
        self._measure()  # a longer status needs a wider column
        self._fit_columns()

    @Slot(str)
    def on_search_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        shown = self.proxy if text else self.model
        if self.tree.model() is not shown:
            self.tree.setModel(shown)
            self._size_columns()
            if not text:
                self._expand_small_groups()
        self._span_issue_rows()
        if text:
            self.tree.expandAll()

    # ----------------------------------------------------------------- drag and drop
    @staticmethod
    def _paths(event: QDropEvent | QDragEnterEvent | QDragMoveEvent) -> list[Path]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._paths(event)
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.handle_paths(paths)

    def handle_paths(self, paths: Sequence[Path]) -> None:
        """What a drop does: GGUF files become the model, the rest are added as sources."""
        sources, models = split_dropped(paths)
        if models:
            self.model_dropped.emit(models[-1])
        if sources:
            self.sources_dropped.emit(list(sources))
