"""The savings screen, the label-correction modal, the verdict modal and the charts, through
Textual's Pilot.

Every test works on a copy of the packaged routes.toml in a temporary folder and a temporary run
log; the classifier's model cache is one temporary folder shared by the tests of this module (the
model is trained once). No test asserts on time.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import Button, Static
from tui_helpers import new_app

from tui.app.app import RouteDeckApp
from tui.app.screens.correction import CorrectionScreen
from tui.app.screens.savings import SavingsScreen, confident_accuracy, demo_workload_path
from tui.app.screens.verdict import VerdictScreen
from tui.app.widgets.charts import (
    BarRow,
    bar_chart,
    cumulative_chart,
    format_pct,
    sparkline,
    verdict_text,
    x_axis_text,
)
from tui.router.classifier.corrections import find_dev_set, session_table_after
from tui.router.cost.classified import WorkloadOptions
from tui.router.cost.pricing import format_usd
from tui.router.cost.projection import project
from tui.router.cost.sweep import VerdictStats
from tui.router.cost.workload import read_workload
from tui.router.table.load import load_table
from tui.router.types import Cell, PairResult, RunResult

SIZE = (140, 45)
REPO = Path(__file__).resolve().parents[1]
DEV_SET = REPO / "tests" / "data" / "dev.jsonl"
MARKUP_PROMPTS = ["[/b]", "[@click=app.quit]x[/]", "close this [/] tag [b]now"]

WORKLOAD = [
    {"prompt": "Write a Python function that reverses a linked list", "task_type": "code"},
    {"prompt": "Fix the off-by-one error in this loop: for i in range(len(a)+1): print(a[i])",
     "task_type": "code"},
    {"prompt": "Solve for x: 3x + 7 = 22", "task_type": "math"},
    {"prompt": "What is the derivative of x^3 * sin(x)?", "task_type": "math"},
    {"prompt": "Extract every email address from: contact bob@example.com or ann@example.org",
     "task_type": "extraction"},
    {"prompt": "Write a short poem about autumn rain", "task_type": "creative"},
    {"prompt": "Write a bedtime story about a dragon who is afraid of the dark",
     "task_type": "creative", "output_tokens": 900},
    {"prompt": "What is the capital of Australia?", "task_type": "factual"},
    {"prompt": "Who wrote Pride and Prejudice?", "task_type": "factual"},
    {"prompt": "Give me tips for a job interview tomorrow", "task_type": "general"},
    {"prompt": "urgently: plan a three-day trip to Lisbon"},
    *({"prompt": p} for p in MARKUP_PROMPTS),
]

# A prompt with markup in it, and the task it is corrected to (the label flips with one example).
CORRECTION_PROMPT = "[/b] list the colours in [@click=app.quit]x[/]"
CORRECTION_TASK = "extraction"


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


# The module's own classifier cache folder, and a run log per test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("module_private_folders")


@pytest.fixture
def workload_file(tmp_path) -> Path:
    path = tmp_path / "workload.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in WORKLOAD), "utf-8")
    return path


async def settle(pilot) -> None:
    from textual.worker import WorkerCancelled

    for _ in range(3):  # a worker's result may start another worker (classify → reproject)
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:
            pass  # an exclusive worker replaced by a newer one: settle on the newer one
        await pilot.pause()


def static_text(screen, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return content.plain if isinstance(content, Text) else str(content)


async def open_savings(pilot, workload: Path | None) -> SavingsScreen:
    await settle(pilot)  # the app's classifier first
    screen = SavingsScreen(workload)
    await pilot.app.push_screen(screen)
    await settle(pilot)
    assert pilot.app.screen is screen
    assert screen.projection is not None, screen.error
    return screen


def expected_projection(app: RouteDeckApp, path: Path, table=None, **kw):
    session = app.session
    return project(
        read_workload(path),
        table or session.table,
        session.load_classifier(),
        options=WorkloadOptions(
            output_tokens_by_task=session.runlog.avg_output_tokens_by_task(), **kw
        ),
    )


# ---------------------------------------------------------------------------------------------
# The savings screen
# ---------------------------------------------------------------------------------------------


async def test_savings_totals_match_the_engine(routes_file, workload_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_savings(pilot, workload_file)
        want = expected_projection(app, workload_file)
        got = screen.projection
        assert got.n == want.n == len(WORKLOAD)
        assert got.routed_usd == pytest.approx(want.routed_usd)
        assert got.baseline_usd == pytest.approx(want.baseline_usd)
        assert got.savings_pct == pytest.approx(want.savings_pct)
        assert got.n_uncertain == want.n_uncertain
        assert got.accuracy == pytest.approx(want.accuracy)
        totals = static_text(screen, "#savings-totals")
        assert format_usd(want.routed_usd) in totals
        assert format_usd(want.baseline_usd) in totals
        assert format_pct(want.savings_pct) in totals
        assert f"{want.n} prompts" in totals
        assert f"{want.n_labelled} labelled" in totals
        # The charts were drawn (task names from the table, the cumulative axis).
        await pilot.pause()
        assert screen.query_one("#savings-bars").rows
        assert len(screen.query_one("#savings-cumulative").points) == len(WORKLOAD)
        # The markup prompts neither crashed the screen nor ran an action.
        assert app.is_running
        app.save_screenshot(str(tmp_path / "savings.svg"))


async def test_savings_default_is_the_demo_workload(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_savings(pilot, None)
        assert screen.projection.n == len(read_workload(demo_workload_path()))
        assert "demo workload" in static_text(screen, "#savings-source")


async def test_savings_follow_unsaved_cell_edits(routes_file, workload_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_savings(pilot, workload_file)
        before = screen.projection
        table = app.session.table
        # What if every cell went to the baseline model? Routing would save nothing.
        edited = table
        for task, priority in table.routes:
            edited = edited.with_cell(task, priority, Cell(primary=table.baseline.model))
        app.apply_table(edited)
        screen.table_changed()  # the hook the app calls after an edit
        await settle(pilot)
        assert app.dirty  # nothing saved
        after = screen.projection
        assert after is not before
        assert after.routed_usd == pytest.approx(after.baseline_usd)
        assert after.routed_usd != pytest.approx(before.routed_usd)
        assert after.routed_usd == pytest.approx(
            expected_projection(app, workload_file, edited).routed_usd
        )
        assert "unsaved" in static_text(screen, "#savings-totals")

        # An edit made while another screen is on top is picked up when the screen resumes.
        one = next(iter(table.routes))
        app.push_screen(VerdictScreen())
        await pilot.pause()
        app.apply_table(edited.with_cell(*one, table.routes[one]))
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        assert screen.shown_table is app.session.table


async def test_threshold_explorer(routes_file, workload_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_savings(pilot, workload_file)
        table_thr = app.session.table.classifier.threshold
        assert screen.projection.threshold == pytest.approx(table_thr)

        for _ in range(30):  # all the way up: only certainty passes
            await pilot.press("right")
        await settle(pilot)
        high = screen.projection
        assert high.threshold == pytest.approx(1.0)
        explorer = static_text(screen, "#savings-explorer")
        assert f"{high.share_uncertain * 100:.1f}% ({high.n_uncertain} of" in explorer
        assert "the table uses" in explorer

        for _ in range(30):  # all the way down: nothing is uncertain
            await pilot.press("minus")
        await settle(pilot)
        low = screen.projection
        assert low.threshold == pytest.approx(0.0)
        assert low.n_uncertain == 0
        assert high.n_uncertain > low.n_uncertain
        assert "0.0% (0 of" in static_text(screen, "#savings-explorer")
        # The figures are the engine's for that threshold.
        want = expected_projection(app, workload_file)
        from tui.router.cost.projection import reproject

        assert low.routed_usd == pytest.approx(
            reproject(want.classified, app.session.table, threshold=0.0).routed_usd
        )
        assert not app.dirty  # exploring changes nothing
        # Off the sweep's grid, the confident accuracy is counted row by row: the same figure.
        at_half = reproject(want.classified, app.session.table, threshold=0.5)
        point = next(p for p in screen.sweep if p.threshold == pytest.approx(0.5))
        assert confident_accuracy(at_half, []) == (
            pytest.approx(point.accuracy_confident), point.n_confident_labelled
        )

        await pilot.press("0")
        await settle(pilot)
        assert screen.projection.threshold == pytest.approx(table_thr)


async def test_apply_threshold_makes_an_unsaved_edit(routes_file, workload_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_savings(pilot, workload_file)
        old = app.session.table.classifier.threshold
        await pilot.press("right", "right")
        await settle(pilot)
        assert not app.dirty
        await pilot.press("a")
        await settle(pilot)
        assert app.dirty
        assert app.session.table.classifier.threshold == pytest.approx(old + 0.10)
        assert screen.explored is None  # it follows the table now
        assert screen.projection.threshold == pytest.approx(old + 0.10)
        assert "(the table's)" in static_text(screen, "#savings-explorer")
        # Not written until saved.
        assert load_table(routes_file).classifier.threshold == pytest.approx(old)


async def test_savings_from_an_empty_run_log_says_so(routes_file, workload_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_savings(pilot, workload_file)
        await pilot.press("w")
        await settle(pilot)
        assert screen.source == "runlog"
        assert "no prompts yet" in static_text(screen, "#savings-totals")
        await pilot.press("w")
        await settle(pilot)
        assert screen.projection is not None and screen.projection.n == len(WORKLOAD)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SavingsScreen)


# ---------------------------------------------------------------------------------------------
# Corrections
# ---------------------------------------------------------------------------------------------


async def test_correction_saves_retrains_and_reports(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        decision = app.session.decide(CORRECTION_PROMPT)
        assert decision.classification.label != CORRECTION_TASK
        results = []
        app.push_screen(CorrectionScreen(CORRECTION_PROMPT, decision, dev_set=DEV_SET),
                        results.append)
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, CorrectionScreen)
        number = app.session.table.task_names.index(CORRECTION_TASK) + 1
        await pilot.press(str(number))
        await settle(pilot)

        # routes.toml on disk has the example; the app knows it as the saved table.
        on_disk = load_table(routes_file)
        assert CORRECTION_PROMPT in on_disk.tasks[CORRECTION_TASK].examples
        assert app.saved_table.tasks == on_disk.tasks
        assert not app.dirty
        # The session uses the retrained classifier at once.
        assert app.session.decide(CORRECTION_PROMPT).classification.label == CORRECTION_TASK
        # The report: the new label, the dev set before → after.
        report = static_text(modal, "#correction-report")
        result = modal.result
        assert result is not None and result.report.fixed
        assert f"classified now {CORRECTION_TASK}" in report
        before, after = result.report.dev_before, result.report.dev_after
        assert f"accuracy {before.accuracy * 100:.1f}% → {after.accuracy * 100:.1f}%" in report
        assert f"macro-F1 {before.macro_f1:.3f} → {after.macro_f1:.3f}" in report
        assert str(DEV_SET) in report

        await pilot.press("escape")
        await pilot.pause()
        assert results == [result]
        # The report says the file was written at once, and where the previous one went.
        assert "(the previous file kept as routes.toml.bak)" in report
        # A later save does not see a conflict with the file the correction wrote.
        table = app.session.table
        (task, priority), _cell = next(iter(table.routes.items()))
        app.apply_table(table.with_cell(task, priority, Cell(primary=table.baseline.model)))
        assert app.save_routes() == "saved"


async def test_correction_keeps_unsaved_cell_edits_unsaved(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.session.table
        (task, priority), cell = next(iter(table.routes.items()))
        edited_cell = Cell(primary=table.baseline.model)
        app.apply_table(table.with_cell(task, priority, edited_cell))
        app.push_screen(CorrectionScreen(CORRECTION_PROMPT, None, dev_set=None))
        await settle(pilot)
        number = app.session.table.task_names.index(CORRECTION_TASK) + 1
        await pilot.press(str(number))
        await settle(pilot)
        on_disk = load_table(routes_file)
        assert CORRECTION_PROMPT in on_disk.tasks[CORRECTION_TASK].examples
        assert on_disk.routes[(task, priority)] == cell  # the edit was not written ...
        assert app.session.table.routes[(task, priority)] == edited_cell  # ... and still applies
        assert app.dirty
        assert "no labelled set" in static_text(app.screen, "#correction-report")
        await pilot.press("enter")  # closes once the report is shown
        await pilot.pause()
        assert not isinstance(app.screen, CorrectionScreen)


async def test_correction_outside_the_repository_scores_the_packaged_labelled_prompts(
    routes_file, tmp_path
):
    # The routes file is in a temporary folder: no tests/data/dev.jsonl above it. The promise
    # "accuracy before → after" is kept with the labelled prompts shipped in the package.
    assert find_dev_set(routes_file) is None
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.push_screen(CorrectionScreen(CORRECTION_PROMPT, None))
        await settle(pilot)
        number = app.session.table.task_names.index(CORRECTION_TASK) + 1
        await pilot.press(str(number))
        await settle(pilot)
        report = static_text(app.screen, "#correction-report")
        assert "labelled set the demo workload packaged with RouteDeck" in report
        assert "accuracy " in report and "→" in report
        assert "no labelled set" not in report


def test_session_table_after_keeps_other_edits(routes_file):
    saved = load_table(routes_file)
    current = replace(saved, classifier=replace(saved.classifier, threshold=0.9))
    from tui.router.classifier.corrections import add_correction

    after = add_correction(saved, "totally new example text", "math")
    merged = session_table_after(current, saved, after)
    assert merged.classifier.threshold == 0.9
    assert merged.tasks == after.tasks


def test_find_dev_set(tmp_path):
    assert find_dev_set(REPO / "routes.toml") == DEV_SET
    assert find_dev_set(tmp_path / "routes.toml") is None
    assert find_dev_set(None) is None


# ---------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "want"), [("r", "routed"), ("t", "tie"), ("b", "baseline"), ("escape", None)]
)
async def test_verdict_keys(routes_file, tmp_path, key, want):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        got = []
        app.push_screen(VerdictScreen(), got.append)
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert got == [want]


def _side(side: str, model: str, cost: float | None) -> RunResult:
    return RunResult(side=side, model=model, simulated=True, text="", ttft_ms=None,
                     total_ms=None, input_tokens=10, output_tokens=20, usage_estimated=False,
                     cost_usd=cost)


async def test_verdict_shows_the_pair_as_text(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        decision = app.session.decide("What is the capital of France?")
        pair = PairResult(decision, _side("routed", "evil/[/b]", 0.0001),
                          _side("baseline", "evil/[@click=app.quit]x[/]", None), 12.0)
        got = []
        app.push_screen(VerdictScreen(pair), got.append)
        await pilot.pause()
        shown = static_text(app.screen, "#verdict-pair")
        assert "evil/[/b]" in shown and "evil/[@click=app.quit]x[/]" in shown and "n/a" in shown
        await pilot.press("t")
        await pilot.pause()
        assert got == ["tie"]


async def test_verdict_buttons(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        got = []
        app.push_screen(VerdictScreen(), got.append)
        await pilot.pause()
        app.screen.query_one("#verdict-baseline", Button).press()
        await pilot.pause()
        assert got == ["baseline"]


# ---------------------------------------------------------------------------------------------
# Charts (pure functions)
# ---------------------------------------------------------------------------------------------


def _plain(text: Text) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(text)
    return console.export_text()


def test_verdict_text():
    assert verdict_text(VerdictStats(11, 6, 2, 3)).plain == "73% ✓ (11)"
    assert verdict_text(VerdictStats()).plain == "no verdicts"


def test_the_chart_axis_never_reads_as_one_number():
    # Was "1 7 prompts" under a chart of 7 prompts: read as 17.
    assert x_axis_text(7, 7) == "prompts 1 to 7"
    assert x_axis_text(7, 30).startswith("1 ") and x_axis_text(7, 30).endswith(" 7")
    assert "prompts →" in x_axis_text(7, 30) and len(x_axis_text(7, 30)) == 30
    points = [(i, i * 0.001, i * 0.003) for i in range(1, 8)]
    assert "1 7 prompts" not in cumulative_chart(points, 40, 6).plain


def test_bar_chart_fits_a_narrow_panel():
    """At 80x24 the savings screen's bar panel is 35 cells wide: the full layout did not fit and
    its lines wrapped ("saves 83%" alone on a line). The narrow layout fits every line."""
    rows = [BarRow("extraction", 45, 0.037, 0.168), BarRow("general", 87, 0.055, 0.552),
            BarRow("code", 59, 0.062, 0.358, 2)]
    for width in (33, 35, 60, 90):
        lines = _plain(bar_chart(rows, width)).splitlines()
        assert len(lines) == 2 * len(rows)
        assert all(len(line) <= width for line in lines), (width, lines)
        assert sum("saves" in line for line in lines) == len(rows)
    narrow = _plain(bar_chart(rows, 35))
    assert "n=45" in narrow and "$0.552 saves 90%" in narrow and "2 unpriced" in narrow


def test_the_cumulative_legend_keeps_both_totals_in_a_narrow_panel():
    # The savings screen's right-hand panel at 80x24 leaves the chart 36 cells.
    points = [(i, i * 0.0011, i * 0.0062) for i in range(1, 301)]
    for width in (34, 36, 40, 60):
        legend = cumulative_chart(points, width, 6).plain.splitlines()[-1]
        assert len(legend) <= width
        assert "routed $0.33" in legend and legend.endswith("baseline $1.86"), (width, legend)


def test_charts_show_markup_labels_as_text():
    rows = [BarRow("[/b]", 3, 0.02, 0.05), BarRow("[@click=app.quit]x[/]", 1, 0.0, 0.01, 1)]
    out = _plain(bar_chart(rows, 90))
    assert "[/b]" in out and "saves 60%" in out and "1 unpriced" in out
    points = [(i, i * 0.001, i * 0.003) for i in range(1, 51)]
    chart = cumulative_chart(points, 40, 6).plain
    assert "prompts →" in chart and "50" in chart and "routed" in chart and "baseline" in chart
    assert cumulative_chart([], 40, 6).plain == "no priced prompts to chart"
    line = sparkline([0.0, 0.5, None, 1.0], marked=1)
    assert line.plain == "▁▅·█"


# ---------------------------------------------------------------------------------------------
# Snapshot at 80x24
# ---------------------------------------------------------------------------------------------

SNAPSHOT_WORKLOAD = [
    {"prompt": "Write a Python function that reverses a linked list", "task_type": "code"},
    {"prompt": "Fix the off-by-one error in this loop", "task_type": "code"},
    {"prompt": "Solve for x: 3x + 7 = 22", "task_type": "math"},
    {"prompt": "What is the derivative of x^3 * sin(x)?", "task_type": "math"},
    {"prompt": "Recommend a film for tonight", "task_type": "chat"},
    {"prompt": "How was your weekend?", "task_type": "chat", "output_tokens": 120},
    {"prompt": "urgent: review my SQL query for a missing join", "task_type": "code"},
]


def test_snapshot_savings_at_80x24(tmp_path, monkeypatch, snap_compare):
    """The savings screen on the classic terminal, on a small table of its own (tuning the
    packaged examples does not move it) and prices at a fixed date."""
    from test_tui_grid import _FixedDatetime
    from test_tui_main import SNAPSHOT_ROUTES

    import tui.router.cost.pricing as pricing

    monkeypatch.setattr(pricing, "datetime", _FixedDatetime)
    monkeypatch.chdir(tmp_path)  # the workload's path is shown relative to the folder
    (tmp_path / "routes.toml").write_text(SNAPSHOT_ROUTES, "utf-8")
    Path("workload.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in SNAPSHOT_WORKLOAD), "utf-8"
    )
    app = new_app(tmp_path / "routes.toml", tmp_path)

    async def run_before(pilot) -> None:
        screen = await open_savings(pilot, Path("workload.jsonl"))
        assert screen.projection.n == len(SNAPSHOT_WORKLOAD)

    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
