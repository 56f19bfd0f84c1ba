"""The hosted glue: the local/hosted switch, consent before sending, and the offer to fall back.

Design (``architecture.md`` §4 and §6): the hosted backend has its own ``EngineController``,
so one worker thread owns it exactly as one owns the local model (requests carry ids from
the window's shared counter; cancel is the worker's thread-safe flag). Opening it looks the
key up on that thread (``app.hosted_endpoint``); the key never passes through the window.

While Hosted is chosen, the corpus is planned by ``PrepareConsent`` on the hosted worker: the
``ConsentRequest`` it returns is both what the consent dialog shows and the plan that is
sent, so what the user agrees to is exactly what leaves. A yes is recorded in a
``ConsentLedger`` for this session, endpoint and corpus fingerprint and unlocks the backend
(``Permit``); the same corpus is not asked about again, a changed one is. Cancel sends
nothing. When the local model cannot serve (it failed to load, the corpus does not fit its
context, it ran out of memory), ``fallback_offer`` is shown in the same dialog.

Signals:
    consent_shown(object): the ConsentDialog that just opened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from longdesk.app.consent import ConsentLedger, ConsentRequest, FallbackOffer, fallback_offer
from longdesk.app.hosted_endpoint import HostedSpec
from longdesk.app.workspace import included_corpus
from longdesk.engine.backends.base import BackendInfo, Failed, FailureKind
from longdesk.engine.backends.hosted_prices import format_money
from longdesk.ui.consent_dialog import ConsentDialog
from longdesk.ui.widgets.model_bar import WHERE_HOSTED, WHERE_LOCAL
from longdesk.ui.workers.engine_worker import EngineController, OpenHosted, Permit, PrepareConsent

if TYPE_CHECKING:
    from longdesk.ui.main_window import MainWindow

NO_ENDPOINT = (
    "No hosted endpoint is configured. Set one (and its key) in File ▸ Settings; nothing "
    "leaves this machine until you agree to what will be sent."
)


def session_cost(window: MainWindow) -> str:
    """What this session's hosted turns cost, as the price table's currency; '' when unknown."""
    costs = [(t.cost, t.currency) for t in window.session.turns if t.where == WHERE_HOSTED and t.cost]
    if not costs:
        return ""
    return format_money(sum(c for c, _ in costs if c is not None), costs[-1][1] or "USD")


class HostedGlue(QObject):
    """Owns the hosted worker and the consents of this window."""

    consent_shown = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.engine: EngineController | None = None
        self.info: BackendInfo | None = None
        self.consent: ConsentRequest | None = None
        self.ledger = ConsentLedger()
        self.dialog: ConsentDialog | None = None
        self._spec: HostedSpec | None = None
        self._open_id = 0
        self._consent_id = 0
        self._offer: tuple[FallbackOffer, str, bool] | None = None

    # ---------------------------------------------------------------- the endpoint
    def spec(self) -> HostedSpec | None:
        """The endpoint from the settings; None when none is configured."""
        s = self.w.settings
        if not s.hosted_endpoint:
            return None
        return HostedSpec(
            preset=s.hosted_preset,
            base_url=s.hosted_endpoint,
            model=s.hosted_model,
            context_window=s.hosted_context_tokens,
            tokenizer_gguf=Path(s.hosted_tokenizer).expanduser() if s.hosted_tokenizer else None,
        )

    def host(self) -> str:
        return self.consent.host if self.consent is not None else (self.info.endpoint if self.info else "")

    def _engine(self) -> EngineController:
        if self.engine is None:
            engine = EngineController(parent=self, ids=self.w.ids, name="longdesk-hosted")
            engine.model_loaded.connect(self.on_engine_model_loaded)
            engine.consent_prepared.connect(self.on_engine_consent_prepared)
            engine.note_reported.connect(lambda _rid, note: self.w.statusBar().showMessage(note, 10_000))
            self.w.connect_engine(engine)
            self.engine = engine
        return self.engine

    def cancel(self, request_id: int) -> None:
        if self.engine is not None:
            self.engine.cancel(request_id)

    def shutdown(self, wait_ms: int) -> None:
        if self.engine is not None:
            self.engine.shutdown(wait_ms)

    # ---------------------------------------------------------------- the switch
    @Slot(str)
    def on_model_bar_where_changed(self, where: str) -> None:
        if where == WHERE_HOSTED:
            self.use_hosted()
        else:
            self._offer = None
            self.w.use_local()

    def use_hosted(self) -> None:
        """Open the configured endpoint (or reuse it) and plan the corpus for it. Sends nothing."""
        w = self.w
        spec = self.spec()
        if spec is None:
            w.model_bar.set_where(WHERE_LOCAL)
            box = QMessageBox(QMessageBox.Icon.Information, "Hosted model", NO_ENDPOINT, parent=w)
            box.open()
            return
        w.model_bar.set_where(WHERE_HOSTED)
        w.where = WHERE_HOSTED
        w.info = None
        w.plan = None
        if self.info is not None and spec == self._spec:
            self._activate()
            return
        self._spec = spec
        self.info = None
        self.consent = None
        w.model_bar.set_state(f"connecting to {spec.url}…")
        self._open_id = self._engine().submit(lambda rid: OpenHosted(rid, spec, w.paths.config))
        w.refresh_all()

    @Slot(int, object)
    def on_engine_model_loaded(self, rid: int, info: object) -> None:
        if rid != self._open_id or not isinstance(info, BackendInfo):
            return
        self.info = info
        if self.w.where == WHERE_HOSTED:
            self._activate()

    def _activate(self) -> None:
        w = self.w
        assert self.info is not None
        w.info = self.info
        w.model_bar.set_hosted(self.info, session_cost(w))
        w.statusBar().showMessage(
            f"Hosted: {self.info.name} at {self.info.endpoint}. Nothing is sent before you agree.", 8000
        )
        w.request_plan()

    def open_failed(self, rid: int, failure: Failed) -> bool:
        """A failure of this glue's requests (open, consent); False when ``rid`` is not ours."""
        if rid == self._open_id:
            self._open_id = 0
            self._offer = None
            message = f"The hosted endpoint could not be opened: {failure.message}"
        elif rid == self._consent_id:
            message = f"Could not count the sources for the hosted model: {failure.message}"
        else:
            return False
        self.w.statusBar().showMessage(message, 20_000)
        if rid != self._consent_id:
            self.w.use_local()
        box = QMessageBox(QMessageBox.Icon.Warning, "Hosted model", message, parent=self.w)
        box.open()
        return True

    # ---------------------------------------------------------------- planning = consent
    def prepare(self) -> None:
        """Count the corpus for the hosted model and say what sending it means (on its worker)."""
        w = self.w
        if w.corpus is None or self.engine is None or self.info is None:
            return
        corpus = included_corpus(w.corpus, w.session.excluded)
        options = w.asking.options()
        session_id = w.session.session_id
        send_secrets = not w.settings.hosted_leave_out_secrets
        self.consent = None
        self._consent_id = self.engine.submit(
            lambda rid: PrepareConsent(rid, session_id, corpus, options, send_secrets)
        )

    @Slot(int, object)
    def on_engine_consent_prepared(self, rid: int, request: object) -> None:
        w = self.w
        if rid != self._consent_id or not isinstance(request, ConsentRequest) or w.where != WHERE_HOSTED:
            return
        self.consent = request
        w.apply_plan(request.plan)
        w.sources.model.set_status({i.doc_id: "not sent" for i in request.left_out if i.secret})
        if self._offer is not None:
            offer, question, replace_last = self._offer
            self._offer = None
            self.with_consent(
                # no question: the way out of "does not fit" was taken before one was typed
                lambda: w.asking.send(question, replace_last=replace_last) if question else None,
                offer=offer,
                on_cancel=lambda: self._offer_refused(question),
            )

    # ---------------------------------------------------------------- consent
    def with_consent(
        self,
        proceed: Callable[[], None],
        *,
        offer: FallbackOffer | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        """Run ``proceed`` once sending the current plan is agreed to (asked once per corpus)."""
        w = self.w
        request = self.consent
        if request is None or request.plan is not w.plan or self.engine is None:
            w.statusBar().showMessage("The sources are still being counted for the hosted model.", 5000)
            if on_cancel is not None:
                on_cancel()
            return
        if request.session_id != w.session.session_id:  # a new thread: consent is per session
            request = dataclasses.replace(request, session_id=w.session.session_id)
            self.consent = request
        if offer is None and self.ledger.covers(request.session_id, request.endpoint, request.fingerprint):
            proceed()
            return
        if self.dialog is not None:
            return  # one question at a time
        dialog = ConsentDialog(request, offer, w)
        self.dialog = dialog
        dialog.accepted.connect(lambda: self._granted(request, proceed))
        dialog.rejected.connect(lambda: self._refused(request, on_cancel))
        dialog.finished.connect(self._dialog_closed)
        dialog.open()
        self.consent_shown.emit(dialog)

    def _dialog_closed(self, _result: int) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
            self.dialog = None

    def _granted(self, request: ConsentRequest, proceed: Callable[[], None]) -> None:
        if self.engine is None or request is not self.consent or not request.fits:
            return
        self.ledger.grant(request)
        fingerprint = request.fingerprint
        self.engine.submit(lambda rid: Permit(rid, fingerprint))
        proceed()

    def _refused(self, request: ConsentRequest, on_cancel: Callable[[], None] | None) -> None:
        self.w.statusBar().showMessage(f"Nothing was sent to {request.host}.", 10_000)
        if on_cancel is not None:
            on_cancel()

    # ---------------------------------------------------------------- falling back
    def offer_fallback(
        self, kind: FailureKind, reason: str, question: str, *, replace_last: bool = False
    ) -> bool:
        """Offer the hosted model for ``question`` when the local one cannot serve it.

        Returns:
            True when the offer is under way (the consent dialog shows it once counted).
        """
        spec = self.spec()
        offer = fallback_offer(kind, reason, spec.label()) if spec is not None else None
        if offer is None:
            return False
        self._offer = (offer, question, replace_last)
        self.use_hosted()
        return True

    def _offer_refused(self, question: str) -> None:
        self.w.use_local()
        self.w.asking.restore_question(question)

    def show_costs(self) -> None:
        """The session's hosted cost in the model bar, after each hosted answer."""
        if self.info is not None:
            self.w.model_bar.set_hosted(self.info, session_cost(self.w))
