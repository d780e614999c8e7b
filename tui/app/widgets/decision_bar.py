"""What the router makes of the prompt being typed: task, confidence, runner-up, priority, cell."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Static

from tui.router.sanitize import clean
from tui.router.types import Decision
from tui.router.units import dollars, ms

BAR_WIDTH = 12


def confidence_bar(confidence: float | None, width: int = BAR_WIDTH) -> Text:
    if confidence is None:
        return Text("no confidence", style="italic dim")
    filled = round(max(0.0, min(1.0, confidence)) * width)
    return Text("█" * filled + "░" * (width - filled))


def classifier_tag(decision: Decision, *, llm_pending: bool = False) -> Text | None:
    """Which classifier decided when an LLM classifier is in play: "by LLM 412 ms $0.000016",
    "LLM timeout: local label", or, for a label shown while typing that the LLM will be asked
    about when the prompt runs (``llm_pending``), "local label; LLM on run (^l now)"."""
    c = decision.classification
    call = c.llm
    if call is None:
        return Text(" · local label; LLM on run (^l now)", style="dim") if llm_pending else None
    if call.outcome == "unavailable":
        return Text(" · local label (LLM not called)", style="dim")
    if c.cached:
        return Text(" · by LLM (cached, free)", style="cyan")
    if call.outcome == "ok":
        cost = dollars(c.cost_usd, estimated=call.usage_estimated)
        return Text(f" · by LLM {ms(call.ms)} {cost}", style="cyan")
    return Text(f" · LLM {call.outcome} after {ms(call.ms)}: local label", style="yellow")


def render_decision(
    decision: Decision, *, priority_mode: str, pinned: str | None = None, full: bool = False,
    llm_pending: bool = False,
) -> Text:
    """Three lines of plain Text: the label with its confidence, which classifier decided
    (when an LLM classifier is in play: see :func:`classifier_tag`) and runners-up; the priority
    and the cell (or the pinned model that replaces it); why. Each line is cut with "…" where
    the bar is too narrow, unless ``full`` (the why screen), where lines wrap. Every outside
    string (labels, model ids and cues from routes.toml, reasons that quote the prompt) is
    cleaned of control sequences and appended, never parsed as markup."""
    c = decision.classification
    low = decision.uncertain
    tone = "bold yellow" if low else "bold green"
    out = Text(no_wrap=not full, overflow="fold" if full else "ellipsis")
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
    tag = classifier_tag(decision, llm_pending=llm_pending)
    if tag is not None:
        out.append_text(tag)
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
        out.append(" (chosen)", style="dim")
    if pinned:
        out.append("   ")
        out.append(" PINNED ", style="bold black on cyan")
        out.append(" ")
        out.append(clean(pinned), style="bold")
        out.append(" instead of ", style="dim")
        out.append(clean(decision.cell.primary))
        out.append(" (f4 unpins)", style="dim")
    else:
        out.append("   cell ", style="dim")
        out.append(clean(decision.cell.primary), style="bold")
        if decision.cell.fallback:
            out.append(" → ", style="dim")
            out.append(clean(decision.cell.fallback))
    out.append("\n ")
    out.append("why ", style="dim")
    out.append(clean(decision.reason), style="yellow" if low else "")
    return out


class DecisionBar(Static):
    """Shows the latest routing decision for the text in the editor. The why line is cut where
    the bar is narrow: f6 (or a click on the bar) shows the whole decision, wrapped."""

    DEFAULT_CSS = """
    DecisionBar { height: 3; padding: 0 1; }
    """

    class Clicked(Message):
        """The bar was clicked: show the decision in full."""

    def show_decision(
        self, decision: Decision, *, priority_mode: str, pinned: str | None = None,
        llm_pending: bool = False,
    ) -> None:
        self.set_class(decision.uncertain, "-uncertain")
        self.update(render_decision(decision, priority_mode=priority_mode, pinned=pinned,
                                    llm_pending=llm_pending))
        self.tooltip = Text("why: " + clean(decision.reason) + "\n(f6 or a click: in full)")

    def show_message(self, message: str, *, style: str = "dim") -> None:
        self.set_class(False, "-uncertain")
        self.tooltip = None
        self.update(Text(" " + clean(message), style=style))

    def on_click(self) -> None:
        self.post_message(self.Clicked())
