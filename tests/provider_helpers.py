"""What the tests/test_providers_*.py modules share: a key, timeouts, a request, the loopback
server fixture, the shared-client closer, event readers, clients and the shipped providers."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest
from fakeserver import FakeServer

from tui.router.providers.anthropic import AnthropicClient
from tui.router.providers.base import Message, Request
from tui.router.providers.openai_compat import OpenAICompatClient
from tui.router.providers.registry import aclose_shared_http_client
from tui.router.types import (
    Baseline,
    ClassifierSettings,
    ModelProfile,
    Provider,
    RoutingTable,
    StreamError,
    TextDelta,
    Timeouts,
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
