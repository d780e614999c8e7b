"""Untrusted text through every widget of the main screen that shows outside text.

Model output, prompts, error bodies and names from routes.toml may hold Rich/Textual markup
(``[/b]`` crashes a widget that parses it, ``[@click=app.quit]x[/]`` runs an action when clicked)
and terminal escapes (``ESC [2J`` clears the screen, OSC 52 writes the clipboard). Each must be
shown as the literal text it is, never act, and no control character may reach the terminal.

What "reaches the terminal" is checked on the compositor's output: the text of every segment of
a full screen update, which is what Textual writes (its own colour and cursor sequences are added
around those segments, never inside them). A click on the literal ``x`` of the click markup shows
that it is inert: the app keeps running.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import tomli_w
from fakeserver import FakeServer, Reply
from textual import events
from textual.widgets import Static
from tui_helpers import (
    GUARD_S,
    find_on_screen,
    main_screen,
    pane,
    run,
    screen_lines,
    settle,
    static_text,
    until,
)

from tui.app.app import RouteDeckApp
from tui.app.screens.model_picker import ModelPicker
from tui.app.screens.why import WhyScreen
from tui.app.widgets.decision_bar import DecisionBar
from tui.app.widgets.prompt_editor import PromptEditor
from tui.router.run.session import Session
from tui.router.sanitize import clean
from tui.router.table.paths import default_routes_path
from tui.router.types import Cell

SIZE = (140, 45)
ROUTED_MODEL = "gpt-5-mini"  # the packaged table's code/default primary
BASELINE_MODEL = "gpt-5.2"  # and its baseline
CODE_PROMPT = "write a python function that reverses a linked list"

CLOSE_TAG = "[/b]"
CLICK = "[@click=app.quit]x[/]"
CLEAR = "\x1b[2J"
OSC52 = "\x1b]52;c;SGVsbG8=\x07"  # "write 'Hello' to the clipboard"
OSC52_PAYLOAD = "SGVsbG8="
EVIL = f"before {CLOSE_TAG} middle {CLICK} clear{CLEAR}clip{OSC52}after"
# What a person must see: the markup literally, the escape sequences gone (with their payload).
EVIL_SHOWN = f"before {CLOSE_TAG} middle {CLICK} clearclipafter"
# The same text streamed in chunks that split the markup and both escape sequences.
EVIL_CHUNKS = (
    "before [/",
    "b] middle [@click=app.",
    "quit]x[/] clear\x1b[",
    "2Jclip\x1b]52;c;SGVs",
    "bG8=\x07after",
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


# Real clients share one httpx client per event loop: each test closes it (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("close_shared_http_client")


@pytest.fixture
def server(openai_on_server: FakeServer) -> FakeServer:
    """OpenAI models (the code/default primary and the baseline) stream from the fake server
    (``openai_on_server``, tests/conftest.py)."""
    return openai_on_server


def assert_terminal_safe(app: RouteDeckApp) -> list[str]:
    """No control character in anything drawn, and the app still running; returns the lines.

    (The rest of a sequence may remain as inert text where the engine only drops control
    characters, as it does in error messages: "[2J" is harmless once its ESC is gone.)"""
    assert app.is_running
    lines = screen_lines(app)
    for y, line in enumerate(lines):
        assert not _CONTROL.search(line), f"control character on screen line {y}: {line!r}"
    return lines


async def click_the_click_markup(pilot) -> None:
    """Click the ``x`` of the literal click markup on screen: it must not quit the app."""
    where = find_on_screen(pilot.app, CLICK)
    assert where is not None, f"{CLICK!r} is not shown literally"
    x, y = where
    await pilot.click(offset=(x + CLICK.index("]x") + 1, y))
    await pilot.pause()
    assert pilot.app.is_running, "clicking the literal markup ran app.quit"


# ---------------------------------------------------------------------------------------------
# Model output
# ---------------------------------------------------------------------------------------------


async def test_model_output_with_markup_and_escapes_is_text_while_streaming_and_after(
    make_app, server
):
    # Both sides stream the evil chunks, then stall: the panes are mid-stream.
    stall = Reply.stall(after=len(EVIL_CHUNKS), chunks=EVIL_CHUNKS, seconds=GUARD_S)
    server.route(ROUTED_MODEL, stall)
    server.route(BASELINE_MODEL, stall)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT, wait=False)
        routed, baseline = pane(app, "routed"), pane(app, "baseline")

        def shown_in_both_panes() -> bool:
            return sum(line.count(EVIL_SHOWN) for line in screen_lines(app)) == 2

        await until(pilot, shown_in_both_panes, "the streamed text shown in both panes")
        assert routed.text == baseline.text == EVIL_SHOWN
        assert main_screen(app).last_pair is None  # still streaming: no final update yet
        assert_terminal_safe(app)
        assert not any(OSC52_PAYLOAD in line for line in screen_lines(app))
        await click_the_click_markup(pilot)

        # Cancelled: each pane's final, full update with what had arrived.
        await pilot.press("escape")
        await settle(pilot)
        for p in (routed, baseline):
            assert p.answer.source == EVIL_SHOWN
            assert "CANCELLED" in static_text(p.query_one(".pane-header", Static))
        await until(pilot, shown_in_both_panes, "the final text shown in both panes")
        assert_terminal_safe(app)
        await click_the_click_markup(pilot)

        # A complete answer: the final update after the stream ended normally. (The judge that
        # then runs gets a plain tie: its line under the panes is tested in test_tui_judge.)
        server.route(ROUTED_MODEL, Reply.ok(chunks=EVIL_CHUNKS))
        server.route(BASELINE_MODEL, Reply.ok(chunks=EVIL_CHUNKS))
        server.respond(lambda rec: Reply.ok('{"better": "tie", "reason": "same"}')
                       if "<<<ANSWER A>>>" in str(rec.json) else None)
        await run(pilot, CODE_PROMPT)
        assert main_screen(app).last_pair.routed.text == EVIL_SHOWN
        for p in (routed, baseline):
            assert p.answer.source == EVIL_SHOWN
        await until(pilot, shown_in_both_panes, "the complete answer shown in both panes")
        assert_terminal_safe(app)
        await click_the_click_markup(pilot)
        assert not any(OSC52_PAYLOAD in line for line in screen_lines(app))


async def test_200_kb_of_model_output_renders_as_text(make_app, server):
    paragraph = "\n".join(f"line {i}: {EVIL}" for i in range(8)) + "\n\n"
    text = ""
    while len(text) < 200_000:
        text += paragraph
    chunks = tuple(text[i : i + 4096] for i in range(0, len(text), 4096))
    server.route(ROUTED_MODEL, Reply.ok(chunks=chunks))
    server.route(BASELINE_MODEL, Reply.ok("short"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        routed = pane(app, "routed")
        assert routed.shown_source == clean(text)  # all of it, less the escape sequences
        assert "\x1b" not in clean(text) and OSC52_PAYLOAD not in clean(text)
        assert_terminal_safe(app)
        assert find_on_screen(app, f"line 0: before {CLOSE_TAG} middle")
        await click_the_click_markup(pilot)
        routed.answer.scroll_end(animate=False)
        await pilot.pause()
        assert find_on_screen(app, CLICK)
        assert_terminal_safe(app)


# ---------------------------------------------------------------------------------------------
# Error bodies, and text set aside after a failure
# ---------------------------------------------------------------------------------------------


async def test_an_error_body_with_markup_and_escapes_shows_as_text(make_app, server):
    server.route(ROUTED_MODEL, Reply.http(400, EVIL))
    server.route(BASELINE_MODEL, Reply.http(404, body=f"<html>{EVIL}</html>"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        routed = pane(app, "routed")
        error = static_text(routed.query_one(".pane-error", Static))
        assert "400" in error and f"{CLOSE_TAG} middle {CLICK}" in error
        assert not _CONTROL.search(error)
        assert_terminal_safe(app)
        await click_the_click_markup(pilot)
        assert routed.has_class("-error")
        assert "404" in static_text(pane(app, "baseline").query_one(".pane-error", Static))


async def test_text_set_aside_after_a_broken_stream_shows_as_text(make_app, server):
    # Routed breaks midway (connection reset): its text is set apart, the fallback (Gemini,
    # no key here: simulated) answers.
    server.route(ROUTED_MODEL, Reply.reset(after=len(EVIL_CHUNKS), chunks=EVIL_CHUNKS))
    server.route(BASELINE_MODEL, Reply.ok("fine"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        routed = pane(app, "routed")
        aside = static_text(routed.query_one(".pane-discarded", Static))
        assert EVIL_SHOWN in aside
        assert "FALLBACK" in static_text(routed.query_one(".pane-header", Static))
        assert_terminal_safe(app)
        await click_the_click_markup(pilot)


# ---------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------


async def test_a_pasted_prompt_with_markup_and_escapes(make_app, monkeypatch):
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # A real paste: the driver gives the app a Paste event, which it forwards to the focus.
        # A "SELECT ... FROM " line matches a code rule, which quotes it in the decision's reason.
        pasted = f"SELECT {CLOSE_TAG} {CLICK} FROM t\r\nand {CLEAR}{OSC52} more"
        app.post_message(events.Paste(pasted))
        await settle(pilot)
        editor = main_screen(app).query_one(PromptEditor)
        assert editor.text == f"SELECT {CLOSE_TAG} {CLICK} FROM t\nand  more"
        decision = main_screen(app).last_decision
        assert decision.classification.classifier == "rule"
        bar = static_text(main_screen(app).query_one(DecisionBar))
        assert f"SELECT {CLOSE_TAG} {CLICK} FROM" in bar
        assert_terminal_safe(app)
        await click_the_click_markup(pilot)  # the one in the decision bar or the editor

        await pilot.press("ctrl+j")  # the simulated answer quotes the prompt
        await settle(pilot)
        assert CLICK in pane(app, "routed").answer.source
        assert_terminal_safe(app)
        assert app.session.runlog.recent()[0].prompt == editor.text


async def test_a_typed_prompt_with_markup_shows_in_the_editor_and_decision_bar(make_app):
    app = make_app(env={})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = f"SELECT {CLOSE_TAG} {CLICK} FROM t"
        await pilot.press(*[{" ": "space"}.get(ch, ch) for ch in text])
        await settle(pilot)
        assert main_screen(app).query_one(PromptEditor).text == text
        assert text.removesuffix(" t") in static_text(main_screen(app).query_one(DecisionBar))
        lines = assert_terminal_safe(app)
        assert any(text in line for line in lines)
        await click_the_click_markup(pilot)


# ---------------------------------------------------------------------------------------------
# Names from routes.toml
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def evil_routes_file(tmp_path) -> Path:
    """The packaged table with a custom (simulated) provider whose model names hold markup,
    routed for code/default. (routes.toml refuses control characters in model ids, so the escape
    sequences are put in by the test, as an edit in code would, to prove the widgets hold too.)"""
    doc = tomllib.loads(default_routes_path().read_text("utf-8"))
    doc["providers"]["evil"] = {"kind": "simulated", "description": f"{CLOSE_TAG} {CLICK}"}
    doc["routes"]["code"]["default"] = {
        "primary": f"evil/{CLOSE_TAG}{CLICK}",
        "fallback": f"evil/fallback{CLOSE_TAG}",
    }
    target = tmp_path / "evil-routes.toml"
    target.write_text(tomli_w.dumps(doc), "utf-8")
    return target


async def test_model_names_with_markup_and_escapes_from_routes_toml(
    make_app, evil_routes_file, monkeypatch
):
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")
    # A short subtitle (the table's path, else long enough here to be cut off in the header).
    monkeypatch.setattr(Session, "table_label", property(lambda self: "routes.toml"))
    app = make_app(routes=evil_routes_file)
    evil_cell = Cell(
        primary=f"evil/{CLOSE_TAG}{CLICK}{CLEAR}", fallback=f"evil/fallback{OSC52}{CLOSE_TAG}"
    )
    app.session.set_table(app.session.table.with_cell("code", "default", evil_cell))
    primary_shown = f"evil/{CLOSE_TAG}{CLICK}"
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT, wait=False)
        await until(pilot, lambda: main_screen(app).last_decision is not None, "a decision")
        # The decision bar names the cell before the run ends.
        bar = static_text(main_screen(app).query_one(DecisionBar))
        assert f"cell {primary_shown} → evil/fallback{CLOSE_TAG}" in bar
        assert_terminal_safe(app)
        await settle(pilot)
        header = static_text(pane(app, "routed").query_one(".pane-header", Static))
        assert f"routed: {primary_shown}" in header and "SIMULATED" in header
        assert_terminal_safe(app)
        await click_the_click_markup(pilot)
        if isinstance(app.screen, WhyScreen):
            # The click landed on the decision bar, which shows the decision in full: the
            # names there are text too. (What it must not do is run the markup's action.)
            assert_terminal_safe(app)
            await pilot.press("escape")
            await settle(pilot)

        # Pinning the model for the next runs: a notification and the subtitle name it.
        await pilot.press("f4")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ModelPicker)
        picker.dismiss(f"evil/{CLOSE_TAG}{CLICK}{CLEAR}")
        # Look while the notification is up (3 s): settling would also wait out the run's
        # workers, which on a busy machine can outlast it.
        await until(
            pilot,
            lambda: any(f"next runs use {primary_shown}" in line
                        for line in assert_terminal_safe(app)),
            "the pin's notification, safe",
        )
        lines = assert_terminal_safe(app)
        assert any(f"pinned: {primary_shown}" in line for line in lines)  # the header
