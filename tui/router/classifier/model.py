"""The local classifier's model, exported from scikit-learn to plain arrays: numpy inference.

:class:`LinearModel` holds a fitted tf-idf + multinomial logistic regression as arrays
(vocabulary, idf, feature groups, coefficients, intercepts, a calibration temperature) and the
task types' vocabularies it was trained with; it turns a prompt into columns (through caches of
the analyzer's runs of words), scores it, names the words that pushed a label, and saves and
loads itself (``.npz``, atomically). Training it is :mod:`tui.router.classifier.training`'s;
nothing here imports scikit-learn.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import numpy as np

from tui.router.classifier import features as feat
from tui.router.classifier.words import NUMBER_MARK


def softmax(z: np.ndarray) -> np.ndarray:
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


def _prefixed(get: Callable[[str, int], int], prefix: str) -> Callable[[str], int]:
    """word -> the column of the token ``prefix + word`` (-1: not a feature)."""
    return lambda w: get(prefix + w, -1)


class _RunColumns:
    """The caches LinearModel.counts maps the analyzer's runs of words through."""

    def __init__(self, vocab: dict[str, int]) -> None:
        get = vocab.get
        self.by_kind = {
            kind: _ColumnCache(_prefixed(get, prefix)) for kind, prefix in feat.WORD_PREFIX.items()
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
        return softmax(z)

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
    if rest and not rest.strip(NUMBER_MARK + "_"):
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

