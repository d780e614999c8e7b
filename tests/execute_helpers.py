"""The fakes the tests/test_execute_*.py modules share: scripted ProviderClients, a resolver that
hands them out, recorded retry waits, a table and a decision, and a side collector."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

from tui.router.run.execute import RunOptions, run_side
from tui.router.run.metrics import LiveMetrics
from tui.router.types import (
    Baseline,
    Cell,
    Classification,
    ClassifierSettings,
    Decision,
    Finished,
    Provider,
    RoutingTable,
    RunEvent,
    Started,
    StreamError,
    TextDelta,
    Timeouts,
    UsageReport,
)

BOUND = 20.0  # seconds: only to fail instead of hanging, never a performance assertion

CHEAP = "openai/gpt-5-mini"
BACKUP = "anthropic/claude-haiku-4-5"
FRONTIER = "openai/gpt-5.2"
FRONTIER_FB = "anthropic/claude-sonnet-4-5"
PROMPT = "Explain what a hash map is, in two sentences."


def now() -> float:
    return time.perf_counter()


# --------------------------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------------------------


@dataclass
class FakeClient:
    """Streams scripted calls. Each call's script is a list of steps:

    ("text", str), ("usage", in, out[, cached]), ("finish",), ("sleep", s), ("stall",),
    ("wait", asyncio.Event), ("error", kind, status, retry_after), ("raise",)
    A call without "finish" or "error" just ends (a normal end for the executor).
    """

    name: str
    scripts: list[list[tuple]]
    calls: int = 0
    closed: int = 0
    cancelled: int = 0
    requests: list = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def stream(self, request, timeouts):
        script = self.scripts[min(self.calls, len(self.scripts) - 1)]
        self.calls += 1
        self.requests.append(request)
        self.opened.set()
        try:
            for step in script:
                op = step[0]
                if op == "started":
                    yield Started(now(), self.name, False)
                elif op == "text":
                    yield TextDelta(now(), step[1])
                elif op == "usage":
                    yield UsageReport(now(), step[1], step[2], step[3] if len(step) > 3 else 0)
                elif op == "finish":
                    yield Finished(now(), "stop")
                elif op == "sleep":
                    await asyncio.sleep(step[1])
                elif op == "stall":
                    await asyncio.sleep(3600)
                elif op == "wait":
                    await step[1].wait()
                elif op == "error":
                    _, kind, status, retry_after = step
                    msg = f"HTTP {status} from fake" if status else f"{kind} failure in fake"
                    yield StreamError(now(), kind, msg, status, retry_after)
                    return
                elif op == "raise":
                    raise RuntimeError("provider bug")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.closed += 1


def ok(text="Hello world, this is the answer.", inp=20, out=8, cached=0):
    return [
        ("started",),
        ("text", text[:5]),
        ("text", text[5:]),
        ("usage", inp, out, cached),
        ("finish",),
    ]


def err(kind="http", status=None, retry_after=None):
    return [("error", kind, status, retry_after)]


class Resolver:
    def __init__(self, **clients: FakeClient):
        self.clients = {c.name: c for c in clients.values()}
        self.resolved: list[str] = []

    def __call__(self, model_id: str):
        self.resolved.append(model_id)
        if model_id not in self.clients:
            raise KeyError(f"unknown provider for {model_id}")
        return SimpleNamespace(
            client=self.clients[model_id],
            model_id=model_id,
            provider_model=model_id.split("/", 1)[1],
            simulated=False,
            why_simulated=None,
        )


class Sleeps:
    """Records retry waits instead of waiting."""

    def __init__(self):
        self.waits: list[float] = []

    async def __call__(self, s: float) -> None:
        self.waits.append(s)
        await asyncio.sleep(0)


def make_table(timeouts: Timeouts | None = None) -> RoutingTable:
    return RoutingTable(
        tasks={},
        priorities={},
        routes={},
        baseline=Baseline(FRONTIER, FRONTIER_FB),
        classifier=ClassifierSettings(),
        providers={
            "openai": Provider("openai", "openai-compatible", api_key_env="OPENAI_API_KEY"),
            "anthropic": Provider("anthropic", "anthropic", api_key_env="ANTHROPIC_API_KEY"),
        },
        timeouts=timeouts or Timeouts(max_retries=2, max_retry_wait=20.0),
    )


def make_decision(cell: Cell, prompt: str = PROMPT) -> Decision:
    c = Classification("code", 0.9, (("code", 0.9),), "local", "local classifier", 1.0)
    return Decision(prompt, c, "code", "default", "default", cell, False, "code/default")


async def collect_side(
    plan, resolver, *, table=None, sleep=None, prompt=PROMPT, model_override=None, **kw
):
    table = table or make_table()
    events: list[RunEvent] = []
    metrics = LiveMetrics("routed", prompt, table=table)
    options = RunOptions(resolver=resolver, sleep=sleep or Sleeps(), env={}, **kw)

    async def go():
        async for ev in run_side(
            "routed", plan, prompt, table, options, model_override=model_override
        ):
            events.append(ev)
            metrics.apply(ev)

    await asyncio.wait_for(go(), BOUND)
    return events, metrics.result()


def kinds(events, cls):
    return [e.event for e in events if isinstance(e.event, cls)]
