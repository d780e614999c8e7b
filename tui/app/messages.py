"""What the app tells its screens, as Textual messages (the app posts them to every screen on
the stack; a screen handles the ones it cares about). The app no longer reaches into screens to
call their methods: it says what happened, each screen decides what that means for it.

They do not bubble: each screen gets its own copy, and none of them goes on to the app.
"""

from __future__ import annotations

from textual.message import Message


class ClassifierReady(Message, bubble=False):
    """The session's classifier is loaded (or trained): decisions are quick from now on."""


class ClassifierFailed(Message, bubble=False):
    """The classifier could not be built: prompts go to the uncertain route."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason  # "ExceptionType: message"


class TableChanged(Message, bubble=False):
    """The session's routing table changed (an edit, a merge, a reload, a correction)."""


class SaveStateChanged(Message, bubble=False):
    """Whether the table has unsaved edits, or why the last save failed, may have changed."""
