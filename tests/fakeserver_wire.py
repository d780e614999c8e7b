"""The fake server's data and its wire: what a request gets (``Reply``), what the server recorded
(``RecordedRequest``), and one client connection (``Conn``): HTTP/1.1 heads, chunked or
close-delimited bodies, SSE framing, pauses that notice a client going away, and resets.

Part of tests/fakeserver.py (its docstring tells how to use the server); import from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Fault = Literal["stall_headers", "stall", "reset", "hangup", "malformed", "stream_error", "cut"]


@dataclass(frozen=True)
class Reply:
    """What the server does with one request (see the module docstring)."""

    status: int = 200
    text: str = "Hello from the fake server. It streams a few words."
    chunks: tuple[str, ...] | None = None
    fault: Fault | None = None
    after: int = 2  # content chunks sent before a mid-stream fault
    seconds: float = 30.0  # how long a stall lasts at most
    finish_reason: str = "stop"
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    delay: float = 0.0
    first_delay: float = 0.0
    comments: bool = True
    crlf: bool = False
    framing: Literal["chunked", "close"] = "chunked"
    logprobs: tuple[tuple[str, float], ...] | None = None
    usage_steps: int = 1
    send_usage: bool = True  # OpenAI: the usage chunk (when asked for); off = a server ignoring it
    headers: tuple[tuple[str, str], ...] = ()
    message: str | None = None  # error message (http errors, stream errors)
    error_type: str | None = None
    body: Any = None  # an http error's body, verbatim
    as_list: bool = False

    @classmethod
    def ok(cls, text: str | None = None, **fields: Any) -> Reply:
        if text is not None:
            fields["text"] = text
        if "chunks" in fields and fields["chunks"] is not None:
            fields["chunks"] = tuple(fields["chunks"])
        return cls(**_headers_field(fields))

    @classmethod
    def http(
        cls,
        status: int,
        message: str | None = None,
        *,
        retry_after: str | float | None = None,
        retry_after_ms: float | None = None,
        error_type: str | None = None,
        body: Any = None,
        as_list: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["retry-after"] = str(retry_after)
        if retry_after_ms is not None:
            hdrs["retry-after-ms"] = f"{retry_after_ms:g}"
        return cls(
            status=status,
            message=message,
            error_type=error_type,
            body=body,
            as_list=as_list,
            headers=tuple(hdrs.items()),
        )

    @classmethod
    def stall_headers(cls, seconds: float = 30.0) -> Reply:
        return cls(fault="stall_headers", seconds=seconds)

    @classmethod
    def stall(cls, after: int = 2, seconds: float = 30.0, **fields: Any) -> Reply:
        return cls(fault="stall", after=after, seconds=seconds, **_headers_field(fields))

    @classmethod
    def reset(cls, after: int = 2, **fields: Any) -> Reply:
        return cls(fault="reset", after=after, **_headers_field(fields))

    @classmethod
    def hangup(cls) -> Reply:
        return cls(fault="hangup")

    @classmethod
    def malformed(cls, after: int = 1, **fields: Any) -> Reply:
        return cls(fault="malformed", after=after, **_headers_field(fields))

    @classmethod
    def stream_error(
        cls,
        after: int = 1,
        message: str = "The server had an error while processing your request.",
        error_type: str | None = None,
        **fields: Any,
    ) -> Reply:
        return cls(
            fault="stream_error",
            after=after,
            message=message,
            error_type=error_type,
            **_headers_field(fields),
        )

    @classmethod
    def cut(cls, after: int = 2, **fields: Any) -> Reply:
        return cls(fault="cut", after=after, **_headers_field(fields))

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\s*\S+", self.text)


def _headers_field(fields: dict[str, Any]) -> dict[str, Any]:
    if isinstance(fields.get("headers"), dict):
        fields["headers"] = tuple(fields["headers"].items())
    return fields


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    protocol: Literal["openai", "anthropic", "other"] = "other"
    reply: Reply | None = None
    outcome: Literal["pending", "completed", "faulted", "disconnected"] = "pending"
    received_at: float = field(default_factory=time.monotonic)
    connection: int = 0  # which TCP connection carried it (1, 2, ...): shows keep-alive reuse

    @property
    def model(self) -> str | None:
        return self.json.get("model") if isinstance(self.json, dict) else None

    @property
    def api_key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        return self.headers.get("x-api-key")


class Gone(Exception):
    """The client went away."""


_REASONS = {529: "Overloaded"}


class Conn:
    """One client connection: reading requests, writing (chunked) responses, noticing EOF."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.chunked = True
        self.crlf = False

    async def write(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise Gone
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise Gone from exc

    async def head(self, status: int, headers: list[tuple[str, str]]) -> None:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = _REASONS.get(status, "Unknown")
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
        await self.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def body_part(self, data: bytes) -> None:
        if not data:
            return
        if self.chunked:
            await self.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            await self.write(data)

    async def end_body(self) -> None:
        if self.chunked:
            await self.write(b"0\r\n\r\n")

    async def sse(
        self, data: str = "", event: str | None = None, comment: str | None = None
    ) -> None:
        nl = "\r\n" if self.crlf else "\n"
        if comment is not None:
            text = f": {comment}{nl}{nl}"
        else:
            text = (f"event: {event}{nl}" if event else "") + f"data: {data}{nl}{nl}"
        await self.body_part(text.encode())

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``; raise Gone at once if the client closes or resets meanwhile."""
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(self.reader.read(1024), left)
            except TimeoutError:
                return
            except ConnectionError as exc:
                raise Gone from exc
            if not data:
                raise Gone
            # A client does not send while a response is under way; ignore stray bytes.

    def abort(self) -> None:
        """Reset the connection (RST, not FIN)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
