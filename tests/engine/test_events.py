"""The shared event types: enums that still read as their words, one rate/ETA helper, capabilities."""

from __future__ import annotations

import json
from dataclasses import dataclass

from longdesk.engine.backends.base import Capabilities, NeedsPermit, capabilities
from longdesk.engine.events import Progress, RateMeter, Stage, StopReason, Where, rate_and_eta


def test_enums_compare_and_serialise_as_their_words() -> None:
    assert Stage.PREFILL == "prefill"
    assert f"{Stage.RESTORE}" == "restore"
    assert json.dumps({"stop": StopReason.CANCELLED, "where": Where.HOSTED}) == (
        '{"stop": "cancelled", "where": "hosted"}'
    )
    assert StopReason("length") is StopReason.LENGTH


def test_rate_and_eta_count_only_this_run() -> None:
    assert rate_and_eta(0, 100, 1.0) == (0.0, None)  # nothing done yet: unknown
    assert rate_and_eta(50, 100, 0.0) == (0.0, None)
    assert rate_and_eta(50, 100, 2.0) == (25.0, 2.0)
    # Resumed at 40: the 40 restored units took no time now and must not raise the rate.
    assert rate_and_eta(60, 100, 2.0, start=40) == (10.0, 4.0)
    assert rate_and_eta(100, 100, 4.0) == (25.0, 0.0)


def test_a_rate_meter_makes_progress_events_from_its_clock() -> None:
    now = [10.0]
    meter = RateMeter(Stage.PREFILL, 1000, start=200, clock=lambda: now[0])
    assert meter.at(200) == Progress(Stage.PREFILL, 200, 1000, 0.0, None)
    now[0] = 12.0
    assert meter.at(600, "book.pdf") == Progress(Stage.PREFILL, 600, 1000, 200.0, 2.0, "tokens", "book.pdf")
    reading = RateMeter(Stage.READ, 4096, unit="bytes", clock=lambda: now[0])
    now[0] = 14.0
    assert reading.at(1024).unit == "bytes"
    assert reading.at(1024).rate == 512.0
    assert Progress(Stage.READ, 3, 4).fraction == 0.75
    assert Progress(Stage.READ, 0, 0).fraction == 1.0


@dataclass
class _Plain:
    def close(self) -> None: ...


@dataclass
class _Permitting(_Plain):
    permitted: str = ""

    def fingerprint(self, plan: object) -> str:
        return "f"

    def permit(self, fingerprint: str) -> None:
        self.permitted = fingerprint


def test_capabilities_are_found_by_shape_not_by_class() -> None:
    plain = capabilities(_Plain())  # type: ignore[arg-type]
    assert plain == Capabilities()
    permitting = _Permitting()
    caps = capabilities(permitting)  # type: ignore[arg-type]
    assert caps.needs_permit is permitting
    assert isinstance(caps.needs_permit, NeedsPermit)
    assert caps.resumable is None
    assert caps.rewindable is None


@dataclass
class _Header(_Plain):
    header: str | None = "Read the text below."

    @property
    def instructions(self) -> str | None:
        return self.header


def test_what_is_packed_before_the_corpus_is_the_backends_own_header_or_the_contract() -> None:
    assert capabilities(_Plain()).instructions is None  # type: ignore[arg-type]
    reading = _Header()
    caps = capabilities(reading)  # type: ignore[arg-type]
    assert caps.packs_instructions is reading
    assert caps.instructions == "Read the text below."
    reading.header = None  # a chat model under the same backend class: the citing contract
    assert caps.instructions is None


def test_the_hosted_backend_resumes_and_needs_a_permit_but_does_not_rewind() -> None:
    from longdesk.engine.backends.hosted import HostedBackend
    from longdesk.engine.backends.hosted_presets import make_config

    hosted = HostedBackend(make_config("openai-compatible", base_url="http://127.0.0.1:1/v1", model="m"))
    caps = capabilities(hosted)
    assert caps.resumable is hosted
    assert caps.needs_permit is hosted
    assert caps.rewindable is None
    assert caps.instructions is None  # the citing contract
    assert hosted.describe().where is Where.HOSTED
