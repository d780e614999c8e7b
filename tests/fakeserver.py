"""A loopback HTTP/1.1 server speaking the OpenAI and Anthropic streaming protocols, with faults.

Every provider, executor, CLI and TUI test that needs "a model on the network" uses this: it is a
real server on 127.0.0.1 (a random port), running its own asyncio loop in a background thread, so
it works from sync and async tests alike and from a subprocess pointed at it. It speaks the wire
formats byte for byte: HTTP/1.1 with chunked transfer encoding (or close-delimited bodies),
keep-alive, SSE framing with comment lines, OpenAI's usage chunk with ``choices: []`` and
``data: [DONE]``, Anthropic's ``message_start`` … ``message_stop`` events with pings and
cumulative ``message_delta`` usage.

Quick start::

    from fakeserver import FakeServer, Reply          # tests/ is on sys.path under pytest

    with FakeServer() as server:                      # or use the ``fake_server`` fixture
        client = OpenAICompatClient(server.openai_url, "sk-test", provider_name="openai")
        server.script(Reply.http(503), Reply.ok("second try works"))
        ...
        assert server.requests[0].headers["authorization"] == "Bearer sk-test"
        assert server.requests[0].json["stream"] is True

The fixture, for a conftest.py or a test module::

    from fakeserver import fake_server  # noqa: F401  (pytest finds it by name)

URLs
    ``server.url``            ``http://127.0.0.1:PORT``
    ``server.openai_url``     ``http://127.0.0.1:PORT/v1`` (POST ``/v1/chat/completions``)
    ``server.anthropic_url``  ``http://127.0.0.1:PORT``    (POST ``/v1/messages``)
    Any path ending in ``/chat/completions`` is OpenAI, in ``/messages`` Anthropic. ``GET /v1/models``
    and ``GET /api/tags`` list ``server.models`` (Ollama-style). ``closed_port_url()`` gives a URL
    where nothing listens (connection refused).

Choosing what a request gets (first match wins)
    ``server.route(model, *replies)``  requests naming ``model`` get these in order; the last one
                                       repeats. ``route(model)`` with no replies removes the route.
    ``server.script(*replies)``        a queue for requests whose model has no route, consumed in
                                       order (calls append to it).
    ``server.respond(fn)``             before all of these: ``fn(request)`` (a RecordedRequest)
                                       returns the Reply for it, or None to pass; for replies
                                       that depend on what was sent (a judge that reads which
                                       answer is A). ``respond(None)`` removes it.
    ``server.default``                 everything else (``Reply.ok()`` unless you set it).
    ``server.reset()``                 forget routes, script, default and recorded requests.

Replies (``Reply`` is a frozen dataclass; the constructors set the fields that matter)
    ``Reply.ok(text, **fields)``       a normal stream. ``text`` is split into word chunks (or
                                       pass ``chunks=(...)``). Fields: ``finish_reason``
                                       ("stop"/"length"; Anthropic gets end_turn/max_tokens),
                                       ``input_tokens`` / ``output_tokens`` (default: chars/4 of
                                       the request's messages / number of chunks),
                                       ``cached_tokens``, ``delay`` (s between chunks),
                                       ``first_delay`` (s after headers), ``comments`` (OpenAI
                                       ``: keep-alive`` lines, default on), ``crlf`` (CRLF line
                                       ends), ``framing`` ("chunked" or "close"), ``logprobs``
                                       (the first token's top alternatives, sent when the request
                                       asks for logprobs), ``usage_steps`` (Anthropic:
                                       how many cumulative message_delta events),
                                       ``send_usage`` (OpenAI: False = no usage chunk even when
                                       asked), ``headers``.
    ``Reply.http(status, message=None, *, retry_after=None, retry_after_ms=None, error_type=None,
                 body=None, as_list=False)``
                                       an error before the stream: the protocol's JSON error body
                                       (``as_list`` wraps it in a list, like Gemini), or ``body``
                                       verbatim (bytes/str, or an object sent as JSON).
                                       ``retry_after`` is the header's text ("2" or an HTTP date).
    ``Reply.stall_headers(seconds=30)``  read the request, never answer.
    ``Reply.stall(after=2, seconds=30)`` send headers and ``after`` chunks, then go silent.
    ``Reply.reset(after=2)``           send ``after`` chunks, then reset the connection (RST).
    ``Reply.hangup()``                 close the connection without any response.
    ``Reply.malformed(after=1)``       a chunk of broken JSON after ``after`` good ones.
    ``Reply.stream_error(after=1, message="...", error_type=...)``
                                       OpenAI: a ``{"error": {...}}`` chunk inside the 200 stream;
                                       Anthropic: an ``event: error`` (default overloaded_error).
    ``Reply.cut(after=2)``             end the body cleanly after ``after`` chunks: no finish
                                       reason, no usage, no ``[DONE]`` / ``message_stop``.
    In messages and bodies, ``{key}`` is replaced by the API key the request carried (to test that
    clients redact keys echoed in error text).

What it records
    ``server.requests``: a list of ``RecordedRequest`` (``method``, ``path``, ``headers`` with
    lower-case names, ``body`` bytes, ``json``, ``protocol`` "openai"/"anthropic"/"other",
    ``model``, ``api_key``, ``connection`` (1, 2, ... per TCP connection: keep-alive reuse),
    ``reply`` served, ``outcome``: "pending", "completed", "faulted" (the server
    broke it on purpose) or "disconnected" (the client went away first)).
    ``server.wait_disconnect(n=1, timeout=5)`` waits until ``n`` requests are "disconnected";
    ``server.wait_requests(n, timeout=5)`` until ``n`` arrived; both return a bool.

``server.close()`` (or leaving the ``with``) stops it and drops every connection at once, stalls
included.

Clients created without ``http_client=`` share one httpx client per event loop; an async test
that uses them can close it with ``await tui.router.providers.registry.aclose_shared_http_client()``
(see the autouse fixture in tests/provider_helpers.py).

The server is in three modules: this one (``FakeServer``: starting and stopping, scripting,
recording, reading requests and choosing replies; ``closed_port_url``; the fixture),
tests/fakeserver_wire.py (``Reply``, ``RecordedRequest`` and one connection's HTTP/1.1 and SSE
framing) and tests/fakeserver_replies.py (writing a reply: error bodies, whole responses, the
OpenAI and Anthropic streams and their faults). Import everything from this one.

By hand: ``python tests/fakeserver.py [--port N] [--delay S]`` serves a slow default answer and
prints the ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` to point the app at (any key works).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal

import pytest
from fakeserver_replies import ReplyWriter
from fakeserver_wire import Conn, Gone, RecordedRequest, Reply

__all__ = [
    "FakeServer",
    "RecordedRequest",
    "Reply",
    "closed_port_url",
    "fake_server",
]


class FakeServer(ReplyWriter):
    """See the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.default: Reply = Reply.ok()
        self.models: list[str] = ["llama3.2:1b", "qwen2.5:0.5b"]
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._routes: dict[str, deque[Reply]] = {}
        self._responder: Callable[[RecordedRequest], Reply | None] | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._counter = 0
        self._connections = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fakeserver", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return

        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- URLs ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    # ---- scripting -------------------------------------------------------------------------

    def script(self, *replies: Reply) -> FakeServer:
        with self._lock:
            self._script.extend(replies)
        return self

    def route(self, model: str, *replies: Reply) -> FakeServer:
        with self._lock:
            if replies:
                self._routes[model] = deque(replies)
            else:
                self._routes.pop(model, None)
        return self

    def respond(self, fn: Callable[[RecordedRequest], Reply | None] | None) -> FakeServer:
        with self._lock:
            self._responder = fn
        return self

    def reset(self) -> None:
        with self._lock:
            self._responder = None
            self._script.clear()
            self._routes.clear()
            self.default = Reply.ok()
            self.requests.clear()

    def _choose(self, model: str | None) -> Reply:
        with self._lock:
            queue = self._routes.get(model) if model is not None else None
            if queue:
                return queue.popleft() if len(queue) > 1 else queue[0]
            if self._script:
                return self._script.popleft()
            return self.default

    # ---- waiting ---------------------------------------------------------------------------

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def wait_requests(self, n: int = 1, timeout: float = 5.0) -> bool:
        return self._wait(lambda: len(self.requests) >= n, timeout)

    def wait_disconnect(self, n: int = 1, timeout: float = 5.0) -> bool:
        return self._wait(
            lambda: sum(r.outcome == "disconnected" for r in self.requests) >= n, timeout
        )

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def _set_outcome(self, rec: RecordedRequest, outcome: str) -> None:
        with self._changed:
            if rec.outcome == "pending":
                rec.outcome = outcome  # type: ignore[assignment]
            self._changed.notify_all()

    # ---- the server ------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Conn(reader, writer)
        self._connections += 1
        conn_id = self._connections
        aborted = False
        try:
            while True:
                rec = await self._read_request(reader, conn_id)
                if rec is None:
                    break
                keep_alive, aborted = await self._serve(conn, rec)
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, Gone):
            pass
        except asyncio.CancelledError:
            aborted = True
            with contextlib.suppress(Exception):
                conn.abort()
        finally:
            self._tasks.discard(task)
            if not aborted:
                with contextlib.suppress(Exception):
                    writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, conn_id: int
    ) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += data[:-2]
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        protocol: Literal["openai", "anthropic", "other"] = "other"
        bare = path.split("?", 1)[0].rstrip("/")
        if bare.endswith("/chat/completions"):
            protocol = "openai"
        elif bare.endswith("/messages"):
            protocol = "anthropic"
        rec = RecordedRequest(method, path, headers, body, parsed, protocol, connection=conn_id)
        with self._changed:
            self.requests.append(rec)
            self._changed.notify_all()
        return rec

    async def _serve(self, conn: Conn, rec: RecordedRequest) -> tuple[bool, bool]:
        """Answer one request; return (keep the connection, it was aborted)."""
        wants_close = rec.headers.get("connection", "").lower() == "close"
        bare = rec.path.split("?", 1)[0].rstrip("/")
        if rec.protocol == "other":
            if rec.method == "GET" and bare.endswith("/models"):
                data = {
                    "object": "list",
                    "data": [{"id": m, "object": "model"} for m in self.models],
                }
            elif rec.method == "GET" and bare.endswith("/api/tags"):
                data = {"models": [{"name": m, "model": m} for m in self.models]}
            else:
                data = {"error": {"message": f"no route for {rec.method} {rec.path}"}}
                await self._json(conn, 404, data)
                self._set_outcome(rec, "completed")
                return not wants_close, False
            await self._json(conn, 200, data)
            self._set_outcome(rec, "completed")
            return not wants_close, False

        responder = self._responder
        reply = (responder(rec) if responder is not None else None) or self._choose(rec.model)
        rec.reply = reply
        key = rec.api_key or ""
        try:
            if reply.fault == "hangup":
                self._set_outcome(rec, "faulted")
                return False, False
            if reply.fault == "stall_headers":
                await conn.pause(reply.seconds)
                self._set_outcome(rec, "faulted")
                return False, False
            if reply.status != 200:
                await self._error(conn, rec, reply, key)
                self._set_outcome(rec, "completed")
                return not wants_close, False
            stream = isinstance(rec.json, dict) and bool(rec.json.get("stream"))
            if not stream:
                await self._whole(conn, rec, reply)
                self._set_outcome(rec, "completed")
                return not wants_close, False
            conn.chunked = reply.framing == "chunked"
            conn.crlf = reply.crlf
            framing = (
                [("transfer-encoding", "chunked")] if conn.chunked else [("connection", "close")]
            )
            await conn.head(
                200,
                [
                    ("content-type", "text/event-stream; charset=utf-8"),
                    ("cache-control", "no-cache"),
                    *framing,
                    *reply.headers,
                ],
            )
            if rec.protocol == "openai":
                outcome = await self._openai_stream(conn, rec, reply, key)
            else:
                outcome = await self._anthropic_stream(conn, rec, reply, key)
        except Gone:
            self._set_outcome(rec, "disconnected")
            return False, False
        if outcome == "reset":
            self._set_outcome(rec, "faulted")
            await asyncio.sleep(0.1)  # let the client read what was sent before the reset
            conn.abort()
            return False, True
        if outcome == "stalled":
            self._set_outcome(rec, "faulted")
            return False, False
        self._set_outcome(rec, "faulted" if reply.fault else "completed")
        return conn.chunked and not wants_close, False


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens (a port just bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A started FakeServer, closed after the test."""
    with FakeServer() as server:
        yield server


if __name__ == "__main__":  # a manual playground: point the app at it and watch real streaming
    import argparse

    parser = argparse.ArgumentParser(description="Run the fake OpenAI/Anthropic server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.03, help="seconds between chunks")
    args = parser.parse_args()
    with FakeServer(port=args.port) as srv:
        srv.default = Reply.ok(
            "This answer comes from the RouteDeck fake server on your own machine. " * 5,
            delay=args.delay,
        )
        print(f"OPENAI_BASE_URL={srv.openai_url} ANTHROPIC_BASE_URL={srv.anthropic_url}")
        print("(any key works; Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
