"""A workload executed for real (``routedeck bench --execute``), journaled so that a rerun never
pays twice: every prompt's outcome is appended (and fsynced) to a JSONL journal as it finishes,
and a rerun of the same workload with the same routes skips the prompts already there.

The front end (the CLI) prints; this module runs, journals and sums up. Nothing here imports
Textual or writes to a terminal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.router import settings
from tui.router.cost.projection import pct_saved
from tui.router.types import RoutingTable

if TYPE_CHECKING:
    from tui.router.cost.workload import WorkloadItem
    from tui.router.run.judge import Judgement
    from tui.router.run.session import Session

# One journal row: index, task, routed_model, baseline_model, routed_usd, baseline_usd, simulated,
# error, and (a judged execution) judge.
Row = dict[str, Any]


def journal_path(workload: str | os.PathLike[str], table: RoutingTable,
                 judge: str | None = None) -> Path:
    """Where an executed workload's progress is kept, so an interrupted run resumes for free.
    A judged execution (``judge``: the judge model) keeps a journal of its own."""
    digest = hashlib.sha256()
    digest.update(Path(workload).read_bytes())
    digest.update(repr(sorted((k, v.primary) for k, v in table.routes.items())).encode())
    digest.update(table.baseline.model.encode())
    if judge is not None:
        digest.update(f"judge:{judge}".encode())
    return settings.bench_dir() / f"{digest.hexdigest()[:20]}.jsonl"


def read_journal(path: Path) -> dict[int, Row]:
    """The rows already journaled, by prompt index (none when there is no journal yet)."""
    done: dict[int, Row] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return done
    for line in lines:
        try:
            row = json.loads(line)
            done[int(row["index"])] = row
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash: that prompt simply runs again
    return done


def judgement_json(judgement: Judgement) -> dict[str, Any]:
    """A judge's verdict and its cost (never part of the savings): ``judge`` of
    ``route --json``, and of a judged journal row (with ``ran`` added)."""
    return {
        "model": judgement.model,
        "verdict": judgement.verdict,
        "consistent": judgement.consistent,
        "reason": judgement.reason or None,
        "cost_usd": judgement.cost_usd,
        "error": judgement.error,
    }


def workload_judge(session: Session, judge: str | None) -> tuple[str | None, str | None]:
    """(the judge model: ``judge``, "" asks for the default one, None for no judge; why the
    judge cannot run, if so)."""
    if judge is None:
        return None, None
    from tui.router.run.judge import judge_plan

    model, _, why = judge_plan(session.table, model=judge or None, env=session.env,
                               force_simulated=session.force_simulated)
    return judge or model, why


# Called after each prompt: (its row, routed and baseline dollars spent so far).
OnRow = Callable[[Row, float, float], None]


async def execute_workload(
    session: Session,
    items: Sequence[WorkloadItem],
    journal: Path,
    done: dict[int, Row],
    *,
    concurrency: int,
    judge: str | None = None,
    judge_why: str | None = None,
    on_row: OnRow | None = None,
) -> None:
    """Run every prompt of ``items`` not in ``done`` (at most ``concurrency`` at a time), each
    recorded in the session's run log and appended to ``journal``; ``done`` fills as they end.
    With ``judge`` (and no ``judge_why``), the LLM judge judges every run."""
    sem = asyncio.Semaphore(max(1, concurrency))
    spent = {"routed": sum(r.get("routed_usd") or 0 for r in done.values()),
             "baseline": sum(r.get("baseline_usd") or 0 for r in done.values())}
    todo = [i for i in range(len(items)) if i not in done]
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        async def one(i: int) -> None:
            judgement = None
            async with sem:
                decision = session.decide(items[i].prompt, items[i].priority)
                pair = await session.start(decision).wait()
                if judge is not None and judge_why is None:
                    judgement = await session.judge(pair, judge or None)
            run_id = session.record(pair)
            if judgement is not None:
                session.record_judgement(run_id, judgement)
            row: Row = {
                "index": i,
                "task": decision.task,
                "routed_model": pair.routed.model,
                "baseline_model": pair.baseline.model,
                "routed_usd": pair.routed.cost_usd,
                "baseline_usd": pair.baseline.cost_usd,
                "simulated": pair.routed.simulated or pair.baseline.simulated,
                "error": pair.routed.error or pair.baseline.error,
            }
            if judgement is not None:
                row["judge"] = judgement_json(judgement) | {"ran": judgement.ran}
            os.write(fd, (json.dumps(row) + "\n").encode())
            os.fsync(fd)
            done[i] = row
            spent["routed"] += pair.routed.cost_usd or 0
            spent["baseline"] += pair.baseline.cost_usd or 0
            if on_row is not None:
                on_row(row, spent["routed"], spent["baseline"])

        await asyncio.gather(*(one(i) for i in todo))
    finally:
        os.close(fd)


def measured_totals(rows: Sequence[Row], journal: Path) -> dict[str, Any]:
    """``measured`` of ``bench --execute``: what the executed runs cost, routed and baseline."""
    priced = [r for r in rows if r.get("routed_usd") is not None and r.get("baseline_usd") is not None]
    routed = sum(r["routed_usd"] for r in priced)
    baseline = sum(r["baseline_usd"] for r in priced)
    return {
        "n": len(rows),
        "routed_usd": routed,
        "baseline_usd": baseline,
        "savings_pct": pct_saved(baseline, routed),
        "unpriced": len(rows) - len(priced),
        "errors": sum(1 for r in rows if r.get("error")),
        "simulated": sum(1 for r in rows if r.get("simulated")),
        "journal": str(journal),
    }


def workload_quality(session: Session, judge: str, why: str | None, rows: Sequence[Row],
                     measured: dict[str, Any]) -> dict[str, Any]:
    """``quality`` of ``bench --execute --judge``: the judge's verdicts over the workload."""
    from tui.router.run.judge import Judgement, summarize

    model = session.judge_model(judge or None)
    judged = [
        (r["task"], Judgement(model, j.get("verdict"), j.get("consistent"), "",
                              j.get("cost_usd"), j.get("error"), bool(j.get("ran"))))
        for r in rows if (j := r.get("judge"))
    ]
    summary = summarize(model, judged)
    out = summary.as_json()
    out["not_judged"] = sum(1 for r in rows if not (r.get("judge") or {}).get("ran"))
    out["sentence"] = summary.sentence(measured["savings_pct"])
    if why:
        out["error"] = why
    return out
