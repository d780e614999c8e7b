"""Hedging against a primary that stalls on 10% of calls. Prints its figures; asserts nothing.

    .venv/bin/python tests/bench/bench_hedge.py [--n 200] [--stall-rate 0.1] [--hedge-ms 250]

A loopback server (tests/fakeserver.py, in its own process) plays both models through the real
OpenAI protocol: the primary answers after a first-token delay drawn around 80 ms (12 chunks,
10 ms apart), except on ``stall-rate`` of its calls where the first token comes only after 2 s
(it does answer then); the fallback answers like a healthy primary. The same calls run twice through the executor, without hedging
and with ``hedge_after_ms``; the figures are per call, from the RunResults:

* p50/p99 of time to first token and of total time, with and without the hedge, and the p99
  improvement factor (target >= 3x);
* the extra cost of hedging (target <= 15%): the losers' usage counts (an estimate of the prompt
  when they reported none), priced with genai-prices for a same-tier pair (gpt-5-mini with
  gemini-2.5-flash), and, from the same token counts, for the routes.toml latency pair
  (groq llama-3.3-70b with gemini-3-flash, whose output costs about 4x more).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE.parents[1]))

from fakeserver import FakeServer, Reply  # noqa: E402

from tui.router.cost.pricing import cost_usd  # noqa: E402
from tui.router.run.execute import RunOptions, run_side_result  # noqa: E402
from tui.router.types import (  # noqa: E402
    Baseline,
    Cell,
    ClassifierSettings,
    Provider,
    RoutingTable,
    RunResult,
    Timeouts,
)

PRIMARY, FALLBACK = "openai/gpt-5-mini", "google/gemini-2.5-flash"
# The pair the shipped routes.toml hedges on its latency cells: the same model on two providers.
ALT = {PRIMARY: "groq/llama-3.3-70b-versatile", FALLBACK: "cerebras/llama-3.3-70b"}
PROMPT = ("Summarise the following support ticket in three bullet points and say which team "
          "should handle it. " + "The customer reports that exports time out after 30 s. " * 20)
ANSWER_CHUNKS = ("- point one", " about the", " export\n", "- point two", " about", " timeouts",
                 "\n", "- route", " to the", " data", " team", "\n")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def replies(n: int, rng: random.Random, stall_rate: float) -> list[Reply]:
    out = []
    for _ in range(n):
        first = min(rng.lognormvariate(-2.5, 0.35), 0.4)  # median ~82 ms
        if rng.random() < stall_rate:
            first = 2.0
        out.append(Reply.ok(chunks=ANSWER_CHUNKS, first_delay=first, delay=0.01,
                            input_tokens=300, output_tokens=120, comments=False))
    return out


def _server_process(conn) -> None:
    """The loopback models in their own process (no GIL shared with the executor)."""
    with FakeServer() as server:
        conn.send(server.openai_url)
        while (msg := conn.recv()) != "stop":
            n, seed, stall_rate = msg
            server.reset()
            rng = random.Random(seed)  # the same calls every time
            server.route("gpt-5-mini", *replies(n, rng, stall_rate))
            server.route("gemini-2.5-flash", *replies(n, rng, 0.0))
            conn.send("ready")


async def run_all(table: RoutingTable, cell: Cell, env: dict[str, str], n: int,
                  concurrency: int) -> list[RunResult]:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=4 * concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as http:

        async def one() -> RunResult:
            async with sem:
                return await run_side_result(
                    "routed", cell, PROMPT, table, RunOptions(env=env, http_client=http)
                )

        return list(await asyncio.gather(*(one() for _ in range(n))))


def alt_cost(results: list[RunResult]) -> float:
    total = 0.0
    for r in results:
        for a in r.attempts:
            c = cost_usd(ALT[a.model], a.input_tokens, a.output_tokens, a.cached_tokens)
            total += c or 0.0
    return total


def line(label: str, values: list[float]) -> str:
    return (f"  {label:<26} p50 {pct(values, 50):8.1f} ms   p90 {pct(values, 90):8.1f} ms   "
            f"p99 {pct(values, 99):8.1f} ms")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--stall-rate", type=float, default=0.10)
    ap.add_argument("--hedge-ms", type=int, default=250)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"{args.n} calls, primary stalls 2 s on {args.stall_rate:.0%}, hedge after "
          f"{args.hedge_ms} ms, {args.concurrency} at a time")

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_server_process, args=(child,), daemon=True)
    proc.start()
    url = parent.recv()
    table = RoutingTable(
        tasks={}, priorities={}, routes={}, baseline=Baseline(PRIMARY),
        classifier=ClassifierSettings(),
        providers={
            "openai": Provider("openai", "openai-compatible", url, "OPENAI_API_KEY"),
            "google": Provider("google", "openai-compatible", url, "GEMINI_API_KEY"),
        },
        timeouts=Timeouts(connect=5, first_token=30, idle=30),
    )
    env = {"OPENAI_API_KEY": "sk-bench-0000000000", "GEMINI_API_KEY": "bench-000000000000"}
    figures = {}
    for label, hedge in (("without hedge", None), ("with hedge", args.hedge_ms)):
        parent.send((args.n, args.seed, args.stall_rate))
        assert parent.recv() == "ready"
        results = await run_all(table, Cell(PRIMARY, FALLBACK, hedge), env, args.n,
                                args.concurrency)
        errors = [r.error for r in results if r.error]
        if errors:
            print(f"  {label}: {len(errors)} errors, e.g. {errors[0]}")
        figures[label] = results
    parent.send("stop")
    proc.join(timeout=10)

    base, hedged = figures["without hedge"], figures["with hedge"]
    for label, results in figures.items():
        print(f"\n{label}:")
        print(line("time to first token", [r.ttft_ms for r in results if r.ttft_ms is not None]))
        print(line("total time", [r.total_ms for r in results if r.total_ms is not None]))
    started = sum(r.hedged for r in hedged)
    won = sum(r.hedged and r.model == FALLBACK for r in hedged)
    print(f"\nhedges started on {started}/{len(hedged)} calls, won {won}")
    for what in ("ttft_ms", "total_ms"):
        b = pct([getattr(r, what) for r in base], 99)
        h = pct([getattr(r, what) for r in hedged], 99)
        print(f"p99 {what[:-3]:<5} improvement: {b / h:5.2f}x  (target >= 3x)")
    cost_b = sum(r.cost_usd or 0.0 for r in base)
    cost_h = sum(r.cost_usd or 0.0 for r in hedged)
    print(f"extra cost, {PRIMARY} + {FALLBACK}: {100 * (cost_h / cost_b - 1):+.1f}%  "
          f"(${cost_b:.5f} -> ${cost_h:.5f}; target <= 15%)")
    alt_b, alt_h = alt_cost(base), alt_cost(hedged)
    print(f"extra cost, {ALT[PRIMARY]} + {ALT[FALLBACK]}: {100 * (alt_h / alt_b - 1):+.1f}%  "
          f"(same tokens, that pair's prices)")


if __name__ == "__main__":
    asyncio.run(main())
