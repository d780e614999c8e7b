"""The SSE parser, the HTTP helpers both protocols share, and the OpenAI-compatible client
against a real loopback server: normal streams, faults, timeouts and closing.

Every test bounds its wait with a generous ``asyncio.timeout`` so that a hang fails fast
instead of blocking the run; no test asserts on how long anything took.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import provider_helpers
import pytest
from fakeserver import FakeServer, Reply, closed_port_url
from provider_helpers import (
    BOUND,
    IDLE,
    NO_FIRST,
    REQ,
    SECRET,
    collect,
    kinds,
    openai,
    text_of,
    the_error,
)

from tui.router.providers.base import Message, Request
from tui.router.providers.http import error_detail, parse_retry_after, redact
from tui.router.providers.openai_compat import OpenAICompatClient
from tui.router.providers.sse import SSEEvent, SSEParser
from tui.router.types import Finished, Started, TextDelta, Timeouts, UsageReport

# The shared fixtures, bound by name so pytest finds them here (imported, ruff would read
# every test argument of the same name as a redefinition, F811).
server = provider_helpers.server
_close_shared_client = provider_helpers._close_shared_client


# --------------------------------------------------------------------------------------------
# SSE parser
# --------------------------------------------------------------------------------------------

SSE_SAMPLE = (
    b"\xef\xbb\xbf: a comment\n"
    b"data: one\n\n"
    b"event: message_start\r\n"
    b'data: {"a":\r\n'
    b"data:  1}\r\n\r\n"
    b": OPENROUTER PROCESSING\r\r"
    b"data\n"
    b"data: caf\xc3\xa9\n\n"
    b"id: 7\nretry: 250\nunknown: x\ndata: last\n\n"
)
SSE_EXPECTED = [
    SSEEvent(data="one"),
    SSEEvent(data='{"a":\n 1}', event="message_start"),
    SSEEvent(data="\ncafé"),
    SSEEvent(data="last", id="7", retry=250),
]


def test_sse_parses_fields_comments_and_line_ends():
    parser = SSEParser()
    assert parser.feed(SSE_SAMPLE) + parser.close() == SSE_EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_sse_gives_the_same_events_whatever_the_chunking(size: int):
    parser = SSEParser()
    events = []
    for i in range(0, len(SSE_SAMPLE), size):
        events += parser.feed(SSE_SAMPLE[i : i + size])
    assert events + parser.close() == SSE_EXPECTED


def test_sse_close_keeps_a_complete_event_and_drops_a_partial_line():
    parser = SSEParser()
    assert parser.feed(b"event: ping\ndata: {}\n") == []
    assert parser.close() == [SSEEvent(data="{}", event="ping")]
    parser = SSEParser()
    assert parser.feed(b'data: {"cut": tr') == []
    assert parser.close() == []
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []  # the CR may be half of a CRLF
    assert parser.close() == [SSEEvent(data="x")]


def test_sse_feed_line():
    parser = SSEParser()
    assert parser.feed_line("data: a") is None
    assert parser.feed_line(": comment") is None
    assert parser.feed_line("") == SSEEvent(data="a")


# --------------------------------------------------------------------------------------------
# Helpers shared by both protocols
# --------------------------------------------------------------------------------------------


def test_parse_retry_after_prefers_ms_then_seconds_then_date():
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    waited = parse_retry_after({"retry-after": date})
    assert waited is not None and 0 < waited <= 31
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_error_detail_reads_every_known_shape():
    openai_body = b'{"error": {"message": "Bad model", "type": "invalid_request_error"}}'
    assert error_detail(openai_body) == "Bad model (invalid_request_error)"
    gemini = b'[{"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}]'
    assert error_detail(gemini) == "Quota (RESOURCE_EXHAUSTED)"
    anth = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    assert error_detail(anth) == "Overloaded (overloaded_error)"
    assert error_detail(b'{"detail": "Not found"}') == "Not found"
    assert error_detail(b"<html>\n  Bad   gateway </html>") == "<html> Bad gateway </html>"


def test_redact_removes_our_key_and_key_shaped_text():
    text = f"Incorrect API key provided: {SECRET}. Also sk-proj-abcdefghijklmnop1234 leaked."
    cleaned = redact(text, [SECRET])
    assert "SECRET123" not in cleaned and "abcdefghijklmnop" not in cleaned
    assert "Incorrect API key provided: ***" in cleaned


# --------------------------------------------------------------------------------------------
# OpenAI-compatible: normal streams
# --------------------------------------------------------------------------------------------


async def test_openai_normal_stream(server: FakeServer):
    server.script(
        Reply.ok(
            chunks=("Hello", ", ", "tests", "!"),
            input_tokens=21,
            output_tokens=4,
            cached_tokens=8,
        )
    )
    events = await collect(openai(server))
    assert kinds(events) == ["Started"] + ["TextDelta"] * 4 + ["UsageReport", "Finished"]
    assert events[0] == Started(t=events[0].t, model="openai/gpt-test", simulated=False)
    assert text_of(events) == "Hello, tests!"
    assert events[-2] == UsageReport(
        t=events[-2].t, input_tokens=21, output_tokens=4, cached_tokens=8, estimated=False
    )
    assert events[-1].reason == "stop"
    assert all(e.logprobs is None for e in events if isinstance(e, TextDelta))
    ts = [e.t for e in events]
    assert ts == sorted(ts)

    sent = server.last_request
    assert sent.method == "POST" and sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json["model"] == "gpt-test"
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}
    assert sent.json["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello to the tests."},
    ]
    assert "logprobs" not in sent.json and "temperature" not in sent.json


async def test_openai_stream_skips_comments_and_tolerates_crlf_and_close_framing(server):
    server.script(Reply.ok("one two three", crlf=True, framing="close", finish_reason="length"))
    events = await collect(openai(server))
    assert text_of(events) == "one two three"
    assert kinds(events)[-2:] == ["UsageReport", "Finished"]
    assert events[-1].reason == "length"


async def test_openai_without_key_sends_no_authorization(server: FakeServer):
    events = await collect(OpenAICompatClient(server.openai_url, None, provider_name="ollama"))
    assert isinstance(events[-1], Finished)
    assert "authorization" not in server.last_request.headers
    assert events[0].model == "ollama/gpt-test"


async def test_openai_max_tokens_field_and_options(server: FakeServer):
    request = Request("m", (Message("user", "hi"),), max_tokens=64, temperature=0.2)
    await collect(openai(server), request)
    assert server.last_request.json["max_completion_tokens"] == 64  # OpenAI's own API
    assert server.last_request.json["temperature"] == 0.2
    await collect(OpenAICompatClient(server.openai_url, "k", provider_name="groq"), request)
    assert server.last_request.json["max_tokens"] == 64  # the compatible servers
    assert "max_completion_tokens" not in server.last_request.json


async def test_openai_usage_missing_is_estimated(server: FakeServer):
    server.script(Reply.ok("abcdefgh ijkl", send_usage=False))
    events = await collect(openai(server))
    usage = events[-2]
    assert isinstance(usage, UsageReport) and usage.estimated
    assert usage.output_tokens == 4  # 13 characters / 4, rounded up
    chars = sum(len(m.content) for m in REQ.messages)
    assert usage.input_tokens == (chars + 3) // 4
    assert isinstance(events[-1], Finished)


async def test_openai_logprobs_of_the_first_token(server: FakeServer):
    top = (("code", -0.05), ("math", -3.2), ("general", -4.0))
    server.script(Reply.ok("code", logprobs=top))
    events = await collect(openai(server), Request("m", (Message("user", "classify"),), logprobs=3))
    assert server.last_request.json["logprobs"] is True
    assert server.last_request.json["top_logprobs"] == 3
    first = next(e for e in events if isinstance(e, TextDelta))
    assert first.logprobs == top


# --------------------------------------------------------------------------------------------
# OpenAI-compatible: faults
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 529])
async def test_openai_server_errors_fall_back(server: FakeServer, status: int):
    server.script(Reply.http(status, "upstream trouble"))
    events = await collect(openai(server))
    assert kinds(events) == ["StreamError"]
    err = events[0]
    assert (err.kind, err.status) == ("http", status)
    assert "upstream trouble" in err.message
    assert err.falls_back and not err.retryable


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply.http(429, "Rate limit", retry_after="2"), 2.0),
        (Reply.http(429, "Rate limit", retry_after_ms=1500, retry_after="7"), 1.5),
        (Reply.http(429, "Rate limit"), None),
    ],
)
async def test_openai_429_is_retryable_with_retry_after(server, reply: Reply, expected):
    server.script(reply)
    err = the_error(await collect(openai(server)))
    assert (err.kind, err.status, err.retry_after) == ("http", 429, expected)
    assert err.retryable and err.falls_back
    assert "Rate limit (rate_limit_exceeded)" in err.message


async def test_openai_429_with_an_http_date(server: FakeServer):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    server.script(Reply.http(429, retry_after=when))
    err = the_error(await collect(openai(server)))
    assert err.retry_after is not None and 0 < err.retry_after <= 21


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Unsupported parameter: 'temperature'"), (401, "Incorrect API key provided")],
)
async def test_openai_client_errors_do_not_fall_back(server, status: int, message: str):
    server.script(Reply.http(status, message))
    err = the_error(await collect(openai(server)))
    assert (err.kind, err.status) == ("http", status)
    assert message in err.message
    assert not err.falls_back and not err.retryable


async def test_openai_gemini_list_error_body(server: FakeServer):
    server.script(
        Reply.http(
            429,
            body=[
                {
                    "error": {
                        "code": 429,
                        "message": "Quota exceeded",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                }
            ],
        )
    )
    err = the_error(await collect(openai(server)))
    assert err.status == 429 and "Quota exceeded (RESOURCE_EXHAUSTED)" in err.message


async def test_openai_no_headers_is_a_first_token_timeout(server: FakeServer):
    server.script(Reply.stall_headers())
    events = await collect(openai(server), timeouts=NO_FIRST)
    err = the_error(events)
    assert err.kind == "timeout" and "first_token" in err.message
    assert kinds(events) == ["StreamError"]
    assert err.falls_back
    assert await asyncio.to_thread(server.wait_disconnect)  # the client hung up


async def test_openai_headers_but_no_token_is_a_first_token_timeout(server: FakeServer):
    server.script(Reply.ok(first_delay=30))
    events = await collect(openai(server), timeouts=NO_FIRST)
    assert kinds(events) == ["Started", "StreamError"]
    assert events[-1].kind == "timeout" and "first_token" in events[-1].message


async def test_openai_stall_mid_stream_is_an_idle_timeout(server: FakeServer):
    server.script(Reply.stall(after=2, chunks=("one", " two", " three")))
    events = await collect(openai(server), timeouts=IDLE)
    assert kinds(events)[0] == "Started"
    assert "one two".startswith(text_of(events))  # whatever arrived before the silence
    err = the_error(events)
    assert err.kind == "timeout" and "idle" in err.message
    assert await asyncio.to_thread(server.wait_disconnect)


async def test_openai_connection_reset_mid_stream(server: FakeServer):
    server.script(Reply.reset(after=2))
    events = await collect(openai(server))
    assert kinds(events)[0] == "Started"
    err = the_error(events)
    assert err.kind == "stream" and err.falls_back


async def test_openai_hangup_before_the_response(server: FakeServer):
    server.script(Reply.hangup())
    err = the_error(await collect(openai(server)))
    assert err.kind == "stream" and err.falls_back


async def test_openai_malformed_chunk_is_a_protocol_error(server: FakeServer):
    server.script(Reply.malformed(after=1))
    events = await collect(openai(server))
    assert kinds(events) == ["Started", "TextDelta", "StreamError"]
    assert events[-1].kind == "protocol" and "malformed JSON" in events[-1].message


async def test_openai_error_inside_a_200_stream(server: FakeServer):
    server.script(Reply.stream_error(after=1, message="The model overloaded mid-answer"))
    events = await collect(openai(server))
    assert kinds(events) == ["Started", "TextDelta", "StreamError"]
    err = events[-1]
    assert err.kind == "stream" and "The model overloaded mid-answer" in err.message
    assert err.status is None and err.falls_back


async def test_openai_stream_cut_before_done(server: FakeServer):
    server.script(Reply.cut(after=2))
    events = await collect(openai(server))
    assert kinds(events) == ["Started", "TextDelta", "TextDelta", "StreamError"]
    assert events[-1].kind == "stream" and "[DONE]" in events[-1].message


async def test_openai_connection_refused():
    client = OpenAICompatClient(closed_port_url() + "/v1", SECRET)
    err = the_error(await collect(client))
    assert err.kind == "connect" and err.falls_back
    assert "refused" in err.message


async def test_openai_connect_timeout():
    # A listener whose accept queue is full: the kernel drops further SYNs, so connect hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        client = OpenAICompatClient(f"http://127.0.0.1:{port}/v1", None)
        err = the_error(
            await collect(client, timeouts=Timeouts(connect=0.3, first_token=5.0, idle=5.0))
        )
        assert err.kind == "timeout" and "connect" in err.message
    finally:
        for s in fillers:
            s.close()
        listener.close()


async def test_cancelling_the_consumer_closes_the_connection(server: FakeServer):
    server.script(Reply.ok("word " * 200, delay=0.05))
    got_one = asyncio.Event()

    async def consume():
        async for event in openai(server).stream(REQ, Timeouts(first_token=5, idle=5)):
            if isinstance(event, TextDelta):
                got_one.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(BOUND):
        await got_one.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.wait_disconnect)
    assert server.last_request.outcome == "disconnected"


async def test_closing_the_stream_early_closes_the_connection(server: FakeServer):
    server.script(Reply.ok("word " * 200, delay=0.05))
    stream = openai(server).stream(REQ, Timeouts(first_token=5, idle=5))
    async with asyncio.timeout(BOUND):
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        await stream.aclose()
    assert await asyncio.to_thread(server.wait_disconnect)
