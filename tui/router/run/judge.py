"""An LLM judge beside every comparison: is the routed answer as good as the baseline's?

How a front end judges a finished run (the CLI and the TUI do this, through the Session)::

    from tui.router.run.judge import judge_pair, why_not_judged

    why = why_not_judged(pair, table, env=env)       # None, or why it will not run
    judgement = await judge_pair(pair, table, env=env)
    judgement.verdict      # "routed", "baseline", "tie", "unparsed", or None (not run / failed)
    judgement.consistent   # both orders agreed (None unless both were read)
    judgement.reason, judgement.cost_usd, judgement.error

The judge model (``[judge] model`` in routes.toml, else the baseline model with the baseline's
fallback) is asked twice, in parallel: once with the routed answer as A and the baseline's as
B, once the other way round (position bias cancels out, as MT-Bench does). Each call runs as one
side through :func:`~tui.router.run.execute.run_side_result`: the same providers, retries, fallback
on 5xx/timeouts, key redaction and prices as a run. The reply must hold a JSON object
``{"better": "A" | "B" | "tie", "reason": "..."}``; it is read leniently (a fenced block, text
around it, the last such object wins), anything else is "unparsed".

Both orders say routed → ``routed``; both baseline → ``baseline``; both tie → ``tie``; the orders
disagree → ``tie`` with ``consistent=False``. Any order unread → ``unparsed`` (counted apart);
any call failed → no verdict, ``error`` says why.

The judge never runs on a simulator: when the judge model would be simulated (no key, or
simulation forced) it does not run and ``error`` says why, and neither does it judge answers
that are simulated, failed or cancelled. A fallback that would be simulated is dropped. Its cost
is its own (``cost_usd``), never part of what routing saved.

:func:`quality_by_cell` and :func:`quality_by_task` read the run log's judgements back (for the
grid and the savings screen); :class:`QualitySummary` is a workload's "savings at quality".
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tui.router.sanitize import clean, configured_secrets, redact
from tui.router.types import PairResult, RoutingTable, RunResult
from tui.router.units import percent

__all__ = [
    "JUDGE_TEXT_CHARS",
    "Judgement",
    "JudgeOrder",
    "QualityStats",
    "QualitySummary",
    "combine",
    "judge_plan",
    "judge_pair",
    "judge_prompt",
    "parse_reply",
    "quality_by_cell",
    "quality_by_task",
    "summarize",
    "why_not_judged",
]

Better = Literal["A", "B", "tie"]
Verdict = Literal["routed", "baseline", "tie", "unparsed"]
VERDICTS: tuple[str, ...] = ("routed", "baseline", "tie", "unparsed")

# Of a long prompt or answer, the head and the tail sent to the judge (characters each).
JUDGE_TEXT_CHARS = 12_000
REASON_CHARS = 400
RAW_CHARS = 2_000


# --------------------------------------------------------------------------------------------
# What the judge is sent, and reading what it says
# --------------------------------------------------------------------------------------------


def _cut(text: str, limit: int = JUDGE_TEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[… cut …]\n" + text[-half:]


def judge_prompt(instructions: str, prompt: str, answer_a: str, answer_b: str) -> str:
    """The one user message the judge gets: its instructions, then the material, delimited."""
    return (
        f"{instructions.strip()}\n\n"
        f"<<<PROMPT>>>\n{_cut(prompt)}\n<<<END PROMPT>>>\n\n"
        f"<<<ANSWER A>>>\n{_cut(answer_a)}\n<<<END ANSWER A>>>\n\n"
        f"<<<ANSWER B>>>\n{_cut(answer_b)}\n<<<END ANSWER B>>>\n\n"
        'Now reply with the JSON object {"better": "A" | "B" | "tie", "reason": "<one sentence>"}.'
    )


_FENCE = re.compile(r"```(?:json|JSON)?\s*(\{.*?\})\s*```", re.DOTALL)
_BETTER_WORDS = {
    "a": "A", "answer a": "A", "b": "B", "answer b": "B",
    "tie": "tie", "equal": "tie", "both": "tie", "neither": "tie", "same": "tie",
}


def _objects(text: str) -> Iterable[str]:
    """Every balanced ``{...}`` substring of ``text`` (strings inside respected), in order."""
    i = text.find("{")
    while i != -1:
        depth, in_str, esc = 0, False, False
        for j in range(i, len(text)):
            ch = text[j]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    yield text[i : j + 1]
                    break
        i = text.find("{", i + 1)


def _read_object(candidate: str) -> tuple[Better, str] | None:
    try:
        obj = json.loads(candidate)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    keys = {str(k).strip().lower(): v for k, v in obj.items()}
    better = keys.get("better", keys.get("winner"))
    if not isinstance(better, str):
        return None
    word = _BETTER_WORDS.get(better.strip().strip(".").lower())
    if word is None:
        return None
    reason = keys.get("reason", keys.get("explanation", ""))
    return word, str(reason) if reason is not None else ""  # type: ignore[return-value]


def parse_reply(text: str) -> tuple[Better, str] | None:
    """``(better, reason)`` from a judge's reply, or None when it holds no such object.

    Lenient: the object may sit in a fenced code block or among other text; when there are
    several, the last one that reads wins (a model that thinks aloud ends with its answer).
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + list(_objects(text))
    found = None
    for candidate in candidates:
        read = _read_object(candidate)
        if read is not None:
            found = read
    if found is None:
        return None
    better, reason = found
    reason = " ".join(clean(reason).split())
    if len(reason) > REASON_CHARS:
        reason = reason[: REASON_CHARS - 1] + "…"
    return better, reason


# --------------------------------------------------------------------------------------------
# One order, and the two combined
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeOrder:
    """One of the two judge calls."""

    routed_as: Literal["A", "B"]
    model: str  # the model that answered (the fallback's when one was used)
    better: Better | None  # what the reply said; None when unread or failed
    says: Literal["routed", "baseline", "tie"] | None  # ``better`` in terms of the sides
    reason: str = ""
    cost_usd: float | None = None
    error: str | None = None
    raw: str = ""  # the reply (cleaned, cut), to see what an unparsed one said
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def unparsed(self) -> bool:
        return self.error is None and self.better is None


def _order_from(result: RunResult, routed_as: Literal["A", "B"]) -> JudgeOrder:
    raw = result.text if len(result.text) <= RAW_CHARS else result.text[:RAW_CHARS] + "…"
    common: dict[str, Any] = {
        "routed_as": routed_as, "model": result.model, "cost_usd": result.cost_usd, "raw": raw,
        "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
    }
    if result.status != "ok" or result.error:
        return JudgeOrder(better=None, says=None, error=result.error or result.status, **common)
    parsed = parse_reply(result.text)
    if parsed is None:
        return JudgeOrder(better=None, says=None, **common)
    better, reason = parsed
    says: Literal["routed", "baseline", "tie"]
    if better == "tie":
        says = "tie"
    else:
        says = "routed" if better == routed_as else "baseline"
    return JudgeOrder(better=better, says=says, reason=reason, **common)


@dataclass(frozen=True)
class Judgement:
    """The judge's verdict on one run (or why there is none)."""

    model: str  # the judge model asked ("" when none could be chosen)
    verdict: Verdict | None
    consistent: bool | None = None
    reason: str = ""
    cost_usd: float | None = None
    error: str | None = None
    # False when the judge did not run at all (no key, simulated answers, ...): ``error`` says why.
    ran: bool = True
    orders: tuple[JudgeOrder, ...] = ()
    wall_ms: float | None = None

    @property
    def win_or_tie(self) -> bool | None:
        """The routed answer held up (as good or better); None without a verdict to count."""
        if self.verdict in ("routed", "tie"):
            return True
        if self.verdict == "baseline":
            return False
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "verdict": self.verdict,
            "consistent": self.consistent,
            "reason": self.reason or None,
            "cost_usd": self.cost_usd,
            "error": self.error,
            "ran": self.ran,
            "orders": [
                {"routed_as": o.routed_as, "model": o.model, "better": o.better, "says": o.says,
                 "reason": o.reason or None, "cost_usd": o.cost_usd, "error": o.error}
                for o in self.orders
            ],
        }


def _sum_cost(orders: Iterable[JudgeOrder]) -> float | None:
    costs = [o.cost_usd for o in orders]
    if not costs or any(c is None for c in costs):
        return None
    return float(sum(c for c in costs if c is not None))


def combine(model: str, first: JudgeOrder, second: JudgeOrder) -> Judgement:
    """The verdict of the two orders (see the module docstring for the rules)."""
    orders = (first, second)
    cost = _sum_cost(orders)
    failed = [o for o in orders if o.error]
    if failed:
        errors = "; ".join(f"routed as {o.routed_as}: {o.error}" for o in failed)
        return Judgement(model, None, None, "", cost, f"the judge failed ({errors})", True, orders)
    if any(o.unparsed for o in orders):
        shown = next(o for o in orders if o.unparsed).raw.strip()
        words = " ".join(clean(shown).split())[:120] or "an empty reply"
        return Judgement(
            model, "unparsed", None,
            f"the judge's reply held no verdict object: “{words}”", cost, None, True, orders,
        )
    if first.says == second.says:
        return Judgement(model, first.says, True, first.reason, cost, None, True, orders)
    reason = (
        f"the verdict changed with the order of the answers (position bias), counted as a tie: "
        f"routed as A: {first.says}; as B: {second.says}"
    )
    return Judgement(model, "tie", False, reason, cost, None, True, orders)


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------


def _resolve(model: str, table: RoutingTable, env: Mapping[str, str], force_simulated: bool):
    from tui.router.providers.registry import resolve_client

    return resolve_client(model, table, env=env, force_simulated=force_simulated)


def judge_plan(
    table: RoutingTable,
    *,
    model: str | None = None,
    env: Mapping[str, str],
    force_simulated: bool = False,
) -> tuple[str, str | None, str | None]:
    """``(model, fallback, why not)``: the judge model (``model``, else ``[judge] model``, else
    the baseline), its fallback (dropped when it would be simulated) and, when the judge model
    itself would be simulated or cannot be used, why the judge will not run."""
    settings = table.judge
    if model is not None:
        primary, fallback = model, None
    elif settings.model:
        primary, fallback = settings.model, settings.fallback
    else:
        primary, fallback = table.baseline.model, settings.fallback or table.baseline.fallback
    resolved = _resolve(primary, table, env, force_simulated)
    if not resolved.provider or resolved.provider not in table.providers:
        return primary, None, f"judge {primary} not run: unknown provider"
    if resolved.simulated:
        why = resolved.why_simulated or "it would be simulated"
        return primary, None, (
            f"judge {primary} not run: {why} (a simulated verdict would mean nothing)"
        )
    if fallback and (fallback == primary or _resolve(fallback, table, env, force_simulated).simulated):
        fallback = None
    return primary, fallback, None


def _answer_problem(side: str, result: RunResult) -> str | None:
    if result.status == "cancelled":
        return f"the {side} run was cancelled"
    if result.status != "ok" or result.error:
        return f"the {side} run failed"
    if not result.text.strip():
        return f"the {side} answer is empty"
    if result.simulated:
        return f"the {side} answer is simulated (a simulated answer has no quality to judge)"
    return None


def why_not_judged(
    pair: PairResult,
    table: RoutingTable,
    *,
    model: str | None = None,
    env: Mapping[str, str],
    force_simulated: bool = False,
) -> str | None:
    """None when the judge can judge ``pair``; else why not, in one sentence."""
    _, _, why = judge_plan(table, model=model, env=env, force_simulated=force_simulated)
    if why:
        return why
    for side, result in (("routed", pair.routed), ("baseline", pair.baseline)):
        if problem := _answer_problem(side, result):
            return f"judge not run: {problem}"
    return None


def not_run(model: str, why: str) -> Judgement:
    return Judgement(model, None, None, "", None, why, ran=False)


async def judge_pair(
    pair: PairResult,
    table: RoutingTable,
    *,
    model: str | None = None,
    env: Mapping[str, str],
    force_simulated: bool = False,
    http_client: Any = None,
    max_tokens: int | None = None,
) -> Judgement:
    """Judge a finished run: both orders at once. Never raises for a failed call (it becomes
    ``error``); a judge that cannot run comes back with ``ran=False`` and the reason."""
    from tui.router.run.execute import RunOptions, SidePlan, run_side_result

    primary, fallback, why = judge_plan(
        table, model=model, env=env, force_simulated=force_simulated
    )
    if why is None:
        why = why_not_judged(pair, table, model=model, env=env, force_simulated=force_simulated)
    if why is not None:
        return not_run(primary, why)
    plan = SidePlan(primary, fallback)
    instructions = table.judge.instructions
    routed, baseline = pair.routed.text, pair.baseline.text
    prompts = {
        "A": judge_prompt(instructions, pair.decision.prompt, routed, baseline),
        "B": judge_prompt(instructions, pair.decision.prompt, baseline, routed),
    }
    options = RunOptions(
        env=env, force_simulated=force_simulated, http_client=http_client, max_tokens=max_tokens
    )
    started = time.perf_counter()
    results = await asyncio.gather(*(
        run_side_result("baseline", plan, prompts[order], table, options)
        for order in ("A", "B")
    ))
    both: tuple[Literal["A", "B"], ...] = ("A", "B")
    orders = [_order_from(r, order) for r, order in zip(results, both, strict=True)]
    if any(r.simulated for r in results):  # never a simulated verdict, whatever happened
        return not_run(primary, f"judge {primary} not run: its answer was simulated")
    secrets = configured_secrets(env, table)
    judgement = combine(primary, orders[0], orders[1])
    return _redacted(judgement, secrets, (time.perf_counter() - started) * 1000.0)


def _redacted(j: Judgement, secrets: tuple[str, ...], wall_ms: float) -> Judgement:
    from dataclasses import replace

    def r(text: str | None) -> str | None:
        return None if text is None else clean(redact(text, secrets))

    orders = tuple(replace(o, reason=r(o.reason) or "", error=r(o.error), raw=r(o.raw) or "")
                   for o in j.orders)
    return replace(j, reason=r(j.reason) or "", error=r(j.error), orders=orders, wall_ms=wall_ms)


# --------------------------------------------------------------------------------------------
# Reading judgements back: per cell, per task, for a workload
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityStats:
    """Judgements counted: ``n`` are those with a verdict (routed/tie/baseline); unparsed and
    failed ones are counted apart and are not in the rate."""

    n: int = 0
    wins: int = 0
    ties: int = 0
    losses: int = 0
    unparsed: int = 0
    failed: int = 0
    inconsistent: int = 0
    cost_usd: float = 0.0

    @property
    def win_or_tie_rate(self) -> float | None:
        return (self.wins + self.ties) / self.n if self.n else None

    @property
    def win_or_tie_pct(self) -> float | None:
        rate = self.win_or_tie_rate
        return None if rate is None else 100.0 * rate

    def plus(self, j: Judgement) -> QualityStats:
        if not j.ran:
            return self
        cost = self.cost_usd + (j.cost_usd or 0.0)
        wins = self.wins + (j.verdict == "routed")
        ties = self.ties + (j.verdict == "tie")
        losses = self.losses + (j.verdict == "baseline")
        return QualityStats(
            n=wins + ties + losses, wins=wins, ties=ties, losses=losses,
            unparsed=self.unparsed + (j.verdict == "unparsed"),
            failed=self.failed + (j.verdict is None),
            inconsistent=self.inconsistent + (j.consistent is False),
            cost_usd=cost,
        )


@dataclass(frozen=True)
class QualitySummary:
    """A workload's quality beside its savings: overall and per task type."""

    judge_model: str
    total: QualityStats = field(default_factory=QualityStats)
    by_task: dict[str, QualityStats] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "judge_model": self.judge_model,
            "n_judged": self.total.n,
            "win_or_tie_pct": self.total.win_or_tie_pct,
            "n_unparsed": self.total.unparsed,
            "n_failed": self.total.failed,
            "n_inconsistent": self.total.inconsistent,
            "judge_cost_usd": self.total.cost_usd,
            "by_task": {
                task: {"n": s.n, "win_or_tie_pct": s.win_or_tie_pct}
                for task, s in self.by_task.items()
            },
        }

    def sentence(self, savings_pct: float | None) -> str:
        """ "routing saved 71% of the cost; the judge found the routed answer as good or better
        in 93% of 300 prompts (code 88%, math 95%, …)" """
        saved = percent(savings_pct)
        head = f"routing saved {saved} of the cost"
        if not self.total.n:
            return head + "; the judge gave no verdict on any prompt"
        parts = ", ".join(
            f"{task} {percent(s.win_or_tie_pct)}" for task, s in self.by_task.items() if s.n
        )
        return (
            f"{head}; the judge found the routed answer as good or better in "
            f"{percent(self.total.win_or_tie_pct)} of {self.total.n} prompts ({parts})"
        )


def summarize(judge_model: str, judged: Iterable[tuple[str, Judgement]]) -> QualitySummary:
    """``(task, judgement)`` pairs → a QualitySummary (tasks in order of first appearance)."""
    total = QualityStats()
    by_task: dict[str, QualityStats] = {}
    for task, j in judged:
        total = total.plus(j)
        by_task[task] = by_task.get(task, QualityStats()).plus(j)
    return QualitySummary(judge_model, total, by_task)


_CELL_SQL = (
    "SELECT runs.task, runs.priority, runs.cell_primary, judgements.verdict, "
    "COUNT(*), TOTAL(judgements.cost_usd) "
    "FROM judgements JOIN runs ON runs.id = judgements.run_id "
    # Unsure prompts sent to the baseline went through no cell: nothing routed to judge.
    "WHERE NOT (runs.uncertain = 1 AND runs.cell_primary = runs.b_model) "
    "GROUP BY runs.task, runs.priority, runs.cell_primary, judgements.verdict"
)


def _read_rows(runlog: Any, sql: str) -> list[tuple]:
    """Rows of ``sql`` over the run log's file, READ-ONLY; [] when the file or the judgements
    table (an older log) is missing. A file that cannot be read raises RunLogError."""
    path = Path(getattr(runlog, "path", runlog))
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10.0)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise _log_error(path, exc) from None
    except sqlite3.Error as exc:
        raise _log_error(path, exc) from None


def _log_error(path: Path, exc: Exception) -> Exception:
    from tui.router.log.runlog import RunLogError

    return RunLogError(f"cannot read the judgements in {path}: {exc}")


def _stats(counts: dict[str | None, tuple[int, float]]) -> QualityStats:
    def n(v: str | None) -> int:
        return counts.get(v, (0, 0.0))[0]

    wins, ties, losses = n("routed"), n("tie"), n("baseline")
    return QualityStats(
        n=wins + ties + losses, wins=wins, ties=ties, losses=losses, unparsed=n("unparsed"),
        failed=n(None), cost_usd=sum(c for _, c in counts.values()),
    )


def quality_by_cell(
    runlog: Any, table: RoutingTable, *, current_models_only: bool = False
) -> dict[tuple[str, str], QualityStats]:
    """The judge's verdicts per grid cell (as ``projection.cell_verdicts`` counts people's):
    every cell of ``table`` (zeros when none), runs sent to the baseline as unsure left out."""
    out = {key: QualityStats() for key in table.routes}
    counts: dict[tuple[str, str], dict[str | None, tuple[int, float]]] = {}
    for task, prio, primary, verdict, k, cost in _read_rows(runlog, _CELL_SQL):
        if current_models_only:
            cell = table.routes.get((task, prio))
            if cell is None or cell.primary != primary:
                continue
        c = counts.setdefault((task, prio), {})
        old_n, old_cost = c.get(verdict, (0, 0.0))
        c[verdict] = (old_n + int(k), old_cost + float(cost or 0.0))
    for key, c in counts.items():
        out[key] = _stats(c)
    return out


_TASK_SQL = (
    "SELECT runs.task, judgements.verdict, COUNT(*), TOTAL(judgements.cost_usd) "
    "FROM judgements JOIN runs ON runs.id = judgements.run_id "
    "GROUP BY runs.task, judgements.verdict ORDER BY runs.task"
)


def quality_by_task(runlog: Any) -> dict[str, QualityStats]:
    """The judge's verdicts in the run log per task type (empty when nothing was judged)."""
    counts: dict[str, dict[str | None, tuple[int, float]]] = {}
    for task, verdict, k, cost in _read_rows(runlog, _TASK_SQL):
        counts.setdefault(task, {})[verdict] = (int(k), float(cost or 0.0))
    return {task: _stats(c) for task, c in counts.items()}
