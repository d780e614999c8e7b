"""Helpers the TUI test modules share: driving the app through Textual's Pilot and reading what
the main screen shows.

Plain functions, imported by plain name (tests/ is on sys.path, as for fakeserver and
small_examples): ``from tui_helpers import settle, until``. The fixtures those modules share
(``routes_file``, ``make_app``, ...) are in tests/conftest.py. No helper asserts on time: the
deadline in ``until`` only stops a broken test from hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from rich.cells import cell_len
from textual.widgets import Static

from tui.app.app import RouteDeckApp
from tui.app.screens.main import MainScreen
from tui.app.widgets.prompt_editor import PromptEditor
from tui.app.widgets.run_pane import RunPane
from tui.router.log.runlog import RunLog
from tui.router.run.session import Session
from tui.router.table.load import load_table

GUARD_S = 60.0  # a deadline that only a hung test reaches; nothing is asserted on time
OPENAI_KEY = "sk-test-routedeck-0123456789"  # the key conftest's ``openai_on_server`` sets


def new_app(routes: Path, tmp_path: Path, *, with_log: bool = True) -> RouteDeckApp:
    """The app on a Session over the table at ``routes``, no provider keys (every model
    simulated), and a run log in ``tmp_path`` (none when ``with_log`` is False)."""
    log = RunLog(tmp_path / "runs.sqlite3") if with_log else None
    return RouteDeckApp(Session(table=load_table(routes), runlog=log, env={}))


async def settle(pilot) -> None:
    """Let the app finish what it started: a frame first (the app starts loading the
    classifier after its first frame), then every worker, then one more frame."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot, predicate: Callable[[], object], what: str) -> None:
    """Let the app run until ``predicate()`` holds (a guard deadline stops a hung test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD_S
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await pilot.pause(0.02)


def main_screen(app: RouteDeckApp) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    return screen


def pane(app: RouteDeckApp, side: str) -> RunPane:
    return main_screen(app).query_one(f"#{side}", RunPane)


def static_text(widget: Static) -> str:
    return str(widget.content)


def screen_lines(app: RouteDeckApp) -> list[str]:
    """The characters the compositor would send to the terminal, line by line, without the
    terminal sequences Textual adds for colours and cursor moves (those are not in the text):
    the text of every segment of a full screen update, which is what Textual writes."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return ["".join(seg.text for seg in strip) for strip in update.strips]


def find_on_screen(app: RouteDeckApp, needle: str) -> tuple[int, int] | None:
    """(x, y) in cells of the first place ``needle`` is shown, None when it is not."""
    for y, line in enumerate(screen_lines(app)):
        i = line.find(needle)
        if i >= 0:
            return cell_len(line[:i]), y
    return None


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[{" ": "space", "\n": "enter"}.get(ch, ch) for ch in text])


async def set_prompt(pilot, text: str) -> None:
    editor = main_screen(pilot.app).query_one(PromptEditor)
    editor.load_text(text)
    editor.focus()  # ctrl+j is the editor's key (a click may have moved the focus to a pane)
    await pilot.pause()


async def run(pilot, text: str, *, wait: bool = True) -> None:
    """Put ``text`` in the editor and run it with ctrl+j; ``wait`` until every worker is done
    (only when no other run is in flight, or this waits for that one too)."""
    await set_prompt(pilot, text)
    await pilot.press("ctrl+j")
    if wait:
        await settle(pilot)
