"""What the LLM classifier cost (or would cost) over a set of classified prompts.

``routedeck bench`` classifies a workload once; with ``[classifier] kind = "llm"`` or
``"cascade"`` some of those classifications called ``llm_model``. This module adds them up::

    summary = summarize([item.classification for item in projection.classified], table)
    summary.asked, summary.cost_usd            # calls made and what they cost (measured)
    summary.would_ask, summary.projected_usd   # with no key: calls not made, priced anyway

A call that was made counts its provider's usage (or, without a usage report, the estimate the
classifier recorded). A call that could not be made (no key: ``LLMCall.outcome ==
"unavailable"``) is PROJECTED: the request's input tokens estimated from its text (characters /
4, the system prompt with the task descriptions included) and :data:`ANSWER_TOKENS` output tokens
(the one-word label), priced with the price library. A reasoning model also spends hidden
reasoning tokens, billed as output; no estimate of those is made here: the summary says so.

Each distinct prompt counts once (a repeated prompt is answered from the classifier's cache).
Nothing here imports Textual or calls a model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tui.router.cost.pricing import cost_usd
from tui.router.types import Classification, RoutingTable

# Output tokens of a classification answer: one task name ("extraction" is 1-2 tokens).
ANSWER_TOKENS = 2


@dataclass(frozen=True)
class ClassificationCost:
    kind: str  # the table's classifier kind
    model: str | None  # llm_model (None for kind = "local")
    prompts: int  # distinct prompts classified
    asked: int  # calls made to the LLM (answered, failed or timed out)
    answered: int  # calls that named a task
    would_ask: int  # prompts that would have gone to the LLM had it been callable (no key)
    cost_usd: float | None  # what the calls made cost (None: the model has no known price)
    projected_usd: float | None  # what the calls not made would cost (estimated tokens)
    input_tokens: int  # of the calls made and projected
    output_tokens: int

    @property
    def to_llm(self) -> int:
        """Prompts that went (or would go) to the LLM."""
        return self.asked + self.would_ask

    @property
    def total_usd(self) -> float | None:
        """Measured plus projected; None when either is unknown."""
        if self.cost_usd is None or self.projected_usd is None:
            return None
        return self.cost_usd + self.projected_usd

    @property
    def per_1000_usd(self) -> float | None:
        total = self.total_usd
        if total is None or not self.prompts:
            return None
        return 1000.0 * total / self.prompts

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "prompts": self.prompts,
            "asked": self.asked,
            "answered": self.answered,
            "would_ask": self.would_ask,
            "to_llm": self.to_llm,
            "cost_usd": self.cost_usd,
            "projected_usd": self.projected_usd,
            "total_usd": self.total_usd,
            "per_1000_usd": self.per_1000_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "answer_tokens_assumed": ANSWER_TOKENS,
        }


def summarize(
    classifications: Iterable[tuple[str, Classification]], table: RoutingTable
) -> ClassificationCost:
    """Add up ``(prompt, classification)`` pairs (each distinct prompt once)."""
    settings = table.classifier
    model = settings.llm_model if settings.kind != "local" else None
    seen: set[str] = set()
    asked = answered = would = 0
    spent: float | None = 0.0
    projected: float | None = 0.0
    tokens_in = tokens_out = 0
    for prompt, c in classifications:
        if prompt in seen:
            continue
        seen.add(prompt)
        call = c.llm
        if call is None:
            continue
        if call.outcome == "unavailable":
            would += 1
            tokens_in += call.request_tokens
            tokens_out += ANSWER_TOKENS
            price = cost_usd(call.model, call.request_tokens, ANSWER_TOKENS, table=table)
            projected = None if projected is None or price is None else projected + price
            continue
        asked += 1
        answered += call.outcome == "ok"
        tokens_in += call.input_tokens
        tokens_out += call.output_tokens
        spent = None if spent is None or c.cost_usd is None else spent + c.cost_usd
    return ClassificationCost(
        kind=settings.kind,
        model=model,
        prompts=len(seen),
        asked=asked,
        answered=answered,
        would_ask=would,
        cost_usd=spent,
        projected_usd=projected,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
    )
