"""tui.router.cost: workload files, cost projection, what-if replay, threshold sweep,
verdicts per cell. Costs are checked by hand against the price library's per-token prices."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from small_examples import EXAMPLES as SMALL_EXAMPLES

from tui.router.cost.classified import WorkloadOptions, classify_prompts, classify_workload
from tui.router.cost.pricing import cost_usd, price_per_mtok
from tui.router.cost.projection import project, reproject
from tui.router.cost.sweep import VerdictStats, cell_verdicts, threshold_sweep
from tui.router.cost.workload import (
    DEFAULT_OUTPUT_TOKENS,
    UNKNOWN_TASK_OUTPUT_TOKENS,
    WorkloadError,
    WorkloadItem,
    estimate_tokens,
    read_workload,
)
from tui.router.table.load import table_from_dict
from tui.router.types import (
    Cell,
    Classification,
    Decision,
    PairResult,
    RoutingTable,
    RunResult,
)

MINI = "openai/gpt-5-mini"  # 0.25 / 2.00 USD per million tokens (in / out)
BIG = "openai/gpt-5.2"  # 1.75 / 14.00
HAIKU = "anthropic/claude-haiku-4-5"  # 1.00 / 5.00
NO_PRICE = "openai/not-a-real-model-xyz"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEDECK_CACHE_DIR", str(tmp_path / "cache"))


EXAMPLES = SMALL_EXAMPLES


def mini_doc(**cells: str) -> dict:
    """A small routing table: four task types, two priorities, the cheap model everywhere."""
    tasks = {
        name: {"description": f"{name} prompts", "examples": ex} for name, ex in EXAMPLES.items()
    }
    tasks["code"]["rules"] = ["```"]
    routes = {
        t: {p: {"primary": cells.get(f"{t}.{p}", MINI)} for p in ("default", "quality")}
        for t in EXAMPLES
    }
    return {
        "baseline": {"model": BIG},
        "classifier": {"kind": "local", "threshold": 0.5, "uncertain_route": "baseline"},
        "priorities": {"default": {}, "quality": {"cues": ["production", "critical"]}},
        "providers": {
            "openai": {"kind": "openai-compatible", "base_url": "https://api.openai.com/v1",
                       "api_key_env": "OPENAI_API_KEY"},
            "anthropic": {"kind": "anthropic", "base_url": "https://api.anthropic.com",
                          "api_key_env": "ANTHROPIC_API_KEY"},
            "perplexity": {"kind": "openai-compatible", "base_url": "https://api.perplexity.ai",
                           "api_key_env": "PERPLEXITY_API_KEY"},
        },
        "routes": routes,
        "tasks": tasks,
    }


def mini_table(**cells: str) -> RoutingTable:
    return table_from_dict(mini_doc(**cells))


class FakeClassifier:
    """Answers from a dict prompt -> (label, confidence) and counts its calls."""

    name = "fake"

    def __init__(self, answers: dict[str, tuple[str, float | None]]):
        self.answers = answers
        self.calls = 0

    def classify(self, prompt: str) -> Classification:
        self.calls += 1
        label, conf = self.answers[prompt]
        return Classification(label, conf, ((label, conf or 0.0),), "fake", "fake", 0.0)


def test_the_library_prices_these_tests_were_checked_with() -> None:
    # The hand-checked figures below use these prices; if the price data changes, update them.
    assert price_per_mtok(MINI) == (0.25, 2.0)
    assert price_per_mtok(BIG) == (1.75, 14.0)
    assert price_per_mtok(HAIKU) == (1.0, 5.0)
    assert cost_usd(NO_PRICE, 10, 10) is None


# --------------------------------------------------------------------------------------------
# The workload file
# --------------------------------------------------------------------------------------------


def test_read_workload_fields_blank_lines_bom_and_raw_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    lines = [
        json.dumps({"prompt": "who invented the telephone", "task_type": "factual"}),
        "",
        json.dumps({"prompt": "a\u2028b", "output_tokens": 120, "id": 7}, ensure_ascii=False),
        json.dumps({"prompt": "write a poem", "task_type": None, "priority": "quality"}),
    ]
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode("utf-8") + b"\r\n")
    items = read_workload(path)
    assert [(i.prompt, i.task_type, i.output_tokens, i.priority, i.line) for i in items] == [
        ("who invented the telephone", "factual", None, None, 1),
        ("a\u2028b", None, 120, None, 3),
        ("write a poem", None, None, "quality", 4),
    ]


def test_every_bad_line_is_reported_at_once_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"prompt": "fine"}\n'
        b"not json\n"
        b'{"task_type": "code"}\n'
        b'{"prompt": "   "}\n'
        b'["prompt"]\n'
        b'{"prompt": "x", "output_tokens": -3}\n'
        b'{"prompt": "x", "output_tokens": "many", "task_type": 5}\n'
        b'{"prompt": "\xff\xfe"}\n'
        b'{"prompt": "also fine", "output_tokens": 12.0}\n'
    )
    with pytest.raises(WorkloadError) as info:
        read_workload(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert [line for line, _ in err.problems] == [2, 3, 4, 5, 6, 7, 8]
    text = str(err)
    for n in (2, 3, 4, 5, 6, 7, 8):
        assert f"bad.jsonl:{n}: " in text
    assert "not JSON" in text and "'prompt' is missing" in text and "'prompt' is empty" in text
    assert "must not be negative" in text and "'task_type'" in text and "not UTF-8" in text


def test_empty_and_missing_workloads(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(WorkloadError, match="no prompts"):
        read_workload(empty)
    with pytest.raises(WorkloadError, match="cannot read"):
        read_workload(tmp_path / "missing.jsonl")


def test_input_tokens_are_an_estimate_of_chars_over_four() -> None:
    assert estimate_tokens("x" * 40) == 10
    assert estimate_tokens("x" * 41) == 11
    assert estimate_tokens("x") == 1


# --------------------------------------------------------------------------------------------
# Projection, checked by hand
# --------------------------------------------------------------------------------------------

P_CODE = "c" * 40  # 10 input tokens
P_MATH = "m" * 80  # 20 input tokens
P_POEM = "p" * 400  # 100 input tokens
P_UNSURE = "u" * 40  # 10 input tokens, low confidence


def hand_workload() -> tuple[list[WorkloadItem], FakeClassifier]:
    items = [
        WorkloadItem(P_CODE, task_type="code", output_tokens=100),
        WorkloadItem(P_MATH, task_type="code", output_tokens=50),  # mislabelled by the "model"
        WorkloadItem(P_POEM, task_type="creative"),  # output from the defaults: 700
        WorkloadItem(P_UNSURE, task_type="factual", output_tokens=10),
    ]
    fake = FakeClassifier({
        P_CODE: ("code", 0.9),
        P_MATH: ("math", 0.8),
        P_POEM: ("creative", 0.95),
        P_UNSURE: ("factual", 0.3),  # below the 0.5 threshold -> the baseline
    })
    return items, fake


def test_projection_by_hand() -> None:
    table = mini_table(**{"creative.default": HAIKU})
    items, fake = hand_workload()
    p = project(items, table, fake)

    code_routed = 10 * 0.25e-6 + 100 * 2e-6  # gpt-5-mini
    code_base = 10 * 1.75e-6 + 100 * 14e-6  # gpt-5.2
    math_routed = 20 * 0.25e-6 + 50 * 2e-6
    math_base = 20 * 1.75e-6 + 50 * 14e-6
    poem_routed = 100 * 1e-6 + 700 * 5e-6  # claude-haiku-4-5, 700 default output tokens
    poem_base = 100 * 1.75e-6 + 700 * 14e-6
    unsure = 10 * 1.75e-6 + 10 * 14e-6  # uncertain: the baseline on both sides

    assert p.n == 4
    assert p.by_task["code"].count == 1
    assert p.by_task["code"].routed_usd == pytest.approx(code_routed, rel=1e-12)
    assert p.by_task["code"].baseline_usd == pytest.approx(code_base, rel=1e-12)
    assert p.by_task["math"].routed_usd == pytest.approx(math_routed, rel=1e-12)
    assert p.by_task["creative"].routed_usd == pytest.approx(poem_routed, rel=1e-12)
    assert p.by_task["creative"].baseline_usd == pytest.approx(poem_base, rel=1e-12)
    assert p.by_task["factual"].routed_usd == pytest.approx(unsure, rel=1e-12)
    assert p.by_task["factual"].savings_pct == pytest.approx(0.0, abs=1e-9)
    routed = code_routed + math_routed + poem_routed + unsure
    base = code_base + math_base + poem_base + unsure
    assert p.routed_usd == pytest.approx(routed, rel=1e-12)
    assert p.baseline_usd == pytest.approx(base, rel=1e-12)
    assert p.savings_pct == pytest.approx(100 * (base - routed) / base, rel=1e-12)
    assert p.unpriced == 0
    assert p.n_uncertain == 1
    assert p.accuracy == pytest.approx(3 / 4)
    assert p.output_tokens_sources == {"item": 3, "default": 1}
    assert p.input_tokens_estimated is True
    assert fake.calls == 4

    rows = {r.task: r for r in p.rows}
    assert rows["factual"].uncertain and rows["factual"].model == BIG
    assert rows["creative"].model == HAIKU and rows["creative"].output_tokens == 700
    assert rows["code"].input_tokens == 10 and rows["code"].confidence == 0.9
    # The per-row costs are what pricing.cost_usd says for that call.
    for r in p.rows:
        assert r.routed_usd == pytest.approx(
            cost_usd(r.model, r.input_tokens, r.output_tokens), rel=1e-12
        )
        assert r.baseline_usd == pytest.approx(
            cost_usd(BIG, r.input_tokens, r.output_tokens), rel=1e-12
        )

    cum = p.cumulative()
    assert [c[0] for c in cum] == [1, 2, 3, 4]
    assert cum[-1][1] == pytest.approx(routed) and cum[-1][2] == pytest.approx(base)
    assert p.cumulative(points=2)[-1] == cum[-1]

    doc = p.as_json()
    assert {"n", "by_task", "routed_usd", "baseline_usd", "savings_pct"} <= set(doc)
    assert set(doc["by_task"]["code"]) >= {"count", "routed_usd", "baseline_usd"}
    json.dumps(doc)  # serialisable


def test_output_tokens_come_from_the_item_then_the_run_log_then_the_defaults() -> None:
    table = mini_table()
    prompts = {"a" * 8: ("code", 0.9), "b" * 8: ("math", 0.9), "c" * 8: ("poetry", 0.9)}
    fake = FakeClassifier(prompts)
    items = [WorkloadItem(p) for p in prompts] + [WorkloadItem("a" * 8, output_tokens=5)]
    classified = classify_workload(
        items, table, fake, options=WorkloadOptions(output_tokens_by_task={"code": 123.4})
    )
    assert [(c.output_tokens, c.output_source) for c in classified] == [
        (123, "runlog"),
        (DEFAULT_OUTPUT_TOKENS["math"], "default"),
        (UNKNOWN_TASK_OUTPUT_TOKENS, "default"),
        (5, "item"),
    ]
    assert fake.calls == 3  # the repeated prompt was classified once
    flat = classify_workload(
        items, table, fake, options=WorkloadOptions(default_output_tokens=77)
    )
    assert [c.output_tokens for c in flat] == [77, 77, 77, 5]
    again = classified.with_output_tokens(None, 10)
    assert [c.output_tokens for c in again] == [10, 10, 10, 5]


def test_models_without_a_price_are_counted_unpriced_never_invented() -> None:
    table = mini_table(**{"math.default": NO_PRICE})
    items, fake = hand_workload()
    p = project(items, table, fake)
    assert p.unpriced == 1
    assert p.by_task["math"].unpriced == 1
    assert p.by_task["math"].routed_usd == 0.0 and p.by_task["math"].baseline_usd == 0.0
    math_row = next(r for r in p.rows if r.task == "math")
    assert math_row.routed_usd is None and math_row.model == NO_PRICE
    assert math_row.baseline_usd is not None
    # The priced prompts' sums are unchanged by the unpriced one.
    full = project(items, mini_table(), FakeClassifier(fake.answers))
    assert p.baseline_usd == pytest.approx(full.baseline_usd - full.by_task["math"].baseline_usd)


def test_per_request_fees_and_long_context_tiers_are_priced_by_the_library() -> None:
    huge = "h" * 1_000_000  # 250,000 input tokens: above the 200k long-context tier
    table = mini_table(**{"factual.default": "perplexity/sonar",
                          "creative.default": "anthropic/claude-sonnet-4-5"})
    fake = FakeClassifier({"q" * 40: ("factual", 0.9), huge: ("creative", 0.9)})
    p = project([WorkloadItem("q" * 40, output_tokens=30),
                 WorkloadItem(huge, output_tokens=10)], table, fake)
    rows = p.rows
    assert rows[0].routed_usd == pytest.approx(cost_usd("perplexity/sonar", 10, 30), rel=1e-12)
    assert cost_usd("perplexity/sonar", 0, 0) > 0  # a per-request fee is part of it
    assert rows[1].routed_usd == pytest.approx(
        cost_usd("anthropic/claude-sonnet-4-5", 250_000, 10), rel=1e-12
    )
    assert rows[1].baseline_usd == pytest.approx(cost_usd(BIG, 250_000, 10), rel=1e-12)


# --------------------------------------------------------------------------------------------
# What-if: reproject without re-classifying
# --------------------------------------------------------------------------------------------


def test_reproject_after_editing_a_cell_changes_that_tasks_cost_only() -> None:
    table = mini_table()
    items, fake = hand_workload()
    before = project(items, table, fake)
    edited = table.with_cell("code", "default", Cell(primary=HAIKU))
    after = reproject(before.classified, edited)
    assert fake.calls == 4  # not classified again
    assert after.by_task["code"].routed_usd == pytest.approx(10 * 1e-6 + 100 * 5e-6, rel=1e-12)
    assert after.by_task["code"].routed_usd != before.by_task["code"].routed_usd
    for task in ("math", "creative", "factual"):
        assert after.by_task[task] == before.by_task[task]
    assert after.baseline_usd == before.baseline_usd
    # A cell of another priority is not used by these prompts: nothing changes.
    other = reproject(before.classified, table.with_cell("code", "quality", Cell(primary=HAIKU)))
    assert other.by_task == before.by_task


def test_threshold_and_uncertain_route_in_reproject() -> None:
    table = mini_table()
    items, fake = hand_workload()
    classified = classify_workload(items, table, fake)
    assert reproject(classified, table, threshold=0.0).n_uncertain == 0
    assert reproject(classified, table, threshold=0.85).n_uncertain == 2  # 0.3 and 0.8
    to_creative = replace(table, classifier=replace(table.classifier, uncertain_route="creative"))
    p = reproject(classified, to_creative.with_cell("creative", "default", Cell(primary=HAIKU)))
    unsure = next(r for r in p.rows if r.task == "factual")
    assert unsure.uncertain and unsure.routed_task == "creative" and unsure.model == HAIKU
    assert fake.calls == 4
    assert classified.matches(table)
    assert not classified.matches(replace(table, tasks={"code": table.tasks["code"]}))


def test_threshold_sweep_share_uncertain_is_monotonic_and_accuracy_counts_confident_ones() -> None:
    table = mini_table()
    items, fake = hand_workload()
    classified = classify_workload(items, table, fake)
    points = threshold_sweep(classified, table)
    assert [pt.threshold for pt in points] == [round(i * 0.05, 2) for i in range(21)]
    shares = [pt.share_uncertain for pt in points]
    assert shares == sorted(shares)
    assert shares[0] == 0.0 and shares[-1] == 1.0
    at = {pt.threshold: pt for pt in points}
    # 0.5: only the 0.3 prompt is unsure; of the 3 confident labelled ones, 2 are right.
    assert at[0.5].n_uncertain == 1 and at[0.5].accuracy_confident == pytest.approx(2 / 3)
    assert at[0.85].n_uncertain == 2 and at[0.85].accuracy_confident == pytest.approx(1.0)
    assert at[0.0].accuracy_confident == pytest.approx(3 / 4)
    assert at[1.0].accuracy_confident is None and at[1.0].n_confident_labelled == 0
    # Everything to the baseline: no savings.
    assert at[1.0].routed_usd == pytest.approx(at[1.0].baseline_usd)
    costs = [pt.routed_usd for pt in points]
    assert costs == sorted(costs)  # the baseline is the dearest model here
    assert at[0.5].routed_usd == pytest.approx(reproject(classified, table).routed_usd)


# --------------------------------------------------------------------------------------------
# The batch classification path equals the classifier's own answers
# --------------------------------------------------------------------------------------------


def test_batch_classification_matches_the_classifier(tmp_path: Path) -> None:
    from tui.router.classifier.build import build_classifier

    table = mini_table()
    classifier = build_classifier(table, directory=tmp_path / "models")
    prompts = [
        "write a poem about a cat",
        "what is 12 times 13",
        "who discovered penicillin",
        "```\nprint('hi')\n```\nwhy does this print hi",
        "my python script throws KeyError",
        "zzz qqq",  # no known token
        "write a poem about a cat",  # repeated
        "x" * 20_000,
    ]
    got = classify_prompts(prompts, classifier)
    for prompt, c in zip(prompts, got, strict=True):
        want = classifier.inner.classify(prompt)
        assert c.label == want.label and c.classifier == want.classifier
        assert c.confidence == pytest.approx(want.confidence, abs=1e-12)
        assert [lab for lab, _ in c.top] == [lab for lab, _ in want.top]
    assert got[3].classifier == "rule" and got[3].label == "code"
    seen: list[tuple[int, int]] = []
    classify_prompts(prompts, classifier, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (7, 7)


def test_batch_path_steps_aside_when_the_classifier_computes_differently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.router.classifier.build import build_classifier
    from tui.router.classifier.local import LocalClassifier

    classifier = build_classifier(mini_table(), directory=tmp_path / "models")
    original = LocalClassifier.classify

    def changed(self: LocalClassifier, prompt: str) -> Classification:
        return replace(original(self, prompt), label="math", confidence=0.42)

    monkeypatch.setattr(LocalClassifier, "classify", changed)
    got = classify_prompts(["write a poem about a cat", "who wrote hamlet"], classifier)
    assert [(c.label, c.confidence) for c in got] == [("math", 0.42), ("math", 0.42)]


def test_project_with_the_real_classifier_and_demo_workload_shape(tmp_path: Path) -> None:
    from tui.router.classifier.build import build_classifier

    table = mini_table()
    classifier = build_classifier(table, directory=tmp_path / "models")
    items = [WorkloadItem(ex, task_type=task) for task, exs in EXAMPLES.items() for ex in exs]
    p = project(items, table, classifier)
    assert p.n == len(items) == sum(t.count for t in p.by_task.values())
    assert p.n_labelled == len(items) and p.accuracy is not None and p.accuracy > 0.7
    assert math.isfinite(p.routed_usd) and p.routed_usd < p.baseline_usd


# --------------------------------------------------------------------------------------------
# Verdicts per cell
# --------------------------------------------------------------------------------------------


def _pair(task: str, priority: str, primary: str, *, uncertain: bool = False) -> PairResult:
    c = Classification(task, 0.9, ((task, 0.9),), "local", "test", 1.0)
    d = Decision("a prompt", c, task, priority, "default", Cell(primary), uncertain, "test")

    def side(which: str, model: str) -> RunResult:
        return RunResult(which, model, True, "answer", 10.0, 20.0, 5, 7, False, 0.001)

    return PairResult(d, side("routed", primary), side("baseline", BIG), 30.0)


def test_cell_verdicts_counts_per_cell(tmp_path: Path) -> None:
    from tui.router.log.runlog import RunLog, RunLogError

    table = mini_table()
    when = datetime(2026, 1, 2, tzinfo=UTC)
    with RunLog(tmp_path / "runs.sqlite3") as log:
        verdicts = [
            (("code", "default", MINI), "routed"),
            (("code", "default", MINI), "tie"),
            (("code", "default", MINI), "baseline"),
            (("code", "default", HAIKU), "routed"),  # an older model of the same cell
            (("math", "quality", MINI), "tie"),
        ]
        for (task, prio, model), verdict in verdicts:
            run = log.record(_pair(task, prio, model), when=when)
            log.set_verdict(run, verdict, when=when)
        log.record(_pair("creative", "default", MINI), when=when)  # no verdict
        unsure = log.record(_pair("factual", "default", BIG, uncertain=True), when=when)
        log.set_verdict(unsure, "tie", when=when)  # sent to the baseline: no cell judged

        stats = cell_verdicts(log, table)
        assert stats[("code", "default")] == VerdictStats(n=4, wins=2, ties=1, losses=1)
        assert stats[("code", "default")].win_or_tie_rate == pytest.approx(3 / 4)
        assert stats[("math", "quality")] == VerdictStats(n=1, wins=0, ties=1, losses=0)
        assert stats[("creative", "default")].n == 0
        assert stats[("creative", "default")].win_or_tie_rate is None
        assert stats[("factual", "default")].n == 0
        assert set(table.routes) <= set(stats)

        current = cell_verdicts(log.path, table, current_models_only=True)
        assert current[("code", "default")] == VerdictStats(n=3, wins=1, ties=1, losses=1)

    # Read back after the log is closed (read-only), and with no file at all.
    assert cell_verdicts(tmp_path / "runs.sqlite3", table)[("code", "default")].n == 4
    assert cell_verdicts(tmp_path / "none.sqlite3", table)[("code", "default")].n == 0
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RunLogError, match="cannot read the verdicts"):
        cell_verdicts(junk, table)
