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
    ChoiceScreen > Vertical { width: auto; max-width: 90; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    ChoiceScreen Static { width: auto; margin-bottom: 1; }
    ChoiceScreen Horizontal { height: auto; width: auto; }
    ChoiceScreen Button { margin-right: 1; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="choice_cancel")]

    def __init__(self, question: str, choices: list[Choice]) -> None:
        super().__init__()
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
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
