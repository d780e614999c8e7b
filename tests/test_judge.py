"""The LLM judge (tui.router.run.judge): reading replies, the two-order rules, and judging real runs
against the loopback fake server (tests/fakeserver.py): both orders sent and in parallel,
position bias, prose and fences, unparsable replies, 503 (falls back), 401 and timeouts (no
verdict, the reason shown), no key (not run, said so), and its cost kept apart from savings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3

import pytest
from fakeserver import FakeServer, Reply

from tui.router.log.runlog import MIGRATIONS, RunLog
from tui.router.run.judge import (
    JudgeOrder,
    QualityStats,
    combine,
    judge_pair,
    judge_prompt,
    parse_reply,
    quality_by_cell,
    quality_by_task,
    summarize,
    why_not_judged,
)
from tui.router.run.session import Session
from tui.router.table.check import TableError
from tui.router.table.load import load_table, table_from_dict
from tui.router.types import Cell, Classification, Decision, PairResult, RunResult, Timeouts

KEY = "sk-judge-test-0123456789abcdef"
ROUTED = "ROUTED-ANSWER: a hash map stores key/value pairs in buckets."
BASELINE = "BASELINE-ANSWER: a hash map maps keys to values through a hash function."
PROMPT = "Explain what a hash map is, in one sentence."


@pytest.fixture(autouse=True)
async def _close_shared_client():
    from tui.router.providers.registry import aclose_shared_http_client

    yield
    await aclose_shared_http_client()


def pair(*, routed_sim: bool = False, baseline_status: str = "ok", task: str = "code"
         ) -> PairResult:
    c = Classification(task, 0.9, ((task, 0.9),), "local", "test", 0.1)
    d = Decision(PROMPT, c, task, "default", "default", Cell("openai/gpt-5-mini"), False, "r")
    routed = RunResult("routed", "openai/gpt-5-mini", routed_sim, ROUTED, 10.0, 20.0, 10, 12,
                       False, 0.0001)
    baseline = RunResult("baseline", "openai/gpt-5.2", False, BASELINE, 10.0, 20.0, 10, 14,
                         False, 0.002, status=baseline_status,  # type: ignore[arg-type]
                         error="HTTP 500" if baseline_status == "failed" else None)
    return PairResult(d, routed, baseline, 25.0)


def env_for(server: FakeServer, *, anthropic: bool = False) -> dict[str, str]:
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.openai_url}
    if anthropic:
        env |= {"ANTHROPIC_API_KEY": KEY + "-a", "ANTHROPIC_BASE_URL": server.anthropic_url}
    return env


def text_of(rec) -> str:
    return "\n".join(str(m.get("content", "")) for m in rec.json.get("messages", []))


def routed_as(rec) -> str | None:
    """Which label the routed answer has in a judge request (None: not a judge request)."""
    text = text_of(rec)
    if "<<<ANSWER A>>>" not in text:
        return None
    return "A" if text.index("ROUTED-ANSWER") < text.index("BASELINE-ANSWER") else "B"


def judge_says(side: str, reason: str = "It is the better answer."):
    """A consistent judge: prefers ``side`` ("routed", "baseline") whatever the order."""

    def respond(rec):
        r = routed_as(rec)
        if r is None:
            return None
        other = "B" if r == "A" else "A"
        better = r if side == "routed" else (other if side == "baseline" else "tie")
        return Reply.ok(f'{{"better": "{better}", "reason": "{reason}"}}',
                        input_tokens=400, output_tokens=20)

    return respond


def run(coro):
    return asyncio.run(coro)


# --------------------------------------------------------------------------------------------
# Reading replies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"better": "A", "reason": "A is right."}', ("A", "A is right.")),
        ('Here is my verdict:\n```json\n{"better": "B", "reason": "B cites it."}\n```\nThanks!',
         ("B", "B cites it.")),
        ('After weighing both, {"better": "tie", "reason": "Both {equally} fine."} is my call.',
         ("tie", "Both {equally} fine.")),
        ('{"Better": "answer a", "reason": "x"}', ("A", "x")),
        # thinking aloud with a draft, then the answer: the last object wins
        ('Draft: {"better": "A", "reason": "draft"} ... final: {"better": "B", "reason": "final"}',
         ("B", "final")),
    ],
)
def test_replies_are_read_leniently(reply, expected):
    assert parse_reply(reply) == expected


@pytest.mark.parametrize(
    "reply",
    ["A is better.", "", '{"better": "C", "reason": "?"}', '{"winner": 1}', "{not json}",
     '["A"]'],
)
def test_replies_without_a_verdict_object_are_unparsed(reply):
    assert parse_reply(reply) is None


def test_a_reason_is_cleaned_of_control_sequences_and_cut():
    better, reason = parse_reply('{"better": "A", "reason": "ok\\u001b[2J' + "x" * 900 + '"}')
    assert better == "A"
    assert "\x1b" not in reason
    assert len(reason) <= 400


def test_the_judge_prompt_labels_the_answers_and_keeps_the_instructions_first():
    text = judge_prompt("INSTRUCTIONS", "P", "first", "second")
    assert text.startswith("INSTRUCTIONS")
    assert text.index("<<<ANSWER A>>>\nfirst") < text.index("<<<ANSWER B>>>\nsecond")


# --------------------------------------------------------------------------------------------
# The two-order rules
# --------------------------------------------------------------------------------------------


def order(routed_as: str, says: str | None, *, error: str | None = None, cost=0.001):
    better = None
    if says == "tie":
        better = "tie"
    elif says is not None:
        better = routed_as if says == "routed" else ("B" if routed_as == "A" else "A")
    return JudgeOrder(routed_as, "openai/gpt-5.2", better, says, f"{says} reason", cost, error,  # type: ignore[arg-type]
                      raw="A is better" if says is None else "")


@pytest.mark.parametrize(
    ("first", "second", "verdict", "consistent"),
    [
        ("routed", "routed", "routed", True),
        ("baseline", "baseline", "baseline", True),
        ("tie", "tie", "tie", True),
        ("routed", "baseline", "tie", False),
        ("tie", "routed", "tie", False),
        ("routed", None, "unparsed", None),
    ],
)
def test_the_two_orders_combine(first, second, verdict, consistent):
    j = combine("openai/gpt-5.2", order("A", first), order("B", second))
    assert (j.verdict, j.consistent) == (verdict, consistent)
    assert j.cost_usd == pytest.approx(0.002)
    if consistent is False:
        assert "position bias" in j.reason


def test_a_failed_order_gives_no_verdict_and_says_why():
    j = combine("openai/gpt-5.2", order("A", "routed"), order("B", None, error="HTTP 401: bad key"))
    assert j.verdict is None
    assert "HTTP 401" in j.error


def test_quality_counts_unparsed_and_failed_apart_from_the_rate():
    judged = [
        ("code", combine("m/j", order("A", "routed"), order("B", "routed"))),
        ("code", combine("m/j", order("A", "baseline"), order("B", "baseline"))),
        ("math", combine("m/j", order("A", "tie"), order("B", "tie"))),
        ("math", combine("m/j", order("A", None), order("B", None))),
        ("math", combine("m/j", order("A", "tie"), order("B", None, error="timeout"))),
    ]
    summary = summarize("m/j", judged)
    assert summary.total.n == 3
    assert summary.total.win_or_tie_pct == pytest.approx(200 / 3)
    assert (summary.total.unparsed, summary.total.failed) == (1, 1)
    assert summary.by_task["code"].win_or_tie_pct == 50.0
    assert summary.by_task["math"].n == 1
    line = summary.sentence(71.4)
    assert line.startswith("routing saved 71% of the cost; the judge found the routed answer "
                           "as good or better in 67% of 3 prompts (code 50%, math 100%)")


# --------------------------------------------------------------------------------------------
# On the loopback server
# --------------------------------------------------------------------------------------------


def test_a_judge_that_ties_in_both_orders_sends_both_orders_in_parallel(fake_server: FakeServer):
    table = load_table(None)
    fake_server.respond(lambda rec: Reply.ok(
        '{"better": "tie", "reason": "Both are correct."}', first_delay=0.3
    ) if routed_as(rec) else None)
    j = run(judge_pair(pair(), table, env=env_for(fake_server)))
    assert (j.verdict, j.consistent, j.reason) == ("tie", True, "Both are correct.")
    assert j.model == "openai/gpt-5.2" and j.error is None and j.ran
    sent = [r for r in fake_server.requests if routed_as(r)]
    assert sorted(routed_as(r) for r in sent) == ["A", "B"]
    assert all(r.model == "gpt-5.2" for r in sent)
    assert all(PROMPT in text_of(r) for r in sent)
    # Both were in flight at once: two connections (one after the other would reuse one).
    assert len({r.connection for r in sent}) == 2


def test_a_consistent_judge_gives_its_side(fake_server: FakeServer):
    table = load_table(None)
    for side in ("routed", "baseline"):
        fake_server.respond(judge_says(side))
        j = run(judge_pair(pair(), table, env=env_for(fake_server)))
        assert (j.verdict, j.consistent) == (side, True)
        assert [o.says for o in j.orders] == [side, side]


def test_position_bias_comes_out_as_an_inconsistent_tie(fake_server: FakeServer):
    fake_server.respond(lambda rec: Reply.ok('{"better": "A", "reason": "The first."}')
                        if routed_as(rec) else None)
    j = run(judge_pair(pair(), load_table(None), env=env_for(fake_server)))
    assert (j.verdict, j.consistent) == ("tie", False)
    assert [o.says for o in j.orders] == ["routed", "baseline"]
    assert "position bias" in j.reason


def test_a_reply_in_prose_or_a_fence_is_read(fake_server: FakeServer):
    replies = iter([
        'Having read both: {"better": "tie", "reason": "Same facts."} That is all.',
        '```json\n{"better": "tie", "reason": "Same facts."}\n```',
    ])
    fake_server.respond(lambda rec: Reply.ok(next(replies)) if routed_as(rec) else None)
    j = run(judge_pair(pair(), load_table(None), env=env_for(fake_server)))
    assert (j.verdict, j.consistent) == ("tie", True)


def test_a_reply_that_is_not_json_is_unparsed_and_shown(fake_server: FakeServer):
    fake_server.respond(lambda rec: Reply.ok("Answer A is clearly better.")
                        if routed_as(rec) else None)
    j = run(judge_pair(pair(), load_table(None), env=env_for(fake_server)))
    assert j.verdict == "unparsed" and j.error is None
    assert "Answer A is clearly better" in j.reason
    assert QualityStats().plus(j).unparsed == 1 and QualityStats().plus(j).n == 0


def test_a_judge_failing_with_503_falls_back_like_any_call(fake_server: FakeServer):
    # The judge is the baseline model; its fallback (anthropic) answers on the same server.
    fake_server.route("gpt-5.2", Reply.http(503, "overloaded"))
    fake_server.respond(lambda rec: Reply.ok('{"better": "B", "reason": "B is exact."}')
                        if routed_as(rec) and rec.protocol == "anthropic" else None)
    j = run(judge_pair(pair(), load_table(None), env=env_for(fake_server, anthropic=True)))
    assert j.error is None
    assert {o.model for o in j.orders} == {"anthropic/claude-sonnet-4-5"}
    assert (j.verdict, j.consistent) == ("tie", False)  # always "B": position bias


def test_a_judge_failing_with_401_gives_no_verdict_and_the_reason(fake_server: FakeServer):
    fake_server.route("gpt-5.2", Reply.http(401, "Incorrect API key provided: {key}"))
    j = run(judge_pair(pair(), load_table(None), env=env_for(fake_server)))
    assert j.verdict is None and j.ran
    assert "401" in j.error
    assert KEY not in j.error and KEY not in repr(j)


def test_a_judge_that_times_out_gives_no_verdict(fake_server: FakeServer):
    table = dataclasses.replace(
        load_table(None), timeouts=Timeouts(first_token=0.3, max_retries=0)
    )
    fake_server.route("gpt-5.2", Reply.stall_headers(5))
    j = run(judge_pair(pair(), table, env=env_for(fake_server)))
    assert j.verdict is None
    assert "timeout" in j.error.lower() or "no first token" in j.error.lower()


def test_without_a_key_the_judge_does_not_run_and_says_why(fake_server: FakeServer):
    env = {"OPENAI_BASE_URL": fake_server.openai_url}
    j = run(judge_pair(pair(), load_table(None), env=env))
    assert not j.ran and j.verdict is None
    assert "no OPENAI_API_KEY in the environment" in j.error
    assert "simulated verdict" in j.error
    assert fake_server.requests == []
    forced = run(judge_pair(pair(), load_table(None), env=env_for(fake_server),
                            force_simulated=True))
    assert not forced.ran and "simulation forced" in forced.error
    assert fake_server.requests == []


def test_simulated_or_failed_answers_are_not_judged(fake_server: FakeServer):
    table = load_table(None)
    env = env_for(fake_server)
    assert "simulated" in why_not_judged(pair(routed_sim=True), table, env=env)
    assert "baseline run failed" in why_not_judged(pair(baseline_status="failed"), table, env=env)
    j = run(judge_pair(pair(routed_sim=True), table, env=env))
    assert not j.ran and fake_server.requests == []


def test_a_simulated_judge_fallback_is_dropped(fake_server: FakeServer):
    # No anthropic key: the 503 ends the judge rather than letting a simulator answer.
    fake_server.route("gpt-5.2", Reply.http(503))
    j = run(judge_pair(pair(), load_table(None), env=env_for(fake_server)))
    assert j.verdict is None and "503" in j.error
    assert all(o.model == "openai/gpt-5.2" for o in j.orders)


def test_an_explicit_judge_model_is_used(fake_server: FakeServer):
    fake_server.respond(judge_says("routed"))
    j = run(judge_pair(pair(), load_table(None), model="openai/gpt-5-mini",
                       env=env_for(fake_server)))
    assert j.model == "openai/gpt-5-mini" and j.verdict == "routed"
    assert {r.model for r in fake_server.requests} == {"gpt-5-mini"}


def test_the_judges_cost_is_logged_apart_and_never_in_the_savings(fake_server, tmp_path):
    fake_server.respond(judge_says("routed"))
    log = RunLog(tmp_path / "runs.sqlite3")
    session = Session(table=load_table(None), env=env_for(fake_server), runlog=log)
    p = pair()
    run_id = session.record(p)
    before = (session.totals, log.totals())
    j = run(session.judge(p))
    assert j.cost_usd is not None and j.cost_usd > 0
    session.record_judgement(run_id, j)
    assert (session.totals, log.totals()) == before
    assert session.judge_totals.judged == 1
    assert session.judge_totals.cost_usd == pytest.approx(j.cost_usd)
    assert log.judge_totals().cost_usd == pytest.approx(j.cost_usd)
    record = log.get(run_id)
    assert record.judge.verdict == "routed" and record.judge.consistent is True
    assert record.judge.cost_usd == pytest.approx(j.cost_usd)
    assert record.savings_usd == pytest.approx(p.savings_usd)
    assert quality_by_task(log)["code"].win_or_tie_pct == 100.0
    assert quality_by_cell(log, session.table)[("code", "default")].n == 1
    log.close()


# --------------------------------------------------------------------------------------------
# The run log and routes.toml
# --------------------------------------------------------------------------------------------


def test_a_log_from_before_the_judge_is_migrated_and_keeps_its_runs(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for i, statements in enumerate(MIGRATIONS[:2]):
        for statement in statements:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {i + 1}")
    db.commit()
    db.close()
    assert quality_by_task(path) == {}  # no judgements table yet: nothing, not an error
    with RunLog(path) as log:
        run_id = log.record(pair())
        assert log.get(run_id).judge is None
        judged = combine("openai/gpt-5.2", order("A", "tie"), order("B", "tie"))
        log.set_judgement(run_id, judged)
        assert log.get(run_id).judge.verdict == "tie"
        with pytest.raises(KeyError):
            log.set_judgement(run_id + 100, judged)


def _doc_with(judge: object) -> dict:
    import tomllib

    from tui.router.table.paths import default_routes_path

    doc = tomllib.loads(default_routes_path().read_text(encoding="utf-8"))
    doc["judge"] = judge
    return doc


def test_the_judge_section_is_read_from_routes_toml():
    table = load_table(None)
    assert table.judge.auto is True and table.judge.model is None
    assert '"better"' in table.judge.instructions
    t = table_from_dict(_doc_with({"model": "anthropic/claude-opus-4-6", "auto": False,
                                   "instructions": "Judge it.", "description": "d"}))
    assert (t.judge.model, t.judge.auto, t.judge.instructions) == (
        "anthropic/claude-opus-4-6", False, "Judge it.")
    assert "anthropic/claude-opus-4-6" in t.models()


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"auto": "yes"}, "judge.auto: must be true or false"),
        ({"model": "antropic/x"}, 'unknown provider "antropic"'),
        ({"modle": "openai/gpt-5.2"}, 'did you mean "model"'),
        ({"instructions": "  "}, "judge.instructions: must not be empty"),
    ],
)
def test_a_broken_judge_section_is_reported_with_its_key(judge, message):
    with pytest.raises(TableError) as err:
        table_from_dict(_doc_with(judge))
    assert message in str(err.value)
