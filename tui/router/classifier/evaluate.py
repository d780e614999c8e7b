"""Scoring a classifier on labelled prompts: accuracy, macro-F1, confusion, calibration, latency.

Pure Python on purpose: these are a few sums over a few thousand rows, and importing a maths
library would cost more than the work.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.router.files import read_regular_file
from tui.router.types import Classification


class EvalInputError(ValueError):
    """A labelled file that cannot be evaluated; the message names the line or the labels."""


@dataclass(frozen=True)
class LabelledPrompt:
    prompt: str
    label: str
    line: int


# A labelled file larger than this is refused (the dev set is about 100 KB).
MAX_INPUT_BYTES = 64 * 1024 * 1024


def read_labelled(path: str | Path, known_labels: Sequence[str]) -> list[LabelledPrompt]:
    """Read JSONL rows with ``prompt`` and ``task_type``; every problem is reported at once."""
    rows: list[LabelledPrompt] = []
    problems: list[str] = []
    unknown: dict[str, int] = {}
    name = Path(path).name
    try:
        text = read_regular_file(path, MAX_INPUT_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{name}:{number}: not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{name}:{number}: expected an object with 'prompt' and 'task_type'")
            continue
        prompt, label = obj.get("prompt"), obj.get("task_type")
        if not isinstance(prompt, str) or not prompt.strip():
            problems.append(f"{name}:{number}: 'prompt' must be a non-empty string")
            continue
        if not isinstance(label, str):
            problems.append(f"{name}:{number}: 'task_type' must be a string")
            continue
        if label not in known_labels:
            unknown[label] = unknown.get(label, number)
            continue
        rows.append(LabelledPrompt(prompt, label, number))
    if unknown:
        listed = ", ".join(f'"{lab}" (first on line {ln})' for lab, ln in unknown.items())
        problems.append(
            f"{name}: task types not in routes.toml: {listed}; known: {', '.join(known_labels)}"
        )
    if problems:
        raise EvalInputError("\n".join(problems))
    if not rows:
        raise EvalInputError(f"{name}: no labelled prompts")
    return rows


@dataclass
class EvalReport:
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    labels: list[str]
    confusion: dict[str, dict[str, int]]  # confusion[true][predicted]
    ece: float | None
    latency_ms: dict[str, float]
    mistakes: list[tuple[str, str, str]] = field(default_factory=list)  # (true, predicted, prompt)

    def as_json(self) -> dict:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": self.per_class,
            "confusion": self.confusion,
            "ece": self.ece,
            "latency_ms": self.latency_ms,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE with equal-width bins over (0, 1]: sum over bins of |accuracy - confidence| * share."""
    n = len(confidences)
    if n == 0:
        return float("nan")
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if (lo < c <= hi) or (b == 0 and c == 0.0)]
        if not idx:
            continue
        acc = sum(correct[i] for i in idx) / len(idx)
        conf = sum(confidences[i] for i in idx) / len(idx)
        total += abs(acc - conf) * len(idx) / n
    return total


def score(
    rows: Iterable[LabelledPrompt],
    classify: Callable[[str], Classification],
    labels: Sequence[str],
    on_row: Callable[[], None] | None = None,
) -> EvalReport:
    """Classify every row (cache bypassed by the caller if wanted) and score the predictions."""
    labels = list(labels)
    confusion = {t: {p: 0 for p in labels} for t in labels}
    latencies: list[float] = []
    confidences: list[float] = []
    correct: list[bool] = []
    mistakes: list[tuple[str, str, str]] = []
    n = 0
    for row in rows:
        result = classify(row.prompt)
        n += 1
        latencies.append(result.elapsed_ms)
        predicted = result.label if result.label in confusion[row.label] else None
        if predicted is not None:
            confusion[row.label][predicted] += 1
        ok = predicted == row.label
        if result.confidence is not None:
            confidences.append(result.confidence)
            correct.append(ok)
        if not ok:
            mistakes.append((row.label, result.label, row.prompt))
        if on_row:
            on_row()
    per_class: dict[str, dict[str, float]] = {}
    for lab in labels:
        tp = confusion[lab][lab]
        support = sum(confusion[lab].values())
        predicted_n = sum(confusion[t][lab] for t in labels)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    present = [lab for lab in labels if per_class[lab]["support"] > 0]
    macro_f1 = sum(per_class[lab]["f1"] for lab in present) / len(present) if present else 0.0
    accuracy = sum(confusion[lab][lab] for lab in labels) / n if n else 0.0
    return EvalReport(
        n=n,
        accuracy=accuracy,
        macro_f1=macro_f1,
        per_class=per_class,
        labels=labels,
        confusion=confusion,
        ece=expected_calibration_error(confidences, correct) if confidences else None,
        latency_ms={q: percentile(latencies, float(q[1:])) for q in ("p50", "p95", "p99")},
        mistakes=mistakes,
    )
