"""Live figures of one side of a run, folded from its RunEvents as they arrive.

This is the one place where time to first token, elapsed time, token counts (estimated while
streaming, then the provider's report), tokens/s, cost, badges and the final :class:`RunResult`
are computed. The executor builds its results with it, and the CLI and the UI show its figures::

    m = LiveMetrics("routed", prompt, table=table)
    for event in events_of_that_side:
        m.apply(event)
        show(m.snapshot())        # or read m.ttft_ms, m.elapsed_ms, m.cost_usd, ... directly
    result = m.result()           # once m.done

A PairRun keeps one per side, already fed (``run.metrics["routed"]``): use those.

Timing comes from the ``t`` of each event (``time.perf_counter()`` when it was produced), so it is
the same whichever provider streamed it. Usage rules, per attempt:

* a ``UsageReport`` is taken as it is (replacing any earlier one: Anthropic's is cumulative);
* while an attempt streams, input is estimated from the prompt and output from the text so far,
  marked estimated. The estimate is a floor (tui/router/run/token_floor.py): it only rises as text
  arrives and stays under the provider's count, so tokens and cost shown never drop when the
  report replaces it; an estimated report (a provider that gave none) is raised to the floor;
* an attempt that ended without a report is charged that estimate when the provider had accepted
  the request (``Started`` seen, or text streamed) or when it lost a hedge race; a call refused
  before the stream (HTTP error, no connection) is charged nothing.

Cost is the sum over every attempt; it is None when an attempt that used tokens ran on a model
whose price is unknown (an attempt that used none costs 0 whatever its model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from tui.router.cost.pricing import cost_usd
from tui.router.run.token_floor import TokenFloor, token_floor
from tui.router.types import (
    AttemptEnded,
    AttemptStarted,
    AttemptSummary,
    Finished,
    RoutingTable,
    RunEvent,
    RunResult,
    Side,
    Started,
    StreamError,
    TextDelta,
    UsageReport,
)


def estimate_tokens(chars: int) -> int:
    """The chars/4 estimate of a token count (always marked as an estimate where shown): a best
    guess for projections and answers without a usage report. Live figures use the floor of
    tui/router/run/token_floor.py instead, which chars/4 overshoots on prose by up to 50%."""
    return (chars + 3) // 4


def short_error(err: StreamError) -> str:
    """A few words for a failure, for badges and fallback reasons: "HTTP 503", "timeout", ..."""
    if err.kind == "http" and err.status is not None:
        return f"HTTP {err.status}"
    return {
        "http": "HTTP error",
        "connect": "connection failed",
        "timeout": "timeout",
        "stream": "stream broke",
        "protocol": "protocol error",
        "config": "configuration error",
        "cancelled": "cancelled",
    }.get(err.kind, err.kind)


@dataclass
class _Attempt:
    index: int
    model: str
    role: str
    reason: str
    simulated: bool
    started_t: float
    accepted: bool = False  # Started seen: the provider took the request
    chunks: list[str] = field(default_factory=list)
    chars: int = 0
    floor: TokenFloor = field(default_factory=TokenFloor)  # of the text so far
    first_delta_t: float | None = None
    last_delta_t: float | None = None
    usage: UsageReport | None = None
    finish_reason: str | None = None
    outcome: str | None = None  # None while running
    error: StreamError | None = None
    ended_t: float | None = None

    @property
    def text(self) -> str:
        if len(self.chunks) > 1:
            self.chunks[:] = ["".join(self.chunks)]
        return self.chunks[0] if self.chunks else ""


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    estimated: bool = False

    @property
    def used(self) -> bool:
        return bool(self.input_tokens or self.output_tokens)


_NO_USAGE = Usage(0, 0)


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything a pane shows about one side, at one moment."""

    side: Side
    state: str  # "waiting", "streaming", "done", "failed", "cancelled"
    model: str
    simulated: bool
    ttft_ms: float | None
    elapsed_ms: float | None
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    tokens_per_s: float | None
    cost_usd: float | None
    cost_estimated: bool
    fallback_used: bool
    fallback_reason: str | None
    hedged: bool
    retries: int
    error: str | None
    badges: tuple[str, ...]


class LiveMetrics:
    """Folds the RunEvents of ONE side; every figure is available at any moment."""

    def __init__(
        self,
        side: Side,
        prompt: str = "",
        *,
        table: RoutingTable | None = None,
        when: datetime | None = None,
    ) -> None:
        self.side: Side = side
        self.prompt_tokens_estimate = token_floor(prompt)
        self.table = table
        self.when = when
        self.attempts: list[_Attempt] = []
        self.t0: float | None = None
        self.end_t: float | None = None
        self.done = False
        self.cancelled = False
        self._error: str | None = None
        self._answer: _Attempt | None = None

    # -- folding ------------------------------------------------------------------------------

    def apply(self, ev: RunEvent) -> None:
        """Take one event of this side into account (events of the other side are ignored)."""
        if ev.side != self.side:
            return
        e = ev.event
        if isinstance(e, AttemptStarted):
            if self.t0 is None:
                self.t0 = e.t
                self.when = self.when or datetime.now(UTC)
            self.attempts.append(
                _Attempt(ev.attempt, e.model, e.role, e.reason, e.simulated, started_t=e.t)
            )
            return
        att = self._attempt(ev.attempt)
        if att is None:
            return
        if isinstance(e, TextDelta):
            if not e.text:
                return
            if att.first_delta_t is None:
                att.first_delta_t = e.t
            att.last_delta_t = e.t
            att.chunks.append(e.text)
            att.chars += len(e.text)
            att.floor.feed(e.text)
            self._answer = att
        elif isinstance(e, Started):
            att.accepted = True
            att.simulated = e.simulated
        elif isinstance(e, UsageReport):
            att.usage = e
        elif isinstance(e, Finished):
            att.finish_reason = e.reason
        elif isinstance(e, StreamError):
            att.error = e
        elif isinstance(e, AttemptEnded):
            if att.outcome is None:
                att.outcome = e.outcome
                att.ended_t = e.t
                att.error = e.error or att.error
                if e.outcome == "ok" and self._answer is None:
                    self._answer = att  # an empty answer is still the answer
                elif e.outcome == "failed" and self._answer is att:
                    self._answer = None  # its text is discarded
            if e.final:
                self.done = True
                self.end_t = e.t
                if e.outcome == "cancelled":
                    self.cancelled = True  # a status, not an error
                elif e.outcome == "failed":
                    err = e.error or att.error
                    self._error = err.message if err else "failed"

    def close(self, outcome: str = "cancelled", error: str | None = None) -> None:
        """End the side without a final event (it was stopped before it could send one)."""
        if self.done:
            return
        self.done = True
        self.end_t = time.perf_counter()
        if outcome == "cancelled":
            self.cancelled = True  # a status, not an error
        else:
            self._error = error or outcome

    def _attempt(self, index: int) -> _Attempt | None:
        for att in reversed(self.attempts):
            if att.index == index:
                return att
        return None

    # -- per attempt ----------------------------------------------------------------------------

    def _usage(self, att: _Attempt) -> Usage:
        u = att.usage
        if u is not None and not u.estimated:
            return Usage(u.input_tokens, u.output_tokens, u.cached_tokens)
        floor_in, floor_out = self.prompt_tokens_estimate, att.floor.count
        if u is not None:  # the provider's own guess: never below what was shown live
            return Usage(max(u.input_tokens, floor_in), max(u.output_tokens, floor_out), 0, True)
        if att.accepted or att.chars or att.outcome == "lost-hedge":
            return Usage(floor_in, floor_out, 0, True)
        return _NO_USAGE

    def _cost(self, att: _Attempt, usage: Usage) -> float | None:
        if not usage.used:
            return 0.0
        return cost_usd(
            att.model,
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_tokens,
            table=self.table,
            when=self.when,
        )

    # -- figures --------------------------------------------------------------------------------

    @property
    def _shown(self) -> _Attempt | None:
        """The attempt whose figures are shown: the answer's, else the latest one."""
        return self._answer or (self.attempts[-1] if self.attempts else None)

    @property
    def model(self) -> str:
        att = self._shown
        return att.model if att else ""

    @property
    def simulated(self) -> bool:
        att = self._shown
        return att.simulated if att else False

    @property
    def text(self) -> str:
        return self._answer.text if self._answer else ""

    @property
    def discarded_text(self) -> str:
        return "".join(
            a.text for a in self.attempts if a.outcome == "failed" and a is not self._answer
        )

    @property
    def ttft_ms(self) -> float | None:
        """From the side's start to the first token of the answer (failed attempts included)."""
        a = self._answer
        if a is None or a.first_delta_t is None or self.t0 is None:
            return None
        return (a.first_delta_t - self.t0) * 1000.0

    @property
    def elapsed_ms(self) -> float | None:
        """From the side's start until now, or until its end once done."""
        return self._elapsed(time.perf_counter())

    def _elapsed(self, now: float) -> float | None:
        if self.t0 is None:
            return None
        end = self.end_t if self.done and self.end_t is not None else now
        return (end - self.t0) * 1000.0

    @property
    def total_ms(self) -> float | None:
        return self.elapsed_ms if self.done else None

    @property
    def usage(self) -> Usage:
        """The answer's token counts (estimated until its usage report arrives)."""
        a = self._answer
        return self._usage(a) if a else _NO_USAGE

    @property
    def input_tokens(self) -> int:
        return self.usage.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.usage.output_tokens

    @property
    def tokens_estimated(self) -> bool:
        """The answer's token counts are an estimate (no usage report yet, or none given)."""
        return self.usage.estimated

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second of streaming (from the answer's first token on)."""
        return self._rate(time.perf_counter())

    def _rate(self, now: float) -> float | None:
        a = self._answer
        if a is None or a.first_delta_t is None:
            return None
        if a.outcome is None and not self.done:
            end = now
        else:
            end = a.last_delta_t or a.first_delta_t
        span = end - a.first_delta_t
        if span <= 0:
            return None
        return self.usage.output_tokens / span

    @property
    def cost_usd(self) -> float | None:
        """What every attempt cost so far together; None when a used model has no price."""
        total = 0.0
        for att in self.attempts:
            c = self._cost(att, self._usage(att))
            if c is None:
                return None
            total += c
        return total

    @property
    def cost_estimated(self) -> bool:
        return any(u.used and u.estimated for u in map(self._usage, self.attempts))

    @property
    def hedged(self) -> bool:
        return any(a.role == "hedge" for a in self.attempts)

    @property
    def retries(self) -> int:
        return sum(a.role == "retry" for a in self.attempts)

    @property
    def _fallback_attempt(self) -> _Attempt | None:
        if self._answer is not None and self._answer.role == "hedge":
            return self._answer
        return next((a for a in self.attempts if a.role == "fallback"), None)

    @property
    def fallback_used(self) -> bool:
        """The side moved to its fallback model (after a failure, or because the hedge won)."""
        return self._fallback_attempt is not None

    @property
    def fallback_reason(self) -> str | None:
        a = self._fallback_attempt
        return a.reason if a else None

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def state(self) -> str:
        if self.done:
            return "cancelled" if self.cancelled else ("failed" if self._error else "done")
        return "streaming" if self._answer is not None else "waiting"

    @property
    def badges(self) -> tuple[str, ...]:
        """Short labels for the pane header: simulated, retry xN, hedged / hedge won, ..."""
        out: list[str] = []
        if self.simulated:
            out.append("simulated")
        if self.retries:
            out.append(f"retry x{self.retries}")
        if self.hedged:
            won = self._answer is not None and self._answer.role == "hedge"
            out.append("hedge won" if won else "hedged")
        if any(a.role == "fallback" for a in self.attempts):
            out.append("fallback")
        if self.cancelled:
            out.append("cancelled")
        elif self._error:
            out.append("error")
        return tuple(out)

    def snapshot(self, now: float | None = None) -> MetricsSnapshot:
        now = time.perf_counter() if now is None else now
        usage = self.usage
        return MetricsSnapshot(
            side=self.side,
            state=self.state,
            model=self.model,
            simulated=self.simulated,
            ttft_ms=self.ttft_ms,
            elapsed_ms=self._elapsed(now),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            tokens_estimated=usage.estimated,
            tokens_per_s=self._rate(now),
            cost_usd=self.cost_usd,
            cost_estimated=self.cost_estimated,
            fallback_used=self.fallback_used,
            fallback_reason=self.fallback_reason,
            hedged=self.hedged,
            retries=self.retries,
            error=self._error,
            badges=self.badges,
        )

    def attempt_summaries(self) -> tuple[AttemptSummary, ...]:
        out = []
        for a in self.attempts:
            u = self._usage(a)
            out.append(
                AttemptSummary(
                    model=a.model,
                    role=a.role,
                    simulated=a.simulated,
                    outcome=a.outcome or "running",
                    input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens,
                    cost_usd=self._cost(a, u),
                    error=a.error.message if a.error else None,
                    cached_tokens=u.cached_tokens,
                    usage_estimated=u.estimated and u.used,
                )
            )
        return tuple(out)

    def result(self) -> RunResult:
        """The side's RunResult (meant for when ``done``; before that it describes the moment)."""
        usage = self.usage
        return RunResult(
            side=self.side,
            model=self.model,
            simulated=self.simulated,
            text=self.text,
            ttft_ms=self.ttft_ms,
            total_ms=self.elapsed_ms,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            usage_estimated=(usage.estimated and usage.used) or self.cost_estimated,
            cost_usd=self.cost_usd,
            fallback_used=self.fallback_used,
            fallback_reason=self.fallback_reason,
            hedged=self.hedged,
            error=self._error,
            discarded_text=self.discarded_text,
            attempts=self.attempt_summaries(),
            status=self.status,
        )

    @property
    def status(self) -> Literal["ok", "failed", "cancelled"]:
        """How the side ended: "ok", "failed" or "cancelled" ("ok" while it runs)."""
        if self.cancelled:
            return "cancelled"
        return "failed" if self._error else "ok"
