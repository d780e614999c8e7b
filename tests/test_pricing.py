"""Prices come from genai-prices' bundled data: known models priced, unknown ones None, local free."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from tui.router.cost import pricing
from tui.router.cost.pricing import cost_usd, format_usd, is_local, price_per_mtok
from tui.router.types import (
    Baseline,
    ClassifierSettings,
    Provider,
    RoutingTable,
)


def _table(**providers: Provider) -> RoutingTable:
    return RoutingTable(
        tasks={},
        priorities={},
        routes={},
        baseline=Baseline(model="openai/gpt-5.2"),
        classifier=ClassifierSettings(),
        providers=dict(providers),
    )


def test_known_model_costs_input_plus_output():
    # gpt-5.2: $1.75 / MTok input, $14 / MTok output.
    assert cost_usd("openai/gpt-5.2", 1_000_000, 0) == pytest.approx(1.75)
    assert cost_usd("openai/gpt-5.2", 0, 1_000_000) == pytest.approx(14.0)
    assert cost_usd("openai/gpt-5.2", 1000, 100) == pytest.approx(0.00175 + 0.0014)


def test_cached_tokens_are_part_of_input_and_cheaper():
    full = cost_usd("openai/gpt-5.2", 1000, 100)
    cached = cost_usd("openai/gpt-5.2", 1000, 100, cached_tokens=400)
    # 600 fresh at $1.75/M, 400 cached at $0.175/M, 100 output at $14/M.
    assert cached == pytest.approx(600 * 1.75e-6 + 400 * 0.175e-6 + 100 * 14e-6)
    assert cached < full
    # More cached than input is clamped, never negative.
    assert cost_usd("openai/gpt-5.2", 100, 0, cached_tokens=10_000) == pytest.approx(100 * 0.175e-6)


def test_unknown_cloud_model_is_none_never_invented():
    assert cost_usd("openai/definitely-not-a-model-xyz", 1000, 100) is None
    assert cost_usd("nosuchprovider/gpt-5.2", 1000, 100) is None
    assert cost_usd("not-a-model-id", 1000, 100) is None
    assert price_per_mtok("openai/definitely-not-a-model-xyz") is None


def test_local_servers_are_free():
    assert cost_usd("ollama/llama3.2", 5000, 5000) == 0.0
    assert cost_usd("vllm/qwen", 1, 1) == 0.0
    assert cost_usd("llamacpp/any", 1, 1) == 0.0
    assert price_per_mtok("ollama/llama3.2") == (0.0, 0.0)
    assert is_local("ollama/x") and not is_local("openai/gpt-5.2")


def test_price_provider_from_the_table():
    # A provider named "work" that proxies OpenAI: priced as OpenAI.
    table = _table(
        work=Provider(name="work", kind="openai-compatible", price_provider="openai"),
        box=Provider(name="box", kind="openai-compatible", price_provider="local"),
    )
    assert cost_usd("work/gpt-5.2", 1000, 100, table=table) == cost_usd("openai/gpt-5.2", 1000, 100)
    assert cost_usd("work/gpt-5.2", 1000, 100) is None  # without the table "work" is unknown
    assert cost_usd("box/whatever", 1000, 100, table=table) == 0.0


def test_price_per_mtok_base_tier():
    assert price_per_mtok("openai/gpt-5.2") == pytest.approx((1.75, 14.0))
    # Tiered (>200k input) prices report the base tier.
    assert price_per_mtok("anthropic/claude-sonnet-4-5") == pytest.approx((3.0, 15.0))


def test_time_of_day_prices_use_the_request_time():
    peak = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    off = datetime(2025, 6, 2, 20, 0, tzinfo=UTC)
    a = cost_usd("deepseek/deepseek-chat", 1_000_000, 1_000_000, when=peak)
    b = cost_usd("deepseek/deepseek-chat", 1_000_000, 1_000_000, when=off)
    assert a is not None and b is not None
    assert a != b


def test_lookups_are_cached():
    pricing._cost.cache_clear()
    cost_usd("openai/gpt-5-mini", 123, 45)
    cost_usd("openai/gpt-5-mini", 123, 45)
    assert pricing._cost.cache_info().hits >= 1


def test_format_usd():
    assert format_usd(None) == "n/a"
    assert format_usd(0.0) == "free"
    assert format_usd(0.0123) == "$0.0123"
    assert format_usd(2.5, estimated=True) == "~$2.50"


def test_import_is_lazy():
    code = "import sys, tui.router.cost.pricing; print('genai_prices' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
