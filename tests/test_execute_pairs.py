"""The executor racing and pairing: hedging, parallel pairs with merged events, and cancellation.

The executor is driven with small fake ProviderClients (scripted event streams, in
tests/execute_helpers.py) so every path can be produced exactly. No test asserts on
durations: retry waits are recorded through an injected ``sleep``, and ``asyncio.wait_for``
bounds only catch hangs.
"""

from __future__ import annotations

import asyncio

import pytest
from execute_helpers import (
    BACKUP,
    BOUND,
    CHEAP,
    FRONTIER,
    PROMPT,
    FakeClient,
    Resolver,
    collect_side,
    err,
    kinds,
    make_decision,
    make_table,
    ok,
)

from tui.router.cost.pricing import cost_usd
from tui.router.run.execute import RunOptions, run_pair
from tui.router.run.token_floor import token_floor
from tui.router.types import AttemptEnded, AttemptStarted, Cell, TextDelta, UsageReport

# --------------------------------------------------------------------------------------------
# Hedging
# --------------------------------------------------------------------------------------------


async def test_hedge_starts_and_wins_when_the_primary_stalls():
    primary = FakeClient(CHEAP, [[("started",), ("stall",)]])
    backup = FakeClient(BACKUP, [ok("hedge answer", inp=20, out=4)])
    events, res = await collect_side(
        Cell(CHEAP, BACKUP, hedge_after_ms=30), Resolver(p=primary, b=backup)
    )
    starts = kinds(events, AttemptStarted)
    assert [(s.role, s.model) for s in starts] == [("primary", CHEAP), ("hedge", BACKUP)]
    assert "30 ms" in starts[1].reason
    ends = {e.attempt: e.event for e in events if isinstance(e.event, AttemptEnded)}
    assert ends[0].outcome == "lost-hedge" and ends[1].outcome == "ok" and ends[1].final
    assert primary.cancelled == 1 and primary.closed == 1  # the loser's connection is closed
    assert res.hedged and res.model == BACKUP and res.text == "hedge answer"
    # Cost counts both: the loser's input estimated from the prompt, marked estimated.
    loser = res.attempts[0]
    assert loser.outcome == "lost-hedge" and loser.usage_estimated
    assert loser.input_tokens == token_floor(PROMPT) and loser.output_tokens == 0
    expected = cost_usd(CHEAP, loser.input_tokens, 0) + cost_usd(BACKUP, 20, 4)
    assert res.cost_usd == pytest.approx(expected)
    assert res.usage_estimated  # part of the cost is an estimate
    # Only the winner streamed text.
    assert {e.attempt for e in events if isinstance(e.event, TextDelta)} == {1}


async def test_hedge_loses_when_the_primary_streams_first():
    go_primary = asyncio.Event()
    primary = FakeClient(
        CHEAP,
        [
            [
                ("started",),
                ("wait", go_primary),
                ("text", "primary wins"),
                ("usage", 20, 3),
                ("finish",),
            ]
        ],
    )
    backup = FakeClient(BACKUP, [[("started",), ("stall",)]])

    async def release_when_hedged():
        await backup.opened.wait()
        go_primary.set()

    helper = asyncio.create_task(release_when_hedged())
    events, res = await collect_side(
        Cell(CHEAP, BACKUP, hedge_after_ms=20), Resolver(p=primary, b=backup)
    )
    await helper
    ends = {e.attempt: e.event for e in events if isinstance(e.event, AttemptEnded)}
    assert ends[1].outcome == "lost-hedge" and ends[0].outcome == "ok"
    assert backup.cancelled == 1 and backup.closed == 1
    assert res.hedged and res.model == CHEAP and res.text == "primary wins"
    assert not res.fallback_used
    hedge = res.attempts[1]
    assert hedge.usage_estimated and hedge.input_tokens == token_floor(PROMPT)
    assert res.cost_usd == pytest.approx(
        cost_usd(CHEAP, 20, 3) + cost_usd(BACKUP, hedge.input_tokens, 0)
    )


async def test_no_hedge_when_the_primary_is_fast():
    primary = FakeClient(CHEAP, [ok()])
    backup = FakeClient(BACKUP, [ok()])
    events, res = await collect_side(
        Cell(CHEAP, BACKUP, hedge_after_ms=5000), Resolver(p=primary, b=backup)
    )
    assert backup.calls == 0 and not res.hedged


async def test_primary_failure_during_the_race_leaves_the_hedge_running():
    go = asyncio.Event()
    primary = FakeClient(CHEAP, [[("wait", go), ("error", "http", 503, None)]])
    backup = FakeClient(
        BACKUP,
        [
            [
                ("started",),
                ("wait", go),
                ("sleep", 0.01),
                ("text", "hedge"),
                ("usage", 10, 1),
                ("finish",),
            ]
        ],
    )

    async def release():
        await backup.opened.wait()
        go.set()

    helper = asyncio.create_task(release())
    events, res = await collect_side(
        Cell(CHEAP, BACKUP, hedge_after_ms=10), Resolver(p=primary, b=backup)
    )
    await helper
    assert [(s.role) for s in kinds(events, AttemptStarted)] == ["primary", "hedge"]
    assert res.text == "hedge" and res.model == BACKUP and res.error is None
    assert [a.outcome for a in res.attempts] == ["failed", "ok"]


async def test_primary_client_error_during_the_race_ends_the_side():
    go = asyncio.Event()
    primary = FakeClient(CHEAP, [[("wait", go), ("error", "http", 401, None)]])
    backup = FakeClient(BACKUP, [[("started",), ("stall",)]])

    async def release():
        await backup.opened.wait()
        go.set()

    helper = asyncio.create_task(release())
    events, res = await collect_side(
        Cell(CHEAP, BACKUP, hedge_after_ms=10), Resolver(p=primary, b=backup)
    )
    await helper
    assert res.error == "HTTP 401 from fake"
    assert [a.outcome for a in res.attempts] == ["failed", "cancelled"]
    assert backup.closed == 1


# --------------------------------------------------------------------------------------------
# Pairs: parallel, merged, cancellable
# --------------------------------------------------------------------------------------------


async def test_pair_runs_both_sides_in_parallel():
    gate = asyncio.Event()
    routed = FakeClient(CHEAP, [[("started",), ("text", "fast"), ("usage", 10, 1), ("finish",)]])
    base = FakeClient(
        FRONTIER, [[("started",), ("wait", gate), ("text", "slow"), ("usage", 10, 1), ("finish",)]]
    )
    run = run_pair(
        make_decision(Cell(CHEAP, BACKUP)),
        make_table(),
        RunOptions(resolver=Resolver(r=routed, b=base), env={}),
    )
    order = []

    async def consume():
        async for ev in run:
            order.append((ev.side, type(ev.event).__name__, getattr(ev.event, "final", None)))
            if ev.side == "routed" and isinstance(ev.event, AttemptEnded):
                gate.set()  # the baseline only finishes after the routed side has

    await asyncio.wait_for(consume(), BOUND)
    # Both started before either ended, and the routed side ended while the baseline was
    # still running: the two ran at the same time, and the events came as they happened.
    first_end = next(i for i, o in enumerate(order) if o[1] == "AttemptEnded")
    started = [o[0] for o in order[:first_end] if o[1] == "AttemptStarted"]
    assert sorted(started) == ["baseline", "routed"]
    assert order[first_end][0] == "routed"
    assert order[-1] == ("baseline", "AttemptEnded", True)
    result = run.result
    assert result is not None
    assert result.routed.text == "fast" and result.baseline.text == "slow"
    assert result.baseline.model == FRONTIER
    assert result.wall_ms >= max(result.routed.total_ms, result.baseline.total_ms) - 1
    assert result.savings_usd == pytest.approx(cost_usd(FRONTIER, 10, 1) - cost_usd(CHEAP, 10, 1))


async def test_pair_metrics_are_updated_before_each_event_is_seen():
    routed = FakeClient(CHEAP, [ok("abcdefgh" * 4, inp=30, out=9)])
    base = FakeClient(FRONTIER, [ok()])
    run = run_pair(
        make_decision(Cell(CHEAP)),
        make_table(),
        RunOptions(resolver=Resolver(r=routed, b=base), env={}),
    )
    seen = []
    async with run:
        async for ev in run:
            m = run.metrics[ev.side]
            if ev.side == "routed" and isinstance(ev.event, TextDelta):
                seen.append((m.output_tokens, m.snapshot().tokens_estimated))
            if ev.side == "routed" and isinstance(ev.event, UsageReport):
                seen.append((m.output_tokens, m.snapshot().tokens_estimated))
    assert seen[0] == (token_floor("abcde"), True)
    assert seen[-1] == (9, False)
    assert run.metrics["routed"].done and run.metrics["baseline"].done


async def test_model_override_and_baseline_argument():
    forced = FakeClient("openai/gpt-4o-mini", [ok("forced")])
    other = FakeClient(BACKUP, [ok("other baseline")])
    run = run_pair(
        make_decision(Cell(CHEAP, BACKUP)),
        make_table(),
        RunOptions(resolver=Resolver(f=forced, o=other), env={}),
        model="openai/gpt-4o-mini",
        baseline=BACKUP,
    )
    result = await asyncio.wait_for(run.wait(), BOUND)
    assert result.routed.model == "openai/gpt-4o-mini" and result.routed.text == "forced"
    assert result.baseline.model == BACKUP


async def test_cancel_stops_both_sides_and_closes_connections():
    routed = FakeClient(CHEAP, [[("started",), ("text", "part"), ("stall",)]])
    base = FakeClient(FRONTIER, [[("started",), ("stall",)]])
    run = run_pair(
        make_decision(Cell(CHEAP, BACKUP)),
        make_table(),
        RunOptions(resolver=Resolver(r=routed, b=base), env={}),
    )
    finals = []

    async def consume():
        async for ev in run:
            if isinstance(ev.event, TextDelta):
                run.cancel()
            if isinstance(ev.event, AttemptEnded) and ev.event.final:
                finals.append((ev.side, ev.event.outcome))

    await asyncio.wait_for(consume(), BOUND)
    assert sorted(finals) == [("baseline", "cancelled"), ("routed", "cancelled")]
    assert routed.closed == 1 and base.closed == 1
    assert routed.cancelled == 1 and base.cancelled == 1
    r = run.result
    assert r.routed.status == "cancelled" and r.routed.error is None and r.baseline.status == "cancelled" and r.baseline.error is None
    assert r.routed.text == "part"  # what was shown stays


async def test_cancelling_the_consumer_cancels_the_sides():
    routed = FakeClient(CHEAP, [[("started",), ("stall",)]])
    base = FakeClient(FRONTIER, [[("started",), ("stall",)]])
    run = run_pair(
        make_decision(Cell(CHEAP, BACKUP)),
        make_table(),
        RunOptions(resolver=Resolver(r=routed, b=base), env={}),
    )

    async def consume():
        async for _ in run:
            pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(asyncio.gather(routed.opened.wait(), base.opened.wait()), BOUND)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, BOUND)
    assert routed.closed == 1 and base.closed == 1
    assert run.result is not None and run.result.routed.status == "cancelled" and run.result.routed.error is None


async def test_leaving_the_context_cancels():
    routed = FakeClient(CHEAP, [[("started",), ("text", "x"), ("stall",)]])
    base = FakeClient(FRONTIER, [[("started",), ("stall",)]])

    async def go():
        async with run_pair(
            make_decision(Cell(CHEAP)),
            make_table(),
            RunOptions(resolver=Resolver(r=routed, b=base), env={}),
        ) as run:
            async for ev in run:
                if isinstance(ev.event, TextDelta):
                    break
        return run

    run = await asyncio.wait_for(go(), BOUND)
    assert routed.closed == 1 and base.closed == 1
    assert run.result.routed.status == "cancelled" and run.result.routed.error is None


async def test_cancel_during_a_retry_wait():
    primary = FakeClient(CHEAP, [err("http", 429, 3.0)])
    base = FakeClient(FRONTIER, [[("started",), ("stall",)]])
    waiting = asyncio.Event()

    async def slow_sleep(s):
        waiting.set()
        await asyncio.sleep(3600)

    run = run_pair(
        make_decision(Cell(CHEAP)),
        make_table(),
        RunOptions(resolver=Resolver(p=primary, b=base), env={}, sleep=slow_sleep),
    )

    async def canceller():
        await waiting.wait()
        run.cancel()

    helper = asyncio.create_task(canceller())
    result = await asyncio.wait_for(run.wait(), BOUND)
    await helper
    assert result.routed.status == "cancelled" and result.routed.error is None and result.baseline.status == "cancelled" and result.baseline.error is None


async def test_cancel_right_after_start_and_awaiting_cancel():
    routed = FakeClient(CHEAP, [[("started",), ("stall",)]])
    base = FakeClient(FRONTIER, [[("started",), ("stall",)]])
    run = run_pair(
        make_decision(Cell(CHEAP)),
        make_table(),
        RunOptions(resolver=Resolver(r=routed, b=base), env={}),
    )
    run.start()
    await asyncio.wait_for(run.cancel(), BOUND)  # before either side ran a single step
    result = await asyncio.wait_for(run.wait(), BOUND)
    assert result.routed.status == "cancelled" and result.routed.error is None and result.baseline.status == "cancelled" and result.baseline.error is None
    assert routed.calls == 0 and base.calls == 0


async def test_await_cancel_waits_until_connections_are_closed():
    routed = FakeClient(CHEAP, [[("started",), ("stall",)]])
    base = FakeClient(FRONTIER, [[("started",), ("stall",)]])
    run = run_pair(
        make_decision(Cell(CHEAP)),
        make_table(),
        RunOptions(resolver=Resolver(r=routed, b=base), env={}),
    )
    run.start()
    await asyncio.wait_for(asyncio.gather(routed.opened.wait(), base.opened.wait()), BOUND)
    await asyncio.wait_for(run.cancel(), BOUND)
    assert routed.closed == 1 and base.closed == 1
    await run.cancel()  # a second cancel is harmless
    result = await asyncio.wait_for(run.wait(), BOUND)
    assert result.routed.status == "cancelled" and result.routed.error is None
