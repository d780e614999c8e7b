"""A simulated provider: clearly labelled stand-in answers with realistic timing and usage.

It stands in for any model whose key is missing (and for the ``sim`` provider), so that every
screen and every routing decision can be explored without a key or a network. The answer is:

* deterministic: the same model and prompt give the same text, token counts and timings (the seed
  is a hash of both), so replays and tests are repeatable;
* plainly labelled: it starts with ``[simulated <model id>]`` and says no model was called;
* shaped by the prompt: it echoes the topic, runs a few paragraphs, and adds a code block to
  code-like prompts and worked steps to maths-like ones;
* timed like the model: it waits the profile's time to first token, then streams small chunks at
  its tokens per second, all with ``asyncio.sleep`` so that cancelling is immediate.

A model's profile comes from routes.toml's ``[profiles]`` when it has one, else from its price
tier: cheap (under $1 per million output tokens), mid, or frontier ($10 and up); a model the price
library does not know is mid. Token counts use the simulator's own tokenizer (word pieces of up
to seven letters, numbers in threes, each other character alone: close to chars/4 for English),
so they are exact for this answer and reported with ``estimated=False``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
from collections.abc import AsyncIterator
from typing import Literal

from tui.router.providers.base import Request
from tui.router.types import (
    Finished,
    ModelProfile,
    ProviderEvent,
    Started,
    StreamError,
    TextDelta,
    Timeouts,
    UsageReport,
)

__all__ = [
    "TIER_PROFILES",
    "SimulatedClient",
    "Tier",
    "model_tier",
    "output_price_per_mtok",
    "simulated_answer",
    "sim_tokenize",
]

Tier = Literal["cheap", "mid", "frontier"]
TIERS: tuple[Tier, ...] = ("cheap", "mid", "frontier")

TIER_PROFILES: dict[str, ModelProfile] = {
    "cheap": ModelProfile(ttft_ms=250.0, tokens_per_s=150.0),
    "mid": ModelProfile(ttft_ms=500.0, tokens_per_s=90.0),
    "frontier": ModelProfile(ttft_ms=1200.0, tokens_per_s=50.0),
}
# Output length range (tokens) of a simulated answer, by tier.
_LENGTHS: dict[str, tuple[int, int]] = {
    "cheap": (150, 350),
    "mid": (200, 450),
    "frontier": (250, 600),
}
CHEAP_BELOW = 1.0  # USD per million output tokens
FRONTIER_FROM = 10.0


def output_price_per_mtok(model: str, provider_id: str | None) -> float | None:
    """USD per million output tokens from the price library, None when unknown."""
    from tui.router.cost.pricing import price_per_mtok

    prices = price_per_mtok(f"{provider_id or 'unknown'}/{model}")
    return None if prices is None else prices[1]


def tier_for_price(usd_per_mtok_out: float | None) -> Tier:
    if usd_per_mtok_out is None:
        return "mid"
    if usd_per_mtok_out < CHEAP_BELOW:
        return "cheap"
    if usd_per_mtok_out >= FRONTIER_FROM:
        return "frontier"
    return "mid"


def model_tier(model_id: str, price_provider: str | None = None) -> Tier:
    """The price tier of ``"provider/model"`` (``price_provider`` overrides the provider id).

    Models of the simulated provider named after a tier (``sim/cheap``, ``sim/frontier``) have it.
    """
    provider, _, model = model_id.partition("/")
    if not model:
        provider, model = "", model_id
    if model in TIERS:
        return model
    return tier_for_price(output_price_per_mtok(model, price_provider or provider or None))


# --------------------------------------------------------------------------------------------
# The answer
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:[A-Za-z]{1,7}|\d{1,3}|\S)|\s+")


def sim_tokenize(text: str) -> list[str]:
    """The simulator's tokens; ``"".join(sim_tokenize(t)) == t``."""
    return _TOKEN.findall(text)


_CODE_HINT = re.compile(
    r"```|\b(def|class|import|function|const|let|var|return|async|await|lambda|struct|impl|"
    r"python|javascript|typescript|java|rust|golang|c\+\+|sql|regex|bash|shell|script|code|bug|"
    r"compile|stack trace|traceback|exception|error:|api|json|yaml|docker|git|npm|pip|pandas|"
    r"react|function)\b|\w+\(\)|=>|SELECT .+ FROM",
    re.IGNORECASE,
)
_MATH_HINT = re.compile(
    r"\d+\s*[-+*/^×÷=]\s*\d+|\\frac|\\int|\b(solve|equation|integral|derivative|probability|"
    r"percent|percentage|calculate|compute|sum of|product of|prime|proof|prove|average|mean)\b",
    re.IGNORECASE,
)
_LIST_HINT = re.compile(r"\b(list|ideas|steps|tips|options|ways|examples|pros|cons)\b", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]{3,}")
_STOP = frozenset(
    """about above after again against also although always among another anything around
    because been before being below between both could does doing done down during each either
    else even every from have having here how into just know like make many might more most much
    must need never only other over please quick quickly really same should show some such tell
    than that their them then there these they thing things this those though through very want
    what when where which while whom whose will with within without would write your yours
    explain give using used uses into onto can't don't isn't it's i'm""".split()
)

_SENTENCES = (
    "The heart of {a} is simpler than it looks once {b} is pinned down.",
    "A sensible first step is to state what is known about {a} and what is only assumed.",
    "In practice, {a} matters most where it meets {b}.",
    "One common approach starts from {b}, checks the assumptions, and only then turns to {a}.",
    "There is a trade-off here between simplicity and flexibility, and {a} sits right on it.",
    "Edge cases deserve a look, especially around {b}.",
    "A quick sanity check: does the conclusion still hold if {b} changes?",
    "If {a} is the goal, the smallest version that works is usually the right start.",
    "People often overlook how {b} and {a} interact.",
    "Seen from a distance, {a} is mostly a question of {b}.",
    "It is worth writing the reasoning about {a} down, so that each step can be checked.",
    "Details such as {b} are where answers like this one usually go wrong.",
    "A real model would add specifics about {a} here; this simulator only mimics an answer's shape.",
    "For a fair comparison, the same prompt about {a} can be run against a real model later.",
)
_BULLETS = (
    "Start with {a}.",
    "Check how {b} affects the result.",
    "Compare at least two options for {a}.",
    "Write down the assumptions about {b}.",
    "Test the idea on a small example first.",
    "Revisit {a} once the rest is settled.",
)


def _topic(prompt: str) -> str:
    for line in prompt.splitlines():
        line = line.strip().strip("`#>*- ")
        if line:
            line = re.sub(r"\s+", " ", line).replace("`", "'")
            if len(line) > 70:
                line = line[:70].rsplit(" ", 1)[0] + "…"
            return line
    return "an empty prompt"


def _keywords(prompt: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(prompt):
        w = word.lower().strip("'-")
        if len(w) >= 4 and w not in _STOP:
            seen.setdefault(w, None)
        if len(seen) >= 8:
            break
    words = list(seen)
    return words or ["the question", "the details", "the context"]


def _language(prompt: str) -> str:
    p = prompt.lower()
    if re.search(r"\bselect\b.+\bfrom\b|\bsql\b|\bquery\b", p):
        return "sql"
    if re.search(r"\b(javascript|typescript|react|node|npm|js)\b|=>", p):
        return "javascript"
    if re.search(r"\b(bash|shell|terminal|command line|grep|sed|awk)\b", p):
        return "bash"
    return "python"


def _identifier(word: str) -> str:
    ident = re.sub(r"[^a-z0-9_]", "_", word.lower()).strip("_") or "task"
    return ident if not ident[0].isdigit() else f"n_{ident}"


_NOT_NAMES = frozenset(
    """python javascript typescript java rust golang sql regex bash shell script code function
    functions class method program query write create implement snippet the question details
    list dict select from where table
    context""".split()
)


def _code_block(lang: str, topic: str, words: list[str]) -> str:
    names = [_identifier(w) for w in words if w not in _NOT_NAMES] + ["items", "data"]
    name = "_".join(names[:2]) if len(names) > 3 else f"handle_{names[0]}"
    other = names[2] if len(names) > 3 else "items"
    if lang == "sql":
        body = (
            f"-- simulated sketch for: {topic}\n"
            f"SELECT id, {other}, COUNT(*) AS n\n"
            f"FROM {name}\n"
            f"WHERE {other} IS NOT NULL\n"
            f"GROUP BY id, {other}\n"
            "ORDER BY n DESC\n"
            "LIMIT 10;"
        )
    elif lang == "javascript":
        body = (
            f"// simulated sketch for: {topic}\n"
            f"function {name}({other}) {{\n"
            f"  if (!Array.isArray({other})) return [];\n"
            f"  return {other}.filter((item) => item != null);\n"
            "}\n\n"
            f"console.log({name}([1, null, 2]));"
        )
    elif lang == "bash":
        body = (
            f"# simulated sketch for: {topic}\n"
            "set -euo pipefail\n"
            f"for f in ./{name}/*; do\n"
            '  echo "processing $f"\n'
            "done"
        )
    else:
        body = (
            f"def {name}({other}):\n"
            f'    """Simulated sketch for: {topic}"""\n'
            "    result = []\n"
            f"    for item in {other}:\n"
            "        if item is not None:\n"
            "            result.append(item)\n"
            "    return result\n\n\n"
            'if __name__ == "__main__":\n'
            f"    print({name}([1, None, 2]))"
        )
    return f"```{lang}\n{body}\n```"


def _math_steps(prompt: str, rng: random.Random) -> str:
    numbers = [int(n) for n in re.findall(r"\d{1,6}", prompt)[:4]]
    while len(numbers) < 2:
        numbers.append(rng.randint(2, 40))
    a, b = numbers[0], numbers[1]
    return "\n".join(
        (
            f"1. Write down what is given: {', '.join(str(n) for n in numbers)}.",
            "2. Decide which quantity is asked for and which relation connects it to the data.",
            f"3. Combine the values, for instance {a} + {b} = {a + b} and {a} × {b} = {a * b}.",
            "4. Check the result against a rough estimate before trusting it.",
        )
    )


def simulated_answer(model_id: str, prompt: str, tier: str = "mid") -> str:
    """The full simulated answer for ``prompt`` (deterministic for a model and prompt)."""
    rng = random.Random(_seed(model_id, prompt))
    topic = _topic(prompt)
    words = _keywords(prompt)
    low, high = _LENGTHS.get(tier, _LENGTHS["mid"])
    target = rng.randint(low, high)

    def pick() -> dict[str, str]:
        a = rng.choice(words)
        b = rng.choice([w for w in words if w != a] or words)
        return {"a": a, "b": b}

    parts = [
        f"[simulated {model_id}] This is a simulated answer, generated locally: no model was "
        f"called. It is about “{topic}”.",
        f"Here is how one might approach {words[0]}. "
        + " ".join(rng.choice(_SENTENCES).format(**pick()) for _ in range(2)),
    ]
    if _CODE_HINT.search(prompt):
        parts.append("A sketch of the code:")
        parts.append(_code_block(_language(prompt), topic, words))
    elif _MATH_HINT.search(prompt):
        parts.append("Worked steps:")
        parts.append(_math_steps(prompt, rng))
    if _LIST_HINT.search(prompt):
        bullets = rng.sample(_BULLETS, 4)
        parts.append("\n".join(f"- {b.format(**pick())}" for b in bullets))
    used = len(sim_tokenize("\n\n".join(parts)))
    while used < target:
        paragraph = " ".join(
            rng.choice(_SENTENCES).format(**pick()) for _ in range(rng.randint(3, 5))
        )
        parts.append(paragraph)
        used += len(sim_tokenize(paragraph)) + 1
    parts.append(f"(End of the simulated answer from {model_id}.)")
    return "\n\n".join(parts)


def _seed(model_id: str, prompt: str) -> int:
    digest = hashlib.sha256(f"{model_id}\0{prompt}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def _prompt_text(request: Request) -> str:
    users = [m.content for m in request.messages if m.role == "user"]
    return users[-1] if users else "\n".join(m.content for m in request.messages)


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class SimulatedClient:
    """A ProviderClient that streams :func:`simulated_answer` with the profile's timing.

    ``profile`` None uses the tier's default profile; ``tier`` None derives it from the price
    (``price_provider`` names the provider the price library knows, default the model id's). The
    price lookup is lazy: the first :meth:`stream` does it in a worker thread (the price library's
    first use costs ~0.1-0.5 s), so creating a client never blocks an event loop.
    ``speed`` divides every wait (tests and demos use large values to run instantly).
    If the profile's time to first token exceeds ``Timeouts.first_token``, the stream ends with a
    first_token timeout after that deadline, as a real slow model would.
    """

    def __init__(
        self,
        profile: ModelProfile | None = None,
        model_id: str = "sim/mid",
        tier: Tier | None = None,
        *,
        speed: float = 1.0,
        price_provider: str | None = None,
    ) -> None:
        self.model_id = model_id
        self._tier = tier
        self._profile = profile
        self._price_provider = price_provider
        self.speed = speed if speed > 0 else 1.0

    @property
    def tier(self) -> Tier:
        if self._tier is None:
            self._tier = model_tier(self.model_id, self._price_provider)
        return self._tier

    @property
    def profile(self) -> ModelProfile:
        return self._profile or TIER_PROFILES[self.tier]

    def __repr__(self) -> str:
        return f"SimulatedClient(model_id={self.model_id!r}, tier={self._tier!r})"

    def plan(self, request: Request) -> tuple[list[tuple[str, int]], float, float, str]:
        """What :meth:`stream` will send: (text, tokens) chunks, ttft (s), tokens/s, finish."""
        prompt = _prompt_text(request)
        rng = random.Random(_seed(self.model_id, prompt) ^ 0x5EED)
        tokens = sim_tokenize(simulated_answer(self.model_id, prompt, self.tier))
        reason = "stop"
        if request.max_tokens is not None and len(tokens) > request.max_tokens:
            tokens = tokens[: max(0, request.max_tokens)]
            reason = "length"
        chunks: list[tuple[str, int]] = []
        i = 0
        while i < len(tokens):
            piece = tokens[i : i + rng.randint(1, 3)]
            chunks.append(("".join(piece), len(piece)))
            i += len(piece)
        ttft = self.profile.ttft_ms / 1000.0 * rng.uniform(0.85, 1.15)
        rate = max(1e-3, self.profile.tokens_per_s * rng.uniform(0.9, 1.1))
        return chunks, ttft, rate, reason

    @staticmethod
    def input_tokens(request: Request) -> int:
        return sum(len(sim_tokenize(m.content)) + 4 for m in request.messages)

    async def stream(self, request: Request, timeouts: Timeouts) -> AsyncIterator[ProviderEvent]:
        if self._tier is None:
            await asyncio.to_thread(lambda: self.tier)
        chunks, ttft, rate, reason = self.plan(request)
        ttft /= self.speed
        rate *= self.speed
        yield Started(t=time.perf_counter(), model=self.model_id, simulated=True)
        if ttft > timeouts.first_token:
            await asyncio.sleep(timeouts.first_token)
            yield StreamError(
                t=time.perf_counter(),
                kind="timeout",
                message=(
                    f"first_token timeout: no token from {self.model_id} (simulated) within "
                    f"{timeouts.first_token:g}s"
                ),
            )
            return
        loop = asyncio.get_running_loop()
        await asyncio.sleep(ttft)
        first = loop.time()
        sent = 0
        for text, n in chunks:
            delay = first + sent / rate - loop.time()
            await asyncio.sleep(delay if delay > 0 else 0)
            sent += n
            yield TextDelta(t=time.perf_counter(), text=text)
        yield UsageReport(
            t=time.perf_counter(),
            input_tokens=self.input_tokens(request),
            output_tokens=sent,
        )
        yield Finished(t=time.perf_counter(), reason=reason)
