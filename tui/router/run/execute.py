"""Run a prompt: one side (a cell's primary, retries, fallback, hedge) or a routed/baseline pair.

How a front end runs a pair (the CLI and the TUI do exactly this)::

    run = run_pair(decision, table)              # a PairRun; nothing starts before iteration
    async with run:                              # leaving the block cancels what still runs
        async for ev in run:                     # RunEvents of both sides, as they arrive
            snap = run.metrics[ev.side].snapshot()   # figures already updated with ev
            ...
    result = run.result                          # PairResult, set once the stream has ended

``run.cancel()`` (from the event loop's thread, e.g. a key binding; ``await run.cancel()`` to
wait until every connection is closed), cancelling the task that iterates, or leaving the
``async with`` block stops both sides at once: their HTTP streams are cancelled, so their
connections close, each side ends with ``AttemptEnded(outcome="cancelled", final=True)``, the
iteration ends, and ``run.result`` describes what had happened until then (errors "cancelled").
``await run.wait()`` runs to the end without looking at events and returns the PairResult.
How the models are called (environment, simulation, httpx client, resolver, timeouts,
max_tokens, retry sleep) is one :class:`RunOptions`: ``run_pair(decision, table,
RunOptions(env=env, force_simulated=True))``.
The answer shown for a side is ``run.metrics[side].text`` (TextDeltas of an attempt that later
failed are not part of it: they end up in ``discarded_text``).

Semantics of one side (:func:`run_side` runs one alone):

* The prompt is sent as one user message to the primary, resolved with
  ``providers.registry.resolve_client`` (a missing key gives a simulated model).
* A ``StreamError`` whose ``falls_back`` is true (5xx, 529, no connection, timeouts, a stream
  broken or unparseable midway) moves the side to its fallback: ``AttemptStarted(role="fallback",
  reason="primary failed: HTTP 503")``. Text the failed attempt streamed is kept apart
  (``RunResult.discarded_text``). Any other failure (400, 401, 403, 404, ...), or a failure of the
  fallback itself, ends the side with that error.
* 408/409/429 are first retried on the same model (``role="retry"``), waiting ``retry_after``
  (or 0.5 s, 1 s, 2 s ... without one), at most ``Timeouts.max_retries`` times; a wait longer than
  ``Timeouts.max_retry_wait`` is not made: the side falls back at once.
* Hedging (``Cell.hedge_after_ms``): when a primary attempt has streamed no text that long after
  it started, the fallback starts too (``role="hedge"``). The first to stream text (or to finish)
  wins; the other is cancelled and ends with ``outcome="lost-hedge"``. Its usage still counts in
  the cost (estimated from the prompt when it reported none). If one racer fails, the other runs
  on, except that a primary's non-fallback error (a 4xx) ends the side as it would without hedge.
* ``Timeouts.total`` bounds the side: when it has run that long, the attempts still going end
  as a timeout; if no text was shown yet and the fallback was not tried, the fallback starts
  (with ``total`` of its own), else the side ends with that timeout error.
* Every streamed chunk goes through :class:`~tui.router.sanitize.StreamCleaner` (no escape
  sequences reach a consumer) and :class:`~tui.router.sanitize.StreamRedactor` (the values of
  the table's ``api_key_env`` variables and other keys become ``***``, even when a provider
  echoes one split across chunks); error messages are cleaned and stripped of keys too.

Every side ends with exactly one ``AttemptEnded`` whose ``final`` is true; only the winner of a
hedge race ever streams ``TextDelta`` events.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from tui.router.providers.base import Message, ProviderClient, Request
from tui.router.run.metrics import LiveMetrics, short_error
from tui.router.sanitize import StreamCleaner, StreamRedactor, clean, configured_secrets, redact
from tui.router.types import (
    AttemptEnded,
    AttemptStarted,
    Baseline,
    Cell,
    Decision,
    Finished,
    PairResult,
    RoutingTable,
    RunEvent,
    RunResult,
    Side,
    StreamError,
    TextDelta,
    Timeouts,
)
from tui.router.units import seconds

if TYPE_CHECKING:
    import httpx

__all__ = [
    "PairRun",
    "Resolver",
    "RunOptions",
    "SidePlan",
    "plan_of",
    "run_pair",
    "run_side",
    "run_side_result",
]

# How long a cancelled attempt may take to close its connection before we stop waiting for it.
CLOSE_WAIT_S = 2.0
# Wait before the n-th retry when the server sent no retry-after (doubled each time).
RETRY_BACKOFF_S = 0.5


class _Resolved(Protocol):
    """What a resolver returns (the registry's frozen ResolvedModel, or a test's stand-in)."""

    @property
    def client(self) -> ProviderClient: ...

    @property
    def model_id(self) -> str: ...

    @property
    def provider_model(self) -> str: ...

    @property
    def simulated(self) -> bool: ...


# model id -> the client to call it with (the registry's resolve_client, bound to a table/env).
Resolver = Callable[[str], _Resolved]
Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class RunOptions:
    """How a run calls its models; the same for every side of it (and every entry point:
    :func:`run_pair`, :class:`PairRun`, :func:`run_side`, :func:`run_side_result`).

    ``env`` (None: ``os.environ``, read when the run is made) is where keys are read;
    ``force_simulated`` runs every model simulated; ``http_client`` replaces the event loop's
    shared httpx client; ``resolver`` replaces the registry altogether (tests); ``timeouts``
    replaces the table's; ``max_tokens`` caps every answer; ``sleep`` is how retry waits are
    made (tests pass one that does not wait).
    """

    env: Mapping[str, str] | None = None
    force_simulated: bool = False
    http_client: httpx.AsyncClient | None = None
    resolver: Resolver | None = None
    timeouts: Timeouts | None = None
    max_tokens: int | None = None
    sleep: Sleep = asyncio.sleep


DEFAULT_OPTIONS = RunOptions()


@dataclass(frozen=True)
class _SideContext:
    """What every side of one run shares, resolved from its RunOptions and table."""

    resolve: Resolver
    timeouts: Timeouts
    sleep: Sleep
    max_tokens: int | None
    secrets: tuple[str, ...]

    @classmethod
    def of(cls, options: RunOptions, table: RoutingTable) -> _SideContext:
        env = os.environ if options.env is None else options.env
        resolve = options.resolver or _registry_resolver(
            table, env, options.force_simulated, options.http_client
        )
        return cls(
            resolve=resolve,
            timeouts=options.timeouts or table.timeouts,
            sleep=options.sleep,
            max_tokens=options.max_tokens,
            secrets=configured_secrets(env, table),
        )


@dataclass(frozen=True)
class SidePlan:
    """The models one side may use."""

    primary: str
    fallback: str | None = None
    hedge_after_ms: int | None = None


def plan_of(
    cell_or_models: Cell | Baseline | SidePlan | str | tuple[str, ...] | list[str],
    model_override: str | None = None,
) -> SidePlan:
    """A SidePlan from a Cell, the table's Baseline, ``"provider/model"`` or ``(primary, fallback)``.

    ``model_override`` replaces the primary; the fallback and hedge are kept (unless the override
    is the fallback itself).
    """
    c = cell_or_models
    if isinstance(c, SidePlan):
        plan = c
    elif isinstance(c, Cell):
        plan = SidePlan(c.primary, c.fallback, c.hedge_after_ms)
    elif isinstance(c, Baseline):
        plan = SidePlan(c.model, c.fallback)
    elif isinstance(c, str):
        plan = SidePlan(c)
    else:
        models = list(c)
        if not 1 <= len(models) <= 2:
            raise ValueError("give (primary,) or (primary, fallback)")
        plan = SidePlan(models[0], models[1] if len(models) > 1 else None)
    if model_override:
        fallback = plan.fallback if plan.fallback != model_override else None
        plan = SidePlan(model_override, fallback, plan.hedge_after_ms if fallback else None)
    if plan.fallback is None and plan.hedge_after_ms is not None:
        plan = SidePlan(plan.primary)
    return plan


def _registry_resolver(
    table: RoutingTable,
    env: Mapping[str, str],
    force_simulated: bool,
    http_client: httpx.AsyncClient | None,
) -> Resolver:
    from tui.router.providers.registry import resolve_client

    def resolve(model_id: str) -> _Resolved:
        return resolve_client(
            model_id, table, env=env, force_simulated=force_simulated, http_client=http_client
        )

    return resolve


# ---------------------------------------------------------------------------------------------
# One side
# ---------------------------------------------------------------------------------------------

_END = object()  # an attempt's stream is over (after its last event)


class _Attempt:
    __slots__ = ("index", "model", "role", "tier", "t", "client", "provider_model", "simulated",
                 "config_error", "task", "cleaner", "redactor", "live", "got_text")

    def __init__(self, index: int, model: str, role: str, tier: str,
                 secrets: tuple[str, ...] = ()) -> None:
        self.index = index
        self.model = model
        self.role = role
        self.tier = tier  # "primary" (primary and its retries) or "fallback" (fallback, hedge)
        self.t = time.perf_counter()
        self.client: ProviderClient | None = None
        self.provider_model = ""
        self.simulated = False
        self.config_error: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.cleaner = StreamCleaner()
        self.redactor = StreamRedactor(secrets)
        self.live = True
        self.got_text = False


class _SideRunner:
    """Runs one side to its end, passing RunEvents to ``emit`` as they happen."""

    def __init__(
        self,
        side: Side,
        plan: SidePlan,
        prompt: str,
        context: _SideContext,
        emit: Callable[[RunEvent], None],
    ) -> None:
        self.side: Side = side
        self.plan = plan
        self.prompt = prompt
        self.emit = emit
        self.resolve = context.resolve
        self.timeouts = context.timeouts
        self.sleep = context.sleep
        self.max_tokens = context.max_tokens
        self.secrets = context.secrets
        self.attempts: list[_Attempt] = []
        self.inbox: asyncio.Queue[tuple[_Attempt, Any]] = asyncio.Queue()
        self.hedge_at: float | None = None
        self.hedge_used = False
        # perf_counter instant when the side's total time is up (reset when the fallback starts).
        self.deadline: float | None = None

    # -- events ---------------------------------------------------------------------------------

    def _send(self, att: _Attempt, event: Any) -> None:
        self.emit(RunEvent(self.side, att.index, event))

    def _end(self, att: _Attempt, outcome: str, error: StreamError | None = None,
             final: bool = False) -> None:
        if att.live:
            att.live = False
            if att.task is not None and not att.task.done():
                att.task.cancel()
        self._send(att, AttemptEnded(time.perf_counter(), att.model, outcome, error, final))  # type: ignore[arg-type]

    # -- attempts -------------------------------------------------------------------------------

    def _start(self, model: str, role: str, tier: str, reason: str = "") -> _Attempt:
        att = _Attempt(len(self.attempts), model, role, tier, self.secrets)
        self.attempts.append(att)
        if self.deadline is None or role == "fallback":
            self.deadline = att.t + self.timeouts.total
        try:
            resolved = self.resolve(model)
        except Exception as exc:  # unknown provider, malformed id, ...
            att.config_error = self._safe(f"cannot use {model}: {exc}")
        else:
            att.client = resolved.client
            att.provider_model = resolved.provider_model
            att.simulated = resolved.simulated
        self._send(att, AttemptStarted(att.t, model, att.simulated, role, reason))  # type: ignore[arg-type]
        att.task = asyncio.create_task(self._pump(att), name=f"routedeck-{self.side}-{att.index}")
        if tier == "primary" and not self.hedge_used and self.plan.hedge_after_ms is not None:
            self.hedge_at = att.t + self.plan.hedge_after_ms / 1000.0
        return att

    async def _pump(self, att: _Attempt) -> None:
        put = self.inbox.put_nowait
        try:
            if att.client is None:
                put((att, StreamError(time.perf_counter(), "config", att.config_error or "")))
                return
            request = Request(
                model=att.provider_model,
                messages=(Message("user", self.prompt),),
                max_tokens=self.max_tokens,
            )
            stream = att.client.stream(request, self.timeouts)
            try:
                async for ev in stream:
                    put((att, ev))
                    if isinstance(ev, StreamError):
                        break
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a provider broke its contract (it must not raise)
            message = self._safe(f"{att.model}: {type(exc).__name__}: {exc}")
            put((att, StreamError(time.perf_counter(), "protocol", message)))
        finally:
            put((att, _END))

    def _safe(self, message: str) -> str:
        return clean(redact(message, self.secrets))

    # -- the side -------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            await self._shutdown()
            raise
        finally:
            await _close(a.task for a in self.attempts)

    async def _shutdown(self) -> None:
        live = [a for a in self.attempts if a.live]
        for a in live:
            a.live = False
            if a.task is not None:
                a.task.cancel()
        await _close(a.task for a in live)
        if not live and self.attempts:  # cancelled between attempts (a retry wait)
            live = [self.attempts[-1]]
        for i, a in enumerate(live):
            self._send(a, AttemptEnded(time.perf_counter(), a.model, "cancelled",
                                       final=i == len(live) - 1))

    async def _next(self) -> tuple[_Attempt, Any] | None:
        """The next event of an attempt, or None when the hedge time or the deadline came."""
        at = min(t for t in (self.hedge_at, self.deadline) if t is not None)
        try:
            async with asyncio.timeout_at(_loop_time(at)):
                return await self.inbox.get()
        except TimeoutError:
            return None

    async def _run(self) -> None:
        self._start(self.plan.primary, "primary", "primary")
        retries = 0
        while True:
            item = await self._next()
            if item is None:
                if self.deadline is not None and time.perf_counter() >= self.deadline:
                    if not self._past_deadline():
                        return
                    retries = 0
                else:
                    self._start_hedge()
                continue
            att, ev = item
            if not att.live:
                continue  # a cancelled loser's leftovers
            if ev is _END:
                # The stream ended normally: this attempt answered.
                self._flush_text(att)
                for other in self._others(att):
                    self._end(other, "lost-hedge")
                self._end(att, "ok", final=True)
                return
            if isinstance(ev, TextDelta):
                text = att.redactor.feed(att.cleaner.feed(ev.text))
                if not text:
                    continue
                if not att.got_text:
                    att.got_text = True
                    self.hedge_at = None
                    for other in self._others(att):
                        self._end(other, "lost-hedge")
                self._send(att, replace(ev, text=text) if text != ev.text else ev)
            elif isinstance(ev, StreamError):
                ev = replace(ev, message=self._safe(ev.message))
                self._flush_text(att)
                self._send(att, ev)
                step = await self._after_failure(att, ev, retries)
                if step is None:
                    return
                retries = step
            else:
                if isinstance(ev, Finished):
                    att.cleaner.flush()
                    self._flush_text(att)
                self._send(att, ev)

    def _flush_text(self, att: _Attempt) -> None:
        """Send the text the redactor held back (a possible key's start that never completed)."""
        text = att.redactor.flush()
        if text:
            att.got_text = True
            self._send(att, TextDelta(time.perf_counter(), text))

    def _past_deadline(self) -> bool:
        """The side's total time is up: end what runs; fall back when nothing was shown yet
        and the fallback is still to try. False when the side is over."""
        total = self.timeouts.total
        # The attempts still running (or, between attempts, the last one: the side's final
        # event must still be sent).
        live = [a for a in self.attempts if a.live] or self.attempts[-1:]
        shown = any(a.got_text for a in self.attempts)
        can_fall_back = (
            not shown and self.plan.fallback is not None
            and all(a.tier == "primary" for a in self.attempts)
        )
        for i, a in enumerate(live):
            err = StreamError(
                time.perf_counter(), "timeout",
                f"{a.model}: no complete answer within the total time limit ({total:g} s)",
            )
            self._send(a, err)
            self._end(a, "failed", err, final=not can_fall_back and i == len(live) - 1)
        if not can_fall_back:
            return False
        self.hedge_at = None
        assert self.plan.fallback is not None
        self._start(self.plan.fallback, "fallback", "fallback",
                    f"primary failed: no answer within {total:g} s")
        return True

    def _others(self, att: _Attempt) -> list[_Attempt]:
        return [a for a in self.attempts if a.live and a is not att]

    def _start_hedge(self) -> None:
        self.hedge_at = None
        self.hedge_used = True
        primary = self.attempts[-1]
        ms = self.plan.hedge_after_ms
        self._start(
            self.plan.fallback or primary.model, "hedge", "fallback",
            f"no token from {primary.model} after {ms} ms",
        )

    async def _after_failure(self, att: _Attempt, err: StreamError, retries: int) -> int | None:
        """Retry, fall back, let a racing attempt go on, or end. None when the side is over."""
        att.live = False
        others = self._others(att)
        if others:  # a hedge race: the other attempt runs on, unless the primary was refused
            if att.tier == "primary" and not err.falls_back:
                for other in others:
                    self._end(other, "cancelled")
                self._end(att, "failed", err, final=True)
                return None
            self.hedge_at = None
            self._end(att, "failed", err)
            return retries
        self.hedge_at = None
        can_fall_back = att.tier == "primary" and self.plan.fallback is not None
        cap = self.timeouts.max_retry_wait
        if err.retryable and retries < self.timeouts.max_retries:
            wait = err.retry_after
            if wait is None:
                wait = min(RETRY_BACKOFF_S * 2**retries, cap)
            in_time = self.deadline is None or time.perf_counter() + wait < self.deadline
            if wait <= cap and in_time:
                self._end(att, "failed", err)
                await self.sleep(wait)
                reason = f"{short_error(err)}: retry {retries + 1} of {self.timeouts.max_retries}"
                if wait:
                    reason += f" after {seconds(wait)}"
                self._start(att.model, "retry", att.tier, reason)
                return retries + 1
        if err.falls_back and can_fall_back:
            self._end(att, "failed", err)
            why = f"primary failed: {short_error(err)}"
            if err.retryable:
                why += (f" (retry-after {err.retry_after:g} s is over the {cap:g} s cap)"
                        if err.retry_after is not None and err.retry_after > cap
                        else f" after {retries} retries")
            assert self.plan.fallback is not None
            self._start(self.plan.fallback, "fallback", "fallback", why)
            return 0
        self._end(att, "failed", err, final=True)
        return None


def _loop_time(perf_t: float) -> float:
    """A ``time.perf_counter()`` instant on the event loop's clock."""
    return asyncio.get_running_loop().time() + (perf_t - time.perf_counter())


async def _close(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel and wait (a bounded time) for tasks, so their connections are closed."""
    pending = [t for t in tasks if t is not None and not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=CLOSE_WAIT_S)


# ---------------------------------------------------------------------------------------------
# Several sides at once, merged
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SideDone:
    side: Side


class _MergedRun:
    """Runs sides concurrently and merges their events into one stream, in arrival order."""

    def __init__(
        self,
        plans: dict[Side, SidePlan],
        prompt: str,
        table: RoutingTable,
        options: RunOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.plans = plans
        self.prompt = prompt
        self.table = table
        self.options = options
        self.metrics: dict[Side, LiveMetrics] = {
            s: LiveMetrics(s, prompt, table=table) for s in plans
        }
        self._context = _SideContext.of(options, table)
        self._queue: asyncio.Queue[RunEvent | _SideDone] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._iterated = False
        self._cancelled = False
        self._failures: dict[Side, str] = {}
        self._t0: float | None = None
        self.wall_ms: float | None = None
        self.finished = False

    def start(self) -> None:
        """Start every side now (iterating starts them too). Needs a running event loop."""
        if self._tasks or self._cancelled:
            return
        self._t0 = time.perf_counter()
        for side, plan in self.plans.items():
            runner = _SideRunner(side, plan, self.prompt, self._context, self._queue.put_nowait)
            task = asyncio.create_task(runner.run(), name=f"routedeck-{side}")
            # A done callback, not a finally: a task cancelled before its first step never runs.
            task.add_done_callback(functools.partial(self._side_done, side))
            self._tasks.append(task)

    def _side_done(self, side: Side, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._failures[side] = f"internal error: {type(exc).__name__}: {exc}"
        self._queue.put_nowait(_SideDone(side))

    def cancel(self) -> asyncio.Future[Any]:
        """Stop every side at once; their connections are closed and the event stream ends.

        Returns a future done when the sides have stopped: ``run.cancel()`` from a key binding,
        or ``await run.cancel()`` to wait until every connection is closed.
        """
        if not self._cancelled:
            self._cancelled = True
            for t in self._tasks:
                t.cancel()
        if not self._tasks:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return asyncio.gather(*self._tasks, return_exceptions=True)

    def __aiter__(self) -> AsyncIterator[RunEvent]:
        return self.events()

    async def events(self) -> AsyncIterator[RunEvent]:
        """Every RunEvent of every side as it arrives, each folded into ``metrics`` first."""
        if self._iterated:
            raise RuntimeError("the events of a run can be iterated only once")
        self._iterated = True
        self.start()
        waiting = set(self.plans) if self._tasks else set()
        try:
            while waiting:
                item = await self._queue.get()
                if isinstance(item, _SideDone):
                    waiting.discard(item.side)
                    continue
                self.metrics[item.side].apply(item)
                yield item
        finally:
            if waiting:  # the consumer was cancelled or stopped iterating
                await self._stop()
            self._finish()

    async def _stop(self) -> None:
        """Cancel the sides, wait (bounded) for them, and take in their last events."""
        self.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_WAIT_S * 2)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not isinstance(item, _SideDone):
                self.metrics[item.side].apply(item)

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        for side, m in self.metrics.items():
            if side in self._failures:
                m.close("failed", self._failures[side])
            m.close("cancelled")  # no-op for a side that ended normally
        if self._t0 is not None:
            # Until the slower side ended (not until the consumer finished reading).
            ends = [m.end_t for m in self.metrics.values() if m.end_t is not None]
            end = max(ends) if len(ends) == len(self.metrics) else time.perf_counter()
            self.wall_ms = (end - self._t0) * 1000.0
        self._on_finish()

    def _on_finish(self) -> None:
        pass

    async def __aenter__(self) -> _MergedRun:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self.finished:
            await self._stop()
            self._finish()


class PairRun(_MergedRun):
    """The routed side and the baseline side of one prompt, run in parallel.

    Iterate it (``async for ev in run``, once) to get both sides' RunEvents as they arrive; each
    event is folded into ``run.metrics[ev.side]`` (a LiveMetrics) before it is yielded. After
    the iteration ``run.result`` is the PairResult. ``run.cancel()`` stops both sides.
    """

    def __init__(
        self,
        decision: Decision,
        table: RoutingTable,
        options: RunOptions = DEFAULT_OPTIONS,
        *,
        baseline: Cell | Baseline | SidePlan | str | tuple[str, ...] | None = None,
        model: str | None = None,
    ) -> None:
        plans: dict[Side, SidePlan] = {
            "routed": plan_of(decision.cell, model),
            "baseline": plan_of(baseline if baseline is not None else table.baseline),
        }
        super().__init__(plans, decision.prompt, table, options)
        self.decision = decision
        self.result: PairResult | None = None

    def _on_finish(self) -> None:
        self.result = PairResult(
            decision=self.decision,
            routed=with_classification_cost(self.metrics["routed"].result(), self.decision),
            baseline=self.metrics["baseline"].result(),
            wall_ms=self.wall_ms or 0.0,
        )

    async def wait(self) -> PairResult:
        """Run to the end without looking at the events; the PairResult."""
        async for _ in self.events():
            pass
        assert self.result is not None
        return self.result

    async def __aenter__(self) -> PairRun:
        self.start()
        return self


def with_classification_cost(routed: RunResult, decision: Decision) -> RunResult:
    """The routed side with what classifying its prompt cost added (an LLM classifier's call):
    routing pays for it, so its savings must show it. Unknown when either is unknown."""
    extra = decision.classification.cost_usd
    if not extra or routed.cost_usd is None:
        return routed if extra is not None else replace(routed, cost_usd=None)
    return replace(routed, cost_usd=routed.cost_usd + extra)


def run_pair(
    decision: Decision,
    table: RoutingTable,
    options: RunOptions = DEFAULT_OPTIONS,
    *,
    baseline: Cell | Baseline | SidePlan | str | tuple[str, ...] | None = None,
    model: str | None = None,
) -> PairRun:
    """A :class:`PairRun` of ``decision``: the routed side (``decision.cell``, its primary
    replaced by ``model`` if given) against the baseline (``table.baseline`` unless given),
    its models called as ``options`` says (:class:`RunOptions`).

    Iterating the returned object (``async for ev in run_pair(...)``) starts both sides.
    """
    return PairRun(decision, table, options, baseline=baseline, model=model)


async def run_side(
    side: Side,
    cell_or_models: Cell | Baseline | SidePlan | str | tuple[str, ...],
    prompt: str,
    table: RoutingTable,
    options: RunOptions = DEFAULT_OPTIONS,
    *,
    model_override: str | None = None,
) -> AsyncIterator[RunEvent]:
    """One side alone: its RunEvents as they happen. Fold them into a
    :class:`~tui.router.run.metrics.LiveMetrics` to get figures and, at the end, the RunResult
    (or use :func:`run_side_result`). Closing or cancelling the iteration stops the side."""
    run = _MergedRun({side: plan_of(cell_or_models, model_override)}, prompt, table, options)
    async with run:
        async for ev in run.events():
            yield ev


async def run_side_result(
    side: Side,
    cell_or_models: Cell | Baseline | SidePlan | str | tuple[str, ...],
    prompt: str,
    table: RoutingTable,
    options: RunOptions = DEFAULT_OPTIONS,
    *,
    model_override: str | None = None,
) -> RunResult:
    """Run one side to its end and return its RunResult."""
    run = _MergedRun({side: plan_of(cell_or_models, model_override)}, prompt, table, options)
    async with run:
        async for _ in run.events():
            pass
    return run.metrics[side].result()
