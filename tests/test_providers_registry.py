"""The provider registry (real, simulated and local clients, profiles, one shared connection),
the simulated client, and the Ollama model listing.

Every test bounds its wait with a generous ``asyncio.timeout`` so that a hang fails fast
instead of blocking the run; no test asserts on how long anything took.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import provider_helpers
import pytest
from fakeserver import FakeServer, closed_port_url
from provider_helpers import BOUND, NO_FIRST, SECRET, collect, kinds, table, text_of

from tui.router.providers.anthropic import AnthropicClient
from tui.router.providers.base import Message, Request
from tui.router.providers.ollama import list_ollama_models
from tui.router.providers.openai_compat import OpenAICompatClient
from tui.router.providers.registry import base_url_env_var, resolve_client
from tui.router.providers.simulated import SimulatedClient, model_tier, sim_tokenize
from tui.router.types import Finished, ModelProfile, Started, TextDelta, Timeouts, UsageReport

# The shared fixtures, bound by name so pytest finds them here (imported, ruff would read
# every test argument of the same name as a redefinition, F811).
server = provider_helpers.server
_close_shared_client = provider_helpers._close_shared_client


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
