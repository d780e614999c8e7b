"""The live token estimate is a floor (tui/router/run/token_floor.py): it stays under real token
counts, never drops as text streams in whatever chunks, and so the tokens and cost a side shows
only rise until they reach the provider's figures.

Real counts here are OpenAI's o200k and cl100k, measured with the ``bpe-openai`` package (not a
dependency: tests/bench/bench_token_estimate.py measures with it when installed), and the
simulator's own tokenizer. Runs go through the real OpenAI and Anthropic protocols on the loopback
fake server, and through the simulator.
"""

from __future__ import annotations

import random
import tomllib

import pytest
from fakeserver import FakeServer, Reply, fake_server  # noqa: F401  (fake_server is a fixture)

from tui.router.providers.simulated import sim_tokenize, simulated_answer
from tui.router.run.metrics import estimate_tokens
from tui.router.run.session import Session
from tui.router.run.token_floor import TokenFloor, token_floor
from tui.router.table.load import load_table
from tui.router.table.paths import default_routes_path

# (text, cl100k count, o200k count), measured with bpe-openai 0.1.4.
MEASURED = [
    ("See https://example.com/path?q=1&x=2 for details.", 16, 16),
    ("Don't stop: it's (almost) done, isn't it?", 15, 12),
    ('{"id": 12345678, "ok": true, "tags": ["a", "b"]}', 22, 23),
    ("def f(x):\n    return x ** 2  # square\n", 14, 14),
    ("self.assertEqual(foo_bar.baz(), [1, 2, 3])", 16, 17),
    ("我的程序一运行就报错：IndexError: list index out of range，是什么意思", 24, 18),
    ("こんにちは、お元気ですか？今日はいい天気ですね。", 19, 13),
    ("안녕하세요, 만나서 반갑습니다.", 14, 9),
    ("Привет, как дела? Всё хорошо.", 17, 9),
    ("नमस्ते, आप कैसे हैं?", 20, 9),
    ("Total: 1,234,567.89 USD (2026-12-05)", 19, 19),
    ("🙂🙂 great!!! ---- ====", 8, 6),
    ("Ünïcödé naïve café résumé", 13, 9),
    ("The quick brown fox jumps over the lazy dog.", 10, 10),
]

# Answers of each kind, with their o200k counts (measured as above): what a provider would report.
PROSE = (
    "Routing sends each prompt to the cheapest model that handles its kind of task well. "
    "A classifier labels the prompt, a table maps the label and the priority to a model, and "
    "a frontier baseline runs beside it, so that you can see what the routed answer costs "
    "against what the expensive one would have cost. Most everyday questions, summaries and "
    "extractions need nothing more than a small, fast model; proofs, tricky refactors and "
    "long creative pieces are where the larger models still earn their price."
)
CODE = (
    "```python\ndef reverse(head: Node | None) -> Node | None:\n    prev = None\n"
    "    while head is not None:\n        head.next, prev, head = prev, head, head.next\n"
    "    return prev\n```\n\nEach step moves one node from the old list to the front of the new one."
)
JSON = (
    '{"invoice": "INV-20931", "date": "2026-12-05", "customer": {"name": "Ada Lovelace", '
    '"email": "ada@example.com"}, "lines": [{"sku": "A-100", "qty": 3, "price": 19.99}, '
    '{"sku": "B-220", "qty": 1, "price": 249.0}], "total": 308.97, "paid": false}'
)
CJK = (
    "要反转一个单链表，最常见的方法是迭代：用三个指针分别指向前一个节点、当前节点和下一个节点。"
    "每一步先保存下一个节点，再把当前节点的指针指向前一个节点，然后整体向前移动一步。当当前节点为空"
    "时，前一个节点就是新的头节点。这个方法的时间复杂度是 O(n)，空间复杂度是 O(1)。"
)
ANSWERS = {"prose": (PROSE, 98), "code": (CODE, 66), "json": (JSON, 100), "cjk": (CJK, 92)}


def chunked(text: str, rng: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 6)
        out.append(text[i : i + n])
        i += n
    return out


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("   \n\n\t", 0),
        ("hello", 1),
        ("hello world", 2),
        ("don't", 1),  # an apostrophe inside a word
        ("(foo) ", 2),  # "(" glued to the word, ")" a run of its own
        ("a == b", 3),
        ("1234567", 3),  # digits in threes
        ("v2.0", 4),  # "v", "2", ".", "0": a "." before digits is not glued to them
        ("你好世界啊", 1),  # five CJK characters: one token per three
        ("你好，世界", 1),  # "，" glued to the characters after it
        ("end.", 1),  # a run still open at the end is not counted yet
    ],
)
def test_counts_what_every_tokenizer_spends_a_token_on(text, expected):
    assert token_floor(text) == expected


@pytest.mark.parametrize(("text", "cl100k", "o200k"), MEASURED)
def test_stays_under_real_tokenizers_on_text_of_every_kind(text, cl100k, o200k):
    assert token_floor(text) <= min(cl100k, o200k)


@pytest.mark.parametrize("kind", sorted(ANSWERS))
def test_stays_under_o200k_on_whole_answers_where_chars_over_4_did_not(kind):
    text, o200k = ANSWERS[kind]
    assert token_floor(text) <= o200k
    if kind == "prose":
        assert estimate_tokens(len(text)) > o200k  # what the panes showed: 126 for 98


def test_the_count_is_the_same_however_the_text_is_chunked_and_never_drops():
    rng = random.Random(15)
    texts = [text for text, _ in ANSWERS.values()] + [t for t, _, _ in MEASURED]
    texts.append(simulated_answer("openai/gpt-5-mini", "list ideas for a python cli", "mid"))
    for text in texts:
        for _ in range(5):
            floor, last = TokenFloor(), 0
            for piece in chunked(text, rng):
                count = floor.feed(piece).count
                assert count >= last, (text, piece)
                last = count
            assert last == token_floor(text), text


def test_stays_under_the_simulators_count_on_its_answers_and_on_prompts_in_every_language():
    table = tomllib.loads(default_routes_path().read_text(encoding="utf-8"))
    prompts = [e for task in table["tasks"].values() for e in task["examples"][::7]]
    assert len(prompts) > 300
    answers = [
        simulated_answer(model, prompt, tier)
        for prompt in prompts[::20]
        for model, tier in (("openai/gpt-5-mini", "cheap"), ("anthropic/claude-opus-4-5", "frontier"))
    ]
    over = [t for t in prompts + answers if token_floor(t) > len(sim_tokenize(t))]
    assert over == []
    # chars/4 overshot most of the simulator's answers (the pane showed ~777, then 693).
    assert sum(estimate_tokens(len(a)) > len(sim_tokenize(a)) for a in answers) > len(answers) / 2


# ---------------------------------------------------------------------------------------------
# A run's figures: tokens and cost only rise, and end at the provider's
# ---------------------------------------------------------------------------------------------

ROUTED = "anthropic/claude-haiku-4-5"
BASELINE = "openai/gpt-5.2"
PROMPT = "Explain how you would answer this, briefly."


async def figures_of_a_run(session: Session) -> tuple[dict, object]:
    """Every side's (input tokens, output tokens, cost) after each event, and the PairResult."""
    decision = session.decide(PROMPT)
    run = session.start(decision, model=ROUTED, baseline=BASELINE)
    seen: dict[str, list[tuple[int, int, float]]] = {"routed": [], "baseline": []}
    async with run:
        async for ev in run:
            snap = run.metrics[ev.side].snapshot()
            seen[ev.side].append((snap.input_tokens, snap.output_tokens, snap.cost_usd))
    return seen, run.result


def assert_rising_to(seen: list[tuple[int, int, float]], side) -> None:
    for before, after in zip(seen, seen[1:], strict=False):
        assert after[0] >= before[0] and after[1] >= before[1], (before, after)
        assert after[2] >= before[2], (before, after)
    assert not side.usage_estimated
    assert seen[-1] == (side.input_tokens, side.output_tokens, side.cost_usd)


@pytest.mark.parametrize("kind", sorted(ANSWERS))
async def test_live_tokens_and_cost_never_drop_and_end_at_the_providers_usage(
    kind, fake_server: FakeServer  # noqa: F811
):
    text, o200k = ANSWERS[kind]
    chunks = chunked(text, random.Random(kind))
    reply = Reply.ok(chunks=chunks, input_tokens=19, output_tokens=o200k)
    fake_server.route("claude-haiku-4-5", reply).route("gpt-5.2", reply)
    env = {
        "OPENAI_API_KEY": "sk-test-floor-0123456789",
        "OPENAI_BASE_URL": fake_server.openai_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-floor-0123456789",
        "ANTHROPIC_BASE_URL": fake_server.anthropic_url,
    }
    session = Session(table=load_table(default_routes_path()), env=env)
    seen, pair = await figures_of_a_run(session)
    for side in ("routed", "baseline"):
        result = getattr(pair, side)
        assert result.text == text and not result.simulated
        assert (result.input_tokens, result.output_tokens) == (19, o200k)
        assert len(seen[side]) > 20  # a figure after each of many chunks
        assert_rising_to(seen[side], result)


async def test_a_simulated_run_never_shows_more_than_the_simulator_reports():
    session = Session(
        table=load_table(default_routes_path()), env={"ROUTEDECK_SIM_SPEED": "1000"}
    )
    seen, pair = await figures_of_a_run(session)
    for side in ("routed", "baseline"):
        result = getattr(pair, side)
        assert result.simulated and result.output_tokens > 100
        assert_rising_to(seen[side], result)
