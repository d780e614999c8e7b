"""What the router makes of the prompt being typed: task, confidence, runner-up, priority, cell."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.router.sanitize import clean
from tui.router.types import Decision

BAR_WIDTH = 12


def confidence_bar(confidence: float | None, width: int = BAR_WIDTH) -> Text:
    if confidence is None:
        return Text("no confidence", style="italic dim")
    filled = round(max(0.0, min(1.0, confidence)) * width)
    return Text("█" * filled + "░" * (width - filled))


def render_decision(decision: Decision, *, priority_mode: str) -> Text:
    """One or two lines of plain Text; every outside string (labels, model ids and cues from
    routes.toml, reasons that quote the prompt) is cleaned of control sequences and appended,
    never parsed as markup."""
    c = decision.classification
    low = decision.uncertain
    tone = "bold yellow" if low else "bold green"
    out = Text(no_wrap=False)
    out.append(" ")
    out.append(clean(c.label), style=f"{tone} reverse")
    out.append(" ")
    bar = confidence_bar(c.confidence)
    bar.stylize("yellow" if low else "green")
    out.append_text(bar)
    if c.confidence is not None:
        out.append(f" {c.confidence:.2f}", style=tone)
    if low:
        out.append("  LOW CONFIDENCE", style="bold yellow")
    runners = [f"{clean(label)} {p:.2f}" for label, p in c.top[1:3]]
    if runners:
        out.append("   runner-up ", style="dim")
        out.append(", ".join(runners))
    out.append("\n ")
    out.append("priority ", style="dim")
    out.append(clean(decision.priority), style="bold")
    if priority_mode == "auto":
        out.append(f" (auto: {clean(decision.priority_reason)})", style="dim")
    else:
        out.append(" (pinned)", style="dim")
    out.append("   cell ", style="dim")
    out.append(clean(decision.cell.primary), style="bold")
    if decision.cell.fallback:
        out.append(" → ", style="dim")
        out.append(clean(decision.cell.fallback))
    out.append("   why ", style="dim")
    out.append(clean(decision.reason), style="yellow" if low else "")
    return out


class DecisionBar(Static):
    """Shows the latest routing decision for the text in the editor."""

    DEFAULT_CSS = """
    DecisionBar { height: 2; padding: 0 1; }
    """

    def show_decision(self, decision: Decision, *, priority_mode: str) -> None:
        self.set_class(decision.uncertain, "-uncertain")
        self.update(render_decision(decision, priority_mode=priority_mode))

    def show_message(self, message: str, *, style: str = "dim") -> None:
        self.set_class(False, "-uncertain")
        self.update(Text(" " + clean(message), style=style))
