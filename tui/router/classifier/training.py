"""Training the local classifier (scikit-learn, imported only when a model must be trained).

The model is TRAINED with scikit-learn, from the examples (and vocabularies) in the routing
table: task names are data. :func:`train` featurizes the examples (and augmented copies that
borrow pasted material, :func:`augment`), builds the tf-idf matrix (:func:`tfidf`), scales each
feature group (:func:`group_normalize`), fits a logistic regression, calibrates a temperature on
out-of-fold logits (:func:`fit_temperature`) and exports the result as a
:class:`~tui.router.classifier.model.LinearModel`, which runs on numpy alone.
:func:`model_key` names what a trained model depends on (the on-disk cache's key).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from tui.router.classifier import features as feat
from tui.router.classifier.model import LinearModel
from tui.router.classifier.split import Split, split_prompt
from tui.router.types import RoutingTable

# --------------------------------------------------------------------------------------------
# Training parameters (chosen by cross-validation; part of the cache key)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainParams:
    C: float = 20.0  # inverse L2 regularisation of the logistic regression
    # Weight of each feature group after its own L2 normalisation (see features.GROUP_*):
    # instruction words, instruction character n-grams, pasted material, shape.
    group_weights: tuple[float, ...] = (1.0, 1.0, 0.35, 0.4)
    min_df: int = 2  # tokens seen in fewer training examples are dropped
    # Share of the short examples without pasted material that are also learnt WITH a passage
    # borrowed from another example, so that pasted material alone does not decide the task.
    augment_share: float = 0.3
    cv_folds: int = 2  # folds of the out-of-fold predictions the temperature is fitted on
    max_iter: int = 200
    tol: float = 1e-3
    # Salt of the augmentation's draws and of the calibration folds. Which copies are drawn
    # moves accuracy by itself: over seeds 0-4 (tests/bench/bench_accuracy.py, 2,468 examples),
    # 480 to 490 of 509 dev prompts and 2,659 to 2,673 of the 2,760 probe prompts. Seed 3 stays:
    # the best seeds differ from it by less than that noise (and partly on the one clean probe
    # set, which choosing by it would spend), and its final fit takes the fewest Newton steps
    # (3; 3 to 8 over the seeds, which is luck too). Expect the seeds' mean, not the best.
    seed: int = 3


DEFAULT_PARAMS = TrainParams()
# The calibration folds' fits stop this many times looser than the final fit: the fitted
# temperature hardly moves (0.611 at 3x, 0.603 at 10x, dev-set ECE 0.024 vs 0.019) and these fits
# went from a sixth to an eighth of the training time. At 30x it drifts (0.533, ECE 0.036).
CALIBRATION_TOL_FACTOR = 10


def examples_by_label(table: RoutingTable) -> dict[str, list[str]]:
    """Each task's non-empty examples, in table order; tasks without examples are left out."""
    out: dict[str, list[str]] = {}
    for name, task in table.tasks.items():
        examples = [e for e in task.examples if isinstance(e, str) and e.strip()]
        if examples:
            out[name] = examples
    return out


def vocabularies(table: RoutingTable) -> dict[str, tuple[str, ...]]:
    """Each task's vocabulary (tasks without one are left out)."""
    return {name: task.vocabulary for name, task in table.tasks.items() if task.vocabulary}


def model_key(table: RoutingTable, params: TrainParams = DEFAULT_PARAMS) -> str:
    """sha256 of what a trained model depends on: examples, rules, labels, features, params."""
    doc = {
        "feature_version": feat.FEATURE_VERSION,
        "labels": list(table.tasks),
        "examples": {name: list(task.examples) for name, task in table.tasks.items()},
        "rules": {name: list(task.rules) for name, task in table.tasks.items()},
        "vocabulary": {name: list(v) for name, v in vocabularies(table).items()},
        "params": repr(params),
    }
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=True).encode("ascii")
    return hashlib.sha256(raw).hexdigest()

# --------------------------------------------------------------------------------------------
# Training (scikit-learn, imported only here)
# --------------------------------------------------------------------------------------------


@dataclass
class Trained:
    """A training run: the exported model and the scikit-learn objects it came from."""

    model: LinearModel
    estimator: Any  # LogisticRegression, or None for a single label
    matrix: Any  # the training design matrix (scipy CSR)
    y: np.ndarray
    texts: list[str]  # the rows of the matrix: the examples, then their augmented copies


def tfidf(token_lists: Sequence[Sequence[str]], min_df: int) -> tuple[Any, list[str], np.ndarray]:
    """The tf-idf matrix of tokenized documents, as scikit-learn's
    ``TfidfVectorizer(sublinear_tf=True, norm=None, smooth_idf=True, min_df=min_df)`` computes
    it (a test checks they agree), in a few vectorised passes instead of its per-token Python
    bookkeeping (0.1 s instead of 0.3 s for the default table).

    Returns (CSR matrix, the token of each column, the idf of each column). Tokens found in
    fewer than ``min_df`` documents are dropped, unless that would drop them all (a tiny table).
    Columns are in order of first appearance."""
    import scipy.sparse as sp

    n_rows = len(token_lists)
    lengths = np.fromiter(map(len, token_lists), dtype=np.intp, count=n_rows)
    flat = list(chain.from_iterable(token_lists))
    # token -> id in first-seen order, in one pass at C speed: a missing token gets the
    # dict's length as its id (half the time of building the index, then looking up).
    index: defaultdict[str, int] = defaultdict()
    index.default_factory = index.__len__
    ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
    n_ids = max(len(index), 1)
    # One sort of (row, id) pairs gives each row's distinct tokens and their counts.
    pairs, tf = np.unique(np.repeat(np.arange(n_rows, dtype=np.int64), lengths) * n_ids + ids,
                          return_counts=True)
    rows, ids = np.divmod(pairs, n_ids)
    df = np.bincount(ids, minlength=len(index))
    kept = np.flatnonzero(df >= max(1, min_df))
    if len(kept) == 0:
        kept = np.flatnonzero(df >= 1)
    remap = np.full(len(index), -1, dtype=np.intp)
    remap[kept] = np.arange(len(kept))
    cols = remap[ids]
    ok = cols >= 0
    rows, cols, tf = rows[ok], cols[ok], tf[ok]
    indptr = np.zeros(n_rows + 1, dtype=np.intp)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    idf = np.log((1.0 + n_rows) / (1.0 + df[kept])) + 1.0
    matrix = sp.csr_matrix(((np.log(tf) + 1.0) * idf[cols], cols, indptr),
                           shape=(n_rows, len(kept)))
    tokens = list(index)
    return matrix, [tokens[j] for j in kept], idf


def group_normalize(matrix: Any, groups: np.ndarray, weights: np.ndarray) -> Any:
    """Scale each row's groups of columns to L2 norm ``weights[g]`` (CSR, returns a copy)."""
    import scipy.sparse as sp

    X = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    g = groups[X.indices]
    sq = np.zeros((X.shape[0], len(weights)))
    np.add.at(sq, (rows, g), X.data * X.data)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(sq > 0, weights[None, :] / np.sqrt(sq), 0.0)
    X.data *= scale[rows, g]
    return X


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the log loss of softmax(logits / T) (golden section)."""

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))


def _stratified_folds(y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold number of each example: classes dealt round-robin after a fixed shuffle."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.intp)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = np.arange(len(idx)) % k
    return fold


# Lead-ins for augmented examples: generic ways people introduce pasted material.
_AUGMENT_LEADS = (
    "Here is the text:",
    "Context:",
    "I found this:",
    "For reference:",
    "Background:",
    "Read this first:",
)


def _draw(text: str, salt: str) -> int:
    """A 64-bit number fixed by ``text`` and ``salt``: the augmentation's dice, so that each
    example's copy depends on that example alone, not on where it sits among the others."""
    return int.from_bytes(hashlib.blake2b(f"{salt}\0{text}".encode(), digest_size=8).digest(),
                          "little")


def _jump(key: int, n: int) -> int:
    """Jump consistent hash (Lamping and Veach, 2014): a bucket in [0, n) for ``key`` that
    stays put when buckets are added at the end, save for the ~1/n of keys the new ones
    take. Examples are appended to a table, so its passages mostly are too: a new example
    leaves the other copies' borrowed passages where they were."""
    b, j = -1, 0
    while j < n:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * (2147483648.0 / ((key >> 33) + 1)))
    return b


def augment(
    texts: Sequence[str],
    y: np.ndarray,
    share: float,
    seed: int = 0,
    splits: Sequence[Split] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Copies of some short examples WITH pasted material borrowed from other examples.

    The label of a prompt is set by what it asks, not by what it pastes; hand-written examples
    tend to paste material mostly where the task is to pull something out of it, which teaches
    a model that any passage means that task. These copies (same label, a passage before, after
    or around the ask) break that shortcut. Returns (texts, labels, index of each copy's
    source example).

    Whether an example gets a copy, which passage and which layout are drawn from a hash of
    the example's own text (and ``seed``), not from one random stream: adding or editing an
    example changes its own copy and leaves the others' alone, so the model, and the
    borderline prompts it decides, do not reshuffle with every edit of the table.
    """
    passages: list[str] = []
    bare: list[int] = []
    for i, text in enumerate(texts):
        split = splits[i] if splits is not None else split_prompt(feat.clean(text))
        passages.extend(p.text.strip() for p in split.passages if 80 <= len(p.text) <= 1500)
        if not split.passages and len(text) <= 400:
            bare.append(i)
    out_texts: list[str] = []
    out_y: list[int] = []
    sources: list[int] = []
    if passages and share > 0:
        for i in bare:
            draw = _draw(texts[i], f"augment:{seed}")
            if (draw & 0xFFFFFFFF) / 2**32 >= share:
                continue
            passage = passages[_jump(draw, len(passages))]
            how = (draw >> 40) % 3
            if how == 0:
                text = f'{texts[i]}\n\n"{passage}"'
            elif how == 1:
                lead = _AUGMENT_LEADS[(draw >> 48) % len(_AUGMENT_LEADS)]
                text = f"{lead}\n\n{passage}\n\n{texts[i]}"
            else:
                text = f"{texts[i]}\n\n{passage}"
            out_texts.append(text)
            out_y.append(int(y[i]))
            sources.append(i)
    return out_texts, np.array(out_y, dtype=np.intp), np.array(sources, dtype=np.intp)


def train(
    examples: Mapping[str, Sequence[str]],
    params: TrainParams = DEFAULT_PARAMS,
    *,
    key: str = "",
    calibrate: bool = True,
    vocabulary: Mapping[str, Sequence[str]] | None = None,
) -> Trained:
    """Fit the model on ``{label: examples}`` (and the task types' ``vocabulary``, see
    :class:`features.Lexicon`) and export it. Imports scikit-learn.

    BLAS is held to one thread while training: on a small, busy machine OpenBLAS's threads
    made the optimiser a hundred times slower.
    """
    from threadpoolctl import threadpool_limits

    vocab = {t: tuple(v) for t, v in (vocabulary or {}).items() if v}
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(examples, params, key=key, calibrate=calibrate, vocabulary=vocab)


def _train(
    examples: Mapping[str, Sequence[str]], params: TrainParams, *, key: str, calibrate: bool,
    vocabulary: dict[str, tuple[str, ...]],
) -> Trained:
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    parts: dict[str, float] = {}
    mark = [started]

    def lap(name: str) -> None:
        now = time.perf_counter()
        parts[name] = round(now - mark[0], 3)
        mark[0] = now

    labels = tuple(label for label, texts in examples.items() if texts)
    if not labels:
        raise ValueError("no task type has examples to learn from")
    texts = [t for label in labels for t in examples[label]]
    y = np.array([i for i, label in enumerate(labels) for _ in examples[label]], dtype=np.intp)
    lexicon = feat.Lexicon.build(vocabulary)
    analyzed = [feat.analyze(t, lexicon) for t in texts]
    extra_texts, extra_y, source = augment(
        texts, y, params.augment_share, params.seed, splits=[a[1] for a in analyzed]
    )
    all_y = np.concatenate([y, extra_y])
    n_real = len(texts)
    # Featurized once, for the final model and every fold alike.
    token_lists = [a[0] for a in analyzed] + [feat.tokens(t, lexicon) for t in extra_texts]
    lap("featurize_s")
    counts, vocab_tokens, idf = tfidf(token_lists, params.min_df)
    groups = np.fromiter(map(feat.group_of, vocab_tokens), dtype=np.intp,
                         count=len(vocab_tokens))
    weights = np.asarray(params.group_weights, dtype=np.float64)
    X = group_normalize(counts, groups, weights)
    # The solver works in single precision: its sparse products move half the bytes (a quarter
    # off the fit's time) and the optimum moves far less than the solver's own tolerance
    # (predictions on every training example unchanged). Inference stays in double precision.
    X32 = X.astype(np.float32)
    lap("vectorize_s")

    def fit(rows: np.ndarray, tol: float, start: Sequence[Any] = ()) -> Any:
        lr = LogisticRegression(C=params.C, solver="newton-cg", max_iter=params.max_iter, tol=tol,
                                warm_start=bool(start))
        if start:  # begin from the mean of these models: the same optimum, fewer Newton steps
            lr.coef_ = np.mean([m.coef_ for m in start], axis=0)
            lr.intercept_ = np.mean([m.intercept_ for m in start], axis=0)
        return lr.fit(X32[rows], all_y[rows])

    temperature, cv_info = 1.0, {}
    fit_info: dict[str, int] = {}
    fold_models: list[Any] = []
    if len(labels) == 1:
        estimator = None
        coef = np.zeros((len(vocab_tokens), 1))
        intercept = np.zeros(1)
    else:
        folds = min(params.cv_folds, int(np.bincount(y).min()))
        if calibrate and folds >= 2:
            # Out-of-fold logits of the real examples; an augmented copy trains only in the
            # folds its source example trains in, so no copy of a test example leaks in.
            fold = _stratified_folds(y, folds, params.seed)
            fold_all = np.concatenate([fold, fold[source]])
            oof = np.zeros((n_real, len(labels)))
            fold_models = []
            for k in range(folds):
                model_k = fit(np.flatnonzero(fold_all != k), params.tol * CALIBRATION_TOL_FACTOR)
                fold_models.append(model_k)
                test = np.flatnonzero(fold == k)
                logits = model_k.decision_function(X[test])
                oof[test] = _two_classes(logits, 1) if len(labels) == 2 else logits
            temperature = fit_temperature(oof, y)
            pred = oof.argmax(axis=1)
            cv_info = {
                "cv_folds": folds,
                "cv_accuracy": round(float((pred == y).mean()), 4),
                "cv_macro_f1": round(_macro_f1(y, pred, len(labels)), 4),
            }
            lap("calibrate_s")
        # The final fit starts where the fold models ended, and stops at the same gradient
        # tolerance as a cold start would. How many Newton steps that saves depends on how
        # close their mean lands (2 to 9 over augmentation seeds; about 8 from a cold start).
        estimator = fit(np.arange(len(all_y)), params.tol, fold_models)
        fit_info["newton_steps"] = int(np.max(estimator.n_iter_))
        coef, intercept = estimator.coef_.T, estimator.intercept_
        if len(labels) == 2:
            coef, intercept = _two_classes(coef[:, 0], 1), _two_classes(intercept[0], 0)
        coef = np.ascontiguousarray(coef, dtype=np.float64)
        intercept = np.asarray(intercept, dtype=np.float64)
        lap("fit_s")
    elapsed = time.perf_counter() - started
    model = LinearModel(
        labels=labels,
        vocab={t: j for j, t in enumerate(vocab_tokens)},
        idf=idf,
        groups=groups,
        group_weights=weights,
        coef=coef,
        intercept=intercept,
        temperature=temperature,
        key=key,
        meta={
            "n_examples": n_real,
            "n_augmented": len(extra_texts),
            "n_features": len(vocab_tokens),
            "train_s": round(elapsed, 3),
            **parts,
            **cv_info,
            **fit_info,
        },
        vocabulary=vocabulary,
    )
    model.__dict__["_inv"] = vocab_tokens
    model.__dict__["_lexicon"] = lexicon
    return Trained(model, estimator, X, all_y, texts + extra_texts)


def _two_classes(values: np.ndarray, axis: int) -> np.ndarray:
    """With two task types scikit-learn keeps one logit d (for the second class); [-d/2, d/2]
    along ``axis`` gives the same probabilities under softmax, so the rest of the code always
    sees one logit per class."""
    values = np.asarray(values, dtype=np.float64)
    return np.stack([-values / 2, values / 2], axis=axis)


def _macro_f1(y: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    scores = []
    for c in range(n_labels):
        tp = int(np.sum((pred == c) & (y == c)))
        fp = int(np.sum((pred == c) & (y != c)))
        fn = int(np.sum((pred != c) & (y == c)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))
