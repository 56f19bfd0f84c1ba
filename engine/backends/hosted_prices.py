"""Prices of hosted models as data with their date, and the cost of a turn at a given time.

The table lives in ``assets/prices/deepseek.json`` (the provider's published prices, with the
date they took effect and the date they were checked). A user's own copy, edited in settings,
overrides it: ``load_price_table(path)``. Peak and off-peak hours are part of the table, so a
price change that moves the hours is a data edit, not a code change.

Costs are computed per request from the provider's own usage figures: cached prompt tokens at
the cache-hit price, the rest of the prompt at the cache-miss price, output (reasoning
included) at the output price, all at the rates in force at the time the request was sent.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PriceTableError(ValueError):
    """The price table file is unreadable or malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Rates:
    """Prices per ``PriceTable.per_tokens`` tokens."""

    input_cache_hit: float
    input_cache_miss: float
    output: float


@dataclass(frozen=True, slots=True)
class ModelPrices:
    off_peak: Rates
    peak: Rates


@dataclass(frozen=True, slots=True)
class TurnCost:
    """What one request cost (or will cost), and under which rates."""

    amount: float
    currency: str
    peak: bool

    def describe(self) -> str:
        return f"{format_money(self.amount, self.currency)} ({'peak' if self.peak else 'off-peak'} rates)"


def format_money(amount: float, currency: str) -> str:
    """``$0.000041`` for tiny sums, ``$0.1500`` for small ones, ``$12.34`` for larger ones."""
    digits = 6 if abs(amount) < 0.01 else 4 if abs(amount) < 1 else 2
    symbol = "$" if currency == "USD" else ""
    suffix = "" if symbol else f" {currency}"
    return f"{symbol}{amount:.{digits}f}{suffix}"


@dataclass(frozen=True, slots=True)
class PriceTable:
    """A provider's prices, dated.

    Attributes:
        provider: who publishes them.
        effective: the date these prices took effect (ISO).
        checked: the date they were last compared with the provider's page (ISO).
        currency: ISO code of every figure.
        per_tokens: the figures are per this many tokens (1,000,000).
        peak_days: weekdays (``mon``..``sun``) on which peak hours apply.
        peak_ranges: UTC (start, end) minute-of-day ranges, end exclusive.
        models: prices by model name.
    """

    provider: str
    effective: str
    checked: str
    currency: str
    per_tokens: int
    peak_days: frozenset[str]
    peak_ranges: tuple[tuple[int, int], ...]
    models: dict[str, ModelPrices]
    source: str = ""

    def prices_for(self, model: str) -> ModelPrices | None:
        return self.models.get(model)

    def is_peak(self, when: dt.datetime) -> bool:
        """Whether ``when`` (any timezone; naive means UTC) falls in peak hours."""
        utc = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
        if _WEEKDAYS[utc.weekday()] not in self.peak_days:
            return False
        minute = utc.hour * 60 + utc.minute
        return any(start <= minute < end for start, end in self.peak_ranges)

    def cost(
        self, model: str, when: dt.datetime, *, cache_hit: int, cache_miss: int, output: int
    ) -> TurnCost | None:
        """Cost of one request; None when the model is not in the table."""
        prices = self.prices_for(model)
        if prices is None:
            return None
        peak = self.is_peak(when)
        rates = prices.peak if peak else prices.off_peak
        amount = (
            cache_hit * rates.input_cache_hit + cache_miss * rates.input_cache_miss + output * rates.output
        ) / self.per_tokens
        return TurnCost(amount, self.currency, peak)

    def describe(self) -> str:
        return f"{self.provider} prices effective {self.effective} (checked {self.checked}), {self.currency}"


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60:
        raise ValueError(f"not a time of day: {text!r}")
    return value


def _rates(raw: Any, where: str) -> Rates:
    if not isinstance(raw, dict):
        raise PriceTableError(f"{where}: expected an object with input_cache_hit, input_cache_miss, output")
    try:
        values = [float(raw[k]) for k in ("input_cache_hit", "input_cache_miss", "output")]
    except (KeyError, TypeError, ValueError) as exc:
        raise PriceTableError(f"{where}: missing or non-numeric price ({exc})") from exc
    if any(v < 0 for v in values):
        raise PriceTableError(f"{where}: a price is negative")
    return Rates(*values)


def parse_price_table(text: str, origin: str = "price table") -> PriceTable:
    """Parse the JSON form (see ``assets/prices/deepseek.json``).

    Raises:
        PriceTableError: with the place that is wrong.
    """
    try:
        raw = json.loads(text)
        models_raw = raw["models"]
        peak = raw.get("peak_hours_utc", {})
        ranges = tuple((_minutes(a), _minutes(b)) for a, b in peak.get("ranges", []))
        days = frozenset(str(d).lower()[:3] for d in peak.get("weekdays", []))
        per_tokens = int(raw.get("per_tokens", 1_000_000))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PriceTableError(f"{origin}: not a valid price table ({exc})") from exc
    if not isinstance(models_raw, dict) or per_tokens <= 0:
        raise PriceTableError(f"{origin}: 'models' must be an object and 'per_tokens' positive")
    models: dict[str, ModelPrices] = {}
    aliases: dict[str, str] = {}
    for name, entry in models_raw.items():
        if isinstance(entry, dict) and "same_as" in entry:
            aliases[name] = str(entry["same_as"])
            continue
        if not isinstance(entry, dict):
            raise PriceTableError(f"{origin}: model {name!r} is not an object")
        models[name] = ModelPrices(
            off_peak=_rates(entry.get("off_peak"), f"{origin}: {name}.off_peak"),
            peak=_rates(entry.get("peak", entry.get("off_peak")), f"{origin}: {name}.peak"),
        )
    for name, target in aliases.items():
        if target not in models:
            raise PriceTableError(f"{origin}: {name!r} refers to unknown model {target!r}")
        models[name] = models[target]
    return PriceTable(
        provider=str(raw.get("provider", "")),
        effective=str(raw.get("effective", "")),
        checked=str(raw.get("checked", "")),
        currency=str(raw.get("currency", "USD")),
        per_tokens=per_tokens,
        peak_days=days,
        peak_ranges=ranges,
        models=models,
        source=str(raw.get("source", "")),
    )


def default_price_table_text() -> str:
    return resources.files("longdesk.assets").joinpath("prices/deepseek.json").read_text(encoding="utf-8")


def load_price_table(override: Path | None = None) -> tuple[PriceTable, str]:
    """The user's edited table when it exists and parses, else the bundled one.

    Returns:
        The table and a warning for the user ('' when none).
    """
    if override is not None and override.exists():
        try:
            return parse_price_table(override.read_text(encoding="utf-8"), str(override)), ""
        except (OSError, PriceTableError) as exc:
            warning = f"{exc}; using the bundled prices"
            return parse_price_table(default_price_table_text(), "bundled prices"), warning
    return parse_price_table(default_price_table_text(), "bundled prices"), ""
