"""The executor's paths through the registry and the real protocol clients against the loopback
fake server (tests/fakeserver.py): real usage, fallback, retries, hedging, pairs and
cancellation, and a model without a key running simulated. ``asyncio.wait_for`` bounds only catch hangs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from execute_helpers import (
    BACKUP,
    BOUND,
    CHEAP,
    FRONTIER,
    FRONTIER_FB,
    PROMPT,
    Sleeps,
    kinds,
    make_decision,
)
from fakeserver import FakeServer, Reply, closed_port_url

from tui.router.cost.pricing import cost_usd
from tui.router.run.execute import RunOptions, run_pair, run_side, run_side_result
from tui.router.run.metrics import LiveMetrics
from tui.router.types import (
    AttemptStarted,
    Baseline,
    Cell,
    ClassifierSettings,
    Provider,
    RoutingTable,
    RunEvent,
    StreamError,
    TextDelta,
    Timeouts,
)

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
