"""The executor on one side: the normal path, retries (408/409/429), fallback, and the cleaning
of untrusted text (streamed escapes, keys in error messages).

The executor is driven with small fake ProviderClients (scripted event streams, in
tests/execute_helpers.py) so every path can be produced exactly. No test asserts on
durations: retry waits are recorded through an injected ``sleep``, and ``asyncio.wait_for``
bounds only catch hangs.
"""

from __future__ import annotations

import pytest
from execute_helpers import (
    BACKUP,
    CHEAP,
    PROMPT,
    FakeClient,
    Resolver,
    Sleeps,
    collect_side,
    err,
    kinds,
    make_table,
    now,
    ok,
)

from tui.router.cost.pricing import cost_usd
from tui.router.run.execute import RunOptions, run_side
from tui.router.types import AttemptEnded, AttemptStarted, Cell, StreamError, TextDelta

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
