"""One object that holds the engine's state for a person's session: the table, the classifier,
the run log and the running totals. The TUI and the CLI both drive the engine through it, so
neither re-implements a step of prompt → decision → runs → cost → log.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui.router.log.runlog import JudgeTotals, RunLog, Totals
from tui.router.types import Classification, Decision, PairResult, RoutingTable

if TYPE_CHECKING:
    from tui.router.classifier.corrections import CorrectionTrainer

# Prompts up to this long are decided in about a millisecond by the local classifier.
QUICK_DECIDE_MAX_CHARS = 2_000


@dataclass
class Session:
    table: RoutingTable
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    force_simulated: bool = False
    # A RunLog, or None to keep nothing (tests, --no-log).
    runlog: RunLog | None = None
    # This session's runs only (the run log holds every run ever made).
    totals: Totals = field(default_factory=lambda: Totals(0, 0, 0.0, 0.0))
    on_progress: Callable[[str], None] | None = None
    # What the LLM judge did in this session: apart from ``totals``, never in the savings.
    judge_totals: JudgeTotals = field(default_factory=lambda: JudgeTotals(0, 0.0))

    def __post_init__(self) -> None:
        # Why the table's llm_model is not called ("no OPENAI_API_KEY for openai/gpt-5-nano"),
        # None when it is (or there is none); known once the classifier is loaded.
        self.llm_unavailable: str | None = None
        self._classifier = None
        self._classifier_table: RoutingTable | None = None
        self._lock = threading.Lock()
        self._corrections: CorrectionTrainer | None = None

    # -- the table ------------------------------------------------------------------------

    @property
    def table_label(self) -> str:
        return str(self.table.path) if self.table.path else "routes.toml (packaged default)"

    def set_table(self, table: RoutingTable) -> None:
        """Use an edited table from the next decision on (saved or not)."""
        self.table = table

    # -- classification -------------------------------------------------------------------

    @property
    def classifier_ready(self) -> bool:
        return self._classifier is not None

    @property
    def llm_model(self) -> str | None:
        """The model the table's classifier calls (kind "llm" or "cascade"), else None."""
        from tui.router.classifier.llm import LLM_KINDS

        settings = self.table.classifier
        return settings.llm_model if settings.kind in LLM_KINDS else None

    def decides_quickly(self, prompt: str, *, ask_llm: bool = True) -> bool:
        """True when ``decide(prompt, ask_llm=...)`` costs about a millisecond and calls
        nothing: the local classifier is loaded for the current table and the prompt is at most
        QUICK_DECIDE_MAX_CHARS long (bench_classify: p99 about 2 ms there), and no LLM would be
        asked. A UI can then decide on its own loop rather than hand the prompt to a thread."""
        return (
            len(prompt) <= QUICK_DECIDE_MAX_CHARS
            and (self.table.classifier.kind == "local" or not ask_llm)
            and self._classifier is not None
            and _same_training(self._classifier_table, self.table)
            and _same_llm(self._classifier_table, self.table)
        )

    def load_classifier(self):
        """Load (or train) the classifier for the current table. Blocking: call off the UI loop.

        With ``[classifier] kind = "llm"`` or ``"cascade"``, ``llm_model`` is resolved through
        the provider registry (this session's environment and simulation flag)."""
        from tui.router.classifier.build import build_classifier

        with self._lock:
            if self._classifier is None or not _same_training(self._classifier_table, self.table):
                client, why = self._llm_client(self.table)
                self._classifier = build_classifier(
                    self.table, on_progress=self.on_progress, llm_client=client,
                    llm_unavailable=why,
                )
                self._classifier_table = self.table
            elif not _same_llm(self._classifier_table, self.table):
                self._classifier = self._assemble(self.table, self._classifier)
                self._classifier_table = self.table
            return self._classifier

    def load_local_classifier(self):
        """:meth:`load_classifier` without its LLM (rules, then local): never calls a model
        (labels as a person types, corrections, the savings screen)."""
        classifier = self.load_classifier()
        return getattr(classifier, "local_only", classifier)

    def _llm_client(self, table: RoutingTable):
        """(client, None) for the table's llm_model, or (None, why it is not called)."""
        from tui.router.classifier.build import resolve_llm

        client, why = resolve_llm(table, env=self.env, force_simulated=self.force_simulated)
        self.llm_unavailable = why
        return client, why

    def _assemble(self, table: RoutingTable, classifier):
        """``classifier``'s local model with ``table``'s rules and LLM layer (no training)."""
        from tui.router.classifier.build import assemble, local_classifier_of

        local = local_classifier_of(classifier)
        if local is None:  # not a stack we know: use it as it is
            return classifier
        client, why = self._llm_client(table)
        return assemble(table, local, llm_client=client, llm_unavailable=why)

    def use_classifier(self, table: RoutingTable, classifier) -> None:
        """Use ``table`` with a classifier already built for it (e.g. retrained after a
        correction), so the next decision needs no training. The table's LLM layer, if any,
        is put back around it."""
        if table.classifier.kind != "local":
            classifier = self._assemble(table, classifier)
        with self._lock:
            self.table = table
            self._classifier = classifier
            self._classifier_table = table

    def decide(self, prompt: str, priority: str | None = None, *, ask_llm: bool = True) -> Decision:
        """Classify and route. ``ask_llm=False`` decides with the local stack only (no paid
        call: labels as a person types). If the classifier cannot be built, fail open: the
        prompt goes to the uncertain route (by default the baseline) and the reason says why."""
        from tui.router.table.decide import decide

        try:
            classifier = self.load_classifier() if ask_llm else self.load_local_classifier()
        except Exception as exc:  # noqa: BLE001 - any failure to build it fails open the same way
            classifier = _FailOpen(self.table, f"{type(exc).__name__}: {exc}")
        return decide(prompt, self.table, classifier, priority=priority)

    @property
    def corrections(self) -> CorrectionTrainer:
        """What this session keeps between label corrections (the featurized training set and
        the last retrained model), made on first use (it imports numpy and the classifier)."""
        if self._corrections is None:
            from tui.router.classifier.corrections import CorrectionTrainer

            self._corrections = CorrectionTrainer()
        return self._corrections

    # -- runs -----------------------------------------------------------------------------

    @staticmethod
    def prepare_runs() -> None:
        """Import and build now what the first run would otherwise pay for on its way: the
        execution engine and provider clients (httpx and friends), the TLS context (its CA
        bundle), the price data. Blocking, about half a second: call it off the UI loop
        (the TUI does, once the classifier is ready; on the loop it stalled the first run's
        screen ~0.3 s)."""
        import importlib

        from tui.router.cost.pricing import preload
        from tui.router.providers.http import ssl_context

        # httpx imports its transport (httpcore, h11) and anyio's asyncio backend only when the
        # first connection opens.
        for module in ("tui.router.run.execute", "tui.router.providers.registry", "httpcore", "h11",
                       "anyio", "anyio._backends._asyncio"):
            try:
                importlib.import_module(module)
            except ImportError:  # a dependency's internals moved: only a missed head start
                pass
        ssl_context()
        preload()

    def start(self, decision: Decision, *, model: str | None = None, baseline: str | None = None):
        """Start the routed run and the baseline run in parallel; returns the engine's PairRun."""
        from tui.router.run.execute import RunOptions, run_pair

        return run_pair(
            decision,
            self.table,
            RunOptions(env=self.env, force_simulated=self.force_simulated),
            model=model,
            baseline=baseline,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values never to show or store: the table's ``api_key_env`` variables and the
        environment's key-like ones (for :func:`~tui.router.sanitize.redact`)."""
        from tui.router.sanitize import configured_secrets

        return configured_secrets(self.env, self.table)

    def record(self, pair: PairResult) -> int | None:
        self.totals = self.totals.plus(pair)
        if self.runlog is None:
            return None
        return self.runlog.record(pair, secrets=self.secrets)

    # -- the judge ------------------------------------------------------------------------

    def judge_model(self, model: str | None = None) -> str:
        """The model that would judge (``model``, else [judge] model, else the baseline)."""
        from tui.router.run.judge import judge_plan

        return judge_plan(self.table, model=model, env=self.env,
                          force_simulated=self.force_simulated)[0]

    def why_not_judged(self, pair: PairResult, model: str | None = None) -> str | None:
        """None when the judge can judge ``pair``, else why not (no key, simulated answers)."""
        from tui.router.run.judge import why_not_judged

        return why_not_judged(pair, self.table, model=model, env=self.env,
                              force_simulated=self.force_simulated)

    async def judge(self, pair: PairResult, model: str | None = None):
        """The LLM judge's :class:`~tui.router.run.judge.Judgement` of a finished run."""
        from tui.router.run.judge import judge_pair

        return await judge_pair(pair, self.table, model=model, env=self.env,
                                force_simulated=self.force_simulated)

    def record_judgement(self, run_id: int | None, judgement) -> None:
        """Count a judgement that ran in ``judge_totals`` and log it beside its run."""
        if not judgement.ran:
            return
        self.judge_totals = JudgeTotals(
            self.judge_totals.judged + 1,
            self.judge_totals.cost_usd + (judgement.cost_usd or 0.0),
        )
        if self.runlog is not None and run_id is not None:
            self.runlog.set_judgement(run_id, judgement, secrets=self.secrets)

    # -- models ---------------------------------------------------------------------------

    def known_models(self) -> list[str]:
        """Models a person can pick: the table's own, then every model the price library knows
        for the table's providers. (Local servers' models are added by the caller.)"""
        from genai_prices.data_snapshot import get_snapshot

        seen: dict[str, None] = {m: None for m in self.table.models()}
        by_price_id: dict[str, list[str]] = {}
        for name, provider in self.table.providers.items():
            by_price_id.setdefault(provider.price_provider or name, []).append(name)
        for lib_provider in get_snapshot().providers:
            for name in by_price_id.get(lib_provider.id, ()):
                for model in lib_provider.models:
                    seen[f"{name}/{model.id}"] = None
        return list(seen)

    def is_simulated(self, model_id: str) -> tuple[bool, str | None]:
        """Whether a model would run on the simulator here, and why (the registry decides)."""
        from tui.router.providers.registry import resolve_client

        resolved = resolve_client(
            model_id, self.table, env=self.env, force_simulated=self.force_simulated
        )
        return resolved.simulated, resolved.why_simulated


class _FailOpen:
    """Stands in for a classifier that could not be built: no label, no confidence."""

    name = "fallback"

    def __init__(self, table: RoutingTable, why: str) -> None:
        self.label = "general" if "general" in table.tasks else table.task_names[-1]
        self.why = why

    def classify(self, prompt: str) -> Classification:
        return Classification(
            label=self.label,
            confidence=None,
            top=(),
            classifier="fallback",
            reason=f"classifier unavailable ({self.why})",
            elapsed_ms=0.0,
        )


def _same_training(a: RoutingTable | None, b: RoutingTable) -> bool:
    """The classifier depends only on the task types (examples, rules), not on cells."""
    return a is not None and a.tasks == b.tasks


def _same_llm(a: RoutingTable | None, b: RoutingTable) -> bool:
    """The LLM layer depends on the [classifier] settings (the cascade's threshold too), the
    classifier deadline and the classifying model's provider."""
    if a is None:
        return False
    if a.classifier.kind == b.classifier.kind == "local":
        return True
    if a.classifier != b.classifier or a.timeouts.classifier != b.timeouts.classifier:
        return False
    model = b.classifier.llm_model
    provider = model.partition("/")[0] if model else ""
    return a.providers.get(provider) == b.providers.get(provider)
