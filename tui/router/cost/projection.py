"""What routing a workload would cost: projection and what-if replay.

The flow, built for a screen that recomputes while a person edits the routing table::

    items      = read_workload("workload.jsonl")             # or WorkloadItem(...) from anywhere
    classified = classify_workload(items, table, classifier)  # the slow part, done ONCE
    projection = reproject(classified, table)                 # milliseconds
    projection = reproject(classified, edited_table)          # what-if: cells or threshold changed
    points     = threshold_sweep(classified, table)           # the threshold explorer

Workloads are read in :mod:`tui.router.cost.workload`, classified in
:mod:`tui.router.cost.classified` (how output tokens are settled, and progress, is a
:class:`~tui.router.cost.classified.WorkloadOptions`); the threshold sweep and the verdicts per
cell are in :mod:`tui.router.cost.sweep`. :func:`project` does the first two steps in one call
(``projection.classified`` keeps the classifications for later :func:`reproject` calls).

What is estimated, and how (every figure here is a projection, not a bill):

* input tokens: ``ceil(characters / 4)`` of the prompt (:data:`CHARS_PER_TOKEN`); real tokenizers
  differ by about -70% to +30% depending on the text, so ``input_tokens_estimated`` is always True;
* output tokens, per prompt, in this order: the item's own ``output_tokens``; else the run log's
  average for the prompt's classified task type (``output_tokens_by_task``, e.g.
  ``RunLog.avg_output_tokens_by_task()``); else :data:`DEFAULT_OUTPUT_TOKENS` for the task type
  (:data:`UNKNOWN_TASK_OUTPUT_TOKENS` for a task type it does not list). The same count is used for
  the routed model and the baseline;
* cost: :func:`tui.router.cost.pricing.cost_usd` of the routed cell's PRIMARY model and of the table's
  baseline model, at today's prices (no fallbacks, retries or hedges, no cached input). A model the
  price library does not know makes its prompt "unpriced": counted in ``unpriced``, left out of
  both sums (so the savings compare like with like), never given an invented price.

Speed: a prompt's classification is the only per-prompt work that is slow (featurizing it in
Python); see :mod:`tui.router.cost.classified`.
:func:`reproject` never classifies: it calls :func:`tui.router.table.decide.decide` once per distinct
(label, priority, above/below threshold) group with the stored classification, looks each model's
price up once, and sums with numpy.

Nothing here imports Textual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tui.router.cost.classified import Classified, WorkloadOptions, classify_workload
from tui.router.cost.pricing import cost_usd
from tui.router.cost.workload import WorkloadItem
from tui.router.table.decide import decide
from tui.router.types import Classification, RoutingTable

# Above this many tokens a call may fall in a price tier (long-context prices start at 128k or
# 200k input tokens); such prompts are priced one by one instead of with the per-model rates.
LINEAR_PRICE_MAX_TOKENS = 32_000


@dataclass(frozen=True)
class TaskProjection:
    task: str
    count: int
    routed_usd: float  # over this task's priced prompts
    baseline_usd: float
    unpriced: int = 0

    @property
    def savings_usd(self) -> float:
        return self.baseline_usd - self.routed_usd

    @property
    def savings_pct(self) -> float | None:
        return pct_saved(self.baseline_usd, self.routed_usd)


@dataclass(frozen=True)
class ProjectionRow:
    """One prompt of the projection (for tables and charts)."""

    index: int
    line: int
    task: str  # the classified label
    routed_task: str  # the task whose cell was used (the uncertain route's, or the label)
    priority: str
    confidence: float | None
    uncertain: bool
    model: str  # the routed model (the cell's primary, or the baseline when uncertain)
    input_tokens: int  # estimated
    output_tokens: int
    routed_usd: float | None  # None: the model has no known price
    baseline_usd: float | None
    true_label: str | None = None


def pct_saved(baseline: float, routed: float) -> float | None:
    return 100.0 * (baseline - routed) / baseline if baseline > 0 else None


class _Fixed:
    """A classifier that answers with a stored classification (decide() without re-classifying)."""

    name = "fixed"

    def __init__(self, c: Classification):
        self.c = c

    def classify(self, prompt: str) -> Classification:
        return self.c


class Prices:
    """Per-model price terms from :func:`cost_usd`: cost = fixed + in × rate_in + out × rate_out
    (``fixed`` is a per-request fee, e.g. Perplexity's). One look-up set per model."""

    _N = 1000  # tokens used to read the rates (far below any long-context tier)

    def __init__(self, table: RoutingTable):
        self.table = table
        self._terms: dict[str, tuple[float, float, float] | None] = {}

    def terms(self, model: str) -> tuple[float, float, float] | None:
        if model not in self._terms:
            base = cost_usd(model, 0, 0, table=self.table)
            if base is None:
                self._terms[model] = None
            else:
                inp = cost_usd(model, self._N, 0, table=self.table)
                out = cost_usd(model, 0, self._N, table=self.table)
                if inp is None or out is None:
                    self._terms[model] = None
                else:
                    self._terms[model] = (base, (inp - base) / self._N, (out - base) / self._N)
        return self._terms[model]

    def costs(self, model_idx: np.ndarray, models: list[str], cols: dict[str, Any]) -> np.ndarray:
        """Cost of each row on ``models[model_idx[row]]`` (NaN when the model has no price)."""
        terms = [self.terms(m) for m in models]
        fixed = np.array([t[0] if t else np.nan for t in terms])
        rin = np.array([t[1] if t else np.nan for t in terms])
        rout = np.array([t[2] if t else np.nan for t in terms])
        in_tok, out_tok = cols["in_tok"], cols["out_tok"]
        cost = fixed[model_idx] + in_tok * rin[model_idx] + out_tok * rout[model_idx]
        big = np.flatnonzero((in_tok + out_tok > LINEAR_PRICE_MAX_TOKENS) & np.isfinite(cost))
        for i in big:  # may be in a long-context price tier: price these exactly
            exact = cost_usd(
                models[int(model_idx[i])], int(in_tok[i]), int(out_tok[i]), table=self.table
            )
            cost[i] = np.nan if exact is None else exact
        return cost


@dataclass
class _Routing:
    threshold: float
    models: list[str]
    model_idx: np.ndarray
    uncertain: np.ndarray
    routed_tasks: list[str]
    routed_task_idx: np.ndarray
    routed: np.ndarray  # NaN where unpriced
    baseline: np.ndarray


def route_columns(
    classified: Classified, table: RoutingTable, threshold: float, prices: Prices
) -> _Routing:
    cols = classified.columns()
    n = len(classified)
    conf = cols["conf"]
    with np.errstate(invalid="ignore"):
        passes = cols["llm_none"] | (conf >= threshold)
    n_prio = max(1, len(cols["priorities"]))
    key = (cols["label_idx"] * n_prio + cols["prio_idx"]) * 2 + passes.astype(np.intp)
    groups, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    settings = replace(table.classifier, threshold=threshold)
    t = replace(table, classifier=settings) if settings != table.classifier else table
    models: dict[str, int] = {t.baseline.model: 0}
    tasks: dict[str, int] = {}
    g_model = np.empty(len(groups), dtype=np.intp)
    g_uncertain = np.empty(len(groups), dtype=bool)
    g_task = np.empty(len(groups), dtype=np.intp)
    for g, i in enumerate(first):
        it = classified.items[int(i)]
        prio = it.priority if it.priority in t.priorities else t.default_priority
        d = decide(it.prompt, t, _Fixed(it.classification), priority=prio)
        g_model[g] = models.setdefault(d.cell.primary, len(models))
        g_uncertain[g] = d.uncertain
        g_task[g] = tasks.setdefault(d.task, len(tasks))
    model_list = list(models)
    model_idx = g_model[inverse] if n else np.zeros(0, dtype=np.intp)
    routed = prices.costs(model_idx, model_list, cols)
    baseline = prices.costs(np.zeros(n, dtype=np.intp), model_list, cols)
    return _Routing(
        threshold=threshold,
        models=model_list,
        model_idx=model_idx,
        uncertain=g_uncertain[inverse] if n else np.zeros(0, dtype=bool),
        routed_tasks=list(tasks),
        routed_task_idx=g_task[inverse] if n else np.zeros(0, dtype=np.intp),
        routed=routed,
        baseline=baseline,
    )


@dataclass
class Projection:
    """The projected cost of a workload routed with one table, against the baseline.

    Sums are over PRICED prompts (both models priced); ``unpriced`` counts the others.
    ``by_task`` is keyed by the classified task type, in the table's task order.
    """

    n: int
    by_task: dict[str, TaskProjection]
    routed_usd: float
    baseline_usd: float
    savings_pct: float | None
    unpriced: int
    baseline_model: str
    threshold: float
    n_uncertain: int
    accuracy: float | None  # of the classifier on the labelled prompts (None: none labelled)
    n_labelled: int
    output_tokens_sources: dict[str, int]
    by_model: dict[str, dict[str, float]] = field(default_factory=dict)
    input_tokens_estimated: bool = True
    classified: Classified | None = field(default=None, repr=False)
    _routing: _Routing | None = field(default=None, repr=False)

    @property
    def savings_usd(self) -> float:
        return self.baseline_usd - self.routed_usd

    @property
    def share_uncertain(self) -> float:
        return self.n_uncertain / self.n if self.n else 0.0

    @property
    def rows(self) -> list[ProjectionRow]:
        """Every prompt's row, in workload order (built on first use)."""
        cached = self.__dict__.get("_rows")
        if cached is not None:
            return cached
        r, items = self._routing, self.classified
        rows: list[ProjectionRow] = []
        if r is not None and items is not None:
            for i, it in enumerate(items):
                routed, base = float(r.routed[i]), float(r.baseline[i])
                rows.append(
                    ProjectionRow(
                        index=i,
                        line=it.line,
                        task=it.label,
                        routed_task=r.routed_tasks[int(r.routed_task_idx[i])],
                        priority=it.priority,
                        confidence=it.confidence,
                        uncertain=bool(r.uncertain[i]),
                        model=r.models[int(r.model_idx[i])],
                        input_tokens=it.input_tokens,
                        output_tokens=it.output_tokens,
                        routed_usd=None if math.isnan(routed) else routed,
                        baseline_usd=None if math.isnan(base) else base,
                        true_label=it.true_label,
                    )
                )
        self.__dict__["_rows"] = rows
        return rows

    def cumulative(self, points: int | None = None) -> list[tuple[int, float, float]]:
        """``(prompts so far, routed USD, baseline USD)`` cumulated in workload order over the
        priced prompts, for a chart; ``points`` evenly spaced samples (always ending at n)."""
        r = self._routing
        if r is None or self.n == 0:
            return []
        priced = np.isfinite(r.routed) & np.isfinite(r.baseline)
        routed = np.cumsum(np.where(priced, r.routed, 0.0))
        base = np.cumsum(np.where(priced, r.baseline, 0.0))
        if points is None or points >= self.n:
            idx = np.arange(self.n)
        else:
            idx = np.unique(np.linspace(0, self.n - 1, max(1, points)).round().astype(np.intp))
        return [(int(i) + 1, float(routed[i]), float(base[i])) for i in idx]

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "by_task": {
                name: {
                    "count": t.count,
                    "routed_usd": t.routed_usd,
                    "baseline_usd": t.baseline_usd,
                    "savings_pct": t.savings_pct,
                    "unpriced": t.unpriced,
                }
                for name, t in self.by_task.items()
            },
            "routed_usd": self.routed_usd,
            "baseline_usd": self.baseline_usd,
            "savings_pct": self.savings_pct,
            "unpriced": self.unpriced,
            "baseline_model": self.baseline_model,
            "threshold": self.threshold,
            "uncertain": self.n_uncertain,
            "accuracy": self.accuracy,
            "n_labelled": self.n_labelled,
            "by_model": self.by_model,
            "input_tokens_estimated": self.input_tokens_estimated,
            "output_tokens_sources": self.output_tokens_sources,
        }


def reproject(
    classified: Classified, table: RoutingTable, *, threshold: float | None = None
) -> Projection:
    """The projection of already-classified prompts under ``table`` (edited cells, baseline or
    uncertain route) and ``threshold`` (default: the table's). Never re-classifies."""
    cols = classified.columns()
    thr = table.classifier.threshold if threshold is None else float(threshold)
    r = route_columns(classified, table, thr, Prices(table))
    n = len(classified)
    priced = np.isfinite(r.routed) & np.isfinite(r.baseline)
    label_idx = cols["label_idx"]
    n_labels = len(cols["labels"])
    count = np.bincount(label_idx, minlength=n_labels)
    routed_by = np.bincount(label_idx, weights=np.where(priced, r.routed, 0.0), minlength=n_labels)
    base_by = np.bincount(label_idx, weights=np.where(priced, r.baseline, 0.0), minlength=n_labels)
    unpriced_by = np.bincount(label_idx, weights=~priced, minlength=n_labels)
    order = [t for t in table.tasks if t in cols["labels"]]
    order += [t for t in cols["labels"] if t not in table.tasks]
    by_task = {}
    for name in order:
        j = cols["labels"].index(name)
        by_task[name] = TaskProjection(
            name, int(count[j]), float(routed_by[j]), float(base_by[j]), int(unpriced_by[j])
        )
    by_model: dict[str, dict[str, float]] = {}
    if n:
        m_count = np.bincount(r.model_idx, minlength=len(r.models))
        m_cost = np.bincount(r.model_idx, weights=np.where(priced, r.routed, 0.0),
                             minlength=len(r.models))
        for j, m in enumerate(r.models):
            if m_count[j]:
                by_model[m] = {"count": int(m_count[j]), "routed_usd": float(m_cost[j])}
    routed_usd = float(r.routed[priced].sum())
    baseline_usd = float(r.baseline[priced].sum())
    sources: dict[str, int] = {}
    for it in classified.items:
        sources[it.output_source] = sources.get(it.output_source, 0) + 1
    return Projection(
        n=n,
        by_task=by_task,
        routed_usd=routed_usd,
        baseline_usd=baseline_usd,
        savings_pct=pct_saved(baseline_usd, routed_usd),
        unpriced=int(n - priced.sum()),
        baseline_model=table.baseline.model,
        threshold=thr,
        n_uncertain=int(r.uncertain.sum()),
        accuracy=classified.accuracy,
        n_labelled=classified.n_labelled,
        output_tokens_sources=sources,
        by_model=by_model,
        classified=classified,
        _routing=r,
    )


def project(
    items: Sequence[WorkloadItem],
    table: RoutingTable,
    classifier: Any,
    *,
    options: WorkloadOptions | None = None,
) -> Projection:
    """Classify ``items`` once and project their cost under ``table`` (see the module notes);
    ``options``: output tokens and progress (:class:`WorkloadOptions`, defaults when None).
    ``projection.classified`` feeds later :func:`reproject` / :func:`threshold_sweep` calls."""
    classified = classify_workload(items, table, classifier, options=options)
    return reproject(classified, table)
