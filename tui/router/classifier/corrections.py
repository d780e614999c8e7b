"""Label corrections: a misclassified prompt becomes a training example, the classifier retrains
at once, and accuracy on a dev set is compared before and after.

::

    new_table = add_correction(table, prompt, "code")            # pure: nothing written
    report = retrain_and_compare(table, new_table, dev_rows)     # retrain, score, compare
    table = save_table(new_table)                                # when the caller decides

    result = apply_correction("routes.toml", prompt, "code", dev_rows)   # all of it, saved

Retraining fast (the <= 1 s budget): a full training run (:func:`tui.router.classifier.training.train`)
featurizes every example, fits the logistic regression from scratch, then fits it again once per
calibration fold; that takes seconds. A correction changes one example of ~2,200, so here the
model is retrained INCREMENTALLY, aiming at the model a full training gives:

* the training texts stay featurized (token counts per text, :class:`_TrainState`), so only the
  new example and the augmented copies that changed (``training.augment``, same seed: each
  copy is drawn from its own example's text, so that is the new example's copy and the ~1/n
  that borrow a new passage) are featurized; tf-idf weights are recomputed with numpy;
* the same logistic regression (same loss, C, features, group weights: the same optimum) is
  fitted WARM-STARTED from the current model's coefficients with Newton-CG, on one BLAS thread,
  to a tolerance 10 times tighter than a full training's, 100 times when a new example is still
  not learnt (a warm start already sits inside a full training's tolerance and would otherwise
  stop before the new example counts);
* the calibration temperature is kept from the current model (re-fitting it needs the
  cross-validation fits); the next full training re-fits it.

If ``TrainParams`` gains a field this module does not know, or the task types change, a full
training is run instead.

The retrained model is written to the classifier's disk cache under the new table's key, so the
next ``build_classifier(new_table)`` (the session's, or the next start) loads it instead of
training again. The first correction of a session also featurizes the training set (about half a
second); :func:`prepare` does that, and imports scikit-learn, ahead of time (call it from a
background worker when a correction is likely, e.g. when the correction picker opens).

Rules run before the model: a prompt a rule claims (say a fenced code block → code) keeps the
rule's label whatever its examples say; the report says so.

Nothing here imports Textual.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from tui.router.classifier import features as feat
from tui.router.classifier.build import build_classifier, local_classifier_of
from tui.router.classifier.cache import cache_path, load_or_train, prune_cache
from tui.router.classifier.evaluate import LabelledPrompt, read_labelled, score
from tui.router.classifier.local import CachingClassifier, LocalClassifier, RuleClassifier
from tui.router.classifier.model import LinearModel
from tui.router.classifier.training import (
    DEFAULT_PARAMS,
    TrainParams,
    augment,
    examples_by_label,
    group_normalize,
    model_key,
    tfidf,
    vocabularies,
)
from tui.router.sanitize import clean
from tui.router.table.load import MIN_EXAMPLES, load_table
from tui.router.table.save import save_table, table_problems
from tui.router.types import Classification, RoutingTable

__all__ = [
    "CorrectionError",
    "CorrectionReport",
    "CorrectionResult",
    "CorrectionTrainer",
    "DevScore",
    "add_correction",
    "apply_correction",
    "find_dev_set",
    "prepare",
    "retrain",
    "retrain_and_compare",
    "session_table_after",
]


class CorrectionError(ValueError):
    """A correction that cannot be made (unknown task type, empty prompt, a key in the prompt,
    a task left with too few examples); the message says why."""


# --------------------------------------------------------------------------------------------
# The table edit
# --------------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    """What makes two examples the same: the text with its white space collapsed."""
    return " ".join(text.split())


def _clean_prompt(prompt: str) -> str:
    if not isinstance(prompt, str):
        raise CorrectionError("the prompt must be text")
    text = clean(prompt)  # control characters and escape sequences out; \n and \t kept
    if not text.strip():
        raise CorrectionError("empty prompt: nothing to learn from")
    return text


def add_correction(table: RoutingTable, prompt: str, task: str) -> RoutingTable:
    """``table`` with ``prompt`` as a training example of ``task``.

    The prompt is kept as given except for control characters and terminal escape sequences,
    which are removed (new lines and tabs stay). It is not added twice: when it already is an
    example of ``task`` (same text up to white space) the same table is returned. When it is an
    example of another task type it is moved (a prompt cannot teach two labels), unless that would
    leave the other task with fewer than the minimum examples. Raises :class:`CorrectionError`;
    nothing is written (see :func:`apply_correction`, or ``save_table``).
    """
    if task not in table.tasks:
        known = ", ".join(table.tasks)
        raise CorrectionError(f"unknown task type {task!r} (known: {known})")
    text = _clean_prompt(prompt)
    key = _norm(text)
    tasks = dict(table.tasks)
    target = tasks[task]
    if any(_norm(e) == key for e in target.examples):
        return table
    for name, t in table.tasks.items():
        if name == task:
            continue
        kept = tuple(e for e in t.examples if _norm(e) != key)
        if len(kept) != len(t.examples):
            if sum(1 for e in kept if e.strip()) < MIN_EXAMPLES:
                raise CorrectionError(
                    f"this prompt is one of the examples of {name!r}; moving it to {task!r} "
                    f"would leave {name!r} with fewer than {MIN_EXAMPLES} examples"
                )
            tasks[name] = replace(t, examples=kept)
    tasks[task] = replace(target, examples=target.examples + (text,))
    new = replace(table, tasks=tasks)
    problems = [p for p in table_problems(new) if p.key.startswith("tasks.")]
    if problems:
        raise CorrectionError(
            "the corrected table would not save: " + "; ".join(p.message for p in problems)
        )
    return new


def _moved_from(old: RoutingTable, new: RoutingTable, text: str) -> tuple[str, ...]:
    key = _norm(text)
    return tuple(
        name
        for name, t in old.tasks.items()
        if name in new.tasks
        and any(_norm(e) == key for e in t.examples)
        and not any(_norm(e) == key for e in new.tasks[name].examples)
    )


# --------------------------------------------------------------------------------------------
# Incremental retraining
# --------------------------------------------------------------------------------------------


def _labels_of(table: RoutingTable) -> tuple[str, ...]:
    return tuple(label for label, texts in examples_by_label(table).items() if texts)


# The TrainParams fields the incremental path knows how to honour. A field added to TrainParams
# later (a new training knob) turns the incremental path off: a full training is run instead, so
# a correction never silently trains a different model than training.train would.
_KNOWN_PARAMS = frozenset(
    {"C", "group_weights", "min_df", "augment_share", "cv_folds", "max_iter", "tol", "seed"}
)
# The warm-started fit is solved tighter than training.train's tolerance: a cold fit stops
# anywhere inside its tolerance, but a warm start is already inside it and would stop before the
# new example counts at all. First 10 times tighter; when a new example is still not learnt,
# 100 times (the fit continues from where it stopped).
_WARM_TOL_FACTORS = (0.1, 0.01)


def _incremental_ok(params: TrainParams) -> bool:
    return {f.name for f in fields(params)} <= _KNOWN_PARAMS


class _TrainState:
    """The featurized training texts and the model fitted on them (one table's examples).

    Mirrors ``training.train`` without the calibration fits: the same examples, the same
    augmented copies (``training.augment``, same seed), the same tokens (``features.analyze``),
    tf-idf by the same ``training.tfidf``, the same
    per-group normalisation and the same logistic regression objective.
    """

    def __init__(self, key: str, params: TrainParams,
                 vocabulary: dict[str, tuple[str, ...]]):
        self.key = key
        self.params = params
        self.vocabulary = vocabulary
        self.lexicon = feat.Lexicon.build(vocabulary)
        # text -> (its tokens, its split or None for augmented copies)
        self.texts: dict[str, tuple[list[str], Any]] = {}
        self.model: LinearModel | None = None

    def example(self, text: str) -> tuple[list[str], Any]:
        found = self.texts.get(text)
        if found is None or found[1] is None:
            found = self.texts[text] = feat.analyze(text, self.lexicon)
        return found

    def copy_of(self, text: str) -> tuple[list[str], Any]:
        found = self.texts.get(text)
        if found is None:
            found = self.texts[text] = (feat.tokens(text, self.lexicon), None)
        return found

    def training_set(self, table: RoutingTable) -> tuple[tuple[str, ...], list, np.ndarray, int]:
        """(labels, featurized rows, labels of the rows, how many are augmented copies)."""
        params = self.params
        examples = examples_by_label(table)
        labels = tuple(label for label, texts in examples.items() if texts)
        texts = [t for label in labels for t in examples[label]]
        y = np.array([i for i, label in enumerate(labels) for _ in examples[label]],
                     dtype=np.intp)
        real = [self.example(t) for t in texts]
        extra_texts, extra_y, _ = augment(
            texts, y, params.augment_share, params.seed, splits=[r[1] for r in real]
        )
        rows = real + [self.copy_of(t) for t in extra_texts]
        keep = set(texts) | set(extra_texts)
        if len(self.texts) > 2 * len(keep):  # forget texts no longer trained on
            self.texts = {t: v for t, v in self.texts.items() if t in keep}
        return labels, rows, np.concatenate([y, extra_y]).astype(np.intp), len(extra_texts)


class CorrectionTrainer:
    """What a session keeps between corrections: the featurized training set and the model
    fitted on it (the last retrain's :class:`_TrainState`), behind a lock. The engine's
    :class:`~tui.router.run.session.Session` owns one (``session.corrections``); a caller without
    a session (a one-shot CLI correction, a test) gets a fresh one, so nothing is kept in
    module globals."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: _TrainState | None = None

    def prepare(self, table: RoutingTable, classifier: Any = None, *,
                directory: Path | None = None) -> None:
        """See :func:`prepare`."""
        import sklearn.linear_model  # noqa: F401  (the import is most of the first retrain's cost)

        with self.lock:
            self._state_for(table, classifier, directory)

    def _state_for(
        self,
        table: RoutingTable,
        classifier: Any = None,
        directory: Path | None = None,
        params: TrainParams = DEFAULT_PARAMS,
    ) -> _TrainState:
        """The training state of ``table`` (kept from the last retrain, else built: featurizes
        every example once, and loads or trains the table's model). Call with the lock held."""
        key = model_key(table, params)
        if self.state is not None and self.state.key == key and self.state.model is not None:
            return self.state
        state = _TrainState(key, params, vocabularies(table))
        local = local_classifier_of(classifier)
        model = local.model if local is not None else None
        if model is None or model.key != key:
            model = load_or_train(table, directory=directory, params=params)
        state.training_set(table)  # featurize now: the next retrain only featurizes what is new
        state.model = model
        self.state = state
        return state

    def fitted_model(
        self, old_table: RoutingTable, new_table: RoutingTable, *, old_classifier: Any,
        directory: Path | None, started: float,
    ) -> tuple[LinearModel, dict[str, Any]]:
        """``new_table``'s model (kept, incremental or fully trained) and how it was made."""
        params = DEFAULT_PARAMS
        new_key = model_key(new_table, params)
        labels = _labels_of(new_table)
        info: dict[str, Any] = {}
        with self.lock:
            if self.state is not None and self.state.key == new_key and self.state.model is not None:
                model, info["method"] = self.state.model, "unchanged"
            elif (_labels_of(old_table) == labels and len(labels) > 2 and _incremental_ok(params)
                  and vocabularies(old_table) == vocabularies(new_table)):
                state = self._state_for(old_table, old_classifier, directory, params)
                prepared_ms = (time.perf_counter() - started) * 1000.0
                fit_started = time.perf_counter()
                self.state = _fit_incremental(state, new_table)
                model = _fitted(self.state)
                info.update(method="incremental", prepare_ms=prepared_ms,
                            fit_ms=(time.perf_counter() - fit_started) * 1000.0,
                            n_iter=model.meta.get("n_iter"))
            else:
                model = load_or_train(new_table, directory=directory, params=params)
                info["method"] = "full"
                self.state = None
        return model, info


def _fitted(state: _TrainState) -> LinearModel:
    if state.model is None:  # _fit_incremental and _state_for always set it
        raise RuntimeError("training state without a model")
    return state.model


def prepare(
    table: RoutingTable, classifier: Any = None, *, directory: Path | None = None,
    trainer: CorrectionTrainer | None = None,
) -> None:
    """Get ready for a fast correction of ``table``: import scikit-learn, featurize the training
    examples, load the model, in ``trainer`` (the session's ``corrections``; a throwaway one
    when None). Blocking (about a second): call it from a background worker."""
    (trainer or CorrectionTrainer()).prepare(table, classifier, directory=directory)


def _fit_incremental(state: _TrainState, table: RoutingTable) -> _TrainState:
    """A new state for ``table`` (same task types as ``state``): texts reused or featurized,
    tf-idf recomputed, the logistic regression fitted warm from ``state.model``."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    params = state.params
    new = _TrainState(model_key(table, params), params, state.vocabulary)
    new.texts = state.texts  # shared cache
    known = set(state.texts)
    labels, rows, y, n_augmented = new.training_set(table)
    texts = [t for ts in examples_by_label(table).values() for t in ts]
    added = np.array([i for i, t in enumerate(texts) if t not in known], dtype=np.intp)

    counts, tokens, idf = tfidf([r[0] for r in rows], params.min_df)
    groups = np.fromiter(map(feat.group_of, tokens), dtype=np.intp, count=len(tokens))
    weights = np.asarray(params.group_weights, dtype=np.float64)
    X = group_normalize(counts, groups, weights).astype(np.float32)  # as training.train fits

    # Warm start from the current model's coefficients (zero for tokens it did not have).
    old = state.model
    assert old is not None
    old_rows = np.fromiter((old.vocab.get(t, -1) for t in tokens), dtype=np.intp,
                           count=len(tokens))
    coef0 = np.zeros((len(tokens), len(labels)))
    have = old_rows >= 0
    coef0[have] = old.coef[old_rows[have]]
    # training.train's objective (multinomial loss, L2, same C): the same optimum, reached from
    # the current model in a few Newton steps.
    lr = LogisticRegression(C=params.C, solver="newton-cg", max_iter=params.max_iter,
                            tol=params.tol * _WARM_TOL_FACTORS[0], warm_start=True)
    lr.coef_ = np.ascontiguousarray(coef0.T)
    lr.intercept_ = old.intercept.copy()
    n_iter = 0
    # One BLAS thread: OpenBLAS threads spinning against other busy processes made this fit
    # several times slower in wall time on a loaded 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        for factor in _WARM_TOL_FACTORS:
            lr.set_params(tol=params.tol * factor)
            lr.fit(X, y)  # warm: continues from where the last fit stopped
            n_iter += int(np.max(lr.n_iter_))
            if len(added) == 0 or (lr.predict(X[added]) == y[added]).all():
                break

    model = LinearModel(
        labels=labels,
        vocab={t: j for j, t in enumerate(tokens)},
        idf=idf,
        groups=groups,
        group_weights=weights,
        coef=np.ascontiguousarray(lr.coef_.T, dtype=np.float64),
        intercept=np.asarray(lr.intercept_, dtype=np.float64),
        temperature=old.temperature,
        key=new.key,
        vocabulary=new.vocabulary,
        meta={
            "n_examples": len(rows) - n_augmented,
            "n_augmented": n_augmented,
            "n_features": len(tokens),
            "incremental": True,
            "warm_start_from": old.key,
            "n_iter": n_iter,
            # The calibration temperature was fitted for the model it started from.
            "temperature_from": old.meta.get("temperature_from", old.key),
        },
    )
    new.model = model
    return new


def retrain(
    old_table: RoutingTable,
    new_table: RoutingTable,
    *,
    old_classifier: Any = None,
    directory: Path | None = None,
    save: bool = True,
    trainer: CorrectionTrainer | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The classifier for ``new_table`` (rules → local model, behind a cache) and how it was made:
    ``{"method": "incremental" | "full" | "unchanged", "retrain_ms": ..., "n_iter": ...}``.

    Incremental when the task types are the same as ``old_table``'s (only examples changed);
    otherwise a full training. ``save`` writes the model to the classifier's disk cache (so
    ``build_classifier(new_table)`` loads it).
    """
    params = DEFAULT_PARAMS
    new_key = model_key(new_table, params)
    started = time.perf_counter()
    info: dict[str, Any] = {}
    if old_classifier is not None and model_key(old_table, params) == new_key:
        info.update(method="unchanged", retrain_ms=(time.perf_counter() - started) * 1000.0)
        return old_classifier, info
    model, made = (trainer or CorrectionTrainer()).fitted_model(
        old_table, new_table, old_classifier=old_classifier, directory=directory,
        started=started)
    info.update(made)
    if save and info["method"] == "incremental":
        try:
            path = cache_path(new_key, directory)
            model.save(path)
            prune_cache(path.parent, path)
            info["cached"] = str(path)
        except OSError as exc:
            info["cache_error"] = exc.strerror or str(exc)
    info["retrain_ms"] = (time.perf_counter() - started) * 1000.0
    classifier = CachingClassifier(
        RuleClassifier.from_table(new_table, LocalClassifier(model))
    )
    return classifier, info


# --------------------------------------------------------------------------------------------
# Before and after
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevScore:
    n: int
    accuracy: float
    macro_f1: float

    def as_json(self) -> dict[str, Any]:
        return {"n": self.n, "accuracy": self.accuracy, "macro_f1": self.macro_f1}


@dataclass(frozen=True)
class CorrectionReport:
    prompt: str  # the example as stored (control characters removed)
    task: str
    added: bool  # False: it already was an example of ``task``
    moved_from: tuple[str, ...]  # task types it was an example of, and no longer is
    before: Classification | None  # the prompt under the old classifier
    after: Classification  # ... and under the retrained one
    dev_before: DevScore | None  # None when no dev rows were given
    dev_after: DevScore | None
    dev_fixed: int  # dev prompts wrong before and right after
    dev_broken: int  # right before, wrong after
    method: str  # "incremental", "full" or "unchanged"
    retrain_ms: float
    notes: tuple[str, ...] = ()
    classifier: Any = field(default=None, repr=False, compare=False)  # the retrained one

    @property
    def fixed(self) -> bool:
        """Whether the retrained classifier now gives the prompt the corrected task type."""
        return self.after.label == self.task

    def as_json(self) -> dict[str, Any]:
        def c(x: Classification | None) -> dict[str, Any] | None:
            if x is None:
                return None
            return {"label": x.label, "confidence": x.confidence, "classifier": x.classifier,
                    "reason": x.reason}

        return {
            "task": self.task,
            "added": self.added,
            "moved_from": list(self.moved_from),
            "fixed": self.fixed,
            "before": c(self.before),
            "after": c(self.after),
            "dev_before": self.dev_before.as_json() if self.dev_before else None,
            "dev_after": self.dev_after.as_json() if self.dev_after else None,
            "dev_fixed": self.dev_fixed,
            "dev_broken": self.dev_broken,
            "method": self.method,
            "retrain_ms": self.retrain_ms,
            "notes": list(self.notes),
        }


DevRows = Sequence[LabelledPrompt] | Sequence[tuple[str, str]] | Sequence[Mapping[str, Any]]


def _dev_rows(
    rows: DevRows | str | os.PathLike[str] | None, table: RoutingTable
) -> list[LabelledPrompt]:
    if rows is None:
        return []
    if isinstance(rows, str | os.PathLike):
        return read_labelled(Path(rows), table.task_names)
    out: list[LabelledPrompt] = []
    given: Sequence[LabelledPrompt | tuple[str, str] | Mapping[str, Any]] = rows
    for i, row in enumerate(given, start=1):
        if isinstance(row, LabelledPrompt):
            out.append(row)
        elif isinstance(row, Mapping):
            out.append(LabelledPrompt(str(row["prompt"]), str(row["task_type"]), i))
        else:
            prompt, label = row
            out.append(LabelledPrompt(str(prompt), str(label), i))
    return [r for r in out if r.prompt.strip()]


def _predict(classifier: Any, prompts: Sequence[str]) -> dict[str, Classification]:
    from tui.router.cost.classified import classify_prompts  # the batch path

    return dict(zip(prompts, classify_prompts(prompts, classifier), strict=True))


def _dev_score(
    rows: list[LabelledPrompt], predicted: dict[str, Classification], labels: list[str]
) -> DevScore:
    report = score(rows, predicted.__getitem__, labels)
    return DevScore(report.n, report.accuracy, report.macro_f1)


def retrain_and_compare(
    old_table: RoutingTable,
    new_table: RoutingTable,
    dev_rows: DevRows | str | os.PathLike[str] | None = None,
    *,
    prompt: str | None = None,
    task: str | None = None,
    old_classifier: Any = None,
    directory: Path | None = None,
    save_model: bool = True,
    trainer: CorrectionTrainer | None = None,
) -> CorrectionReport:
    """Retrain for ``new_table`` and compare with ``old_table``'s classifier.

    ``prompt`` / ``task``: the correction (default: found by comparing the two tables' examples).
    ``dev_rows``: labelled prompts (``LabelledPrompt``, ``(prompt, label)`` pairs, dicts with
    ``prompt`` and ``task_type``, or a JSONL path) scored before and after; rows whose label
    the table does not know are skipped. ``old_classifier``: the classifier in use now (saves
    loading it again). Dev prompts that are training examples are scored like the others.
    """
    if prompt is None or task is None:
        found = _added_examples(old_table, new_table)
        if not found:
            raise CorrectionError("the two tables have the same examples: nothing to compare")
        task, prompt = found[0]
    text = _clean_prompt(prompt)
    if old_classifier is None:
        old_classifier = build_classifier(old_table, directory=directory)
    classifier, info = retrain(old_table, new_table, old_classifier=old_classifier,
                               directory=directory, save=save_model, trainer=trainer)
    labels = new_table.task_names
    rows = [r for r in _dev_rows(dev_rows, new_table) if r.label in labels]
    prompts = list(dict.fromkeys([text, *(r.prompt for r in rows)]))
    before = _predict(old_classifier, prompts)
    after = _predict(classifier, prompts)
    dev_before = dev_after = None
    fixed_n = broken_n = 0
    if rows:
        dev_before = _dev_score(rows, before, labels)
        dev_after = _dev_score(rows, after, labels)
        for r in rows:
            was, right = before[r.prompt].label == r.label, after[r.prompt].label == r.label
            fixed_n += (not was) and right
            broken_n += was and not right
    notes: list[str] = []
    now = after[text]
    if now.classifier == "rule":
        notes.append(f"a rule decides this prompt ({now.reason}); examples do not change that")
    elif now.label != task:
        notes.append(
            f"still classified {now.label} ({now.confidence:.2f}): one example may not outweigh "
            "the others; add a few more like it"
        )
    if new_table.classifier.kind == "llm":
        notes.append("the table uses the LLM classifier; corrections train the local one it "
                     "falls back to")
    if info.get("cache_error"):
        notes.append(f"the retrained model was not cached: {info['cache_error']}")
    return CorrectionReport(
        prompt=text,
        task=task,
        added=_norm(text) not in {_norm(e) for e in old_table.tasks.get(task, _NO_TASK).examples},
        moved_from=_moved_from(old_table, new_table, text),
        before=before[text],
        after=now,
        dev_before=dev_before,
        dev_after=dev_after,
        dev_fixed=int(fixed_n),
        dev_broken=int(broken_n),
        method=info["method"],
        retrain_ms=info["retrain_ms"],
        notes=tuple(notes),
        classifier=classifier,
    )


class _NoTask:
    examples: tuple[str, ...] = ()


_NO_TASK = _NoTask()


def _added_examples(old: RoutingTable, new: RoutingTable) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, t in new.tasks.items():
        before = {_norm(e) for e in (old.tasks[name].examples if name in old.tasks else ())}
        out.extend((name, e) for e in t.examples if _norm(e) not in before)
    return out


@dataclass(frozen=True)
class CorrectionResult:
    report: CorrectionReport
    table: RoutingTable  # the corrected table (as saved, when saved: new path and fingerprint)
    saved: bool

    @property
    def classifier(self) -> Any:
        return self.report.classifier


def apply_correction(
    path_or_table: RoutingTable | str | os.PathLike[str],
    prompt: str,
    task: str,
    dev_rows: DevRows | str | os.PathLike[str] | None = None,
    save: bool = True,
    *,
    classifier: Any = None,
    directory: Path | None = None,
    force: bool = False,
    trainer: CorrectionTrainer | None = None,
) -> CorrectionResult:
    """Add the correction, retrain, compare on ``dev_rows``, and (``save``) write the table
    atomically with ``save_table`` (``force`` overwrites a file changed on disk since it was
    loaded; otherwise ``table.ConflictError`` is raised and nothing is written).
    ``classifier``: the one in use now, if at hand."""
    table = (
        path_or_table
        if isinstance(path_or_table, RoutingTable)
        else load_table(path_or_table)
    )
    new_table = add_correction(table, prompt, task)
    report = retrain_and_compare(
        table, new_table, dev_rows, prompt=prompt, task=task,
        old_classifier=classifier, directory=directory, trainer=trainer,
    )
    saved = False
    if save and new_table is not table:
        new_table = save_table(new_table, force=force)
        saved = True
    return CorrectionResult(report=report, table=new_table, saved=saved)


# --------------------------------------------------------------------------------------------
# For a front end: where the dev set is, and the session's table after a saved correction
# --------------------------------------------------------------------------------------------

DEV_SET = Path("tests") / "data" / "dev.jsonl"


def find_dev_set(routes_path: str | os.PathLike[str] | None) -> Path | None:
    """``tests/data/dev.jsonl`` of the repository the routes file lives in: looked for in the
    file's folder and up to three folders above it, stopping at a repository root (a folder with
    ``.git`` or ``pyproject.toml``). None when there is none."""
    if routes_path is None:
        return None
    folder = Path(os.path.abspath(routes_path)).parent
    for d in (folder, *list(folder.parents)[:3]):
        candidate = d / DEV_SET
        if candidate.is_file():
            return candidate
        if (d / ".git").exists() or (d / "pyproject.toml").is_file():
            break
    return None


def session_table_after(current: RoutingTable, saved_before: RoutingTable,
                        saved_after: RoutingTable) -> RoutingTable:
    """The session's table once the correction is saved: the corrected task types (and the saved
    file's path, fingerprint and document, so the next save does not see a conflict), with the
    session's unsaved edits to everything else kept."""
    if current.tasks == saved_before.tasks:
        tasks = saved_after.tasks
    else:  # unsaved edits to the task types too (unusual): keep them, plus the new example
        tasks = {**current.tasks, **{
            name: t for name, t in saved_after.tasks.items()
            if saved_before.tasks.get(name) != t
        }}
    return replace(current, tasks=tasks, raw=saved_after.raw, path=saved_after.path,
                   fingerprint=saved_after.fingerprint)
