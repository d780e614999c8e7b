"""Classifiers behind one interface: ``Classifier.classify(prompt) -> Classification``.

Layers, as :func:`build_classifier` assembles them::

    CachingClassifier          a repeated prompt is answered from an LRU cache (cached=True)
      RuleClassifier           per-task regular expressions from routes.toml, tried first
        LocalClassifier        tf-idf + logistic regression over the task examples, offline
        or LLMClassifier       asks a cheap model for one label; fails open to the local one
        or CascadeClassifier   the local one first, the LLM only when it is unsure

``kind = "llm"`` and ``"cascade"`` call ``[classifier] llm_model``, resolved by
:func:`resolve_llm` through the provider registry like any model (keys, base-URL overrides); with
no key it is not simulated: the local classifier decides and the reason says so. Each LLM call
(time, tokens, cost) rides on the classification (``Classification.llm``); the stack's
``local_only`` never calls a model (labels while a person types).

The local classifier is TRAINED with scikit-learn (at start-up, from the examples in the routing
table: task names are data) but RUNS on numpy alone: the fitted model is exported to plain arrays
(vocabulary, idf, coefficients, intercepts, a calibration temperature) and cached on disk, keyed by
a hash of everything it was trained from, so a warm start imports numpy and not scikit-learn.
Featurization lives in :mod:`tui.router.classifier.features`.

Also here: :func:`infer_priority` (priority cues found in a prompt) and :func:`decide`
(classification + priority + the uncertain band -> a :class:`Decision`).

Nothing here imports Textual or, until a model must be trained, scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tui.router.classifier import features as feat
from tui.router.classifier.rules import RuleError, compile_rule
from tui.router.sanitize import clean_surrogates
from tui.router.types import (
    Cell,
    Classification,
    Decision,
    LLMCall,
    RoutingTable,
    StreamError,
    TextDelta,
    Timeouts,
)

ProgressFn = Callable[[str], None]

TOP_K = 3


class Classifier(Protocol):
    """Anything that labels a prompt with one of the routing table's task types."""

    name: str

    def classify(self, prompt: str) -> Classification: ...


def _check_prompt(prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("empty prompt")


def _printable(text: str, limit: int = 40) -> str:
    """A short, control-character-free excerpt for a reason line."""
    text = text.translate(feat._CONTROL).replace("\n", " ").replace("\t", " ")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
# The exported model: plain arrays, numpy inference
# --------------------------------------------------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class _ColumnCache(dict):
    """key -> model column (-1: not a feature), filled as keys are met; ``column`` computes
    one. Bounded: past RUN_CACHE_MAX keys a miss is computed and not kept."""

    def __init__(self, column: Callable[[Any], Any]) -> None:
        super().__init__()
        self.column = column

    def __missing__(self, key: Any) -> Any:
        value = self.column(key)
        if len(self) < RUN_CACHE_MAX:
            self[key] = value
        return value


RUN_CACHE_MAX = 100_000


class _RunColumns:
    """The caches LinearModel.counts maps the analyzer's runs of words through."""

    def __init__(self, vocab: dict[str, int]) -> None:
        get = vocab.get
        self.by_kind = {
            kind: _ColumnCache(lambda w, prefix=prefix: get(prefix + w, -1))
            for kind, prefix in feat.WORD_PREFIX.items()
        }
        self.bigrams = _ColumnCache(lambda pair: get(feat.BIGRAM_TOKEN(*pair), -1))
        self.grams = _ColumnCache(
            lambda w: tuple(c for c in map(get, feat.grams_of(w)) if c is not None))


# Below this share of known words the decision line says how little the model recognised.
LOW_EVIDENCE = 0.5
# A word of pasted material counts for this much of an instruction word in known_share.
MATERIAL_WORD_WEIGHT = 0.5
# known_share's floor: a prompt with no known word keeps the model's order of the labels.
MIN_SHARE = 0.01


def known_share(instr_known: int, instr_seen: int, mat_known: int, mat_seen: int) -> float:
    """The share of a prompt's words the model has a feature for (a vocabulary hit counts as
    known; pasted material's words count half), at least ``MIN_SHARE``.

    The logits are multiplied by it before the temperature: the label stays the model's
    argmax, only the confidence moves. A prompt the model cannot read ("asdf qwer", "???", a
    name it never saw) then gets a near-uniform distribution, below the confidence threshold,
    instead of being decided with confidence by the few character n-grams it happens to share
    with the examples (each feature group is scaled to a fixed norm, so a handful of weak
    features pushed as hard as a sentence). Real prompts, whose typos, names and jargon the
    examples never used, lose confidence in proportion, which is what calibrates them: on the
    real-prompt dev set, ECE 0.129 -> 0.072 on every prompt and 0.053 -> 0.030 on the
    unambiguous ones, same accuracy (tests/bench/bench_accuracy.py).
    """
    seen = instr_seen + MATERIAL_WORD_WEIGHT * mat_seen
    if seen <= 0:
        return MIN_SHARE
    return max(MIN_SHARE, (instr_known + MATERIAL_WORD_WEIGHT * mat_known) / seen)


@dataclass
class LinearModel:
    """A fitted tf-idf + multinomial logistic regression, as arrays."""

    labels: tuple[str, ...]
    vocab: dict[str, int]  # token -> column
    idf: np.ndarray  # (n_features,)
    groups: np.ndarray  # (n_features,) feature group of each column
    group_weights: np.ndarray  # (N_GROUPS,)
    coef: np.ndarray  # (n_features, n_labels)
    intercept: np.ndarray  # (n_labels,)
    temperature: float = 1.0
    key: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    # The task types' vocabularies it was trained with (task -> entries), part of its features.
    vocabulary: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def lexicon(self) -> feat.Lexicon:
        lex = self.__dict__.get("_lexicon")
        if lex is None:
            lex = self.__dict__["_lexicon"] = feat.Lexicon.build(self.vocabulary)
        return lex

    # -- inference ----------------------------------------------------------------------------

    def counts(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """The prompt's known columns, each once, and how often its token occurs."""
        cols, tf, _ = self.columns(prompt)
        return cols, tf

    def columns(self, prompt: str) -> tuple[np.ndarray, np.ndarray, float]:
        """The prompt's known columns, each once, how often its token occurs, and the share of
        its words the model knows (see :func:`known_share`). The one place prompts become
        columns (one-by-one here, in batches in projection.py).

        The analyzer's runs of words go to columns through per-rule caches (word -> column,
        word pair -> column, word -> its character n-grams' columns), so inference builds no
        token strings for them: a long prompt's words are mostly words seen before. Equal to
        looking up ``feat.tokens(prompt)`` one by one (a test holds it to that)."""
        runs, _ = feat.analyze_runs(prompt, self.lexicon)
        caches = self.__dict__.get("_run_columns")
        if caches is None:
            caches = self.__dict__["_run_columns"] = _RunColumns(self.vocab)
        vocab_get = self.vocab.get
        ids: list[int] = []
        words = [0, 0, 0, 0]  # instruction words known, seen; material words known, seen
        for kind, items in runs:
            if kind == feat.RUN_TOKENS:
                ids.extend(map(vocab_get, items, repeat(-1, len(items))))
                # a vocabulary hit is a word the model knows, if no example used it
                words[0] += sum(1 for t in items if t.startswith("x:"))
            elif kind == feat.RUN_BIGRAMS:
                ids.extend(map(caches.bigrams.__getitem__, zip(items, items[1:], strict=False)))
            elif kind == feat.RUN_GRAMS:
                ids.extend(chain.from_iterable(map(caches.grams.__getitem__, items)))
            else:
                mapped = list(map(caches.by_kind[kind].__getitem__, items))
                ids.extend(mapped)
                at = 0 if kind == feat.RUN_WORDS else 2
                words[at] += len(mapped) - mapped.count(-1)
                words[at + 1] += len(mapped)
        found = np.fromiter(ids, dtype=np.intp, count=len(ids))
        cols, tf = np.unique(found[found >= 0], return_counts=True)
        words[0] = min(words[0], words[1])
        return cols, tf, known_share(*words)

    def vectorize(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """The prompt's non-zero columns and their values (tf-idf, group-normalised)."""
        cols, tf, _ = self.columns(prompt)
        return self._values(cols, tf)

    def _values(self, cols: np.ndarray, tf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(cols) == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        vals = np.log(tf)
        vals += 1.0
        vals *= self.idf[cols]
        groups = self.groups[cols]
        norms = np.sqrt(np.bincount(groups, weights=vals * vals, minlength=len(self.group_weights)))
        norms[norms == 0.0] = 1.0  # an absent group scales nothing
        vals *= (self.group_weights / norms)[groups]
        return cols, vals

    def raw_logits(self, prompt: str) -> np.ndarray:
        """Logits before the temperature, scaled by the share of the prompt's words the model
        knows (see :func:`known_share`)."""
        cols, tf, known = self.columns(prompt)
        cols, vals = self._values(cols, tf)
        if len(cols) == 0:
            return known * self.intercept
        return known * (vals @ self.coef[cols] + self.intercept)

    def predict_proba(self, prompt: str, *, calibrated: bool = True) -> np.ndarray:
        z = self.raw_logits(prompt)
        if calibrated:
            z = z / self.temperature
        return _softmax(z)

    def evidence(
        self, cols: np.ndarray, vals: np.ndarray, label: int, k: int = 3,
        rows: np.ndarray | None = None,
    ) -> list[str]:
        """Readable tokens that pushed most towards ``label`` (words, not character n-grams)."""
        if len(cols) == 0 or self.coef.shape[1] < 2:
            return []
        if rows is None:
            rows = self.coef[cols]
        push = vals * (rows[:, label] - rows.sum(axis=1) / rows.shape[1])
        top = 4 * k + 8
        if len(push) > top:
            best = np.argpartition(-push, top)[:top]
            order = best[np.argsort(-push[best])]
        else:
            order = np.argsort(-push)
        inverse = self._inverse_vocab()
        out: list[str] = []
        for idx in order:
            if push[idx] <= 0:
                break
            token = inverse[int(cols[idx])]
            shown = _describe_token(token)
            if shown and shown not in out:
                out.append(shown)
            if len(out) >= k:
                break
        return out

    def _inverse_vocab(self) -> list[str]:
        inv = self.__dict__.get("_inv")
        if inv is None:
            inv = [""] * len(self.vocab)
            for token, j in self.vocab.items():
                inv[j] = token
            self.__dict__["_inv"] = inv
        return inv

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write atomically (temporary file in the same folder, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens = [""] * len(self.vocab)
        for token, j in self.vocab.items():
            tokens[j] = token
        blob = "\x00".join(tokens).encode("utf-8", "surrogatepass")
        meta = dict(self.meta, key=self.key, labels=list(self.labels),
                    temperature=self.temperature, feature_version=feat.FEATURE_VERSION,
                    vocabulary={t: list(v) for t, v in self.vocabulary.items()})
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    vocab=np.frombuffer(blob, dtype=np.uint8),
                    idf=self.idf,
                    groups=self.groups.astype(np.int64),
                    group_weights=self.group_weights,
                    coef=self.coef,
                    intercept=self.intercept,
                    meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
                )
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @classmethod
    def load(cls, path: Path, key: str) -> LinearModel:
        """Load a cached model; raises ValueError when it is corrupt or for another key."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                if meta.get("key") != key or meta.get("feature_version") != feat.FEATURE_VERSION:
                    raise ValueError("cached model is for other examples")
                blob = bytes(data["vocab"]).decode("utf-8", "surrogatepass")
                tokens = blob.split("\x00") if blob else []
                idf = np.asarray(data["idf"], dtype=np.float64)
                groups = np.asarray(data["groups"], dtype=np.intp)
                group_weights = np.asarray(data["group_weights"], dtype=np.float64)
                coef = np.ascontiguousarray(data["coef"], dtype=np.float64)
                intercept = np.asarray(data["intercept"], dtype=np.float64)
        except ValueError:
            raise
        except Exception as exc:  # zip, npy or json damage: all mean "retrain"
            raise ValueError(f"cached model unreadable: {type(exc).__name__}") from None
        labels = tuple(meta["labels"])
        n, k = len(tokens), len(labels)
        if (
            idf.shape != (n,) or groups.shape != (n,) or coef.shape != (n, k)
            or intercept.shape != (k,) or group_weights.shape != (feat.N_GROUPS,)
            or len(set(tokens)) != n or not np.all(np.isfinite(coef))
            or (n and (groups.min() < 0 or groups.max() >= feat.N_GROUPS))
        ):
            raise ValueError("cached model has inconsistent arrays")
        temperature = float(meta["temperature"])
        if not (temperature > 0 and np.isfinite(temperature)):
            raise ValueError("cached model has a bad temperature")
        vocabulary = meta.get("vocabulary") or {}
        if not (isinstance(vocabulary, dict) and all(
            isinstance(v, list) and all(isinstance(e, str) for e in v) for v in vocabulary.values()
        )):
            raise ValueError("cached model has a bad vocabulary")
        meta = {k: v for k, v in meta.items()
                if k not in ("key", "labels", "temperature", "feature_version", "vocabulary")}
        model = cls(labels, dict(zip(tokens, range(n), strict=True)), idf, groups,
                    group_weights, coef, intercept, temperature, key, meta,
                    {str(t): tuple(v) for t, v in vocabulary.items()})
        model.__dict__["_inv"] = tokens  # column -> token, for the reasons
        return model


def _describe_token(token: str) -> str:
    prefix, _, rest = token.partition(":")
    if rest and not rest.strip(feat.NUMBER_MARK + "_"):
        return "numbers"
    if prefix in ("w", "f", "lf"):
        return rest
    if prefix in ("b", "f2", "lf2"):
        return rest.replace("_", " ")
    if prefix == "p":
        return f"pasted “{rest}”"
    if prefix == "pk":
        return f"pasted {rest}"
    if prefix == "pl":
        return f"a “{rest}” block"
    if prefix == "x":
        return f"{rest} vocabulary"
    return ""


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
    splits: Sequence[feat.Split] | None = None,
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
        split = splits[i] if splits is not None else feat.split_prompt(feat.clean(text))
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


# --------------------------------------------------------------------------------------------
# The on-disk model cache
# --------------------------------------------------------------------------------------------

CACHE_ENV = "ROUTEDECK_CACHE_DIR"
_CACHE_KEEP = 6  # cached models kept; older ones are removed


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("routedeck", appauthor=False))


def cache_path(key: str, directory: Path | None = None) -> Path:
    return (directory or cache_dir()) / f"classifier-{key[:32]}.npz"


def _prune(directory: Path, keep: Path) -> None:
    try:
        files = sorted(directory.glob("classifier-*.npz"), key=lambda p: p.stat().st_mtime)
        for old in files[:-_CACHE_KEEP]:
            if old != keep:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def load_or_train(
    table: RoutingTable,
    *,
    directory: Path | None = None,
    use_cache: bool = True,
    on_progress: ProgressFn | None = None,
    params: TrainParams = DEFAULT_PARAMS,
) -> LinearModel:
    """The local model for ``table``: from the disk cache when it matches, else trained (and
    then cached). A corrupt or mismatching cache file is ignored and overwritten."""
    say = on_progress or (lambda _msg: None)
    key = model_key(table, params)
    path = cache_path(key, directory) if use_cache else None
    if path is not None and path.exists():
        try:
            model = LinearModel.load(path, key)
            say(f"classifier loaded from cache ({len(model.labels)} task types)")
            return model
        except ValueError as exc:
            say(f"classifier cache ignored: {exc}")
    examples = examples_by_label(table)
    n = sum(len(v) for v in examples.values())
    say(f"training the classifier on {n} examples of {len(examples)} task types…")
    model = train(examples, params, key=key, vocabulary=vocabularies(table)).model
    say(f"classifier trained in {model.meta['train_s']:.2f} s")
    if path is not None:
        try:
            model.save(path)
            _prune(path.parent, path)
        except OSError as exc:
            say(f"classifier cache not written: {exc.strerror or exc}")
    return model


# --------------------------------------------------------------------------------------------
# Classifiers
# --------------------------------------------------------------------------------------------


class LocalClassifier:
    """Offline classifier over the routing table's examples; numpy only at inference."""

    name = "local"

    def __init__(self, model: LinearModel):
        self.model = model

    @classmethod
    def from_table(
        cls,
        table: RoutingTable,
        *,
        directory: Path | None = None,
        use_cache: bool = True,
        on_progress: ProgressFn | None = None,
        params: TrainParams = DEFAULT_PARAMS,
    ) -> LocalClassifier:
        return cls(load_or_train(table, directory=directory, use_cache=use_cache,
                                 on_progress=on_progress, params=params))

    @property
    def labels(self) -> tuple[str, ...]:
        return self.model.labels

    def classify(self, prompt: str) -> Classification:
        _check_prompt(prompt)
        started = time.perf_counter()
        m = self.model
        cols, tf, known = m.columns(prompt)
        cols, vals = m._values(cols, tf)
        rows = m.coef[cols]
        z = known * ((vals @ rows + m.intercept) if len(cols) else m.intercept)
        probs = _softmax(z / m.temperature)
        order = np.argsort(-probs, kind="stable")[:TOP_K]
        best = int(order[0])
        top = tuple((m.labels[int(i)], float(probs[int(i)])) for i in order)
        evidence = m.evidence(cols, vals, best, rows=rows)
        reason = "local classifier" + (": " + ", ".join(evidence) if evidence else "")
        if known <= MIN_SHARE:
            reason += " (knows none of its words)"
        elif known < LOW_EVIDENCE:
            reason += f" (knows {known:.0%} of its words)"
        return Classification(
            label=m.labels[best],
            confidence=float(probs[best]),
            top=top,
            classifier=self.name,
            reason=reason,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )


# Friendly names for common rule patterns; any other rule is described by what it matched.
_RULE_NAMES = {
    "```": "fenced code block",
    r"Traceback \(most recent call last\)": "Python traceback",
}
RULE_SCAN_CHARS = 20_000  # of a huge prompt, rules see the head and the last quarter of this


class RuleClassifier:
    """Per-task regular expressions from routes.toml, tried in table order before ``inner``."""

    name = "rule"

    def __init__(self, rules: Sequence[tuple[str, str]], inner: Classifier):
        self.inner = inner
        # Compiled by RE2 (tui.router.classifier.rules): a user's rule can never hang on a prompt.
        self.rules: list[tuple[str, str, Any]] = []
        for task, pattern in rules:
            try:
                self.rules.append((task, pattern, compile_rule(pattern)))
            except RuleError as exc:
                raise ValueError(
                    f"tasks.{task}.rules: this rule cannot be used {pattern!r}: {exc}"
                ) from None

    @classmethod
    def from_table(cls, table: RoutingTable, inner: Classifier) -> RuleClassifier:
        return cls([(n, r) for n, t in table.tasks.items() for r in t.rules], inner)

    def match(self, prompt: str) -> tuple[str, str, str] | None:
        """(task, pattern, matched text) of the first rule that matches, or None."""
        if len(prompt) > RULE_SCAN_CHARS:
            tail = RULE_SCAN_CHARS // 4
            prompt = prompt[: RULE_SCAN_CHARS - tail] + "\n" + prompt[-tail:]
        prompt = clean_surrogates(prompt)  # RE2 matches UTF-8: a lone surrogate cannot be encoded
        for task, pattern, rx in self.rules:
            m = rx.search(prompt)
            if m:
                return task, pattern, m.group(0)
        return None

    def classify(self, prompt: str) -> Classification:
        _check_prompt(prompt)
        started = time.perf_counter()
        hit = self.match(prompt)
        if hit is None:
            return self.inner.classify(prompt)
        task, pattern, text = hit
        what = _RULE_NAMES.get(pattern) or f"matched “{_printable(text) or pattern}”"
        return Classification(
            label=task,
            confidence=1.0,
            top=((task, 1.0),),
            classifier=self.name,
            reason=f"rule {task}: {what}",
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )


class CachingClassifier:
    """An LRU cache of classifications in front of ``inner`` (thread-safe)."""

    def __init__(self, inner: Classifier, maxsize: int = 512):
        self.inner = inner
        self.name = inner.name
        # The same stack without an LLM (build_classifier sets it when there is one).
        self.local_only: CachingClassifier = self
        self.maxsize = maxsize
        self._cache: OrderedDict[Any, Classification] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(prompt: str) -> Any:
        if len(prompt) <= 4096:
            return prompt
        digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
        return (len(prompt), digest)

    def classify(self, prompt: str) -> Classification:
        _check_prompt(prompt)
        started = time.perf_counter()
        key = self._key(prompt)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                self.hits += 1
        if found is not None:
            return replace(found, cached=True,
                           elapsed_ms=(time.perf_counter() - started) * 1000.0)
        result = self.inner.classify(prompt)
        with self._lock:
            self.misses += 1
            if result.llm is not None and result.llm.outcome in ("failed", "timeout"):
                return result  # a failed call is not remembered: the next ask may get through
            self._cache[key] = result
            self._cache.move_to_end(key)
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return result

    def classify_uncached(self, prompt: str) -> Classification:
        """Classify without reading or filling the cache (for evaluations)."""
        return self.inner.classify(prompt)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


# --------------------------------------------------------------------------------------------
# The LLM classifier and the cascade
# --------------------------------------------------------------------------------------------

LLM_PROMPT_CHARS = 6_000  # of a long prompt, the head and tail sent to the classifying model
LLM_KINDS = ("llm", "cascade")  # classifier kinds that call [classifier] llm_model

PriceFn = Callable[[int, int], "float | None"]  # (input tokens, output tokens) -> USD or None


class _BackgroundLoop:
    """One event loop in a daemon thread that every blocking LLM classification runs on, so
    the classifying model's connection (TLS included) is reused from one prompt to the next
    and a caller inside an event loop is not blocked by a nested one."""

    def __init__(self) -> None:
        self._loop: Any = None
        self._lock = threading.Lock()

    def run(self, coro: Any, timeout: float) -> Any:
        import asyncio

        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="routedeck-llm-classifier",
                                 daemon=True).start()
                self._loop = loop
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise


_LOOP = _BackgroundLoop()


class _LogprobsRefused(Exception):
    """The model answered 400 to a request for logprobs (OpenAI's reasoning models do)."""


@dataclass
class _Tally:
    """What one LLM call used, filled while it streams."""

    request_tokens: int = 0
    started: bool = False
    out_chars: int = 0
    usage: tuple[int, int, bool] | None = None  # (input, output, estimated) from the provider
    ms: float = 0.0  # the call's time, to its answer or failure


class LLMClassifier:
    """Asks a cheap model for one label; fails open to ``fallback`` when the call fails.

    Confidence comes from the first answer token's logprobs when the provider returns them
    (renormalised over the label names); otherwise it is None ("no confidence"). A model that
    refuses logprobs (HTTP 400 naming them) is asked again without, once, and from then on.
    The whole call has ``timeout_s`` (routes.toml [timeouts] classifier); past it the local
    label decides. Every result carries the call (:class:`~tui.router.types.LLMCall`): its
    time, tokens and cost (``price``), or why none was made (``unavailable``: no key).
    """

    name = "llm"

    def __init__(
        self,
        client: Any,  # a tui.router.providers.base.ProviderClient, or None (no call is made)
        model: str,  # "provider/model"
        labels: Sequence[str],
        fallback: Classifier,
        *,
        descriptions: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        timeout_s: float | None = None,
        max_tokens: int | None = None,
        unavailable: str | None = None,  # why there is no client: "no OPENAI_API_KEY for ..."
        price: PriceFn | None = None,
    ):
        self.client = client
        self.model = model
        self.labels = tuple(labels)
        self.fallback = fallback
        self.descriptions = dict(descriptions or {})
        self.timeouts = timeouts or Timeouts(max_retries=0)
        self.timeout_s = self.timeouts.classifier if timeout_s is None else timeout_s
        self.max_tokens = max_tokens
        self.unavailable = unavailable
        self.price = price
        self.logprobs_refused = False

    def _request(self, prompt: str, *, logprobs: bool = True) -> Any:
        from tui.router.providers.base import Message, Request
        from tui.router.types import split_model_id

        lines = [f"- {label}: {self.descriptions.get(label, '')}".rstrip(": ")
                 for label in self.labels]
        system = (
            "You label the task type of a user's prompt for a model router. Label what the user"
            " wants done, not the material they pasted. Task types:\n" + "\n".join(lines)
            + "\nAnswer with exactly one word, the task type, in lower case: "
            + ", ".join(self.labels) + "."
        )
        text = prompt
        if len(text) > LLM_PROMPT_CHARS:
            half = LLM_PROMPT_CHARS // 2
            text = text[:half] + "\n[…]\n" + text[-half:]
        return Request(
            model=split_model_id(self.model)[1],
            messages=(Message("system", system), Message("user", "Prompt:\n" + text)),
            max_tokens=self.max_tokens,
            logprobs=5 if logprobs else None,
        )

    def request_tokens(self, prompt: str) -> int:
        """The classification request's input tokens, estimated from its text (chars / 4)."""
        from tui.router.run.metrics import estimate_tokens

        request = self._request(prompt)
        return estimate_tokens(sum(len(m.content) for m in request.messages))

    async def _ask(self, prompt: str, tally: _Tally) -> tuple[str, Any]:
        """(answer text, first-token alternatives); raises RuntimeError on a failed call."""
        if not self.logprobs_refused:
            try:
                return await self._ask_once(prompt, tally, logprobs=True)
            except _LogprobsRefused:
                self.logprobs_refused = True
        return await self._ask_once(prompt, tally, logprobs=False)

    async def _ask_once(self, prompt: str, tally: _Tally, *, logprobs: bool) -> tuple[str, Any]:
        from tui.router.types import Started, UsageReport

        text: list[str] = []
        first_logprobs = None
        async for event in self.client.stream(self._request(prompt, logprobs=logprobs),
                                              self.timeouts):
            if isinstance(event, Started):
                tally.started = True
            elif isinstance(event, TextDelta):
                if first_logprobs is None and event.text.strip():
                    first_logprobs = getattr(event, "logprobs", None) or ()
                text.append(event.text)
                tally.out_chars += len(event.text)
            elif isinstance(event, UsageReport):
                tally.usage = (event.input_tokens, event.output_tokens, event.estimated)
            elif isinstance(event, StreamError):
                if (logprobs and event.kind == "http" and event.status == 400
                        and "logprob" in event.message.lower()):
                    raise _LogprobsRefused()
                raise RuntimeError(f"{event.kind}: {_printable(event.message, 80)}")
        return "".join(text), (first_logprobs or None)

    def _parse(self, answer: str) -> str | None:
        words = re.findall(r"[a-z_-]+", answer.lower())
        for w in words:
            if w in self.labels:
                return w
        for w in words:  # a truncated label ("extract")
            hits = [label for label in self.labels if label.startswith(w) and len(w) >= 3]
            if len(hits) == 1:
                return hits[0]
        return None

    def _distribution(self, alternatives: Sequence[tuple[str, float]]) -> dict[str, float]:
        mass: dict[str, float] = {}
        for token, logprob in alternatives:
            t = token.strip().lower()
            if not t:
                continue
            hits = [label for label in self.labels if label.startswith(t)]
            if len(hits) == 1:
                mass[hits[0]] = mass.get(hits[0], 0.0) + float(np.exp(logprob))
        total = sum(mass.values())
        return {k: v / total for k, v in mass.items()} if total > 0 else {}

    def classify(self, prompt: str, local: Classification | None = None) -> Classification:
        """Blocking (the call runs on a shared background loop). ``local``: the fallback's
        classification when the caller has it already (the cascade)."""
        _check_prompt(prompt)
        started = time.perf_counter()
        if self.client is None:
            return self._unavailable(prompt, local, started)
        try:
            return _LOOP.run(self.aclassify(prompt, local), self.timeout_s + 5.0)
        except Exception as exc:  # the deadline inside should have ended it: never block a run
            why = _printable(str(exc), 80) or type(exc).__name__
            return self._fail_open(prompt, local, why, started, None, "failed")

    async def aclassify(self, prompt: str, local: Classification | None = None) -> Classification:
        import asyncio

        _check_prompt(prompt)
        started = time.perf_counter()
        if self.client is None:
            return self._unavailable(prompt, local, started)
        tally = _Tally(request_tokens=self.request_tokens(prompt))
        try:
            answer, alternatives = await asyncio.wait_for(self._ask(prompt, tally), self.timeout_s)
        except TimeoutError:
            tally.ms = (time.perf_counter() - started) * 1000.0
            why = f"no answer within the {self.timeout_s:g} s deadline"
            return self._fail_open(prompt, local, why, started, tally, "timeout")
        except Exception as exc:  # the provider contract says no raise; be safe anyway
            tally.ms = (time.perf_counter() - started) * 1000.0
            why = _printable(str(exc), 80) or type(exc).__name__
            return self._fail_open(prompt, local, why, started, tally, "failed")
        tally.ms = (time.perf_counter() - started) * 1000.0
        label = self._parse(answer)
        if label is None:
            why = f"answered “{_printable(answer, 30)}”"
            return self._fail_open(prompt, local, why, started, tally, "failed")
        return self._answered(label, alternatives, started, tally)

    def _answered(self, label: str, alternatives: Any, started: float,
                  tally: _Tally) -> Classification:
        dist = self._distribution(alternatives or ())
        confidence = dist.get(label) if dist else None
        if dist:
            ranked = sorted(dist.items(), key=lambda kv: -kv[1])
            if label not in dict(ranked[:TOP_K]):  # the answer first, then the likeliest
                ranked = [(label, dist.get(label, 0.0))] + [r for r in ranked if r[0] != label]
            top = tuple(ranked[:TOP_K])
            reason = f"llm {self.model}"
        else:
            top = ((label, 1.0),)
            reason = f"llm {self.model} (no confidence)"
        return Classification(
            label=label,
            confidence=confidence,
            top=top,
            classifier=self.name,
            reason=reason,
            elapsed_ms=tally.ms,
            llm=self._call("ok", tally),
        )

    def _call(self, outcome: str, tally: _Tally) -> LLMCall:
        """The call's record. Without a usage report: an answer counts the request's estimated
        input tokens and its text's; a call cut at the deadline, or broken after it started,
        counts the estimated input (the provider may bill what it read); a refused one nothing."""
        from tui.router.run.metrics import estimate_tokens

        if tally.usage is not None:
            inp, out, estimated = tally.usage
        elif outcome == "ok" or outcome == "timeout" or tally.started:
            inp, out, estimated = tally.request_tokens, estimate_tokens(tally.out_chars), True
        else:
            inp, out, estimated = 0, 0, False
        if inp or out:
            cost = self.price(inp, out) if self.price is not None else None
        else:
            cost = 0.0
        return LLMCall(
            model=self.model,
            outcome=outcome,  # type: ignore[arg-type]
            ms=tally.ms,
            input_tokens=inp,
            output_tokens=out,
            usage_estimated=estimated,
            cost_usd=cost,
            request_tokens=tally.request_tokens,
        )

    def _unavailable(self, prompt: str, local: Classification | None,
                     started: float) -> Classification:
        """No client (no key, or simulated): the local classifier decides; nothing is called."""
        if self.unavailable is None:
            return self._fail_open(prompt, local, "no provider client for " + self.model,
                                   started, None, "unavailable")
        result = local if local is not None else self.fallback.classify(prompt)
        return replace(
            result,
            reason=f"{self.unavailable}: {result.reason}",
            elapsed_ms=result.elapsed_ms + (time.perf_counter() - started) * 1000.0,
            llm=LLMCall(self.model, "unavailable", request_tokens=self.request_tokens(prompt)),
        )

    def _fail_open(self, prompt: str, local: Classification | None, why: str, started: float,
                   tally: _Tally | None, outcome: str) -> Classification:
        result = local if local is not None else self.fallback.classify(prompt)
        tally = tally or _Tally(request_tokens=self.request_tokens(prompt))
        return replace(
            result,
            classifier="fallback",
            reason=f"llm failed ({why}); {result.reason}",
            elapsed_ms=result.elapsed_ms + (time.perf_counter() - started) * 1000.0,
            llm=self._call(outcome, tally),
        )


class CascadeClassifier:
    """The local classifier first; only a prompt it is unsure of (confidence below
    ``threshold``) goes to the LLM classifier. The LLM's answer then decides, with its own
    confidence (below the threshold: the uncertain route) or none (taken as certain, as for
    kind = "llm"); if the LLM fails, times out or cannot be called, the local label stays,
    still below the threshold, so the prompt takes the uncertain route. Most prompts cost
    nothing; the hard ones get a second opinion."""

    name = "cascade"

    def __init__(self, local: Classifier, llm: LLMClassifier, threshold: float):
        self.local = local
        self.llm = llm
        self.threshold = threshold

    def classify(self, prompt: str) -> Classification:
        first = self.local.classify(prompt)
        if first.confidence is not None and first.confidence >= self.threshold:
            return first
        second = self.llm.classify(prompt, local=first)
        if second.classifier != "llm":  # failed or unavailable: the (unsure) local label
            return second
        unsure = f"local unsure ({first.label} {first.confidence or 0.0:.2f})"
        return replace(second, reason=f"{unsure}; {second.reason}",
                       elapsed_ms=first.elapsed_ms + second.elapsed_ms)


# --------------------------------------------------------------------------------------------
# Assembly, priority and the decision
# --------------------------------------------------------------------------------------------


def resolve_llm(
    table: RoutingTable, *, env: Mapping[str, str] | None = None, force_simulated: bool = False
) -> tuple[Any, str | None]:
    """``(client, None)`` for the table's ``llm_model`` through the provider registry (keys,
    ``<PROVIDER>_BASE_URL``), or ``(None, why)`` when it would be simulated: a simulated label
    means nothing, so the local classifier decides and ``why`` says so ("no OPENAI_API_KEY for
    openai/gpt-5-nano"). ``(None, None)`` when the table's classifier calls no model."""
    settings = table.classifier
    model = settings.llm_model
    if settings.kind not in LLM_KINDS or not model:
        return None, None
    from tui.router.providers.registry import resolve_client

    env = os.environ if env is None else env
    resolved = resolve_client(model, table, env=env, force_simulated=force_simulated)
    if not resolved.simulated:
        return resolved.client, None
    provider = table.providers.get(resolved.provider)
    var = provider.api_key_env if provider is not None else None
    if var and not env.get(var, "").strip():
        return None, f"no {var} for {model}"
    return None, f"{model} not called ({resolved.why_simulated or 'simulated'})"


def build_classifier(
    table: RoutingTable,
    *,
    on_progress: ProgressFn | None = None,
    llm_client: Any = None,
    llm_unavailable: str | None = None,
    directory: Path | None = None,
    use_cache: bool = True,
    cache_size: int = 512,
) -> CachingClassifier:
    """The classifier the routing table asks for: rules, then local (or LLM, or the cascade),
    behind an LRU.

    The local model comes from the disk cache or is trained (this imports scikit-learn, about
    2 s, and trains in under a second); ``on_progress`` hears what happens. With
    ``classifier.kind = "llm"`` or ``"cascade"``, ``llm_client`` is the provider client of
    ``llm_model`` (see :func:`resolve_llm`); without one the local classifier decides and each
    reason says why (``llm_unavailable``). ``result.local_only`` is the same stack without the
    LLM (rules, then local), for labels that must cost nothing (as a person types).
    """
    local = LocalClassifier.from_table(
        table, directory=directory, use_cache=use_cache, on_progress=on_progress
    )
    return assemble(table, local, llm_client=llm_client, llm_unavailable=llm_unavailable,
                    cache_size=cache_size)


def assemble(
    table: RoutingTable,
    local: LocalClassifier,
    *,
    llm_client: Any = None,
    llm_unavailable: str | None = None,
    cache_size: int = 512,
) -> CachingClassifier:
    """The stack of :func:`build_classifier` around a local classifier already loaded."""
    local_stack = CachingClassifier(RuleClassifier.from_table(table, local), maxsize=cache_size)
    settings = table.classifier
    if settings.kind not in LLM_KINDS or not settings.llm_model:
        return local_stack
    from tui.router.cost.pricing import cost_usd

    model = settings.llm_model
    llm = LLMClassifier(
        llm_client,
        model,
        list(table.tasks),
        local,
        descriptions={n: t.description for n, t in table.tasks.items()},
        timeouts=replace(table.timeouts, max_retries=0),
        unavailable=llm_unavailable,
        price=lambda inp, out: cost_usd(model, inp, out, table=table),
    )
    inner: Classifier = llm
    if settings.kind == "cascade":
        inner = CascadeClassifier(local, llm, settings.threshold)
    full = CachingClassifier(RuleClassifier.from_table(table, inner), maxsize=cache_size)
    full.local_only = local_stack
    return full


def local_classifier_of(classifier: Any) -> LocalClassifier | None:
    """The LocalClassifier inside a stack (cache → rules → local / llm / cascade)."""
    c = classifier
    for _ in range(5):
        if isinstance(c, LocalClassifier):
            return c
        c = getattr(c, "inner", None) or getattr(c, "local", None) or getattr(c, "fallback", None)
    return None


_CUE_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}
CUE_SCAN_CHARS = 20_000


def _cue_pattern(cues: Sequence[str]) -> re.Pattern[str] | None:
    key = tuple(cues)
    rx = _CUE_CACHE.get(key)
    if rx is None and cues:
        parts = [r"\s+".join(re.escape(w) for w in cue.split()) for cue in cues if cue.strip()]
        if not parts:
            return None
        rx = re.compile(r"(?<!\w)(" + "|".join(parts) + r")(?!\w)", re.I)
        if len(_CUE_CACHE) > 64:
            _CUE_CACHE.clear()
        _CUE_CACHE[key] = rx
    return rx


def infer_priority(
    prompt: str, table: RoutingTable, given: str | None = None
) -> tuple[str, str]:
    """(priority, reason): ``given`` wins; else the first priority with a cue in the prompt
    (whole words or phrases, any case); else the table's default priority."""
    if given is not None:
        if given not in table.priorities:
            known = ", ".join(table.priorities)
            raise ValueError(f"unknown priority {given!r}; known: {known}")
        return given, "given"
    text = prompt
    if len(text) > CUE_SCAN_CHARS:
        text = text[: CUE_SCAN_CHARS - 5_000] + "\n" + text[-5_000:]
    for name, priority in table.priorities.items():
        rx = _cue_pattern(priority.cues)
        if rx is None:
            continue
        m = rx.search(text)
        if m:
            found = m.group(1).lower()
            cue = next((c for c in priority.cues if " ".join(c.lower().split()) ==
                        " ".join(found.split())), found)
            return name, f"cue: {cue}"
    return table.default_priority, "default"


def decide(
    prompt: str,
    table: RoutingTable,
    classifier: Classifier,
    priority: str | None = None,
) -> Decision:
    """Classify, infer the priority, and pick the cell (or the uncertain route)."""
    _check_prompt(prompt)
    c = classifier.classify(prompt)
    prio, prio_reason = infer_priority(prompt, table, priority)
    settings = table.classifier
    threshold = settings.threshold

    if c.confidence is None:
        certain = c.classifier == "llm"
        why = "llm gave no confidence, taken as certain" if certain else "no confidence"
    else:
        certain = c.confidence >= threshold
        sign = "≥" if certain else "<"
        why = f"{'confidence' if certain else 'low confidence'} {c.confidence:.2f} {sign} " \
              f"{threshold:.2f}"
    if certain and (c.label, prio) not in table.routes:
        certain, why = False, f"no cell for {c.label} / {prio}"

    if certain:
        task, cell = c.label, table.cell(c.label, prio)
        reason = f"{c.label} ({c.reason}; {why}) → {task} / {prio} ({prio_reason})"
    else:
        route = settings.uncertain_route
        if route != "baseline" and (route, prio) in table.routes:
            task, cell = route, table.cell(route, prio)
            reason = f"{c.label}? ({c.reason}; {why}) → {route} / {prio} ({prio_reason})"
        else:
            task = c.label
            cell = Cell(primary=table.baseline.model, fallback=table.baseline.fallback)
            reason = f"{c.label}? ({c.reason}; {why}) → baseline"
    return Decision(
        prompt=prompt,
        classification=c,
        task=task,
        priority=prio,
        priority_reason=prio_reason,
        cell=cell,
        uncertain=not certain,
        reason=reason,
    )
