"""The routing decision for the prompt in the editor, in full: every line wrapped, every label
the classifier weighed (the main screen's decision bar cuts its lines to fit)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.app.widgets.decision_bar import render_decision
from tui.router.sanitize import clean
from tui.router.types import Decision
from tui.router.units import ms


def render_why(decision: Decision, *, priority_mode: str, pinned: str | None) -> Text:
    out = render_decision(decision, priority_mode=priority_mode, pinned=pinned, full=True)
    c = decision.classification
    out.append("\n\n every label", style="dim")
    out.append(f" ({clean(c.classifier)} classifier, {ms(c.elapsed_ms, digits=1)}):", style="dim")
    for label, p in c.top:
        out.append(f"\n   {clean(label)} {p:.2f}")
    out.append("\n\n escape closes", style="dim")
    return out


class WhyScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    WhyScreen { align: center middle; }
    WhyScreen > VerticalScroll {
        width: 96; max-width: 96%; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    WhyScreen Static { width: 1fr; height: auto; }
    """
    BINDINGS = [Binding("escape,f6,q", "dismiss", "Close", id="why_close", tooltip="Close")]

    def __init__(self, decision: Decision, *, priority_mode: str, pinned: str | None) -> None:
        super().__init__()
        self.decision = decision
        self.priority_mode = priority_mode
        self.pinned = pinned

    def compose(self) -> ComposeResult:
        box = VerticalScroll()
        box.border_title = "why this route"
        with box:
            yield Static(
                render_why(self.decision, priority_mode=self.priority_mode, pinned=self.pinned),
                id="why-text",
            )
