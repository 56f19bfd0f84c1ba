"""The sources glue counts with the backend now active, and stops a local count that no longer
serves (Hosted chosen, or a newer count asked for), so that it does not take the CPU from the
count that replaces it."""

from __future__ import annotations

import itertools
from pathlib import Path

from longdesk.app.paths import Paths
from longdesk.app.workbench import Workbench
from longdesk.engine.backends.base import BackendInfo
from longdesk.engine.corpus.model import Anchor, AnchorKind, Corpus, Document, DocumentKind, Segment
from longdesk.engine.events import Where
from longdesk.ui.engines import Engines
from longdesk.ui.sources_glue import SourcesGlue


class _Local:
    """An engine controller that records what is queued and cancelled."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.submitted: list[int] = []
        self.cancelled: list[int] = []

    def submit(self, make: object) -> int:
        rid = next(self.ids)
        self.submitted.append(rid)
        return rid

    def cancel(self, request_id: int) -> None:
        self.cancelled.append(request_id)


class _Hosted:
    def __init__(self) -> None:
        self.prepared = 0

    def prepare(self) -> None:
        self.prepared += 1


def _glue(tmp_path: Path) -> tuple[SourcesGlue, Workbench, _Local, _Hosted]:
    state = Workbench()
    local, hosted = _Local(), _Hosted()
    engines = Engines(state, local, itertools.count(1))  # type: ignore[arg-type]
    paths = Paths(*(tmp_path / name for name in ("config", "data", "cache", "models", "snapshots", "logs")))
    glue = SourcesGlue(state, engines, hosted, None, paths, None, None, None)  # type: ignore[arg-type]
    seg = Segment(Anchor(AnchorKind.LINES, 1, 1), "The kettle is blue.\n")
    doc = Document("D1", "notes.md", "/notes.md", DocumentKind.MARKDOWN, "0" * 64, (seg,))
    state.set_corpus(Corpus.of([doc]), ())
    state.set_backend(BackendInfo("tiny", Where.LOCAL, 2048))
    return glue, state, local, hosted


def test_a_local_count_is_stopped_when_hosted_is_chosen_or_a_newer_one_is_asked_for(
    tmp_path: Path,
) -> None:
    glue, state, local, hosted = _glue(tmp_path)
    glue.request_plan()
    first = glue.plan_id
    assert local.submitted == [first]
    glue.request_plan()  # e.g. the thinking mode changed: counted again
    assert local.cancelled == [first]
    second = glue.plan_id
    assert second != first

    state.set_where(Where.HOSTED, BackendInfo("deepseek-flash", Where.HOSTED, 1 << 20))
    glue.request_plan()
    assert local.cancelled == [first, second]
    assert glue.plan_id == 0
    assert hosted.prepared == 1
    glue.request_plan()
    assert local.cancelled == [first, second]  # nothing left to stop
