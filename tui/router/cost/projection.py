"""What routing a workload would cost: projection, what-if replay, threshold sweep, verdicts.

The flow, built for a screen that recomputes while a person edits the routing table::

    items      = read_workload("workload.jsonl")             # or WorkloadItem(...) from anywhere
    classified = classify_workload(items, table, classifier)  # the slow part, done ONCE
    projection = reproject(classified, table)                 # milliseconds
    projection = reproject(classified, edited_table)          # what-if: cells or threshold changed
    points     = threshold_sweep(classified, table)           # the threshold explorer

:func:`project` does the first two steps in one call (``projection.classified`` keeps the
classifications for later :func:`reproject` calls).

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
Python). :func:`classify_workload` classifies each distinct prompt once; with the standard
classifier stack (cache → rules → local model) it skips the per-prompt explanation work and scores
prompts in batches with numpy, giving the same labels and confidences as ``classifier.classify``.
:func:`reproject` never classifies: it calls :func:`tui.router.table.decide.decide` once per distinct
(label, priority, above/below threshold) group with the stored classification, looks each model's
price up once, and sums with numpy.

Nothing here imports Textual.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tui.router.cost.pricing import cost_usd
from tui.router.files import read_regular_file
from tui.router.run.metrics import estimate_tokens as _estimate_tokens
from tui.router.table.decide import decide, infer_priority
from tui.router.types import Classification, RoutingTable

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_THRESHOLDS",
    "UNKNOWN_TASK_OUTPUT_TOKENS",
    "Classified",
    "ClassifiedItem",
    "Projection",
    "ProjectionRow",
    "SweepPoint",
    "TaskProjection",
    "VerdictStats",
    "WorkloadError",
    "WorkloadItem",
    "cell_verdicts",
    "classify_prompts",
    "classify_workload",
    "estimate_tokens",
    "parse_workload",
    "project",
    "read_workload",
    "reproject",
    "threshold_sweep",
    "workload_from_runs",
]

# Output tokens assumed per task type when neither the item nor the run log says (a typical
# answer's length for that kind of work; the README documents these figures).
DEFAULT_OUTPUT_TOKENS: dict[str, int] = {
    "code": 600,
    "math": 400,
    "extraction": 250,
    "creative": 700,
    "factual": 300,
    "general": 450,
}
UNKNOWN_TASK_OUTPUT_TOKENS = 400  # a task type DEFAULT_OUTPUT_TOKENS does not list
CHARS_PER_TOKEN = 4  # the input-token estimate: ceil(len(prompt) / 4)
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(i * 0.05, 2) for i in range(21))
# Above this many tokens a call may fall in a price tier (long-context prices start at 128k or
# 200k input tokens); such prompts are priced one by one instead of with the per-model rates.
LINEAR_PRICE_MAX_TOKENS = 32_000
# A bad workload file's message lists this many problems (WorkloadError.problems has them all).
MAX_LISTED_PROBLEMS = 200

ProgressFn = Callable[[int, int], None]  # (done, total); raise from it to cancel


# --------------------------------------------------------------------------------------------
# The workload file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadItem:
    prompt: str
    # The true task type, when the workload is labelled (accuracy is reported on these).
    task_type: str | None = None
    # The answer's length when known (else the run log's average or a default is assumed).
    output_tokens: int | None = None
    # A priority to route with (e.g. replaying a logged run); None infers it from the prompt.
    priority: str | None = None
    line: int = 0  # line number in the file it came from (0: not from a file)


class WorkloadError(ValueError):
    """A workload that cannot be used. ``problems`` holds ``(line, message)`` for every bad line
    (line 0: the file as a whole); the message lists them as ``name:line: message``."""

    def __init__(self, name: str, problems: list[tuple[int, str]]):
        self.name = name
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = [
            f"{self.name}:{line}: {msg}" if line else f"{self.name}: {msg}"
            for line, msg in self.problems[:MAX_LISTED_PROBLEMS]
        ]
        more = len(self.problems) - MAX_LISTED_PROBLEMS
        if more > 0:
            shown.append(f"{self.name}: … and {more} more bad line{'s' if more > 1 else ''}")
        return "\n".join(shown)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_workload(lines: Iterable[str | bytes], name: str = "workload") -> list[WorkloadItem]:
    """Workload items from JSONL lines (``str`` or ``bytes``; blank lines are skipped).

    Each line is an object with ``prompt`` (a non-empty string) and optionally ``task_type``
    (string or null), ``output_tokens`` (a non-negative integer or null) and ``priority``
    (string or null); other keys are ignored. Every bad line is reported at once, with its number,
    in one :class:`WorkloadError`.
    """
    items: list[WorkloadItem] = []
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append((number, f"not UTF-8 text (byte {exc.start + 1})"))
                continue
        else:
            line = raw
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((number, f"not JSON ({exc.msg}, column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append((number, 'expected a JSON object like {"prompt": "..."}'))
            continue
        bad: list[str] = []
        prompt = obj.get("prompt")
        if "prompt" not in obj:
            bad.append("'prompt' is missing")
        elif not isinstance(prompt, str):
            bad.append(f"'prompt' must be a string, not {_json_kind(prompt)}")
        elif not prompt.strip():
            bad.append("'prompt' is empty")
        task_type = obj.get("task_type")
        if task_type is not None and (not isinstance(task_type, str) or not task_type.strip()):
            bad.append("'task_type' must be a non-empty string or null")
        out = obj.get("output_tokens")
        if out is not None:
            if isinstance(out, float) and out.is_integer():
                out = int(out)
            if not _is_int(out):
                bad.append(f"'output_tokens' must be a whole number, not {_json_kind(out)}")
            elif out < 0:
                bad.append(f"'output_tokens' must not be negative, not {out}")
        priority = obj.get("priority")
        if priority is not None and (not isinstance(priority, str) or not priority.strip()):
            bad.append("'priority' must be a non-empty string or null")
        if bad:
            problems.append((number, "; ".join(bad)))
            continue
        items.append(WorkloadItem(prompt, task_type, out, priority, number))
    if problems:
        raise WorkloadError(name, problems)
    if not items:
        raise WorkloadError(name, [(0, "no prompts in the file")])
    return items


# A workload file larger than this is refused (a regular file only: never a pipe or a device).
MAX_WORKLOAD_BYTES = 64 * 1024 * 1024


def read_workload(path: str | os.PathLike[str]) -> list[WorkloadItem]:
    """Read a JSONL workload file (see :func:`parse_workload`); raises :class:`WorkloadError`.

    Lines are split on ``\\n`` only (JSON strings may hold U+2028 and similar characters raw).
    """
    p = Path(path)
    try:
        data = read_regular_file(p, MAX_WORKLOAD_BYTES)
    except OSError as exc:
        raise WorkloadError(str(p), [(0, f"cannot read: {exc.strerror or exc}")]) from None
    return parse_workload(data.split(b"\n"), str(p))


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return f"the number {v}"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return "an object"


def workload_from_runs(runs: Iterable[Any], *, keep_priority: bool = True) -> list[WorkloadItem]:
    """Workload items from run-log records (``RunLog.recent(...)``), oldest first, for what-if
    replay of past prompts. Their output tokens are left to the run log's averages (the two sides
    of a logged run answered at different lengths); their priority is kept unless told not to."""
    items = [
        WorkloadItem(
            prompt=r.prompt,
            priority=r.priority if keep_priority else None,
            line=int(getattr(r, "id", 0) or 0),
        )
        for r in runs
        if isinstance(getattr(r, "prompt", None), str) and r.prompt.strip()
    ]
    items.sort(key=lambda it: it.line)
    return items


def estimate_tokens(text: str) -> int:
    """An ESTIMATE of the tokens of ``text``: ``ceil(len / 4)``, at least 1."""
    return max(1, _estimate_tokens(len(text)))


# --------------------------------------------------------------------------------------------
# Classifying a workload (once)
# --------------------------------------------------------------------------------------------


def _unwrap(classifier: Any) -> tuple[Any, Any] | None:
    """(rules or None, local) when ``classifier`` is the standard local stack
    (``CachingClassifier`` → ``RuleClassifier`` → ``LocalClassifier``), else None."""
    from tui.router.classifier.local import CachingClassifier, LocalClassifier, RuleClassifier

    c = classifier
    if isinstance(c, CachingClassifier):
        c = c.inner
    rules = None
    if isinstance(c, RuleClassifier):
        rules, c = c, c.inner
    if isinstance(c, LocalClassifier):
        return rules, c
    return None


_CHUNK = 256  # prompts scored per numpy batch


def _score_batch(model: Any, prompts: Sequence[str]) -> np.ndarray:
    """Calibrated probabilities (n, labels) of ``prompts``, exactly as ``LinearModel`` computes
    them one by one (tf-idf, per-group normalisation, dot product, logits scaled by the share of
    known words, softmax of logits / T)."""

    # (known columns, counts, share of known words)
    per_prompt = [model.columns(prompt) for prompt in prompts]
    n = len(prompts)
    k = len(model.labels)
    z = np.tile(model.intercept, (n, 1))
    col = np.concatenate([c for c, _, _ in per_prompt]) if n else np.zeros(0, dtype=np.intp)
    if len(col):
        rows = np.repeat(np.arange(n), [len(c) for c, _, _ in per_prompt])
        tf = np.concatenate([t for _, t, _ in per_prompt]).astype(np.float64)
        vals = (np.log(tf) + 1.0) * model.idf[col]
        n_groups = len(model.group_weights)
        grp = model.groups[col]
        sq = np.bincount(rows * n_groups + grp, weights=vals * vals, minlength=n * n_groups)
        sq = sq.reshape(n, n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(sq > 0, model.group_weights[None, :] / np.sqrt(sq), 0.0)
        vals = vals * scale[rows, grp]
        for j in range(k):
            z[:, j] += np.bincount(rows, weights=vals * model.coef[col, j], minlength=n)
    if n:
        z *= np.array([s for _, _, s in per_prompt])[:, None]
    z = z / model.temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _batch_agrees(local: Any, prompts: Sequence[str]) -> bool:
    """Whether the batch path gives what ``local.classify`` gives, on the first prompts (a guard
    against the two drifting apart as the classifier evolves)."""
    sample = [p for p in prompts[:3] if p.strip()]
    if not sample:
        return True
    probs = _score_batch(local.model, sample)
    for row, prompt in enumerate(sample):
        want = local.classify(prompt)
        best = int(np.argmax(probs[row]))
        if (
            want.label != local.model.labels[best]
            or want.confidence is None
            or abs(want.confidence - float(probs[row, best])) > 1e-9
        ):
            return False
    return True


def classify_prompts(
    prompts: Sequence[str], classifier: Any, *, on_progress: ProgressFn | None = None
) -> list[Classification]:
    """Classify each prompt; equal prompts are classified once. With the standard local stack
    the batch path is used (same labels and confidences; reasons without the evidence words).
    ``on_progress(done, total)`` counts distinct prompts; raise from it to cancel."""
    unique: dict[str, int] = {}
    order = [unique.setdefault(p, len(unique)) for p in prompts]
    distinct = list(unique)
    total = len(distinct)
    results: list[Classification | None] = [None] * total
    stack = _unwrap(classifier)
    if stack is not None and not _batch_agrees(stack[1], distinct):
        stack = None  # the local classifier computes differently now: use it as it is

    def progress(done: int) -> None:
        if on_progress is not None:
            on_progress(done, total)

    if stack is None:
        step = max(1, total // 100)
        for i, p in enumerate(distinct):
            results[i] = classifier.classify(p)
            if (i + 1) % step == 0 or i + 1 == total:
                progress(i + 1)
    else:
        rules, local = stack
        model = local.model
        top_k = min(3, len(model.labels))
        for start in range(0, total, _CHUNK):
            started = time.perf_counter()
            chunk = distinct[start : start + _CHUNK]
            pending: list[int] = []
            for i, p in enumerate(chunk):
                if not p.strip():
                    raise ValueError("empty prompt")
                if rules is not None and rules.match(p) is not None:
                    results[start + i] = rules.classify(p)
                else:
                    pending.append(i)
            if pending:
                probs = _score_batch(model, [chunk[i] for i in pending])
                order_k = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
                each_ms = (time.perf_counter() - started) * 1000.0 / len(chunk)
                for row, i in enumerate(pending):
                    best = order_k[row]
                    top = tuple((model.labels[int(j)], float(probs[row, j])) for j in best)
                    results[start + i] = Classification(
                        label=top[0][0],
                        confidence=top[0][1],
                        top=top,
                        classifier=local.name,
                        reason="local classifier",
                        elapsed_ms=each_ms,
                    )
            progress(min(total, start + _CHUNK))
    return [results[i] for i in order]  # type: ignore[misc]


@dataclass(frozen=True)
class ClassifiedItem:
    prompt: str
    classification: Classification
    priority: str
    priority_reason: str
    true_label: str | None
    input_tokens: int  # an estimate (chars / 4)
    output_tokens: int  # from the item, the run log's average, or a default: see output_source
    output_source: str  # "item", "runlog" or "default"
    line: int = 0
    # The item's own output_tokens (None when it gave none), kept for with_output_tokens().
    given_output_tokens: int | None = None

    @property
    def label(self) -> str:
        return self.classification.label

    @property
    def confidence(self) -> float | None:
        return self.classification.confidence


def _output_tokens(
    label: str,
    given: int | None,
    by_task: Mapping[str, float] | None,
    default: Mapping[str, int] | int,
) -> tuple[int, str]:
    if given is not None:
        return int(given), "item"
    if by_task:
        avg = by_task.get(label)
        if avg is not None and math.isfinite(avg) and avg >= 0:
            return int(round(avg)), "runlog"
    if isinstance(default, Mapping):
        return int(default.get(label, UNKNOWN_TASK_OUTPUT_TOKENS)), "default"
    return int(default), "default"


def _tasks_signature(table: RoutingTable) -> tuple:
    return tuple((n, t.examples, t.rules) for n, t in table.tasks.items())


class Classified(Sequence[ClassifiedItem]):
    """The classified workload: one :class:`ClassifiedItem` per workload item, in order, plus the
    numpy columns :func:`reproject` works on (built once, on first use)."""

    def __init__(self, items: Sequence[ClassifiedItem], tasks_signature: tuple = ()):
        self.items: tuple[ClassifiedItem, ...] = tuple(items)
        self._signature = tasks_signature
        self._cols: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):  # type: ignore[override]
        return self.items[index]

    def __iter__(self):
        return iter(self.items)

    def matches(self, table: RoutingTable) -> bool:
        """Whether ``table`` has the task types (examples, rules) these were classified with;
        when not, the labels may be stale (classify again after retraining)."""
        return self._signature == _tasks_signature(table)

    def with_output_tokens(
        self,
        output_tokens_by_task: Mapping[str, float] | None = None,
        default_output_tokens: Mapping[str, int] | int = DEFAULT_OUTPUT_TOKENS,
    ) -> Classified:
        """The same classifications with output tokens assumed afresh (no re-classifying)."""
        items = []
        for it in self.items:
            out, src = _output_tokens(
                it.label, it.given_output_tokens, output_tokens_by_task, default_output_tokens
            )
            items.append(replace(it, output_tokens=out, output_source=src))
        return Classified(items, self._signature)

    @property
    def n_labelled(self) -> int:
        return int(self.columns()["labelled"].sum())

    @property
    def accuracy(self) -> float | None:
        """Share of labelled items whose classified label is the true one (None: no labels)."""
        cols = self.columns()
        n = int(cols["labelled"].sum())
        return float(cols["correct"].sum()) / n if n else None

    def columns(self) -> dict[str, Any]:
        if self._cols is None:
            labels: dict[str, int] = {}
            prios: dict[str, int] = {}
            n = len(self.items)
            label_idx = np.empty(n, dtype=np.intp)
            prio_idx = np.empty(n, dtype=np.intp)
            conf = np.empty(n)
            llm_none = np.zeros(n, dtype=bool)
            in_tok = np.empty(n)
            out_tok = np.empty(n)
            labelled = np.zeros(n, dtype=bool)
            correct = np.zeros(n, dtype=bool)
            for i, it in enumerate(self.items):
                c = it.classification
                label_idx[i] = labels.setdefault(c.label, len(labels))
                prio_idx[i] = prios.setdefault(it.priority, len(prios))
                if c.confidence is None:
                    conf[i] = np.nan
                    llm_none[i] = c.classifier == "llm"
                else:
                    conf[i] = c.confidence
                in_tok[i] = it.input_tokens
                out_tok[i] = it.output_tokens
                if it.true_label is not None:
                    labelled[i] = True
                    correct[i] = it.true_label == c.label
            self._cols = {
                "labels": list(labels),
                "priorities": list(prios),
                "label_idx": label_idx,
                "prio_idx": prio_idx,
                "conf": conf,
                "llm_none": llm_none,
                "in_tok": in_tok,
                "out_tok": out_tok,
                "labelled": labelled,
                "correct": correct,
            }
        return self._cols


def classify_workload(
    items: Sequence[WorkloadItem],
    table: RoutingTable,
    classifier: Any,
    *,
    output_tokens_by_task: Mapping[str, float] | None = None,
    default_output_tokens: Mapping[str, int] | int = DEFAULT_OUTPUT_TOKENS,
    on_progress: ProgressFn | None = None,
) -> Classified:
    """Classify every item once, infer its priority (unless it gives a known one), estimate its
    input tokens and settle its output tokens. ``on_progress(done, total)`` counts distinct
    prompts; an exception raised from it cancels the work."""
    bad = [i for i, it in enumerate(items) if not isinstance(it.prompt, str) or not it.prompt.strip()]
    if bad:
        where = ", ".join(str(items[i].line or i) for i in bad[:20])
        raise ValueError(f"empty prompt in {len(bad)} workload item(s): {where}")
    classifications = classify_prompts(
        [it.prompt for it in items], classifier, on_progress=on_progress
    )
    out: list[ClassifiedItem] = []
    priorities: dict[tuple[str, str | None], tuple[str, str]] = {}
    for it, c in zip(items, classifications, strict=True):
        given = it.priority if it.priority in table.priorities else None
        found = priorities.get((it.prompt, given))
        if found is None:
            found = priorities[(it.prompt, given)] = infer_priority(it.prompt, table, given)
        prio, prio_reason = found
        if it.priority is not None and given is None:
            prio_reason = f"unknown priority {it.priority!r}; {prio_reason}"
        n_out, source = _output_tokens(
            c.label, it.output_tokens, output_tokens_by_task, default_output_tokens
        )
        out.append(
            ClassifiedItem(
                prompt=it.prompt,
                classification=c,
                priority=prio,
                priority_reason=prio_reason,
                true_label=it.task_type,
                input_tokens=estimate_tokens(it.prompt),
                output_tokens=n_out,
                output_source=source,
                line=it.line,
                given_output_tokens=it.output_tokens,
            )
        )
    return Classified(out, _tasks_signature(table))


# --------------------------------------------------------------------------------------------
# Projection (and what-if replay)
# --------------------------------------------------------------------------------------------


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
        return _pct(self.baseline_usd, self.routed_usd)


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


def _pct(baseline: float, routed: float) -> float | None:
    return 100.0 * (baseline - routed) / baseline if baseline > 0 else None


class _Fixed:
    """A classifier that answers with a stored classification (decide() without re-classifying)."""

    name = "fixed"

    def __init__(self, c: Classification):
        self.c = c

    def classify(self, prompt: str) -> Classification:
        return self.c


class _Prices:
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


def _route(
    classified: Classified, table: RoutingTable, threshold: float, prices: _Prices
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
    r = _route(classified, table, thr, _Prices(table))
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
        savings_pct=_pct(baseline_usd, routed_usd),
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
    output_tokens_by_task: Mapping[str, float] | None = None,
    default_output_tokens: Mapping[str, int] | int = DEFAULT_OUTPUT_TOKENS,
    on_progress: ProgressFn | None = None,
) -> Projection:
    """Classify ``items`` once and project their cost under ``table`` (see the module notes).
    ``projection.classified`` feeds later :func:`reproject` / :func:`threshold_sweep` calls."""
    classified = classify_workload(
        items,
        table,
        classifier,
        output_tokens_by_task=output_tokens_by_task,
        default_output_tokens=default_output_tokens,
        on_progress=on_progress,
    )
    return reproject(classified, table)


# --------------------------------------------------------------------------------------------
# The threshold explorer
# --------------------------------------------------------------------------------------------


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
    prices = _Prices(table)
    n = len(classified)
    out: list[SweepPoint] = []
    for thr in thresholds:
        r = _route(classified, table, float(thr), prices)
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
                savings_pct=_pct(baseline_usd, routed_usd),
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
