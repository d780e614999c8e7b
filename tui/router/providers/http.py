"""The protocol-neutral half of every HTTP provider: one streaming call, its failures, its client.

``openai_compat.py`` and ``anthropic.py`` each only build their request body and read their own
events (a :class:`StreamParser`); everything else is here: :class:`SSEClient` (the stream every
HTTP client yields: ``Started``, the text, one ``UsageReport``, ``Finished``, or a final
``StreamError``), one streaming HTTP call under the three deadlines of
:class:`~tui.router.types.Timeouts` (:class:`SSEExchange`), every transport failure turned into a
:class:`CallFailed`, error bodies and ``retry-after`` headers read, API keys redacted from every
message, and the one shared httpx client per event loop.

Deadlines (all measured with the event loop's clock, never by blocking):

* ``connect``: opening the TCP/TLS connection (httpx's own connect and pool timeouts).
* ``first_token``: from sending the request until the response headers AND the first token (the
  protocol layer says when that is, with :meth:`SSEExchange.mark_first_token`). Keep-alive
  comments and pings do not extend it.
* ``idle``: after the first token, the longest gap between two pieces of the body.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from tui.router.providers.base import Request
from tui.router.providers.sse import SSEEvent, SSEParser
from tui.router.run.metrics import estimate_tokens
from tui.router.sanitize import redact
from tui.router.types import (
    ErrorKind,
    Finished,
    ProviderEvent,
    Started,
    StreamError,
    TextDelta,
    Timeouts,
    UsageReport,
)

__all__ = [
    "USER_AGENT",
    "CallFailed",
    "HttpClientSource",
    "SSEClient",
    "SSEExchange",
    "StreamParser",
    "aclose_shared_http_client",
    "clip",
    "error_detail",
    "loads_chunk",
    "parse_retry_after",
    "redact",
    "shared_http_client",
    "ssl_context",
]

# The httpx client a provider client sends with: yours, or None for the running event loop's
# shared one (see shared_http_client).
HttpClientSource = httpx.AsyncClient | None

USER_AGENT = "routedeck/0.1"
_MAX_ERROR_BODY = 64 * 1024
_MAX_MESSAGE = 400
_DRAIN_SECONDS = 0.25

_WS = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clip(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Text from a server made one short line: control characters dropped, whitespace collapsed,
    clipped to ``limit`` characters."""
    text = _WS.sub(" ", _CONTROL.sub("", text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CallFailed(Exception):
    """A failure of one call, on its way to becoming the stream's final ``StreamError``."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def to_event(self, secrets: Iterable[str] = ()) -> StreamError:
        return StreamError(
            t=time.perf_counter(),
            kind=self.kind,
            message=redact(self.message, secrets),
            status=self.status,
            retry_after=self.retry_after,
        )


def parse_retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            ms = float(value)
        except ValueError:
            pass
        else:
            if ms >= 0:
                return ms / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None or when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    return seconds if seconds >= 0 else None


def error_detail(body: bytes | str) -> str:
    """The human part of an error body: OpenAI's ``{"error": {"message", "type", ...}}``,
    Anthropic's ``{"type": "error", "error": {...}}``, Gemini's list of those, ``{"detail": ...}``,
    ``{"message": ...}``, or failing all that the body's text, whitespace-collapsed and clipped.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        obj: Any = json.loads(text)
    except ValueError:
        return clip(text)
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if not isinstance(obj, dict):
        return clip(text)
    err = obj.get("error", obj)
    message: Any = None
    kind: Any = None
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or err.get("detail")
        kind = err.get("type") or err.get("status") or err.get("code")
        if kind == "error":  # Anthropic's envelope type, not the error's type
            kind = None
    elif isinstance(err, str):
        message = err
    if message is None:
        message = obj.get("message") or obj.get("detail")
    if message is None:
        return clip(text)
    if not isinstance(message, str):
        message = json.dumps(message)
    return clip(f"{message} ({kind})" if kind not in (None, "") else message)


_raw_decode = json.JSONDecoder().raw_decode


def loads_chunk(data: str) -> Any:
    """``json.loads`` for one stream chunk, about twice as fast on the hot path: ``raw_decode``
    skips the two whitespace regexes ``loads`` runs, and trailing text is checked by hand.
    Raises ValueError for anything that is not exactly one JSON document."""
    try:
        value, end = _raw_decode(data)
    except ValueError:
        return json.loads(data)  # leading whitespace, or a real error (raised from here)
    if end != len(data) and not data[end:].isspace():
        raise ValueError(f"extra data after the JSON document at {end}")
    return value


class SSEExchange:
    """One streaming HTTP call: send, check the status, then read SSE events under deadlines.

    Every failure is raised as :class:`CallFailed`; ``CancelledError`` passes through untouched.
    Always ``await aclose()`` in a ``finally``: it closes the response, and so the connection
    unless the body was read to its end (then the connection goes back to the pool).
    """

    def __init__(self, http: HttpClientSource, provider: str, timeouts: Timeouts) -> None:
        self._source = http
        self._provider = provider
        self._timeouts = timeouts
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._parser = SSEParser()
        self._pending: deque[SSEEvent] = deque()
        self._eof = False
        self._deadline = 0.0  # loop time by which the first token must arrive
        self._first_token = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._completed = False

    async def open(self, url: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        """Send the request; return when 2xx headers are in. Raises CallFailed otherwise."""
        t = self._timeouts
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + t.first_token
        try:
            http = self._source if self._source is not None else shared_http_client()
            request = http.build_request(
                "POST",
                url,
                headers=headers,
                json=body,
                timeout=httpx.Timeout(
                    connect=t.connect, read=None, write=t.connect, pool=t.connect
                ),
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, TypeError) as exc:
            raise CallFailed("config", f"bad request to {self._provider}: {exc}") from None
        host = request.url.host or "?"
        if request.url.port:
            host = f"{host}:{request.url.port}"
        try:
            async with asyncio.timeout_at(self._deadline):
                response = await http.send(request, stream=True)
        except TimeoutError:
            raise CallFailed(
                "timeout",
                f"first_token timeout: no response from {host} within {t.first_token:g}s",
            ) from None
        except (httpx.ConnectTimeout, httpx.PoolTimeout):
            raise CallFailed(
                "timeout", f"connect timeout: no connection to {host} within {t.connect:g}s"
            ) from None
        except httpx.ConnectError as exc:
            reason = _os_reason(exc) or str(exc) or "connection failed"
            raise CallFailed("connect", f"could not connect to {host}: {reason}") from None
        except httpx.UnsupportedProtocol as exc:
            raise CallFailed("config", f"bad URL for {self._provider}: {exc}") from None
        except httpx.TimeoutException:
            raise CallFailed(
                "timeout", f"connect timeout: could not send the request to {host}"
            ) from None
        except httpx.HTTPError as exc:
            raise CallFailed(
                "stream", f"connection to {host} broke before the response: {_describe(exc)}"
            ) from None
        self._response = response
        status = response.status_code
        if not 200 <= status < 300:
            body_bytes = await self._read_body(response)
            detail = error_detail(body_bytes) if body_bytes else ""
            reason = response.reason_phrase or ""
            raise CallFailed(
                "http",
                f"HTTP {status}{' ' + reason if reason else ''} from {self._provider}"
                + (f": {detail}" if detail else ""),
                status=status,
                retry_after=parse_retry_after(response.headers),
            )
        ctype = response.headers.get("content-type", "")
        if "json" in ctype:
            body_bytes = await self._read_body(response)
            raise CallFailed(
                "stream",
                f"{self._provider} answered with JSON instead of an event stream: "
                f"{error_detail(body_bytes)}",
            )
        self._chunks = response.aiter_bytes().__aiter__()

    async def _read_body(self, response: httpx.Response) -> bytes:
        """Up to 64 KiB of a (short) body, giving up after the idle timeout."""
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._timeouts.idle):
                async for part in response.aiter_bytes():
                    parts.append(part)
                    size += len(part)
                    if size >= _MAX_ERROR_BODY:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass
        return b"".join(parts)[:_MAX_ERROR_BODY]

    def mark_first_token(self) -> None:
        """The first token arrived: from now on only the idle timeout applies."""
        self._first_token = True

    async def next_event(self) -> SSEEvent | None:
        """The next SSE event, or None when the body ended cleanly."""
        pending = self._pending
        while not pending:
            if self._eof or self._chunks is None:
                return None
            chunk = await self._read_chunk()
            if chunk is None:
                self._eof = True
                pending.extend(self._parser.close())
            else:
                pending.extend(self._parser.feed(chunk))
        return pending.popleft()

    async def _read_chunk(self) -> bytes | None:
        assert self._chunks is not None and self._loop is not None
        t = self._timeouts
        if self._first_token:
            when = self._loop.time() + t.idle
        else:
            when = self._deadline
        try:
            async with asyncio.timeout_at(when):
                return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None
        except TimeoutError:
            if self._first_token:
                raise CallFailed(
                    "timeout", f"idle timeout: no data from {self._provider} for {t.idle:g}s"
                ) from None
            raise CallFailed(
                "timeout",
                f"first_token timeout: no token from {self._provider} within {t.first_token:g}s",
            ) from None
        except httpx.HTTPError as exc:
            raise CallFailed(
                "stream", f"the stream from {self._provider} broke: {_describe(exc)}"
            ) from None

    def completed(self) -> None:
        """The protocol saw its end marker ([DONE], message_stop): the connection can be reused
        once the few bytes after it (the chunked terminator) are read, which ``aclose`` does."""
        self._completed = True

    async def _drain(self) -> None:
        """Read what is left of a finished body, briefly, so the connection goes back to the pool
        (httpx closes a connection whose response was not read to the end)."""
        if self._chunks is None or self._eof:
            return
        left = _MAX_ERROR_BODY
        try:
            async with asyncio.timeout(_DRAIN_SECONDS):
                async for part in self._chunks:
                    left -= len(part)
                    if left <= 0:
                        return
        except (TimeoutError, httpx.HTTPError):
            pass

    async def aclose(self) -> None:
        if self._completed:
            self._completed = False
            await self._drain()
        response, self._response = self._response, None
        if response is not None:
            try:
                await response.aclose()
            except Exception:  # closing a broken connection may fail; nothing to do
                pass


# --------------------------------------------------------------------------------------------
# One shared httpx client per event loop
# --------------------------------------------------------------------------------------------

_shared: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
_shared_lock = threading.Lock()


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~0.1 s: once per process, not once per client."""
    return httpx.create_ssl_context()


def shared_http_client() -> httpx.AsyncClient:
    """The running loop's shared client (connection reuse), created on first use.

    Must be called inside a running event loop; each loop gets its own (an httpx client cannot
    cross loops). Clients of loops that have closed are dropped.
    """
    loop = asyncio.get_running_loop()
    with _shared_lock:
        for other in [lp for lp in _shared if lp.is_closed()]:
            del _shared[other]
        client = _shared.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                verify=ssl_context(),
                limits=httpx.Limits(
                    max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0
                ),
            )
            _shared[loop] = client
        return client


async def aclose_shared_http_client() -> None:
    """Close the running loop's shared client, if it has one (at shutdown, after tests)."""
    loop = asyncio.get_running_loop()
    with _shared_lock:
        client = _shared.pop(loop, None)
    if client is not None:
        await client.aclose()


def _os_reason(exc: BaseException) -> str | None:
    """The operating system's words for a failure buried in the cause chain ("Connection
    refused", "Connection reset by peer"), lower-cased."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 12:
        if isinstance(current, OSError):
            reason = os.strerror(current.errno) if current.errno else current.strerror
            if reason:
                return reason.lower()
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    reason = _os_reason(exc)
    parts = [type(exc).__name__] + [p for p in (text, reason) if p]
    return ": ".join(parts[:1]) + (f": {'; '.join(parts[1:])}" if len(parts) > 1 else "")


# --------------------------------------------------------------------------------------------
# The stream every HTTP provider client yields
# --------------------------------------------------------------------------------------------

NO_TEXT: tuple[TextDelta, ...] = ()


class StreamParser(Protocol):
    """One protocol's reading of one response's events (a new one per call).

    ``feed`` takes each SSE event and returns the text it carries (usually one ``TextDelta`` or
    none); it calls ``exchange.mark_first_token()`` when tokens flow and ``exchange.completed()``
    at the protocol's end marker, and raises :class:`CallFailed` for an error or an unreadable
    event. ``done`` says the stream may stop being read (the end marker came); ``complete`` says
    it ended properly (else "ended before {end_marker}"). ``usage()`` is (input, output, cached)
    tokens as reported, None when the server reported none; ``out_chars`` counts the text
    yielded, for the estimate then.
    """

    done: bool
    finish: str | None
    out_chars: int

    @property
    def complete(self) -> bool: ...

    def feed(self, event: SSEEvent) -> Sequence[TextDelta]: ...

    def usage(self) -> tuple[int, int, int] | None: ...


class SSEClient:
    """What every HTTP provider client shares: the stream skeleton, the common headers, a repr
    that never shows the key, and the key as the one secret to redact from anything the server
    sends back. A subclass sets ``base_url`` and gives ``url``, ``build_body``, ``_auth_headers``,
    ``end_marker`` and ``_parser``.
    """

    base_url: str
    end_marker: str  # named in "the stream from X ended before ..."

    def __init__(
        self, api_key: str | None, http_client: HttpClientSource, provider_name: str
    ) -> None:
        self.provider_name = provider_name
        self._api_key = api_key or None
        self._http = http_client

    def __repr__(self) -> str:  # never the key
        return (
            f"{type(self).__name__}(provider_name={self.provider_name!r}, "
            f"base_url={self.base_url!r}, key={'set' if self._api_key else 'none'})"
        )

    @property
    def url(self) -> str:
        raise NotImplementedError

    def build_body(self, request: Request) -> dict[str, Any]:
        raise NotImplementedError

    def _auth_headers(self) -> dict[str, str]:
        """The protocol's own headers (version, key), after the common ones."""
        raise NotImplementedError

    def _parser(self, request: Request, exchange: SSEExchange) -> StreamParser:
        raise NotImplementedError

    def _label(self, request: Request) -> str:
        return f"{self.provider_name}/{request.model}" if self.provider_name else request.model

    def _secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key else ()

    def _headers(self) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "user-agent": USER_AGENT,
            **self._auth_headers(),
        }

    async def stream(self, request: Request, timeouts: Timeouts) -> AsyncIterator[ProviderEvent]:
        secrets = self._secrets()
        exchange = SSEExchange(self._http, self.provider_name, timeouts)
        try:
            try:
                await exchange.open(self.url, self._headers(), self.build_body(request))
            except CallFailed as failure:
                yield failure.to_event(secrets)
                return
            yield Started(t=time.perf_counter(), model=self._label(request), simulated=False)
            parser = self._parser(request, exchange)
            try:
                while not parser.done:
                    event = await exchange.next_event()
                    if event is None:
                        break
                    for delta in parser.feed(event):
                        yield delta
            except CallFailed as failure:
                yield failure.to_event(secrets)
                return
            if not parser.complete:
                yield StreamError(
                    t=time.perf_counter(),
                    kind="stream",
                    message=f"the stream from {self.provider_name} ended before {self.end_marker}",
                )
                return
            now = time.perf_counter()
            usage = parser.usage()
            if usage is not None:
                inp, out, cached = usage
                yield UsageReport(t=now, input_tokens=inp, output_tokens=out, cached_tokens=cached)
            else:
                yield UsageReport(
                    t=now,
                    input_tokens=estimate_tokens(sum(len(m.content) for m in request.messages)),
                    output_tokens=estimate_tokens(parser.out_chars),
                    estimated=True,
                )
            yield Finished(t=time.perf_counter(), reason=parser.finish or "end")
        finally:
            await exchange.aclose()
