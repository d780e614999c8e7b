"""tui/router/units.py: the one way milliseconds, seconds, dollars and percentages are written."""

from __future__ import annotations

import math

import pytest

from tui.router import units
from tui.router.cost.pricing import format_usd


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "n/a"),
        (0, "free"),
        (1234.5, "$1,234.50"),
        (1.0, "$1.00"),
        (0.0421, "$0.0421"),
        (0.00046, "$0.000460"),
        (0.009723, "$0.009723"),
        (4e-7, "$0.00000040"),  # six decimals would say $0.000000
        (-0.0005, "-$0.000500"),
        (math.inf, "n/a"),
    ],
)
def test_dollars(value, text):
    assert units.dollars(value) == text


def test_dollars_estimated_zero_and_format_usd_are_the_same_formatter():
    assert units.dollars(0.0421, estimated=True) == "~$0.0421"
    assert units.dollars(0, zero="$0") == "$0"
    for v in (None, 0, 2.5, 0.05, 0.00046, 3e-8):
        assert format_usd(v) == units.dollars(v)
        assert format_usd(v, estimated=True) == units.dollars(v, estimated=True)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "$0"), (12_345, "$12k"), (123.4, "$123"), (12.3, "$12.30"), (0.0421, "$0.042"),
     (0.0042, "$0.0042"), (0.00046, "$0.00046"), (0.000021, "$0.000021"), (-0.5, "-$0.500"),
     (math.nan, "n/a")],
)
def test_short_dollars(value, text):
    assert units.short_dollars(value) == text


def test_time():
    assert units.ms(None) == "–"
    assert units.ms(1234.4) == "1,234 ms"
    assert units.ms(0.424, digits=2) == "0.42 ms"
    assert units.seconds(12.25, digits=2) == "12.25 s"
    assert units.duration(640) == "640 ms"
    assert units.duration(1234.5) == "1.23 s"
    assert units.duration(9870, compact=True) == "9,870"
    assert units.duration(12_345, compact=True) == "12.3s"
    assert units.duration(None, compact=True) == "–"


def test_shares_and_prices():
    assert units.percent(58.33, 1) == "58.3%"
    assert units.percent(None) == "n/a"
    assert units.share(0.5833) == "58%"
    assert units.share(0.5833, 1) == "58.3%"
    assert units.per_mtok(2.0) == "$2.00"
    assert units.per_mtok(0.05) == "$0.05"
    assert units.per_mtok(0.075) == "$0.075"
