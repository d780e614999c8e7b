"""The comparison line under the panes, and the session totals."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.router.types import PairResult


def _usd(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"${v:.6f}" if abs(v) < 0.01 else f"${v:.4f}"


def render_comparison(pair: PairResult | None, totals) -> Text:
    out = Text(" ")
    if pair is None:
        out.append("No run yet. ", style="dim")
        out.append("ctrl+j runs the prompt on the routed model and the baseline.", style="dim")
    else:
        saved, pct = pair.savings_usd, pair.savings_pct
        out.append("routing saved ", style="dim")
        if saved is None:
            out.append("n/a (a model has no known price)", style="yellow")
        else:
            style = "bold green" if saved >= 0 else "bold red"
            out.append(_usd(saved) if saved >= 0 else "-" + _usd(-saved), style=style)
            if pct is not None:
                out.append(f" ({pct:.0f}%)", style=style)
        r, b = pair.routed.total_ms, pair.baseline.total_ms
        if r is not None and b is not None:
            diff = b - r
            out.append("   latency ", style="dim")
            word = "faster" if diff >= 0 else "slower"
            out.append(f"{abs(diff) / 1000:.2f} s {word}", style="green" if diff >= 0 else "red")
        if pair.routed.simulated or pair.baseline.simulated:
            out.append("   (simulated)", style="yellow")
    if totals is not None and totals.runs:
        out.append("\n ")
        out.append(f"session: {totals.runs} run{'s' if totals.runs != 1 else ''}", style="dim")
        out.append("   routed ", style="dim")
        out.append(_usd(totals.routed_cost_usd))
        out.append(" vs baseline ", style="dim")
        out.append(_usd(totals.baseline_cost_usd))
        if totals.savings_pct is not None:
            out.append(f"   saved {totals.savings_pct:.0f}%", style="bold green" if totals.savings_pct >= 0 else "bold red")
    return out


class ComparisonBar(Static):
    DEFAULT_CSS = """
    ComparisonBar { height: 2; padding: 0 1; background: $boost; }
    """

    def show(self, pair: PairResult | None, totals) -> None:
        self.update(render_comparison(pair, totals))
