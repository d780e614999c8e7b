"""The Anthropic client against a real loopback server (streams and faults), and no key in any
event of either protocol.

Every test bounds its wait with a generous ``asyncio.timeout`` so that a hang fails fast
instead of blocking the run; no test asserts on how long anything took.
"""

from __future__ import annotations

import provider_helpers
import pytest
from fakeserver import FakeServer, Reply
from provider_helpers import (
    IDLE,
    NO_FIRST,
    OK,
    SECRET,
    anthropic,
    collect,
    kinds,
    table,
    text_of,
    the_error,
)

from tui.router.providers.anthropic import AnthropicClient
from tui.router.providers.base import Message, Request
from tui.router.providers.registry import resolve_client
from tui.router.types import Timeouts

# The shared fixtures, bound by name so pytest finds them here (imported, ruff would read
# every test argument of the same name as a redefinition, F811).
server = provider_helpers.server
_close_shared_client = provider_helpers._close_shared_client


# --------------------------------------------------------------------------------------------
# Anthropic
# --------------------------------------------------------------------------------------------


async def test_anthropic_normal_stream(server: FakeServer):
    server.script(
        Reply.ok(
            chunks=("Hi", " there", "."),
            input_tokens=40,
            output_tokens=12,
            cached_tokens=30,
            usage_steps=3,  # three cumulative message_delta events: 4, 8, 12
        )
    )
    events = await collect(anthropic(server))
    assert kinds(events) == ["Started"] + ["TextDelta"] * 3 + ["UsageReport", "Finished"]
    assert events[0].model == "anthropic/gpt-test" and not events[0].simulated
    assert text_of(events) == "Hi there."
    usage = events[-2]
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (40, 12, 30)
    assert not usage.estimated
    assert events[-1].reason == "end_turn"

    sent = server.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == SECRET
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json["stream"] is True
    assert sent.json["max_tokens"] == 1024
    assert sent.json["system"] == "You are terse."
    assert sent.json["messages"] == [{"role": "user", "content": "Say hello to the tests."}]


async def test_anthropic_base_url_with_v1_and_max_tokens(server: FakeServer):
    client = AnthropicClient(server.anthropic_url + "/v1/", SECRET)
    await collect(client, Request("claude", (Message("user", "x"),), max_tokens=77))
    assert server.last_request.path == "/v1/messages"
    assert server.last_request.json["max_tokens"] == 77
    assert "system" not in server.last_request.json


async def test_anthropic_529_before_the_stream(server: FakeServer):
    server.script(Reply.http(529, "Overloaded"))
    err = the_error(await collect(anthropic(server)))
    assert (err.kind, err.status) == ("http", 529)
    assert "overloaded_error" in err.message and err.falls_back


async def test_anthropic_429_retry_after(server: FakeServer):
    server.script(Reply.http(429, "Slow down", retry_after="3"))
    err = the_error(await collect(anthropic(server)))
    assert (err.status, err.retry_after) == (429, 3.0)
    assert "rate_limit_error" in err.message and err.retryable


async def test_anthropic_error_event_mid_stream(server: FakeServer):
    server.script(Reply.stream_error(after=1, message="Overloaded", error_type="overloaded_error"))
    events = await collect(anthropic(server))
    assert kinds(events) == ["Started", "TextDelta", "StreamError"]
    assert events[-1].kind == "stream" and "overloaded_error" in events[-1].message


@pytest.mark.parametrize(
    ("reply", "timeouts", "kind", "words"),
    [
        (Reply.cut(after=2), OK, "stream", "message_stop"),
        (Reply.malformed(after=1), OK, "protocol", "malformed JSON"),
        (Reply.stall(after=1), IDLE, "timeout", "idle"),
        (Reply.reset(after=1), OK, "stream", ""),
        (Reply.stall_headers(), NO_FIRST, "timeout", "first_token"),
        (Reply.ok(first_delay=30), NO_FIRST, "timeout", "first_token"),  # pings don't count
    ],
)
async def test_anthropic_faults(server, reply: Reply, timeouts: Timeouts, kind: str, words: str):
    server.script(reply)
    err = the_error(await collect(anthropic(server), timeouts=timeouts))
    assert err.kind == kind and words in err.message


# --------------------------------------------------------------------------------------------
# Keys never leak
# --------------------------------------------------------------------------------------------

LEAKY_REPLIES = [
    Reply.ok(),
    Reply.http(401, "Incorrect API key provided: {key}"),
    Reply.http(400, body='{"error": {"message": "bad key {key}"}}'),
    Reply.http(500, body="plain text error mentioning {key}"),
    Reply.http(429, "slow down {key}", retry_after="1"),
    Reply.stream_error(message="stream failed for {key}"),
    Reply.malformed(),
    Reply.cut(),
    Reply.stall(after=1),
    Reply.reset(after=1),
]


async def test_no_key_in_any_event(server: FakeServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_url)
    monkeypatch.delenv("ROUTEDECK_SIMULATE", raising=False)
    for model in ("openai/gpt-test", "anthropic/claude-test"):
        resolved = resolve_client(model, table())
        assert not resolved.simulated
        assert "SECRET123" not in repr(resolved)
        for reply in LEAKY_REPLIES:
            server.script(reply)
            events = await collect(resolved.client, timeouts=IDLE)
            for event in events:
                assert "SECRET123" not in str(event), event
    # the server did receive the key, and echoed it in the error bodies
    assert all(r.api_key == SECRET for r in server.requests)
