"""The TUI on small terminals (80x24, the default of most terminal emulators, and 60x20) and the
first-time user's feedback, driven through Textual's Pilot: both costs stay visible, the footer
shows help and the screens, the cell editor's search lists its matches, the grid scrolls by whole
columns with its header in line, the first screen says which models are simulated, the why line
can be read in full.

Every test works on a copy of the packaged routes.toml and a run log in its own temporary folder;
no provider keys (every model simulated, 50 times faster than life). No test asserts on time.
"""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.widgets import Static
from tui_helpers import (
    find_on_screen,
    main_screen,
    pane,
    run,
    screen_lines,
    settle,
    type_text,
)

from tui.app.screens.cell_editor import CellEditor
from tui.app.screens.grid import GridScreen
from tui.app.screens.main import MainScreen
from tui.app.screens.why import WhyScreen
from tui.app.widgets.decision_bar import DecisionBar
from tui.app.widgets.footer import footer_order
from tui.app.widgets.run_pane import ONE_LINE_MIN_WIDTH, render_metrics
from tui.router.run.metrics import MetricsSnapshot

SMALL, TINY, WIDE = (80, 24), (60, 20), (140, 45)
CODE_PROMPT = "write a python function that reverses a linked list"

pytestmark = pytest.mark.usefixtures("close_shared_http_client", "module_private_folders")


@pytest.fixture(autouse=True)
def fast_sim(monkeypatch) -> None:
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")


def footer_line(app) -> str:
    return screen_lines(app)[-1]


def snap(**kw) -> MetricsSnapshot:
    fields = dict(
        model="openai/gpt-5.2", simulated=False, state="done", ttft_ms=1_312.0,
        elapsed_ms=18_180.0, input_tokens=1_234, output_tokens=12_345, tokens_per_s=1_234.0,
        tokens_estimated=True, cost_usd=0.010923, cost_estimated=True, badges=(),
        side="baseline", fallback_used=False, fallback_reason=None, hedged=False, retries=0,
        error=None,
    )
    fields.update(kw)
    known = MetricsSnapshot.__dataclass_fields__
    return MetricsSnapshot(**{k: v for k, v in fields.items() if k in known})


# ---------------------------------------------------------------------------------------------
# The panes' figures
# ---------------------------------------------------------------------------------------------


def test_pane_figures_keep_the_cost_and_drop_lesser_figures_first():
    m = snap()
    wide = render_metrics(m, 80).plain
    assert "\n" not in wide and "cost ~$" in wide and "TTFT" in wide and "tok/s" in wide
    # 80 columns (36 cells a pane): two lines, every figure.
    two = render_metrics(m, 36).plain.split("\n")
    assert len(two) == 2 and all(len(line) <= 36 for line in two)
    assert "TTFT" in two[0] and "cost ~$" in two[1] and "~1,234→~12,345" in two[1]
    # 60 columns and less: the speed goes first, then the TTFT ... never the cost.
    for width in (26, 20, 14):
        lines = render_metrics(m, width).plain.split("\n")
        assert "cost" in lines[-1], (width, lines)
    assert "tok/s" not in render_metrics(m, 20).plain
    # The one-line layout (a wide pane) drops figures too, rather than cut the cost.
    line = render_metrics(m, ONE_LINE_MIN_WIDTH).plain
    assert "\n" not in line and len(line) <= ONE_LINE_MIN_WIDTH and "cost ~$" in line
    assert "tok/s" not in line  # the least important figure went first


@pytest.mark.parametrize("size", [SMALL, TINY])
async def test_a_run_on_a_small_terminal_shows_both_costs_help_and_the_screens(make_app, size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        pair = main_screen(app).last_pair
        for side, result in (("routed", pair.routed), ("baseline", pair.baseline)):
            p = pane(app, side)
            shown = str(p.query_one(".pane-metrics", Static).content)
            assert "cost $" in shown
            # ... and on the screen, inside the pane (not cut off at its border).
            x, y = find_on_screen(app, shown.split("\n")[-1])
            assert p.region.contains(x, y)
            assert result.cost_usd is not None
        line = footer_line(app)
        for key in ("f1 Help", "f2 Routes", "f3 History", "f5 Savings"):
            assert key in line, line
        await pilot.press("f1")
        await settle(pilot)
        # Help wraps its lines: every description whole (it was cut at the screen's edge).
        help_text = app.screen.query_one("#help-text", Static)
        tooltip = MainScreen.BINDINGS[2].tooltip  # "Cycle the priority: auto (from cues ..."
        assert tooltip in str(help_text.content)
        assert help_text.region.right <= size[0]
        help_text.parent.scroll_to_widget(help_text, top=True)
        assert find_on_screen(app, "everywhere")


async def test_the_footer_of_every_screen_shows_help_and_the_screens_at_80_columns(make_app):
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        for key in ("f2", "f3", "f5"):
            await pilot.press(key)
            await settle(pilot)
            line = footer_line(app)
            assert "f1 Help" in line and "f2 Routes" in line and "f5 Savings" in line, line
            # Only keys shown whole: nothing cut mid-word under the palette key.
            assert line.rstrip().endswith("^p palette")


def test_footer_order_puts_help_and_the_screens_first():
    from textual.binding import Binding

    items = [(Binding(k, a, d), True, "") for k, a, d in [
        ("ctrl+j", "submit", "Run"), ("escape", "cancel_run", "Cancel"), ("ctrl+q", "quit", "Quit"),
        ("f1", "help", "Help"), ("f5", "savings", "Savings"), ("f2", "grid", "Routes"),
        ("alt+enter", "submit", "Run"),
    ]]
    order = [b.key for b, _, _ in footer_order(items)]
    assert order == ["f1", "f2", "f5", "ctrl+j", "escape", "ctrl+q"]


# ---------------------------------------------------------------------------------------------
# The cell editor and the grid at 80x24
# ---------------------------------------------------------------------------------------------


async def test_the_cell_editor_at_80x24_has_wide_fields_and_lists_a_search(make_app):
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        editor = app.screen
        assert isinstance(editor, CellEditor)
        for name in ("primary", "fallback"):
            assert editor.field(name).content_region.width >= 28  # was 4
        await type_text(pilot, "sonnet")
        await settle(pilot)
        options = editor.model_list.option_list
        assert options.option_count > 0
        assert options.content_region.height >= 5  # was 0: no rows at all
        first = editor.model_list.shown[0]
        assert "sonnet" in first and find_on_screen(app, first)
        # Choose it and accept: the cell is edited through the search.
        await pilot.press("enter")
        await pilot.pause()
        assert editor.field("primary").value == first
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, GridScreen)
        table = app.session.table
        assert table.cell(table.task_names[0], table.priority_names[0]).primary == first


async def test_model_ids_longer_than_the_list_is_wide_are_cut_not_wrapped(make_app):
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        ml = app.screen.model_list
        long_id = "openai/" + "a-very-long-model-name-" * 4
        ml._entries.setdefault(long_id, type(ml._entries[ml.models[0]])(long_id, (1.0, 2.0)))
        ml.set_filter("a-very-long-model-name")
        await settle(pilot)
        label = ml.option_list.get_option_at_index(0).prompt
        assert isinstance(label, Text)
        assert "…" in label.plain and "$1.00 in / $2.00 out" in label.plain
        assert label.cell_len <= ml.option_list.scrollable_content_region.width


def header_and_cells(app) -> tuple[str, str]:
    lines = screen_lines(app)
    grid = app.screen.grid
    y = grid.region.y
    return lines[y], lines[y + 1]


async def test_the_grid_scrolls_sideways_by_whole_columns_with_its_header_in_line(make_app):
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        grid = app.screen
        table = app.session.table
        dt = grid.grid
        for priority in table.priority_names:
            grid.select(table.task_names[0], priority)
            await settle(pilot)
            starts = dt._column_starts()
            assert round(dt.scroll_x) in starts  # never part of a column
            header, cells = header_and_cells(app)
            # The selected column's name heads the cell that shows its primary.
            primary = table.cell(table.task_names[0], priority).primary
            assert header.find(priority) == cells.find(primary[:12]), (header, cells)
        # Back to the first column.
        await pilot.press("home")
        grid.select(table.task_names[0], table.priority_names[0])
        await settle(pilot)
        assert round(dt.scroll_x) == 0


async def test_the_grid_header_stays_in_line_after_an_outside_edit_overwrite_and_an_edit(
    make_app, routes_file
):
    from tui.app.screens.confirm import ChoiceScreen
    from tui.router.types import Cell

    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        grid = app.screen
        table = app.session.table
        task, priority = table.task_names[-1], table.priority_names[-1]
        app.apply_table(table.with_cell(task, priority, Cell(table.baseline.model)))
        grid.refresh_grid()
        routes_file.write_text(routes_file.read_text("utf-8") + "\n# outside edit\n", "utf-8")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-overwrite")
        await settle(pilot)
        table = app.session.table
        first = table.cell(table.task_names[0], table.priority_names[0])
        app.apply_table(table.with_cell(table.task_names[0], table.priority_names[0],
                                        Cell(first.primary, None, None)))
        grid.refresh_grid()
        await settle(pilot)
        header, cells = header_and_cells(app)
        for priority in table.priority_names:
            primary = table.cell(table.task_names[0], priority).primary
            assert header.find(priority) == cells.find(primary), (header, cells)


# ---------------------------------------------------------------------------------------------
# First-time user
# ---------------------------------------------------------------------------------------------


async def test_the_first_screen_says_which_models_are_simulated_and_the_variable(make_app):
    app = make_app(env={"ANTHROPIC_API_KEY": "sk-ant-test-0123456789"})
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        intro = str(main_screen(app).query_one("#intro-text", Static).content)
        assert "Models without an API key run on a local simulator" in intro
        assert "openai ← OPENAI_API_KEY" in intro
        assert "Real: anthropic" in intro and "anthropic ←" not in intro
        assert find_on_screen(app, "OPENAI_API_KEY")
        assert "sk-ant-test" not in "\n".join(screen_lines(app))  # the name, never the key
        # The first run replaces it with the panes.
        await run(pilot, CODE_PROMPT)
        assert not main_screen(app).query_one("#intro").display
        assert find_on_screen(app, "cost $")


async def test_forced_simulation_says_so_on_the_first_screen(make_app):
    app = make_app(env={"ROUTEDECK_SIMULATE": "1", "OPENAI_API_KEY": "sk-test-0123456789"})
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        intro = str(main_screen(app).query_one("#intro-text", Static).content)
        assert "Every model is simulated" in intro and "ROUTEDECK_SIMULATE=1" in intro
        assert "openai ← OPENAI_API_KEY" in intro


async def test_a_new_run_clears_the_last_runs_savings_until_it_ends(make_app, fake_server):
    from fakeserver import Reply
    from tui_helpers import GUARD_S, OPENAI_KEY, until

    app = make_app(env={"ROUTEDECK_SIM_SPEED": "50"})
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        bar = main_screen(app).query_one("#comparison", Static)
        assert "routing saved" in str(bar.content)
        # The next run stalls on a real (loopback) provider: its line says "running…".
        app.session.env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake_server.openai_url}
        fake_server.route("gpt-5-mini", Reply.stall(after=2, seconds=GUARD_S))
        fake_server.route("gpt-5.2", Reply.stall(after=2, seconds=GUARD_S))
        await run(pilot, CODE_PROMPT, wait=False)
        await until(pilot, lambda: "running…" in str(bar.content), "running… shown")
        assert "routing saved" not in str(bar.content).split("\n")[0]
        assert "session: 1 run" in str(bar.content)  # the totals are the session's: kept
        await pilot.press("escape")
        await settle(pilot)
        assert str(bar.content).startswith(" run cancelled")
        assert app.session.totals.runs == 1


@pytest.mark.parametrize("size", [SMALL, WIDE])
async def test_the_why_line_is_shown_and_f6_shows_it_in_full(make_app, size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        prompt = "urgent: " + CODE_PROMPT + " and explain each step of it to a beginner"
        await type_text(pilot, prompt)
        await settle(pilot)
        decision = main_screen(app).last_decision
        bar = main_screen(app).query_one(DecisionBar)
        assert bar.size.height == 3
        assert find_on_screen(app, "why " + decision.reason[:30])
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, WhyScreen)
        full = str(app.screen.query_one("#why-text", Static).content)
        assert decision.reason in full
        assert decision.cell.fallback in full
        # Wrapped on the screen: its last words are visible too.
        assert find_on_screen(app, decision.reason[-20:])
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, WhyScreen)
