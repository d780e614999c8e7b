"""Pick one model from the searchable list (the main screen pins the next runs to it).

Dismisses with the model id; with ``allow_none`` an entry "route normally (no pin)" dismisses
with ``""``; escape dismisses with None (cancelled). Callers that only care whether a model was
chosen can treat ``""`` and None alike.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.app.widgets.model_list import ModelList, model_problem

NO_PIN_LABEL = "route normally (no pin)"


class ModelPicker(ModalScreen[str | None]):
    DEFAULT_CSS = """
    ModelPicker { align: center middle; }
    ModelPicker > #picker {
        width: 100; max-width: 96%; height: 36; max-height: 96%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    ModelPicker #picker-title { height: auto; margin: 0 0 1 0; }
    ModelPicker #picker-error { height: auto; color: $error; text-style: bold; padding: 0 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker_cancel", tooltip="Close without choosing"),
    ]

    def __init__(
        self,
        session,
        *,
        current: str | None = None,
        allow_none: bool = False,
        title: str = "Pin a model for the next runs",
    ) -> None:
        super().__init__()
        self.session = session
        self.current = current
        self.allow_none = allow_none
        self.title_text = title
        self.error = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            title = Text(self.title_text, style="bold")
            title.append(
                "\ntype to search · enter chooses · escape cancels · "
                "prices are USD per million tokens, input / output",
                style="dim",
            )
            yield Static(title, id="picker-title")
            yield Static("", id="picker-error")
            yield ModelList(
                self.session,
                current=self.current,
                none_label=NO_PIN_LABEL if self.allow_none else None,
                id="picker-models",
            )

    def on_mount(self) -> None:
        self.query_one(ModelList).filter_input.focus()

    @on(ModelList.Chosen)
    def _chosen(self, event: ModelList.Chosen) -> None:
        event.stop()
        model = event.model
        if model == "":
            self.dismiss("")
            return
        if reason := model_problem(model, self.session.table):
            self.error = reason
            self.query_one("#picker-error", Static).update(Text(reason))
            self.app.bell()
            return
        self.dismiss(model)

    def action_cancel(self) -> None:
        self.dismiss(None)
