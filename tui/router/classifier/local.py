"""Classifiers behind one interface, ``Classifier.classify(prompt) -> Classification``, that
call no model: the local classifier, the routing table's rules in front of a classifier, and
an LRU cache in front of either.

:class:`LocalClassifier` runs the local model (:class:`~tui.router.classifier.model.LinearModel`,
numpy only); :class:`RuleClassifier` tries routes.toml's per-task regular expressions first;
:class:`CachingClassifier` answers a repeated prompt from an LRU. The LLM classifier and the
cascade are in :mod:`tui.router.classifier.llm`; :mod:`tui.router.classifier.build` stacks them.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tui.router.classifier import features as feat
from tui.router.classifier.cache import ProgressFn, load_or_train
from tui.router.classifier.model import LOW_EVIDENCE, MIN_SHARE, LinearModel, softmax
from tui.router.classifier.rules import RuleError, compile_rule
from tui.router.classifier.training import DEFAULT_PARAMS, TrainParams
from tui.router.sanitize import clean_surrogates
from tui.router.types import Classification, RoutingTable

TOP_K = 3


class Classifier(Protocol):
    """Anything that labels a prompt with one of the routing table's task types."""

    name: str

    def classify(self, prompt: str) -> Classification: ...


def check_prompt(prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("empty prompt")


def printable(text: str, limit: int = 40) -> str:
    """A short, control-character-free excerpt for a reason line."""
    text = text.translate(feat._CONTROL).replace("\n", " ").replace("\t", " ")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        check_prompt(prompt)
        started = time.perf_counter()
        m = self.model
        cols, tf, known = m.columns(prompt)
        cols, vals = m._values(cols, tf)
        rows = m.coef[cols]
        z = known * ((vals @ rows + m.intercept) if len(cols) else m.intercept)
        probs = softmax(z / m.temperature)
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
        check_prompt(prompt)
        started = time.perf_counter()
        hit = self.match(prompt)
        if hit is None:
            return self.inner.classify(prompt)
        task, pattern, text = hit
        what = _RULE_NAMES.get(pattern) or f"matched “{printable(text) or pattern}”"
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
        check_prompt(prompt)
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

