"""``route --judge`` and ``bench --execute --judge`` as a user runs them: real processes against
the loopback fake server, every provider of the table pointed at it, so no answer is simulated.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fakeserver import FakeServer, Reply
from test_cli import run_cli

from tui.router.log.runlog import RunLog
from tui.router.table.load import load_table
from tui.router.table.paths import default_routes_path

KEY = "sk-test-JUDGE-abcdefghijklmnop"
BASELINE_MODEL = "gpt-5.2"


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.toml"
    shutil.copyfile(default_routes_path(), path)
    return path


def real_env(server: FakeServer) -> dict[str, str]:
    """Every provider of the table real, on the fake server (keys set, base URLs pointed)."""
    from tui.router.providers.registry import base_url_env_var

    env: dict[str, str] = {}
    for name, provider in load_table(None).providers.items():
        if provider.kind == "simulated":
            continue
        url = server.anthropic_url if provider.kind == "anthropic" else server.openai_url
        env[base_url_env_var(name)] = url
        if provider.api_key_env:
            env[provider.api_key_env] = KEY
    return env


def judge_target(rec) -> str | None:
    """In a judge request: which label the routed answer has ("=" when both answers are the
    baseline's: the prompt went to the baseline); None for any other request."""
    text = "\n".join(str(m.get("content", "")) for m in (rec.json or {}).get("messages", []))
    if "<<<ANSWER A>>>" not in text:
        return None
    if "ROUTED-ANSWER" not in text:
        return "="
    return "A" if "<<<ANSWER A>>>\nROUTED-ANSWER" in text else "B"


def responder(baseline_wins_when: str = "\x00"):
    """Answers name their side; the judge prefers the routed answer, except on prompts that
    contain ``baseline_wins_when``, where it prefers the baseline's (in both orders)."""

    def respond(rec):
        target = judge_target(rec)
        if target is None:
            who = "BASELINE-ANSWER" if rec.model == BASELINE_MODEL else "ROUTED-ANSWER"
            return Reply.ok(f"{who} from {rec.model}.", input_tokens=50, output_tokens=30)
        text = json.dumps(rec.json)
        if target == "=":
            better = "tie"
        elif baseline_wins_when in text:
            better = "B" if target == "A" else "A"
        else:
            better = target
        return Reply.ok(json.dumps({"better": better, "reason": "Judged on the loopback."}),
                        input_tokens=300, output_tokens=20)

    return respond


def test_route_judge_json_adds_the_verdict_and_its_cost_apart(server, routes, tmp_path):
    server.respond(responder())
    log = tmp_path / "runs.sqlite3"
    code, out, err = run_cli(
        "route", "refactor this javascript function to use async/await", "--judge", "--json",
        "--routes", str(routes), "--log", str(log), env=real_env(server),
    )
    assert code == 0, err
    data = json.loads(out)
    judge = data["judge"]
    assert set(judge) == {"model", "verdict", "consistent", "reason", "cost_usd", "error"}
    assert judge["model"] == "openai/gpt-5.2"
    assert (judge["verdict"], judge["consistent"], judge["error"]) == ("routed", True, None)
    assert judge["reason"] == "Judged on the loopback."
    assert judge["cost_usd"] > 0
    # The savings are the runs' alone.
    assert data["savings_usd"] == pytest.approx(
        data["baseline"]["cost_usd"] - data["routed"]["cost_usd"])
    judged = [r for r in server.requests if judge_target(r)]
    assert len(judged) == 2
    assert KEY not in out and KEY not in err
    with RunLog(log) as runlog:
        record = runlog.recent(1)[0]
        assert record.judge.verdict == "routed"
        assert runlog.judge_totals().cost_usd == pytest.approx(judge["cost_usd"])


def test_route_judge_with_another_model_and_the_text_output(server, routes):
    server.respond(responder())
    code, out, err = run_cli(
        "route", "refactor this javascript function to use async/await",
        "--judge", "anthropic/claude-opus-4-6", "--routes", str(routes), "--no-log",
        env=real_env(server),
    )
    assert code == 0, err
    assert "judge anthropic/claude-opus-4-6: the routed answer is better" in out
    assert "(not in the savings)" in out
    assert {r.model for r in server.requests if judge_target(r)} == {"claude-opus-4-6"}


def test_route_judge_without_a_key_does_not_run_and_says_why(server, routes):
    code, out, err = run_cli(
        "route", "write a two-line poem about autumn", "--judge", "--json",
        "--routes", str(routes), "--no-log", env={"ROUTEDECK_SIM_SPEED": "50"},
    )
    assert code == 0, err
    judge = json.loads(out)["judge"]
    assert judge["verdict"] is None and judge["cost_usd"] is None
    assert "no OPENAI_API_KEY in the environment" in judge["error"]
    assert server.requests == []


def test_route_judge_401_leaves_the_run_alone(server, routes):
    def respond(rec):
        if judge_target(rec):
            return Reply.http(401, "Incorrect API key provided: {key}")
        return responder()(rec)

    server.respond(respond)
    code, out, err = run_cli(
        "route", "refactor this javascript function to use async/await", "--judge", "--json",
        "--routes", str(routes), "--no-log", env=real_env(server),
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["routed"]["text"].startswith("ROUTED-ANSWER")
    assert data["judge"]["verdict"] is None and "401" in data["judge"]["error"]
    assert KEY not in out


def test_bench_execute_judge_gives_savings_at_quality(server, routes, tmp_path):
    workload = tmp_path / "w.jsonl"
    prompts = [
        "refactor this javascript function to use async/await",
        "write a python function that reverses a linked list",
        "solve the integral of x^2 * sin(x) dx step by step",
        "write a haiku about autumn rain",
    ]
    workload.write_text("\n".join(json.dumps({"prompt": p}) for p in prompts) + "\n")
    server.respond(responder(baseline_wins_when="integral"))
    env = real_env(server) | {"ROUTEDECK_BENCH_DIR": str(tmp_path / "bench")}
    args = ("bench", str(workload), "--execute", "--judge", "--routes", str(routes),
            "--log", str(tmp_path / "runs.sqlite3"))
    code, out, err = run_cli(*args, "--json", env=env)
    assert code == 0, err
    data = json.loads(out)
    quality = data["quality"]
    assert quality["judge_model"] == "openai/gpt-5.2"
    assert quality["n_judged"] == 4
    assert quality["win_or_tie_pct"] == pytest.approx(75.0)
    assert quality["by_task"]["math"] == {"n": 1, "win_or_tie_pct": 0.0}
    assert quality["by_task"]["code"] == {"n": 2, "win_or_tie_pct": 100.0}
    assert quality["judge_cost_usd"] > 0
    assert data["measured"]["simulated"] == 0
    assert len([r for r in server.requests if judge_target(r)]) == 8
    # Text output (the journal resumes: nothing runs or is judged twice).
    before = len(server.requests)
    code, out, err = run_cli(*args, env=env)
    assert code == 0, err
    assert len(server.requests) == before
    line = " ".join(out.split())
    saved = data["measured"]["savings_pct"]
    assert (f"routing saved {saved:.0f}% of the cost; the judge found the routed answer as good "
            "or better in 75% of 4 prompts (") in line
    assert "math 0%" in line and "code 100%" in line
    assert "not counted in the savings" in line


def test_bench_judge_needs_execute(routes):
    code, _, err = run_cli("bench", str(routes), "--judge", "--routes", str(routes))
    assert code == 2
    assert "--judge needs --execute" in err
