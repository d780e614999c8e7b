"""The routes grid and the cell editor, driven through Textual's Pilot: every cell with its
prices, editing and validating a cell, model names that are markup shown as text, SVG snapshots
with prices frozen, and human verdicts per cell.

Saving, quitting with unsaved edits, a file changed on disk (overwrite, reload, merge) and a
failed save are in test_tui_grid_save.py; the model picker in test_tui_model_picker.py; the
helpers they share in tests/tui_grid_helpers.py.

Every test works on a copy of the packaged routes.toml in a temporary folder, with a temporary
cache folder and run log, so nothing touches the user's files. No test asserts on time.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli_w
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input
from tui_grid_helpers import SIZE, a_different_model, cell_text, open_editor, open_grid
from tui_helpers import new_app, settle, type_text

from tui.app.screens.cell_editor import CellEditor, validate_cell
from tui.app.screens.grid import DIRTY_TITLE, TITLE, GridScreen
from tui.app.screens.main import MainScreen
from tui.app.screens.model_picker import ModelPicker
from tui.app.widgets.model_list import ModelList, model_problem, price_label
from tui.router.table.load import load_table
from tui.router.table.paths import default_routes_path
from tui.router.types import Cell

# Model ids that would act as markup if they were ever parsed as such.
EVIL_PRIMARY = "evil/[/b]"
EVIL_FALLBACK = "evil/[@click=app.quit]x[/]"


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


# The module's own classifier cache folder, and a run log per test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("module_private_folders")


@pytest.fixture
def evil_routes_file(tmp_path) -> Path:
    """The default table plus a provider whose model ids are markup, used by one cell."""
    doc = tomllib.loads(default_routes_path().read_text("utf-8"))
    doc["providers"]["evil"] = {"kind": "simulated", "description": "[b]not markup[/b]"}
    task, priority = next(iter(doc["routes"].items()))[0], None
    priority = next(iter(doc["routes"][task]))
    doc["routes"][task][priority] = {"primary": EVIL_PRIMARY, "fallback": EVIL_FALLBACK}
    target = tmp_path / "routes.toml"
    target.write_text(tomli_w.dumps(doc), "utf-8")
    return target


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------


async def test_grid_shows_every_cell_with_prices(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        grid = await open_grid(pilot)
        table = app.session.table
        dt = grid.grid
        assert dt.row_count == len(table.task_names)
        assert len(dt.columns) == len(table.priority_names)
        assert [str(c.label) for c in dt.ordered_columns] == table.priority_names
        assert [str(r.label) for r in dt.ordered_rows] == table.task_names
        for (task, priority), cell in table.routes.items():
            text = cell_text(grid, task, priority)
            assert cell.primary in text
            if cell.fallback:
                assert f"→ {cell.fallback}" in text
            if cell.hedge_after_ms is not None:
                assert f"hedge after {cell.hedge_after_ms} ms" in text
            else:
                assert "hedge" not in text
            # Prices are loaded (in a worker): a price, "local" or "n/a", never a placeholder.
            assert "…" not in text
            assert " in / " in text or "n/a" in text or "local" in text
        assert grid.title == TITLE
        assert not app.dirty
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_edit_cell_then_save(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    before = routes_file.read_bytes()
    async with app.run_test(size=SIZE) as pilot:
        grid = await open_grid(pilot)
        table = app.session.table
        task, priority = table.task_names[1], table.priority_names[1]
        old = table.cell(task, priority)
        new_model = a_different_model(table, old)

        # Move with the keys from the top-left cell, then edit.
        grid.grid.cursor_coordinate = Coordinate(0, 0)
        await pilot.press("down", "right")
        assert grid.selected() == (task, priority)
        await pilot.press("enter")
        await settle(pilot)
        editor = app.screen
        assert isinstance(editor, CellEditor)
        # The search box has the focus and fills the primary: search, enter picks the match.
        await type_text(pilot, new_model)
        await pilot.press("enter")
        await pilot.pause()
        assert editor.field("primary").value == new_model
        await pilot.press("enter")  # enter in the field accepts the cell
        await settle(pilot)

        assert app.screen is grid
        assert app.session.table.cell(task, priority).primary == new_model
        assert app.session.table.cell(task, priority).fallback == old.fallback
        assert new_model in cell_text(grid, task, priority)
        assert app.dirty
        assert grid.title == DIRTY_TITLE
        assert routes_file.read_bytes() == before  # not saved yet

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert not app.dirty
        assert grid.title == TITLE
        assert routes_file.read_bytes() != before
        assert (tmp_path / "routes.toml.bak").read_bytes() == before
        reloaded = load_table(routes_file)
        assert reloaded == app.session.table
        assert reloaded.cell(task, priority).primary == new_model


async def test_editor_keeps_fields_and_edits_fallback_and_hedge(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        grid = await open_grid(pilot)
        table = app.session.table
        task, priority = table.task_names[0], table.priority_names[0]
        old = table.cell(task, priority)
        editor = await open_editor(pilot, grid, task, priority)
        assert editor.field("primary").value == old.primary
        assert editor.field("fallback").value == (old.fallback or "")
        # ctrl+t: the list now fills the fallback.
        await pilot.press("ctrl+t")
        assert editor.target == "fallback"
        fallback = a_different_model(table, old)
        await type_text(pilot, fallback)
        await pilot.press("enter")
        await pilot.pause()
        assert editor.field("fallback").value == fallback
        editor.field("hedge").value = "650"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.session.table.cell(task, priority) == Cell(old.primary, fallback, 650)
        assert "hedge after 650 ms" in cell_text(grid, task, priority)


async def test_escape_cancels_the_editor(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        grid = await open_grid(pilot)
        table = app.session.table
        task, priority = table.task_names[2], table.priority_names[2]
        editor = await open_editor(pilot, grid, task, priority)
        editor.field("primary").value = a_different_model(table, table.cell(task, priority))
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is grid
        assert not app.dirty
        assert app.session.table == table


@pytest.mark.parametrize(
    ("primary", "fallback", "hedge", "reason"),
    [
        ("{p}", "{p}", "", "different model"),
        ("gpt-5-mini", "", "", "provider/model"),
        ("nosuch/model-x", "", "", "unknown provider 'nosuch'"),
        ("{p}", "nosuch/model-x", "", "known providers: openai"),
        ("{p}", "{f}", "abc", "whole number"),
        ("{p}", "{f}", "-5", "whole number"),
        ("{p}", "{f}", "1.5", "whole number"),
        ("{p}", "", "300", "choose a fallback"),
        ("", "{f}", "", "primary model is required"),
    ],
)
async def test_invalid_cells_are_refused_with_a_reason(
    routes_file, tmp_path, primary, fallback, hedge, reason
):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        grid = await open_grid(pilot)
        table = app.session.table
        task, priority = table.task_names[0], table.priority_names[0]
        cell = table.cell(task, priority)
        p, f = cell.primary, a_different_model(table, cell)
        editor = await open_editor(pilot, grid, task, priority)
        editor.field("primary").value = primary.format(p=p, f=f)
        editor.field("fallback").value = fallback.format(p=p, f=f)
        editor.field("hedge").value = hedge
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is editor  # still open
        assert reason in editor.error
        assert app.session.table == table
        assert not app.dirty


def test_validate_cell_accepts_valid_cells(routes_file):
    table = load_table(routes_file)
    cell = next(iter(table.routes.values()))
    other = a_different_model(table, cell)
    assert validate_cell(cell.primary, "", "", table) == (Cell(cell.primary), None)
    assert validate_cell(f" {cell.primary} ", other, " 0 ", table) == (
        Cell(cell.primary, other, 0),
        None,
    )
    assert model_problem("openai/gpt-5-mini", table) is None
    assert "unknown provider" in (model_problem("zzz/x", table) or "")


def test_price_labels(routes_file):
    table = load_table(routes_file)
    assert price_label("openai/whatever", None, table) == "n/a"
    assert price_label("ollama/llama3.2", (0.0, 0.0), table) == "local"
    assert price_label("openai/gpt-5-mini", (0.25, 2.0), table) == "$0.25 in / $2.00 out"
    assert price_label("groq/x", (0.05, 0.075), table) == "$0.05 in / $0.075 out"


# ---------------------------------------------------------------------------------------------
# Untrusted names
# ---------------------------------------------------------------------------------------------


async def test_markup_in_model_names_is_shown_as_text(evil_routes_file, tmp_path):
    app = new_app(evil_routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        grid = await open_grid(pilot)
        table = app.session.table
        task, priority = table.task_names[0], table.priority_names[0]
        text = cell_text(grid, task, priority)
        assert EVIL_PRIMARY in text and EVIL_FALLBACK in text
        # Clicking the cell would run [@click=...] if it were markup.
        # (a click on the highlighted cell opens the editor).
        await pilot.click("#grid", offset=(20, 3))
        await settle(pilot)
        if not isinstance(app.screen, CellEditor):
            await pilot.click("#grid", offset=(20, 3))
            await settle(pilot)
        editor = app.screen
        assert isinstance(editor, CellEditor)
        assert (editor.task_name, editor.priority_name) == (task, priority)
        assert editor.field("primary").value == EVIL_PRIMARY
        await type_text(pilot, "evil/")
        await pilot.pause()
        ml = editor.query_one(ModelList)
        assert EVIL_PRIMARY in ml.shown and EVIL_FALLBACK in ml.shown
        await pilot.press("down", "down", "up")
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running
        assert app.screen is grid
        app.save_screenshot(path=str(tmp_path), filename="evil.svg")  # renders everything
        assert app.is_running


# ---------------------------------------------------------------------------------------------
# Snapshots (prices frozen at a fixed time: DeepSeek's prices depend on the time of day)
# ---------------------------------------------------------------------------------------------


class _FixedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: D102 - a frozen clock for the price library's look-ups
        fixed = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
        return fixed if tz is None else fixed.astimezone(tz)


@pytest.fixture
def frozen_prices(monkeypatch, tmp_path):
    import tui.router.cost.pricing as pricing

    monkeypatch.setattr(pricing, "datetime", _FixedDatetime)
    monkeypatch.chdir(tmp_path)  # the subtitle shows routes.toml relative to the folder


# The snapshots use a table of their own, so that tuning the packaged routes does not change
# them. Its task and priority names differ from the packaged ones on purpose: they are data.
SNAPSHOT_ROUTES = """
[baseline]
model = "openai/gpt-5.2"
fallback = "anthropic/claude-sonnet-4-5"

[priorities.thrifty]
description = "Cheapest acceptable."

[priorities.balanced]
cues = ["soon"]

[priorities.best]
cues = ["critical"]

[providers.openai]
kind = "openai-compatible"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"

[providers.anthropic]
kind = "anthropic"
api_key_env = "ANTHROPIC_API_KEY"

[providers.groq]
kind = "openai-compatible"
base_url = "https://api.groq.com/openai/v1"
api_key_env = "GROQ_API_KEY"

[providers.ollama]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"

[providers.acme]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"

[routes.coding.thrifty]
primary = "ollama/qwen2.5-coder:7b"
fallback = "openai/gpt-5-mini"

[routes.coding.balanced]
primary = "openai/gpt-5-mini"
fallback = "anthropic/claude-haiku-4-5"
hedge_after_ms = 700

[routes.coding.best]
primary = "anthropic/claude-opus-4-6"
fallback = "openai/gpt-5.2"

[routes.chit-chat.thrifty]
primary = "groq/llama-3.1-8b-instant"

[routes.chit-chat.balanced]
primary = "acme/house-model-v2"
fallback = "openai/gpt-5-nano"

[routes.chit-chat.best]
primary = "anthropic/claude-sonnet-4-5"
fallback = "openai/gpt-5.2"
hedge_after_ms = 1500

[tasks.coding]
examples = [
    "write a python function that reverses a list",
    "why does this stack trace say index out of range",
    "convert this bash loop to powershell",
    "review my SQL query for a missing join",
    "explain what this regular expression matches",
]

[tasks.chit-chat]
examples = [
    "how was your day",
    "tell me something nice",
    "what do you think about rainy weekends",
    "recommend a film for tonight",
    "say hello to my friend",
]
"""


@pytest.fixture
def snapshot_routes_file(tmp_path) -> Path:
    target = tmp_path / "routes.toml"
    target.write_text(SNAPSHOT_ROUTES, "utf-8")
    return target


def test_snapshot_grid(snapshot_routes_file, tmp_path, frozen_prices, snap_compare):
    app = new_app(snapshot_routes_file, tmp_path)

    async def run_before(pilot):
        await open_grid(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


def test_snapshot_grid_with_unsaved_edit(
    snapshot_routes_file, tmp_path, frozen_prices, snap_compare
):
    app = new_app(snapshot_routes_file, tmp_path)

    async def run_before(pilot):
        grid = await open_grid(pilot)
        table = app.session.table
        task, priority = table.task_names[0], table.priority_names[0]
        cell = table.cell(task, priority)
        app.apply_table(table.with_cell(task, priority, Cell(cell.primary, None, None)))
        grid.refresh_grid()
        await settle(pilot)
        grid.grid.move_cursor(row=0, column=0)
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


SMALL = (80, 24)


def test_snapshot_grid_at_80x24_scrolled_to_the_last_column(
    snapshot_routes_file, tmp_path, frozen_prices, snap_compare
):
    app = new_app(snapshot_routes_file, tmp_path)

    async def run_before(pilot):
        grid = await open_grid(pilot)
        grid.grid.move_cursor(row=0, column=0)
        await pilot.pause()
        await pilot.press("right", "right")  # sideways: whole columns, the header in line
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=SMALL)


def test_snapshot_cell_editor_at_80x24_with_a_search(
    snapshot_routes_file, tmp_path, frozen_prices, snap_compare
):
    app = new_app(snapshot_routes_file, tmp_path)

    async def run_before(pilot):
        grid = await open_grid(pilot)
        table = app.session.table
        editor = await open_editor(pilot, grid, table.task_names[0], table.priority_names[1])
        editor.query_one("#model-filter", Input).cursor_blink = False
        await type_text(pilot, "sonnet")
        await settle(pilot)
        assert editor.model_list.shown

    assert snap_compare(app, run_before=run_before, terminal_size=SMALL)


def test_grid_bindings_have_ids_and_tooltips():
    for cls in (GridScreen, CellEditor, ModelPicker):
        for binding in cls.BINDINGS:
            assert binding.id and binding.tooltip, (cls.__name__, binding.key)
    assert {b.key for b in GridScreen.BINDINGS} >= {"enter", "ctrl+s", "escape"}
    assert isinstance(DataTable, type)


async def test_grid_shows_human_verdicts_per_cell(routes_file, tmp_path):
    from tui.router.types import Classification, Decision, PairResult, RunResult

    app = new_app(routes_file, tmp_path)
    table = app.session.table
    task, priority = table.task_names[0], table.priority_names[0]
    cell = table.cell(task, priority)

    def side(name: str, model: str) -> RunResult:
        return RunResult(name, model, True, "answer", 100.0, 500.0, 10, 20, False, 0.001)

    c = Classification(task, 0.9, ((task, 0.9),), "local", "local classifier", 2.0)
    decision = Decision("a prompt", c, task, priority, "default", cell, False, "why")
    pair = PairResult(decision, side("routed", cell.primary), side("baseline", "openai/gpt-5.2"), 1)
    for verdict in ("routed", "tie", "baseline", "routed"):
        app.session.runlog.set_verdict(app.session.runlog.record(pair), verdict)

    async with app.run_test(size=SIZE) as pilot:
        grid = await open_grid(pilot)
        assert "75% ✓ (4)" in cell_text(grid, task, priority)
        other = cell_text(grid, table.task_names[1], priority)
        assert "✓" not in other
        # A new primary has no verdicts yet: the old model's do not judge it.
        editor = await open_editor(pilot, grid, task, priority)
        editor.field("primary").value = a_different_model(table, cell)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "✓" not in cell_text(grid, task, priority)
