"""Helpers the main-screen test modules share (test_tui_main.py, test_tui_main_run.py): the
terminal size, the code prompt, and reading what a run pane, the decision bar and the comparison
line show.

Plain functions, imported by plain name like tests/tui_helpers.py, whose helpers (Pilot, screen
text) they build on.
"""

from __future__ import annotations

from textual.widgets import Static
from tui_helpers import main_screen, static_text

from tui.app.app import RouteDeckApp
from tui.app.widgets.comparison import ComparisonBar
from tui.app.widgets.decision_bar import DecisionBar
from tui.app.widgets.run_pane import RunPane

SIZE = (140, 45)
CODE_PROMPT = "write a python function that reverses a linked list"


def header(p: RunPane) -> str:
    return static_text(p.query_one(".pane-header", Static))


def metrics(p: RunPane) -> str:
    return static_text(p.query_one(".pane-metrics", Static))


def error_line(p: RunPane) -> str:
    """The pane's error line, "" while it is hidden."""
    w = p.query_one(".pane-error", Static)
    return static_text(w) if w.display else ""


def discarded(p: RunPane) -> str:
    w = p.query_one(".pane-discarded", Static)
    return static_text(w) if p.query_one(".pane-discarded-box").display else ""


def decision_text(app: RouteDeckApp) -> str:
    return static_text(main_screen(app).query_one(DecisionBar))


def comparison_text(app: RouteDeckApp) -> str:
    return static_text(main_screen(app).query_one(ComparisonBar))

