"""The LLM classifier and the cascade: a cheap model asked for one label.

:class:`LLMClassifier` asks ``[classifier] llm_model`` (through its provider client) for one
task type; it fails open to the local classifier when the call fails, times out or cannot be
made, and each result carries the call (time, tokens, cost) as ``Classification.llm``.
:class:`CascadeClassifier` asks it only about the prompts the local classifier is unsure of.
Blocking calls run on one background event loop (:class:`_BackgroundLoop`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tui.router.classifier.local import TOP_K, Classifier, check_prompt, printable
from tui.router.types import Classification, LLMCall, StreamError, TextDelta, Timeouts

LLM_PROMPT_CHARS = 6_000  # of a long prompt, the head and tail sent to the classifying model
LLM_KINDS = ("llm", "cascade")  # classifier kinds that call [classifier] llm_model

PriceFn = Callable[[int, int], "float | None"]  # (input tokens, output tokens) -> USD or None


class _BackgroundLoop:
    """One event loop in a daemon thread that every blocking LLM classification runs on, so
    the classifying model's connection (TLS included) is reused from one prompt to the next
    and a caller inside an event loop is not blocked by a nested one."""

    def __init__(self) -> None:
        self._loop: Any = None
        self._lock = threading.Lock()

    def run(self, coro: Any, timeout: float) -> Any:
        import asyncio

        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="routedeck-llm-classifier",
                                 daemon=True).start()
                self._loop = loop
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise


_LOOP = _BackgroundLoop()


class _LogprobsRefused(Exception):
    """The model answered 400 to a request for logprobs (OpenAI's reasoning models do)."""


@dataclass
class _Tally:
    """What one LLM call used, filled while it streams."""

    request_tokens: int = 0
    started: bool = False
    out_chars: int = 0
    usage: tuple[int, int, bool] | None = None  # (input, output, estimated) from the provider
    ms: float = 0.0  # the call's time, to its answer or failure


class LLMClassifier:
    """Asks a cheap model for one label; fails open to ``fallback`` when the call fails.

    Confidence comes from the first answer token's logprobs when the provider returns them
    (renormalised over the label names); otherwise it is None ("no confidence"). A model that
    refuses logprobs (HTTP 400 naming them) is asked again without, once, and from then on.
    The whole call has ``timeout_s`` (routes.toml [timeouts] classifier); past it the local
    label decides. Every result carries the call (:class:`~tui.router.types.LLMCall`): its
    time, tokens and cost (``price``), or why none was made (``unavailable``: no key).
    """

    name = "llm"

    def __init__(
        self,
        client: Any,  # a tui.router.providers.base.ProviderClient, or None (no call is made)
        model: str,  # "provider/model"
        labels: Sequence[str],
        fallback: Classifier,
        *,
        descriptions: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        timeout_s: float | None = None,
        max_tokens: int | None = None,
        unavailable: str | None = None,  # why there is no client: "no OPENAI_API_KEY for ..."
        price: PriceFn | None = None,
    ):
        self.client = client
        self.model = model
        self.labels = tuple(labels)
        self.fallback = fallback
        self.descriptions = dict(descriptions or {})
        self.timeouts = timeouts or Timeouts(max_retries=0)
        self.timeout_s = self.timeouts.classifier if timeout_s is None else timeout_s
        self.max_tokens = max_tokens
        self.unavailable = unavailable
        self.price = price
        self.logprobs_refused = False

    def _request(self, prompt: str, *, logprobs: bool = True) -> Any:
        from tui.router.providers.base import Message, Request
        from tui.router.types import split_model_id

        lines = [f"- {label}: {self.descriptions.get(label, '')}".rstrip(": ")
                 for label in self.labels]
        system = (
            "You label the task type of a user's prompt for a model router. Label what the user"
            " wants done, not the material they pasted. Task types:\n" + "\n".join(lines)
            + "\nAnswer with exactly one word, the task type, in lower case: "
            + ", ".join(self.labels) + "."
        )
        text = prompt
        if len(text) > LLM_PROMPT_CHARS:
            half = LLM_PROMPT_CHARS // 2
            text = text[:half] + "\n[…]\n" + text[-half:]
        return Request(
            model=split_model_id(self.model)[1],
            messages=(Message("system", system), Message("user", "Prompt:\n" + text)),
            max_tokens=self.max_tokens,
            logprobs=5 if logprobs else None,
        )

    def request_tokens(self, prompt: str) -> int:
        """The classification request's input tokens, estimated from its text (chars / 4)."""
        from tui.router.run.metrics import estimate_tokens

        request = self._request(prompt)
        return estimate_tokens(sum(len(m.content) for m in request.messages))

    async def _ask(self, prompt: str, tally: _Tally) -> tuple[str, Any]:
        """(answer text, first-token alternatives); raises RuntimeError on a failed call."""
        if not self.logprobs_refused:
            try:
                return await self._ask_once(prompt, tally, logprobs=True)
            except _LogprobsRefused:
                self.logprobs_refused = True
        return await self._ask_once(prompt, tally, logprobs=False)

    async def _ask_once(self, prompt: str, tally: _Tally, *, logprobs: bool) -> tuple[str, Any]:
        from tui.router.types import Started, UsageReport

        text: list[str] = []
        first_logprobs = None
        async for event in self.client.stream(self._request(prompt, logprobs=logprobs),
                                              self.timeouts):
            if isinstance(event, Started):
                tally.started = True
            elif isinstance(event, TextDelta):
                if first_logprobs is None and event.text.strip():
                    first_logprobs = getattr(event, "logprobs", None) or ()
                text.append(event.text)
                tally.out_chars += len(event.text)
            elif isinstance(event, UsageReport):
                tally.usage = (event.input_tokens, event.output_tokens, event.estimated)
            elif isinstance(event, StreamError):
                if (logprobs and event.kind == "http" and event.status == 400
                        and "logprob" in event.message.lower()):
                    raise _LogprobsRefused()
                raise RuntimeError(f"{event.kind}: {printable(event.message, 80)}")
        return "".join(text), (first_logprobs or None)

    def _parse(self, answer: str) -> str | None:
        words = re.findall(r"[a-z_-]+", answer.lower())
        for w in words:
            if w in self.labels:
                return w
        for w in words:  # a truncated label ("extract")
            hits = [label for label in self.labels if label.startswith(w) and len(w) >= 3]
            if len(hits) == 1:
                return hits[0]
        return None

    def _distribution(self, alternatives: Sequence[tuple[str, float]]) -> dict[str, float]:
        mass: dict[str, float] = {}
        for token, logprob in alternatives:
            t = token.strip().lower()
            if not t:
                continue
            hits = [label for label in self.labels if label.startswith(t)]
            if len(hits) == 1:
                mass[hits[0]] = mass.get(hits[0], 0.0) + float(np.exp(logprob))
        total = sum(mass.values())
        return {k: v / total for k, v in mass.items()} if total > 0 else {}

    def classify(self, prompt: str, local: Classification | None = None) -> Classification:
        """Blocking (the call runs on a shared background loop). ``local``: the fallback's
        classification when the caller has it already (the cascade)."""
        check_prompt(prompt)
        started = time.perf_counter()
        if self.client is None:
            return self._unavailable(prompt, local, started)
        try:
            return _LOOP.run(self.aclassify(prompt, local), self.timeout_s + 5.0)
        except Exception as exc:  # the deadline inside should have ended it: never block a run
            why = printable(str(exc), 80) or type(exc).__name__
            return self._fail_open(prompt, local, why, started, None, "failed")

    async def aclassify(self, prompt: str, local: Classification | None = None) -> Classification:
        import asyncio

        check_prompt(prompt)
        started = time.perf_counter()
        if self.client is None:
            return self._unavailable(prompt, local, started)
        tally = _Tally(request_tokens=self.request_tokens(prompt))
        try:
            answer, alternatives = await asyncio.wait_for(self._ask(prompt, tally), self.timeout_s)
        except TimeoutError:
            tally.ms = (time.perf_counter() - started) * 1000.0
            why = f"no answer within the {self.timeout_s:g} s deadline"
            return self._fail_open(prompt, local, why, started, tally, "timeout")
        except Exception as exc:  # the provider contract says no raise; be safe anyway
            tally.ms = (time.perf_counter() - started) * 1000.0
            why = printable(str(exc), 80) or type(exc).__name__
            return self._fail_open(prompt, local, why, started, tally, "failed")
        tally.ms = (time.perf_counter() - started) * 1000.0
        label = self._parse(answer)
        if label is None:
            why = f"answered “{printable(answer, 30)}”"
            return self._fail_open(prompt, local, why, started, tally, "failed")
        return self._answered(label, alternatives, started, tally)

    def _answered(self, label: str, alternatives: Any, started: float,
                  tally: _Tally) -> Classification:
        dist = self._distribution(alternatives or ())
        confidence = dist.get(label) if dist else None
        if dist:
            ranked = sorted(dist.items(), key=lambda kv: -kv[1])
            if label not in dict(ranked[:TOP_K]):  # the answer first, then the likeliest
                ranked = [(label, dist.get(label, 0.0))] + [r for r in ranked if r[0] != label]
            top = tuple(ranked[:TOP_K])
            reason = f"llm {self.model}"
        else:
            top = ((label, 1.0),)
            reason = f"llm {self.model} (no confidence)"
        return Classification(
            label=label,
            confidence=confidence,
            top=top,
            classifier=self.name,
            reason=reason,
            elapsed_ms=tally.ms,
            llm=self._call("ok", tally),
        )

    def _call(self, outcome: str, tally: _Tally) -> LLMCall:
        """The call's record. Without a usage report: an answer counts the request's estimated
        input tokens and its text's; a call cut at the deadline, or broken after it started,
        counts the estimated input (the provider may bill what it read); a refused one nothing."""
        from tui.router.run.metrics import estimate_tokens

        if tally.usage is not None:
            inp, out, estimated = tally.usage
        elif outcome == "ok" or outcome == "timeout" or tally.started:
            inp, out, estimated = tally.request_tokens, estimate_tokens(tally.out_chars), True
        else:
            inp, out, estimated = 0, 0, False
        if inp or out:
            cost = self.price(inp, out) if self.price is not None else None
        else:
            cost = 0.0
        return LLMCall(
            model=self.model,
            outcome=outcome,  # type: ignore[arg-type]
            ms=tally.ms,
            input_tokens=inp,
            output_tokens=out,
            usage_estimated=estimated,
            cost_usd=cost,
            request_tokens=tally.request_tokens,
        )

    def _unavailable(self, prompt: str, local: Classification | None,
                     started: float) -> Classification:
        """No client (no key, or simulated): the local classifier decides; nothing is called."""
        if self.unavailable is None:
            return self._fail_open(prompt, local, "no provider client for " + self.model,
                                   started, None, "unavailable")
        result = local if local is not None else self.fallback.classify(prompt)
        return replace(
            result,
            reason=f"{self.unavailable}: {result.reason}",
            elapsed_ms=result.elapsed_ms + (time.perf_counter() - started) * 1000.0,
            llm=LLMCall(self.model, "unavailable", request_tokens=self.request_tokens(prompt)),
        )

    def _fail_open(self, prompt: str, local: Classification | None, why: str, started: float,
                   tally: _Tally | None, outcome: str) -> Classification:
        result = local if local is not None else self.fallback.classify(prompt)
        tally = tally or _Tally(request_tokens=self.request_tokens(prompt))
        return replace(
            result,
            classifier="fallback",
            reason=f"llm failed ({why}); {result.reason}",
            elapsed_ms=result.elapsed_ms + (time.perf_counter() - started) * 1000.0,
            llm=self._call(outcome, tally),
        )


class CascadeClassifier:
    """The local classifier first; only a prompt it is unsure of (confidence below
    ``threshold``) goes to the LLM classifier. The LLM's answer then decides, with its own
    confidence (below the threshold: the uncertain route) or none (taken as certain, as for
    kind = "llm"); if the LLM fails, times out or cannot be called, the local label stays,
    still below the threshold, so the prompt takes the uncertain route. Most prompts cost
    nothing; the hard ones get a second opinion."""

    name = "cascade"

    def __init__(self, local: Classifier, llm: LLMClassifier, threshold: float):
        self.local = local
        self.llm = llm
        self.threshold = threshold

    def classify(self, prompt: str) -> Classification:
        first = self.local.classify(prompt)
        if first.confidence is not None and first.confidence >= self.threshold:
            return first
        second = self.llm.classify(prompt, local=first)
        if second.classifier != "llm":  # failed or unavailable: the (unsure) local label
            return second
        unsure = f"local unsure ({first.label} {first.confidence or 0.0:.2f})"
        return replace(second, reason=f"{unsure}; {second.reason}",
                       elapsed_ms=first.elapsed_ms + second.elapsed_ms)

