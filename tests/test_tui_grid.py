"""The routes grid, the cell editor and the model picker, driven through Textual's Pilot.

Every test works on a copy of the packaged routes.toml in a temporary folder, with a temporary
cache folder and run log, so nothing touches the user's files. No test asserts on time.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli_w
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Static
from tui_helpers import new_app, settle, type_text

from tui.app.screens.cell_editor import CellEditor, validate_cell
from tui.app.screens.confirm import ChoiceScreen
from tui.app.screens.grid import DIRTY_TITLE, TITLE, GridScreen
from tui.app.screens.main import MainScreen
from tui.app.screens.model_picker import NO_PIN_LABEL, ModelPicker
from tui.app.widgets.model_list import (
    ModelList,
    clear_model_cache,
    model_problem,
    price_label,
)
from tui.router.run.session import Session
from tui.router.table.load import load_table
from tui.router.table.paths import default_routes_path
from tui.router.types import Cell

SIZE = (140, 45)
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


async def open_grid(pilot) -> GridScreen:
    await pilot.press("f2")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, GridScreen)
    return screen


def cell_text(grid: GridScreen, task: str, priority: str) -> str:
    return str(grid.grid.get_cell(task, priority))


async def open_editor(pilot, grid: GridScreen, task: str, priority: str) -> CellEditor:
    grid.select(task, priority)
    await pilot.pause()
    await pilot.press("enter")
    await settle(pilot)
    editor = pilot.app.screen
    assert isinstance(editor, CellEditor)
    assert (editor.task_name, editor.priority_name) == (task, priority)
    return editor


def a_different_model(table, cell: Cell) -> str:
    """A model of the table that is neither the cell's primary nor its fallback."""
    return next(m for m in table.models() if m not in (cell.primary, cell.fallback))


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
# Quitting, conflicts, reloading
# ---------------------------------------------------------------------------------------------


async def _edit_one_cell(pilot) -> tuple[str, str, str]:
    app = pilot.app
    grid = await open_grid(pilot)
    table = app.session.table
    task, priority = table.task_names[-1], table.priority_names[-1]
    new_model = a_different_model(table, table.cell(task, priority))
    editor = await open_editor(pilot, grid, task, priority)
    editor.field("primary").value = new_model
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert app.dirty
    return task, priority, new_model


async def test_quit_with_unsaved_edits_asks(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    before = routes_file.read_bytes()
    async with app.run_test(size=SIZE) as pilot:
        await _edit_one_cell(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-cancel")
        await pilot.pause()
        assert app.is_running
        assert not isinstance(app.screen, ChoiceScreen)
        assert app.dirty

        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-discard")
        await pilot.pause()
    assert app.return_code == 0
    assert routes_file.read_bytes() == before  # discarded, not saved


async def test_save_after_the_file_changed_on_disk_overwrite(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        task, priority, new_model = await _edit_one_cell(pilot)
        changed = routes_file.read_text("utf-8") + "\n# edited by someone else\n"
        routes_file.write_text(changed, "utf-8")

        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-overwrite")
        await settle(pilot)
        assert isinstance(app.screen, GridScreen)
        assert not app.dirty
        assert app.screen.title == TITLE
        assert load_table(routes_file).cell(task, priority).primary == new_model
        assert (tmp_path / "routes.toml.bak").read_text("utf-8") == changed


async def test_save_after_the_file_changed_on_disk_reload(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        task, priority, new_model = await _edit_one_cell(pilot)
        doc = tomllib.loads(routes_file.read_text("utf-8"))
        other = next(
            m for m in app.saved_table.models() if m not in (new_model, doc["baseline"]["model"])
        )
        doc["baseline"]["model"] = other
        routes_file.write_text(tomli_w.dumps(doc), "utf-8")

        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-reload")
        await settle(pilot)
        grid = app.screen
        assert isinstance(grid, GridScreen)
        assert not app.dirty
        assert app.session.table.baseline.model == other  # the file on disk, as it is now
        assert app.session.table.cell(task, priority).primary != new_model
        assert new_model not in cell_text(grid, task, priority)
        assert not (tmp_path / "routes.toml.bak").exists()


async def test_reload_asks_first_when_dirty(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        task, priority, new_model = await _edit_one_cell(pilot)
        grid = app.screen
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-cancel")
        await pilot.pause()
        assert app.screen is grid and app.dirty

        await pilot.press("r")
        await pilot.pause()
        await pilot.click("#choice-reload")
        await settle(pilot)
        assert app.screen is grid
        assert not app.dirty
        assert new_model not in cell_text(grid, task, priority)
        assert grid.title == TITLE


@contextlib.contextmanager
def unwritable(folder: Path):
    """Saving into ``folder`` fails while this is open: the folder is made read-only and, where
    that does not stop writes (tests run as root), files may not grow past 1 kB either (what a
    full disk does to a save: the write fails with EFBIG instead of ENOSPC)."""
    mode = folder.stat().st_mode
    folder.chmod(0o555)
    probe = folder / ".probe"
    limited = None
    try:
        try:
            probe.write_bytes(b"x")
        except OSError:
            pass  # read-only works here
        else:
            probe.unlink()
            limited = resource.getrlimit(resource.RLIMIT_FSIZE)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024, limited[1]))
        yield
    finally:
        if limited is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, limited)
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        folder.chmod(mode)


async def test_save_and_quit_that_fails_stays_with_the_error_and_the_edits(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    before = routes_file.read_bytes()
    async with app.run_test(size=SIZE) as pilot:
        task, priority, new_model = await _edit_one_cell(pilot)
        grid = app.screen
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        with unwritable(tmp_path):
            await pilot.click("#choice-save")
            await settle(pilot)
        # Still running, on a dialog that stays until dismissed and says why.
        assert app.is_running and app.return_code is None
        dialog = app.screen
        assert isinstance(dialog, ChoiceScreen)
        assert "Could not save" in dialog.question and "edits are kept" in dialog.question
        await pilot.click("#choice-ok")
        await settle(pilot)
        # The edit is still there, unsaved, and the grid keeps saying the save failed.
        assert app.screen is grid
        assert app.dirty and grid.title == DIRTY_TITLE
        assert app.session.table.cell(task, priority).primary == new_model
        assert "the last save failed" in str(grid.query_one("#grid-dirty", Static).content)
        assert routes_file.read_bytes() == before
        assert not list(tmp_path.glob(".routes.toml.*.tmp"))

        # With the folder writable again, save and quit works and keeps the edit.
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.click("#choice-save")
        await pilot.pause()
    assert app.return_code == 0
    assert load_table(routes_file).cell(task, priority).primary == new_model


async def test_ctrl_s_with_no_edits_writes_nothing_and_says_so(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        grid = await open_grid(pilot)
        stat = routes_file.stat()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is grid
        assert any("no changes to save" in str(n.message) for n in app._notifications)
        assert routes_file.stat().st_mtime_ns == stat.st_mtime_ns
        assert routes_file.stat().st_ino == stat.st_ino  # not replaced by an identical copy
        assert not (tmp_path / "routes.toml.bak").exists()  # no .bak rotated

        # An edit, then back to the saved value: nothing to save either.
        table = app.session.table
        task, priority = table.task_names[0], table.priority_names[0]
        cell = table.cell(task, priority)
        app.apply_table(table.with_cell(task, priority, Cell(cell.primary, None, None)))
        app.apply_table(table)
        assert app.save_routes() == "unchanged"
        assert not (tmp_path / "routes.toml.bak").exists()


def _change_on_disk(routes_file: Path, change) -> None:
    doc = tomllib.loads(routes_file.read_text("utf-8"))
    change(doc)
    routes_file.write_text(tomli_w.dumps(doc), "utf-8")


async def test_merge_applies_my_cells_onto_the_changed_file(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        task, priority, new_model = await _edit_one_cell(pilot)
        grid = app.screen
        # Someone else changes another cell and the baseline meanwhile.
        table = app.saved_table
        other_task, other_priority = table.task_names[0], table.priority_names[0]
        theirs_model = a_different_model(table, table.cell(other_task, other_priority))
        their_baseline = next(m for m in table.models() if m != table.baseline.model)

        def change(doc):
            doc["routes"][other_task][other_priority]["primary"] = theirs_model
            doc["baseline"]["model"] = their_baseline

        _change_on_disk(routes_file, change)
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceScreen)
        assert f"Your edited cells: {task} × {priority}" in dialog.question
        await pilot.click("#choice-merge")
        await settle(pilot)

        assert app.screen is grid and not app.dirty
        on_disk = load_table(routes_file)
        assert on_disk.cell(task, priority).primary == new_model  # mine
        assert on_disk.cell(other_task, other_priority).primary == theirs_model  # theirs
        assert on_disk.baseline.model == their_baseline  # theirs
        assert app.session.table == on_disk
        assert new_model in cell_text(grid, task, priority)


async def test_merge_of_a_cell_also_changed_on_disk_lists_it_and_does_not_save(
    routes_file, tmp_path
):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        task, priority, new_model = await _edit_one_cell(pilot)
        table = app.saved_table
        cell = table.cell(task, priority)
        theirs_model = next(
            m for m in table.models() if m not in (new_model, cell.primary, cell.fallback)
        )
        _change_on_disk(
            routes_file, lambda doc: doc["routes"][task][priority].update(primary=theirs_model)
        )
        changed = routes_file.read_bytes()
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.click("#choice-merge")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ChoiceScreen)
        assert f"Also changed on disk (your version kept): {task} × {priority}" in dialog.question
        await pilot.click("#choice-ok")
        await settle(pilot)
        assert routes_file.read_bytes() == changed  # not saved: the person checks first
        assert app.dirty
        assert app.session.table.cell(task, priority).primary == new_model
        await pilot.press("ctrl+s")  # no conflict now: merged onto the file as it is
        await settle(pilot)
        assert not app.dirty
        assert load_table(routes_file).cell(task, priority).primary == new_model


def test_merge_edits_applies_edited_cells_and_names_conflicts(routes_file):
    from tui.router.table.save import merge_edits

    base = load_table(routes_file)
    (t1, p1), (t2, p2), (t3, p3) = list(base.routes)[:3]
    models = base.models()
    pick = lambda *not_these: next(m for m in models if m not in not_these)  # noqa: E731
    mine_1 = Cell(pick(base.cell(t1, p1).primary))
    mine_2 = Cell(pick(base.cell(t2, p2).primary))
    theirs_2 = Cell(pick(base.cell(t2, p2).primary, mine_2.primary))
    theirs_3 = Cell(pick(base.cell(t3, p3).primary))
    mine = base.with_cell(t1, p1, mine_1).with_cell(t2, p2, mine_2)
    theirs = base.with_cell(t2, p2, theirs_2).with_cell(t3, p3, theirs_3)
    result = merge_edits(base, mine, theirs)
    assert result.applied == [(t1, p1), (t2, p2)]
    assert result.conflicts == [(t2, p2)]
    assert result.table.cell(t1, p1) == mine_1
    assert result.table.cell(t2, p2) == mine_2  # mine wins, and is named as a conflict
    assert result.table.cell(t3, p3) == theirs_3  # theirs kept
    # A cell the file already holds as I edited it is neither applied nor a conflict.
    same = merge_edits(base, mine, theirs.with_cell(t1, p1, mine_1))
    assert (t1, p1) not in same.applied and (t1, p1) not in same.conflicts


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
# The model picker (the main screen's "pin model")
# ---------------------------------------------------------------------------------------------


async def test_model_picker_results(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    results: list[str | None] = []
    async with app.run_test(size=SIZE) as pilot:
        table = app.session.table
        model = table.models()[2]
        for keys in (("enter",), ("escape",), None):
            picker = ModelPicker(app.session, current=None, allow_none=True)
            app.push_screen(picker, results.append)
            await settle(pilot)
            ml = picker.query_one(ModelList)
            assert ml.shown[0] == ""  # "route normally (no pin)" comes first
            if keys is None:
                await type_text(pilot, model)
                await pilot.press("enter")
            else:
                await pilot.press(*keys)
            await settle(pilot)
            assert not isinstance(app.screen, ModelPicker)
    assert results == ["", None, model]
    assert NO_PIN_LABEL == "route normally (no pin)"


async def test_model_picker_refuses_an_unknown_provider(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        picker = ModelPicker(app.session)
        app.push_screen(picker)
        await settle(pilot)
        await type_text(pilot, "nosuch/model")
        await pilot.pause()
        assert picker.query_one(ModelList).shown[0] == "nosuch/model"  # "use ... as typed"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is picker
        assert "unknown provider 'nosuch'" in picker.error


async def test_pin_model_from_the_main_screen(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        model = app.session.table.models()[1]
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)
        await type_text(pilot, model)
        await pilot.press("enter")
        await settle(pilot)
        assert main.pinned_model == model


async def test_model_list_offers_priced_library_models(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        picker = ModelPicker(app.session)
        app.push_screen(picker)
        await settle(pilot)
        ml = picker.query_one(ModelList)
        assert not ml.loading_models
        # More than the table names: the price library's models of the table's providers.
        assert len(ml.models) > len(app.session.table.models())
        assert set(app.session.table.models()) <= set(ml.models)
        await type_text(pilot, "gpt 5 mini")
        await pilot.pause()
        shown = [m for m in ml.shown if m]
        assert shown and all("gpt" in m and "5" in m and "mini" in m for m in shown)
        assert isinstance(picker.query_one("#model-filter"), Input)


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


async def test_model_list_adds_local_ollama_models(routes_file, tmp_path, monkeypatch):
    import tui.router.providers.ollama as ollama

    async def fake_list(base_url, timeout=0.3):
        return ["ollama/llama3.2:1b", "ollama/[/b]tiny"]

    monkeypatch.setattr(ollama, "list_ollama_models", fake_list)
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        picker = ModelPicker(app.session)
        app.push_screen(picker)
        await settle(pilot)
        ml = picker.query_one(ModelList)
        assert "ollama/llama3.2:1b" in ml.models and "ollama/[/b]tiny" in ml.models
        assert (
            price_label(
                "ollama/llama3.2:1b", ml.entry("ollama/llama3.2:1b").price, app.session.table
            )
            == "local"
        )
        await type_text(pilot, "ollama/")
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running


async def test_model_list_survives_a_failing_ollama_and_price_library(
    routes_file, tmp_path, monkeypatch
):
    import tui.router.providers.ollama as ollama

    async def broken_list(base_url, timeout=0.3):
        raise RuntimeError("[/b] boom")

    def broken_known_models(self):
        raise RuntimeError("[/b] no price data")

    monkeypatch.setattr(ollama, "list_ollama_models", broken_list)
    monkeypatch.setattr(Session, "known_models", broken_known_models)
    clear_model_cache()
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        picker = ModelPicker(app.session)
        app.push_screen(picker)
        await settle(pilot)
        ml = picker.query_one(ModelList)
        assert not ml.loading_models
        # The table's own models are still there to choose from.
        assert ml.models == app.session.table.models()
        model = app.session.table.models()[0]
        await type_text(pilot, model)
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running
        assert not isinstance(app.screen, ModelPicker)


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
