"""The executor: retries, fallback, hedging, cancellation, parallel pairs, and the metrics it folds.

The first part drives the executor with small fake ProviderClients (scripted event streams) so
every path can be produced exactly; the second runs the same paths through the registry and the
real protocol clients against the loopback fake server (tests/fakeserver.py). No test asserts on
durations: retry waits are recorded through an injected ``sleep``, and ``asyncio.wait_for``
bounds only catch hangs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import httpx
import pytest
from fakeserver import FakeServer, Reply, closed_port_url

from tui.router.cost.pricing import cost_usd
from tui.router.run.execute import (
    PairRun,
    RunOptions,
    plan_of,
    run_pair,
    run_side,
    run_side_result,
)
from tui.router.run.metrics import LiveMetrics
from tui.router.run.token_floor import token_floor
from tui.router.types import (
    AttemptEnded,
    AttemptStarted,
    Baseline,
    Cell,
    Classification,
    ClassifierSettings,
    Decision,
    Finished,
    Provider,
    RoutingTable,
    RunEvent,
    Started,
    StreamError,
    TextDelta,
    Timeouts,
    UsageReport,
)

BOUND = 20.0  # seconds: only to fail instead of hanging, never a performance assertion

CHEAP = "openai/gpt-5-mini"
BACKUP = "anthropic/claude-haiku-4-5"
FRONTIER = "openai/gpt-5.2"
FRONTIER_FB = "anthropic/claude-sonnet-4-5"
PROMPT = "Explain what a hash map is, in two sentences."


def now() -> float:
    return time.perf_counter()


# --------------------------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------------------------


@dataclass
class FakeClient:
    """Streams scripted calls. Each call's script is a list of steps:

    ("text", str), ("usage", in, out[, cached]), ("finish",), ("sleep", s), ("stall",),
    ("wait", asyncio.Event), ("error", kind, status, retry_after), ("raise",)
    A call without "finish" or "error" just ends (a normal end for the executor).
    """

    name: str
    scripts: list[list[tuple]]
    calls: int = 0
    closed: int = 0
    cancelled: int = 0
    requests: list = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def stream(self, request, timeouts):
        script = self.scripts[min(self.calls, len(self.scripts) - 1)]
        self.calls += 1
        self.requests.append(request)
        self.opened.set()
        try:
            for step in script:
                op = step[0]
                if op == "started":
                    yield Started(now(), self.name, False)
                elif op == "text":
                    yield TextDelta(now(), step[1])
                elif op == "usage":
                    yield UsageReport(now(), step[1], step[2], step[3] if len(step) > 3 else 0)
                elif op == "finish":
                    yield Finished(now(), "stop")
                elif op == "sleep":
                    await asyncio.sleep(step[1])
                elif op == "stall":
                    await asyncio.sleep(3600)
                elif op == "wait":
                    await step[1].wait()
                elif op == "error":
                    _, kind, status, retry_after = step
                    msg = f"HTTP {status} from fake" if status else f"{kind} failure in fake"
                    yield StreamError(now(), kind, msg, status, retry_after)
                    return
                elif op == "raise":
                    raise RuntimeError("provider bug")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.closed += 1


def ok(text="Hello world, this is the answer.", inp=20, out=8, cached=0):
    return [
        ("started",),
        ("text", text[:5]),
        ("text", text[5:]),
        ("usage", inp, out, cached),
        ("finish",),
    ]


def err(kind="http", status=None, retry_after=None):
    return [("error", kind, status, retry_after)]


class Resolver:
    def __init__(self, **clients: FakeClient):
        self.clients = {c.name: c for c in clients.values()}
        self.resolved: list[str] = []

    def __call__(self, model_id: str):
        self.resolved.append(model_id)
        if model_id not in self.clients:
            raise KeyError(f"unknown provider for {model_id}")
        return SimpleNamespace(
            client=self.clients[model_id],
            model_id=model_id,
            provider_model=model_id.split("/", 1)[1],
            simulated=False,
            why_simulated=None,
        )


class Sleeps:
    """Records retry waits instead of waiting."""

    def __init__(self):
        self.waits: list[float] = []

    async def __call__(self, s: float) -> None:
        self.waits.append(s)
        await asyncio.sleep(0)


def make_table(timeouts: Timeouts | None = None) -> RoutingTable:
    return RoutingTable(
        tasks={},
        priorities={},
        routes={},
        baseline=Baseline(FRONTIER, FRONTIER_FB),
        classifier=ClassifierSettings(),
        providers={
            "openai": Provider("openai", "openai-compatible", api_key_env="OPENAI_API_KEY"),
            "anthropic": Provider("anthropic", "anthropic", api_key_env="ANTHROPIC_API_KEY"),
        },
        timeouts=timeouts or Timeouts(max_retries=2, max_retry_wait=20.0),
    )


def make_decision(cell: Cell, prompt: str = PROMPT) -> Decision:
    c = Classification("code", 0.9, (("code", 0.9),), "local", "local classifier", 1.0)
    return Decision(prompt, c, "code", "default", "default", cell, False, "code/default")


async def collect_side(
    plan, resolver, *, table=None, sleep=None, prompt=PROMPT, model_override=None, **kw
):
    table = table or make_table()
    events: list[RunEvent] = []
    metrics = LiveMetrics("routed", prompt, table=table)
    options = RunOptions(resolver=resolver, sleep=sleep or Sleeps(), env={}, **kw)

    async def go():
        async for ev in run_side(
            "routed", plan, prompt, table, options, model_override=model_override
        ):
            events.append(ev)
            metrics.apply(ev)

    await asyncio.wait_for(go(), BOUND)
    return events, metrics.result()


def kinds(events, cls):
    return [e.event for e in events if isinstance(e.event, cls)]


# --------------------------------------------------------------------------------------------
# The normal path
# --------------------------------------------------------------------------------------------


async def test_single_side_ok_streams_and_prices():
    primary = FakeClient(CHEAP, [ok(inp=20, out=8)])
    events, res = await collect_side(Cell(CHEAP, BACKUP), Resolver(p=primary))
    assert [type(e.event).__name__ for e in events] == [
        "AttemptStarted",
        "Started",
        "TextDelta",
        "TextDelta",
        "UsageReport",
        "Finished",
        "AttemptEnded",
    ]
    end = events[-1].event
    assert end.outcome == "ok" and end.final
    assert res.text == "Hello world, this is the answer."
    assert res.model == CHEAP and not res.fallback_used and not res.hedged and res.error is None
    assert (res.input_tokens, res.output_tokens, res.usage_estimated) == (20, 8, False)
    assert res.cost_usd == pytest.approx(cost_usd(CHEAP, 20, 8))
    assert res.ttft_ms is not None and res.total_ms is not None and res.ttft_ms <= res.total_ms
    # The prompt went out as a single user message, to the provider's own model name.
    req = primary.requests[0]
    assert req.model == "gpt-5-mini"
    assert [(m.role, m.content) for m in req.messages] == [("user", PROMPT)]
    assert primary.closed == 1


# --------------------------------------------------------------------------------------------
# Retries (408/409/429)
# --------------------------------------------------------------------------------------------


async def test_429_retried_honouring_retry_after():
    primary = FakeClient(CHEAP, [err("http", 429, 1.5), ok()])
    backup = FakeClient(BACKUP, [ok()])
    sleeps = Sleeps()
    events, res = await collect_side(
        Cell(CHEAP, BACKUP), Resolver(p=primary, b=backup), sleep=sleeps
    )
    assert sleeps.waits == [1.5]
    starts = kinds(events, AttemptStarted)
    assert [(s.role, s.model) for s in starts] == [("primary", CHEAP), ("retry", CHEAP)]
    assert "429" in starts[1].reason
    assert backup.calls == 0
    assert res.model == CHEAP and not res.fallback_used and res.error is None
    assert [a.outcome for a in res.attempts] == ["failed", "ok"]


@pytest.mark.parametrize("status", [408, 409, 429])
async def test_retryable_statuses_then_fallback_when_retries_run_out(status):
    primary = FakeClient(CHEAP, [err("http", status, 0.25)])
    backup = FakeClient(BACKUP, [ok("from the backup")])
    sleeps = Sleeps()
    events, res = await collect_side(
        Cell(CHEAP, BACKUP), Resolver(p=primary, b=backup), sleep=sleeps
    )
    assert sleeps.waits == [0.25, 0.25]  # max_retries = 2
    assert primary.calls == 3
    roles = [s.role for s in kinds(events, AttemptStarted)]
    assert roles == ["primary", "retry", "retry", "fallback"]
    assert res.model == BACKUP and res.fallback_used and res.text == "from the backup"
    assert f"HTTP {status}" in res.fallback_reason


async def test_retry_after_over_the_cap_falls_back_without_waiting():
    primary = FakeClient(CHEAP, [err("http", 429, 3600.0)])
    backup = FakeClient(BACKUP, [ok()])
    sleeps = Sleeps()
    events, res = await collect_side(
        Cell(CHEAP, BACKUP), Resolver(p=primary, b=backup), sleep=sleeps
    )
    assert sleeps.waits == []
    assert primary.calls == 1
    assert res.model == BACKUP and res.fallback_used
    assert "cap" in res.fallback_reason


async def test_429_without_retry_after_backs_off():
    primary = FakeClient(CHEAP, [err("http", 429, None), err("http", 429, None), ok()])
    sleeps = Sleeps()
    _, res = await collect_side(Cell(CHEAP, BACKUP), Resolver(p=primary), sleep=sleeps)
    assert sleeps.waits == [0.5, 1.0]
    assert res.model == CHEAP and res.error is None


async def test_429_without_fallback_ends_with_the_error():
    primary = FakeClient(CHEAP, [err("http", 429, 0.1)])
    sleeps = Sleeps()
    events, res = await collect_side(CHEAP, Resolver(p=primary), sleep=sleeps)
    assert sleeps.waits == [0.1, 0.1]
    assert res.error and "429" in res.error
    assert events[-1].event.final and events[-1].event.outcome == "failed"


async def test_429_on_the_fallback_is_retried_on_the_fallback():
    primary = FakeClient(CHEAP, [err("http", 503)])
    backup = FakeClient(BACKUP, [err("http", 429, 0.2), ok("second try")])
    sleeps = Sleeps()
    events, res = await collect_side(
        Cell(CHEAP, BACKUP), Resolver(p=primary, b=backup), sleep=sleeps
    )
    assert [(s.role, s.model) for s in kinds(events, AttemptStarted)] == [
        ("primary", CHEAP),
        ("fallback", BACKUP),
        ("retry", BACKUP),
    ]
    assert res.text == "second try" and res.model == BACKUP and res.fallback_used


# --------------------------------------------------------------------------------------------
# Fallback
# --------------------------------------------------------------------------------------------

FALLS_BACK = {
    "500": err("http", 500),
    "502": err("http", 502),
    "503": err("http", 503),
    "529": err("http", 529),
    "connect": err("connect"),
    "timeout": [("started",), ("error", "timeout", None, None)],
    "mid-stream": [("started",), ("text", "partial ans"), ("error", "stream", None, None)],
    "malformed": [("started",), ("text", "half"), ("error", "protocol", None, None)],
    "provider-raises": [("started",), ("raise",)],
}


@pytest.mark.parametrize("case", list(FALLS_BACK))
async def test_falls_back(case):
    primary = FakeClient(CHEAP, [FALLS_BACK[case]])
    backup = FakeClient(BACKUP, [ok("the fallback answer", inp=20, out=5)])
    events, res = await collect_side(Cell(CHEAP, BACKUP), Resolver(p=primary, b=backup))
    starts = kinds(events, AttemptStarted)
    assert [(s.role, s.model) for s in starts] == [("primary", CHEAP), ("fallback", BACKUP)]
    assert starts[1].reason.startswith("primary failed: ")
    if case.isdigit():
        assert starts[1].reason == f"primary failed: HTTP {case}"
    ends = kinds(events, AttemptEnded)
    assert [(e.outcome, e.final) for e in ends] == [("failed", False), ("ok", True)]
    assert res.model == BACKUP and res.fallback_used and res.error is None
    assert res.text == "the fallback answer"  # nothing of the failed attempt mixed in
    if case in ("mid-stream", "malformed"):
        assert res.discarded_text in ("partial ans", "half")
    else:
        assert res.discarded_text == ""
    assert primary.closed == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_no_fallback_on_client_errors(status):
    primary = FakeClient(CHEAP, [err("http", status)])
    backup = FakeClient(BACKUP, [ok()])
    sleeps = Sleeps()
    events, res = await collect_side(
        Cell(CHEAP, BACKUP), Resolver(p=primary, b=backup), sleep=sleeps
    )
    assert backup.calls == 0 and sleeps.waits == [] and primary.calls == 1
    assert len(kinds(events, AttemptStarted)) == 1
    assert res.error == f"HTTP {status} from fake"
    assert not res.fallback_used and res.text == ""
    assert res.cost_usd == 0.0  # refused before the stream: nothing used


async def test_fallback_failure_ends_the_side():
    primary = FakeClient(CHEAP, [err("http", 503)])
    backup = FakeClient(BACKUP, [err("http", 502)])
    events, res = await collect_side(Cell(CHEAP, BACKUP), Resolver(p=primary, b=backup))
    assert len(kinds(events, AttemptStarted)) == 2
    assert res.error == "HTTP 502 from fake" and res.fallback_used


async def test_no_fallback_configured():
    primary = FakeClient(CHEAP, [err("http", 503)])
    events, res = await collect_side(Cell(CHEAP), Resolver(p=primary))
    assert len(kinds(events, AttemptStarted)) == 1
    assert res.error == "HTTP 503 from fake"


async def test_unknown_provider_is_a_config_error_without_fallback():
    backup = FakeClient(BACKUP, [ok()])
    events, res = await collect_side(Cell("nowhere/model", BACKUP), Resolver(b=backup))
    assert backup.calls == 0
    assert res.error and "nowhere/model" in res.error
    assert kinds(events, StreamError)[0].kind == "config"


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


# --------------------------------------------------------------------------------------------
# Untrusted text
# --------------------------------------------------------------------------------------------


async def test_streamed_text_is_cleaned_even_when_escapes_are_split():
    primary = FakeClient(
        CHEAP,
        [
            [
                ("started",),
                ("text", "safe \x1b]52;c;"),
                ("text", "ZXZpbA=="),
                ("text", "\x07text\x1b["),
                ("text", "2J!"),
                ("usage", 5, 3),
                ("finish",),
            ]
        ],
    )
    events, res = await collect_side(CHEAP, Resolver(p=primary))
    assert res.text == "safe text!"
    assert all("\x1b" not in e.event.text for e in events if isinstance(e.event, TextDelta))


async def test_error_messages_never_carry_keys():
    class Leaky(FakeClient):
        async def stream(self, request, timeouts):
            self.calls += 1
            yield StreamError(now(), "http", "HTTP 401: bad key sk-secret-value-1234 \x1b[2J", 401)

    leaky = Leaky(CHEAP, [[]])
    table = make_table()
    events = []
    async for ev in run_side(
        "routed",
        CHEAP,
        PROMPT,
        table,
        RunOptions(resolver=Resolver(p=leaky), env={"OPENAI_API_KEY": "sk-secret-value-1234"}),
    ):
        events.append(ev)
    text = repr(events)
    assert "sk-secret-value-1234" not in text and "\x1b" not in text
    assert kinds(events, StreamError)[0].message == "HTTP 401: bad key *** "


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


# --------------------------------------------------------------------------------------------
# Through the real protocol clients, against the loopback fake server
# --------------------------------------------------------------------------------------------

OPENAI_KEY = "sk-loopback-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-loopback-0123456789"
LOOP_ENV = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def loop_table(server, timeouts: Timeouts | None = None, openai_url: str | None = None):
    return RoutingTable(
        tasks={},
        priorities={},
        routes={},
        baseline=Baseline(FRONTIER, FRONTIER_FB),
        classifier=ClassifierSettings(),
        providers={
            "openai": Provider(
                "openai", "openai-compatible", openai_url or server.openai_url, "OPENAI_API_KEY"
            ),
            "anthropic": Provider(
                "anthropic", "anthropic", server.anthropic_url, "ANTHROPIC_API_KEY"
            ),
        },
        timeouts=timeouts
        or Timeouts(connect=2.0, first_token=5.0, idle=5.0, max_retries=2, max_retry_wait=20.0),
    )


async def loop_side(server, cell, *, table=None, sleep=None):
    table = table or loop_table(server)
    events: list[RunEvent] = []
    metrics = LiveMetrics("routed", PROMPT, table=table)
    async with httpx.AsyncClient() as http:

        async def go():
            async for e in run_side(
                "routed",
                cell,
                PROMPT,
                table,
                RunOptions(env=LOOP_ENV, http_client=http, sleep=sleep or Sleeps()),
            ):
                events.append(e)
                metrics.apply(e)

        await asyncio.wait_for(go(), BOUND)
    return events, metrics.result()


async def test_loopback_ok_with_real_usage(server):
    server.route(
        "gpt-5-mini",
        Reply.ok("Real protocol answer.", input_tokens=42, output_tokens=7, cached_tokens=2),
    )
    events, res = await loop_side(server, Cell(CHEAP, BACKUP))
    assert res.text == "Real protocol answer." and res.model == CHEAP and not res.simulated
    assert (res.input_tokens, res.output_tokens, res.usage_estimated) == (42, 7, False)
    assert res.cost_usd == pytest.approx(cost_usd(CHEAP, 42, 7, 2))
    req = server.requests[0]
    assert req.json["model"] == "gpt-5-mini"
    assert req.json["messages"] == [{"role": "user", "content": PROMPT}]


LOOP_FALLS_BACK = {
    "500": Reply.http(500),
    "502": Reply.http(502),
    "503": Reply.http(503),
    "529": Reply.http(529, error_type="overloaded_error"),
    "hangup": Reply.hangup(),
    "reset mid-stream": Reply.reset(after=2, text="one two three four five"),
    "malformed chunk": Reply.malformed(after=1),
    "error inside the stream": Reply.stream_error(after=1),
    "cut before [DONE]": Reply.cut(after=2),
}


@pytest.mark.parametrize("case", list(LOOP_FALLS_BACK))
async def test_loopback_falls_back(server, case):
    server.route("gpt-5-mini", LOOP_FALLS_BACK[case])
    server.route("claude-haiku-4-5", Reply.ok("Anthropic saves the day."))
    events, res = await loop_side(server, Cell(CHEAP, BACKUP))
    starts = kinds(events, AttemptStarted)
    assert [(s.role, s.model) for s in starts] == [("primary", CHEAP), ("fallback", BACKUP)]
    assert res.text == "Anthropic saves the day." and res.model == BACKUP and res.error is None
    assert res.fallback_used
    if case.isdigit():
        assert res.fallback_reason == f"primary failed: HTTP {case}"
    if case in ("reset mid-stream", "cut before [DONE]"):
        assert res.discarded_text.strip()  # what the broken stream showed is kept apart
        assert res.discarded_text not in res.text


async def test_loopback_connection_refused_falls_back(server):
    server.route("claude-haiku-4-5", Reply.ok("from anthropic"))
    table = loop_table(server, openai_url=closed_port_url() + "/v1")
    events, res = await loop_side(server, Cell(CHEAP, BACKUP), table=table)
    assert kinds(events, StreamError)[0].kind == "connect"
    assert res.text == "from anthropic" and res.fallback_used


async def test_loopback_first_token_timeout_falls_back(server):
    server.route("gpt-5-mini", Reply.stall_headers(seconds=30))
    server.route("claude-haiku-4-5", Reply.ok("from anthropic"))
    table = loop_table(server, Timeouts(connect=2.0, first_token=0.3, idle=0.3))
    events, res = await loop_side(server, Cell(CHEAP, BACKUP), table=table)
    assert kinds(events, StreamError)[0].kind == "timeout"
    assert res.text == "from anthropic" and res.fallback_used
    assert server.wait_disconnect(1, timeout=BOUND)  # the stalled call's connection was closed


async def test_loopback_429_retry_after_honoured(server):
    server.route("gpt-5-mini", Reply.http(429, retry_after="0.05"), Reply.ok("after the wait"))
    sleeps = Sleeps()
    events, res = await loop_side(server, Cell(CHEAP, BACKUP), sleep=sleeps)
    assert sleeps.waits == [pytest.approx(0.05)]
    assert [s.role for s in kinds(events, AttemptStarted)] == ["primary", "retry"]
    assert res.text == "after the wait" and not res.fallback_used


async def test_loopback_429_over_cap_falls_back_at_once(server):
    server.route("gpt-5-mini", Reply.http(429, retry_after_ms=600_000))
    server.route("claude-haiku-4-5", Reply.ok("fallback"))
    sleeps = Sleeps()
    events, res = await loop_side(server, Cell(CHEAP, BACKUP), sleep=sleeps)
    assert sleeps.waits == []
    assert res.text == "fallback" and "cap" in res.fallback_reason


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_loopback_no_fallback_on_client_errors(server, status):
    server.route("gpt-5-mini", Reply.http(status, "bad request for key {key}"))
    server.route("claude-haiku-4-5", Reply.ok("must not be used"))
    events, res = await loop_side(server, Cell(CHEAP, BACKUP))
    assert [r.model for r in server.requests] == ["gpt-5-mini"]
    assert res.error and f"HTTP {status}" in res.error
    assert OPENAI_KEY not in res.error and OPENAI_KEY not in repr(events)
    assert res.text == "" and not res.fallback_used


async def test_loopback_hedge_wins_and_the_loser_is_disconnected(server):
    server.route("gpt-5-mini", Reply.stall_headers(seconds=30))
    server.route("claude-haiku-4-5", Reply.ok("hedged answer", input_tokens=30, output_tokens=3))
    events, res = await loop_side(server, Cell(CHEAP, BACKUP, hedge_after_ms=50))
    assert [s.role for s in kinds(events, AttemptStarted)] == ["primary", "hedge"]
    assert res.hedged and res.text == "hedged answer" and res.model == BACKUP
    assert server.wait_disconnect(1, timeout=BOUND)
    loser = res.attempts[0]
    assert loser.outcome == "lost-hedge" and loser.usage_estimated
    assert res.cost_usd == pytest.approx(
        cost_usd(CHEAP, loser.input_tokens, 0) + cost_usd(BACKUP, 30, 3)
    )


async def test_loopback_hedge_loses_to_a_primary_that_streams_first(server):
    server.route(
        "gpt-5-mini", Reply.ok("primary answer", first_delay=0.3, input_tokens=20, output_tokens=2)
    )
    server.route("claude-haiku-4-5", Reply.stall_headers(seconds=30))
    events, res = await loop_side(server, Cell(CHEAP, BACKUP, hedge_after_ms=50))
    # The primary's headers come at once but its first token only after 0.3 s: the hedge starts.
    assert [s.role for s in kinds(events, AttemptStarted)] == ["primary", "hedge"]
    assert res.text == "primary answer" and res.model == CHEAP
    assert res.attempts[1].outcome == "lost-hedge"
    assert server.wait_disconnect(1, timeout=BOUND)


async def test_loopback_pair_in_parallel_and_cancel_closes_connections(server):
    server.route("gpt-5-mini", Reply.stall(after=1, seconds=30))
    server.route("gpt-5.2", Reply.stall_headers(seconds=30))
    table = loop_table(server)
    async with httpx.AsyncClient() as http:
        run = run_pair(
            make_decision(Cell(CHEAP, BACKUP)), table, RunOptions(env=LOOP_ENV, http_client=http)
        )

        async def consume():
            async for e in run:
                if isinstance(e.event, TextDelta):
                    # Both requests are in flight at once: the pair runs in parallel.
                    assert server.wait_requests(2, timeout=BOUND)
                    run.cancel()

        await asyncio.wait_for(consume(), BOUND)
    assert server.wait_disconnect(2, timeout=BOUND)
    assert run.result.routed.status == "cancelled" and run.result.routed.error is None and run.result.baseline.status == "cancelled" and run.result.baseline.error is None


async def test_loopback_pair_result(server):
    server.route(
        "gpt-5-mini", Reply.ok("routed answer", delay=0.01, input_tokens=12, output_tokens=2)
    )
    server.route(
        "gpt-5.2", Reply.ok("baseline answer", delay=0.02, input_tokens=12, output_tokens=2)
    )
    async with httpx.AsyncClient() as http:
        run = run_pair(
            make_decision(Cell(CHEAP, BACKUP)),
            loop_table(server),
            RunOptions(env=LOOP_ENV, http_client=http),
        )
        result = await asyncio.wait_for(run.wait(), BOUND)
    assert result.routed.text == "routed answer" and result.baseline.text == "baseline answer"
    assert result.savings_usd == pytest.approx(cost_usd(FRONTIER, 12, 2) - cost_usd(CHEAP, 12, 2))
    assert result.savings_pct > 0


async def test_missing_key_runs_simulated(server):
    table = loop_table(server)
    res = await asyncio.wait_for(
        run_side_result(
            "routed", CHEAP, PROMPT, table, RunOptions(env={"ROUTEDECK_SIM_SPEED": "200"})
        ),
        BOUND,
    )
    assert res.simulated and res.text and res.error is None
    assert server.requests == []


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
