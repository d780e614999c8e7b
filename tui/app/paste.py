"""Bracketed pastes read whole: pasted text arrives in order, as one Paste, without escapes.

A terminal wraps pasted text in ``ESC [200~`` … ``ESC [201~``. Textual's XTermParser (8.2)
collects the characters between the two into a Paste event, except when the pasted text holds an
escape sequence (``printf 'AAA \\e[31mBBB\\e[0m CCC'`` copied from a terminal): from that ESC on it
reads the text as key sequences, replays what it cannot parse as key presses (``^[31mBBB…``, sent
before the Paste of what came earlier, so the text lands reordered), and a pasted newline or tab
after it becomes ctrl+j (run) or a focus move, which sends the rest elsewhere.

:class:`PasteSafeParser` is an XTermParser that finds the paste brackets in the raw input itself,
before Textual's parser acts on them: the input outside a paste goes to XTermParser as it is; the
pasted text is collected as it arrives (in as many reads as the terminal makes of it), while
XTermParser reads it too, to keep its state, but whatever it makes of it is dropped; at the
closing bracket one Paste event carries the text with every escape sequence and control character
removed, line ends as ``\\n`` (:func:`~tui.app.widgets.prompt_editor.clean_prompt`).

Textual's drivers build their parser from the name ``XTermParser`` in their own module, so
:func:`use_paste_safe_parser` rebinds that name in the module of the driver class the app uses
(RouteDeckApp.get_driver_class calls it)::

    driver_class = use_paste_safe_parser(super().get_driver_class())
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator

from textual import events
from textual._xterm_parser import BRACKETED_PASTE_END, BRACKETED_PASTE_START, XTermParser
from textual.driver import Driver
from textual.message import Message

from tui.app.widgets.prompt_editor import clean_prompt

ESC = "\x1b"


class PasteSafeParser(XTermParser):
    """XTermParser whose bracketed pastes arrive whole and clean (see the module)."""

    def __init__(self, debug: bool = False) -> None:
        self._inside = False  # between the paste brackets
        self._matched = 0  # characters of the next bracket seen so far
        self._pasted: list[str] = []
        super().__init__(debug)

    def feed(self, data: str) -> Iterable[Message]:
        if not data:  # the end of the input
            yield from super().feed(data)
            return
        for piece, inside, closes in self._split(data):
            if not inside:
                yield from super().feed(piece)
                continue
            self._pasted.append(piece)
            for _replayed in super().feed(piece):
                pass  # XTermParser's reading of the pasted text: the text is taken whole below
            if closes:
                text = "".join(self._pasted)[: -len(BRACKETED_PASTE_END)]
                self._pasted.clear()
                yield events.Paste(clean_prompt(text))

    def tick(self) -> Iterable[Message]:
        for message in super().tick():
            if not self._inside:  # a timeout inside a paste replays pasted text: dropped
                yield message

    def _split(self, data: str) -> Iterator[tuple[str, bool, bool]]:
        """``data`` cut after each paste bracket: (piece, inside a paste, ends with the closing
        bracket). A bracket may be split between two reads: the count of its characters matched
        so far carries over."""
        start = i = 0
        while i < len(data):
            if not self._matched:
                i = data.find(ESC, i)
                if i < 0:
                    break
            bracket = BRACKETED_PASTE_END if self._inside else BRACKETED_PASTE_START
            if data[i] == bracket[self._matched]:
                self._matched += 1
                if self._matched == len(bracket):
                    self._matched = 0
                    yield data[start : i + 1], self._inside, self._inside
                    self._inside = not self._inside
                    start = i + 1
            else:
                self._matched = 1 if data[i] == ESC else 0
            i += 1
        if start < len(data):
            yield data[start:], self._inside, False


def use_paste_safe_parser(driver_class: type[Driver]) -> type[Driver]:
    """Make ``driver_class`` read its input with :class:`PasteSafeParser` (when its module builds
    an XTermParser, as Textual's Linux, inline and web drivers do); returns ``driver_class``."""
    module = sys.modules.get(driver_class.__module__)
    if module is not None and getattr(module, "XTermParser", None) is XTermParser:
        module.XTermParser = PasteSafeParser  # type: ignore[attr-defined]
    return driver_class
