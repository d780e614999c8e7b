"""What the LLM judge adds to a run's wall time, and a workload's savings at quality, on the
loopback fake server. Prints its figures; asserts nothing.

    .venv/bin/python tests/bench/bench_judge.py [--n 20] [--workload tui/data/demo_workload.jsonl]

1. ``route --judge``: the wall time of a run (routed + baseline, in parallel), of the same run
   followed by the judge (two calls, both answer orders, in parallel), and of one judge call
   alone; the judge's added time over one judge round-trip (target <= 1.1: the two orders
   overlap), and the same with the two orders one after the other (what parallel saves).
   Loopback replies: answers ~80 ms, a judge call ~200 ms to its first byte.
2. ``bench WORKLOAD --execute --judge`` in a child process, every provider of the table on the
   loopback server: its one line of savings at quality, and how long the whole workload took.
   The judge there is SCRIPTED (it prefers the baseline on a fixed tenth of the prompts, the
   routed answer elsewhere): the figure checks the pipeline end to end, not any model.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))  # the project
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for fakeserver

from fakeserver import FakeServer, Reply  # noqa: E402

from tui.router.providers.registry import aclose_shared_http_client, base_url_env_var  # noqa: E402
from tui.router.run.execute import RunOptions, SidePlan, run_side_result  # noqa: E402
from tui.router.run.judge import judge_pair, judge_prompt  # noqa: E402
from tui.router.run.session import Session  # noqa: E402
from tui.router.table.load import load_table  # noqa: E402

KEY = "sk-bench-judge-0123456789"
PROMPT = "write a python function that reverses a linked list"


def judge_target(rec) -> str | None:
    text = "\n".join(str(m.get("content", "")) for m in (rec.json or {}).get("messages", []))
    if "<<<ANSWER A>>>" not in text:
        return None
    if "ROUTED-ANSWER" not in text:
        return "="
    return "A" if "<<<ANSWER A>>>\nROUTED-ANSWER" in text else "B"


def responder(rec):
    target = judge_target(rec)
    if target is None:
        who = "BASELINE-ANSWER" if rec.model == "gpt-5.2" else "ROUTED-ANSWER"
        return Reply.ok(f"{who} from {rec.model}: " + "word " * 30, first_delay=0.05,
                        delay=0.001, input_tokens=40, output_tokens=31)
    text = json.dumps(rec.json)
    prompt = text.split("<<<PROMPT>>>", 1)[-1].split("<<<END PROMPT>>>", 1)[0]
    baseline_wins = hashlib.sha256(prompt.encode()).digest()[0] % 10 == 0
    if target == "=":
        better = "tie"
    elif baseline_wins:
        better = "B" if target == "A" else "A"
    else:
        better = target
    return Reply.ok(json.dumps({"better": better, "reason": "scripted"}), first_delay=0.2,
                    input_tokens=400, output_tokens=20)


def real_env(server: FakeServer) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, provider in load_table(None).providers.items():
        if provider.kind == "simulated":
            continue
        url = server.anthropic_url if provider.kind == "anthropic" else server.openai_url
        env[base_url_env_var(name)] = url
        if provider.api_key_env:
            env[provider.api_key_env] = KEY
    return env


async def route_figures(server: FakeServer, n: int) -> None:
    table = load_table(None)
    session = Session(table=table, env=real_env(server))
    session.load_classifier()
    decision = session.decide(PROMPT)
    pair_ms, with_judge_ms, one_call_ms, sequential_ms = [], [], [], []
    for _ in range(n + 2):  # two warm-ups
        t0 = time.perf_counter()
        pair = await session.start(decision).wait()
        t1 = time.perf_counter()
        judgement = await judge_pair(pair, table, env=session.env)
        t2 = time.perf_counter()
        assert judgement.verdict is not None, judgement
        prompt = judge_prompt(table.judge.instructions, PROMPT, pair.routed.text,
                              pair.baseline.text)
        plan = SidePlan(table.baseline.model)
        t3 = time.perf_counter()
        await run_side_result("baseline", plan, prompt, table, RunOptions(env=session.env))
        t4 = time.perf_counter()
        await run_side_result("baseline", plan, prompt, table, RunOptions(env=session.env))
        t5 = time.perf_counter()
        pair_ms.append((t1 - t0) * 1000)
        with_judge_ms.append((t2 - t0) * 1000)
        one_call_ms.append((t4 - t3) * 1000)
        sequential_ms.append((t1 - t0 + t5 - t3) * 1000)
    pair_ms, with_judge_ms = pair_ms[2:], with_judge_ms[2:]
    one_call_ms, sequential_ms = one_call_ms[2:], sequential_ms[2:]
    med = statistics.median
    added = med(with_judge_ms) - med(pair_ms)
    print(f"1. route --judge on loopback ({n} runs, medians)")
    print(f"   run alone                       {med(pair_ms):7.1f} ms")
    print(f"   run + judge (2 orders parallel) {med(with_judge_ms):7.1f} ms")
    print(f"   one judge call alone            {med(one_call_ms):7.1f} ms")
    print(f"   added by the judge              {added:7.1f} ms = "
          f"{added / med(one_call_ms):.2f} judge round-trips (target <= 1.1)")
    print(f"   the orders one after the other  {med(sequential_ms) - med(pair_ms):7.1f} ms added "
          f"= {(med(sequential_ms) - med(pair_ms)) / med(one_call_ms):.2f} round-trips")
    await aclose_shared_http_client()


def workload_figures(server: FakeServer, workload: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ) | real_env(server) | {
            "ROUTEDECK_BENCH_DIR": tmp, "ROUTEDECK_LOG": str(Path(tmp) / "runs.sqlite3"),
        }
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "tui.cli", "bench", str(workload), "--execute", "--judge",
             "--concurrency", "8"],
            capture_output=True, env=env, timeout=1800, cwd=HERE.parents[2],
        )
        elapsed = time.perf_counter() - t0
    out = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    judged = sum(1 for r in server.requests if judge_target(r))
    print(f"\n2. bench {workload.name} --execute --judge on loopback (scripted judge), "
          f"exit {proc.returncode}, {elapsed:.1f} s, {judged} judge calls")
    for line in out[-3:]:
        print("   " + line)
    if proc.returncode:
        print(proc.stderr.decode("utf-8", "replace")[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--workload", type=Path,
                        default=HERE.parents[2] / "tui" / "data" / "demo_workload.jsonl")
    parser.add_argument("--skip-workload", action="store_true")
    args = parser.parse_args()
    with FakeServer() as server:
        server.respond(responder)
        asyncio.run(route_figures(server, args.n))
        if not args.skip_workload:
            server.requests.clear()
            workload_figures(server, args.workload)


if __name__ == "__main__":
    main()
