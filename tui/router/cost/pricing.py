"""What a call cost, from its token usage, using the genai-prices library's bundled (offline) data.

Three answers are possible and the UI shows each differently:

* a price in USD, for a cloud model the library knows;
* ``0.0`` for a local server (providers named ollama, llamacpp, vllm, lmstudio, or any provider
  whose ``price_provider`` in routes.toml is "local" or "free"): it costs nothing per token;
* ``None`` for a model the library does not know: shown "n/a", never a made-up number.

The price provider is ``Provider.price_provider`` when routes.toml sets one, else the provider
name from ``"provider/model"``. genai-prices is imported on first use (it takes a few tenths of a
second); :func:`preload` lets a caller pay that in a background thread. Look-ups are cached.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tui.router.types import RoutingTable, split_model_id

LOCAL_PROVIDERS = frozenset({"ollama", "llamacpp", "llama.cpp", "vllm", "lmstudio", "local"})
_FREE_MARKERS = frozenset({"local", "free"})


def price_provider_of(model_id: str, table: RoutingTable | None = None) -> tuple[str, str] | None:
    """``(price provider id, model name)`` for a model id, or None if the id is malformed."""
    try:
        provider, model = split_model_id(model_id)
    except ValueError:
        return None
    if table is not None:
        p = table.providers.get(provider)
        if p is not None and p.price_provider:
            return p.price_provider, model
    return provider, model


def is_local(model_id: str, table: RoutingTable | None = None) -> bool:
    """Whether the model runs on a local server, which costs nothing per token."""
    ref = price_provider_of(model_id, table)
    if ref is None:
        return False
    provider = split_model_id(model_id)[0]
    return ref[0] in _FREE_MARKERS or provider in LOCAL_PROVIDERS


def cost_usd(
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    *,
    table: RoutingTable | None = None,
    when: datetime | None = None,
) -> float | None:
    """The price of one call in USD; 0.0 for a local server; None when the price is unknown.

    ``input_tokens`` is the total number of prompt tokens, ``cached_tokens`` the part of it read
    from the provider's cache. ``when`` (default: now) matters for time-of-day prices (DeepSeek).
    """
    if is_local(model_id, table):
        return 0.0
    ref = price_provider_of(model_id, table)
    if ref is None or not _known(*ref):
        return None
    input_tokens = max(0, int(input_tokens))
    output_tokens = max(0, int(output_tokens))
    cached_tokens = min(max(0, int(cached_tokens)), input_tokens)
    return _cost(*ref, input_tokens, output_tokens, cached_tokens, _minute(when))


def price_per_mtok(
    model_id: str, table: RoutingTable | None = None
) -> tuple[float, float] | None:
    """``(input, output)`` USD per million tokens at the base tier, or None when unknown."""
    if is_local(model_id, table):
        return (0.0, 0.0)
    ref = price_provider_of(model_id, table)
    if ref is None or not _known(*ref):
        return None
    return _per_mtok(*ref, _minute(None))


def format_usd(cost: float | None, *, estimated: bool = False) -> str:
    """A cost as a person reads it: "n/a" when unknown, "free" for 0, "~" when estimated."""
    from tui.router.units import dollars  # the one dollar formatter (tui/router/units.py)

    return dollars(cost, estimated=estimated)


def preload() -> None:
    """Import genai-prices and load its data now (call it from a background thread)."""
    _known("openai", "gpt-4o-mini")


# ---------------------------------------------------------------------------------------------


def _minute(when: datetime | None) -> datetime:
    """The request time to the minute (prices never change within a minute; keeps caches small)."""
    when = when or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.replace(second=0, microsecond=0)


def _calc(provider: str, model: str, usage_kw: dict[str, int], when: datetime) -> Any:
    from genai_prices import Usage, calc_price  # imported lazily: slow to import

    return calc_price(
        Usage(**usage_kw), model_ref=model, provider_id=provider, genai_request_timestamp=when
    )


@lru_cache(maxsize=1024)
def _known(provider: str, model: str) -> bool:
    try:
        _calc(provider, model, {"input_tokens": 0, "output_tokens": 0}, _minute(None))
    except LookupError:
        return False
    return True


@lru_cache(maxsize=8192)
def _cost(
    provider: str, model: str, inp: int, out: int, cached: int, when: datetime
) -> float | None:
    usage = {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": cached}
    try:
        return float(_calc(provider, model, usage, when).total_price)
    except LookupError:
        return None


@lru_cache(maxsize=1024)
def _per_mtok(provider: str, model: str, when: datetime) -> tuple[float, float] | None:
    try:
        calc = _calc(provider, model, {"input_tokens": 0, "output_tokens": 0}, when)
    except LookupError:
        return None
    prices = calc.model_price
    return (_base(getattr(prices, "input_mtok", None)), _base(getattr(prices, "output_mtok", None)))


def _base(price: Any) -> float:
    """A flat price, or the base tier of a tiered one; 0 when the model has no such price."""
    if price is None:
        return 0.0
    return float(getattr(price, "base", price))
