"""Runs on the main screen through Textual's Pilot: run → both panes fill and their metrics
update, cancel, a new run over one in flight, resizing during a run, and provider errors shown in
their pane.

Each test works on a copy of the packaged routes.toml in its own temporary folder, with its own run
log; tests/conftest.py gives every test private folders and removes provider keys, so a model
without a key is simulated. Simulated models run 50 times faster than life
(``ROUTEDECK_SIM_SPEED``); "real" models are the loopback fake server (tests/fakeserver.py)
speaking the OpenAI protocol, reached by setting a key and ``<PROVIDER>_BASE_URL``. No test
asserts on time: the deadline in ``until`` only stops a broken test from hanging.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from fakeserver import FakeServer, Reply, closed_port_url
from tui_helpers import (
    GUARD_S,
    OPENAI_KEY,
    find_on_screen,
    main_screen,
    pane,
    run,
    screen_lines,
    settle,
    until,
)
from tui_main_helpers import (
    CODE_PROMPT,
    SIZE,
    comparison_text,
    decision_text,
    discarded,
    error_line,
    header,
    metrics,
)

from tui.app.screens.main import MainScreen
from tui.app.widgets.prompt_editor import PromptEditor

GEMINI_KEY = "gemini-test-key-0123456789"
# The packaged table routes code/default to these; the tests read them from the table anyway.
ROUTED_MODEL = "gpt-5-mini"
BASELINE_MODEL = "gpt-5.2"
FALLBACK_MODEL = "gemini-3-flash-preview"


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


# Real clients share one httpx client per event loop: each test closes it (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("close_shared_http_client")


@pytest.fixture
def fast_sim(monkeypatch) -> None:
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")


@pytest.fixture
def gemini_on_server(monkeypatch, openai_on_server: FakeServer) -> FakeServer:
    """The code/default fallback (a Gemini model, provider "google") streams from it too."""
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("GOOGLE_BASE_URL", openai_on_server.openai_url)
    return openai_on_server


# ---------------------------------------------------------------------------------------------
# Run → both panes fill, metrics update
# ---------------------------------------------------------------------------------------------


async def test_a_simulated_run_fills_both_panes_metrics_comparison_log_and_totals(
    make_app, fast_sim
):
    app = make_app()  # keys from os.environ, where conftest left none: every model simulated
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        screen = main_screen(app)
        table = app.session.table
        decision = screen.last_decision
        routed, baseline = pane(app, "routed"), pane(app, "baseline")
        for p, model in ((routed, decision.cell.primary), (baseline, table.baseline.model)):
            assert f"{p.side}: {model}" in header(p)
            assert "SIMULATED" in header(p)
            # The simulator labels its answer; the final update shows all of it.
            assert p.answer.source.startswith(f"[simulated {model}]")
            assert error_line(p) == ""
        pair = screen.last_pair
        assert pair is not None and pair.routed.error is None and pair.baseline.error is None
        assert routed.shown_source == pair.routed.text
        assert baseline.shown_source == pair.baseline.text
        for p, side in ((routed, pair.routed), (baseline, pair.baseline)):
            line = metrics(p)
            assert side.output_tokens > 0
            assert f"tok {side.input_tokens:,}→{side.output_tokens:,}" in line
            assert re.search(r"TTFT [\d,.]+ m?s", line)
            assert re.search(r"cost \$\d", line)
        comparison = comparison_text(app)
        assert "routing saved " in comparison and "(simulated)" in comparison
        assert "session: 1 run " in comparison

        records = app.session.runlog.recent()
        assert len(records) == 1
        assert records[0].prompt == CODE_PROMPT and records[0].task == "code"
        assert records[0].routed.model == decision.cell.primary
        assert records[0].baseline.model == table.baseline.model
        assert app.session.totals.runs == 1

        await run(pilot, "urgent: write a haiku about the sea")
        assert app.session.totals.runs == 2
        assert len(app.session.runlog.recent()) == 2
        assert "session: 2 runs" in comparison_text(app)
        assert main_screen(app).last_pair.decision.priority == "latency"


async def test_a_run_through_the_real_openai_protocol(make_app, openai_on_server):
    server = openai_on_server
    server.route(ROUTED_MODEL, Reply.ok("Routed answer from the loopback server.",
                                        input_tokens=12, output_tokens=7, delay=0.01))
    server.route(BASELINE_MODEL, Reply.ok("Baseline answer, a little longer, from the server.",
                                          input_tokens=12, output_tokens=9, delay=0.01))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        routed, baseline = pane(app, "routed"), pane(app, "baseline")
        assert routed.answer.source == "Routed answer from the loopback server."
        assert baseline.answer.source == "Baseline answer, a little longer, from the server."
        for p in (routed, baseline):
            assert " real " in header(p) and "SIMULATED" not in header(p)
        assert "tok 12→7" in metrics(routed) and "tok 12→9" in metrics(baseline)
        # The runs' requests (the LLM judge's, which follow, are tested in test_tui_judge).
        runs = [r for r in server.requests if "<<<ANSWER A>>>" not in str(r.json)]
        assert {r.model for r in runs} == {ROUTED_MODEL, BASELINE_MODEL}
        for request in runs:
            assert request.api_key == OPENAI_KEY
            assert request.json["messages"][-1]["content"] == CODE_PROMPT
        assert "routing saved " in comparison_text(app)
        assert "(simulated)" not in comparison_text(app)
        assert not any(OPENAI_KEY in line for line in screen_lines(app))


async def test_metrics_update_while_the_answer_streams(make_app, openai_on_server):
    server = openai_on_server
    server.route(ROUTED_MODEL, Reply.stall(after=4, seconds=GUARD_S, input_tokens=5))
    server.route(BASELINE_MODEL, Reply.stall(after=4, seconds=GUARD_S, input_tokens=5))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT, wait=False)
        routed, baseline = pane(app, "routed"), pane(app, "baseline")
        await until(pilot, lambda: routed.text and baseline.text, "both panes streaming")
        # Live, before the stream has ended: time to first token, elapsed, tokens so far.
        await until(pilot, lambda: re.search(r"tok ~?\d+→~?[1-9]", metrics(routed)),
                    "output tokens counted as they stream")
        for p in (routed, baseline):
            assert re.search(r"TTFT [\d,.]+ m?s", metrics(p)), metrics(p)
            assert re.search(r"Δt [\d,.]+ m?s", metrics(p)), metrics(p)
        assert main_screen(app).last_pair is None  # nothing final yet
        await pilot.press("escape")
        await settle(pilot)


LONG_ANSWER = tuple(
    f"Paragraph {i}: " + " ".join(f"word{j}" for j in range(60)) + "\n\n" for i in range(60)
)


async def test_a_long_answer_streams_below_a_pane_at_rest_and_scrolls_into_view(
    make_app, openai_on_server
):
    """While a long answer streams, a pane at rest keeps showing its top; every line of the
    answer is there to scroll to, and scrolling shows its end."""
    server = openai_on_server
    for model in (ROUTED_MODEL, BASELINE_MODEL):
        server.route(model, Reply.stall(after=len(LONG_ANSWER), seconds=GUARD_S,
                                        chunks=LONG_ANSWER, delay=0.001))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT, wait=False)
        routed = pane(app, "routed")
        await until(pilot, lambda: "Paragraph 59" in routed.text, "the whole answer streamed")
        await until(pilot, lambda: "Paragraph 59" in routed.shown_source, "the whole answer drawn")
        await pilot.pause()
        assert find_on_screen(app, "Paragraph 0:")
        assert not find_on_screen(app, "Paragraph 59:")
        view = routed.answer
        assert view.virtual_size.height == view.line_count > 3 * view.size.height
        view.scroll_end(animate=False)
        # The lines scrolled to are drawn within a frame or two; on a busy machine that can
        # take more than two pauses, so wait for them (the guard deadline catches "never").
        await until(pilot, lambda: find_on_screen(app, "Paragraph 59:"), "the answer's end shown")
        await pilot.press("escape")
        await settle(pilot)


async def test_a_pinned_model_runs_instead_of_the_routed_one(make_app, fast_sim):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = main_screen(app)
        screen.pinned_model = "anthropic/claude-haiku-4-5"
        screen.refresh_sub_title()
        await run(pilot, CODE_PROMPT)
        assert "routed: anthropic/claude-haiku-4-5" in header(pane(app, "routed"))
        assert screen.last_pair.routed.model == "anthropic/claude-haiku-4-5"
        assert "pinned: anthropic/claude-haiku-4-5" in screen.sub_title
        # The pin shows wherever it applies, and a pinned run is not counted as routing.
        assert "PINNED" in header(pane(app, "routed"))
        assert "PINNED" not in header(pane(app, "baseline"))
        assert "PINNED" in decision_text(app)
        assert "anthropic/claude-haiku-4-5 instead of" in decision_text(app)
        assert "f4 unpins" in decision_text(app)
        assert "pinned run (not routing)" in comparison_text(app)
        assert "routing saved" not in comparison_text(app)
        assert app.session.totals.runs == 0
        assert len(app.session.runlog.recent()) == 1  # the run log still has it

        # Unpinned (f4's "no pin" entry): routed again, and counted.
        screen.pinned_model = None
        await run(pilot, CODE_PROMPT)
        assert "PINNED" not in header(pane(app, "routed"))
        assert "routing saved" in comparison_text(app)
        assert app.session.totals.runs == 1


# ---------------------------------------------------------------------------------------------
# Cancel, a new run over one in flight, resizing
# ---------------------------------------------------------------------------------------------


async def test_escape_cancels_a_stalled_run_and_the_next_run_works(make_app, openai_on_server):
    server = openai_on_server
    server.route(ROUTED_MODEL, Reply.stall(after=3, seconds=GUARD_S))
    server.route(BASELINE_MODEL, Reply.stall(after=3, seconds=GUARD_S))
    app = make_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT, wait=False)
        routed, baseline = pane(app, "routed"), pane(app, "baseline")
        await until(pilot, lambda: routed.text and baseline.text, "both panes streaming")
        streamed = routed.text
        assert app.streaming_gc.held  # no full garbage collection while answers stream
        # While it runs, the line under the panes says so (no stale or "No run yet" figures).
        assert comparison_text(app).startswith(" running… ")
        assert "No run yet" not in comparison_text(app)

        # The stalled provider leaves the UI responsive: typing still updates the editor.
        await pilot.press("end", "space", "x")
        assert main_screen(app).query_one(PromptEditor).text == CODE_PROMPT + " x"

        await pilot.press("escape")
        await settle(pilot)
        for p in (routed, baseline):
            assert "CANCELLED" in header(p), header(p)
            # The person stopped it: "cancelled", not "error: cancelled", and no error border.
            assert error_line(p) == "cancelled" and not p.has_class("-error")
        assert routed.answer.source == streamed  # what had arrived stays readable
        assert find_on_screen(app, "run cancelled")
        assert comparison_text(app).startswith(" run cancelled")
        assert await asyncio.to_thread(server.wait_disconnect, 2, GUARD_S)
        assert app.is_running
        assert not app.streaming_gc.held  # a cancelled run lets collections go on

        server.route(ROUTED_MODEL, Reply.ok("A second, complete routed answer."))
        server.route(BASELINE_MODEL, Reply.ok("A second, complete baseline answer."))
        await run(pilot, CODE_PROMPT)
        assert routed.answer.source == "A second, complete routed answer."
        assert baseline.answer.source == "A second, complete baseline answer."
        for p in (routed, baseline):
            assert "CANCELLED" not in header(p) and "ERROR" not in header(p)
            assert error_line(p) == "" and not p.has_class("-error")
        assert "routing saved" in comparison_text(app)


async def test_escape_with_nothing_running_does_nothing(make_app):
    app = make_app(env={})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.is_running and isinstance(app.screen, MainScreen)


async def test_a_new_run_cancels_the_one_in_flight(make_app, openai_on_server):
    server = openai_on_server
    server.route(ROUTED_MODEL, Reply.stall(after=3, seconds=GUARD_S))
    server.route(BASELINE_MODEL, Reply.stall(after=3, seconds=GUARD_S))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, "first: " + CODE_PROMPT, wait=False)
        routed, baseline = pane(app, "routed"), pane(app, "baseline")
        await until(pilot, lambda: routed.text and baseline.text, "the first run streaming")

        server.route(ROUTED_MODEL, Reply.ok("Second routed answer.", delay=0.01))
        server.route(BASELINE_MODEL, Reply.ok("Second baseline answer.", delay=0.01))
        await run(pilot, "second: " + CODE_PROMPT)
        assert await asyncio.to_thread(server.wait_disconnect, 2, GUARD_S)

        # The first run's end (cancelled) never spills into the panes of the second.
        assert routed.answer.source == "Second routed answer."
        assert baseline.answer.source == "Second baseline answer."
        for p in (routed, baseline):
            assert "CANCELLED" not in header(p) and "ERROR" not in header(p), header(p)
            assert error_line(p) == "" and not p.has_class("-error")
        records = app.session.runlog.recent()
        assert [r.prompt for r in records] == ["second: " + CODE_PROMPT]
        assert main_screen(app).last_pair.decision.prompt == "second: " + CODE_PROMPT


async def test_the_terminal_can_be_resized_during_a_run(make_app, openai_on_server):
    server = openai_on_server
    words = " ".join(f"word{i}" for i in range(150))
    server.route(ROUTED_MODEL, Reply.ok(words, delay=0.004))
    server.route(BASELINE_MODEL, Reply.ok(words + " end", delay=0.004))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT, wait=False)
        routed = pane(app, "routed")
        await until(pilot, lambda: routed.text, "the run streaming")
        for size in ((80, 24), (30, 8), (200, 60), (12, 4), (1, 1), SIZE):
            await pilot.resize_terminal(*size)
            await pilot.pause()
        await settle(pilot)
        assert app.is_running
        assert routed.answer.source == words
        assert pane(app, "baseline").answer.source == words + " end"
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert app.is_running


# ---------------------------------------------------------------------------------------------
# Provider errors in their pane
# ---------------------------------------------------------------------------------------------


async def test_a_401_shows_in_the_routed_pane_and_the_baseline_still_completes(
    make_app, gemini_on_server
):
    server = gemini_on_server
    server.route(ROUTED_MODEL, Reply.http(401, "Incorrect API key provided: {key}."))
    server.route(BASELINE_MODEL, Reply.ok("The baseline answered.", delay=0.01))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        routed, baseline = pane(app, "routed"), pane(app, "baseline")
        assert "401" in error_line(routed), error_line(routed)
        assert "ERROR" in header(routed) and routed.has_class("-error")
        assert "FALLBACK" not in header(routed)  # never fall back on a 4xx
        assert FALLBACK_MODEL not in {r.model for r in server.requests}
        assert baseline.answer.source == "The baseline answered."
        assert error_line(baseline) == "" and "ERROR" not in header(baseline)
        # The key the server echoed is never shown.
        assert not any(OPENAI_KEY in line for line in screen_lines(app))
        assert app.is_running and app.session.totals.runs == 1


async def test_a_503_on_the_primary_shows_the_fallback_badge_and_its_answer(
    make_app, gemini_on_server
):
    server = gemini_on_server
    server.route(ROUTED_MODEL, Reply.http(503, "The engine is currently overloaded."))
    server.route(FALLBACK_MODEL, Reply.ok("The fallback's answer.", delay=0.01))
    server.route(BASELINE_MODEL, Reply.ok("The baseline answered."))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        routed = pane(app, "routed")
        assert "FALLBACK" in header(routed) and f"google/{FALLBACK_MODEL}" in header(routed)
        assert " real " in header(routed)
        assert routed.answer.source == "The fallback's answer."
        assert "503" in error_line(routed)  # why the fallback ran
        assert not routed.has_class("-error") and "ERROR" not in header(routed)
        pair = main_screen(app).last_pair
        assert pair.routed.fallback_used and pair.routed.model == f"google/{FALLBACK_MODEL}"
        assert pane(app, "baseline").answer.source == "The baseline answered."


async def test_text_streamed_before_a_reset_is_kept_apart_from_the_fallback_answer(
    make_app, gemini_on_server
):
    server = gemini_on_server
    partial = "Partial words that were streamed before the connection reset"
    server.route(ROUTED_MODEL, Reply.reset(after=4, text=partial))
    server.route(FALLBACK_MODEL, Reply.ok("The complete fallback answer.", delay=0.01))
    server.route(BASELINE_MODEL, Reply.ok("The baseline answered."))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        routed = pane(app, "routed")
        assert routed.answer.source == "The complete fallback answer."
        shown_apart = discarded(routed)
        assert "Partial words that were" in shown_apart
        assert "not the answer" in shown_apart
        assert "Partial" not in routed.answer.source
        assert "FALLBACK" in header(routed)
        assert main_screen(app).last_pair.routed.discarded_text.startswith("Partial words that")


async def test_a_provider_that_cannot_be_reached_falls_back_and_says_why(
    make_app, monkeypatch, fast_sim
):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", closed_port_url())  # connection refused
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        routed, baseline = pane(app, "routed"), pane(app, "baseline")
        # Routed: no connection → its fallback (Gemini, no key here: simulated) answers.
        assert "FALLBACK" in header(routed) and "SIMULATED" in header(routed)
        assert routed.answer.source.startswith("[simulated google/")
        assert f"openai/{ROUTED_MODEL} failed" in error_line(routed)
        # Baseline: the same refusal, and its fallback (Anthropic, no key: simulated).
        assert "FALLBACK" in header(baseline)
        assert app.is_running
