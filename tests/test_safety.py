"""Issue 14: nothing lost, nothing leaked, nothing hangs (the engine and CLI side).

The matrices live in tests/safety_suite.py, shared with tests/bench/bench_safety.py (which runs
more trials and prints the counts); here each runs a few trials. Process-level cases (kill -9,
two savers at once, hostile argv, FIFOs) use real processes; providers are the loopback fake
server. Hangs are caught by bounds (subprocess timeouts), never by timing assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import pytest
import safety_suite as suite
from fakeserver import FakeServer, Reply

from tui.router.log.runlog import RunLog
from tui.router.sanitize import StreamRedactor, configured_secrets, redact
from tui.router.table.check import TableError
from tui.router.table.load import load_table
from tui.router.table.save import (
    ConflictError,
    dumps_table,
    merge_edits,
    save_table,
    save_table_result,
)
from tui.router.types import Cell, Timeouts

# --------------------------------------------------------------------------------------------
# 2. A bad run log
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["not SQLite (text)", "cut in half", "pages overwritten"])
def test_bad_run_log_is_moved_aside_and_a_fresh_one_started(tmp_path: Path, case: str) -> None:
    results = {name: (ok, detail) for name, ok, detail in suite.corrupt_logs(tmp_path)}
    ok, detail = results[case]
    assert ok, detail


def test_every_kind_of_bad_run_log_recovers(tmp_path: Path) -> None:
    bad = [(name, detail) for name, ok, detail in suite.corrupt_logs(tmp_path) if not ok]
    assert bad == []


def test_a_good_run_log_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    suite._valid_log(path, runs=5)
    with RunLog(path) as log:
        assert log.recovered_from is None and log.warning is None
        assert len(log.recent(10)) == 5
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []


def test_route_and_bench_go_on_with_a_bad_run_log_and_say_where_it_went(tmp_path: Path) -> None:
    routes = suite.routes_copy(tmp_path)
    log = tmp_path / "runs.sqlite3"
    log.write_bytes(b"garbage, not a database\n" * 50)
    run = suite.run_cli("route", "write a haiku", "--routes", str(routes), "--log", str(log),
                        "--simulate", "--json", env={"ROUTEDECK_SIM_SPEED": "50"})
    assert run.code == 0 and "Traceback" not in run.err, run.err
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("runs.sqlite3.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == b"garbage, not a database\n" * 50
    assert "warning" in run.err and str(aside[0]) in run.err
    with RunLog(log) as fresh:
        assert len(fresh.recent()) == 1  # the run went into the fresh log
    log.write_bytes(b"garbage again\n" * 50)
    workload = tmp_path / "w.jsonl"
    workload.write_text('{"prompt": "write a poem"}\n', "utf-8")
    run = suite.run_cli("bench", str(workload), "--routes", str(routes), "--log", str(log))
    assert run.code == 0 and "Traceback" not in run.err and "moved to" in run.err, run.err


# --------------------------------------------------------------------------------------------
# 3. Two saves at once
# --------------------------------------------------------------------------------------------


def test_two_processes_saving_at_once_lose_no_edit(tmp_path: Path) -> None:
    result = suite.concurrent_saves(tmp_path, trials=30)
    assert result.lost_edits == 0
    # Both loaded the same file before either saved: exactly one may win each time.
    assert result.both_saved == 0 and result.no_winner == 0
    assert result.conflicts == result.trials


def test_a_save_waits_for_the_lock_then_sees_the_change(tmp_path: Path) -> None:
    import fcntl

    path = suite.small_routes(tmp_path)
    mine = load_table(path).with_cell("code", "default", Cell("openai/mine"))
    fd = os.open(tmp_path / ".routes.toml.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another saver is in the middle of its save
    outcome: list[object] = []
    saver = threading.Thread(target=lambda: outcome.append(_try_save(mine)))
    saver.start()
    saver.join(0.3)
    assert saver.is_alive()  # waiting for the lock
    # The other saver replaces the file while it holds the lock, then lets go.
    theirs = load_table(path).with_cell("math", "default", Cell("openai/theirs"))
    (tmp_path / "new.toml").write_text(dumps_table(theirs), "utf-8")
    os.replace(tmp_path / "new.toml", path)
    os.close(fd)
    saver.join(20)
    assert outcome and isinstance(outcome[0], ConflictError)
    assert load_table(path).cell("math", "default").primary == "openai/theirs"


def _try_save(table):
    try:
        return save_table(table)
    except ConflictError as exc:
        return exc


# --------------------------------------------------------------------------------------------
# 4. Keys
# --------------------------------------------------------------------------------------------


def test_a_table_that_fails_the_key_check_is_never_cached(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ROUTEDECK_CACHE_DIR", str(cache))
    path = suite.routes_copy(
        tmp_path, lambda d: d["providers"]["openai"].update(api_key=suite.PASTED_KEY)
    )
    assert path.stat().st_size >= 32 * 1024  # big enough to be cached, were it valid
    with pytest.raises(TableError, match="holds a value"):
        load_table(path)
    with pytest.raises(TableError):
        load_table(path)  # the second load must not find it cached either
    cached = [p.read_bytes() for p in cache.rglob("*") if p.is_file()]
    assert not any(suite.PASTED_KEY.encode() in data for data in cached)
    good = suite.routes_copy(tmp_path, name="good.toml")
    load_table(good)
    assert any(cache.rglob("*.json"))  # the cache works for a valid table


def test_configured_key_names_flow_into_redaction() -> None:
    table = load_table(None)
    from dataclasses import replace

    from tui.router.types import Provider

    providers = dict(table.providers)
    providers["myllm"] = Provider("myllm", "openai-compatible", "", "MY_LLM_CRED")
    table = replace(table, providers=providers)
    secrets = configured_secrets({"MY_LLM_CRED": "plainvalue1", "HOME": "/root"}, table)
    assert "plainvalue1" in secrets and "/root" not in secrets
    assert redact("key=plainvalue1!", secrets) == "key=***!"


@pytest.mark.parametrize("key", ["Zq7mPlainCredValue93x", "sk-abcdefghijklmnop123456"])
def test_stream_redactor_catches_a_key_split_anywhere(key: str) -> None:
    text = f"Here it is: {key}. And again {key}"
    for cut in range(1, len(text)):
        for cut2 in (cut, min(len(text), cut + 3)):
            r = StreamRedactor([key])
            out = r.feed(text[:cut]) + r.feed(text[cut:cut2]) + r.feed(text[cut2:]) + r.flush()
            assert key not in out and key[:8] not in out, (cut, cut2, out)
            assert out == "Here it is: ***. And again ***"


def test_stream_redactor_lets_plain_text_through_at_once() -> None:
    r = StreamRedactor(["Zq7mPlainCredValue93x"])
    assert r.feed("Hello there, ") == "Hello there, "
    assert r.feed("world") == "world"


async def test_an_echoed_custom_key_is_redacted_from_the_answer_and_the_log(tmp_path: Path,
                                                                        monkeypatch) -> None:
    from tui.router.run.session import Session

    key = suite.CUSTOM_KEY
    with FakeServer() as server:
        routes = suite.routes_copy(tmp_path, suite._custom_provider(server))
        half = len(key) // 2
        server.route("echo", Reply.ok(chunks=("key: ", key[:half], key[half:], " done")))
        server.route("gpt-5.2", Reply.ok(chunks=("baseline ", key, " end")))
        env = {"MY_LLM_CRED": key, "OPENAI_API_KEY": suite.OPENAI_KEY}
        with RunLog(tmp_path / "runs.sqlite3") as log:
            session = Session(table=load_table(routes), env=env, runlog=log)
            decision = session.decide(f"my key is {key}, write a function")
            pair = await asyncio.wait_for(session.start(decision).wait(), 30)
            session.record(pair)
            from tui.router.providers.registry import aclose_shared_http_client

            await aclose_shared_http_client()
    assert pair.routed.text == "key: *** done" and pair.baseline.text == "baseline *** end"
    stored = (tmp_path / "runs.sqlite3").read_bytes()
    wal = tmp_path / "runs.sqlite3-wal"
    stored += wal.read_bytes() if wal.exists() else b""
    assert key.encode() not in stored


def test_key_leak_sweep_finds_no_key_anywhere(tmp_path: Path) -> None:
    result = suite.key_leak_sweep(tmp_path)
    assert result.places > 10
    assert result.leaks == []


# --------------------------------------------------------------------------------------------
# 5. Hostile input
# --------------------------------------------------------------------------------------------

QUICK_BAD_INPUTS = [
    "route: invalid UTF-8 in argv",
    "route --no-log: invalid UTF-8 in argv",
    "classify: invalid UTF-8 in argv",
    "--routes /dev/zero",
    "--routes FIFO",
    "--routes 9 MiB",
    "rule ^(a+)+$ on 40 a's",
    "rule with look-behind refused at load",
    "bench /dev/zero",
    "eval FIFO",
]


@pytest.mark.parametrize("case", QUICK_BAD_INPUTS)
def test_bad_input_ends_cleanly(tmp_path: Path, case: str) -> None:
    [(name, clean, detail)] = suite.bad_input_matrix(tmp_path, [case])
    assert clean, detail


def test_invalid_utf8_prompt_is_cleaned_at_the_edge(tmp_path: Path) -> None:
    routes = suite.routes_copy(tmp_path)
    run = suite.run_cli("route", suite.BAD_UTF8, "--routes", str(routes), "--no-log",
                        "--simulate", "--json", env={"ROUTEDECK_SIM_SPEED": "50"})
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["routed"]["status"] == "ok" and data["baseline"]["status"] == "ok"
    assert data["routed"]["error"] is None


def test_rule_re2_cannot_compile_is_refused_with_its_line_and_key(tmp_path: Path) -> None:
    def edit(doc):
        doc["tasks"]["code"]["rules"] = ["(a)\\1"]

    path = suite.routes_copy(tmp_path, edit)
    with pytest.raises(TableError) as err:
        load_table(path)
    [problem] = err.value.problems
    assert problem.key == "tasks.code.rules[0]" and problem.line is not None
    assert "RE2" in problem.message


# --------------------------------------------------------------------------------------------
# 6. The total time limit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["drip past total", "slow first token past total"])
def test_total_time_limit_ends_a_slow_side(case: str) -> None:
    [(name, right, detail)] = suite.fault_matrix([case])
    assert right, detail


def test_timeouts_total_is_read_and_checked(tmp_path: Path) -> None:
    assert Timeouts().total == 300.0
    assert load_table(None).timeouts.total == 300.0

    def edit(value):
        return lambda d: d["timeouts"].update(total=value)

    assert load_table(suite.routes_copy(tmp_path, edit(12.5), "a.toml")).timeouts.total == 12.5
    with pytest.raises(TableError, match=r"timeouts.total: must be greater than 0"):
        load_table(suite.routes_copy(tmp_path, edit(0), "b.toml"))


def test_the_fault_matrix_ends_every_fault_right() -> None:
    wrong = [(n, d) for n, ok, d in suite.fault_matrix() if not ok]
    assert wrong == []


# --------------------------------------------------------------------------------------------
# 7. Killed saves, no-op saves, merge, cancelled, --json attempts
# --------------------------------------------------------------------------------------------


def test_kill_9_during_saves_leaves_a_complete_file_and_no_temp_files(tmp_path: Path) -> None:
    result = suite.kill_saves(tmp_path, trials=6)
    assert result.intact == result.trials == 6, result.problems
    assert result.orphaned_after_next_save == 0


def test_a_save_removes_temp_files_that_killed_saves_left(tmp_path: Path) -> None:
    path = suite.small_routes(tmp_path)
    for name in (".routes.toml.x1y2z3.tmp", ".routes.toml.bak.q9w8e7.tmp"):
        (tmp_path / name).write_bytes(b"half a fi")
    other = tmp_path / ".other.toml.abc.tmp"
    other.write_bytes(b"not ours")
    result = save_table_result(load_table(path).with_cell("code", "default", Cell("openai/x")))
    assert result.written and result.removed_temp_files == 2
    assert suite.temp_files(tmp_path) == [other]


def test_saving_an_unchanged_table_writes_nothing_and_says_so(tmp_path: Path) -> None:
    path = suite.small_routes(tmp_path)
    table = load_table(path)
    edited = save_table(table.with_cell("code", "default", Cell("openai/x")))
    bak = tmp_path / "routes.toml.bak"
    before = (path.stat().st_ino, path.stat().st_mtime_ns, bak.read_bytes())
    result = save_table_result(edited)
    assert not result.written and result.path == path
    assert (path.stat().st_ino, path.stat().st_mtime_ns, bak.read_bytes()) == before
    assert result.table.fingerprint == edited.fingerprint
    # A hand-written file (comments, its own layout) saved with no edit is left as it is.
    path.write_text("# my notes\n" + path.read_text("utf-8"), "utf-8")
    hand = load_table(path)
    assert not save_table_result(hand).written
    assert path.read_text("utf-8").startswith("# my notes")


def test_merge_edits_applies_my_cells_onto_the_new_file(tmp_path: Path) -> None:
    base = load_table(suite.small_routes(tmp_path))
    mine = base.with_cell("code", "default", Cell("openai/mine-code"))
    mine = mine.with_cell("math", "default", Cell("openai/mine-math"))
    mine = mine.with_cell("factual", "latency", Cell("openai/same"))
    theirs = base.with_cell("math", "default", Cell("openai/their-math"))
    theirs = theirs.with_cell("creative", "default", Cell("openai/their-creative"))
    theirs = theirs.with_cell("factual", "latency", Cell("openai/same"))
    result = merge_edits(base, mine, theirs)
    t = result.table
    assert t.cell("code", "default").primary == "openai/mine-code"
    assert t.cell("math", "default").primary == "openai/mine-math"  # mine wins, reported
    assert t.cell("creative", "default").primary == "openai/their-creative"  # theirs kept
    assert result.applied == [("code", "default"), ("math", "default")]
    assert result.conflicts == [("math", "default")]
    assert t.fingerprint == theirs.fingerprint and t.path == theirs.path


def test_merge_edits_reports_a_cell_the_new_file_no_longer_has(tmp_path: Path) -> None:
    from dataclasses import replace

    base = load_table(suite.small_routes(tmp_path))
    mine = base.with_cell("code", "latency", Cell("openai/mine"))
    routes = {k: v for k, v in base.routes.items() if k != ("code", "latency")}
    theirs = replace(base, routes=routes)
    result = merge_edits(base, mine, theirs)
    assert result.applied == [] and result.conflicts == [("code", "latency")]
    assert ("code", "latency") not in result.table.routes


def test_merge_then_save_against_the_changed_file(tmp_path: Path) -> None:
    path = suite.small_routes(tmp_path)
    base = load_table(path)
    mine = base.with_cell("code", "default", Cell("openai/mine"))
    save_table(load_table(path).with_cell("math", "default", Cell("openai/theirs")))
    with pytest.raises(ConflictError):
        save_table(mine)
    merged = merge_edits(base, mine, load_table(path)).table
    save_table(merged)
    final = load_table(path)
    assert final.cell("code", "default").primary == "openai/mine"
    assert final.cell("math", "default").primary == "openai/theirs"


def test_a_cancelled_run_is_stored_as_cancelled_not_as_an_error(tmp_path: Path) -> None:
    from dataclasses import replace

    from test_runlog import pair

    p = pair()
    p = replace(p, routed=replace(p.routed, status="cancelled", error=None))
    with RunLog(tmp_path / "runs.sqlite3") as log:
        run_id = log.record(p)
        rec = log.get(run_id)
        assert rec is not None
        assert rec.routed.status == "cancelled" and rec.routed.error is None
        assert rec.baseline.status == "ok"
        assert log.avg_output_tokens_by_task("routed") == {}  # a cancelled side is no sample


def test_route_json_says_which_attempts_failed_and_what_was_discarded(tmp_path: Path) -> None:
    with FakeServer() as server:
        routes = suite.routes_copy(tmp_path, suite._custom_provider(server))
        server.route("echo", Reply.reset(after=2, chunks=("half ", "an ", "answer ", "lost")))
        server.route("gpt-5-mini", Reply.ok("the fallback answer"))
        server.route("gpt-5.2", Reply.ok("baseline answer"))
        run = suite.run_cli("route", "write a function", "--routes", str(routes), "--no-log",
                            "--json", env={"MY_LLM_CRED": "x" * 12, "OPENAI_API_KEY": "k" * 12})
    assert run.code == 0, run.err
    routed = json.loads(run.out)["routed"]
    assert routed["status"] == "ok" and routed["fallback_used"]
    assert [(a["role"], a["outcome"]) for a in routed["attempts"]] == [
        ("primary", "failed"), ("fallback", "ok")
    ]
    assert routed["failed_attempts"] == 1 and routed["attempts"][0]["error"]
    assert routed["discarded_text"] == "half an "
    assert routed["text"] == "the fallback answer"
