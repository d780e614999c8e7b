"""The real-prompt yardstick: labelled prompts that real people typed, split by whole source.

The corpus is not part of this repository (its texts come from public chat logs and datasets
under their own licences, see the corpus folder's README). Point at it with ``--real DIR`` or
``ROUTEDECK_REAL_PROMPTS=DIR``; without either, the first of these that exists is used:
``staging/real/labelled`` in this checkout, then ``../shared/real-prompts`` beside it.

The folder holds one ``<source>.jsonl`` per source, one prompt a line::

    {"prompt": "...", "task_type": "code", "alt": null, "clear": true}

``task_type`` follows routes.toml's task descriptions; ``alt`` is a second label a careful
reader could give; ``clear`` is false where a reader was unsure or two readers disagreed (those
prompts count in the "all" figures, not in the "clear" ones). ``split.json`` names the sources
of the dev split, which no example, feature or parameter was ever chosen from: only scored.

Used by bench_accuracy.py; nothing here asserts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tui.router import settings

ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = settings.REAL_PROMPTS
CANDIDATES = (ROOT / "staging/real/labelled", ROOT.parent / "shared/real-prompts")


@dataclass(frozen=True)
class Row:
    source: str
    prompt: str
    label: str
    clear: bool


def find_corpus(given: str | None = None) -> Path | None:
    """The corpus folder: ``given``, else the environment variable, else the first candidate."""
    for path in (given, settings.real_prompts_dir(), *CANDIDATES):
        if path and (Path(path) / "split.json").is_file():
            return Path(path)
    return None


def load_dev(folder: Path, labels: Sequence[str]) -> list[Row]:
    """The dev split's rows whose label is one of ``labels``."""
    dev = json.loads((folder / "split.json").read_text(encoding="utf-8"))["dev"]
    rows: list[Row] = []
    for source in dev:
        for line in (folder / f"{source}.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj["task_type"] in labels:
                rows.append(Row(source, obj["prompt"], obj["task_type"], bool(obj.get("clear"))))
    return rows


@dataclass(frozen=True)
class Scores:
    n: int
    accuracy: float
    macro_f1: float
    ece: float


def scores(gold: Sequence[str], pred: Sequence[str], conf: Sequence[float],
           labels: Sequence[str]) -> Scores:
    """Accuracy, macro-F1 over the labels present in ``gold``, and ECE (10 equal bins)."""
    from tui.router.classifier.evaluate import expected_calibration_error

    f1s = []
    for lab in labels:
        tp = sum(g == lab and p == lab for g, p in zip(gold, pred, strict=True))
        fp = sum(g != lab and p == lab for g, p in zip(gold, pred, strict=True))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
        if tp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    right = [g == p for g, p in zip(gold, pred, strict=True)]
    return Scores(len(gold), sum(right) / len(gold), sum(f1s) / len(f1s),
                  expected_calibration_error(list(conf), right))


Predict = Callable[[Sequence[str]], tuple[list[str], list[float]]]


def plain_baseline(examples: Mapping[str, Sequence[str]]) -> Predict:
    """The yardstick every feature must beat: TF-IDF of words (1-2) and character n-grams
    (2-5, within word bounds) + logistic regression, on the same examples, nothing else."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    texts = [t for ts in examples.values() for t in ts]
    y = [label for label, ts in examples.items() for _ in ts]
    pipe = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                   min_df=2)),
        LogisticRegression(C=10.0, max_iter=2000),
    )
    pipe.fit(texts, y)

    def predict(prompts: Sequence[str]) -> tuple[list[str], list[float]]:
        probs = pipe.predict_proba(list(prompts))
        return [str(pipe.classes_[i]) for i in probs.argmax(axis=1)], list(probs.max(axis=1))

    return predict


def by_source(rows: Sequence[Row], pred: Sequence[str], conf: Sequence[float],
              labels: Sequence[str], *, clear_only: bool) -> dict[str, Scores]:
    """Scores per source and over all sources ("all"), on every row or the clear ones."""
    keep = [i for i, r in enumerate(rows) if r.clear or not clear_only]
    groups: dict[str, list[int]] = {"all": keep}
    for i in keep:
        groups.setdefault(rows[i].source, []).append(i)
    return {
        name: scores([rows[i].label for i in idx], [pred[i] for i in idx],
                     [conf[i] for i in idx], labels)
        for name, idx in groups.items()
    }
