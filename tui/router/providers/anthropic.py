"""The Anthropic Messages protocol: ``POST {base}/v1/messages`` with ``stream: true``.

The event stream: ``message_start`` (input usage) → per content block ``content_block_start`` /
``content_block_delta`` (``text_delta``) / ``content_block_stop`` → ``message_delta`` (stop
reason and usage, CUMULATIVE: each one overwrites, never adds) → ``message_stop``; ``ping``
anywhere; an ``error`` event can replace the rest (``overloaded_error``). Before the stream an
overloaded API answers HTTP 529.

Usage is normalised to the shared convention (input tokens are the total, cached ones a part of
it): ``input_tokens = input_tokens + cache_read_input_tokens + cache_creation_input_tokens``,
``cached_tokens = cache_read_input_tokens``. Anthropic returns no logprobs; ``Request.logprobs``
is ignored. ``Finished.reason`` is Anthropic's ``stop_reason`` as sent (``end_turn``,
``max_tokens``, ``stop_sequence``, ...).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from tui.router.providers.base import Request
from tui.router.providers.openai_compat import (
    USER_AGENT,
    CallFailed,
    HttpClientSource,
    KeyedClient,
    SSEExchange,
    clip,
    error_detail,
    estimate_tokens,
    loads_chunk,
)
from tui.router.types import (
    Finished,
    ProviderEvent,
    Started,
    StreamError,
    TextDelta,
    Timeouts,
    UsageReport,
)

__all__ = ["ANTHROPIC_VERSION", "AnthropicClient"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024

_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


class AnthropicClient(KeyedClient):
    """Streams Anthropic Messages as ProviderEvents (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        http_client: HttpClientSource = None,
        provider_name: str = "anthropic",
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        anthropic_version: str = ANTHROPIC_VERSION,
    ) -> None:
        base = base_url.rstrip("/")
        # The SDK convention is a base without /v1; accept one with it too.
        self.base_url = base[:-3] if base.endswith("/v1") else base
        self.provider_name = provider_name
        self._api_key = api_key or None
        self._http = http_client
        self.default_max_tokens = default_max_tokens
        self.anthropic_version = anthropic_version

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def _headers(self) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "user-agent": USER_AGENT,
            "anthropic-version": self.anthropic_version,
        }
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def build_body(self, request: Request) -> dict[str, Any]:
        system = [m.content for m in request.messages if m.role == "system"]
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or self.default_max_tokens,
            "stream": True,
            "messages": [
                {"role": m.role, "content": m.content}
                for m in request.messages
                if m.role != "system"
            ],
        }
        if system:
            body["system"] = "\n\n".join(system)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    async def stream(self, request: Request, timeouts: Timeouts) -> AsyncIterator[ProviderEvent]:
        secrets = self._secrets()
        name = self.provider_name
        exchange = SSEExchange(self._http, name, timeouts)
        usage: dict[str, int] = {}
        out_chars = 0
        stop_reason: str | None = None
        stopped = False
        try:
            try:
                await exchange.open(self.url, self._headers(), self.build_body(request))
            except CallFailed as failure:
                yield failure.to_event(secrets)
                return
            yield Started(t=time.perf_counter(), model=f"{name}/{request.model}", simulated=False)
            try:
                while True:
                    event = await exchange.next_event()
                    if event is None:
                        break
                    if event.event == "ping" or not event.data:
                        continue
                    try:
                        data = loads_chunk(event.data)
                    except ValueError:
                        raise CallFailed(
                            "protocol",
                            f"malformed JSON in a {event.event or 'nameless'} event from {name}: "
                            f"{clip(event.data, 120)}",
                        ) from None
                    if not isinstance(data, dict):
                        raise CallFailed(
                            "protocol", f"unexpected event from {name}: {clip(event.data, 120)}"
                        )
                    kind = event.event or str(data.get("type", ""))
                    if kind == "content_block_delta":
                        delta = data.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            exchange.mark_first_token()
                            out_chars += len(delta["text"])
                            yield TextDelta(t=time.perf_counter(), text=delta["text"])
                        elif delta.get("type") == "thinking_delta":
                            exchange.mark_first_token()  # tokens are flowing, just not text
                    elif kind == "content_block_start":
                        block = data.get("content_block") or {}
                        if block.get("type") == "text" and block.get("text"):
                            exchange.mark_first_token()
                            out_chars += len(block["text"])
                            yield TextDelta(t=time.perf_counter(), text=block["text"])
                    elif kind == "message_start":
                        _overwrite(usage, (data.get("message") or {}).get("usage"))
                    elif kind == "message_delta":
                        exchange.mark_first_token()
                        _overwrite(usage, data.get("usage"))
                        reason = (data.get("delta") or {}).get("stop_reason")
                        if reason:
                            stop_reason = str(reason)
                    elif kind == "message_stop":
                        stopped = True
                        exchange.completed()
                        break
                    elif kind == "error":
                        raise CallFailed(
                            "stream",
                            f"error event in the stream from {name}: {error_detail(event.data)}",
                        )
                    # content_block_stop, and event types this client does not know: nothing.
            except CallFailed as failure:
                yield failure.to_event(secrets)
                return
            if not stopped:
                yield StreamError(
                    t=time.perf_counter(),
                    kind="stream",
                    message=f"the stream from {name} ended before message_stop",
                )
                return
            now = time.perf_counter()
            if usage:
                cache_read = usage.get("cache_read_input_tokens", 0)
                total_in = (
                    usage.get("input_tokens", 0)
                    + cache_read
                    + usage.get("cache_creation_input_tokens", 0)
                )
                yield UsageReport(
                    t=now,
                    input_tokens=total_in,
                    output_tokens=usage.get("output_tokens", 0),
                    cached_tokens=cache_read,
                )
            else:
                yield UsageReport(
                    t=now,
                    input_tokens=estimate_tokens(sum(len(m.content) for m in request.messages)),
                    output_tokens=estimate_tokens(out_chars),
                    estimated=True,
                )
            yield Finished(t=time.perf_counter(), reason=stop_reason or "end")
        finally:
            await exchange.aclose()


def _overwrite(usage: dict[str, int], report: Any) -> None:
    """Cumulative usage: every count present replaces the one before (never added)."""
    if not isinstance(report, dict):
        return
    for key in _USAGE_KEYS:
        value = report.get(key)
        if isinstance(value, int):
            usage[key] = value
