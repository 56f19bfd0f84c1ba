"""The hosted glue: the local/hosted switch, consent before sending, and the offer to fall back.

Design (``architecture.md`` §4 and §6): the hosted backend has its own ``EngineController``,
so one worker thread owns it exactly as one owns the local model (requests carry ids from
the shared counter of ``ui.engines``; cancel is the worker's thread-safe flag). Opening it
looks the key up on that thread (``app.hosted_endpoint``); the key never passes through the UI.

While Hosted is chosen, the corpus is planned by ``PrepareConsent`` on the hosted worker: the
``ConsentRequest`` it returns is both what the consent dialog shows and the plan that is
sent, so what the user agrees to is exactly what leaves. A yes is recorded in a
``ConsentLedger`` for this session, endpoint and corpus fingerprint and unlocks the backend
(``Permit``); the same corpus is not asked about again, a changed one is. Cancel sends
nothing. When the local model cannot serve (it failed to load, the corpus does not fit its
context, it ran out of memory), ``fallback_offer`` is shown in the same dialog.

It works on the workbench state (``app.workbench``) and its own widgets; what the other flows
do for it (count the corpus again, send a question, put one back in the box) it asks for with
signals that the window connects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QStatusBar

from longdesk.app.consent import ConsentLedger, ConsentRequest, FallbackOffer, fallback_offer
from longdesk.app.hosted_endpoint import HostedSpec
from longdesk.app.paths import Paths
from longdesk.app.sessions import Session
from longdesk.app.workbench import Change, Workbench
from longdesk.app.workspace import included_corpus
from longdesk.engine.backends.base import BackendInfo, Failed, FailureKind
from longdesk.engine.backends.hosted_prices import format_money
from longdesk.engine.events import Where
from longdesk.ui.consent_dialog import ConsentDialog
from longdesk.ui.engines import Engines
from longdesk.ui.interpreter import freeze_long_lived_objects
from longdesk.ui.local_model_glue import LocalModelGlue
from longdesk.ui.widgets.model_bar import WHERE_HOSTED, WHERE_LOCAL, ModelBar
from longdesk.ui.widgets.sources_panel import SourcesPanel
from longdesk.ui.workers.engine_worker import EngineController, OpenHosted, Permit, PrepareConsent

NO_ENDPOINT = (
    "No hosted endpoint is configured. Set one (and its key) in File ▸ Settings; nothing "
    "leaves this machine until you agree to what will be sent."
)


def session_cost(session: Session) -> str:
    """What this session's hosted turns cost, as the price table's currency; '' when unknown."""
    costs = [(t.cost, t.currency) for t in session.turns if t.where == WHERE_HOSTED and t.cost]
    if not costs:
        return ""
    return format_money(sum(c for c, _ in costs if c is not None), costs[-1][1] or "USD")


class HostedGlue(QObject):
    """Owns the hosted worker and the consents of this workbench.

    Signals:
        consent_shown(object): the ConsentDialog that just opened.
        engine_created(object): the hosted EngineController, once, when first opened.
        plan_requested(): the corpus is to be counted for the backend now active.
        plan_prepared(object): the ContextPlan of a prepared consent (what would be sent).
        send_requested(str, bool): send this question (replacing the last turn when True).
        question_returned(str): a question that was not sent goes back into the box.
    """

    consent_shown = Signal(object)
    engine_created = Signal(object)
    plan_requested = Signal()
    plan_prepared = Signal(object)
    send_requested = Signal(str, bool)
    question_returned = Signal(str)

    def __init__(
        self,
        state: Workbench,
        engines: Engines,
        local: LocalModelGlue,
        paths: Paths,
        model_bar: ModelBar,
        sources: SourcesPanel,
        status: QStatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.engines = engines
        self.local = local
        self.paths = paths
        self.model_bar = model_bar
        self.sources = sources
        self.status = status
        self.engine: EngineController | None = None
        self.info: BackendInfo | None = None
        self.consent: ConsentRequest | None = None
        self.ledger = ConsentLedger()
        self.dialog: ConsentDialog | None = None
        self._spec: HostedSpec | None = None
        self._open_id = 0
        self._consent_id = 0
        self._offer: tuple[FallbackOffer, str, bool] | None = None
        state.subscribe(self._on_state_changed)

    def _on_state_changed(self, change: Change) -> None:
        if Change.CORPUS in change and self.state.corpus is None:
            self.consent = None  # the sources changed wholesale: a new consent is needed

    # ---------------------------------------------------------------- the endpoint
    def spec(self) -> HostedSpec | None:
        """The endpoint from the settings; None when none is configured."""
        s = self.state.settings
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
            engine = EngineController(parent=self, ids=self.engines.ids, name="longdesk-hosted")
            engine.model_loaded.connect(self.on_engine_model_loaded)
            engine.consent_prepared.connect(self.on_engine_consent_prepared)
            engine.note_reported.connect(lambda _rid, note: self.status.showMessage(note, 10_000))
            self.engine = engine
            self.engines.hosted = engine
            self.engine_created.emit(engine)
        return self.engine

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
            self.local.use_local()

    def use_hosted(self) -> None:
        """Open the configured endpoint (or reuse it) and plan the corpus for it. Sends nothing."""
        spec = self.spec()
        if spec is None:
            self.model_bar.set_where(WHERE_LOCAL)
            box = QMessageBox(
                QMessageBox.Icon.Information, "Hosted model", NO_ENDPOINT, parent=self.model_bar.window()
            )
            box.open()
            return
        self.model_bar.set_where(WHERE_HOSTED)
        reuse = self.info is not None and spec == self._spec
        if not reuse:
            self._spec = spec
            self.info = None
            self.consent = None
            self.model_bar.set_state(f"connecting to {spec.url}…")
        self.state.set_where(Where.HOSTED, None)
        if reuse:
            self._activate()
            return
        config, cache = self.paths.config, self.paths.cache
        self._open_id = self._engine().submit(lambda rid: OpenHosted(rid, spec, config, cache))

    @Slot(int, object)
    def on_engine_model_loaded(self, rid: int, info: object) -> None:
        if rid != self._open_id or not isinstance(info, BackendInfo):
            return
        self.info = info
        # The endpoint's libraries (the HTTP client, the vocabulary) are loaded: keep them out
        # of later collections, which would otherwise walk them on whichever thread runs one.
        freeze_long_lived_objects()
        if self.state.where is Where.HOSTED:
            self._activate()

    def _activate(self) -> None:
        assert self.info is not None
        self.model_bar.set_hosted(self.info, session_cost(self.state.session))
        self.status.showMessage(
            f"Hosted: {self.info.name} at {self.info.endpoint}. Nothing is sent before you agree.", 8000
        )
        self.state.set_backend(self.info)
        self.plan_requested.emit()

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
        self.status.showMessage(message, 20_000)
        if rid != self._consent_id:
            self.local.use_local()
        box = QMessageBox(QMessageBox.Icon.Warning, "Hosted model", message, parent=self.model_bar.window())
        box.open()
        return True

    # ---------------------------------------------------------------- planning = consent
    def prepare(self) -> None:
        """Count the corpus for the hosted model and say what sending it means (on its worker)."""
        state = self.state
        if state.corpus is None or self.engine is None or self.info is None:
            return
        corpus = included_corpus(state.corpus, state.session.excluded)
        options = state.ask_options()
        session_id = state.session.session_id
        send_secrets = not state.settings.hosted_leave_out_secrets
        self.consent = None
        self._consent_id = self.engine.submit(
            lambda rid: PrepareConsent(rid, session_id, corpus, options, send_secrets)
        )

    @Slot(int, object)
    def on_engine_consent_prepared(self, rid: int, request: object) -> None:
        if (
            rid != self._consent_id
            or not isinstance(request, ConsentRequest)
            or self.state.where is not Where.HOSTED
        ):
            return
        self.consent = request
        self.plan_prepared.emit(request.plan)
        self.sources.model.set_status({i.doc_id: "not sent" for i in request.left_out if i.secret})
        if self._offer is not None:
            offer, question, replace_last = self._offer
            self._offer = None

            def proceed() -> None:
                # no question: the way out of "does not fit" was taken before one was typed
                if question:
                    self.send_requested.emit(question, replace_last)

            self.with_consent(proceed, offer=offer, on_cancel=lambda: self._offer_refused(question))

    # ---------------------------------------------------------------- consent
    def with_consent(
        self,
        proceed: Callable[[], None],
        *,
        offer: FallbackOffer | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        """Run ``proceed`` once sending the current plan is agreed to (asked once per corpus)."""
        state = self.state
        request = self.consent
        if request is None or request.plan is not state.plan or self.engine is None:
            self.status.showMessage("The sources are still being counted for the hosted model.", 5000)
            if on_cancel is not None:
                on_cancel()
            return
        if request.session_id != state.session.session_id:  # a new thread: consent is per session
            request = dataclasses.replace(request, session_id=state.session.session_id)
            self.consent = request
        if offer is None and self.ledger.covers(request.session_id, request.endpoint, request.fingerprint):
            proceed()
            return
        if self.dialog is not None:
            return  # one question at a time
        dialog = ConsentDialog(request, offer, self.model_bar.window())
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
        self.status.showMessage(f"Nothing was sent to {request.host}.", 10_000)
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
        self.local.use_local()
        self.question_returned.emit(question)

    def show_costs(self) -> None:
        """The session's hosted cost in the model bar, after each hosted answer."""
        if self.info is not None:
            self.model_bar.set_hosted(self.info, session_cost(self.state.session))
