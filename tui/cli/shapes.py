"""The ``--json`` shapes of ``routedeck classify`` and ``route`` (a decision, a run's sides, the
pair, the judge's verdict)."""

from __future__ import annotations

from typing import Any


def decision_json(decision) -> dict[str, Any]:
    c = decision.classification
    return {
        "task": decision.task,
        "label": c.label,
        "confidence": c.confidence,
        "top": [[label, prob] for label, prob in c.top],
        "priority": decision.priority,
        "priority_reason": decision.priority_reason,
        "primary": decision.cell.primary,
        "fallback": decision.cell.fallback,
        "uncertain": decision.uncertain,
        "reason": decision.reason,
        "classifier": c.classifier,
        "elapsed_ms": c.elapsed_ms,
        # What classifying cost (an LLM classifier's call; 0 without one) and how long it took.
        "classifier_cost_usd": c.cost_usd,
        "classifier_ms": c.elapsed_ms,
        "classifier_llm": _llm_json(c),
    }


def _llm_json(c) -> dict[str, Any] | None:
    call = c.llm
    if call is None:
        return None
    return {
        "model": call.model,
        "outcome": call.outcome,
        "ms": call.ms,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "usage_estimated": call.usage_estimated,
        "cost_usd": c.cost_usd,
        "cached": c.cached,
    }


def side_json(r) -> dict[str, Any]:
    return {
        "model": r.model,
        "simulated": r.simulated,
        "ttft_ms": r.ttft_ms,
        "total_ms": r.total_ms,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "usage_estimated": r.usage_estimated,
        "cost_usd": r.cost_usd,
        "fallback_used": r.fallback_used,
        "fallback_reason": r.fallback_reason,
        "hedged": r.hedged,
        "status": r.status,
        "error": r.error,
        "text": r.text,
        # What was tried on this side, in order, and the text of attempts that failed midway
        # (never part of "text").
        "attempts": [
            {
                "model": a.model,
                "role": a.role,
                "outcome": a.outcome,
                "simulated": a.simulated,
                "error": a.error,
            }
            for a in r.attempts
        ],
        "failed_attempts": sum(1 for a in r.attempts if a.outcome == "failed"),
        "discarded_text": r.discarded_text,
    }


def pair_json(pair) -> dict[str, Any]:
    return {
        "decision": decision_json(pair.decision),
        "routed": side_json(pair.routed),
        "baseline": side_json(pair.baseline),
        "savings_usd": pair.savings_usd,
        "savings_pct": pair.savings_pct,
        "wall_ms": pair.wall_ms,
    }


def judge_json(judgement) -> dict[str, Any]:
    """``judge`` of ``route --json``: the verdict and its cost (never part of the savings); the
    same shape as a judged bench journal row's (tui/router/cost/journal.py)."""
    from tui.router.cost.journal import judgement_json

    return judgement_json(judgement)
