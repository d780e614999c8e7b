"""The OpenAI-compatible Chat Completions protocol: ``POST {base_url}/chat/completions``.

``OpenAICompatClient`` speaks to OpenAI and every server that copies its API (Gemini's
compatibility endpoint, OpenRouter, Groq, DeepSeek, Together, Mistral, Perplexity, Cerebras,
Ollama, llama.cpp, vLLM). This module only builds the request body and reads the chunks; the
HTTP call, its deadlines and failures are ``http.py``'s.

The stream: ``data: {chunk}`` events whose ``choices[0].delta.content`` is the text, a chunk with
``finish_reason``, with ``stream_options.include_usage`` a last chunk with ``usage``, then
``data: [DONE]``. Errors can arrive as a chunk with ``error`` (Gemini: a list of them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from tui.router.providers.base import Request
from tui.router.providers.http import (
    NO_TEXT,
    CallFailed,
    HttpClientSource,
    SSEClient,
    SSEExchange,
    clip,
    error_detail,
    loads_chunk,
)
from tui.router.providers.sse import SSEEvent
from tui.router.types import TextDelta

__all__ = ["OpenAICompatClient"]


def _first_top_logprobs(logprobs: Any) -> tuple[tuple[str, float], ...] | None:
    """The alternatives for the first token of a chunk's ``logprobs.content``."""
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if not content or not isinstance(content, list) or not isinstance(content[0], dict):
        return None
    first = content[0]
    top = first.get("top_logprobs") or ()
    pairs = tuple(
        (str(alt.get("token", "")), float(alt.get("logprob", float("-inf"))))
        for alt in top
        if isinstance(alt, dict)
    )
    if pairs:
        return pairs
    if "token" in first and "logprob" in first:
        return ((str(first["token"]), float(first["logprob"])),)
    return None


def _openai_usage(usage: dict[str, Any]) -> tuple[int, int, int]:
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if cached is None:
        cached = usage.get("prompt_cache_hit_tokens")  # DeepSeek
    return (
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int(cached or 0),
    )


def _stream_error_message(provider: str, err: Any) -> str:
    if isinstance(err, (dict, list)):
        detail = error_detail(json.dumps(err if isinstance(err, list) else {"error": err}))
    else:
        detail = clip(str(err))
    return f"error in the stream from {provider}: {detail}"


class OpenAICompatClient(SSEClient):
    """Streams ``POST {base_url}/chat/completions`` as ProviderEvents.

    ``api_key`` None (local servers) sends no Authorization header. ``provider_name`` names the
    provider in messages and in ``Started.model`` ("provider/model"). ``max_tokens_field`` is the
    body field for ``Request.max_tokens``: OpenAI's own API wants ``max_completion_tokens``
    (reasoning models reject ``max_tokens``), the compatible servers ``max_tokens``; by default
    it is chosen from the provider name and URL.
    """

    end_marker = "[DONE]"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        http_client: HttpClientSource = None,
        provider_name: str = "openai",
        extra_headers: dict[str, str] | None = None,
        max_tokens_field: str | None = None,
    ) -> None:
        super().__init__(api_key, http_client, provider_name)
        self.base_url = base_url.rstrip("/")
        self._extra_headers = dict(extra_headers or {})
        if max_tokens_field is None:
            official = provider_name == "openai" or "api.openai.com" in self.base_url
            max_tokens_field = "max_completion_tokens" if official else "max_tokens"
        self.max_tokens_field = max_tokens_field

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _auth_headers(self) -> dict[str, str]:
        headers = dict(self._extra_headers)
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        return headers

    def build_body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = request.logprobs
        return body

    def _parser(self, request: Request, exchange: SSEExchange) -> _ChunkParser:
        return _ChunkParser(self.provider_name, exchange, request.logprobs is not None)


class _ChunkParser:
    """Reads one response's chunks (see :class:`~tui.router.providers.http.StreamParser`)."""

    __slots__ = ("_name", "_exchange", "_want_logprobs", "_usage", "done", "finish", "out_chars")

    def __init__(self, name: str, exchange: SSEExchange, want_logprobs: bool) -> None:
        self._name = name
        self._exchange = exchange
        self._want_logprobs = want_logprobs
        self._usage: dict[str, Any] | None = None
        self.done = False  # [DONE] came
        self.finish: str | None = None
        self.out_chars = 0

    @property
    def complete(self) -> bool:
        return self.done or self.finish is not None

    def usage(self) -> tuple[int, int, int] | None:
        return None if self._usage is None else _openai_usage(self._usage)

    def feed(self, event: SSEEvent) -> Sequence[TextDelta]:
        data = event.data
        if data == "[DONE]":
            self.done = True
            self._exchange.completed()
            return NO_TEXT
        if not data:
            return NO_TEXT
        try:
            chunk = loads_chunk(data)
        except ValueError:
            raise CallFailed(
                "protocol", f"malformed JSON chunk from {self._name}: {clip(data, 120)}"
            ) from None
        if isinstance(chunk, list):  # Gemini can send its errors as a list
            errors = [c["error"] for c in chunk if isinstance(c, dict) and c.get("error")]
            if errors:
                raise CallFailed("stream", _stream_error_message(self._name, errors[0]))
        if not isinstance(chunk, dict):
            raise CallFailed("protocol", f"unexpected chunk from {self._name}: {clip(data, 120)}")
        if chunk.get("error"):
            raise CallFailed("stream", _stream_error_message(self._name, chunk["error"]))
        exchange = self._exchange
        out: list[TextDelta] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if content:
                exchange.mark_first_token()
                self.out_chars += len(content)
                out.append(
                    TextDelta(
                        t=time.perf_counter(),
                        text=content,
                        logprobs=_first_top_logprobs(choice.get("logprobs"))
                        if self._want_logprobs
                        else None,
                    )
                )
            elif isinstance(delta, dict) and (
                delta.get("reasoning_content") or delta.get("reasoning")
            ):
                exchange.mark_first_token()  # a reasoning model is producing tokens
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
                exchange.mark_first_token()
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
            exchange.mark_first_token()
        return out
