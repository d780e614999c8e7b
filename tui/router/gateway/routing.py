"""RouteDeck's routing inside a gateway: from an OpenAI-style request to the model group to call.

A gateway such as LiteLLM Proxy serves one virtual model (``routedeck/auto``) and one model group
per cell of the grid (``routedeck/<task>/<priority>``, whose fallback the gateway's own config
holds) plus ``routedeck/baseline``. For each request to the virtual model, :class:`Gateway`
classifies the last user message with the same classifier and table as the TUI, takes the priority
from a request header (``x-routedeck-priority``), the request's metadata (``routedeck_priority``)
or the prompt's cues, and rewrites ``data["model"]`` to the cell's group. Requests naming any
other model pass through untouched::

    gw = Gateway(routes_path, model_path, virtual_model="routedeck/auto")
    decision = gw.route(data)          # None: not for the virtual model, left alone
    if decision is not None:
        data["model"] = decision.group
        headers = decision.headers()   # x-routedeck-task, -confidence, -cell, -uncertain, ...

The table and the classifier are loaded once (per worker process), the classifier from the
exported model file with numpy alone. A table or classifier that cannot be loaded, or a request
that cannot be classified, never becomes an error: the request keeps the virtual model, whose
deployment in the exported config is the uncertain route, and the headers say so.

Nothing here imports LiteLLM (``tui.router.gateway.litellm_callback`` does) or Textual.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.router.types import Classification, Decision, RoutingTable

log = logging.getLogger("routedeck.gateway")

VIRTUAL_MODEL = "routedeck/auto"
GROUP_PREFIX = "routedeck/"
BASELINE_GROUP = "routedeck/baseline"
PRIORITY_HEADER = "x-routedeck-priority"
PRIORITY_METADATA = "routedeck_priority"
# Where the decision waits, inside the request's own metadata, for the response-headers hook.
DECISION_METADATA = "routedeck_decision"
HEADER_PREFIX = "x-routedeck-"
# Prompts longer than this are classified in a thread rather than on the gateway's event loop.
INLINE_MAX_CHARS = 2_000


def cell_group(task: str, priority: str) -> str:
    """The model group name of one cell of the grid."""
    return f"{GROUP_PREFIX}{task}/{priority}"


def group_of(decision: Decision, table: RoutingTable) -> str:
    """The model group a decision lands on: its cell's, or the baseline's."""
    if (decision.task, decision.priority) in table.routes and (
        not decision.uncertain or table.classifier.uncertain_route == decision.task
    ):
        return cell_group(decision.task, decision.priority)
    return BASELINE_GROUP


_HEADER_UNSAFE = re.compile(r"[^\x20-\x7e]")


def _header_value(text: str, limit: int = 200) -> str:
    """Printable ASCII only (no CR/LF: a value can never start another header)."""
    return _HEADER_UNSAFE.sub("?", text)[:limit]


@dataclass(frozen=True)
class GatewayDecision:
    """Where one request goes, and what the response headers say about it."""

    group: str
    task: str
    priority: str
    priority_reason: str
    confidence: float | None
    uncertain: bool
    primary: str
    fallback: str | None
    classifier: str
    # Set when the decision failed open (table or classifier unavailable, nothing to classify).
    failed_open: str | None = None

    def headers(self) -> dict[str, str]:
        conf = "none" if self.confidence is None else f"{self.confidence:.3f}"
        cell = self.group.removeprefix(GROUP_PREFIX)
        out = {
            "task": self.task,
            "priority": self.priority,
            "confidence": conf,
            "cell": cell,
            "model": self.primary,
            "fallback": self.fallback or "none",
            "uncertain": "true" if self.uncertain else "false",
            "classifier": self.classifier,
        }
        if self.failed_open:
            out["failed-open"] = self.failed_open
        return {HEADER_PREFIX + k: _header_value(v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# Reading a request
# --------------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts of which the text ones
    count (images and audio are left out)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in ("text", "input_text"):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return ""


def last_user_message(data: Mapping[str, Any]) -> str:
    """The text of the last user message of a chat request ('' when there is none)."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        prompt = data.get("prompt")  # a text-completion request
        return prompt if isinstance(prompt, str) else ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def requested_priority(data: Mapping[str, Any]) -> str | None:
    """The priority the client asked for: the ``x-routedeck-priority`` header, else
    ``metadata.routedeck_priority`` (None when neither is given)."""
    psr = data.get("proxy_server_request")
    headers = psr.get("headers") if isinstance(psr, Mapping) else None
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == PRIORITY_HEADER and isinstance(value, str):
                if value.strip():
                    return value.strip().lower()
    for key in ("metadata", "litellm_metadata"):
        meta = data.get(key)
        if isinstance(meta, Mapping):
            value = meta.get(PRIORITY_METADATA)
            if isinstance(value, str) and value.strip():
                return value.strip().lower()
    return None


# --------------------------------------------------------------------------------------------
# The gateway
# --------------------------------------------------------------------------------------------


class _Unavailable:
    """Stands in for a classifier that could not be loaded: no label, no confidence, so every
    prompt takes the uncertain route."""

    name = "fallback"

    def __init__(self, table: RoutingTable, why: str) -> None:
        self.label = "general" if "general" in table.tasks else table.task_names[-1]
        self.why = why

    def classify(self, prompt: str) -> Classification:
        return Classification(self.label, None, (), "fallback",
                              f"classifier unavailable ({self.why})", 0.0)


class Gateway:
    """Routes requests for ``virtual_model``; see the module docstring."""

    def __init__(
        self,
        routes_path: Path,
        model_path: Path | None,
        *,
        virtual_model: str = VIRTUAL_MODEL,
        fingerprint: str | None = None,
    ) -> None:
        self.routes_path = Path(routes_path)
        self.model_path = Path(model_path) if model_path is not None else None
        self.virtual_model = virtual_model
        self.fingerprint = fingerprint
        self.table: RoutingTable | None = None
        self.classifier: Any = None
        # Why the table (broken) or the classifier (degraded) is not what the export shipped.
        self.broken: str | None = None
        self.degraded: str | None = None
        self._lock = threading.Lock()
        self._loaded = False

    # -- loading, once ----------------------------------------------------------------------

    def load(self) -> None:
        """Load the table and the classifier (once; later calls return at once). Never raises:
        what failed is kept in ``broken`` / ``degraded`` and logged once."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            try:
                self.table = self._load_table()
            except Exception as exc:  # noqa: BLE001 - any failure fails open the same way
                self.broken = f"routing table unavailable: {type(exc).__name__}: {exc}"
                log.error("routedeck: %s; every request takes the uncertain route", self.broken)
                return
            try:
                self.classifier = self._load_classifier(self.table)
            except Exception as exc:  # noqa: BLE001
                self.degraded = f"{type(exc).__name__}: {exc}"
                self.classifier = _Unavailable(self.table, self.degraded)
                log.error("routedeck: classifier unavailable (%s); every request takes the "
                          "uncertain route", self.degraded)

    def _load_table(self) -> RoutingTable:
        from tui.router.table.load import load_table

        table = load_table(self.routes_path)
        if self.fingerprint and table.fingerprint != self.fingerprint:
            raise ValueError(
                f"{self.routes_path.name} changed since it was exported (sha256 "
                f"{(table.fingerprint or '')[:12]}, exported {self.fingerprint[:12]}): export again"
            )
        return table

    def _load_classifier(self, table: RoutingTable) -> Any:
        """Rules, then the local model from the exported file (numpy only), behind an LRU. With
        no exported file, the trained-model cache (training if it must, which needs
        scikit-learn)."""
        from tui.router.classifier.local import (
            CachingClassifier,
            LocalClassifier,
            RuleClassifier,
        )
        from tui.router.classifier.model import LinearModel
        from tui.router.classifier.training import model_key

        if self.model_path is not None:
            model = LinearModel.load(self.model_path, model_key(table))
            local = LocalClassifier(model)
        else:
            local = LocalClassifier.from_table(table)
        return CachingClassifier(RuleClassifier.from_table(table, local))

    # -- routing ----------------------------------------------------------------------------

    def wants(self, data: Mapping[str, Any]) -> bool:
        """True when the request names the virtual model (anything else passes through)."""
        return data.get("model") == self.virtual_model

    def route(self, data: Mapping[str, Any]) -> GatewayDecision | None:
        """The decision for a request to the virtual model, or None for any other request."""
        if not self.wants(data):
            return None
        self.load()
        if self.table is None:
            return self._failed_open(self.broken or "routing table unavailable")
        try:
            return self._decide(data, self.table)
        except Exception as exc:  # noqa: BLE001 - a request is never failed by the router
            return self._failed_open(f"{type(exc).__name__}: {exc}")

    def _decide(self, data: Mapping[str, Any], table: RoutingTable) -> GatewayDecision:
        from tui.router.table.decide import decide

        prompt = last_user_message(data)
        if not prompt.strip():
            return self._failed_open("no user message to classify")
        priority = requested_priority(data)
        if priority is not None and priority not in table.priorities:
            priority = None  # an unknown priority is ignored: the prompt's cues decide
        d = decide(prompt, table, self.classifier, priority=priority)
        c = d.classification
        return GatewayDecision(
            group=group_of(d, table),
            task=d.task,
            priority=d.priority,
            priority_reason=d.priority_reason,
            confidence=c.confidence,
            uncertain=d.uncertain,
            primary=d.cell.primary,
            fallback=d.cell.fallback,
            classifier=c.classifier,
            failed_open=self.degraded and "classifier unavailable",
        )

    def _failed_open(self, why: str) -> GatewayDecision:
        """Keep the virtual model: its deployment is the uncertain route."""
        table = self.table
        if table is not None:
            from tui.router.types import Cell

            route = table.classifier.uncertain_route
            prio = table.default_priority
            if route != "baseline" and (route, prio) in table.routes:
                cell, task = table.cell(route, prio), route
            else:
                cell = Cell(table.baseline.model, table.baseline.fallback)
                task = "baseline"
            primary, fallback = cell.primary, cell.fallback
        else:
            task, prio, primary, fallback = "unknown", "unknown", "unknown", None
        log.warning("routedeck: request failed open to the uncertain route: %s", why)
        return GatewayDecision(
            group=self.virtual_model, task=task, priority=prio, priority_reason="default",
            confidence=None, uncertain=True, primary=primary, fallback=fallback,
            classifier="fallback", failed_open=why,
        )

    def rewrite(self, data: dict[str, Any]) -> GatewayDecision | None:
        """Route ``data`` in place: its model becomes the decision's group and the decision's
        headers wait in its metadata. Returns the decision (None: passed through)."""
        decision = self.route(data)
        if decision is None:
            return None
        data["model"] = decision.group
        meta = data.get("metadata")
        if not isinstance(meta, dict):
            meta = data["metadata"] = {}
        meta[DECISION_METADATA] = decision.headers()
        return decision


def decision_headers(data: Mapping[str, Any]) -> dict[str, str] | None:
    """The headers :meth:`Gateway.rewrite` left in a request's metadata, if any."""
    for key in ("metadata", "litellm_metadata"):
        meta = data.get(key)
        if isinstance(meta, Mapping):
            found = meta.get(DECISION_METADATA)
            if isinstance(found, Mapping):
                return {str(k): str(v) for k, v in found.items()}
    return None
