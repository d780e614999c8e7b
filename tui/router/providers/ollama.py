"""Which models a local Ollama server has, as RouteDeck model ids (``ollama/<name>``)."""

from __future__ import annotations

import asyncio

import httpx

from tui.router.providers.http import ssl_context

__all__ = ["list_ollama_models"]

DEFAULT_OLLAMA_URL = "http://localhost:11434"


async def list_ollama_models(base_url: str = DEFAULT_OLLAMA_URL, timeout: float = 0.3) -> list[str]:
    """``["ollama/llama3.2:1b", ...]`` from ``GET /v1/models`` (else ``/api/tags``).

    ``base_url`` may end in ``/v1`` or not. Returns ``[]`` when nothing answers within
    ``timeout`` seconds in all, or the answer is not what Ollama sends. Never raises for a
    network failure.
    """
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[:-3]
    # Local by design: no proxies from the environment. The shared SSL context keeps creating
    # the client cheap (loading the CA bundle would eat the whole budget).
    client = httpx.AsyncClient(trust_env=False, timeout=timeout, verify=ssl_context())
    try:
        async with asyncio.timeout(timeout):
            names = await _openai_models(client, root)
            if names is None:
                names = await _ollama_tags(client, root)
    except (TimeoutError, httpx.HTTPError, OSError, ValueError):
        return []
    finally:
        await client.aclose()
    seen: dict[str, None] = {}
    for name in names or ():
        seen.setdefault(f"ollama/{name}", None)
    return list(seen)


async def _openai_models(client: httpx.AsyncClient, root: str) -> list[str] | None:
    response = await client.get(f"{root}/v1/models")  # network errors: nothing answers
    if response.status_code != 200:
        return None
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        return None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]


async def _ollama_tags(client: httpx.AsyncClient, root: str) -> list[str]:
    response = await client.get(f"{root}/api/tags")
    if response.status_code != 200:
        return []
    try:
        models = response.json().get("models")
    except (ValueError, AttributeError):
        return []
    if not isinstance(models, list):
        return []
    return [
        str(m.get("name") or m.get("model"))
        for m in models
        if isinstance(m, dict) and (m.get("name") or m.get("model"))
    ]
