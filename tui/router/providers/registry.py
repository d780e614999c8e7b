"""From a model id to a ready client: real when it can be, a labelled simulation when not.

:func:`resolve_client` decides, for ``"provider/model"`` and a routing table, which client streams
it, with these rules, in order:

1. ``force_simulated=True`` or ``ROUTEDECK_SIMULATE=1`` in the environment: simulated.
2. The provider's kind is ``simulated``: simulated.
3. The provider names a key variable (``api_key_env``) that is missing or empty: a simulated
   stand-in, with ``why_simulated`` saying which variable ("no OPENAI_API_KEY in the
   environment"). Providers without ``api_key_env`` (local servers: Ollama, llama.cpp, vLLM) are
   always real.
4. Otherwise the real client for the provider's kind, with its base URL overridden by
   ``<PROVIDER>_BASE_URL`` when set (the provider name upper-cased, anything not a letter or
   digit turned into ``_``: ``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``LLAMACPP_BASE_URL``).

A model id that is malformed or names a provider the table lacks gives a client whose stream is a
single ``StreamError(kind="config")``: callers handle it like any other failed call.

Simulated clients take their profile from routes.toml's ``[profiles]`` when the model has one,
else from its price tier (see ``simulated.py``). ``ROUTEDECK_SIM_SPEED=20`` makes every simulated
model 20 times faster (for demos and end-to-end tests).

Real clients share one ``httpx.AsyncClient`` per event loop (connection reuse across calls),
created on first use inside that loop (``http.shared_http_client``, re-exported here);
``await aclose_shared_http_client()`` closes the running loop's one at shutdown. Pass
``http_client=`` to use your own instead.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import httpx

from tui.router import settings
from tui.router.providers.anthropic import AnthropicClient
from tui.router.providers.base import ProviderClient, Request
from tui.router.providers.http import aclose_shared_http_client, shared_http_client
from tui.router.providers.openai_compat import OpenAICompatClient
from tui.router.providers.simulated import SimulatedClient
from tui.router.types import ProviderEvent, RoutingTable, StreamError, Timeouts

__all__ = [
    "ResolvedModel",
    "aclose_shared_http_client",
    "base_url_env_var",
    "resolve_client",
    "shared_http_client",
    "simulation_forced",
]

SIMULATE_ENV = settings.SIMULATE


@dataclass(frozen=True)
class ResolvedModel:
    client: ProviderClient
    model_id: str  # "provider/model" as asked for
    provider_model: str  # the part after "provider/", what the provider's API is sent
    simulated: bool
    # Why a simulation stands in, in words ("no OPENAI_API_KEY in the environment"); None if real.
    why_simulated: str | None = None
    provider: str = ""  # the provider's name ("" when the model id was malformed)


def base_url_env_var(provider_name: str) -> str:
    """``OPENAI_BASE_URL`` for ``openai``, ``LLAMA_CPP_BASE_URL`` for ``llama-cpp``, ..."""
    return re.sub(r"[^A-Z0-9]", "_", provider_name.upper()) + "_BASE_URL"


def simulation_forced(env: Mapping[str, str] | None = None) -> bool:
    return settings.simulate(env)


def resolve_client(
    model_id: str,
    table: RoutingTable,
    *,
    env: Mapping[str, str] = os.environ,
    force_simulated: bool = False,
    http_client: httpx.AsyncClient | None = None,
) -> ResolvedModel:
    """The client that streams ``model_id`` (see the module docstring for the rules)."""
    provider_name, sep, provider_model = model_id.partition("/")
    if not sep or not provider_name or not provider_model:
        return ResolvedModel(
            client=_ConfigErrorClient(
                f"model id must look like 'provider/model', got {model_id!r}"
            ),
            model_id=model_id,
            provider_model=provider_model,
            simulated=False,
        )
    provider = table.providers.get(provider_name)
    if provider is None:
        return ResolvedModel(
            client=_ConfigErrorClient(
                f"unknown provider {provider_name!r} in {model_id!r}: add it under [providers]"
            ),
            model_id=model_id,
            provider_model=provider_model,
            simulated=False,
            provider=provider_name,
        )

    why: str | None = None
    if force_simulated:
        why = "simulation forced"
    elif simulation_forced(env):
        why = f"simulation forced ({SIMULATE_ENV}=1)"
    elif provider.kind == "simulated":
        why = f"provider {provider_name!r} is simulated"
    elif provider.api_key_env and not env.get(provider.api_key_env, "").strip():
        why = f"no {provider.api_key_env} in the environment"
    if why is not None:
        client: ProviderClient = SimulatedClient(
            table.profiles.get(model_id),
            model_id,
            speed=settings.sim_speed(env),
            price_provider=provider.price_provider or provider_name,
        )
        return ResolvedModel(client, model_id, provider_model, True, why, provider_name)

    key = env.get(provider.api_key_env, "").strip() if provider.api_key_env else None
    base_url = env.get(base_url_env_var(provider_name), "").strip() or provider.base_url
    if not base_url:
        client = _ConfigErrorClient(
            f"provider {provider_name!r} has no base_url (set it in routes.toml or "
            f"{base_url_env_var(provider_name)})"
        )
    elif provider.kind == "anthropic":
        client = AnthropicClient(
            base_url, key, http_client=http_client, provider_name=provider_name
        )
    else:
        client = OpenAICompatClient(
            base_url, key or None, http_client=http_client, provider_name=provider_name
        )
    return ResolvedModel(client, model_id, provider_model, False, None, provider_name)


class _ConfigErrorClient:
    """A client whose every stream is one ``StreamError(kind="config")``: our side is wrong."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"_ConfigErrorClient({self.message!r})"

    async def stream(self, request: Request, timeouts: Timeouts) -> AsyncIterator[ProviderEvent]:
        yield StreamError(t=time.perf_counter(), kind="config", message=self.message)
