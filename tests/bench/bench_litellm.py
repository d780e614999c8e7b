"""What the RouteDeck callback adds to a LiteLLM Proxy request. Prints its figures; asserts nothing.

    .venv/bin/python tests/bench/bench_litellm.py [--n 300] [--proxy-n 100]

1. In process: ``RouteDeckCallback.async_pre_call_hook`` on a request for ``routedeck/auto``
   (read the last user message, classify, priority, cell, rewrite the model, headers in the
   metadata), for each prompt of tests/data/dev.jsonl (all different, so the classifier's LRU
   does not help). Wall and CPU time per call, p50/p95/p99.
2. Through the proxy (with --proxy-n > 0): ``litellm --config`` on the exported folder, every
   provider pointed at tests/fakeserver.py (in this process), non-streamed requests alternating
   between ``routedeck/auto`` and the concrete model it routes to, so both pay the same
   upstream; the difference of the medians is the callback's added latency as a client sees it.
Needs ``pip install -e ".[litellm]"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MASTER_KEY = "sk-bench-master-0123456789"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def line(name: str, values: list[float]) -> str:
    return (f"{name:<34} n={len(values):<4} p50={pct(values, 50):7.3f}  p95={pct(values, 95):7.3f}"
            f"  p99={pct(values, 99):7.3f}  max={max(values):7.3f} ms")


def prompts(n: int) -> list[str]:
    rows = [json.loads(x) for x in (ROOT / "tests/data/dev.jsonl").read_text().splitlines() if x]
    return [r["prompt"] for r in rows][:n]


def export(folder: Path, env: dict[str, str]):
    from tui.router.gateway.litellm_export import export_litellm
    from tui.router.table.load import load_table
    from tui.router.table.paths import default_routes_path

    table = load_table(default_routes_path())
    export_litellm(table, folder, env)
    return table


async def in_process(folder: Path, table, items: list[str]) -> None:
    from tui.router.gateway.litellm_callback import RouteDeckCallback

    t0 = time.perf_counter()
    cb = RouteDeckCallback(folder / "routes.toml", folder / "classifier.npz",
                           fingerprint=table.fingerprint)
    print(f"callback load (table + classifier, once per worker): "
          f"{(time.perf_counter() - t0) * 1000:.0f} ms")
    await cb.async_pre_call_hook(None, None, {"model": "routedeck/auto", "messages": [
        {"role": "user", "content": "warm up"}]}, "acompletion")
    wall, cpu = [], []
    for prompt in items:
        data = {"model": "routedeck/auto", "messages": [{"role": "user", "content": prompt}]}
        w, c = time.perf_counter(), time.thread_time()
        await cb.async_pre_call_hook(None, None, data, "acompletion")
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    print(line("pre_call_hook, wall", wall))
    print(line("pre_call_hook, CPU of this thread", cpu))


def through_proxy(folder: Path, env: dict[str, str], server, items: list[str], n: int) -> None:
    import httpx

    from tui.router.classifier.build import build_classifier
    from tui.router.table.decide import decide
    from tui.router.table.load import load_table

    port = _free_port()
    log = open(folder / "proxy.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("litellm")), "--config", "config.yaml", "--host",
         "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 180:
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        print(f"proxy ready in {time.monotonic() - t0:.1f} s")
        table = load_table(folder / "routes.toml")
        classifier = build_classifier(table)
        client = httpx.Client(base_url=url, timeout=60,
                              headers={"Authorization": f"Bearer {MASTER_KEY}"})
        auto, direct = [], []
        for i in range(n + 5):
            prompt = items[i % len(items)]
            concrete = decide(prompt, table, classifier).cell.primary
            for model, out in (("routedeck/auto", auto), (concrete, direct)):
                body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
                t = time.perf_counter()
                r = client.post("/v1/chat/completions", json=body)
                r.raise_for_status()
                if i >= 5:  # the first requests warm up connections
                    out.append((time.perf_counter() - t) * 1000)
        print(line("proxy, routedeck/auto", auto))
        print(line("proxy, the same model named", direct))
        print(f"added by the callback (p50 difference): "
              f"{statistics.median(auto) - statistics.median(direct):.2f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--proxy-n", type=int, default=100)
    args = ap.parse_args()
    from fakeserver import FakeServer

    from tui.router.providers.registry import base_url_env_var
    from tui.router.table.load import load_table
    from tui.router.table.paths import default_routes_path

    tmp = Path(tempfile.mkdtemp(prefix="bench-litellm-"))
    os.environ.setdefault("ROUTEDECK_CACHE_DIR", str(tmp / "cache"))
    items = prompts(args.n)
    with FakeServer() as server:
        env = {k: v for k, v in os.environ.items()
               if not k.upper().endswith(("_API_KEY", "_BASE_URL"))}
        env.update(LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOCAL_MODEL_COST_MAP="True")
        for name, p in load_table(default_routes_path()).providers.items():
            if p.kind != "simulated":
                env[base_url_env_var(name)] = (server.anthropic_url if p.kind == "anthropic"
                                               else server.openai_url)
                if p.api_key_env:
                    env[p.api_key_env] = "sk-bench-0123456789abcdef"
        folder = tmp / "export"
        table = export(folder, env)
        asyncio.run(in_process(folder, table, items))
        if args.proxy_n > 0:
            through_proxy(folder, env, server, items, args.proxy_n)


if __name__ == "__main__":
    main()
