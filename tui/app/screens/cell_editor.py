"""The cell editor: primary model, fallback model and hedge delay of one (task, priority) cell.

Models are typed into their fields or chosen from the searchable model list below them; the list
fills the field it is choosing for (the primary at first; focusing a field, or ctrl+t, switches).
Accepting validates everything and shows the reason in the modal when something is wrong; the
modal only ever returns a valid :class:`Cell` (or None when cancelled).
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import DescendantFocus
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui.app.widgets.model_list import ModelList, model_problem, price_label, price_style
from tui.router.sanitize import clean
from tui.router.types import Cell, RoutingTable

FIELDS = ("primary", "fallback")


def validate_cell(
    primary: str, fallback: str, hedge: str, table: RoutingTable
) -> tuple[Cell | None, str | None]:
    """``(cell, None)`` when the three fields make a valid cell, else ``(None, reason)``.

    Fields are taken as typed (stripped); an empty fallback or hedge means none.
    """
    primary, fallback, hedge = clean(primary).strip(), clean(fallback).strip(), hedge.strip()
    if not primary:
        return None, "the primary model is required"
    if reason := model_problem(primary, table):
        return None, f"primary: {reason}"
    if fallback:
        if reason := model_problem(fallback, table):
            return None, f"fallback: {reason}"
        if fallback == primary:
            return None, "the fallback must be a different model from the primary"
    hedge_ms: int | None = None
    if hedge:
        if not (hedge.isascii() and hedge.isdigit()):
            return None, (
                f"hedge delay {clean(hedge)!r} must be a whole number of milliseconds, "
                "0 or more (empty for no hedging)"
            )
        hedge_ms = int(hedge)
        if not fallback:
            return None, "hedging starts the fallback model: choose a fallback, or clear the delay"
    return Cell(primary, fallback or None, hedge_ms), None


def _table_problem(table: RoutingTable, task: str, priority: str, cell: Cell) -> str | None:
    """What the engine's own validation says about this cell (e.g. a model id shaped like a key).
    Problems elsewhere in the table are not this editor's business."""
    try:
        from tui.router.table.save import table_problems

        problems = table_problems(table.with_cell(task, priority, cell))
    except Exception:  # the validator is optional here; the save validates again
        return None
    prefix = f"routes.{task}.{priority}"
    for p in problems:
        if p.key == prefix or p.key.startswith(prefix + "."):
            return p.message
    return None


class CellEditor(ModalScreen[Cell | None]):
    """Edit one cell; dismisses with the new :class:`Cell`, or None when cancelled."""

    DEFAULT_CSS = """
    CellEditor { align: center middle; }
    CellEditor > #cell-editor {
        width: 124; max-width: 98%; height: 44; max-height: 96%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    CellEditor #cell-title { height: auto; margin: 0 0 1 0; }
    CellEditor .field-row { height: 3; }
    CellEditor .field-label { width: 16; padding: 1 1 0 0; text-align: right; }
    CellEditor .field-row Input { width: 1fr; }
    CellEditor .field-info { width: 52; padding: 1 0 0 1; }
    CellEditor #cell-error { height: auto; color: $error; text-style: bold; padding: 0 1; }
    CellEditor #cell-buttons { height: 3; align-horizontal: right; }
    CellEditor #cell-buttons Button { margin-left: 1; }
    CellEditor .field-row Input.-target { border: tall $accent; }
    /* 80 columns: the whole width, narrower labels and prices, so a model id fits. */
    CellEditor.-narrow > #cell-editor { max-width: 100%; }
    CellEditor.-narrow .field-label { width: 11; }
    CellEditor.-narrow .field-info { width: 30; text-wrap: nowrap; text-overflow: ellipsis; }
    /* 24 rows: one-line fields and buttons, so the model list keeps rows for its matches. */
    CellEditor.-short #cell-title, CellEditor.-tiny #cell-title { margin: 0; }
    CellEditor.-short .field-row, CellEditor.-tiny .field-row { height: 1; margin-bottom: 0; }
    CellEditor.-short .field-label, CellEditor.-tiny .field-label { padding: 0 1 0 0; }
    CellEditor.-short .field-info, CellEditor.-tiny .field-info {
        padding: 0 0 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    CellEditor.-short .field-row Input, CellEditor.-tiny .field-row Input {
        border: none; height: 1; padding: 0 1; background: $boost;
    }
    CellEditor.-short .field-row Input.-target, CellEditor.-tiny .field-row Input.-target {
        border: none; background: $accent 35%;
    }
    CellEditor.-short .field-row Input:focus, CellEditor.-tiny .field-row Input:focus {
        background: $accent 55%;
    }
    CellEditor.-short #cell-buttons, CellEditor.-tiny #cell-buttons { height: 1; }
    CellEditor.-short #cell-buttons Button, CellEditor.-tiny #cell-buttons Button {
        height: 1; border: none; min-width: 10;
    }
    CellEditor.-short ModelList #model-filter, CellEditor.-tiny ModelList #model-filter {
        border: none; height: 1; padding: 0 1; background: $boost;
    }
    CellEditor.-short ModelList #model-filter:focus, CellEditor.-tiny ModelList #model-filter:focus {
        background: $accent 35%;
    }
    """

    BINDINGS = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="cell_cancel",
            tooltip="Close without changing the cell",
        ),
        Binding(
            "ctrl+s",
            "accept",
            "Accept",
            id="cell_accept",
            tooltip="Apply the edited cell to the table (it takes effect on the next run)",
            priority=True,
        ),
        Binding(
            "ctrl+t",
            "switch_target",
            "Primary/fallback",
            id="cell_switch_target",
            tooltip="Switch which field the model list fills: the primary or the fallback",
        ),
    ]

    def __init__(self, session, task: str, priority: str, cell: Cell) -> None:
        super().__init__()
        self.session = session
        self.task_name = task
        self.priority_name = priority
        self.cell = cell
        self.target = "primary"
        # Why the last accept was refused ("" when nothing is wrong).
        self.error = ""
        self._error_values: tuple[str, ...] | None = None

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="cell-editor"):
            title = Text("Edit cell  ", style="bold")
            title.append(clean(self.task_name), style="bold reverse")
            title.append(" × ", style="dim")
            title.append(clean(self.priority_name), style="bold reverse")
            title.append("   enter or ctrl+s accepts · escape cancels", style="dim")
            title.append(
                "\nthe list below fills the highlighted field; ctrl+t switches field",
                style="dim",
            )
            yield Static(title, id="cell-title")
            with Horizontal(classes="field-row"):
                yield Label(Text("primary"), classes="field-label")
                yield Input(self.cell.primary, id="primary", classes="-target")
                yield Static("", id="primary-info", classes="field-info")
            with Horizontal(classes="field-row"):
                yield Label(Text("fallback"), classes="field-label")
                yield Input(self.cell.fallback or "", placeholder="none", id="fallback")
                yield Static("", id="fallback-info", classes="field-info")
            with Horizontal(classes="field-row"):
                yield Label(Text("hedge (ms)"), classes="field-label")
                yield Input(
                    "" if self.cell.hedge_after_ms is None else str(self.cell.hedge_after_ms),
                    placeholder="none: the fallback starts only on a failure",
                    id="hedge",
                )
                yield Static(
                    Text(
                        "start the fallback too when the primary is this slow to its first token",
                        style="dim",
                    ),
                    classes="field-info",
                )
            yield Static("", id="cell-error")
            yield ModelList(self.session, current=self.cell.primary, id="cell-models")
            with Horizontal(id="cell-buttons"):
                yield Button(Text("Accept"), variant="primary", id="cell-accept")
                yield Button(Text("Cancel"), id="cell-cancel")

    def on_mount(self) -> None:
        self._show_target()
        for name in FIELDS:
            self._refresh_info(name)
        self.model_list.filter_input.focus()

    # -- helpers ------------------------------------------------------------------------------

    @property
    def model_list(self) -> ModelList:
        return self.query_one("#cell-models", ModelList)

    def field(self, name: str) -> Input:
        return self.query_one(f"#{name}", Input)

    def _show_target(self) -> None:
        for name in FIELDS:
            self.field(name).set_class(name == self.target, "-target")
        ml = self.model_list
        ml.border_title = f"choose the {self.target} model"
        value = clean(self.field(self.target).value).strip()
        if self.target == "fallback":
            ml.set_current(value or None, none_label="no fallback")
        else:
            ml.set_current(value or None, none_label=None)

    def _refresh_info(self, name: str) -> None:
        value = clean(self.field(name).value).strip()
        info = self.query_one(f"#{name}-info", Static)
        if not value:
            info.update(Text("none" if name == "fallback" else "", style="dim"))
            return
        table = self.session.table
        if model_problem(value, table):
            info.update(Text("not a usable model id", style="yellow"))
            return
        entry = self.model_list.entry(value)
        out = Text()
        if entry is not None and entry.price is not None:
            label = price_label(value, entry.price, table)
        elif entry is None or not self.model_list.loading_models:
            from tui.router.cost.pricing import is_local

            label = "local" if is_local(value, table) else "n/a"
        else:
            label = "…"
        out.append(label, style=price_style(label))
        simulated, why = self.session.is_simulated(value)
        out.append("  ")
        if simulated:
            out.append(" sim ", style="black on yellow")
            if why:
                out.append(f" {clean(why).removesuffix(' in the environment')}", style="dim")
        else:
            out.append(" real ", style="black on green")
        info.update(out)

    def _values(self) -> tuple[str, str, str]:
        return tuple(self.field(name).value for name in ("primary", "fallback", "hedge"))

    def show_error(self, reason: str | None) -> None:
        self.error = reason or ""
        self._error_values = self._values() if reason else None
        self.query_one("#cell-error", Static).update(Text(self.error))

    def _maybe_clear_error(self) -> None:
        """An edit clears the reason shown (a change message that arrives late does not)."""
        if self.error and self._values() != self._error_values:
            self.show_error(None)

    # -- events -------------------------------------------------------------------------------

    @on(DescendantFocus)
    def _focused(self, event: DescendantFocus) -> None:
        widget = event.widget
        if isinstance(widget, Input) and widget.id in FIELDS and widget.id != self.target:
            self.target = widget.id
            self._show_target()

    @on(Input.Changed, "#primary, #fallback")
    def _field_changed(self, event: Input.Changed) -> None:
        self._maybe_clear_error()
        if event.input.id:
            self._refresh_info(event.input.id)

    @on(Input.Changed, "#hedge")
    def _hedge_changed(self, event: Input.Changed) -> None:
        self._maybe_clear_error()

    @on(ModelList.Loaded)
    def _models_loaded(self, event: ModelList.Loaded) -> None:
        event.stop()
        for name in FIELDS:
            self._refresh_info(name)

    @on(ModelList.Chosen)
    def _chosen(self, event: ModelList.Chosen) -> None:
        event.stop()
        field = self.field(self.target)
        field.value = event.model
        self._refresh_info(self.target)
        self._show_target()
        # Back to the field just filled: enter there accepts the cell.
        field.focus()

    @on(Input.Submitted, "#primary, #fallback, #hedge")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_accept()

    @on(Button.Pressed, "#cell-accept")
    def _accept_pressed(self) -> None:
        self.action_accept()

    @on(Button.Pressed, "#cell-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    # -- actions ------------------------------------------------------------------------------

    def action_switch_target(self) -> None:
        self.target = "fallback" if self.target == "primary" else "primary"
        self._show_target()
        self.model_list.filter_input.focus()

    def action_accept(self) -> None:
        table = self.session.table
        cell, reason = validate_cell(
            self.field("primary").value,
            self.field("fallback").value,
            self.field("hedge").value,
            table,
        )
        if cell is not None:
            reason = _table_problem(table, self.task_name, self.priority_name, cell)
        if cell is None or reason:
            self.show_error(reason)
            self.app.bell()
            return
        self.dismiss(cell)

    def action_cancel(self) -> None:
        self.dismiss(None)
