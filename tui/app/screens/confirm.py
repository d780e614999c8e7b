"""A small modal that asks one question and offers a few choices."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


@dataclass(frozen=True)
class Choice:
    id: str
    label: str
    variant: str = "default"


class ChoiceScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    ChoiceScreen { align: center middle; }
    ChoiceScreen > Vertical {
        width: auto; max-width: 90%; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ChoiceScreen Static { width: auto; max-width: 86; margin-bottom: 1; }
    ChoiceScreen Horizontal { height: auto; width: auto; }
    ChoiceScreen Button { margin-right: 1; }
    ChoiceScreen.-short > Vertical { padding: 0 1; }
    ChoiceScreen.-short Button, ChoiceScreen.-tiny Button { height: 1; border: none; min-width: 8; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="choice_cancel")]

    def __init__(self, question: str, choices: list[Choice], *, title: str = "") -> None:
        super().__init__()
        self.question = question
        self.choices = choices
        self.title_text = title

    def compose(self) -> ComposeResult:
        box = Vertical()
        box.border_title = Text(self.title_text) if self.title_text else None
        with box:
            yield Static(Text(self.question))
            with Horizontal():
                for choice in self.choices:
                    yield Button(Text(choice.label), id=f"choice-{choice.id}", variant=choice.variant)

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        choice = (event.button.id or "").removeprefix("choice-")
        self.dismiss(None if choice == "cancel" else choice)
