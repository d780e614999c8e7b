"""The routing decision: a prompt's classification, its priority and the table give the cell.

:func:`infer_priority` finds a priority's cues in a prompt (or takes the one given, or the
table's default); :func:`decide` classifies the prompt and picks its cell, or the uncertain
route (a task type, or the baseline) when the classification is below the table's threshold or
has no cell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tui.router.classifier.local import Classifier, check_prompt
from tui.router.types import Cell, Decision, RoutingTable

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
    check_prompt(prompt)
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
