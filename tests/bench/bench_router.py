"""Router overhead and the parallel pair's wall time. Prints its figures; asserts nothing.

    .venv/bin/python tests/bench/bench_router.py [--n 300] [--pairs 40]

1. Overhead, prompt in -> request bytes on the wire: for each prompt of tests/data/dev.jsonl
   (all different, so the classifier's cache does not help), the time from handing the prompt
   to the engine until
     a. the classifier has decided (classify + priority + cell),
     b. the executor calls the provider client's ``stream`` (+ PairRun, tasks, resolve_client),
     c. the request is handed to the HTTP transport (+ the protocol client builds the body and
        httpx the request; a transport wrapper timestamps it), and
     d. the loopback server has read the whole request body: tests/fakeserver.py in a separate
        process (so it does not share our GIL), stamping arrival with CLOCK_MONOTONIC, the clock
        of time.perf_counter here.
   Both sides of the pair go to the loopback server through the real protocol clients; the
   first request of each pair is the one measured. The connection pool is warm.
   The same spans are also given in CPU time of this process's thread (time.thread_time): on a
   machine busy with other work the wall figures include waiting for a CPU, these do not.
   Target: p99 <= 5 ms.
2. The parallel pair: wall time of a pair over the time of its slower side (same run), and over
   the slower side run alone. Loopback models with different speeds, then simulated models.
   Target: ratio <= 1.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))  # the project
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for fakeserver

from fakeserver import FakeServer, Reply  # noqa: E402

from tui.router.classifier.build import build_classifier  # noqa: E402
from tui.router.providers.registry import base_url_env_var, resolve_client  # noqa: E402
from tui.router.run.execute import PairRun, RunOptions, run_side_result  # noqa: E402
from tui.router.table.decide import decide  # noqa: E402
from tui.router.table.load import load_table  # noqa: E402
from tui.router.types import Cell, RoutingTable  # noqa: E402

DEV = HERE.parents[1] / "data" / "dev.jsonl"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values: list[float]) -> str:
    return (f"p50 {pct(values, 50):7.3f}  p90 {pct(values, 90):7.3f}  p99 {pct(values, 99):7.3f}"
            f"  max {max(values):7.3f}  (n={len(values)})")


class StampingTransport(httpx.AsyncBaseTransport):
    """Records when each request reaches the transport (just before its bytes are written)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        self.stamps: list[float] = []
        self.cpu: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.stamps.append(time.perf_counter())
        self.cpu.append(time.thread_time())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def loopback_env(table: RoutingTable, openai_url: str, anthropic_url: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, p in table.providers.items():
        if p.kind == "simulated":
            continue
        env[base_url_env_var(name)] = anthropic_url if p.kind == "anthropic" else openai_url
        if p.api_key_env:
            env[p.api_key_env] = "sk-bench-not-a-real-key-000000"
    return env


def _server_process(conn) -> None:
    """A FakeServer in its own process: sends its URLs, then the arrival stamps when asked."""
    with FakeServer() as server:
        server.default = Reply.ok("ok.", comments=False)
        conn.send((server.openai_url, server.anthropic_url))
        while conn.recv() == "stamps":
            conn.send([r.received_at for r in server.requests])


class _StampedClient:
    """Delegates to a real client, stamping when the executor calls ``stream``."""

    def __init__(self, inner, stamps: list[float], cpu: list[float]) -> None:
        self.inner, self.stamps, self.cpu = inner, stamps, cpu

    def stream(self, request, timeouts):
        self.stamps.append(time.perf_counter())
        self.cpu.append(time.thread_time())
        return self.inner.stream(request, timeouts)


async def overhead(table: RoutingTable, classifier, prompts: list[str]) -> dict[str, list[float]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_server_process, args=(child,), daemon=True)
    proc.start()
    openai_url, anthropic_url = parent.recv()
    env = loopback_env(table, openai_url, anthropic_url)
    transport = StampingTransport()
    calls: list[float] = []
    calls_cpu: list[float] = []
    out: dict[str, list[float]] = {"decide": [], "stream": [], "transport": [], "wire": [],
                                   "cpu decide": [], "cpu stream": [], "cpu transport": []}
    t0s: list[tuple[float, float, int, int]] = []
    async with httpx.AsyncClient(transport=transport) as http:

        def resolver(model_id: str):
            r = resolve_client(model_id, table, env=env, http_client=http)
            return replace(r, client=_StampedClient(r.client, calls, calls_cpu))

        for i, prompt in enumerate(prompts):
            n_calls, n_stamps = len(calls), len(transport.stamps)
            c0, t0 = time.thread_time(), time.perf_counter()
            decision = decide(prompt, table, classifier)
            t1, c1 = time.perf_counter(), time.thread_time()
            options = RunOptions(env=env, resolver=resolver, max_tokens=64)
            await PairRun(decision, table, options).wait()
            if i < 5:
                continue  # warm-up: connections opened, caches filled
            out["decide"].append((t1 - t0) * 1000)
            out["stream"].append((calls[n_calls] - t0) * 1000)
            out["transport"].append((transport.stamps[n_stamps] - t0) * 1000)
            out["cpu decide"].append((c1 - c0) * 1000)
            out["cpu stream"].append((calls_cpu[n_calls] - c0) * 1000)
            out["cpu transport"].append((transport.cpu[n_stamps] - c0) * 1000)
            t0s.append((t0, t1, i, n_stamps))
    await transport.aclose()
    parent.send("stamps")
    stamps = parent.recv()
    parent.send("stop")
    proc.join(timeout=10)
    # Requests arrive in order, two per pair (no failures here); the pair's first is measured.
    for t0, _t1, _i, n in t0s:
        out["wire"].append((min(stamps[n], stamps[n + 1]) - t0) * 1000)
    return out


async def pair_ratios(table: RoutingTable, decisions, env, http, label: str, n: int) -> None:
    in_run, alone = [], []
    for i in range(n):
        d = decisions[i % len(decisions)]
        run = PairRun(d, table, RunOptions(env=env, http_client=http))
        result = await run.wait()
        slower_side = max((result.routed, result.baseline), key=lambda r: r.total_ms or 0)
        in_run.append(result.wall_ms / slower_side.total_ms)
        if i < max(5, n // 4):
            plan = d.cell if slower_side.side == "routed" else table.baseline
            solo = await run_side_result(
                slower_side.side, plan, d.prompt, table, RunOptions(env=env, http_client=http)
            )
            alone.append(result.wall_ms / solo.total_ms)
    print(f"  {label}: pair wall / slower side in the same run:  {summary(in_run)}")
    print(f"  {label}: pair wall / slower side run alone:        {summary(alone)}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="prompts for the overhead figures")
    ap.add_argument("--pairs", type=int, default=40, help="pairs for the wall-time ratio")
    args = ap.parse_args()

    print(f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    table = load_table()
    t = time.perf_counter()
    classifier = build_classifier(table)
    print(f"classifier ready in {time.perf_counter() - t:.2f} s (not counted below)")
    prompts = [json.loads(line)["prompt"] for line in DEV.read_text().splitlines() if line.strip()]
    prompts = (prompts * (args.n // max(len(prompts), 1) + 1))[: args.n + 5]

    o = await overhead(table, classifier, prompts)
    print("\n1. router overhead, prompt in -> ... (ms, cumulative from the prompt)")
    print(f"  a. decided (classify + priority + cell):  {summary(o['decide'])}")
    print(f"  b. executor calls the client's stream():  {summary(o['stream'])}")
    print(f"  c. request handed to the HTTP transport:  {summary(o['transport'])}")
    print(f"  d. request body read by the server:       {summary(o['wire'])}")
    engine = [b - a for a, b in zip(o["decide"], o["stream"], strict=True)]
    print(f"  b - a, the executor alone:                {summary(engine)}")
    print("  the same in CPU time of this thread (ms):")
    print(f"  a. decided:                               {summary(o['cpu decide'])}")
    print(f"  b. executor calls the client's stream():  {summary(o['cpu stream'])}")
    print(f"  c. request handed to the HTTP transport:  {summary(o['cpu transport'])}")
    print(f"  target p99 <= 5 ms (on d): {'met' if pct(o['wire'], 99) <= 5 else 'NOT met'}")

    with FakeServer() as server:

        # 2a. Loopback models of different speeds: the routed side fast, the baseline slow.
        print("\n2. parallel pair: wall time over the slower side (ratio)")
        server.reset()
        fast = Reply.ok("a fast cheap answer " * 10, first_delay=0.05, delay=0.004, comments=False)
        slow = Reply.ok("a slower frontier answer " * 10, first_delay=0.15, delay=0.008,
                        comments=False)
        server.default = fast
        server.route("gpt-5.2", slow)
        server.route("claude-sonnet-4-5", slow)
        env = loopback_env(table, server.openai_url, server.anthropic_url)
        decisions = [decide(p, table, classifier) for p in prompts[:20]]
        async with httpx.AsyncClient() as http:
            await pair_ratios(table, decisions, env, http, "loopback ", args.pairs)

        # 2b. Simulated models (the simulator's own timing, sped up 10x).
        sim_env = {"ROUTEDECK_SIMULATE": "1", "ROUTEDECK_SIM_SPEED": "10"}
        sim_table = replace(table, routes={k: Cell(c.primary, c.fallback)
                                           for k, c in table.routes.items()})
        sim_decisions = [replace(d, cell=sim_table.routes[(d.task, d.priority)])
                         if (d.task, d.priority) in sim_table.routes else d for d in decisions]
        await pair_ratios(sim_table, sim_decisions, sim_env, None, "simulated",
                          max(10, args.pairs // 4))
    print("  target <= 1.1")


if __name__ == "__main__":
    asyncio.run(main())
