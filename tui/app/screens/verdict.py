"""After a side-by-side run: which answer was better? One key: r, t or b.

Returns ``"routed"``, ``"tie"`` or ``"baseline"`` (``runlog.VERDICTS``), or None when dismissed;
the caller records it with ``RunLog.set_verdict(run_id, verdict)``.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.router.sanitize import clean
from tui.router.types import PairResult
from tui.router.units import dollars

VERDICT_CHOICES: tuple[tuple[str, str, str], ...] = (
    ("routed", "Routed better", "success"),
    ("tie", "Tie", "default"),
    ("baseline", "Baseline better", "warning"),
)


def describe_pair(pair: PairResult) -> Text:
    """The two models and what each cost (model ids appended as plain text)."""
    out = Text()
    for name, side in (("routed  ", pair.routed), ("baseline", pair.baseline)):
        out.append(f"{name} ", style="dim")
        out.append(clean(side.model), style="bold")
        out.append(f"  {dollars(side.cost_usd, estimated=side.usage_estimated)}")
        if side.error:
            out.append("  failed", style="red")
        out.append("\n")
    out.rstrip()
    return out


class VerdictScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    VerdictScreen { align: center middle; }
    VerdictScreen > Vertical {
        width: auto; max-width: 100; height: auto; border: thick $accent; background: $surface;
        padding: 1 2;
    }
    VerdictScreen Static { width: auto; margin-bottom: 1; }
    VerdictScreen Horizontal { height: auto; width: auto; }
    VerdictScreen Button { margin-right: 1; }
    """

    BINDINGS = [
        Binding("r", "verdict('routed')", "Routed better", id="verdict_routed",
                tooltip="The routed model's answer was better"),
        Binding("t", "verdict('tie')", "Tie", id="verdict_tie",
                tooltip="Both answers were as good"),
        Binding("b", "verdict('baseline')", "Baseline better", id="verdict_baseline",
                tooltip="The baseline's answer was better"),
        Binding("escape", "verdict('')", "Skip", id="verdict_skip",
                tooltip="Close without recording a verdict"),
    ]

    def __init__(self, pair: PairResult | None = None) -> None:
        super().__init__()
        self.pair = pair

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Which answer was better?", style="bold"))
            if self.pair is not None:
                yield Static(describe_pair(self.pair), id="verdict-pair")
            with Horizontal():
                for verdict, label, variant in VERDICT_CHOICES:
                    key = verdict[0]
                    yield Button(Text(f"{label} ({key})"), id=f"verdict-{verdict}", variant=variant)

    def on_mount(self) -> None:
        self.query_one("#verdict-tie", Button).focus()

    def action_verdict(self, verdict: str) -> None:
        self.dismiss(verdict or None)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "").removeprefix("verdict-") or None)
