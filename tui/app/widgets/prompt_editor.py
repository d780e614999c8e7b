"""The multi-line prompt editor: a TextArea whose run keys submit instead of inserting text."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea


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

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))
