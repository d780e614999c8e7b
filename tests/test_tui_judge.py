"""The LLM judge in the TUI, through Pilot, with OpenAI models on the loopback fake server: the
verdict and its reason under the panes (at once with [judge] auto, on f7 without), no key (not
run, said so), a failing judge (the run stands, the reason is shown), esc cancels it, and its
figures in the grid, the history and the savings screen; 80x24 keeps the line and the panes.
"""

from __future__ import annotations

import json
import re

import pytest
from fakeserver import FakeServer, Reply
from tui_helpers import main_screen, pane, run, screen_lines, settle, until

from tui.app.widgets.comparison import ComparisonBar
from tui.app.widgets.judge_bar import JudgeBar

pytestmark = pytest.mark.usefixtures("close_shared_http_client")

SIZE = (140, 45)
CODE_PROMPT = "write a python function that reverses a linked list"
REASON = "Both reverse the list in place and explain the pointer flips."


def is_judge(rec) -> bool:
    return any("<<<ANSWER A>>>" in str(m.get("content", ""))
               for m in (rec.json or {}).get("messages", []))


def answers_then(judge_reply):
    """Runs get an answer naming their model; judge requests get ``judge_reply(rec)``."""

    def respond(rec):
        if is_judge(rec):
            return judge_reply(rec)
        return Reply.ok(f"Answer from {rec.model}: walk the list, flip each next pointer.",
                        input_tokens=20, output_tokens=12)

    return respond


def tie(rec):
    return Reply.ok(json.dumps({"better": "tie", "reason": REASON}), input_tokens=300,
                    output_tokens=20)


def bar_text(app) -> str:
    return str(main_screen(app).query_one(JudgeBar).content)


def with_auto(routes_file, auto: bool):
    text = routes_file.read_text(encoding="utf-8")
    routes_file.write_text(re.sub(r"(?m)^auto = true$", f"auto = {str(auto).lower()}", text, count=1),
                           encoding="utf-8")
    return routes_file


async def test_the_verdict_and_its_reason_show_under_the_panes_after_each_run(
    make_app, openai_on_server: FakeServer
):
    server = openai_on_server
    server.respond(answers_then(tie))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        await until(pilot, lambda: "as good (tie)" in bar_text(app), "the judge's verdict")
        text = bar_text(app)
        assert REASON in text and "$" in text
        judged = [r for r in server.requests if is_judge(r)]
        assert len(judged) == 2 and {r.model for r in judged} == {"gpt-5.2"}
        # Its cost is apart: the session's routing totals and the comparison line know nothing
        # of it; the run log keeps it beside the run.
        session = app.session
        assert session.judge_totals.judged == 1 and session.judge_totals.cost_usd > 0
        record = session.runlog.recent(1)[0]
        assert record.judge.verdict == "tie" and record.judge.reason == REASON
        assert session.runlog.totals().routed_cost_usd == pytest.approx(
            record.routed.cost_usd)
        comparison = str(main_screen(app).query_one(ComparisonBar).content)
        saved = record.baseline.cost_usd - record.routed.cost_usd
        assert f"${saved:.6f}" in comparison


async def test_without_auto_f7_judges_the_last_run(make_app, routes_file, openai_on_server):
    server = openai_on_server
    server.respond(answers_then(lambda rec: Reply.ok('{"better": "A", "reason": "First."}')))
    app = make_app(with_auto(routes_file, False))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        assert "f7 asks" in bar_text(app)
        assert not any(is_judge(r) for r in server.requests)
        await pilot.press("f7")
        await until(pilot, lambda: "disagreed" in bar_text(app), "the judge's verdict")
        assert sum(is_judge(r) for r in server.requests) == 2
        assert app.session.runlog.recent(1)[0].judge.consistent is False


async def test_without_a_key_the_judge_does_not_run_and_says_why(make_app):
    app = make_app(env={"ROUTEDECK_SIM_SPEED": "50"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        await until(pilot, lambda: "not run" in bar_text(app), "why the judge is off")
        assert "no OPENAI_API_KEY" in bar_text(app)
        await pilot.press("f7")
        await pilot.pause()
        assert app.session.judge_totals.judged == 0
        assert app.session.runlog.recent(1)[0].judge is None


async def test_a_failing_judge_shows_why_and_leaves_the_run_alone(make_app, openai_on_server):
    server = openai_on_server
    server.respond(answers_then(lambda rec: Reply.http(401, "Incorrect API key: {key}")))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        await until(pilot, lambda: "no verdict" in bar_text(app), "the judge's failure")
        assert "401" in bar_text(app)
        from tui_helpers import OPENAI_KEY

        assert OPENAI_KEY not in bar_text(app)
        assert pane(app, "routed").answer.source.startswith("Answer from gpt-5-mini")
        assert app.session.totals.runs == 1
        assert app.session.runlog.recent(1)[0].judge.error


async def test_esc_cancels_a_judge_in_flight(make_app, openai_on_server):
    server = openai_on_server
    server.respond(answers_then(lambda rec: Reply.stall_headers(20)))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT, wait=False)
        await until(pilot, lambda: "judging" in bar_text(app), "the judge at work")
        await pilot.press("escape")
        await until(pilot, lambda: "cancelled" in bar_text(app), "the judge cancelled")
        assert server.wait_disconnect(2)
        assert app.session.judge_totals.judged == 0


async def test_grid_history_and_savings_show_the_judge_beside_people(
    make_app, openai_on_server
):
    server = openai_on_server
    server.respond(answers_then(tie))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        await until(pilot, lambda: "as good" in bar_text(app), "the judge's verdict")
        await pilot.press("f9")
        await pilot.pause()
        await pilot.press("r")  # the verdict screen: routed better
        await settle(pilot)
        await pilot.press("f2")
        await until(pilot, lambda: any("judge 100% (1)" in ln for ln in screen_lines(app)),
                    "the judge's rate in the grid")
        line = next(ln for ln in screen_lines(app) if "judge 100% (1)" in ln)
        assert "you 100% (1)" in line
        await pilot.press("escape", "f3")
        from textual.widgets import DataTable

        def history_row() -> list[str]:
            table = app.screen.query_one("#history-table", DataTable)
            return [str(c) for c in table.get_row_at(0)] if table.row_count else []

        await until(pilot, lambda: "routed / tie" in history_row(), "both verdicts in the history")
        assert any("(not in the savings)" in ln for ln in screen_lines(app))
        assert any(REASON[:40] in ln for ln in screen_lines(app))
        await pilot.press("escape", "f5")
        await until(pilot, lambda: any("quality (LLM judge" in ln for ln in screen_lines(app)),
                    "quality next to the savings")
        assert any("code 100% (1)" in ln for ln in screen_lines(app))


async def test_a_judges_reply_with_markup_and_escapes_is_shown_as_plain_text(
    make_app, openai_on_server
):
    from test_tui_untrusted import CLICK, EVIL, assert_terminal_safe

    server = openai_on_server
    server.respond(answers_then(lambda rec: Reply.ok(
        json.dumps({"better": "tie", "reason": EVIL}))))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        await until(pilot, lambda: "as good" in bar_text(app), "the judge's verdict")
        lines = assert_terminal_safe(app)
        assert any(CLICK in ln for ln in lines)  # the markup literally, not run
        unparsed = [json.dumps({"better": "?"}) + EVIL]
        server.respond(answers_then(lambda rec: Reply.ok(unparsed[0])))
        await run(pilot, CODE_PROMPT)
        await until(pilot, lambda: "unparsed" in bar_text(app), "the unparsed reply")
        assert_terminal_safe(app)
        assert app.is_running


async def test_at_80x24_the_judge_line_and_the_panes_both_fit(make_app, openai_on_server):
    server = openai_on_server
    server.respond(answers_then(tie))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await run(pilot, CODE_PROMPT)
        await until(pilot, lambda: "as good (tie)" in bar_text(app), "the judge's verdict")
        lines = screen_lines(app)
        judge_row = next(i for i, ln in enumerate(lines) if "judge ✓ as good (tie)" in ln)
        assert lines[judge_row].rstrip().endswith("…")  # the reason is cut, not wrapped
        assert any("routing saved" in ln for ln in lines[judge_row + 1:])
        assert pane(app, "routed").size.height >= 8
        assert any("Answer from gpt-5-mini" in ln for ln in lines[:judge_row])
