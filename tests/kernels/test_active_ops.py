"""What `longdesk models` reports about the DeepSeek-V4 ops, from the installed llama.cpp."""

from __future__ import annotations

import pytest

from longdesk.engine.kernels import OPS, OpsStatus, active_ops, runtime_enabled


def test_the_runtime_switch_reads_like_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LONGDESK_DSV4_OPS", raising=False)
    assert runtime_enabled()
    monkeypatch.setenv("LONGDESK_DSV4_OPS", "0")
    assert not runtime_enabled()
    assert active_ops().active == ()
    monkeypatch.setenv("LONGDESK_DSV4_OPS", "1")
    assert runtime_enabled()


def test_the_installed_build_reports_our_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LONGDESK_DSV4_OPS", raising=False)
    status = active_ops()
    assert status.built == tuple(op for op, _ in OPS), status.library
    assert "DSV4_SPARSE_ATTN" in status.describe()
    assert "DSV4_MOE_COMBINE" in status.describe()


def test_descriptions_say_what_runs() -> None:
    assert "upstream" in OpsStatus((), True, "x").describe()
    assert "LONGDESK_DSV4_OPS=0" in OpsStatus(("DSV4_SPARSE_ATTN",), False, "x").describe()
    assert OpsStatus(("DSV4_SPARSE_ATTN",), True, "x").active == ("DSV4_SPARSE_ATTN",)
