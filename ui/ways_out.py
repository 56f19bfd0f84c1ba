"""Ways out of "does not fit", each one click, under the budget meter's red note.

When the corpus does not fit the local model's context, the window offers what exists on this
machine, with figures:

* the hosted endpoint set up in the settings, with its context and the estimated cost of
  sending this corpus once; the click goes through the consent dialog, which shows the exact
  documents, tokens and cost before anything leaves (``ui.hosted_glue``). With none set up,
  the DeepSeek API's context is named and the click opens the settings;
* a local model the app knows (``app.models.known_models``: the default, the models folder,
  the settings' paths; the loaded one at a larger context first) whose trained context holds
  the corpus and whose memory plan at that context fits this machine; the click loads it;
* leaving out the largest documents, as many as it takes; the click unticks them in Sources.

Which local model fits is worked out on a pool thread (it reads GGUF headers).

Signals:
    offered(object): the Ways now shown (tests and screenshots wait for it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from longdesk.app.settings import Settings
from longdesk.app.workbench import Workbench
from longdesk.engine.backends.base import FailureKind
from longdesk.engine.backends.hosted_prices import format_money
from longdesk.engine.events import Where
from longdesk.ui.hosted_glue import HostedGlue
from longdesk.ui.local_model_glue import LocalModelGlue
from longdesk.ui.settings_glue import SettingsGlue
from longdesk.ui.widgets.budget_meter import BudgetFigures
from longdesk.ui.widgets.sources_panel import SourcesPanel
from longdesk.ui.workers.pool import TaskRunner

if TYPE_CHECKING:
    from longdesk.app.paths import Paths
    from longdesk.engine.context.plan import ContextPlan

CONTEXT_STEP = 1024  # a larger context is asked for in whole steps


@dataclass(frozen=True, slots=True)
class HostedWay:
    label: str  # "DeepSeek API at https://api.deepseek.com"
    context: int  # 0: unknown
    cost: str  # "about $0.15", or "" when the price table does not cover it
    configured: bool = True  # False: none is set up yet; the click opens the settings


@dataclass(frozen=True, slots=True)
class ModelWay:
    path: Path
    name: str
    context: int  # the context to load it with
    same: bool  # the loaded model, at a larger context


@dataclass(frozen=True, slots=True)
class LeaveOutWay:
    doc_ids: tuple[str, ...]
    tokens: int


@dataclass(frozen=True, slots=True)
class Ways:
    hosted: HostedWay | None = None
    model: ModelWay | None = None
    leave_out: LeaveOutWay | None = None


def needed_context(figures: BudgetFigures) -> int:
    """The context that holds this corpus and its reserves, rounded up to whole steps."""
    return -(-figures.used // CONTEXT_STEP) * CONTEXT_STEP


def hosted_way(settings: Settings, config_dir: Path, figures: BudgetFigures) -> HostedWay | None:
    """The configured endpoint when it could take this corpus (its context is unknown or large
    enough); with none configured, the DeepSeek preset as one that can be set up."""
    from longdesk.app.hosted_endpoint import HostedSpec, price_table
    from longdesk.engine.backends.hosted_presets import DEEPSEEK, PRESETS

    if not settings.hosted_endpoint:
        context = DEEPSEEK.window_for(DEEPSEEK.default_model)
        return HostedWay(DEEPSEEK.label, context, "", configured=False) if figures.used <= context else None

    spec = HostedSpec(
        preset=settings.hosted_preset,
        base_url=settings.hosted_endpoint,
        model=settings.hosted_model,
        context_window=settings.hosted_context_tokens,
    )
    preset = PRESETS.get(settings.hosted_preset)
    model = settings.hosted_model or (preset.default_model if preset else "")
    context = settings.hosted_context_tokens or (preset.window_for(model) if preset else 0)
    if context and figures.used > context:
        return None
    cost = ""
    try:
        table, _warning = price_table(config_dir)
        priced = table.cost(
            model, dt.datetime.now(dt.UTC), cache_hit=0, cache_miss=figures.corpus, output=figures.output
        )
    except (OSError, ValueError):
        priced = None
    if priced is not None:
        cost = f"about {format_money(priced.amount, priced.currency)}"
    return HostedWay(spec.label(), context, cost)


def model_way(paths: Paths, settings: Settings, current: Path | None, needed: int) -> ModelWay | None:
    """A known local model that holds ``needed`` tokens and fits this machine's memory at that
    context: the loaded one when it can, else the largest such. Runs on a pool thread."""
    from longdesk.app.models import known_models
    from longdesk.engine.backends.base import BackendError
    from longdesk.engine.backends.local_load import inspect_model
    from longdesk.engine.models.memory import plan_memory

    fitting: list[tuple[bool, int, ModelWay]] = []
    for entry in known_models(paths, settings, []):
        if entry.error or entry.context_length < needed:
            continue
        try:
            header = inspect_model(entry.path)
        except BackendError:
            continue
        if not plan_memory(header, needed).fits:
            continue
        same = current is not None and entry.path.resolve() == current.resolve()
        way = ModelWay(entry.path, entry.name or entry.path.name, needed, same)
        fitting.append((same, entry.size_bytes, way))
    return max(fitting, key=lambda f: (f[0], f[1]))[2] if fitting else None


def leave_out_way(plan: ContextPlan, over_by: int) -> LeaveOutWay | None:
    """The fewest documents, largest first, whose tokens cover ``over_by``."""
    chosen: list[str] = []
    tokens = 0
    for span in sorted(plan.spans, key=lambda s: s.tokens, reverse=True):
        if tokens >= over_by:
            break
        chosen.append(span.doc_id)
        tokens += span.tokens
    if tokens < over_by or len(chosen) >= len(plan.spans):
        return None  # leaving everything out is no way out
    return LeaveOutWay(tuple(chosen), tokens)


class WaysOut(QWidget):
    """The buttons under the red note; hidden while everything fits.

    Attributes:
        hosted_button, model_button, leave_out_button: one per way, shown when it exists.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("waysOut")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.hosted_button = QPushButton("", self)
        self.model_button = QPushButton("", self)
        self.leave_out_button = QPushButton("", self)
        for button in (self.hosted_button, self.model_button, self.leave_out_button):
            button.setFlat(True)
            button.setStyleSheet("text-align: left; padding: 2px 4px; text-decoration: underline;")
            button.setVisible(False)
            layout.addWidget(button)
        self.ways = Ways()
        self.setVisible(False)

    def show_ways(self, ways: Ways) -> None:
        self.ways = ways
        if ways.hosted is not None:
            h = ways.hosted
            figures = ", ".join(f for f in (f"{h.context:,}-token context" if h.context else "", h.cost) if f)
            if not h.configured:
                text = f"Set up a hosted endpoint ({h.label}: {h.context:,}-token context)…"
            else:
                text = f"Ask {h.label} instead ({figures})…" if figures else f"Ask {h.label}…"
            self.hosted_button.setText(text)
        if ways.model is not None:
            m = ways.model
            self.model_button.setText(
                f"Reload {m.name} with a {m.context:,}-token context (fits this machine's memory)"
                if m.same
                else f"Use {m.name} with a {m.context:,}-token context (fits this machine's memory)"
            )
        if ways.leave_out is not None:
            n = len(ways.leave_out.doc_ids)
            self.leave_out_button.setText(
                f"Leave out the {'largest document' if n == 1 else f'{n} largest documents'} "
                f"({ways.leave_out.tokens:,} tokens)"
            )
        self.hosted_button.setVisible(ways.hosted is not None)
        self.model_button.setVisible(ways.model is not None)
        self.leave_out_button.setVisible(ways.leave_out is not None)
        self.setVisible(any((ways.hosted, ways.model, ways.leave_out)))


class WaysOutGlue(QObject):
    """Works out the ways out for the budget shown and carries out the one clicked.

    Signals:
        offered(object): the Ways now shown (tests and screenshots wait for it).
    """

    offered = Signal(object)

    def __init__(
        self,
        state: Workbench,
        widget: WaysOut,
        question: QPlainTextEdit,
        sources: SourcesPanel,
        local: LocalModelGlue,
        hosted: HostedGlue,
        settings_glue: SettingsGlue,
        runner: TaskRunner,
        paths: Paths,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.widget = widget
        self.question = question
        self.sources = sources
        self.local = local
        self.hosted = hosted
        self.settings_glue = settings_glue
        self.runner = runner
        self.paths = paths
        self.figures: BudgetFigures | None = None
        self._key: tuple[object, ...] | None = None
        self._generation = 0
        widget.hosted_button.clicked.connect(self.on_hosted_button_clicked)
        widget.model_button.clicked.connect(self.on_model_button_clicked)
        widget.leave_out_button.clicked.connect(self.on_leave_out_button_clicked)

    @Slot(object)
    def refresh(self, figures: object) -> None:
        """Called with every budget update: the ways for a corpus that does not fit, else none."""
        state = self.state
        self.figures = figures if isinstance(figures, BudgetFigures) else None
        figures = self.figures
        plan = state.plan
        corpus_too_big = (
            figures is not None
            and not figures.fits
            and figures.corpus + figures.output > figures.window
            and state.where is not Where.HOSTED
            and plan is not None
        )
        if not corpus_too_big or figures is None or plan is None:
            self._key = None
            self._generation += 1
            self.widget.show_ways(Ways())
            return
        needed = needed_context(figures)
        key = (plan.prefix_tokens, figures.window, needed, self.local.path, state.settings)
        if key == self._key:
            return
        self._key = key
        self._generation += 1
        generation = self._generation
        base = Ways(
            hosted=hosted_way(state.settings, self.paths.config, figures),
            leave_out=leave_out_way(plan, figures.over_by),
        )
        self.widget.show_ways(base)
        paths, settings, current = self.paths, state.settings, self.local.path

        def done(model: object) -> None:
            if generation != self._generation:
                return  # the budget changed meanwhile
            ways = dataclasses.replace(base, model=model if isinstance(model, ModelWay) else None)
            self.widget.show_ways(ways)
            self.offered.emit(ways)

        self.runner.run_task(
            lambda: model_way(paths, settings, current, needed), done, lambda _msg: done(None)
        )

    # ---------------------------------------------------------------- the clicks
    def on_hosted_button_clicked(self) -> None:
        """Through the consent dialog: the question in the box is sent once agreed to. With no
        endpoint set up yet, the settings open at the hosted section."""
        way = self.widget.ways.hosted
        if way is not None and not way.configured:
            self.settings_glue.on_settings()
            return
        question = self.question.toPlainText().strip()
        figures = self.figures
        reason = figures.advice() if figures is not None else "the corpus does not fit"
        if self.hosted.offer_fallback(FailureKind.CONTEXT, reason, question):
            self.question.clear()

    def on_model_button_clicked(self) -> None:
        way = self.widget.ways.model
        if way is None:
            return
        new = dataclasses.replace(self.state.settings, context_tokens=way.context)
        if way.same:
            self.settings_glue.apply_settings(new)  # reloads the loaded model at the new context
            return
        self.state.set_settings(new)
        self.settings_glue.save(new)
        self.local.use_model(way.path)

    def on_leave_out_button_clicked(self) -> None:
        way = self.widget.ways.leave_out
        if way is not None:
            self.sources.model.set_included(way.doc_ids, False)
