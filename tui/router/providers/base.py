"""The one interface every wire protocol implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from tui.router.types import ProviderEvent, Timeouts


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Request:
    model: str  # the provider's own model name (the part after "provider/")
    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    # For the LLM classifier: ask for token logprobs of the first token (OpenAI-compatible only).
    logprobs: int | None = None


class ProviderClient(Protocol):
    """Streams one request as ProviderEvents.

    Never raises for a failure of the call: every failure (HTTP status, connection, timeout,
    broken stream, bad JSON) becomes a final ``StreamError`` event. A normal stream is
    ``Started``, any number of ``TextDelta``, one ``UsageReport``, then ``Finished``. Cancelling
    the consuming task closes the connection at once.
    """

    def stream(self, request: Request, timeouts: Timeouts) -> AsyncIterator[ProviderEvent]: ...
