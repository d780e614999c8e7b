"""The multi-line prompt editor: a TextArea whose run keys submit instead of inserting text."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from tui.router.sanitize import clean


def clean_prompt(text: str) -> str:
    """Pasted or loaded text without escape sequences or control characters. Line ends are kept
    (terminals often paste them as a carriage return); TextArea would draw the rest raw, so an
    ESC in a paste would reach the terminal."""
    return clean(text.replace("\r\n", "\n").replace("\r", "\n"))


class PromptEditor(TextArea):
    """Enter adds a line; ctrl+j, alt+enter (and ctrl+enter where the terminal sends it) run."""

    BINDINGS = [
        Binding(
            "ctrl+j,alt+enter,ctrl+enter",
            "submit",
            "Run",
            id="run",
            tooltip="Run the prompt on the routed model and the baseline, side by side",
            priority=True,
        ),
    ]

    class Submitted(Message):
        def __init__(self, editor: PromptEditor, text: str) -> None:
            super().__init__()
            self.editor = editor
            self.text = text

        @property
        def control(self) -> PromptEditor:
            return self.editor

    def __init__(self, **kwargs) -> None:
        super().__init__(
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            placeholder="Type a prompt. Its task type shows as you type; ctrl+j runs it.",
            **kwargs,
        )

    async def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # instead of TextArea's own paste, which inserts the raw text
        if self.read_only:
            return
        result = self.replace(clean_prompt(event.text), *self.selection)
        self.move_cursor(result.end_location)
        self.focus()

    def load_text(self, text: str) -> None:
        super().load_text(clean_prompt(text))

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))
