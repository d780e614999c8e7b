"""The threshold explorer (cost and accuracy at every confidence threshold) and the judge's
verdicts per grid cell, read from the run log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tui.router.cost.classified import Classified
from tui.router.cost.projection import Prices, pct_saved, route_columns
from tui.router.types import RoutingTable

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(i * 0.05, 2) for i in range(21))


@dataclass(frozen=True)
class SweepPoint:
    threshold: float
    n_uncertain: int  # prompts sent to the uncertain route (or lacking a cell)
    share_uncertain: float
    routed_usd: float
    baseline_usd: float
    savings_pct: float | None
    # Accuracy of the classifier's label on the labelled prompts that were routed by it
    # (the confident ones); None when there are none. The uncertain ones are counted above.
    accuracy_confident: float | None
    n_confident_labelled: int
    unpriced: int


def threshold_sweep(
    classified: Classified,
    table: RoutingTable,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
) -> list[SweepPoint]:
    """For each threshold: the share of prompts sent to the uncertain route, the projected cost
    and savings, and the accuracy of the confidently routed labelled prompts."""
    cols = classified.columns()
    prices = Prices(table)
    n = len(classified)
    out: list[SweepPoint] = []
    for thr in thresholds:
        r = route_columns(classified, table, float(thr), prices)
        priced = np.isfinite(r.routed) & np.isfinite(r.baseline)
        routed_usd = float(r.routed[priced].sum())
        baseline_usd = float(r.baseline[priced].sum())
        confident = cols["labelled"] & ~r.uncertain
        n_conf = int(confident.sum())
        n_unc = int(r.uncertain.sum())
        out.append(
            SweepPoint(
                threshold=float(thr),
                n_uncertain=n_unc,
                share_uncertain=n_unc / n if n else 0.0,
                routed_usd=routed_usd,
                baseline_usd=baseline_usd,
                savings_pct=pct_saved(baseline_usd, routed_usd),
                accuracy_confident=(
                    float((cols["correct"] & confident).sum()) / n_conf if n_conf else None
                ),
                n_confident_labelled=n_conf,
                unpriced=int(n - priced.sum()),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Verdicts per cell
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictStats:
    n: int = 0
    wins: int = 0  # the routed answer was better
    ties: int = 0
    losses: int = 0  # the baseline's answer was better

    @property
    def win_or_tie_rate(self) -> float | None:
        return (self.wins + self.ties) / self.n if self.n else None


_VERDICT_SQL = (
    "SELECT runs.task, runs.priority, runs.cell_primary, verdicts.verdict, COUNT(*) "
    "FROM verdicts JOIN runs ON runs.id = verdicts.run_id "
    # Unsure prompts sent to the baseline went through no cell: their verdicts judge nothing.
    "WHERE NOT (runs.uncertain = 1 AND runs.cell_primary = runs.b_model) "
    "GROUP BY runs.task, runs.priority, runs.cell_primary, verdicts.verdict"
)


def cell_verdicts(
    runlog: Any, table: RoutingTable, *, current_models_only: bool = False
) -> dict[tuple[str, str], VerdictStats]:
    """Verdicts per grid cell, read from the run log: every cell of ``table`` (zeros when it has
    none), plus any other (task, priority) the log holds verdicts for.

    A run counts for the cell it was routed through; runs sent to the baseline because the
    classifier was unsure are left out (nothing was routed). ``current_models_only`` counts only
    runs whose cell primary is the cell's primary model in ``table`` now.

    ``runlog`` is a ``RunLog`` or the path of its file (a missing file: no verdicts). RunLog has
    no per-cell query, so the file is read here with SQL over a separate READ-ONLY connection
    (``mode=ro``); a file that cannot be read raises ``runlog.RunLogError``.
    """
    path = Path(getattr(runlog, "path", runlog))
    out: dict[tuple[str, str], VerdictStats] = {key: VerdictStats() for key in table.routes}
    if not path.exists():
        return out
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10.0)
        try:
            rows = db.execute(_VERDICT_SQL).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        from tui.router.log.runlog import RunLogError

        raise RunLogError(f"cannot read the verdicts in {path}: {exc}") from None
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for task, prio, primary, verdict, k in rows:
        if current_models_only:
            cell = table.routes.get((task, prio))
            if cell is None or cell.primary != primary:
                continue
        c = counts.setdefault((task, prio), {})
        c[verdict] = c.get(verdict, 0) + int(k)
    for key, c in counts.items():
        wins, ties, losses = c.get("routed", 0), c.get("tie", 0), c.get("baseline", 0)
        out[key] = VerdictStats(wins + ties + losses, wins, ties, losses)
    return out
