"""Issue 14's suite, "nothing lost, nothing leaked, nothing hangs", as code anyone can rerun.

Shared by tests/test_safety.py (a few trials each, quick) and tests/bench/bench_safety.py (more
trials, prints the counts). Everything is bounded (every loop has a trial count, every process a
timeout) and stays on the machine (providers are tests/fakeserver.py on 127.0.0.1).

    fault_matrix()                     provider faults -> (case, right?, detail)
    bad_input_matrix(folder)           hostile CLI input -> (case, clean?, detail)
    kill_saves(folder, trials)         kill -9 during saves -> SaveKills
    concurrent_saves(folder, trials)   two processes saving at once -> ConcurrentSaves
    corrupt_logs(folder)               bad run logs -> (case, recovered?, detail)
    key_leak_sweep(folder)             keys in stdout, stderr, run log, cache -> KeyLeaks

A case is "clean" when the command ended (no hang) with status 0, 1 or 2, printed no traceback,
and, for status 2, said why on stderr.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import tomli_w
from fakeserver import FakeServer, Reply, closed_port_url

from tui.router.run.execute import RunOptions, run_side
from tui.router.run.metrics import LiveMetrics
from tui.router.table.paths import default_routes_path
from tui.router.types import (
    Baseline,
    Cell,
    ClassifierSettings,
    Provider,
    RoutingTable,
    RunResult,
    Timeouts,
)

REPO = Path(__file__).resolve().parent.parent
HANG_S = 60.0  # a command still running after this long counts as a hang

# ---------------------------------------------------------------------------------------------
# Running the CLI
# ---------------------------------------------------------------------------------------------


@dataclass
class CliRun:
    code: int | None  # None: it hung and was killed
    out: str
    err: str

    @property
    def clean(self) -> bool:
        if self.code is None or self.code not in (0, 1, 2):
            return False
        if "Traceback" in self.err:
            return False
        return self.code != 2 or bool(self.err.strip())


def run_cli(
    *args: str | bytes, stdin: bytes | None = None, env: dict[str, str] | None = None,
    timeout: float = HANG_S,
) -> CliRun:
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *args], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=REPO,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return CliRun(None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    return CliRun(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


# ---------------------------------------------------------------------------------------------
# 1. Provider faults
# ---------------------------------------------------------------------------------------------

PRIMARY = "openai/gpt-5-mini"
FALLBACK = "anthropic/claude-haiku-4-5"
FALLBACK_TEXT = "The fallback answered."
KEY_ENV = {"OPENAI_API_KEY": "sk-fault-matrix-0123456789abcd", "ANTHROPIC_API_KEY": "sk-ant-x1234567890abcdef"}
FAST = Timeouts(connect=2.0, first_token=1.0, idle=1.0, total=30.0, max_retries=2,
                max_retry_wait=1.0)


def loop_table(server: FakeServer, timeouts: Timeouts = FAST, openai_url: str | None = None
               ) -> RoutingTable:
    return RoutingTable(
        tasks={}, priorities={}, routes={}, baseline=Baseline(PRIMARY, FALLBACK),
        classifier=ClassifierSettings(),
        providers={
            "openai": Provider("openai", "openai-compatible", openai_url or server.openai_url,
                               "OPENAI_API_KEY"),
            "anthropic": Provider("anthropic", "anthropic", server.anthropic_url,
                                  "ANTHROPIC_API_KEY"),
        },
        timeouts=timeouts,
    )


def _fell_back(r: RunResult) -> bool:
    return r.fallback_used and r.error is None and r.text == FALLBACK_TEXT


def _refused(r: RunResult) -> bool:
    return not r.fallback_used and r.error is not None and r.status == "failed"


def _answered(text: str) -> Callable[[RunResult], bool]:
    return lambda r: r.error is None and r.text == text and not r.fallback_used


def _timed_out_keeping_nothing(r: RunResult) -> bool:
    # The drip was shown, then the total limit ended it: a timeout, no fallback, text kept apart.
    return r.status == "failed" and "total time limit" in (r.error or "") and not r.fallback_used


# case -> (replies for the primary, timeouts, what is right)
FAULTS: dict[str, tuple[tuple[Reply, ...], Timeouts, Callable[[RunResult], bool]]] = {
    "http 500": ((Reply.http(500),), FAST, _fell_back),
    "http 502": ((Reply.http(502),), FAST, _fell_back),
    "http 503": ((Reply.http(503),), FAST, _fell_back),
    "http 529": ((Reply.http(529, error_type="overloaded_error"),), FAST, _fell_back),
    "http 400": ((Reply.http(400),), FAST, _refused),
    "http 401": ((Reply.http(401),), FAST, _refused),
    "http 403": ((Reply.http(403),), FAST, _refused),
    "http 404": ((Reply.http(404),), FAST, _refused),
    "429 then ok": ((Reply.http(429, retry_after="0"), Reply.ok("retried fine")), FAST,
                    _answered("retried fine")),
    "429 over the wait cap": ((Reply.http(429, retry_after="999"),), FAST, _fell_back),
    "hang-up": ((Reply.hangup(),), FAST, _fell_back),
    "reset mid-stream": ((Reply.reset(after=2, text="one two three four five"),), FAST,
                         lambda r: _fell_back(r) and bool(r.discarded_text.strip())),
    "malformed chunk": ((Reply.malformed(after=1),), FAST, _fell_back),
    "error inside the stream": ((Reply.stream_error(after=1),), FAST, _fell_back),
    "cut before [DONE]": ((Reply.cut(after=2),), FAST, _fell_back),
    "no headers (first-token timeout)": ((Reply.stall_headers(seconds=10),),
                                         Timeouts(connect=2.0, first_token=0.3, idle=0.3),
                                         _fell_back),
    "stall mid-stream (idle timeout)": ((Reply.stall(after=2, seconds=10),),
                                        Timeouts(connect=2.0, first_token=1.0, idle=0.3),
                                        _fell_back),
    "slow first token past total": ((Reply.ok("too late", first_delay=5.0),),
                                    Timeouts(connect=2.0, first_token=30.0, idle=30.0, total=0.5),
                                    _fell_back),
    "drip past total": ((Reply.ok(" ".join(["tok"] * 200), delay=0.05),),
                        Timeouts(connect=2.0, first_token=30.0, idle=30.0, total=0.6),
                        _timed_out_keeping_nothing),
    "key echoed in an error": ((Reply.http(401, message="bad key {key}"),), FAST,
                               lambda r: _refused(r) and "0123456789abcd" not in (r.error or "")),
}


async def _side(server: FakeServer, table: RoutingTable, plan: Cell) -> RunResult:
    metrics = LiveMetrics("routed", "hello", table=table)
    async with httpx.AsyncClient() as http:
        async def go() -> None:
            async for ev in run_side(
                "routed", plan, "hello", table, RunOptions(env=KEY_ENV, http_client=http)
            ):
                metrics.apply(ev)

        await asyncio.wait_for(go(), HANG_S)
    return metrics.result()


async def _fault_case(name: str) -> tuple[str, bool, str]:
    replies, timeouts, right = FAULTS[name]
    with FakeServer() as server:
        server.route("gpt-5-mini", *replies)
        server.route("claude-haiku-4-5", Reply.ok(FALLBACK_TEXT))
        try:
            r = await _side(server, loop_table(server, timeouts), Cell(PRIMARY, FALLBACK))
        except Exception as exc:  # noqa: BLE001 - a crash is a wrong ending, counted
            return name, False, f"raised {type(exc).__name__}: {exc}"
    detail = f"status={r.status} fallback={r.fallback_used} error={r.error!r}"
    return name, right(r), detail


async def _refused_connection() -> tuple[str, bool, str]:
    with FakeServer() as server:
        server.route("claude-haiku-4-5", Reply.ok(FALLBACK_TEXT))
        table = loop_table(server, openai_url=closed_port_url() + "/v1")
        r = await _side(server, table, Cell(PRIMARY, FALLBACK))
    return "connection refused", _fell_back(r), f"error={r.error!r}"


def fault_matrix(names: list[str] | None = None) -> list[tuple[str, bool, str]]:
    """Every provider fault against a primary with a fallback: did the side end right?"""

    async def all_cases() -> list[tuple[str, bool, str]]:
        out = [await _fault_case(n) for n in (names or list(FAULTS))]
        if names is None:
            out.append(await _refused_connection())
        return out

    return asyncio.run(all_cases())


# ---------------------------------------------------------------------------------------------
# 2. Bad input
# ---------------------------------------------------------------------------------------------

BAD_UTF8 = b"fix \xff\xfe this \xc3( code".decode("utf-8", "surrogateescape")
EVIL_RULE = "^(a+)+$"


def routes_copy(folder: Path, edit: Callable[[dict], None] | None = None,
                name: str = "routes.toml") -> Path:
    """A copy of the packaged routes.toml in ``folder``, edited by ``edit(doc)`` if given."""
    target = folder / name
    if edit is None:
        shutil.copyfile(default_routes_path(), target)
        return target
    doc = tomllib.loads(default_routes_path().read_text("utf-8"))
    edit(doc)
    target.write_text(tomli_w.dumps(doc), "utf-8")
    return target


def _evil_rule(doc: dict) -> None:
    doc["tasks"]["math"]["rules"] = [*doc["tasks"]["math"].get("rules", []), EVIL_RULE]


def bad_input_cases(folder: Path) -> dict[str, Callable[[], CliRun]]:
    """name -> a callable running one hostile command (each prepares its own files)."""
    folder.mkdir(parents=True, exist_ok=True)
    routes = routes_copy(folder)
    r = ("--routes", str(routes))
    log = ("--log", str(folder / "bad-input-runs.sqlite3"))

    def fifo() -> CliRun:
        path = folder / "routes.fifo"
        if not path.exists():
            os.mkfifo(path)
        return run_cli("classify", "hello", "--routes", str(path))

    def big() -> CliRun:
        path = folder / "big.toml"
        with open(path, "wb") as f:
            f.truncate(9 * 1024 * 1024)
        return run_cli("classify", "hello", "--routes", str(path))

    def not_utf8() -> CliRun:
        path = folder / "latin1.toml"
        path.write_bytes(routes.read_bytes()[:2000] + b"\n# caf\xe9\n")
        return run_cli("classify", "hello", "--routes", str(path))

    def garbage() -> CliRun:
        path = folder / "garbage.toml"
        path.write_bytes(bytes(random.Random(7).randrange(256) for _ in range(4096)))
        return run_cli("classify", "hello", "--routes", str(path))

    def evil_rule() -> CliRun:
        path = routes_copy(folder, _evil_rule, "evil-rule.toml")
        return run_cli("classify", "a" * 40 + "!", "--routes", str(path), "--json")

    def lookaround_rule() -> CliRun:
        def edit(doc: dict) -> None:
            doc["tasks"]["code"]["rules"] = ["(?<=def )main"]

        path = routes_copy(folder, edit, "lookaround.toml")
        run = run_cli("classify", "hello", "--routes", str(path))
        ok = run.code == 2 and "tasks.code.rules[0]" in run.err and "RE2" in run.err
        return run if ok else CliRun(-1, run.out, run.err)

    def workload_dev_zero() -> CliRun:
        return run_cli("bench", "/dev/zero", *r, "--no-log")

    def eval_fifo() -> CliRun:
        path = folder / "eval.fifo"
        if not path.exists():
            os.mkfifo(path)
        return run_cli("eval", str(path), *r)

    return {
        "route: invalid UTF-8 in argv": lambda: run_cli("route", BAD_UTF8, *r, *log, "--simulate",
                                                        "--json", env={"ROUTEDECK_SIM_SPEED": "50"}),
        "route --no-log: invalid UTF-8 in argv": lambda: run_cli(
            "route", BAD_UTF8, *r, "--no-log", "--simulate", env={"ROUTEDECK_SIM_SPEED": "50"}),
        "classify: invalid UTF-8 in argv": lambda: run_cli("classify", BAD_UTF8, *r, "--json"),
        "classify: invalid UTF-8 on stdin": lambda: run_cli("classify", "-", *r,
                                                            stdin=b"\xff\xfe\xfd code"),
        "classify: empty prompt": lambda: run_cli("classify", "   ", *r),
        "classify: control characters": lambda: run_cli("classify", "\x1b]52;c;aGk=\x07\x1b[2J hi",
                                                         *r),
        "--routes /dev/zero": lambda: run_cli("classify", "hello", "--routes", "/dev/zero"),
        "--routes FIFO": fifo,
        "--routes a folder": lambda: run_cli("classify", "hello", "--routes", str(folder)),
        "--routes missing": lambda: run_cli("classify", "hello", "--routes",
                                            str(folder / "missing.toml")),
        "--routes 9 MiB": big,
        "--routes not UTF-8": not_utf8,
        "--routes random bytes": garbage,
        "rule ^(a+)+$ on 40 a's": evil_rule,
        "rule with look-behind refused at load": lookaround_rule,
        "bench /dev/zero": workload_dev_zero,
        "eval FIFO": eval_fifo,
        "unknown --priority": lambda: run_cli("classify", "hello", *r, "--priority", "\x1b[31mx"),
        "--model not provider/model": lambda: run_cli("route", "hello", *r, "--model", "nope",
                                                      "--no-log"),
    }


def bad_input_matrix(folder: Path, names: list[str] | None = None
                     ) -> list[tuple[str, bool, str]]:
    cases = bad_input_cases(folder)
    out = []
    for name in names or list(cases):
        run = cases[name]()
        last = run.err.strip().splitlines()[-1:] or [""]
        out.append((name, run.clean, f"exit={run.code} {last[0][:160]}"))
    return out


# ---------------------------------------------------------------------------------------------
# 3. kill -9 during saves, 4. concurrent savers
# ---------------------------------------------------------------------------------------------

# A child that saves the table in a loop, flipping one cell each time, until killed.
_SAVER = textwrap.dedent(
    """
    import sys
    from tui.router.table.load import load_table
    from tui.router.table.save import save_table
    from tui.router.types import Cell
    path = sys.argv[1]
    table = load_table(path)
    a, b = "openai/gpt-5-mini", "openai/gpt-5.2"
    print("ready", flush=True)
    i = 0
    while True:
        table = save_table(table.with_cell("code", "default", Cell(a if i % 2 else b)))
        i += 1
    """
)


def small_routes(folder: Path, name: str = "routes.toml") -> Path:
    """A small valid routes file (fast to save many times)."""
    from small_examples import EXAMPLES

    doc = {
        "tasks": {t: {"examples": ex} for t, ex in EXAMPLES.items()},
        "priorities": {"default": {}, "latency": {}},
        "routes": {t: {"default": {"primary": "openai/gpt-5-mini"},
                       "latency": {"primary": "openai/gpt-5-mini"}} for t in EXAMPLES},
        "baseline": {"model": "openai/gpt-5.2"},
        "classifier": {"uncertain_route": "baseline"},
        "providers": {"openai": {"kind": "openai-compatible", "api_key_env": "OPENAI_API_KEY"}},
    }
    path = folder / name
    path.write_text(tomli_w.dumps(doc), "utf-8")
    return path


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


@dataclass
class SaveKills:
    trials: int = 0
    intact: int = 0
    temp_before_next_save: int = 0  # temp files the kills left behind
    orphaned_after_next_save: int = 0  # still there after one more save
    problems: list[str] = field(default_factory=list)


def kill_saves(folder: Path, trials: int, seed: int = 0) -> SaveKills:
    """Kill -9 a process that saves in a loop, ``trials`` times; after each kill routes.toml
    must load (complete, valid). At the end one more save must clean every temp file."""
    from tui.router.table.check import TableError
    from tui.router.table.load import load_table
    from tui.router.table.save import save_table

    folder.mkdir(parents=True, exist_ok=True)
    path = small_routes(folder)
    rng = random.Random(seed)
    out = SaveKills()
    for _ in range(trials):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE,
                                cwd=REPO)
        try:
            assert proc.stdout is not None
            proc.stdout.readline()  # "ready": the imports and the first load are done
            time.sleep(rng.uniform(0.0, 0.15))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=HANG_S)
            if proc.stdout is not None:
                proc.stdout.close()
        out.trials += 1
        try:
            load_table(path)
            out.intact += 1
        except TableError as exc:
            out.problems.append(str(exc)[:200])
    out.temp_before_next_save = len(temp_files(folder))
    save_table(load_table(path))  # identical: writes nothing, but still cleans up
    table = load_table(path)
    save_table(table.with_cell("math", "default", Cell("openai/gpt-5.2")))
    out.orphaned_after_next_save = len(temp_files(folder))
    return out


# Two of these run at once: each loads the table when told, edits its own cell and saves when
# told; "saved" or "conflict" is the answer.
_RACER = textwrap.dedent(
    """
    import sys
    from tui.router.table.load import load_table
    from tui.router.table.save import ConflictError, save_table
    from tui.router.types import Cell
    path, task = sys.argv[1], sys.argv[2]
    for line in sys.stdin:
        word, _, arg = line.strip().partition(" ")
        if word == "load":
            table = load_table(path).with_cell(task, "default", Cell(arg))
            print("loaded", flush=True)
        elif word == "save":
            try:
                save_table(table)
                print("saved", flush=True)
            except ConflictError:
                print("conflict", flush=True)
    """
)


@dataclass
class ConcurrentSaves:
    trials: int = 0
    lost_edits: int = 0  # a process said "saved" but its edit is not in the file
    both_saved: int = 0  # both said "saved" (only fine when each saw the other's edit)
    conflicts: int = 0
    no_winner: int = 0  # both conflicted: nothing lost, but nobody saved


def concurrent_saves(folder: Path, trials: int) -> ConcurrentSaves:
    """Two processes load the same routes.toml, each edits a different cell, both save at the
    same instant. One must win and the other get a conflict: no edit may vanish."""
    from tui.router.table.load import load_table

    folder.mkdir(parents=True, exist_ok=True)
    path = small_routes(folder)
    racers = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(path), task], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=REPO)
        for task in ("code", "math")
    ]
    out = ConcurrentSaves()
    try:
        for trial in range(trials):
            models = [f"openai/model-{trial}-code", f"openai/model-{trial}-math"]
            for racer, model in zip(racers, models, strict=True):
                _tell(racer, f"load {model}")
            for racer in racers:
                _expect(racer, "loaded")
            for racer in racers:
                _tell(racer, "save")
            answers = [_answer(racer) for racer in racers]
            table = load_table(path)
            out.trials += 1
            out.conflicts += answers.count("conflict")
            out.both_saved += answers == ["saved", "saved"]
            out.no_winner += answers == ["conflict", "conflict"]
            for task, model, answer in zip(("code", "math"), models, answers, strict=True):
                if answer == "saved" and table.cell(task, "default").primary != model:
                    out.lost_edits += 1
    finally:
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.close()
            try:
                racer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                racer.kill()
            if racer.stdout is not None:
                racer.stdout.close()
    return out


def _tell(proc: subprocess.Popen, line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"a saver process ended (exit {proc.poll()})")
    return line


def _expect(proc: subprocess.Popen, word: str) -> None:
    got = _answer(proc)
    if got != word:
        raise RuntimeError(f"expected {word!r} from a saver, got {got!r}")


# ---------------------------------------------------------------------------------------------
# 5. Corrupt and truncated run logs
# ---------------------------------------------------------------------------------------------


def _valid_log(path: Path, runs: int = 200) -> bytes:
    from test_runlog import pair

    from tui.router.log.runlog import RunLog

    with RunLog(path) as log:
        for i in range(runs):
            log.record(pair(prompt=f"prompt {i} " + "x" * 1500))
    # One file, no WAL beside it, as after a clean exit.
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()
    return path.read_bytes()


def _corruptions() -> dict[str, Callable[[bytes], bytes]]:
    def flip_pages(data: bytes) -> bytes:
        rng = random.Random(3)
        b = bytearray(data)
        for page in range(2, len(b) // 4096):
            if rng.random() < 0.5:
                start = page * 4096
                b[start:start + 4096] = bytes(rng.randrange(256) for _ in range(4096))
        return bytes(b)

    return {
        "not SQLite (text)": lambda _: b"this is not a database\n" * 200,
        "random bytes": lambda _: bytes(random.Random(5).randrange(256) for _ in range(8192)),
        "cut in half": lambda d: d[: len(d) // 2],
        "cut to one page": lambda d: d[:4096],
        "cut inside the header": lambda d: d[:60],
        "pages overwritten": flip_pages,
    }


def corrupt_logs(folder: Path) -> list[tuple[str, bool, str]]:
    """Each kind of bad run log: RunLog must open, record and read; the old bytes must be kept
    aside, and ``recovered_from`` / ``warning`` must say where."""
    from test_runlog import pair

    from tui.router.log.runlog import RunLog

    folder.mkdir(parents=True, exist_ok=True)
    good = _valid_log(folder / "good.sqlite3")
    out = []
    for name, corrupt in _corruptions().items():
        case = folder / name.replace(" ", "-").replace("(", "").replace(")", "")
        shutil.rmtree(case, ignore_errors=True)
        case.mkdir()
        path = case / "runs.sqlite3"
        bad = corrupt(good)
        path.write_bytes(bad)
        try:
            with RunLog(path) as log:
                run_id = log.record(pair(prompt="after the recovery"))
                recent = log.recent(5)
                aside = log.recovered_from
                warning = log.warning or ""
        except Exception as exc:  # noqa: BLE001 - a crash is what this case looks for
            out.append((name, False, f"raised {type(exc).__name__}: {exc}"))
            continue
        # Kept whole (SQLite may have rewritten the 100-byte header, e.g. to switch to WAL).
        kept = aside is not None and aside.exists() and aside.read_bytes()[100:] == bad[100:]
        ok = bool(run_id) and len(recent) == 1 and kept and str(aside) in warning
        out.append((name, ok, f"aside={aside.name if aside else None}"))
    return out


# ---------------------------------------------------------------------------------------------
# 6. Key leaks
# ---------------------------------------------------------------------------------------------

# A key with no known shape, in a variable with a custom name, and an OpenAI-shaped one.
CUSTOM_KEY = "Zq7mPlainCredValue93x"
OPENAI_KEY = "sk-leaksweep-4b7f0c2e9d1a8b3c"
PASTED_KEY = "sk-pasted0123456789abcdefXYZ"


@dataclass
class KeyLeaks:
    keys: int = 0
    places: int = 0  # (key, place) pairs looked at
    leaks: list[str] = field(default_factory=list)


def _custom_provider(server: FakeServer) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        doc["providers"]["myllm"] = {"kind": "openai-compatible", "base_url": server.openai_url,
                                     "api_key_env": "MY_LLM_CRED"}
        for cells in doc["routes"].values():
            for cell in cells.values():
                if isinstance(cell, dict):
                    cell["primary"] = "myllm/echo"
                    cell["fallback"] = "openai/gpt-5-mini"
                    cell.pop("hedge_after_ms", None)
        doc["baseline"] = {"model": "openai/gpt-5.2"}
        doc["providers"]["openai"]["base_url"] = server.openai_url

    return edit


def key_leak_sweep(folder: Path) -> KeyLeaks:
    """Run the CLI with keys in the environment while the providers echo them (in the answer,
    split across chunks, and in error bodies), and paste a key into a routes.toml; then look
    for every key in stdout, stderr, the run log (and its -wal) and the cache folder."""
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / "cache"
    log = folder / "runs.sqlite3"
    env = {"MY_LLM_CRED": CUSTOM_KEY, "OPENAI_API_KEY": OPENAI_KEY,
           "ROUTEDECK_CACHE_DIR": os.environ.get("ROUTEDECK_CACHE_DIR", str(cache)),
           "ROUTEDECK_LOG": str(log)}
    outputs: list[str] = []
    with FakeServer() as server:
        routes = routes_copy(folder, _custom_provider(server), "keys.toml")
        half = len(CUSTOM_KEY) // 2
        # The routed model echoes the custom key split across two chunks...
        server.route("echo", Reply.ok(chunks=("Your key is ", CUSTOM_KEY[:half],
                                              CUSTOM_KEY[half:], " and ", OPENAI_KEY, ".")))
        # ...and the baseline fails with the key it was sent in its error body.
        server.route("gpt-5.2", Reply.http(401, message="invalid key {key}"))
        for extra in ((), ("--json",)):
            run = run_cli("route", f"say {CUSTOM_KEY}", "--routes", str(routes), "--log",
                          str(log), *extra, env=env)
            outputs += [run.out, run.err]
        # A stream that breaks after echoing the key: the discarded text is stored too.
        server.route("echo", Reply.reset(after=2, chunks=(CUSTOM_KEY[:half], CUSTOM_KEY[half:],
                                                          " more", " text")))
        run = run_cli("route", "hello", "--routes", str(routes), "--log", str(log), "--json",
                      env=env)
        outputs += [run.out, run.err]
    # A key pasted into a big routes.toml: refused, and never cached.
    pasted = routes_copy(folder, lambda d: d["providers"]["openai"].update(api_key=PASTED_KEY),
                         "pasted.toml")
    run = run_cli("classify", "hello", "--routes", str(pasted), env=env)
    outputs += [run.out, run.err]
    places: dict[str, bytes] = {f"output {i}": s.encode() for i, s in enumerate(outputs)}
    for p in (log, Path(f"{log}-wal")):
        if p.exists():
            places[p.name] = p.read_bytes()
    for p in Path(env["ROUTEDECK_CACHE_DIR"]).rglob("*"):
        if p.is_file():
            places[f"cache/{p.name}"] = p.read_bytes()
    result = KeyLeaks(keys=3)
    for key in (CUSTOM_KEY, OPENAI_KEY, PASTED_KEY):
        for where, data in places.items():
            result.places += 1
            if key.encode() in data:
                result.leaks.append(f"{key[:6]}... in {where}")
    return result
