"""The classifier the routing table asks for, assembled from its layers.

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

The local classifier is TRAINED with scikit-learn (:mod:`tui.router.classifier.training`, at
start-up, from the examples in the routing table: task names are data) but RUNS on numpy alone
(:mod:`tui.router.classifier.model`): the fitted model is exported to plain arrays and cached on
disk (:mod:`tui.router.classifier.cache`), keyed by a hash of everything it was trained from, so
a warm start imports numpy and not scikit-learn. Featurization lives in
:mod:`tui.router.classifier.features`; the decision taken from a classification and the table is
:mod:`tui.router.table.decide`'s.

Nothing here imports Textual or, until a model must be trained, scikit-learn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tui.router.classifier.cache import ProgressFn
from tui.router.classifier.llm import LLM_KINDS, CascadeClassifier, LLMClassifier
from tui.router.classifier.local import (
    CachingClassifier,
    Classifier,
    LocalClassifier,
    RuleClassifier,
)
from tui.router.types import RoutingTable


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
