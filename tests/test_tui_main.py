"""The main screen through Textual's Pilot: type → label (the classifier's decision as the
prompt changes, priorities, a classifier that is slow or fails, the run keys), SVG snapshots with
every timing frozen, and the app telling its screens through messages.

Runs, cancelling, a new run over one in flight, resizing and provider errors are in
test_tui_main_run.py; the helpers both share are in tests/tui_main_helpers.py.

Each test works on a copy of the packaged routes.toml in its own temporary folder, with its own run
log; tests/conftest.py gives every test private folders and removes provider keys, so a model
without a key is simulated. Simulated models run 50 times faster than life
(``ROUTEDECK_SIM_SPEED``). No test asserts on time: the deadline in ``until`` only stops a broken
test from hanging.
"""

from __future__ import annotations

import dataclasses

import pytest
from tui_helpers import (
    GUARD_S,
    find_on_screen,
    main_screen,
    pane,
    set_prompt,
    settle,
    type_text,
    until,
)
from tui_main_helpers import CODE_PROMPT, SIZE, comparison_text, decision_text, header

import tui.app.widgets.comparison as comparison_mod
import tui.app.widgets.run_pane as run_pane_mod
from tui.app.app import RouteDeckApp
from tui.app.widgets.prompt_editor import PromptEditor
from tui.router.run.session import Session

# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


# Real clients share one httpx client per event loop: each test closes it (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("close_shared_http_client")


@pytest.fixture
def fast_sim(monkeypatch) -> None:
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")


# ---------------------------------------------------------------------------------------------
# Type → label
# ---------------------------------------------------------------------------------------------


async def test_typing_a_code_prompt_shows_code_with_confidence_and_runner_up(make_app):
    app = make_app(env={})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # the classifier loads in a thread worker
        assert "type a prompt" in decision_text(app)
        await type_text(pilot, CODE_PROMPT)
        await settle(pilot)
        screen = main_screen(app)
        decision = screen.last_decision
        assert decision is not None
        # The decision shown is the one for the whole text, not for an earlier keystroke.
        assert decision.prompt == screen.query_one(PromptEditor).text == CODE_PROMPT
        assert decision.task == decision.classification.label == "code"
        bar = decision_text(app)
        assert bar.startswith(" code ")
        assert "█" in bar  # the confidence as a bar ...
        assert f" {decision.classification.confidence:.2f}" in bar  # ... and a number
        runners = decision.classification.top[1:3]
        assert runners, "the classifier gives runner-up labels"
        assert "runner-up " + ", ".join(f"{label} {p:.2f}" for label, p in runners) in bar
        cell = app.session.table.cell("code", decision.priority)
        assert f"cell {cell.primary} → {cell.fallback}" in bar
        assert "priority default (auto: default)" in bar
        assert "why " in bar and decision.classification.reason in bar


async def test_label_follows_the_text_as_it_changes(make_app):
    app = make_app(env={})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_text(pilot, "solve for x: 3x + 7 = 22")
        await settle(pilot)
        assert main_screen(app).last_decision.task == "math"
        assert decision_text(app).startswith(" math ")
        main_screen(app).query_one(PromptEditor).select_all()  # then type over it
        await type_text(pilot, CODE_PROMPT)
        await settle(pilot)
        assert main_screen(app).last_decision.task == "code"
        assert decision_text(app).startswith(" code ")
        main_screen(app).query_one(PromptEditor).load_text("   ")
        await settle(pilot)
        assert "type a prompt" in decision_text(app)
        assert main_screen(app).last_decision is None


async def test_a_long_pasted_prompt_is_classified_off_the_event_loop_and_the_newest_text_wins(
    make_app,
):
    """Prompts past QUICK_DECIDE_MAX_CHARS are decided in a worker thread; a decision for text
    that changed meanwhile is never shown over the newer one."""
    from tui.router.run.session import QUICK_DECIDE_MAX_CHARS

    log = "\n".join(f"2026-11-22 10:00:{i % 60:02d} ERROR worker {i} failed" for i in range(200))
    long_prompt = "summarize the errors in this log:\n" + log
    assert len(long_prompt) > QUICK_DECIDE_MAX_CHARS
    app = make_app(env={})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = main_screen(app)
        editor = screen.query_one(PromptEditor)
        editor.load_text(long_prompt)
        await settle(pilot)
        assert screen.last_decision.prompt == long_prompt
        editor.load_text(long_prompt + " please")
        editor.load_text("solve for x: 3x + 7 = 22")  # short: decided at once
        await settle(pilot)
        assert screen.last_decision.prompt == "solve for x: 3x + 7 = 22"
        assert decision_text(app).startswith(" math ")


async def test_an_urgent_prompt_gets_the_latency_priority_and_ctrl_t_cycles_it(make_app):
    app = make_app(env={})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_text(pilot, "urgent: what is the capital of France?")
        await settle(pilot)
        screen = main_screen(app)
        assert screen.priority_mode == "auto"
        assert screen.last_decision.priority == "latency"
        assert "priority latency (auto: cue: urgent)" in decision_text(app)
        latency_cell = app.session.table.cell(screen.last_decision.task, "latency")
        assert f"cell {latency_cell.primary}" in decision_text(app)

        # ctrl+t: each priority of the table in turn (they are data), then auto again.
        modes = [*app.session.table.priority_names, "auto"]
        for expected in modes:
            await pilot.press("ctrl+t")
            await settle(pilot)
            assert screen.priority_mode == expected
            bar = decision_text(app)
            if expected == "auto":
                assert screen.last_decision.priority == "latency"
                assert "(auto: cue: urgent)" in bar
            else:
                assert screen.last_decision.priority == expected
                assert f"priority {expected} (chosen)" in bar  # "pinned" is for a model (f4)
                cell = app.session.table.cell(screen.last_decision.task, expected)
                assert f"cell {cell.primary}" in bar


async def test_a_classifier_ready_before_the_screen_is_mounted_is_reported_ready(make_app):
    app = make_app(env={})
    app.session.load_classifier()  # cached: the worker at start-up ends at once
    for _ in range(3):  # the race, when there was one, went either way
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert "type a prompt" in decision_text(app)
        app = make_app(env={})
        app.session.load_classifier()


async def test_a_classifier_that_fails_to_load_is_reported_and_the_app_stays_usable(
    make_app, monkeypatch
):
    app = make_app(env={})

    def broken() -> None:
        raise RuntimeError("model file unreadable")

    monkeypatch.setattr(app.session, "load_classifier", broken)
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "classifier unavailable (RuntimeError: model file unreadable)" in decision_text(app)
        await type_text(pilot, "hello")
        await settle(pilot)
        assert main_screen(app).query_one(PromptEditor).text == "hello"
        await pilot.press("ctrl+j")  # fails open: the run goes to the uncertain route
        main = main_screen(app)
        await until(pilot, lambda: main.last_pair is not None, "the fail-open run finished")
        decision = main.last_pair.decision
        assert decision.uncertain
        assert decision.cell.primary == app.session.table.baseline.model
        assert "classifier unavailable (RuntimeError: model file unreadable)" in decision.classification.reason
        assert app.is_running


async def test_a_classification_that_raises_is_reported_and_the_app_keeps_running(
    make_app, monkeypatch
):
    """The keystroke path decides on the event loop; an exception there must not take the app
    down: the worker decides again and says what failed."""
    app = make_app(env={})
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)

        def broken(prompt, priority=None, **kwargs):  # as typed: decide(..., ask_llm=False)
            raise RuntimeError("feature cache corrupt")

        monkeypatch.setattr(app.session, "decide", broken)
        await type_text(pilot, "hi")
        await settle(pilot)
        assert app.is_running
        assert main_screen(app).query_one(PromptEditor).text == "hi"
        assert find_on_screen(app, "classification failed")
        assert find_on_screen(app, "RuntimeError: feature cache")


async def test_the_priority_notification_shows_and_the_app_keeps_running(make_app):
    app = make_app(env={})
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        first = app.session.table.priority_names[0]
        assert find_on_screen(app, f"priority: {first}")
        assert app.is_running


async def test_the_editor_is_usable_while_the_classifier_is_still_loading(make_app, monkeypatch):
    import threading

    app = make_app(env={})
    session = app.session
    gate = threading.Event()
    real_load = session.load_classifier

    def slow_load():
        gate.wait(GUARD_S)
        return real_load()

    monkeypatch.setattr(session, "load_classifier", slow_load)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_text(pilot, CODE_PROMPT)
        editor = main_screen(app).query_one(PromptEditor)
        assert editor.text == CODE_PROMPT  # every keystroke landed while the model loads
        assert "loading the classifier" in decision_text(app)
        gate.set()
        await settle(pilot)
        assert main_screen(app).last_decision.prompt == CODE_PROMPT
        assert decision_text(app).startswith(" code ")


@pytest.mark.parametrize("key", ["ctrl+j", "alt+enter"])
async def test_the_run_keys_run_the_prompt(make_app, fast_sim, key):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await set_prompt(pilot, CODE_PROMPT)
        await pilot.press("enter")  # enter adds a line; it does not run
        await settle(pilot)
        assert main_screen(app).last_pair is None
        await pilot.press(key)
        await settle(pilot)
        assert main_screen(app).last_pair is not None
        assert main_screen(app).last_pair.decision.prompt.strip() == CODE_PROMPT


async def test_an_empty_prompt_is_not_run(make_app, fake_server):  # noqa: F811
    app = make_app(env={})
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+j")
        await settle(pilot)
        assert find_on_screen(app, "type a prompt first")
        assert main_screen(app).last_pair is None
        assert "No run yet" in comparison_text(app)


# ---------------------------------------------------------------------------------------------
# Snapshots (timings frozen)
# ---------------------------------------------------------------------------------------------

# The snapshots use a small table of their own, so that tuning the packaged routes (its examples,
# its cells) does not change them; it trains in well under a second. Three task types, not two:
# the local classifier fails to train on exactly two today (training._train expects a 2-D
# decision_function, which scikit-learn gives only for three classes or more).
SNAPSHOT_ROUTES = """
[baseline]
model = "openai/gpt-5.2"
fallback = "anthropic/claude-sonnet-4-5"

[classifier]
kind = "local"
threshold = 0.3
uncertain_route = "baseline"

[priorities.default]
description = "Balanced."

[priorities.latency]
cues = ["urgent"]

[providers.openai]
kind = "openai-compatible"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"

[providers.anthropic]
kind = "anthropic"
api_key_env = "ANTHROPIC_API_KEY"

[routes.code.default]
primary = "openai/gpt-5-mini"
fallback = "anthropic/claude-haiku-4-5"

[routes.code.latency]
primary = "openai/gpt-5-nano"
fallback = "openai/gpt-5-mini"

[routes.chat.default]
primary = "openai/gpt-5-nano"
fallback = "openai/gpt-5-mini"

[routes.chat.latency]
primary = "openai/gpt-5-nano"

[routes.math.default]
primary = "openai/gpt-5-mini"

[routes.math.latency]
primary = "openai/gpt-5-nano"

[tasks.code]
examples = [
    "write a python function that reverses a list",
    "why does this stack trace say index out of range",
    "convert this bash loop to powershell",
    "review my SQL query for a missing join",
    "explain what this regular expression matches",
    "fix the failing unit test in my rust crate",
]

[tasks.chat]
examples = [
    "how was your day",
    "tell me something nice",
    "what do you think about rainy weekends",
    "recommend a film for tonight",
    "say hello to my friend",
    "what should I cook for dinner",
]

[tasks.math]
examples = [
    "solve for x: 3x + 7 = 22",
    "what is the integral of x squared",
    "prove that the square root of two is irrational",
    "how many ways can 5 people sit at a round table",
    "find the derivative of sin(x) * x",
    "what is 17 percent of 340",
]
"""

SNAPSHOT_PROMPT = "write a python function that reverses a list of words"


@pytest.fixture
def snapshot_app(tmp_path, monkeypatch, make_app) -> RouteDeckApp:
    """The app on the snapshot table, every figure that depends on the clock frozen."""
    path = tmp_path / "snapshot-routes.toml"
    path.write_text(SNAPSHOT_ROUTES, "utf-8")
    # The subtitle shows the table's path, a temporary folder that differs on every run.
    monkeypatch.setattr(Session, "table_label", property(lambda self: "routes.toml"))

    real_metrics = run_pane_mod.render_metrics

    def frozen_metrics(m, *args):
        if m is not None:
            m = dataclasses.replace(
                m,
                ttft_ms=None if m.ttft_ms is None else 321.0,
                elapsed_ms=None if m.elapsed_ms is None else 4_321.0,
                tokens_per_s=None if m.tokens_per_s is None else 99.0,
            )
        return real_metrics(m, *args)

    real_comparison = comparison_mod.render_comparison

    def frozen_comparison(pair, totals, *args):
        if pair is not None:
            pair = dataclasses.replace(
                pair,
                routed=dataclasses.replace(pair.routed, total_ms=1_000.0, ttft_ms=100.0),
                baseline=dataclasses.replace(pair.baseline, total_ms=3_500.0, ttft_ms=900.0),
                wall_ms=3_500.0,
            )
        return real_comparison(pair, totals, *args)

    monkeypatch.setattr(run_pane_mod, "render_metrics", frozen_metrics)
    monkeypatch.setattr(comparison_mod, "render_comparison", frozen_comparison)
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")
    return make_app(routes=path, env={"ROUTEDECK_SIM_SPEED": "50"})


async def _typed_and_decided(pilot) -> None:
    await settle(pilot)
    editor = main_screen(pilot.app).query_one(PromptEditor)
    editor.cursor_blink = False
    await type_text(pilot, SNAPSHOT_PROMPT)
    await settle(pilot)
    assert main_screen(pilot.app).last_decision.prompt == SNAPSHOT_PROMPT


def test_snapshot_main_screen_with_a_typed_prompt(snapshot_app, snap_compare):
    assert snap_compare(snapshot_app, run_before=_typed_and_decided, terminal_size=SIZE)


def test_snapshot_main_screen_after_a_simulated_run(snapshot_app, snap_compare):
    async def run_before(pilot) -> None:
        await _typed_and_decided(pilot)
        await pilot.press("ctrl+j")
        await settle(pilot)
        assert main_screen(pilot.app).last_pair is not None
        assert "SIMULATED" in header(pane(pilot.app, "routed"))

    assert snap_compare(snapshot_app, run_before=run_before, terminal_size=SIZE)


def test_snapshot_main_screen_after_a_simulated_run_at_80x24(snapshot_app, snap_compare):
    """The classic terminal: both costs, the why line, help and the screens in the footer."""

    async def run_before(pilot) -> None:
        await _typed_and_decided(pilot)
        await pilot.press("ctrl+j")
        await settle(pilot)
        assert main_screen(pilot.app).last_pair is not None

    assert snap_compare(snapshot_app, run_before=run_before, terminal_size=(80, 24))


async def test_the_app_tells_screens_through_messages(make_app):
    """The seam (tui/app/screens/base.py, tui/app/messages.py): screens reach a typed session,
    and a table applied while the grid is on top reaches the main screen under it as a
    TableChanged message (its sub-title says the table is edited)."""
    from tui.app.screens.base import DeckScreen
    from tui.app.screens.grid import GridScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = main_screen(app)
        assert isinstance(screen, DeckScreen)
        assert screen.session is app.session and screen.deck is app
        app.action_grid()
        await settle(pilot)
        assert isinstance(app.screen, GridScreen)
        table = app.session.table
        task, priority = next(iter(table.routes))
        cell = table.routes[(task, priority)]
        edited = table.with_cell(task, priority, dataclasses.replace(cell, primary=table.baseline.model))
        app.apply_table(edited)
        await until(pilot, lambda: "routes edited, unsaved" in screen.sub_title,
                    "the main screen told of the edit")
