"""The metrics the executor's events fold into (TTFT, tokens, cost, fallback text), the side
result and plan, and the run objects (PairRun without a loop, frozen RunOptions)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from execute_helpers import (
    BACKUP,
    BOUND,
    CHEAP,
    FRONTIER,
    FRONTIER_FB,
    PROMPT,
    FakeClient,
    Resolver,
    make_decision,
    make_table,
    ok,
)

from tui.router.cost.pricing import cost_usd
from tui.router.run.execute import PairRun, RunOptions, plan_of, run_pair, run_side_result
from tui.router.run.metrics import LiveMetrics
from tui.router.run.token_floor import token_floor
from tui.router.types import (
    AttemptEnded,
    AttemptStarted,
    Baseline,
    Cell,
    Finished,
    RunEvent,
    Started,
    StreamError,
    TextDelta,
    Timeouts,
    UsageReport,
)

# --------------------------------------------------------------------------------------------
# Metrics folding
# --------------------------------------------------------------------------------------------


def ev(attempt, event, side="routed"):
    return RunEvent(side, attempt, event)


def test_metrics_ttft_tokens_and_cost():
    m = LiveMetrics("routed", "word " * 100, table=make_table())  # 100 words: 100 tokens at least
    assert m.state == "waiting" and m.elapsed_ms is None
    m.apply(ev(0, AttemptStarted(100.0, CHEAP, False, "primary")))
    m.apply(ev(0, Started(100.1, CHEAP, False)))
    assert m.state == "waiting" and m.ttft_ms is None
    # Before any text the accepted request counts its prompt as an estimate.
    assert m.cost_usd == pytest.approx(cost_usd(CHEAP, 100, 0))
    m.apply(ev(0, TextDelta(100.25, "tok " * 10)))
    assert m.ttft_ms == pytest.approx(250.0)
    assert m.state == "streaming"
    snap = m.snapshot(now=100.35)
    assert (snap.input_tokens, snap.output_tokens, snap.tokens_estimated) == (100, 10, True)
    assert snap.elapsed_ms == pytest.approx(350.0)
    assert snap.tokens_per_s == pytest.approx(10 / 0.1)
    m.apply(ev(0, TextDelta(100.45, "tok " * 10)))
    m.apply(ev(0, UsageReport(100.5, 90, 25, cached_tokens=10)))
    m.apply(ev(0, Finished(100.5, "stop")))
    snap = m.snapshot()
    assert (snap.input_tokens, snap.output_tokens, snap.tokens_estimated) == (90, 25, False)
    assert snap.cost_usd == pytest.approx(cost_usd(CHEAP, 90, 25, 10))
    assert not m.done
    m.apply(ev(0, AttemptEnded(100.5, CHEAP, "ok", final=True)))
    assert m.done and m.state == "done"
    assert m.total_ms == pytest.approx(500.0)
    assert m.tokens_per_s == pytest.approx(25 / 0.2)
    r = m.result()
    assert r.text == "tok " * 20 and not r.usage_estimated
    assert r.attempts[0].cached_tokens == 10


def test_metrics_fallback_keeps_failed_text_apart_and_ttft_from_side_start():
    m = LiveMetrics("baseline", "hi", table=make_table())
    m.apply(ev(0, AttemptStarted(10.0, FRONTIER, False, "primary"), "baseline"))
    m.apply(ev(0, Started(10.1, FRONTIER, False), "baseline"))
    m.apply(ev(0, TextDelta(10.2, "broken "), "baseline"))
    assert m.text == "broken "
    e = StreamError(10.3, "stream", "stream broke")
    m.apply(ev(0, e, "baseline"))
    m.apply(ev(0, AttemptEnded(10.3, FRONTIER, "failed", e), "baseline"))
    assert m.text == "" and m.ttft_ms is None and m.discarded_text == "broken "
    m.apply(
        ev(
            1,
            AttemptStarted(10.3, FRONTIER_FB, True, "fallback", "primary failed: stream broke"),
            "baseline",
        )
    )
    m.apply(ev(1, TextDelta(11.0, "good"), "baseline"))
    m.apply(ev(1, UsageReport(11.1, 5, 1, estimated=True), "baseline"))
    m.apply(ev(1, AttemptEnded(11.1, FRONTIER_FB, "ok", final=True), "baseline"))
    m.apply(ev(0, TextDelta(11.2, "other side"), "routed"))  # ignored: not this side
    r = m.result()
    assert r.text == "good" and r.discarded_text == "broken "
    assert r.ttft_ms == pytest.approx(1000.0)
    assert r.model == FRONTIER_FB and r.simulated
    assert r.fallback_used and r.fallback_reason == "primary failed: stream broke"
    assert r.usage_estimated
    # The broken attempt is charged an estimate (it was accepted and streamed).
    assert r.attempts[0].usage_estimated and r.attempts[0].output_tokens == token_floor("broken ")
    assert "fallback" in m.badges and "simulated" in m.badges


def test_metrics_unknown_price_makes_the_cost_unknown_but_unused_attempts_cost_nothing():
    m = LiveMetrics("routed", "hello")
    m.apply(ev(0, AttemptStarted(1.0, "openai/not-a-real-model", False, "primary")))
    e = StreamError(1.1, "http", "HTTP 503", 503)
    m.apply(ev(0, e))
    m.apply(ev(0, AttemptEnded(1.1, "openai/not-a-real-model", "failed", e)))
    m.apply(ev(1, AttemptStarted(1.1, CHEAP, False, "fallback", "primary failed: HTTP 503")))
    m.apply(ev(1, UsageReport(1.5, 10, 10)))
    m.apply(ev(1, AttemptEnded(1.5, CHEAP, "ok", final=True)))
    assert m.cost_usd == pytest.approx(cost_usd(CHEAP, 10, 10))
    m2 = LiveMetrics("routed", "hello")
    m2.apply(ev(0, AttemptStarted(1.0, "openai/not-a-real-model", False, "primary")))
    m2.apply(ev(0, UsageReport(1.5, 10, 10)))
    assert m2.cost_usd is None


async def test_run_side_result_and_plan_of():
    primary = FakeClient(CHEAP, [ok("done")])
    res = await asyncio.wait_for(
        run_side_result(
            "routed",
            (CHEAP,),
            PROMPT,
            make_table(),
            RunOptions(resolver=Resolver(p=primary), env={}),
        ),
        BOUND,
    )
    assert res.text == "done"
    assert plan_of(Cell(CHEAP, BACKUP, 100), model_override=BACKUP).fallback is None
    assert plan_of(Baseline(FRONTIER, FRONTIER_FB)).fallback == FRONTIER_FB
    assert plan_of(Cell(CHEAP, None, 100)).hedge_after_ms is None


def test_pair_run_is_created_without_a_loop():
    run = PairRun(make_decision(Cell(CHEAP)), make_table(), RunOptions(resolver=Resolver(), env={}))
    assert run.result is None and not run.finished


def test_run_options_are_one_frozen_object_shared_by_the_run():
    options = RunOptions(resolver=Resolver(), env={}, max_tokens=7, timeouts=Timeouts(total=3.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_tokens = 8  # type: ignore[misc]
    run = run_pair(make_decision(Cell(CHEAP)), make_table(), options)
    assert run.options is options
    assert run._context.max_tokens == 7 and run._context.timeouts.total == 3.0
    default = run_pair(make_decision(Cell(CHEAP)), make_table(), RunOptions(env={}))
    assert default._context.timeouts == make_table().timeouts  # the table's when not given
    with pytest.raises(TypeError):
        run_pair(make_decision(Cell(CHEAP)), make_table(), env={})  # type: ignore[call-arg]
