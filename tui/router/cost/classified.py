"""Classifying a workload, once: the slow part of a projection, done before any what-if.

:func:`classify_workload` classifies each distinct prompt once; with the standard classifier stack
(cache → rules → local model) it skips the per-prompt explanation work and scores prompts in
batches with numpy, giving the same labels and confidences as ``classifier.classify``. How output
tokens are settled and progress reported is a :class:`WorkloadOptions`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tui.router.cost.workload import (
    DEFAULT_OUTPUT_TOKENS,
    UNKNOWN_TASK_OUTPUT_TOKENS,
    WorkloadItem,
    estimate_tokens,
)
from tui.router.table.decide import infer_priority
from tui.router.types import Classification, RoutingTable

ProgressFn = Callable[[int, int], None]  # (done, total); raise from it to cancel


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

    def __getitem__(self, index):
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


@dataclass(frozen=True)
class WorkloadOptions:
    """How :func:`classify_workload` (and ``projection.project``) treat a workload.

    ``output_tokens_by_task``: the run log's average output tokens per task type (e.g.
    ``RunLog.avg_output_tokens_by_task()``), used for items that give none; then
    ``default_output_tokens`` (per task type, or one count for all). ``on_progress(done, total)``
    counts distinct prompts classified; an exception raised from it cancels the work.
    """

    output_tokens_by_task: Mapping[str, float] | None = None
    default_output_tokens: Mapping[str, int] | int = field(
        default_factory=lambda: DEFAULT_OUTPUT_TOKENS
    )
    on_progress: ProgressFn | None = None


def classify_workload(
    items: Sequence[WorkloadItem],
    table: RoutingTable,
    classifier: Any,
    *,
    options: WorkloadOptions | None = None,
) -> Classified:
    """Classify every item once, infer its priority (unless it gives a known one), estimate its
    input tokens and settle its output tokens (``options``: see :class:`WorkloadOptions`; the
    defaults when None)."""
    opts = options if options is not None else WorkloadOptions()
    bad = [i for i, it in enumerate(items) if not isinstance(it.prompt, str) or not it.prompt.strip()]
    if bad:
        where = ", ".join(str(items[i].line or i) for i in bad[:20])
        raise ValueError(f"empty prompt in {len(bad)} workload item(s): {where}")
    classifications = classify_prompts(
        [it.prompt for it in items], classifier, on_progress=opts.on_progress
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
            c.label, it.output_tokens, opts.output_tokens_by_task, opts.default_output_tokens
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

