"""Helpers the routes-grid test modules share (test_tui_grid.py, test_tui_grid_save.py): the
terminal size, opening the grid and a cell's editor, reading a cell, and choosing another model.

Plain functions, imported by plain name like tests/tui_helpers.py, whose helpers they build on.
"""

from __future__ import annotations

from tui_helpers import settle

from tui.app.screens.cell_editor import CellEditor
from tui.app.screens.grid import GridScreen
from tui.router.types import Cell

SIZE = (140, 45)


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
