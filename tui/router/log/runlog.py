"""Every run, stored: for the history screen, what-if replay, savings totals and verdicts.

One SQLite file, by default ``runs.sqlite3`` in the user's data folder (platformdirs), else the
``ROUTEDECK_LOG`` environment variable, else the ``path`` given. The file is created with mode
0600 before SQLite opens it (whatever the umask), runs in WAL mode with a busy timeout so two
RouteDeck processes can write at once, and carries its schema version in ``PRAGMA user_version``
(migrations below, applied in order, never edited once released).

Stored per run: the time, the prompt, the decision (task, priority, confidence, classifier,
reason, uncertain, the cell, the LLM classifier's call and its cost) and both sides (model, simulated, usage, cost, timings, fallback and
hedge, status, error, answer, attempts as JSON). Keys are never stored: every text is passed
through :func:`~tui.router.sanitize.redact` with the values of the environment's key variables
(``*_API_KEY``, ``*_TOKEN``, ...), any secrets given (a session passes the values of its table's
``api_key_env`` variables), and anything shaped like a key.

A file that is not a SQLite database, or one cut short (truncated by a full disk or a bad
copy), does not stop anything: it is moved aside, never deleted, to
``runs.sqlite3.corrupt-<UTC time>`` (with its ``-wal``/``-shm`` companions), a fresh log is
started, and ``RunLog.recovered_from`` is the path the old file went to (``None`` when nothing
happened); ``RunLog.warning`` says so in one sentence, for a front end to show once.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tui.router import settings
from tui.router.sanitize import env_secrets, redact
from tui.router.types import AttemptSummary, PairResult, RunResult

ENV_VAR = settings.LOG
BUSY_TIMEOUT_MS = 10_000
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
# Result codes that mean the file itself is bad: not a database, or a damaged one.
_BROKEN_CODES = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
_SQLITE_MAGIC = b"SQLite format 3\x00"
Verdict = Literal["routed", "tie", "baseline"]
VERDICTS: tuple[str, ...] = ("routed", "tie", "baseline")


class RunLogError(Exception):
    """The run log cannot be used (a newer schema, a file we may not open, ...)."""


_SIDE_COLUMNS = (
    "model TEXT",
    "simulated INTEGER",
    "input_tokens INTEGER",
    "output_tokens INTEGER",
    "usage_estimated INTEGER",
    "cost_usd REAL",
    "ttft_ms REAL",
    "total_ms REAL",
    "fallback_used INTEGER",
    "fallback_reason TEXT",
    "hedged INTEGER",
    "error TEXT",
    "text TEXT",
    "discarded_text TEXT",
    "attempts TEXT",
)


def _side_columns(prefix: str) -> str:
    return ",\n    ".join(f"{prefix}_{c}" for c in _SIDE_COLUMNS)


# Each migration is a list of statements; migration i brings the schema to version i + 1.
MIGRATIONS: list[list[str]] = [
    [
        f"""CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    prompt TEXT NOT NULL,
    task TEXT NOT NULL,
    priority TEXT NOT NULL,
    priority_reason TEXT,
    label TEXT,
    confidence REAL,
    classifier TEXT,
    classify_ms REAL,
    reason TEXT,
    uncertain INTEGER NOT NULL DEFAULT 0,
    cell_primary TEXT NOT NULL,
    cell_fallback TEXT,
    cell_hedge_after_ms INTEGER,
    wall_ms REAL,
    {_side_columns("r")},
    {_side_columns("b")}
)""",
        "CREATE INDEX runs_task ON runs(task, id)",
        """CREATE TABLE verdicts (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    verdict TEXT NOT NULL CHECK (verdict IN ('routed', 'tie', 'baseline')),
    decided_at TEXT NOT NULL
)""",
    ],
    # 2: how each side ended ("ok", "failed", "cancelled"): a cancel is not an error. Rows from
    # before have NULL here and are read from their error ("cancelled" was stored as one).
    [
        "ALTER TABLE runs ADD COLUMN r_status TEXT",
        "ALTER TABLE runs ADD COLUMN b_status TEXT",
    ],
    # 3: the LLM classifier's call for the run's prompt (kind "llm" or "cascade"): its model,
    # outcome, time, tokens and cost (also counted in r_cost_usd). NULL: no LLM was asked.
    [
        "ALTER TABLE runs ADD COLUMN classifier_model TEXT",
        "ALTER TABLE runs ADD COLUMN classifier_outcome TEXT",
        "ALTER TABLE runs ADD COLUMN classifier_llm_ms REAL",
        "ALTER TABLE runs ADD COLUMN classifier_input_tokens INTEGER",
        "ALTER TABLE runs ADD COLUMN classifier_output_tokens INTEGER",
        "ALTER TABLE runs ADD COLUMN classifier_cost_usd REAL",
    ],
    # 4: the LLM judge's verdict on a run (tui.router.run.judge), kept apart from a person's
    # (verdicts) and from the runs' costs: what the judge cost is never part of the savings.
    # verdict is NULL when the judge failed (error says why); orders holds both calls as JSON.
    [
        """CREATE TABLE judgements (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    verdict TEXT CHECK (verdict IN ('routed', 'tie', 'baseline', 'unparsed')),
    consistent INTEGER,
    reason TEXT,
    cost_usd REAL,
    error TEXT,
    orders TEXT,
    judged_at TEXT NOT NULL
)""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


def default_path() -> Path:
    """``$ROUTEDECK_LOG`` if set (not empty), else ``runs.sqlite3`` in the user's data folder."""
    return settings.log_path()


@dataclass(frozen=True)
class SideRecord:
    model: str
    simulated: bool
    input_tokens: int
    output_tokens: int
    usage_estimated: bool
    cost_usd: float | None
    ttft_ms: float | None
    total_ms: float | None
    fallback_used: bool
    fallback_reason: str | None
    hedged: bool
    error: str | None
    text: str
    discarded_text: str
    attempts: tuple[AttemptSummary, ...]
    # "ok", "failed" or "cancelled" (by the user; ``error`` is None then).
    status: str = "ok"


@dataclass(frozen=True)
class JudgeRecord:
    """The LLM judge's verdict on a run, as logged (see tui.router.run.judge)."""

    model: str
    verdict: str | None  # "routed", "tie", "baseline", "unparsed"; None when the judge failed
    consistent: bool | None
    reason: str | None
    cost_usd: float | None
    error: str | None


@dataclass(frozen=True)
class JudgeTotals:
    """How many runs the judge judged and what it cost, kept apart from routing's totals."""

    judged: int
    cost_usd: float


@dataclass(frozen=True)
class RunRecord:
    id: int
    created_at: datetime
    prompt: str
    task: str
    priority: str
    priority_reason: str | None
    label: str | None
    confidence: float | None
    classifier: str | None
    classify_ms: float | None
    reason: str | None
    uncertain: bool
    cell_primary: str
    cell_fallback: str | None
    cell_hedge_after_ms: int | None
    wall_ms: float | None
    routed: SideRecord
    baseline: SideRecord
    verdict: str | None
    # The LLM classifier's call (model, outcome, ms, tokens, cost); None when none was asked.
    classifier_llm: dict[str, Any] | None = None
    # The LLM judge's verdict, when the run was judged (its cost is not in savings_usd).
    judge: JudgeRecord | None = None

    @property
    def savings_usd(self) -> float | None:
        if self.routed.cost_usd is None or self.baseline.cost_usd is None:
            return None
        return self.baseline.cost_usd - self.routed.cost_usd


@dataclass(frozen=True)
class Totals:
    runs: int
    # Runs where both sides' costs are known; the sums and savings are over these.
    priced_runs: int
    routed_cost_usd: float
    baseline_cost_usd: float

    @property
    def savings_usd(self) -> float:
        return self.baseline_cost_usd - self.routed_cost_usd

    def plus(self, pair: PairResult) -> Totals:
        """These totals with one more run (a session keeps its own running totals this way)."""
        r, b = pair.routed.cost_usd, pair.baseline.cost_usd
        if r is None or b is None:
            return replace(self, runs=self.runs + 1)
        return Totals(
            runs=self.runs + 1,
            priced_runs=self.priced_runs + 1,
            routed_cost_usd=self.routed_cost_usd + r,
            baseline_cost_usd=self.baseline_cost_usd + b,
        )

    @property
    def savings_pct(self) -> float | None:
        if not self.baseline_cost_usd:
            return None
        return 100.0 * self.savings_usd / self.baseline_cost_usd


class RunLog:
    """The run log. Safe to share between threads; several processes may write at once."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_path()
        self._secrets = env_secrets(os.environ)
        # Where a bad log found at this path was moved (a fresh one replaced it), and the
        # sentence that says so; None when the log was fine.
        self.recovered_from: Path | None = None
        self.warning: str | None = None
        self._lock = threading.Lock()
        _create_private(self.path)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if not _is_broken(exc):
                raise
            self._recover(str(exc))
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as again:
                raise RunLogError(f"cannot open the run log {self.path}: {again}") from None

    def _open(self) -> sqlite3.Connection:
        """Connect, set the connection up and migrate; a damaged file raises DatabaseError
        (SQLITE_NOTADB / SQLITE_CORRUPT)."""
        try:
            st = os.stat(self.path)
            self._ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            self._ident = None
        if _looks_truncated(self.path):
            err = sqlite3.DatabaseError("the file is shorter than its header says (cut short)")
            err.sqlite_errorcode = sqlite3.SQLITE_CORRUPT
            raise err
        try:
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise RunLogError(f"cannot open the run log {self.path}: {exc}") from None
        db.row_factory = sqlite3.Row
        self._db = db
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._wal()
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            # Walk to the newest run: reads the pages a cut-short file is missing first.
            db.execute("SELECT MAX(id) FROM runs").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, reason: str) -> None:
        """Move the bad file (and its -wal/-shm) aside and start afresh at ``self.path``."""
        aside = _move_aside(self.path, self._ident)
        _create_private(self.path)
        if aside is None:  # another process moved it already
            return
        self.recovered_from = aside
        self.warning = (
            f"the run log {self.path} could not be read ({reason}); it was moved to {aside} "
            "and a new run log was started"
        )

    def _wal(self) -> None:
        """Switch to WAL mode. Switching needs the file to itself, and SQLite answers "database
        is locked" at once, without waiting out the busy timeout, when another connection
        opens a new log at the same moment; so it is retried until the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.005
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                # The primary result code (the low byte): SQLITE_BUSY_RECOVERY and the like too.
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _BUSY_CODES:
                    raise
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.1)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RunLogError(
                f"{self.path} was written by a newer RouteDeck (schema {version}, "
                f"this one knows {SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it
        try:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            for i in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[i]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {i + 1}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # -- writing --------------------------------------------------------------------------------

    def record(
        self, pair: PairResult, *, when: datetime | None = None, secrets: Iterable[str] = ()
    ) -> int:
        """Store one run; its id. ``secrets``: more values to redact (keys are always redacted)."""
        secrets = (*secrets, *self._secrets)

        def r(s: str | None) -> str | None:
            return None if s is None else redact(s, secrets)

        d = pair.decision
        c = d.classification
        when = when or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        row: dict[str, Any] = {
            "created_at": when.astimezone(UTC).isoformat(),
            "prompt": r(d.prompt),
            "task": d.task,
            "priority": d.priority,
            "priority_reason": d.priority_reason,
            "label": c.label,
            "confidence": c.confidence,
            "classifier": c.classifier,
            "classify_ms": c.elapsed_ms,
            "reason": r(d.reason),
            "uncertain": int(d.uncertain),
            "cell_primary": d.cell.primary,
            "cell_fallback": d.cell.fallback,
            "cell_hedge_after_ms": d.cell.hedge_after_ms,
            "wall_ms": pair.wall_ms,
        }
        row.update(_classifier_row(c))
        row.update(_side_row("r", pair.routed, r))
        row.update(_side_row("b", pair.baseline, r))
        names = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        sql = f"INSERT INTO runs ({names}) VALUES ({marks})"
        return int(self._use(lambda db: db.execute(sql, row).lastrowid) or 0)

    def _use(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """``work(connection)`` under the lock. If the file turns out damaged while in use (a
        page a read or a write reaches is bad), it is moved aside, a fresh log is started and
        ``work`` runs again there."""
        with self._lock:
            try:
                return work(self._db)
            except sqlite3.DatabaseError as exc:
                if not _is_broken(exc):
                    raise
                self._db.close()
                self._recover(str(exc))
                try:
                    self._db = self._open()
                except sqlite3.DatabaseError as again:
                    raise RunLogError(f"cannot open the run log {self.path}: {again}") from None
                return work(self._db)

    def set_verdict(self, run_id: int, verdict: Verdict, *, when: datetime | None = None) -> None:
        """A person's verdict on a run: the routed answer was better, as good, or worse."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        when = (when or datetime.now(UTC)).astimezone(UTC)
        try:
            self._use(lambda db: db.execute(
                "INSERT INTO verdicts (run_id, verdict, decided_at) VALUES (?, ?, ?) "
                "ON CONFLICT(run_id) DO UPDATE SET verdict = excluded.verdict, "
                "decided_at = excluded.decided_at",
                (run_id, verdict, when.isoformat()),
            ))
        except sqlite3.IntegrityError:
                raise KeyError(f"no run {run_id}") from None

    # -- reading --------------------------------------------------------------------------------

    def get(self, run_id: int) -> RunRecord | None:
        row = self._use(lambda db: db.execute(
            f"{_SELECT_RUNS} WHERE runs.id = ?",
            (run_id,),
        ).fetchone())
        return _record(row) if row else None

    def recent(self, limit: int = 50, task: str | None = None) -> list[RunRecord]:
        """The newest runs first, of one task type if given."""
        sql = _SELECT_RUNS
        args: list[Any] = []
        if task is not None:
            sql += " WHERE runs.task = ?"
            args.append(task)
        sql += " ORDER BY runs.id DESC LIMIT ?"
        args.append(int(limit))
        rows = self._use(lambda db: db.execute(sql, args).fetchall())
        return [_record(row) for row in rows]

    def totals(self, task: str | None = None) -> Totals:
        """How many runs, and what routing saved on those whose two costs are known."""
        where, args = ("WHERE task = ?", [task]) if task is not None else ("", [])
        row = self._use(lambda db: db.execute(
            f"""SELECT COUNT(*),
                SUM(r_cost_usd IS NOT NULL AND b_cost_usd IS NOT NULL),
                TOTAL(CASE WHEN b_cost_usd IS NOT NULL THEN r_cost_usd END),
                TOTAL(CASE WHEN r_cost_usd IS NOT NULL THEN b_cost_usd END)
            FROM runs {where}""",
            args,
        ).fetchone())
        return Totals(int(row[0]), int(row[1] or 0), float(row[2]), float(row[3]))

    def avg_output_tokens_by_task(self, side: Literal["routed", "baseline"] | None = None
                                  ) -> dict[str, float]:
        """Mean output tokens of the answers, per task type (for cost projections).

        Both sides' answers count unless ``side`` is given; failed sides are left out.
        """
        parts = []
        if side in (None, "routed"):
            parts.append("SELECT task, r_output_tokens AS n FROM runs WHERE r_error IS NULL "
                         "AND COALESCE(r_status, 'ok') = 'ok'")
        if side in (None, "baseline"):
            parts.append("SELECT task, b_output_tokens AS n FROM runs WHERE b_error IS NULL "
                         "AND COALESCE(b_status, 'ok') = 'ok'")
        sql = f"SELECT task, AVG(n) FROM ({' UNION ALL '.join(parts)}) GROUP BY task ORDER BY task"
        rows = self._use(lambda db: db.execute(sql).fetchall())
        return {row[0]: float(row[1]) for row in rows}

    def set_judgement(
        self, run_id: int, judgement: Any, *, when: datetime | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        """The LLM judge's verdict on a run (a ``judge.Judgement`` that ran), replacing any
        earlier one. Its cost stays here, apart from the run's: never part of the savings."""
        secrets = (*secrets, *self._secrets)

        def r(text: str | None) -> str | None:
            return None if text is None else redact(text, secrets)

        orders = [
            {"routed_as": o.routed_as, "model": o.model, "better": o.better, "says": o.says,
             "reason": r(o.reason), "cost_usd": o.cost_usd, "error": r(o.error), "raw": r(o.raw)}
            for o in judgement.orders
        ]
        row = (
            run_id, judgement.model, judgement.verdict,
            None if judgement.consistent is None else int(judgement.consistent),
            r(judgement.reason), judgement.cost_usd, r(judgement.error), json.dumps(orders),
            (when or datetime.now(UTC)).astimezone(UTC).isoformat(),
        )
        try:
            self._use(lambda db: db.execute(
                "INSERT OR REPLACE INTO judgements (run_id, model, verdict, consistent, reason, "
                "cost_usd, error, orders, judged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ))
        except sqlite3.IntegrityError:
            raise KeyError(f"no run {run_id}") from None

    def judge_totals(self, task: str | None = None) -> JudgeTotals:
        """How many runs the judge judged, and what it cost (apart from :meth:`totals`)."""
        sql = ("SELECT COUNT(*), TOTAL(judgements.cost_usd) FROM judgements "
               "JOIN runs ON runs.id = judgements.run_id")
        args: list[Any] = []
        if task is not None:
            sql += " WHERE runs.task = ?"
            args.append(task)
        row = self._use(lambda db: db.execute(sql, args).fetchone())
        return JudgeTotals(int(row[0]), float(row[1]))

    def verdict_counts(self, task: str | None = None) -> dict[str, int]:
        """How many runs got each verdict."""
        sql = ("SELECT verdict, COUNT(*) FROM verdicts JOIN runs ON runs.id = verdicts.run_id")
        args: list[Any] = []
        if task is not None:
            sql += " WHERE runs.task = ?"
            args.append(task)
        sql += " GROUP BY verdict"
        rows = self._use(lambda db: db.execute(sql, args).fetchall())
        counts = dict.fromkeys(VERDICTS, 0)
        counts.update({row[0]: int(row[1]) for row in rows})
        return counts


# ---------------------------------------------------------------------------------------------


def _create_private(path: Path) -> None:
    """Create the file (and its folder) readable by its owner only, before SQLite opens it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise RunLogError(f"cannot create the run log {path}: {exc}") from None
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)  # an older file, or one created by something else
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_broken(exc: sqlite3.DatabaseError) -> bool:
    """The error says the file is not a usable database (not one at all, or damaged)."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.IntegrityError):
        return False
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in _BROKEN_CODES


def _looks_truncated(path: Path) -> bool:
    """A SQLite file shorter than the page count its header promises: cut short. Only judged
    when no -wal file is beside it (a live WAL database may be mid-checkpoint)."""
    try:
        if Path(f"{path}-wal").exists():
            return False
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return False
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid only when the change counter matches "version-valid-for".
    if header[24:28] != header[92:96] or pages == 0:
        return False
    return size < pages * page_size


def _move_aside(path: Path, ident: tuple[int, int] | None) -> Path | None:
    """Rename ``path`` (and its -wal, -shm) to ``<path>.corrupt-<time>``; the new path, or None
    when another process already did it. ``ident`` is the (device, inode) of the file found
    bad: a lock beside it serialises the processes that found it bad, and the file is moved
    only if it is still that one, so none of them moves the fresh log another just started."""
    lock_path = path.with_name(f".{path.name}.recover-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(ImportError):
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if (st.st_dev, st.st_ino) != ident:
            return None  # another process moved the bad file and started a new log meanwhile
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        return aside
    finally:
        os.close(fd)


_SELECT_RUNS = (
    "SELECT runs.*, verdicts.verdict, judgements.model AS j_model, "
    "judgements.verdict AS j_verdict, judgements.consistent AS j_consistent, "
    "judgements.reason AS j_reason, judgements.cost_usd AS j_cost_usd, "
    "judgements.error AS j_error FROM runs "
    "LEFT JOIN verdicts ON verdicts.run_id = runs.id "
    "LEFT JOIN judgements ON judgements.run_id = runs.id"
)


def _judge_record(row: sqlite3.Row) -> JudgeRecord | None:
    if row["j_model"] is None:
        return None
    consistent = row["j_consistent"]
    return JudgeRecord(
        model=row["j_model"],
        verdict=row["j_verdict"],
        consistent=None if consistent is None else bool(consistent),
        reason=row["j_reason"],
        cost_usd=row["j_cost_usd"],
        error=row["j_error"],
    )


def _side_row(prefix: str, s: RunResult, r: Any) -> dict[str, Any]:
    attempts = [asdict(a) for a in s.attempts]
    for a in attempts:
        a["error"] = r(a["error"])
    return {
        f"{prefix}_model": s.model,
        f"{prefix}_simulated": int(s.simulated),
        f"{prefix}_input_tokens": s.input_tokens,
        f"{prefix}_output_tokens": s.output_tokens,
        f"{prefix}_usage_estimated": int(s.usage_estimated),
        f"{prefix}_cost_usd": s.cost_usd,
        f"{prefix}_ttft_ms": s.ttft_ms,
        f"{prefix}_total_ms": s.total_ms,
        f"{prefix}_fallback_used": int(s.fallback_used),
        f"{prefix}_fallback_reason": r(s.fallback_reason),
        f"{prefix}_hedged": int(s.hedged),
        f"{prefix}_error": r(s.error),
        f"{prefix}_status": s.status,
        f"{prefix}_text": r(s.text),
        f"{prefix}_discarded_text": r(s.discarded_text),
        f"{prefix}_attempts": json.dumps(attempts),
    }


def _classifier_row(c: Any) -> dict[str, Any]:
    """The run log's columns of the LLM classifier's call (a cached label cost nothing)."""
    call = c.llm
    if call is None:
        return {}
    return {
        "classifier_model": call.model,
        "classifier_outcome": "cached" if c.cached else call.outcome,
        "classifier_llm_ms": 0.0 if c.cached else call.ms,
        "classifier_input_tokens": 0 if c.cached else call.input_tokens,
        "classifier_output_tokens": 0 if c.cached else call.output_tokens,
        "classifier_cost_usd": c.cost_usd,
    }


def _classifier_llm(row: sqlite3.Row) -> dict[str, Any] | None:
    if "classifier_model" not in row.keys() or row["classifier_model"] is None:
        return None
    return {
        "model": row["classifier_model"],
        "outcome": row["classifier_outcome"],
        "ms": row["classifier_llm_ms"],
        "input_tokens": row["classifier_input_tokens"],
        "output_tokens": row["classifier_output_tokens"],
        "cost_usd": row["classifier_cost_usd"],
    }


def _side(row: sqlite3.Row, p: str) -> SideRecord:
    fields = set(AttemptSummary.__dataclass_fields__)
    attempts = tuple(
        AttemptSummary(**{k: v for k, v in a.items() if k in fields})
        for a in json.loads(row[f"{p}_attempts"] or "[]")
    )
    error, status = row[f"{p}_error"], row[f"{p}_status"]
    if status is None:  # a row from before statuses were stored
        status = "cancelled" if error == "cancelled" else ("failed" if error else "ok")
    if status == "cancelled":
        error = None
    return SideRecord(
        model=row[f"{p}_model"],
        simulated=bool(row[f"{p}_simulated"]),
        input_tokens=int(row[f"{p}_input_tokens"] or 0),
        output_tokens=int(row[f"{p}_output_tokens"] or 0),
        usage_estimated=bool(row[f"{p}_usage_estimated"]),
        cost_usd=row[f"{p}_cost_usd"],
        ttft_ms=row[f"{p}_ttft_ms"],
        total_ms=row[f"{p}_total_ms"],
        fallback_used=bool(row[f"{p}_fallback_used"]),
        fallback_reason=row[f"{p}_fallback_reason"],
        hedged=bool(row[f"{p}_hedged"]),
        error=error,
        text=row[f"{p}_text"] or "",
        discarded_text=row[f"{p}_discarded_text"] or "",
        attempts=attempts,
        status=status,
    )


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=int(row["id"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        prompt=row["prompt"],
        task=row["task"],
        priority=row["priority"],
        priority_reason=row["priority_reason"],
        label=row["label"],
        confidence=row["confidence"],
        classifier=row["classifier"],
        classify_ms=row["classify_ms"],
        reason=row["reason"],
        uncertain=bool(row["uncertain"]),
        cell_primary=row["cell_primary"],
        cell_fallback=row["cell_fallback"],
        cell_hedge_after_ms=row["cell_hedge_after_ms"],
        wall_ms=row["wall_ms"],
        routed=_side(row, "r"),
        baseline=_side(row, "b"),
        verdict=row["verdict"],
        classifier_llm=_classifier_llm(row),
        judge=_judge_record(row),
    )
