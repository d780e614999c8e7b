"""Small charts drawn with Rich ``Text`` and Unicode blocks (no plotting dependency).

* :func:`bar_chart`: per task type, a routed bar and a baseline bar on one scale;
* :func:`cumulative_chart`: routed against baseline cost, cumulated over the prompts (an area
  chart: the routed area drawn over the baseline's);
* :func:`sparkline`: one row of eighth-blocks, with one position marked;
* :func:`verdict_text`: a grid cell's win-or-tie rate and number of verdicts.

Every label that comes from outside (task names from routes.toml, model ids) is cleaned of
control characters and appended as plain text, never parsed as markup. :class:`BarChart` and
:class:`CumulativeChart` are widgets that redraw these at their own size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tui.router.sanitize import clean
from tui.router.units import percent, share, short_dollars

__all__ = [
    "BASELINE_STYLE",
    "ROUTED_STYLE",
    "BarChart",
    "BarRow",
    "CumulativeChart",
    "bar_chart",
    "cumulative_chart",
    "format_pct",
    "short_usd",
    "sparkline",
    "verdict_text",
]

ROUTED_STYLE = "green"
BASELINE_STYLE = "dark_orange"
# Eighths of a cell, for horizontal bars (left-aligned) and vertical ones (bottom-aligned).
_H_EIGHTHS = " ▏▎▍▌▋▊▉█"
_V_EIGHTHS = " ▁▂▃▄▅▆▇█"
_SPARKS = "▁▂▃▄▅▆▇█"


# The one formatter (tui/router/units.py), under the names this module has always exported.
short_usd = short_dollars


def format_pct(value: float | None, digits: int = 1) -> str:
    """``"58.3%"``, or ``"n/a"`` for None (e.g. savings with a zero baseline)."""
    return percent(value, digits)


def _hbar(value: float, scale: float, width: int) -> str:
    """A left-aligned bar of ``width`` cells filled to ``value / scale``, in eighths."""
    if width <= 0:
        return ""
    frac = 0.0 if scale <= 0 or not math.isfinite(value) else max(0.0, min(1.0, value / scale))
    eighths = round(frac * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full
    if part:
        bar += _H_EIGHTHS[part]
    return bar.ljust(width)


@dataclass(frozen=True)
class BarRow:
    label: str  # untrusted (a task name from routes.toml): cleaned, never markup
    count: int
    routed: float
    baseline: float
    unpriced: int = 0

    @property
    def savings_pct(self) -> float | None:
        if self.baseline <= 0:
            return None
        return 100.0 * (self.baseline - self.routed) / self.baseline


def bar_chart(rows: Sequence[BarRow], width: int = 80) -> Text:
    """Two bars per row (routed, baseline) on one scale: the largest cost fills the bar area.

    Layout per row::

        code      n=52  routed   ██████▍          $0.041
                        baseline ████████████████ $0.120  saves 66%

    and in a panel too narrow for that, the count under the name::

        code       ██▍       $0.041
        n=52       ████████  $0.120 saves 66%
    """
    out = Text(no_wrap=True, overflow="crop")
    if not rows:
        out.append("no prompts", style="dim italic")
        return out
    label_w = min(14, max(4, *(len(clean(r.label)) for r in rows)))
    count_w = max(len(f"n={r.count}") for r in rows)
    money_w = max(len(short_usd(v)) for r in rows for v in (r.routed, r.baseline))
    tail_w = len("  saves -100%")
    bar_w = width - label_w - 1 - count_w - 1 - len("baseline ") - 1 - money_w - tail_w
    scale = max(max(r.routed, r.baseline) for r in rows)
    wide = bar_w >= 4
    if not wide:  # a narrow panel (the savings screen at 80x24): the count under the name
        label_w = max(label_w, count_w)
        bar_w = max(1, width - label_w - 1 - 1 - money_w - len(" saves -100%"))
    sep = "  " if wide else " "
    for i, r in enumerate(rows):
        if i:
            out.append("\n")
        name = clean(r.label)
        if len(name) > label_w:
            name = name[: label_w - 1] + "…"
        count = f"n={r.count}"
        out.append(name.ljust(label_w), style="bold")
        out.append(" ")
        if wide:
            out.append(count.ljust(count_w), style="dim")
            out.append(" ")
            out.append("routed   ", style="dim")
        _append_bar(out, r.routed, scale, bar_w, money_w, ROUTED_STYLE)
        if r.unpriced:
            out.append(f"{sep}{r.unpriced} unpriced", style="yellow")
        out.append("\n")
        if wide:
            out.append(" " * (label_w + 1 + count_w + 1))
            out.append("baseline ", style="dim")
        else:
            # The narrow layout: the bars' colours say which is which (green routed, orange
            # baseline, as in the cumulative chart's legend).
            out.append(count.ljust(label_w), style="dim")
            out.append(" ")
        _append_bar(out, r.baseline, scale, bar_w, money_w, BASELINE_STYLE)
        _append_savings(out, r.savings_pct, sep)
    return out


def _append_bar(out: Text, value: float, scale: float, bar_w: int, money_w: int, style: str) -> None:
    out.append(_hbar(value, scale, bar_w), style=style)
    out.append(" ")
    out.append(short_usd(value).rjust(money_w))


def _append_savings(out: Text, pct: float | None, sep: str) -> None:
    """`` saves 66%`` in green (or ``costs 12%`` in red) after a row's baseline bar."""
    if pct is not None:
        style = "bold green" if pct > 0 else ("bold red" if pct < 0 else "dim")
        word = "saves" if pct >= 0 else "costs"
        out.append(f"{sep}{word} {percent(abs(pct))}", style=style)


def _resample(points: Sequence[tuple[int, float, float]], columns: int) -> list[tuple[int, float, float]]:
    """``columns`` points taken evenly from ``points`` (the last one always included)."""
    n = len(points)
    if n == 0 or columns <= 0:
        return []
    if n <= columns:
        return list(points)
    return [points[min(n - 1, round((c + 1) * n / columns) - 1)] for c in range(columns)]


def cumulative_chart(
    points: Sequence[tuple[int, float, float]], width: int = 60, height: int = 10
) -> Text:
    """Routed (green) over baseline (orange) cost cumulated over the prompts, as an area chart.

    ``points`` are ``(prompts so far, routed USD, baseline USD)``, as
    ``Projection.cumulative()`` returns them. Each column is one sample; when there are fewer
    samples than columns the chart is narrower. The lower of the two areas is drawn over the
    higher one, so both stay visible whichever costs more.
    """
    out = Text(no_wrap=True, overflow="crop")
    if not points:
        out.append("no priced prompts to chart", style="dim italic")
        return out
    height = max(2, height)
    top = max(max(p[1], p[2]) for p in points)
    axis_labels = [short_usd(top), short_usd(top / 2), "$0"]
    axis_w = max(len(s) for s in axis_labels) + 1
    cols = _resample(points, max(1, width - axis_w - 1))
    scale = top if top > 0 else 1.0
    levels = [(p[1] / scale * height * 8, p[2] / scale * height * 8) for p in cols]
    routed_style = Style.parse(ROUTED_STYLE)
    base_style = Style.parse(BASELINE_STYLE)
    for row in range(height - 1, -1, -1):  # top row first
        if row == height - 1:
            label = axis_labels[0]
        elif row == (height - 1) // 2 and height >= 5:
            label = axis_labels[1]
        elif row == 0:
            label = axis_labels[2]
        else:
            label = ""
        out.append(label.rjust(axis_w - 1) + " ", style="dim")
        out.append("┤" if label else "│", style="dim")
        floor = row * 8
        for r_level, b_level in levels:
            lo, hi = (r_level, b_level) if r_level <= b_level else (b_level, r_level)
            lo_style, hi_style = (
                (routed_style, base_style) if r_level <= b_level else (base_style, routed_style)
            )
            lo_fill = max(0, min(8, round(lo - floor)))
            hi_fill = max(0, min(8, round(hi - floor)))
            if lo_fill >= 8:
                out.append("█", style=lo_style)
            elif lo_fill > 0:
                # The lower series' top inside this cell, the higher one's colour behind it.
                behind = Style(bgcolor=hi_style.color) if hi_fill >= 8 else Style()
                out.append(_V_EIGHTHS[lo_fill], style=lo_style + behind)
            elif hi_fill > 0:
                out.append(_V_EIGHTHS[hi_fill], style=hi_style)
            else:
                out.append(" ")
        out.append("\n")
    out.append(" " * axis_w + "└" + "─" * len(cols) + "\n", style="dim")
    out.append(" " * (axis_w + 1) + x_axis_text(cols[-1][0], len(cols)), style="dim")
    out.append("\n")
    _append_legend(out, short_usd(cols[-1][1]), short_usd(cols[-1][2]), width, axis_w + 1)
    return out


def _append_legend(out: Text, routed: str, baseline: str, width: int, indent: int) -> None:
    """``█ routed $0.330   █ baseline $1.75`` under the plot, tightened (smaller indent and
    gap) rather than cropped when the panel is narrow, so both totals stay readable."""
    body = len(f"█ routed {routed}") + len(f"█ baseline {baseline}")
    gap = 3
    if indent + body + gap > width:
        gap = 2 if body + 2 <= width else 1
        indent = max(0, min(indent, width - body - gap))
    out.append(" " * indent)
    out.append("█", style=ROUTED_STYLE)
    out.append(f" routed {routed}" + " " * gap)
    out.append("█", style=BASELINE_STYLE)
    out.append(f" baseline {baseline}")


def x_axis_text(n: int, width: int) -> str:
    """The x axis under a chart of ``n`` prompts ``width`` cells wide: "1" under its left end,
    ``n`` under its right end and the word between them ("1 7 prompts" read as 17 prompts)."""
    first, last = "1", str(n)
    word = "prompts →" if n != 1 else "prompt"
    inner = width - len(first) - len(last)
    if inner >= len(word) + 2:
        left = (inner - len(word)) // 2
        return first + " " * left + word + " " * (inner - len(word) - left) + last
    return f"prompts 1 to {n}" if n != 1 else "1 prompt"


def sparkline(
    values: Sequence[float | None],
    *,
    marked: int | None = None,
    lo: float | None = None,
    hi: float | None = None,
    style: str = "",
) -> Text:
    """One block per value between ``lo`` and ``hi`` (default: the values' range); None is
    drawn as ``·``; the ``marked`` position is shown reversed."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    lo = min(known, default=0.0) if lo is None else lo
    hi = max(known, default=1.0) if hi is None else hi
    span = hi - lo
    out = Text(no_wrap=True)
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            ch = "·"
        else:
            frac = 0.5 if span <= 0 else max(0.0, min(1.0, (v - lo) / span))
            ch = _SPARKS[round(frac * (len(_SPARKS) - 1))]
        out.append(ch, style=f"{style} reverse".strip() if i == marked else style)
    return out


def verdict_text(stats: Any) -> Text:
    """A cell's human verdicts as ``73% ✓ (11)``: the share of runs where the routed answer was
    better or as good, and how many verdicts; ``no verdicts`` when there are none.

    ``stats`` is a ``projection.VerdictStats`` (``n``, ``win_or_tie_rate``).
    """
    n = int(getattr(stats, "n", 0) or 0)
    rate = getattr(stats, "win_or_tie_rate", None)
    if not n or rate is None:
        return Text("no verdicts", style="dim")
    style = "green" if rate >= 0.8 else ("yellow" if rate >= 0.5 else "red")
    out = Text()
    out.append(f"{share(rate)} ✓", style=f"bold {style}")
    out.append(f" ({n})", style="dim")
    return out


class BarChart(Widget):
    """:func:`bar_chart` drawn at the widget's width."""

    DEFAULT_CSS = """
    BarChart { height: auto; min-height: 2; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[BarRow] = []
        self.message: Text | None = Text("…", style="dim")

    def set_rows(self, rows: Sequence[BarRow]) -> None:
        self.rows = list(rows)
        self.message = None
        self.refresh(layout=True)

    def show_message(self, message: Text | str) -> None:
        self.message = message if isinstance(message, Text) else Text(message, style="dim")
        self.refresh(layout=True)

    def render(self) -> Text:
        if self.message is not None:
            return self.message
        return bar_chart(self.rows, max(20, self.content_size.width))

    def get_content_height(self, container, viewport, width: int) -> int:
        if self.message is not None:
            return 1
        return max(1, 2 * len(self.rows))


class CumulativeChart(Widget):
    """:func:`cumulative_chart` drawn at the widget's size (the plot is 3 rows shorter than the
    widget: axis, labels and legend)."""

    DEFAULT_CSS = """
    CumulativeChart { height: 14; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.points: list[tuple[int, float, float]] = []
        self.message: Text | None = Text("…", style="dim")

    def set_points(self, points: Sequence[tuple[int, float, float]]) -> None:
        self.points = list(points)
        self.message = None
        self.refresh()

    def show_message(self, message: Text | str) -> None:
        self.message = message if isinstance(message, Text) else Text(message, style="dim")
        self.refresh()

    def render(self) -> Text:
        if self.message is not None:
            return self.message
        size = self.content_size
        return cumulative_chart(self.points, max(20, size.width), max(2, size.height - 3))
