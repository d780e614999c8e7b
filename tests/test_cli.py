"""The command line as a user meets it: real processes, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakeserver import FakeServer, Reply

from tui.router.table.paths import default_routes_path

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, cwd=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        input=stdin,
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=180,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.toml"
    shutil.copyfile(default_routes_path(), path)
    return path


def test_help_lists_every_command():
    code, out, _ = run_cli("--help")
    assert code == 0
    for command in ("classify", "eval", "route", "bench"):
        assert command in out


def test_classify_json_has_the_documented_keys(routes):
    code, out, err = run_cli("classify", "Fix this: TypeError: 'NoneType' object is not subscriptable", "--json", "--routes", str(routes))
    assert code == 0, err
    data = json.loads(out)
    for key in ("task", "confidence", "top", "priority", "primary", "fallback", "reason", "classifier", "elapsed_ms"):
        assert key in data
    assert data["task"] == "code"
    assert 0.0 <= data["confidence"] <= 1.0
    assert len(data["top"]) == 3 and all(len(pair) == 2 for pair in data["top"])
    assert data["primary"].count("/") >= 1


def test_classify_reads_stdin_and_respects_a_given_priority(routes):
    code, out, err = run_cli(
        "classify", "-", "--priority", "quality", "--json", "--routes", str(routes),
        stdin=b"Solve for x: 3x + 7 = 22",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["task"] == "math"
    assert data["priority"] == "quality"
    assert data["primary"] == "openai/gpt-5.2"  # routes.toml: math × quality


def test_bad_input_is_a_clear_message_and_status_2(routes, tmp_path):
    code, _, err = run_cli("classify", "   ", "--routes", str(routes))
    assert code == 2 and "empty prompt" in err and "Traceback" not in err

    code, _, err = run_cli("classify", "hi", "--priority", "turbo", "--routes", str(routes))
    assert code == 2 and 'unknown priority "turbo"' in err

    broken = tmp_path / "broken.toml"
    broken.write_text(routes.read_text().replace('primary = "anthropic/claude-opus-4-6"', 'primary = "antropic/claude-opus-4-6"', 1))
    code, _, err = run_cli("classify", "hi", "--routes", str(broken))
    assert code == 2 and "Traceback" not in err
    assert 'unknown provider "antropic"' in err and "primary" in err and "broken.toml:" in err

    code, _, err = run_cli("eval", str(tmp_path / "missing.jsonl"), "--routes", str(routes))
    assert code == 2 and "missing.jsonl" in err and "Traceback" not in err


def test_a_megabyte_of_binary_junk_still_gets_a_result(routes):
    junk = bytes(range(256)) * 4096  # 1 MiB with every byte value, control characters included
    code, out, err = run_cli("classify", "-", "--json", "--routes", str(routes), stdin=junk)
    assert code == 0, err
    data = json.loads(out)
    assert data["task"] in {"code", "math", "extraction", "creative", "factual", "general"}
    assert "\x1b" not in out


def test_eval_reports_scores_and_names_unknown_labels(routes, tmp_path):
    labelled = tmp_path / "few.jsonl"
    rows = [
        {"prompt": "write a limerick about a cat who loves lasagna", "task_type": "creative"},
        {"prompt": "what is 17% of 2,340?", "task_type": "math"},
        {"prompt": "who was the first woman to win a Nobel prize", "task_type": "factual"},
        {"prompt": "def add(a, b): return a - b  # why does this give the wrong answer", "task_type": "code"},
    ]
    labelled.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, err = run_cli("eval", str(labelled), "--json", "--routes", str(routes))
    assert code == 0, err
    data = json.loads(out)
    for key in ("n", "accuracy", "macro_f1", "per_class", "confusion", "ece", "latency_ms"):
        assert key in data
    assert data["n"] == 4
    assert set(data["latency_ms"]) == {"p50", "p95", "p99"}
    assert data["confusion"]["creative"]["creative"] == 1

    labelled.write_text(json.dumps({"prompt": "hello", "task_type": "chitchat"}) + "\n")
    code, _, err = run_cli("eval", str(labelled), "--routes", str(routes))
    assert code == 2 and '"chitchat"' in err


def test_route_with_no_keys_runs_simulated_and_says_so(routes, tmp_path):
    log = tmp_path / "runs.sqlite3"
    code, out, err = run_cli(
        "route", "write a two-line poem about autumn", "--json", "--routes", str(routes),
        "--log", str(log), env={"ROUTEDECK_SIM_SPEED": "50"},
    )
    assert code == 0, err
    assert "simulat" in err
    data = json.loads(out)
    for side in ("routed", "baseline"):
        for key in ("model", "simulated", "ttft_ms", "total_ms", "input_tokens", "output_tokens", "cost_usd", "fallback_used", "error", "text"):
            assert key in data[side]
        assert data[side]["simulated"] is True
        assert "simulated" in data[side]["text"].lower()
        assert data[side]["output_tokens"] > 0
    assert data["decision"]["task"] == "creative"
    assert data["routed"]["cost_usd"] < data["baseline"]["cost_usd"]
    assert data["savings_usd"] == pytest.approx(data["baseline"]["cost_usd"] - data["routed"]["cost_usd"])
    assert log.exists()


def test_route_speaks_the_real_protocol_and_falls_back(server, routes, tmp_path):
    # The routed primary answers 503, its fallback streams; the baseline streams directly.
    server.route("gpt-5-mini", Reply.http(503, "overloaded"))
    server.route("gemini-3-flash-preview", Reply.ok("Use dict.get with a default."))
    server.route("gpt-5.2", Reply.ok("Baseline answer here."))
    secret = "sk-test-SECRET-abcdefghijklmnop"
    env = {
        "OPENAI_API_KEY": secret,
        "OPENAI_BASE_URL": server.openai_url,
        "GEMINI_API_KEY": secret,
        "GOOGLE_BASE_URL": server.openai_url,
    }
    code, out, err = run_cli(
        "route", "my python code raises KeyError on a dict lookup, how to fix", "--json",
        "--routes", str(routes), "--no-log", env=env,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["routed"]["simulated"] is False
    assert data["routed"]["fallback_used"] is True
    assert data["routed"]["model"] == "google/gemini-3-flash-preview"
    assert data["routed"]["text"] == "Use dict.get with a default."
    assert data["baseline"]["text"] == "Baseline answer here."
    assert secret not in out and secret not in err
    assert server.requests[0].headers["authorization"] == f"Bearer {secret}"


def test_route_shows_a_4xx_as_an_error_without_falling_back(server, routes):
    server.route("gpt-5-mini", Reply.http(401, "invalid api key {key}"))
    server.route("gpt-5.2", Reply.ok("fine"))
    secret = "sk-test-SECRET-abcdefghijklmnop"
    env = {"OPENAI_API_KEY": secret, "OPENAI_BASE_URL": server.openai_url}
    code, out, err = run_cli(
        "route", "refactor this javascript function to use async/await", "--json",
        "--routes", str(routes), "--no-log", env=env,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["routed"]["error"] and "401" in data["routed"]["error"]
    assert data["routed"]["fallback_used"] is False
    assert data["baseline"]["text"] == "fine"
    assert secret not in out and secret not in err


def test_bench_projects_savings_per_task(routes):
    workload = REPO / "tui" / "data" / "demo_workload.jsonl"
    code, out, err = run_cli("bench", str(workload), "--json", "--routes", str(routes), "--no-log")
    assert code == 0, err
    data = json.loads(out)
    assert data["n"] == sum(1 for line in workload.read_text().splitlines() if line.strip())
    assert set(data["by_task"]) <= {"code", "math", "extraction", "creative", "factual", "general"}
    assert sum(t["count"] for t in data["by_task"].values()) == data["n"]
    assert data["routed_usd"] < data["baseline_usd"]
    assert data["savings_pct"] == pytest.approx(100 * (data["baseline_usd"] - data["routed_usd"]) / data["baseline_usd"])


def test_bench_execute_resumes_without_running_twice(routes, tmp_path):
    workload = tmp_path / "w.jsonl"
    workload.write_text(
        "\n".join(json.dumps({"prompt": p}) for p in ("hello there", "2+2?", "haiku about tea")) + "\n"
    )
    env = {"ROUTEDECK_SIM_SPEED": "100", "ROUTEDECK_BENCH_DIR": str(tmp_path / "bench")}
    log = tmp_path / "runs.sqlite3"
    args = ("bench", str(workload), "--execute", "--json", "--routes", str(routes), "--log", str(log))
    code, out, err = run_cli(*args, env=env)
    assert code == 0, err
    first = json.loads(out)["measured"]
    assert first["n"] == 3 and first["simulated"] == 3
    code, out, err = run_cli(*args, env=env)
    assert code == 0, err
    assert "resuming: 3 of 3" in err
    assert json.loads(out)["measured"]["n"] == 3
    from tui.router.log.runlog import RunLog

    with RunLog(log) as runlog:
        assert runlog.totals().runs == 3  # the second invocation paid for nothing


@pytest.mark.parametrize("prompt", ["asdf qwer zxcv", "???", "xyz", "lorem ipsum dolor", "kjhsdf kjh"])
def test_a_prompt_with_no_evidence_goes_to_the_uncertain_route(routes, prompt):
    """Gibberish used to be decided with confidence (factual 0.96); now the classifier says it
    cannot read it, and the prompt goes where routes.toml sends uncertain prompts."""
    code, out, err = run_cli("classify", prompt, "--json", "--routes", str(routes))
    assert code == 0, err
    data = json.loads(out)
    assert data["confidence"] < 0.3
    assert "low confidence" in data["reason"] and data["reason"].endswith("→ baseline")
    assert "knows" in data["reason"]  # says how little of it the model recognised


@pytest.mark.parametrize("prompt, task", [
    ("write a poem about the sea", "creative"),
    ("what is the capital of peru", "factual"),
    ("hello", "general"),
    ("A farmer has 12 cows and buys 5 more. How many cows does he have?", "math"),
])
def test_a_clear_prompt_stays_certain(routes, prompt, task):
    code, out, err = run_cli("classify", prompt, "--json", "--routes", str(routes))
    assert code == 0, err
    data = json.loads(out)
    assert data["task"] == task and data["confidence"] >= 0.8
    assert "low confidence" not in data["reason"]


def test_bench_journal_is_kept_by_the_engine(routes, tmp_path, monkeypatch):
    """The journal that makes bench --execute resumable (tui/router/cost/journal.py): one per
    workload, routes and judge; a line cut short by a crash is skipped (that prompt runs again)."""
    from tui.router.cost.journal import journal_path, measured_totals, read_journal
    from tui.router.table.load import load_table

    monkeypatch.setenv("ROUTEDECK_BENCH_DIR", str(tmp_path / "bench"))
    workload = tmp_path / "w.jsonl"
    workload.write_text('{"prompt": "hi"}\n', encoding="utf-8")
    table = load_table(routes)
    path = journal_path(workload, table)
    assert path.parent == tmp_path / "bench"
    assert journal_path(workload, table, "openai/gpt-5.2") != path
    path.parent.mkdir(parents=True)
    path.write_text('{"index": 0, "routed_usd": 0.001, "baseline_usd": 0.004}\n{"index": 1, "rou',
                    encoding="utf-8")
    done = read_journal(path)
    assert list(done) == [0]
    measured = measured_totals([done[0]], path)
    assert measured["n"] == 1 and round(measured["savings_pct"], 6) == 75.0
