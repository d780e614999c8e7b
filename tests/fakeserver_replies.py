"""How the fake server writes one reply: the protocol's JSON error body, a whole (non-streamed)
response, or an OpenAI or Anthropic stream, with the faults a ``Reply`` asks for (stalls,
resets, malformed chunks, errors inside the stream, cut bodies).

Part of tests/fakeserver.py (its docstring tells how to use the server); import from there.
``FakeServer`` inherits these methods from ``ReplyWriter``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fakeserver_wire import Conn, RecordedRequest, Reply

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class ReplyWriter:
    """Writes replies; mixed into FakeServer, which sets ``_counter`` (the ids of responses)."""

    _counter: int

    async def _json(
        self,
        conn: Conn,
        status: int,
        data: Any,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if isinstance(data, bytes):
            payload = data
        elif isinstance(data, str):
            payload = data.encode()
        else:
            payload = json.dumps(data).encode()
        ctype = "text/plain" if isinstance(data, (bytes, str)) else "application/json"
        await conn.head(
            status,
            [("content-type", ctype), ("content-length", str(len(payload))), *headers],
        )
        await conn.write(payload)

    async def _error(self, conn: Conn, rec: RecordedRequest, reply: Reply, key: str) -> None:
        status = reply.status
        if reply.body is not None:
            body = reply.body
            if isinstance(body, str):
                body = body.replace("{key}", key)
        else:
            message = (reply.message or f"fake {status} error").replace("{key}", key)
            if rec.protocol == "anthropic":
                etype = reply.error_type or _ANTHROPIC_ERROR_TYPES.get(
                    status, "api_error" if status >= 500 else "invalid_request_error"
                )
                body = {"type": "error", "error": {"type": etype, "message": message}}
            else:
                etype = reply.error_type or _OPENAI_ERROR_TYPES.get(
                    status, "server_error" if status >= 500 else "invalid_request_error"
                )
                body = {"error": {"message": message, "type": etype, "param": None, "code": None}}
            if reply.as_list:
                body = [body]
        await self._json(conn, status, body, reply.headers)

    def _usage(self, rec: RecordedRequest, reply: Reply, pieces: list[str]) -> tuple[int, int, int]:
        if reply.input_tokens is not None:
            inp = reply.input_tokens
        else:
            chars = 0
            if isinstance(rec.json, dict):
                for m in rec.json.get("messages") or ():
                    content = m.get("content") if isinstance(m, dict) else None
                    chars += len(content) if isinstance(content, str) else 0
                system = rec.json.get("system")
                chars += len(system) if isinstance(system, str) else 0
            inp = max(1, (chars + 3) // 4)
        out = reply.output_tokens if reply.output_tokens is not None else len(pieces)
        return inp, out, reply.cached_tokens

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    async def _whole(self, conn: Conn, rec: RecordedRequest, reply: Reply) -> None:
        pieces = reply.pieces()
        inp, out, cached = self._usage(rec, reply, pieces)
        text = "".join(pieces)
        if rec.protocol == "anthropic":
            data: dict[str, Any] = {
                "id": f"msg_fake{self._next_id()}",
                "type": "message",
                "role": "assistant",
                "model": rec.model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": _anthropic_reason(reply.finish_reason),
                "stop_sequence": None,
                "usage": {
                    "input_tokens": inp - cached,
                    "cache_read_input_tokens": cached,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": out,
                },
            }
        else:
            data = {
                "id": f"chatcmpl-fake{self._next_id()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": rec.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": _openai_usage(inp, out, cached),
            }
        await self._json(conn, 200, data, reply.headers)

    async def _openai_stream(
        self, conn: Conn, rec: RecordedRequest, reply: Reply, key: str
    ) -> str:
        body = rec.json if isinstance(rec.json, dict) else {}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        want_logprobs = bool(body.get("logprobs"))
        pieces = reply.pieces()
        inp, out, cached = self._usage(rec, reply, pieces)
        base = {
            "id": f"chatcmpl-fake{self._next_id()}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": rec.model,
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> str:
            data: dict[str, Any] = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
                ],
            }
            if include_usage:
                data["usage"] = None
            return json.dumps(data)

        if reply.comments:
            await conn.sse(comment="keep-alive")
        await conn.sse(chunk({"role": "assistant", "content": "", "refusal": None}))
        await conn.pause(reply.first_delay)
        limit = reply.after if reply.fault else len(pieces)
        for i, piece in enumerate(pieces[:limit]):
            if i:
                await conn.pause(reply.delay)
            logprobs = None
            if want_logprobs:
                top = reply.logprobs if (i == 0 and reply.logprobs) else ((piece, -0.01),)
                logprobs = {
                    "content": [
                        {
                            "token": top[0][0],
                            "logprob": top[0][1],
                            "bytes": list(top[0][0].encode()),
                            "top_logprobs": [
                                {"token": t, "logprob": lp, "bytes": list(t.encode())}
                                for t, lp in top
                            ],
                        }
                    ],
                    "refusal": None,
                }
            await conn.sse(chunk({"content": piece}, logprobs=logprobs))
            if i == 0 and reply.comments:
                await conn.sse(comment="OPENROUTER PROCESSING")

        if reply.fault == "stall":
            await conn.pause(reply.seconds)
            return "stalled"
        if reply.fault == "reset":
            return "reset"
        if reply.fault == "malformed":
            await conn.sse(
                '{"id": "chatcmpl-fake", "choices": [{"index": 0, "delta": {"content": "oo'
            )
            await conn.sse("[DONE]")
            await conn.end_body()
            return "done"
        if reply.fault == "stream_error":
            message = (reply.message or "stream error").replace("{key}", key)
            error = {
                "message": message,
                "type": reply.error_type or "server_error",
                "param": None,
                "code": None,
            }
            await conn.sse(json.dumps({"error": error}))
            await conn.end_body()
            return "done"
        if reply.fault == "cut":
            await conn.end_body()
            return "done"

        await conn.sse(chunk({}, finish=reply.finish_reason))
        if include_usage and reply.send_usage:
            await conn.sse(
                json.dumps({**base, "choices": [], "usage": _openai_usage(inp, out, cached)})
            )
        await conn.sse("[DONE]")
        await conn.end_body()
        return "done"

    async def _anthropic_stream(
        self, conn: Conn, rec: RecordedRequest, reply: Reply, key: str
    ) -> str:
        pieces = reply.pieces()
        inp, out, cached = self._usage(rec, reply, pieces)

        async def event(name: str, data: dict[str, Any]) -> None:
            await conn.sse(json.dumps({"type": name, **data}), event=name)

        await event(
            "message_start",
            {
                "message": {
                    "id": f"msg_fake{self._next_id()}",
                    "type": "message",
                    "role": "assistant",
                    "model": rec.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": inp - cached,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": cached,
                        "output_tokens": 1,
                    },
                }
            },
        )
        await event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        await event("ping", {})
        await conn.pause(reply.first_delay)
        limit = reply.after if reply.fault else len(pieces)
        for i, piece in enumerate(pieces[:limit]):
            if i:
                await conn.pause(reply.delay)
            await event(
                "content_block_delta",
                {"index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
            if i == 0:
                await event("ping", {})

        if reply.fault == "stall":
            await conn.pause(reply.seconds)
            return "stalled"
        if reply.fault == "reset":
            return "reset"
        if reply.fault == "malformed":
            await conn.sse(
                '{"type": "content_block_delta", "index": 0, "delta": {"ty',
                event="content_block_delta",
            )
            await conn.end_body()
            return "done"
        if reply.fault == "stream_error":
            message = (reply.message or "Overloaded").replace("{key}", key)
            await event(
                "error",
                {"error": {"type": reply.error_type or "overloaded_error", "message": message}},
            )
            await conn.end_body()
            return "done"
        if reply.fault == "cut":
            await conn.end_body()
            return "done"

        await event("content_block_stop", {"index": 0})
        steps = max(1, reply.usage_steps)
        for step in range(1, steps + 1):
            # Cumulative: each message_delta carries the total so far, the last one the final.
            partial = out * step // steps
            data: dict[str, Any] = {"usage": {"output_tokens": partial}}
            data["delta"] = {
                "stop_reason": _anthropic_reason(reply.finish_reason) if step == steps else None,
                "stop_sequence": None,
            }
            await event("message_delta", data)
        await event("message_stop", {})
        await conn.end_body()
        return "done"


def _openai_usage(inp: int, out: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": inp,
        "completion_tokens": out,
        "total_tokens": inp + out,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _anthropic_reason(finish: str) -> str:
    return {"stop": "end_turn", "length": "max_tokens"}.get(finish, finish)
