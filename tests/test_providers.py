"""The provider clients against a real loopback server speaking each wire protocol.

Every test bounds its wait with a generous ``asyncio.timeout`` so that a hang fails fast instead of
blocking the run; no test asserts on how long anything took.
"""

from __future__ import annotations

import asyncio
import socket
import tomllib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from fakeserver import FakeServer, Reply, closed_port_url

from tui.router.providers.anthropic import AnthropicClient
from tui.router.providers.base import Message, Request
from tui.router.providers.http import error_detail, parse_retry_after, redact
from tui.router.providers.ollama import list_ollama_models
from tui.router.providers.openai_compat import OpenAICompatClient
from tui.router.providers.registry import (
    aclose_shared_http_client,
    base_url_env_var,
    resolve_client,
)
from tui.router.providers.simulated import SimulatedClient, model_tier, sim_tokenize
from tui.router.providers.sse import SSEEvent, SSEParser
from tui.router.types import (
    Baseline,
    ClassifierSettings,
    Finished,
    ModelProfile,
    Provider,
    RoutingTable,
    Started,
    StreamError,
    TextDelta,
    Timeouts,
    UsageReport,
)

SECRET = "sk-test-SECRET123"
# Generous where no timeout is expected (a loaded machine must not fail a normal stream), small
# for the one deadline a test is about.
OK = Timeouts(connect=5.0, first_token=10.0, idle=10.0)
NO_FIRST = Timeouts(connect=5.0, first_token=0.3, idle=10.0)
IDLE = Timeouts(connect=5.0, first_token=10.0, idle=0.3)
BOUND = 10.0  # seconds: far beyond any timeout used here; reaching it means something hung
ROUTES = Path(__file__).resolve().parents[1] / "tui" / "data" / "routes.toml"

REQ = Request(
    model="gpt-test",
    messages=(Message("system", "You are terse."), Message("user", "Say hello to the tests.")),
)


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
async def _close_shared_client():
    """Clients given no http_client share one per event loop: close it with the test's loop."""
    yield
    await aclose_shared_http_client()


async def collect(client, request: Request = REQ, timeouts: Timeouts = OK) -> list:
    async with asyncio.timeout(BOUND):
        return [event async for event in client.stream(request, timeouts)]


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def the_error(events: list) -> StreamError:
    assert isinstance(events[-1], StreamError), events
    assert sum(isinstance(e, StreamError) for e in events) == 1
    return events[-1]


def openai(server: FakeServer, key: str | None = SECRET, **kw) -> OpenAICompatClient:
    return OpenAICompatClient(server.openai_url, key, provider_name="openai", **kw)


def anthropic(server: FakeServer, key: str | None = SECRET) -> AnthropicClient:
    return AnthropicClient(server.anthropic_url, key)


def table() -> RoutingTable:
    """The shipped routes.toml's providers and profiles (the rest is not needed here)."""
    doc = tomllib.loads(ROUTES.read_text())
    providers = {
        name: Provider(
            name=name,
            kind=p["kind"],
            base_url=p.get("base_url", ""),
            api_key_env=p.get("api_key_env"),
            price_provider=p.get("price_provider"),
        )
        for name, p in doc["providers"].items()
    }
    profiles = {
        model: ModelProfile(ttft_ms=p["ttft_ms"], tokens_per_s=p["tokens_per_s"])
        for model, p in doc.get("profiles", {}).items()
    }
    return RoutingTable(
        tasks={},
        priorities={},
        routes={},
        baseline=Baseline(model=doc["baseline"]["model"]),
        classifier=ClassifierSettings(),
        providers=providers,
        profiles=profiles,
    )


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


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def test_registry_simulates_when_the_key_is_missing():
    resolved = resolve_client("openai/gpt-5-mini", table(), env={})
    assert resolved.simulated
    assert resolved.why_simulated == "no OPENAI_API_KEY in the environment"
    assert isinstance(resolved.client, SimulatedClient)
    assert (resolved.model_id, resolved.provider_model) == ("openai/gpt-5-mini", "gpt-5-mini")
    empty = resolve_client("anthropic/claude-haiku-4-5", table(), env={"ANTHROPIC_API_KEY": " "})
    assert empty.simulated and empty.why_simulated == "no ANTHROPIC_API_KEY in the environment"


def test_registry_real_clients_and_overrides():
    env = {"OPENAI_API_KEY": SECRET, "GROQ_API_KEY": "gsk", "ANTHROPIC_API_KEY": SECRET}
    openai_model = resolve_client("openai/gpt-5-mini", table(), env=env)
    assert isinstance(openai_model.client, OpenAICompatClient)
    assert not openai_model.simulated and openai_model.why_simulated is None
    assert openai_model.client.base_url == "https://api.openai.com/v1"
    assert SECRET not in repr(openai_model)

    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1/"
    assert resolve_client("openai/x", table(), env=env).client.base_url == "http://127.0.0.1:9/v1"
    env["GROQ_BASE_URL"] = "http://127.0.0.1:10/v1"
    assert resolve_client("groq/x", table(), env=env).client.base_url == "http://127.0.0.1:10/v1"
    env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:11"
    claude = resolve_client("anthropic/claude-x", table(), env=env)
    assert isinstance(claude.client, AnthropicClient)
    assert claude.client.base_url == "http://127.0.0.1:11"
    assert base_url_env_var("llama-cpp") == "LLAMA_CPP_BASE_URL"


def test_registry_local_servers_are_real_without_a_key():
    for model in ("ollama/llama3.2:1b", "llamacpp/any", "vllm/org/model-7b"):
        resolved = resolve_client(model, table(), env={})
        assert not resolved.simulated, model
        assert isinstance(resolved.client, OpenAICompatClient)
    assert resolve_client("vllm/org/model-7b", table(), env={}).provider_model == "org/model-7b"


def test_registry_forced_and_simulated_provider():
    env = {"OPENAI_API_KEY": SECRET}
    assert resolve_client("openai/gpt-5-mini", table(), env=env, force_simulated=True).simulated
    forced = resolve_client("openai/gpt-5-mini", table(), env={**env, "ROUTEDECK_SIMULATE": "1"})
    assert forced.simulated and "ROUTEDECK_SIMULATE" in forced.why_simulated
    assert resolve_client("ollama/x", table(), env={"ROUTEDECK_SIMULATE": "1"}).simulated
    sim = resolve_client("sim/frontier", table(), env={})
    assert sim.simulated and sim.client.tier == "frontier"


def test_registry_profiles_from_the_table_and_from_price_tiers():
    groq = resolve_client("groq/llama-3.1-8b-instant", table(), env={}).client
    assert groq.profile == ModelProfile(ttft_ms=120.0, tokens_per_s=600.0)  # routes.toml
    assert model_tier("openai/gpt-5.2") == "frontier"
    assert model_tier("google/gemini-2.5-flash-lite") == "cheap"
    assert model_tier("openai/gpt-5-mini") == "mid"
    assert model_tier("openai/no-such-model-xyz") == "mid"
    frontier = resolve_client("openai/gpt-5.2", table(), env={}).client
    assert frontier.profile == ModelProfile(ttft_ms=1200.0, tokens_per_s=50.0)


async def test_registry_unknown_provider_is_a_config_error():
    for model in ("nope/model", "no-slash"):
        resolved = resolve_client(model, table(), env={})
        events = await collect(resolved.client)
        assert kinds(events) == ["StreamError"] and events[0].kind == "config"
        assert not events[0].falls_back


async def test_registry_shares_one_connection(server: FakeServer):
    env = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": server.openai_url}
    for _ in range(3):
        events = await collect(resolve_client("openai/gpt-test", table(), env=env).client)
        assert isinstance(events[-1], Finished)
    assert [r.connection for r in server.requests] == [1, 1, 1]


async def test_explicit_http_client_is_used(server: FakeServer):
    env = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": server.openai_url}
    async with httpx.AsyncClient(headers={"x-mine": "yes"}) as http:
        client = resolve_client("openai/gpt-test", table(), env=env, http_client=http).client
        await collect(client)
    assert server.last_request.headers["x-mine"] == "yes"


# --------------------------------------------------------------------------------------------
# Simulated
# --------------------------------------------------------------------------------------------

INSTANT = ModelProfile(ttft_ms=1.0, tokens_per_s=100_000.0)


def sim(model: str = "openai/gpt-5-mini", profile: ModelProfile = INSTANT) -> SimulatedClient:
    return SimulatedClient(profile, model, "mid")


def ask(prompt: str, **kw) -> Request:
    return Request("gpt-5-mini", (Message("user", prompt),), **kw)


async def test_simulated_is_deterministic_labelled_and_reports_usage():
    first = await collect(sim(), ask("Explain how tides work"))
    again = await collect(sim(), ask("Explain how tides work"))
    other = await collect(sim(), ask("Explain how rainbows form"))
    assert kinds(first)[0] == "Started" and kinds(first)[-2:] == ["UsageReport", "Finished"]
    assert first[0].simulated and first[0].model == "openai/gpt-5-mini"
    text = text_of(first)
    assert text.startswith("[simulated openai/gpt-5-mini]")
    assert "no model was called" in text
    assert "Explain how tides work" in text  # the topic is echoed
    assert text == text_of(again) and text != text_of(other)
    assert [e.text for e in first if isinstance(e, TextDelta)] == [
        e.text for e in again if isinstance(e, TextDelta)
    ]
    usage = first[-2]
    assert not usage.estimated
    assert usage.output_tokens == len(sim_tokenize(text))
    assert 150 <= usage.output_tokens <= 700
    assert usage == UsageReport(
        t=usage.t,
        **{
            k: getattr(again[-2], k)
            for k in ("input_tokens", "output_tokens", "cached_tokens", "estimated")
        },
    )
    assert first[-1].reason == "stop"
    assert text != text_of(
        await collect(sim("anthropic/claude-haiku-4-5"), ask("Explain how tides work"))
    )


async def test_simulated_shapes_code_answers():
    events = await collect(sim(), ask("Write a Python function that reverses a linked list"))
    assert "```python" in text_of(events)
    prose = await collect(sim(), ask("Tell me about the history of Lisbon"))
    assert "```" not in text_of(prose)


async def test_simulated_max_tokens_caps_the_answer():
    events = await collect(sim(), ask("Explain how tides work", max_tokens=20))
    assert events[-2].output_tokens == 20
    assert events[-1].reason == "length"


async def test_simulated_is_cancellable_during_its_wait():
    slow = sim(profile=ModelProfile(ttft_ms=60_000, tokens_per_s=1.0))
    started = asyncio.Event()

    async def consume():
        async for event in slow.stream(ask("hi"), Timeouts(first_token=120)):
            if isinstance(event, Started):
                started.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(BOUND):
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_simulated_first_token_timeout():
    slow = sim(profile=ModelProfile(ttft_ms=60_000, tokens_per_s=10.0))
    events = await collect(slow, ask("hi"), NO_FIRST)
    assert kinds(events) == ["Started", "StreamError"]
    assert events[-1].kind == "timeout" and "first_token" in events[-1].message


# --------------------------------------------------------------------------------------------
# Ollama model listing
# --------------------------------------------------------------------------------------------


async def test_list_ollama_models(server: FakeServer):
    server.models = ["llama3.2:1b", "qwen2.5:0.5b"]
    async with asyncio.timeout(BOUND):
        models = await list_ollama_models(server.url, timeout=2.0)
        assert models == ["ollama/llama3.2:1b", "ollama/qwen2.5:0.5b"]
        assert await list_ollama_models(server.openai_url, timeout=2.0) == models


async def test_list_ollama_models_when_nothing_answers():
    silent = socket.socket()  # connections are accepted by the kernel, never answered
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        async with asyncio.timeout(BOUND):
            assert await list_ollama_models(closed_port_url(), timeout=0.3) == []
            port = silent.getsockname()[1]
            assert await list_ollama_models(f"http://127.0.0.1:{port}", timeout=0.3) == []
    finally:
        silent.close()
