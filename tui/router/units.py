"""One way to write milliseconds, seconds, dollars and percentages, for every front end (the TUI's
panes, history, grid and charts, the CLI) and the engine's own sentences. Pure functions of
numbers; nothing here imports Textual.

::

    ms(1234.5)            -> "1,235 ms"        ms(0.42, digits=2) -> "0.42 ms"
    duration(1234.5)      -> "1.23 s"          duration(640) -> "640 ms"
    duration(12_345, compact=True) -> "12.3s"  (table columns: "640" below 10 s, no unit)
    seconds(12.25)        -> "12.2 s"
    dollars(0.00046)      -> "$0.000460"       dollars(4e-7) -> "$0.00000040"
    dollars(0.0421)       -> "$0.0421"         dollars(1234.5) -> "$1,234.50"
    dollars(0)            -> "free"            dollars(0, zero="$0") -> "$0"
    short_dollars(0.00046) -> "$0.00046"      (chart axes and bar ends)
    per_mtok(0.075)       -> "$0.075"          (a price per million tokens)
    percent(58.33, 1)     -> "58.3%"           share(0.5833) -> "58%"
"""

from __future__ import annotations

import math

NONE = "–"  # a figure not known yet (a time before the first token, say)
NA = "n/a"  # a figure that cannot be had (a cost with no known price)


# -- time --------------------------------------------------------------------------------------


def ms(value: float | None, *, digits: int = 0) -> str:
    """Milliseconds: ``"1,235 ms"``; ``"–"`` when unknown."""
    if value is None:
        return NONE
    return f"{value:,.{digits}f} ms"


def seconds(value: float | None, *, digits: int = 1) -> str:
    """Seconds: ``"12.3 s"``; ``"–"`` when unknown."""
    if value is None:
        return NONE
    return f"{value:,.{digits}f} s"


def duration(value_ms: float | None, *, compact: bool = False) -> str:
    """A time given in milliseconds, in the unit a person reads best: ``"640 ms"`` below a
    second, ``"1.23 s"`` from there. ``compact`` (a table column whose header says ms):
    ``"640"``, ``"9,870"``, then ``"12.3s"`` from ten seconds on."""
    if value_ms is None:
        return NONE
    if compact:
        return f"{value_ms:,.0f}" if value_ms < 10_000 else f"{value_ms / 1000:,.1f}s"
    return ms(value_ms) if value_ms < 1_000 else seconds(value_ms / 1000, digits=2)


# -- money -------------------------------------------------------------------------------------


def dollars(value: float | None, *, estimated: bool = False, zero: str = "free") -> str:
    """A cost as a person reads it: ``"$1,234.50"`` from a dollar, ``"$0.0421"`` from a cent,
    six decimals below a cent (``"$0.000460"``), more when six would not show two significant
    digits (``"$0.00000040"``). ``"n/a"`` when unknown; ``zero`` for 0 ("free": nothing was
    paid; ``"$0"`` for a difference); ``"~"`` first when ``estimated``; ``"-$…"`` below zero."""
    if value is None:
        return NA
    if value == 0:
        return zero
    if not math.isfinite(value):
        return NA
    sign = "-" if value < 0 else ""
    prefix = sign + ("~$" if estimated else "$")
    v = abs(value)
    if v >= 1:
        return f"{prefix}{v:,.2f}"
    if v >= 0.01:
        return f"{prefix}{v:.4f}"
    return f"{prefix}{v:.{max(6, _decimals_for(v, 2))}f}"


def short_dollars(value: float) -> str:
    """A compact dollar figure for chart axes and bar ends: ``"$12k"``, ``"$123"``,
    ``"$12.30"``, ``"$0.042"``, ``"$0.0042"``, ``"$0.00046"`` (two significant digits below a
    hundredth of a cent)."""
    if not math.isfinite(value):
        return NA
    v = abs(value)
    sign = "-" if value < 0 else ""
    if v == 0:
        return "$0"
    if v >= 10_000:
        return f"{sign}${v / 1000:,.0f}k"
    if v >= 100:
        return f"{sign}${v:,.0f}"
    if v >= 1:
        return f"{sign}${v:.2f}"
    if v >= 0.01:
        return f"{sign}${v:.3f}"
    if v >= 0.001:
        return f"{sign}${v:.4f}"
    return f"{sign}${v:.{_decimals_for(v, 2)}f}"


def per_mtok(value: float) -> str:
    """A price per million tokens: ``"$2.50"`` from a dollar or in whole cents (``"$0.05"``),
    else up to four significant digits (``"$0.075"``)."""
    cents = value * 100
    if value >= 1 or abs(cents - round(cents)) < 1e-9:
        return f"${value:,.2f}"
    return f"${value:.4g}"


def _decimals_for(v: float, significant: int) -> int:
    """Decimals that show ``significant`` digits of ``v`` (0 < v < 1)."""
    return max(0, -math.floor(math.log10(v)) + significant - 1)


# -- shares ------------------------------------------------------------------------------------


def percent(value: float | None, digits: int = 0) -> str:
    """A value already in percent: ``"58.3%"``; ``"n/a"`` for None (savings with no price or
    a zero baseline) or a value that is not finite."""
    if value is None or not math.isfinite(value):
        return NA
    return f"{value:.{digits}f}%"


def share(fraction: float | None, digits: int = 0) -> str:
    """A fraction (0..1) as a percentage: ``share(0.5833, 1)`` -> ``"58.3%"``."""
    return percent(None if fraction is None else fraction * 100, digits)
