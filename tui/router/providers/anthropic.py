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
from collections.abc import Sequence
from typing import Any

from tui.router.providers import http
from tui.router.providers.base import Request
from tui.router.providers.sse import SSEEvent
from tui.router.types import TextDelta

__all__ = ["ANTHROPIC_VERSION", "AnthropicClient"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024

_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


class AnthropicClient(http.SSEClient):
    """Streams Anthropic Messages as ProviderEvents (see the module docstring)."""

    end_marker = "message_stop"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        http_client: http.HttpClientSource = None,
        provider_name: str = "anthropic",
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        anthropic_version: str = ANTHROPIC_VERSION,
    ) -> None:
        super().__init__(api_key, http_client, provider_name)
        base = base_url.rstrip("/")
        # The SDK convention is a base without /v1; accept one with it too.
        self.base_url = base[:-3] if base.endswith("/v1") else base
        self.default_max_tokens = default_max_tokens
        self.anthropic_version = anthropic_version

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def _auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.anthropic_version}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def _label(self, request: Request) -> str:
        return f"{self.provider_name}/{request.model}"

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

    def _parser(self, request: Request, exchange: http.SSEExchange) -> _EventParser:
        return _EventParser(self.provider_name, exchange)


class _EventParser:
    """Reads one response's events (see :class:`~tui.router.providers.http.StreamParser`)."""

    __slots__ = ("_name", "_exchange", "_usage", "done", "finish", "out_chars")

    def __init__(self, name: str, exchange: http.SSEExchange) -> None:
        self._name = name
        self._exchange = exchange
        self._usage: dict[str, int] = {}
        self.done = False  # message_stop came
        self.finish: str | None = None  # stop_reason
        self.out_chars = 0

    @property
    def complete(self) -> bool:
        return self.done

    def usage(self) -> tuple[int, int, int] | None:
        usage = self._usage
        if not usage:
            return None
        cache_read = usage.get("cache_read_input_tokens", 0)
        total_in = (
            usage.get("input_tokens", 0) + cache_read + usage.get("cache_creation_input_tokens", 0)
        )
        return total_in, usage.get("output_tokens", 0), cache_read

    def _text(self, text: str) -> Sequence[TextDelta]:
        self._exchange.mark_first_token()
        self.out_chars += len(text)
        return (TextDelta(t=time.perf_counter(), text=text),)

    def feed(self, event: SSEEvent) -> Sequence[TextDelta]:
        name = self._name
        if event.event == "ping" or not event.data:
            return http.NO_TEXT
        try:
            data = http.loads_chunk(event.data)
        except ValueError:
            raise http.CallFailed(
                "protocol",
                f"malformed JSON in a {event.event or 'nameless'} event from {name}: "
                f"{http.clip(event.data, 120)}",
            ) from None
        if not isinstance(data, dict):
            raise http.CallFailed(
                "protocol", f"unexpected event from {name}: {http.clip(event.data, 120)}"
            )
        kind = event.event or str(data.get("type", ""))
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return self._text(delta["text"])
            if delta.get("type") == "thinking_delta":
                self._exchange.mark_first_token()  # tokens are flowing, just not text
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "text" and block.get("text"):
                return self._text(block["text"])
        elif kind == "message_start":
            _overwrite(self._usage, (data.get("message") or {}).get("usage"))
        elif kind == "message_delta":
            self._exchange.mark_first_token()
            _overwrite(self._usage, data.get("usage"))
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish = str(reason)
        elif kind == "message_stop":
            self.done = True
            self._exchange.completed()
        elif kind == "error":
            raise http.CallFailed(
                "stream", f"error event in the stream from {name}: {http.error_detail(event.data)}"
            )
        # content_block_stop, and event types this client does not know: nothing.
        return http.NO_TEXT


def _overwrite(usage: dict[str, int], report: Any) -> None:
    """Cumulative usage: every count present replaces the one before (never added)."""
    if not isinstance(report, dict):
        return
    for key in _USAGE_KEYS:
        value = report.get(key)
        if isinstance(value, int):
            usage[key] = value
