"""The comparison line under the panes, and the session totals.

``ComparisonBar.show(pair, totals)`` after a run; ``show_running(...)`` while one is in flight
(the last run's figures are not shown as if they were this one's) and ``show_cancelled(...)``
after a cancel. A run on a pinned model (f4) is labelled as such and not counted as routing.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.router.sanitize import clean
from tui.router.types import PairResult
from tui.router.units import dollars, percent, seconds


def _usd(v: float | None) -> str:
    """A cost or a saving: zero is "$0" here (a saving of nothing, not a free run)."""
    return dollars(v, zero="$0")


def _savings(out: Text, pair: PairResult, pinned: str | None) -> None:
    saved, pct = pair.savings_usd, pair.savings_pct
    out.append("pinned run (not routing): " if pinned else "routing saved ", style="dim")
    if saved is None:
        out.append("n/a (a model has no known price)", style="yellow")
        return
    if pinned:
        out.append(f"{_usd(pair.routed.cost_usd)} vs baseline {_usd(pair.baseline.cost_usd)}")
        return
    style = "bold green" if saved >= 0 else "bold red"
    out.append(_usd(saved), style=style)
    if pct is not None:
        out.append(f" ({percent(pct)})", style=style)


def render_comparison(pair: PairResult | None, totals, pinned: str | None = None) -> Text:
    out = Text(" ")
    if pair is None:
        out.append("No run yet. ", style="dim")
        out.append("ctrl+j runs the prompt on the routed model and the baseline.", style="dim")
    else:
        _savings(out, pair, pinned)
        r, b = pair.routed.total_ms, pair.baseline.total_ms
        if r is not None and b is not None:
            diff = b - r
            out.append("   latency ", style="dim")
            word = "faster" if diff >= 0 else "slower"
            out.append(f"{seconds(abs(diff) / 1000, digits=2)} {word}", style="green" if diff >= 0 else "red")
        if pair.routed.simulated or pair.baseline.simulated:
            out.append("   (simulated)", style="yellow")
    _totals(out, totals)
    return out


def _totals(out: Text, totals) -> None:
    if totals is None or not totals.runs:
        return
    out.append("\n ")
    out.append(f"session: {totals.runs} run{'s' if totals.runs != 1 else ''}", style="dim")
    out.append("   routed ", style="dim")
    out.append(_usd(totals.routed_cost_usd))
    out.append(" vs baseline ", style="dim")
    out.append(_usd(totals.baseline_cost_usd))
    if totals.savings_pct is not None:
        pct = totals.savings_pct
        out.append(f"   saved {percent(pct)}", style="bold green" if pct >= 0 else "bold red")


def render_running(routed: str, baseline: str, totals) -> Text:
    out = Text(" ")
    out.append("running… ", style="bold")
    out.append(f"{clean(routed)} vs {clean(baseline)}", style="dim")
    out.append("   esc cancels", style="dim")
    _totals(out, totals)
    return out


def render_cancelled(totals) -> Text:
    out = Text(" ")
    out.append("run cancelled", style="bold")
    out.append(": no savings figures for it (it is not counted in the session)", style="dim")
    _totals(out, totals)
    return out


class ComparisonBar(Static):
    DEFAULT_CSS = """
    ComparisonBar { height: 2; padding: 0 1; background: $boost; }
    """

    def show(self, pair: PairResult | None, totals, *, pinned: str | None = None) -> None:
        self.update(render_comparison(pair, totals, pinned))

    def show_running(self, routed: str, baseline: str, totals) -> None:
        self.update(render_running(routed, baseline, totals))

    def show_cancelled(self, totals) -> None:
        self.update(render_cancelled(totals))
