"""The typed wire layer: records round-trip exactly, and a wrong field is named, not half-built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longdesk.app.wire import WireError, from_wire, to_wire
from longdesk.engine.backends.base import AskOptions, BackendInfo, Reading, Turn
from longdesk.engine.backends.local_load import LocalSettings
from longdesk.engine.context.plan import Budget, ContextPlan, DocumentSpan
from longdesk.engine.events import Failed, FailureKind, Progress, Stage, ThinkingMode, Where

RECORDS = [
    ContextPlan(
        "Cite.", ("<corpus>\nx\n</corpus>\n",), 9, (DocumentSpan("D1", "a", 0, 5, 3),), Budget(4096, 9, 0, 64)
    ),
    Progress(Stage.PREFILL, 512, 2048, 700.5, None),
    Failed(FailureKind.MEMORY, "does not fit", partial=True),
    BackendInfo("Gemma", Where.LOCAL, 4096, (ThinkingMode.OFF, ThinkingMode.HIGH), notes=("small",)),
    Reading(330, restored=True, seconds=0.5, detail={"snapshot": "held", "resumed_from": 512}),
    AskOptions(ThinkingMode.MAX, 64, 0.7, 3),
    LocalSettings(n_ctx=8192, snapshot_dir=Path("/tmp/snaps")),
    LocalSettings(),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_records_round_trip_through_json(record: object) -> None:
    text = json.dumps(to_wire(record))
    back = from_wire(json.loads(text), type(record))
    assert back == record
    assert type(back) is type(record)


def test_tuples_of_records_round_trip() -> None:
    turns = (Turn("q1", "a1"), Turn("q2", "a2", "thought"))
    assert from_wire(json.loads(json.dumps(to_wire(turns))), tuple[Turn, ...]) == turns


@pytest.mark.parametrize(
    ("data", "kind", "named"),
    [
        ({"stage": "warp", "done": 1, "total": 2}, Progress, "stage"),
        ({"kind": "model"}, Failed, "message"),
        ({"thinking": "off", "max_output_tokens": "many"}, AskOptions, "max_output_tokens"),
        ({"n_ctx": 4096, "snapshot_dir": 5}, LocalSettings, "snapshot_dir"),
        ([1, 2], Reading, "Expected `object`"),
    ],
)
def test_a_wrong_field_is_refused_by_name(data: object, kind: type, named: str) -> None:
    with pytest.raises(WireError, match=named):
        from_wire(data, kind)
