"""The run log: round trip, private file, schema version, concurrent writers, totals, verdicts."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui.router.log import runlog as runlog_mod
from tui.router.log.runlog import SCHEMA_VERSION, RunLog, RunLogError, default_path
from tui.router.types import (
    AttemptSummary,
    Cell,
    Classification,
    Decision,
    PairResult,
    RunResult,
)

KEY = "sk-test-0123456789abcdef"


def side(side, model, cost, *, out=50, error=None, text="answer", attempts=None, **kw):
    return RunResult(
        side=side,
        model=model,
        simulated=False,
        text=text,
        ttft_ms=120.5,
        total_ms=900.0,
        input_tokens=30,
        output_tokens=out,
        usage_estimated=False,
        cost_usd=cost,
        error=error,
        attempts=attempts or (AttemptSummary(model, "primary", False, "ok", 30, out, cost),),
        **kw,
    )


def pair(task="code", routed_cost=0.001, baseline_cost=0.01, prompt="fix my bug", **kw):
    c = Classification(
        task, 0.82, ((task, 0.82), ("general", 0.1)), "local", "local classifier", 3.5
    )
    d = Decision(
        prompt,
        c,
        task,
        "default",
        "default",
        Cell("openai/gpt-5-mini", "anthropic/claude-haiku-4-5", 800),
        False,
        f"{task}/default",
    )
    return PairResult(
        decision=d,
        routed=side("routed", "openai/gpt-5-mini", routed_cost, **kw),
        baseline=side("baseline", "openai/gpt-5.2", baseline_cost),
        wall_ms=950.0,
    )


@pytest.fixture
def log(tmp_path):
    with RunLog(tmp_path / "runs.sqlite3") as rl:
        yield rl


def test_round_trip(log):
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    attempts = (
        AttemptSummary("openai/gpt-5-mini", "primary", False, "failed", 0, 0, 0.0, "HTTP 503"),
        AttemptSummary(
            "anthropic/claude-haiku-4-5",
            "fallback",
            True,
            "ok",
            30,
            50,
            0.0004,
            None,
            cached_tokens=10,
            usage_estimated=True,
        ),
    )
    p = pair(
        attempts=attempts,
        fallback_used=True,
        fallback_reason="primary failed: HTTP 503",
        hedged=True,
        discarded_text="half",
    )
    run_id = log.record(p, when=when)
    rec = log.get(run_id)
    assert rec is not None
    assert rec.id == run_id and rec.created_at == when
    assert rec.prompt == "fix my bug" and rec.task == "code" and rec.priority == "default"
    assert rec.confidence == pytest.approx(0.82) and rec.classifier == "local"
    assert rec.cell_primary == "openai/gpt-5-mini" and rec.cell_hedge_after_ms == 800
    assert not rec.uncertain and rec.wall_ms == 950.0
    r = rec.routed
    assert (r.model, r.cost_usd, r.ttft_ms, r.total_ms) == (
        "openai/gpt-5-mini",
        0.001,
        120.5,
        900.0,
    )
    assert r.fallback_used and r.hedged and r.fallback_reason == "primary failed: HTTP 503"
    assert r.attempts == attempts and r.discarded_text == "half" and r.text == "answer"
    assert rec.baseline.model == "openai/gpt-5.2" and rec.baseline.cost_usd == 0.01
    assert rec.savings_usd == pytest.approx(0.009)
    assert rec.verdict is None


def test_recent_newest_first_and_by_task(log):
    ids = [log.record(pair(task=t)) for t in ("code", "math", "code")]
    assert [r.id for r in log.recent()] == ids[::-1]
    assert [r.id for r in log.recent(task="code")] == [ids[2], ids[0]]
    assert len(log.recent(limit=1)) == 1


def test_totals_and_savings(log):
    log.record(pair(routed_cost=0.001, baseline_cost=0.01))
    log.record(pair(routed_cost=0.003, baseline_cost=0.01, task="math"))
    log.record(pair(routed_cost=None, baseline_cost=0.01))  # unknown price: not in the sums
    t = log.totals()
    assert (t.runs, t.priced_runs) == (3, 2)
    assert t.routed_cost_usd == pytest.approx(0.004)
    assert t.baseline_cost_usd == pytest.approx(0.02)
    assert t.savings_pct == pytest.approx(80.0)
    tc = log.totals(task="code")
    assert (tc.runs, tc.priced_runs) == (2, 1) and tc.savings_pct == pytest.approx(90.0)
    empty = log.totals(task="nothing")
    assert empty.runs == 0 and empty.savings_pct is None


def test_avg_output_tokens_by_task(log):
    log.record(pair(task="code", out=100))  # routed 100, baseline 50
    log.record(pair(task="code", out=200))  # routed 200, baseline 50
    log.record(pair(task="math", out=10, error="boom"))  # routed failed: left out
    assert log.avg_output_tokens_by_task() == {"code": pytest.approx(100.0), "math": 50.0}
    assert log.avg_output_tokens_by_task(side="routed") == {"code": 150.0}


def test_verdicts(log):
    a = log.record(pair())
    b = log.record(pair())
    log.set_verdict(a, "routed")
    log.set_verdict(b, "tie")
    log.set_verdict(b, "baseline")  # changing one's mind replaces the verdict
    assert log.get(a).verdict == "routed" and log.get(b).verdict == "baseline"
    assert log.verdict_counts() == {"routed": 1, "tie": 0, "baseline": 1}
    with pytest.raises(ValueError):
        log.set_verdict(a, "better")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        log.set_verdict(9999, "tie")


def test_file_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        path = tmp_path / "sub" / "runs.sqlite3"
        with RunLog(path) as rl:
            rl.record(pair())
            for p in (path, Path(f"{path}-wal")):
                if p.exists():
                    assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    finally:
        os.umask(old)


def test_an_existing_world_readable_file_is_tightened(tmp_path):
    path = tmp_path / "runs.sqlite3"
    path.touch()
    path.chmod(0o644)
    RunLog(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_schema_version_wal_and_newer_schema_refused(tmp_path):
    path = tmp_path / "runs.sqlite3"
    with RunLog(path) as rl:
        assert rl.schema_version == SCHEMA_VERSION >= 1
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(RunLogError, match="newer"):
        RunLog(path)


def test_migrations_run_from_an_older_version(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite3"
    RunLog(path).close()
    extra = ["ALTER TABLE runs ADD COLUMN note TEXT"]
    monkeypatch.setattr(runlog_mod, "MIGRATIONS", [*runlog_mod.MIGRATIONS, extra])
    monkeypatch.setattr(runlog_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with RunLog(path) as rl:
        assert rl.schema_version == SCHEMA_VERSION + 1
        rl.record(pair())  # still writable


def test_keys_are_never_stored(tmp_path):
    path = tmp_path / "runs.sqlite3"
    p = pair(
        prompt=f"my key is {KEY}, and Bearer abcdefghijklmnop",
        error=f"HTTP 401: {KEY}",
        text="the custom secret hunter2-long-value",
    )
    with RunLog(path) as rl:
        run_id = rl.record(p, secrets=["hunter2-long-value"])
        rec = rl.get(run_id)
    assert KEY not in rec.prompt and "abcdefghijklmnop" not in rec.prompt
    assert KEY not in (rec.routed.error or "")
    assert "hunter2-long-value" not in rec.routed.text
    raw = path.read_bytes() + (
        Path(f"{path}-wal").read_bytes() if Path(f"{path}-wal").exists() else b""
    )
    assert KEY.encode() not in raw and b"hunter2-long-value" not in raw


def test_default_path_and_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEDECK_LOG", str(tmp_path / "from-env.sqlite3"))
    assert default_path() == tmp_path / "from-env.sqlite3"
    with RunLog() as rl:
        assert rl.path == tmp_path / "from-env.sqlite3"
    monkeypatch.delenv("ROUTEDECK_LOG")
    p = default_path()
    assert p.name == "runs.sqlite3" and "routedeck" in str(p)


def test_concurrent_writers_threads(tmp_path):
    path = tmp_path / "runs.sqlite3"
    errors = []

    def writer(n):
        try:
            with RunLog(path) as rl:  # one connection per thread, as separate processes would
                for _ in range(n):
                    rl.record(pair())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(40,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with RunLog(path) as rl:
        assert rl.totals().runs == 160


def test_one_log_shared_between_threads(tmp_path):
    with RunLog(tmp_path / "runs.sqlite3") as rl:
        threads = [
            threading.Thread(target=lambda: [rl.record(pair()) for _ in range(25)])
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert rl.totals().runs == 100


def test_concurrent_writers_processes(tmp_path):
    path = tmp_path / "runs.sqlite3"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_runlog import pair
        from tui.router.log.runlog import RunLog
        with RunLog({str(path)!r}) as rl:
            for _ in range(50):
                rl.record(pair())
        """
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, cwd=root, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with RunLog(path) as rl:
        assert rl.totals().runs == 150
        assert rl.schema_version == SCHEMA_VERSION


def test_environment_keys_are_redacted_without_being_passed(tmp_path, monkeypatch):
    monkeypatch.setenv("SOMEPROVIDER_API_KEY", "plainvalue-without-key-shape")
    with RunLog(tmp_path / "runs.sqlite3") as rl:
        run_id = rl.record(pair(prompt="echo plainvalue-without-key-shape please"))
        assert "plainvalue-without-key-shape" not in rl.get(run_id).prompt


def test_a_log_from_before_the_llm_classifier_columns_is_migrated_and_keeps_its_runs(tmp_path):
    """Migration 3 adds the LLM classifier's call; runs stored before it read as "none"."""
    import dataclasses
    import sqlite3

    import tui.router.log.runlog as runlog_mod
    from tui.router.types import LLMCall

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for statements in runlog_mod.MIGRATIONS[:2]:
        for statement in statements:
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with RunLog(path) as rl:
        old_id = rl.record(pair())  # written by this version into a migrated file
        assert rl.schema_version == SCHEMA_VERSION >= 3
        assert rl.get(old_id).classifier_llm is None
        p = pair()
        call = LLMCall("openai/gpt-5-nano", "ok", 412.0, 300, 1, False, 0.0000154, 320)
        c = dataclasses.replace(p.decision.classification, classifier="llm", llm=call)
        new_id = rl.record(dataclasses.replace(p, decision=dataclasses.replace(p.decision,
                                                                              classification=c)))
        got = rl.get(new_id).classifier_llm
    assert got == {"model": "openai/gpt-5-nano", "outcome": "ok", "ms": 412.0,
                   "input_tokens": 300, "output_tokens": 1, "cost_usd": 0.0000154}
