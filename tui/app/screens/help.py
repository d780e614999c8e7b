"""Every key, where it works and what it does, from the bindings themselves (remaps included)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

ABOUT = (
    "RouteDeck classifies each prompt as you type, routes it through the grid of task types × "
    "priorities, and runs it beside a frontier baseline so you can see what routing saves. "
    "Models whose API key is missing run on a clearly labelled simulator. Remap keys in "
    "keymap.toml (binding id = \"key\"); ctrl+p opens the command palette."
)


def binding_rows(app) -> list[tuple[str, str, str, str]]:
    from tui.app.screens.correction import CorrectionScreen
    from tui.app.screens.grid import GridScreen
    from tui.app.screens.history import HistoryScreen
    from tui.app.screens.main import MainScreen
    from tui.app.screens.savings import SavingsScreen
    from tui.app.screens.verdict import VerdictScreen
    from tui.app.widgets.prompt_editor import PromptEditor

    keymap = getattr(app, "_keymap", {}) or {}
    places = [
        ("everywhere", type(app).BINDINGS),
        ("prompt", PromptEditor.BINDINGS),
        ("main", MainScreen.BINDINGS),
        ("routes", GridScreen.BINDINGS),
        ("history", HistoryScreen.BINDINGS),
        ("savings", SavingsScreen.BINDINGS),
        ("correction", CorrectionScreen.BINDINGS),
        ("verdict", VerdictScreen.BINDINGS),
    ]
    rows = []
    for where, bindings in places:
        for b in bindings:
            if not isinstance(b, Binding):
                continue
            keys = keymap.get(b.id, b.key) if b.id else b.key
            rows.append((where, keys.replace(",", " / "), b.description, b.tooltip or ""))
    rows.append(("everywhere", "ctrl+p", "Commands", "The command palette: every action by name"))
    return rows


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90%; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    HelpScreen Static { height: auto; margin: 1 0; }
    HelpScreen DataTable { height: 1fr; }
    """
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close", id="help_close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(ABOUT))
            yield DataTable(cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("where", "key", "action", "what it does")
        for row in binding_rows(self.app):
            table.add_row(*(Text(cell) for cell in row))
        table.focus()
