"""The history screen: runs from the run log, totals, the task filter, a disabled log."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Select, Static
from tui_helpers import new_app, settle

from tui.app.app import RouteDeckApp
from tui.app.screens.history import COLUMNS, HistoryScreen, first_line
from tui.app.screens.main import MainScreen
from tui.router.run.session import Session
from tui.router.table.load import load_table
from tui.router.types import (
    AttemptSummary,
    Cell,
    Classification,
    Decision,
    PairResult,
    RunResult,
)

SIZE = (140, 45)


# The module's own classifier cache folder, and a run log per test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("module_private_folders")


def side(name: str, model: str, cost: float | None, *, simulated=True, **kw) -> RunResult:
    return RunResult(
        side=name,
        model=model,
        simulated=simulated,
        text="an answer",
        ttft_ms=kw.pop("ttft_ms", 250.0),
        total_ms=1200.0,
        input_tokens=40,
        output_tokens=120,
        usage_estimated=False,
        cost_usd=cost,
        attempts=(AttemptSummary(model, "primary", simulated, "ok", 40, 120, cost),),
        **kw,
    )


def pair(table, task: str, prompt: str, routed_cost, baseline_cost, **routed_kw) -> PairResult:
    priority = table.priority_names[0]
    cell = table.cell(task, priority)
    c = Classification(task, 0.9, ((task, 0.9),), "local", "local classifier", 4.0)
    decision = Decision(prompt, c, task, priority, "default", cell, False, f"{task}/{priority}")
    return PairResult(
        decision=decision,
        routed=side("routed", cell.primary, routed_cost, **routed_kw),
        baseline=side("baseline", table.baseline.model, baseline_cost),
        wall_ms=1300.0,
    )


def rows(screen: HistoryScreen) -> list[dict[str, str]]:
    dt = screen.query_one("#history-table", DataTable)
    keys = [k for k, _ in COLUMNS]
    return [
        dict(zip(keys, (str(c) for c in dt.get_row_at(i)), strict=True))
        for i in range(dt.row_count)
    ]


def totals_text(screen: HistoryScreen) -> str:
    return str(screen.query_one("#history-totals", Static).visual)


async def test_history_lists_runs_and_filters_by_task(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    table = app.session.table
    first, second = table.task_names[0], table.task_names[1]
    log = app.session.runlog
    log.record(pair(table, first, "first prompt\nsecond line", 0.001, 0.01))
    log.record(
        pair(
            table,
            second,
            "[/b] a [@click=app.quit]prompt[/] \x1b[2Jwith markup",
            0.002,
            0.004,
            fallback_used=True,
            hedged=True,
        )
    )
    log.record(pair(table, first, "x" * 300, None, 0.01))

    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        shown = rows(screen)
        assert len(shown) == 3
        newest, middle, oldest = shown
        assert oldest["task"] == first and oldest["prompt"] == "first prompt …"
        assert oldest["routed"] == table.cell(first, table.priority_names[0]).primary
        assert oldest["baseline"] == table.baseline.model
        assert oldest["r_cost"] == "$0.001000" and oldest["b_cost"] == "$0.0100"
        assert oldest["saving"] == "$0.009000 90%"
        assert oldest["ttft"] == "250 / 250" and oldest["mode"] == "sim"
        # Markup and escape sequences in the prompt are shown as text, cleaned.
        assert middle["prompt"] == "[/b] a [@click=app.quit]prompt[/] with markup"
        assert middle["flags"] == "fallback+hedge"
        assert newest["r_cost"] == "n/a" and newest["saving"] == "n/a"
        assert len(newest["prompt"]) <= 60 and newest["prompt"].endswith("…")
        # The highlighted run's prompt and reasons are shown under the table.
        detail = str(screen.query_one("#history-detail", Static).visual)
        assert detail.startswith("prompt " + "x" * 50)
        await pilot.press("down")
        await pilot.pause()
        detail = str(screen.query_one("#history-detail", Static).visual)
        assert "[@click=app.quit]prompt[/]" in detail and "\x1b" not in detail
        text = totals_text(screen)
        assert "3 runs" in text and "1 run without a known price" in text
        assert "saved $0.0110 (78.6%)" in text  # (0.01 + 0.004) - (0.001 + 0.002)

        # Keys 1..9 filter by the table's task types, 0 shows them all.
        await pilot.press("2")
        await settle(pilot)
        assert screen.task_filter == second
        assert [r["task"] for r in rows(screen)] == [second]
        assert screen.query_one(Select).value == second
        assert "1 run" in totals_text(screen) and "50.0%" in totals_text(screen)
        await pilot.press("1")
        await settle(pilot)
        assert [r["task"] for r in rows(screen)] == [first, first]
        await pilot.press("0")
        await settle(pilot)
        assert len(rows(screen)) == 3

        # The Select does the same.
        screen.query_one(Select).value = table.task_names[2]
        await settle(pilot)
        assert screen.task_filter == table.task_names[2]
        assert rows(screen) == []
        assert "0 runs" in totals_text(screen)

        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        assert app.is_running


async def test_history_without_a_run_log(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path, with_log=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        message = str(screen.query_one("#history-message", Static).visual)
        assert "run log is disabled" in message
        assert rows(screen) == []
        await pilot.press("1")
        await settle(pilot)
        assert app.is_running


async def test_history_shows_new_runs_when_refreshed(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    table = app.session.table
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        assert rows(screen) == []
        assert "0 runs" in totals_text(screen)
        app.session.runlog.record(pair(table, table.task_names[0], "hello", 0.0, 0.0))
        await pilot.press("r")
        await settle(pilot)
        assert len(rows(screen)) == 1


def test_first_line():
    assert first_line("\n\n  hello  \nworld") == "hello …"
    assert first_line("a\x1b]52;c;Zm9v\x07b") == "ab"
    assert first_line("") == ""
    assert first_line("y" * 100, width=10) == "y" * 9 + "…"


def test_history_bindings_have_ids_and_tooltips():
    for binding in HistoryScreen.BINDINGS:
        assert binding.id and binding.tooltip
    assert isinstance(Cell("a/b"), Cell)


async def test_history_survives_an_unreadable_log(routes_file, tmp_path):
    class BrokenLog:
        def recent(self, limit=50, task=None):
            raise RuntimeError("database is locked [/b]")

        def totals(self, task=None):
            raise RuntimeError("database is locked")

    app = RouteDeckApp(Session(table=load_table(routes_file), runlog=BrokenLog(), env={}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        message = str(screen.query_one("#history-message", Static).visual)
        assert "could not read the run log" in message and "[/b]" in message
        assert app.is_running
