"""The consent dialog: what will leave this machine, where it goes, and what it may cost.

A view of ``app.consent.ConsentRequest`` (the Qt-free model shared with the CLI prompt): the
documents that will be sent with their exact token counts, the secret-looking files left out,
the endpoint and model, the budget and the estimated cost of the first question. Send is only
offered when the request fits; Cancel (the default button, and Esc) sends nothing. When the
local model could not serve, the ``FallbackOffer`` says why at the top.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from longdesk.app.consent import ConsentRequest, FallbackOffer

_SECRET_WHY = "looks like a secret (keys, credentials): not sent"


class ConsentDialog(QDialog):
    """Asks before documents are sent to a hosted endpoint; ``accepted`` means Send."""

    def __init__(
        self, request: ConsentRequest, offer: FallbackOffer | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("consentDialog")
        self.setWindowTitle(f"Send to {request.host}?")
        self.setMinimumWidth(680)
        self.request = request
        layout = QVBoxLayout(self)
        self.offer_label = QLabel(offer.message() if offer else "", self)
        self.offer_label.setObjectName("consentOffer")
        self.offer_label.setWordWrap(True)
        self.offer_label.setVisible(offer is not None)
        layout.addWidget(self.offer_label)
        self.where_label = QLabel(
            f"<b>Nothing has been sent yet.</b> Asking sends the documents below to "
            f"<b>{escape(request.host)}</b> ({escape(request.endpoint)}), "
            f"model <b>{escape(request.model)}</b>, "
            "with every question of this session.",
            self,
        )
        self.where_label.setWordWrap(True)
        self.where_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.where_label)

        self.documents = QTreeWidget(self)
        self.documents.setObjectName("consentDocuments")
        self.documents.setColumnCount(3)
        self.documents.setHeaderLabels(["Document", "Tokens", "Id"])
        self.documents.setRootIsDecorated(True)
        self.documents.setUniformRowHeights(True)
        header = self.documents.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        sent = QTreeWidgetItem(self.documents, [f"Sent: {len(request.included)} document(s)", "", ""])
        for item in request.included:
            row = QTreeWidgetItem(sent, [item.name, f"{item.tokens:,}", item.doc_id])
            row.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
        sent.setExpanded(True)
        self.left_out_group: QTreeWidgetItem | None = None
        if request.left_out:
            group = QTreeWidgetItem(self.documents, [f"Left out: {len(request.left_out)} file(s)", "", ""])
            for item in request.left_out:
                why = _SECRET_WHY if item.secret else "left out by choice"
                row = QTreeWidgetItem(group, [f"{item.name} — {why}", f"{item.tokens:,}", item.doc_id])
                row.setToolTip(0, f"{item.name}: {why}")
                row.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
            group.setExpanded(True)
            self.left_out_group = group
        layout.addWidget(self.documents, 1)

        self.totals_label = QLabel(self._totals_text(), self)
        self.totals_label.setObjectName("consentTotals")
        self.totals_label.setWordWrap(True)
        self.totals_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.totals_label)

        buttons = QDialogButtonBox(self)
        self.send_button = QPushButton(f"Send to {request.host}", self)
        self.send_button.setObjectName("consentSend")
        self.send_button.setEnabled(request.fits and bool(request.included))
        self.cancel_button = QPushButton("Cancel — send nothing", self)
        self.cancel_button.setObjectName("consentCancel")
        buttons.addButton(self.send_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.cancel_button.setDefault(True)
        self.cancel_button.setAutoDefault(True)
        self.send_button.setAutoDefault(False)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.cancel_button.setFocus()

    def _totals_text(self) -> str:
        r = self.request
        lines = r.totals_lines()
        if not r.fits:
            lines.insert(0, "Does not fit: nothing can be sent.")
        if not r.included:
            lines.insert(0, "Every document is left out: there is nothing to send.")
        return "\n".join(lines)

    def document_names(self) -> list[str]:
        """The names of the documents that will be sent, as listed."""
        sent = self.documents.topLevelItem(0)
        if sent is None:
            return []
        return [child.text(0) for i in range(sent.childCount()) if (child := sent.child(i)) is not None]
