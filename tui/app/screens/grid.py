"""The routing table as a grid: task types (rows) × priorities (columns), editable cell by cell.

Task and priority names, models and providers all come from routes.toml: every one of them is
cleaned and shown as plain Text, never as markup. Prices are computed in a thread worker (the
price library takes a moment to load), so cells show "…" for a moment on the first opening.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from tui.app import HEADER_ICON
from tui.app.messages import SaveStateChanged
from tui.app.screens.base import DeckScreen
from tui.app.widgets.footer import KeyFooter
from tui.app.widgets.model_list import price_label, price_style
from tui.router.cost.pricing import price_per_mtok
from tui.router.sanitize import clean
from tui.router.types import Cell, RoutingTable

TITLE = "Routes"
DIRTY_TITLE = "Routes •"

Prices = dict[str, tuple[float, float] | None]


def _price_text(model: str, prices: Prices, table: RoutingTable) -> Text:
    if model not in prices:
        return Text("…", style="dim")
    label = price_label(model, prices[model], table)
    return Text(label, style=price_style(label) or "dim")


def render_cell(
    cell: Cell, table: RoutingTable, prices: Prices, verdicts=None, judged=None
) -> Text:
    """Primary and its price, then "→ fallback" and its price, then the hedge marker, then the
    human verdicts on runs through this cell's primary beside the LLM judge's (only when there
    are some)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(clean(cell.primary), style="bold")
    out.append("\n  ")
    out.append_text(_price_text(cell.primary, prices, table))
    out.append("\n")
    if cell.fallback:
        out.append("→ ", style="dim")
        out.append(clean(cell.fallback))
        out.append("\n  ")
        out.append_text(_price_text(cell.fallback, prices, table))
    else:
        out.append("→ no fallback", style="dim italic")
        out.append("\n")
    if cell.hedge_after_ms is not None:
        out.append("\n")
        out.append(f"⚡ hedge after {cell.hedge_after_ms} ms", style="magenta")
    if judged is not None and getattr(judged, "n", 0):
        from tui.app.widgets.judge_bar import render_quality

        out.append("\n")
        out.append_text(render_quality(verdicts, judged))
    elif verdicts is not None and getattr(verdicts, "n", 0):
        from tui.app.widgets.charts import verdict_text

        out.append("\n")
        out.append_text(verdict_text(verdicts))
    return out


def render_baseline(table: RoutingTable, prices: Prices) -> Text:
    out = Text()
    out.append("baseline ", style="dim")
    out.append(clean(table.baseline.model), style="bold")
    out.append("  ")
    out.append_text(_price_text(table.baseline.model, prices, table))
    if table.baseline.fallback:
        out.append("   → ", style="dim")
        out.append(clean(table.baseline.fallback))
        out.append("  ")
        out.append_text(_price_text(table.baseline.fallback, prices, table))
    out.append("\nprices: USD per million tokens, input / output · ", style="dim")
    out.append("⚡", style="magenta")
    out.append(" the fallback also starts when the primary is slow to its first token", style="dim")
    return out


def display_path(path: Path | None) -> str:
    """The routes file as a person reads it: relative to the current folder when inside it."""
    if path is None:
        return "routes.toml (packaged default, saved to ./routes.toml)"
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _judged_cells(runlog, table: RoutingTable, old: dict) -> dict:
    """The LLM judge's verdicts per cell from the run log (blocking); ``old`` when unreadable."""
    if runlog is None or getattr(runlog, "path", None) is None:
        return old
    try:
        from tui.router.run.judge import quality_by_cell

        return quality_by_cell(runlog, table, current_models_only=True)
    except Exception:
        return old  # a bonus, like the people's verdicts


class GridTable(DataTable):
    """A DataTable that scrolls sideways by whole columns.

    Scrolled to an arbitrary offset, the leftmost visible column showed the tail of its cells
    ("view" of "...-flash-preview") beside the row labels, with no header above it. Here the
    first column shown always starts at the row labels: the table may scroll until its last
    column is the first shown (the space after it is blank).
    """

    async def _on_idle(self, event: events.Idle) -> None:
        """Column widths are measured when idle, after new rows; lines drawn before that (the
        header, say, when the cursor scrolled the table as it was refilled) were cached under
        the same update count with the old widths, and the header stayed out of line with the
        columns. New widths: a new count, and the scroll snapped to whole columns again."""
        pending = bool(self._updated_cells) or self._require_update_dimensions
        await super()._on_idle(event)
        if pending:
            self._update_count += 1
            self.refresh()
            if self.cursor_type == "cell" and self.columns and self.row_count:
                self.scroll_x = self.whole_column_scroll(self.cursor_coordinate.column)

    def _column_starts(self) -> list[int]:
        starts, x = [], 0
        for column in self.ordered_columns:
            starts.append(x)
            x += column.get_render_width(self)
        return starts

    @property
    def max_scroll_x(self) -> int:
        starts = self._column_starts()
        return max(super().max_scroll_x, starts[-1] if starts else 0)

    def _scroll_cursor_into_view(self, animate: bool = False) -> None:
        super()._scroll_cursor_into_view(animate=False)
        if self.cursor_type == "cell" and self.columns:
            self.scroll_x = self.whole_column_scroll(self.cursor_coordinate.column)

    def whole_column_scroll(self, column: int) -> int:
        """The scroll offset that shows ``column`` whole with a column start at the left edge,
        as many columns to its left as fit, and no part of a column."""
        starts = self._column_starts()
        widths = [c.get_render_width(self) for c in self.ordered_columns]
        room = self.scrollable_content_region.width - self._row_label_column_width
        column = min(column, len(starts) - 1)
        end = starts[column] + widths[column]
        if starts[-1] + widths[-1] <= room:
            return 0  # everything fits
        first = column
        while first > 0 and end - starts[first - 1] <= room:
            first -= 1
        current = round(self.scroll_x)
        if current in starts and current <= starts[column] and end - current <= room:
            return current  # the cursor's column is already shown whole: do not jump
        return starts[first]


class GridScreen(DeckScreen):
    """Task types × priorities; enter edits a cell, ctrl+s saves, r reloads, escape goes back."""

    DEFAULT_CSS = """
    GridScreen { layout: vertical; }
    GridScreen #grid-baseline { height: auto; padding: 0 1; }
    GridScreen #grid-dirty { height: auto; max-height: 3; padding: 0 1; color: $warning; text-style: bold; display: none; }
    GridScreen #grid-dirty.-dirty { display: block; }
    GridScreen #grid { height: 1fr; }
    """

    BINDINGS = [
        Binding(
            "enter",
            "edit_cell",
            "Edit cell",
            id="grid_edit",
            tooltip="Edit the selected cell: primary, fallback, hedge delay (applies to the next run)",
            priority=True,
        ),
        Binding(
            "ctrl+s",
            "save",
            "Save",
            id="grid_save",
            tooltip="Save the table to routes.toml (asks first if the file changed on disk)",
        ),
        Binding(
            "r,ctrl+r",
            "reload",
            "Reload",
            id="grid_reload",
            tooltip="Reload routes.toml from disk (asks first when there are unsaved edits)",
        ),
        Binding("escape", "back", "Back", id="grid_back", tooltip="Back to the previous screen"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.prices: Prices = {}
        # Human verdicts per (task, priority), for runs through the cell's current primary.
        self.verdicts: dict[tuple[str, str], object] = {}
        # The LLM judge's verdicts per (task, priority), likewise.
        self.judged: dict[tuple[str, str], object] = {}
        # The table the grid shows (compared with the session's on resume).
        self.shown_table: RoutingTable | None = None


    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon=HEADER_ICON)
        yield Static("", id="grid-baseline")
        yield Static("", id="grid-dirty")
        yield GridTable(id="grid", cursor_type="cell", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.refresh_grid()
        self.query_one(DataTable).focus()

    def on_screen_resume(self) -> None:
        # Back from the editor, a save/reload question, or another screen (where runs may have
        # been judged): show what is current.
        self.refresh_grid()

    # -- showing ------------------------------------------------------------------------------

    @property
    def grid(self) -> DataTable:
        return self.query_one("#grid", DataTable)

    def refresh_grid(self, *, reload: bool = True) -> None:
        """Redraw everything from the session's table, keeping the cursor where it was; then
        (unless ``reload`` is False) read prices and verdicts again in a worker."""
        table = self.session.table
        dt = self.grid
        cursor = dt.cursor_coordinate
        dt.clear(columns=True)
        for name in table.priority_names:
            dt.add_column(Text(clean(name), style="bold"), key=name)
        for task in table.task_names:
            cells = [
                render_cell(
                    table.routes[(task, p)], table, self.prices, self.verdicts.get((task, p)),
                    self.judged.get((task, p)),
                )
                if (task, p) in table.routes
                else Text("missing", style="red")
                for p in table.priority_names
            ]
            dt.add_row(*cells, key=task, label=Text(clean(task), style="bold"), height=None)
        if dt.row_count and dt.is_valid_coordinate(cursor):
            dt.cursor_coordinate = cursor
        self.shown_table = table
        self.query_one("#grid-baseline", Static).update(render_baseline(table, self.prices))
        self.refresh_dirty()
        if reload:
            self.load_cell_data()

    def on_save_state_changed(self, _: SaveStateChanged) -> None:
        self.refresh_dirty()

    def refresh_dirty(self) -> None:
        dirty = self.deck.dirty
        self.title = DIRTY_TITLE if dirty else TITLE
        self.sub_title = clean(display_path(self.session.table.path))
        marker = self.query_one("#grid-dirty", Static)
        marker.set_class(dirty, "-dirty")
        note = Text()
        if dirty:
            note.append("● unsaved edits (they already apply to runs): ctrl+s saves, r reloads")
            if error := self.deck.last_save_error:
                note.append(f"\n  the last save failed: {clean(error)}", style="bold red")
        marker.update(note)

    @work(thread=True, exclusive=True, group="grid-data", exit_on_error=False)
    def load_cell_data(self) -> None:
        """Prices of the table's models (the price library is slow to load) and the verdicts
        per cell from the run log (SQLite): both off the event loop."""
        table = self.session.table
        prices = {m: price_per_mtok(m, table) for m in table.models() if m not in self.prices}
        verdicts = dict(self.verdicts)
        runlog = self.session.runlog
        if runlog is not None and getattr(runlog, "path", None) is not None:
            try:
                from tui.router.cost.sweep import cell_verdicts

                verdicts = cell_verdicts(runlog, table, current_models_only=True)
            except Exception:
                pass  # verdicts are a bonus: a log that cannot be read just shows none
        judged = _judged_cells(runlog, table, self.judged)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._cell_data_loaded, table, prices, verdicts, judged)

    def _cell_data_loaded(
        self, table: RoutingTable, prices: Prices, verdicts: dict, judged: dict | None = None
    ) -> None:
        self.prices.update(prices)
        if table is self.session.table:
            self.verdicts = verdicts
            self.judged = judged if judged is not None else self.judged
        self.refresh_grid(reload=False)

    # -- the selected cell --------------------------------------------------------------------

    def selected(self) -> tuple[str, str] | None:
        """``(task, priority)`` under the cursor."""
        dt = self.grid
        if not dt.row_count or not dt.columns:
            return None
        try:
            row_key, column_key = dt.coordinate_to_cell_key(dt.cursor_coordinate)
        except Exception:
            return None
        return str(row_key.value), str(column_key.value)

    def select(self, task: str, priority: str) -> None:
        """Move the cursor to a cell (used by tests and the command palette)."""
        table = self.session.table
        self.grid.cursor_coordinate = Coordinate(
            table.task_names.index(task), table.priority_names.index(priority)
        )

    @on(DataTable.CellSelected, "#grid")
    def _cell_clicked(self, event: DataTable.CellSelected) -> None:
        event.stop()
        self.action_edit_cell()

    # -- actions ------------------------------------------------------------------------------

    def action_edit_cell(self) -> None:
        where = self.selected()
        if where is None:
            return
        task, priority = where
        table = self.session.table
        cell = table.routes.get((task, priority))
        if cell is None:
            self.notify(Text("this cell is missing from the table"), severity="warning")
            return
        from tui.app.screens.cell_editor import CellEditor

        def edited(new: Cell | None) -> None:
            if new is None:
                return
            current = self.session.table
            if current.routes.get((task, priority)) == new:
                return
            self.deck.apply_table(current.with_cell(task, priority, new))
            self.refresh_grid()
            note = Text(f"{clean(task)} × {clean(priority)} → {clean(new.primary)}")
            note.append("  (applies to the next run; ctrl+s saves)", style="dim")
            self.notify(note, timeout=3)

        self.app.push_screen(CellEditor(self.session, task, priority, cell), edited)

    def action_save(self) -> None:
        self.deck.save_with_conflict_check(then=self.refresh_grid)
        self.refresh_dirty()

    def action_reload(self) -> None:
        if not self.deck.dirty:
            self._reload()
            return
        from tui.app.screens.confirm import Choice, ChoiceScreen

        def decided(choice: str | None) -> None:
            if choice == "reload":
                self._reload()

        self.app.push_screen(
            ChoiceScreen(
                "Reloading routes.toml drops the unsaved edits to the table.",
                [
                    Choice("reload", "Reload and drop my edits", "warning"),
                    Choice("cancel", "Keep editing", "default"),
                ],
            ),
            decided,
        )

    def _reload(self) -> None:
        self.deck.reload_routes()
        self.refresh_grid()

    def action_back(self) -> None:
        self.app.pop_screen()
