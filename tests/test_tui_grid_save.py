"""Saving the routes grid's edits, driven through Textual's Pilot: quitting with unsaved edits,
a routes.toml changed on disk meanwhile (overwrite, reload, or merge my cells onto it), a save
that fails (the edits and the error stay), and saving with nothing changed.

Every test works on a copy of the packaged routes.toml in a temporary folder, with a temporary
cache folder and run log, so nothing touches the user's files. No test asserts on time.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import tomllib
from pathlib import Path

import pytest
import tomli_w
from textual.widgets import Static
from tui_grid_helpers import SIZE, a_different_model, cell_text, open_editor, open_grid
from tui_helpers import new_app, settle

from tui.app.screens.confirm import ChoiceScreen
from tui.app.screens.grid import DIRTY_TITLE, TITLE, GridScreen
from tui.router.table.load import load_table
from tui.router.types import Cell

# The module's own classifier cache folder, and a run log per test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("module_private_folders")


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
