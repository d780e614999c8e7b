"""Every key, where it works and what it does, from the bindings themselves (remaps included),
and which models are simulated. Lines wrap, so nothing is cut on an 80-column terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.app.screens.base import DeckModal

if TYPE_CHECKING:
    from tui.app.app import RouteDeckApp

ABOUT = (
    "RouteDeck classifies each prompt as you type, routes it through the grid of task types × "
    "priorities, and runs it beside a frontier baseline so you can see what routing saves. "
    "Remap keys in ~/.config/routedeck/keymap.toml (binding id = \"key\"); ctrl+p opens the "
    "command palette."
)


def binding_rows(app) -> list[tuple[str, str, str, str]]:
    """``(where, keys, action, what it does)`` for every binding with an id or a description;
    "what it does" is never empty (the action's name when a binding has no tooltip)."""
    from tui.app.screens.cell_editor import CellEditor
    from tui.app.screens.correction import CorrectionScreen
    from tui.app.screens.grid import GridScreen
    from tui.app.screens.history import HistoryScreen
    from tui.app.screens.main import MainScreen
    from tui.app.screens.savings import SavingsScreen
    from tui.app.screens.verdict import VerdictScreen
    from tui.app.screens.why import WhyScreen
    from tui.app.widgets.prompt_editor import PromptEditor

    keymap = getattr(app, "_keymap", {}) or {}
    places = [
        ("everywhere", type(app).BINDINGS),
        ("prompt", PromptEditor.BINDINGS),
        ("main", MainScreen.BINDINGS),
        ("routes", GridScreen.BINDINGS),
        ("cell editor", CellEditor.BINDINGS),
        ("history", HistoryScreen.BINDINGS),
        ("savings", SavingsScreen.BINDINGS),
        ("correction", CorrectionScreen.BINDINGS),
        ("verdict", VerdictScreen.BINDINGS),
        ("why", WhyScreen.BINDINGS),
    ]
    rows = []
    for where, bindings in places:
        for b in bindings:
            if not isinstance(b, Binding):
                continue
            keys = keymap.get(b.id, b.key) if b.id else b.key
            rows.append((where, keys.replace(",", " / "), b.description, b.tooltip or b.description))
    rows.append(("everywhere", "ctrl+p", "Commands", "The command palette: every action by name"))
    return rows


def render_help(app: RouteDeckApp) -> Text:
    out = Text(ABOUT + "\n\n")
    from tui.app.widgets.intro import render_providers

    out.append_text(render_providers(app.session))
    place = None
    for where, keys, action, what in binding_rows(app):
        if where != place:
            place = where
            out.append(f"\n\n{where}", style="bold underline")
        out.append("\n  ")
        out.append(keys.ljust(12), style="bold")
        out.append("  ")
        out.append(action, style="bold")
        if what and what != action:
            out.append(f": {what}")
    return out


class HelpScreen(DeckModal[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100; max-width: 96%; height: 90%; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen Static { width: 1fr; height: auto; }
    """
    BINDINGS = [
        Binding("escape,f1,q", "dismiss", "Close", id="help_close", tooltip="Close the help"),
    ]

    def compose(self) -> ComposeResult:
        box = VerticalScroll()
        box.border_title = "keys · escape closes"
        with box:
            yield Static(render_help(self.deck), id="help-text")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
