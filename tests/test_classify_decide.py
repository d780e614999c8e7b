"""From classification to route: rules (applied first), priority cues, the routing decision, and
the LLM classifier with a fake provider."""

from __future__ import annotations

from dataclasses import replace

import classify_helpers
import numpy as np
import pytest
from classify_helpers import SYNTHETIC, make_table

from tui.router.classifier.build import build_classifier
from tui.router.classifier.llm import LLMClassifier
from tui.router.classifier.local import CachingClassifier, LocalClassifier, RuleClassifier
from tui.router.table.decide import decide, infer_priority
from tui.router.types import Cell, Finished, Started, StreamError, TextDelta, UsageReport

# The shared fixtures, bound by name so pytest finds them here (imported, ruff would read
# every test argument of the same name as a redefinition, F811).
_cache_dir = classify_helpers._cache_dir
synthetic_table = classify_helpers.synthetic_table
synthetic_trained = classify_helpers.synthetic_trained
default_table = classify_helpers.default_table
default_classifier = classify_helpers.default_classifier


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


def test_rules_are_applied_first_and_named(synthetic_table, synthetic_trained):
    rc = RuleClassifier.from_table(synthetic_table, LocalClassifier(synthetic_trained.model))
    c = rc.classify("write a poem about this:\n```\nprint('hello')\n```")
    assert c.label == "code"
    assert c.classifier == "rule"
    assert c.confidence == 1.0
    assert c.top == (("code", 1.0),)
    assert c.reason == "rule code: fenced code block"
    # No rule matches: the inner classifier answers.
    assert rc.classify("write a poem about the moon").classifier == "local"


def test_rule_without_friendly_name_shows_what_it_matched(synthetic_trained):
    rc = RuleClassifier([("math", r"\\frac\{\d+\}")], LocalClassifier(synthetic_trained.model))
    c = rc.classify(r"simplify \frac{12}{18} please")
    assert c.label == "math"
    assert "\\frac{12}" in c.reason


def test_invalid_rule_names_the_task(synthetic_trained):
    with pytest.raises(ValueError, match=r"tasks\.code\.rules"):
        RuleClassifier([("code", "(unclosed")], LocalClassifier(synthetic_trained.model))


def test_default_table_rules_catch_tracebacks_and_fences(default_classifier):
    c = default_classifier.classify(
        'Traceback (most recent call last):\n  File "a.py", line 1\nNameError: x'
    )
    assert (c.label, c.classifier) == ("code", "rule")


def test_default_code_rule_leaves_maths_written_like_code_to_the_model(default_classifier):
    """'let x = 5' and 'function f(x) = ...' open maths prompts too; the code rule takes a
    let/var line only with code punctuation on it, and a function header only with its body."""
    for prompt in ("let x = 5. what is 3x + 2?", "function f(x) = x^2 - 4x + 3. find its roots"):
        c = default_classifier.classify(prompt)
        assert (c.label, c.classifier) == ("math", "local"), (prompt, c)
    for prompt in ("let total = items.reduce((a, b) => a + b);", "function add(a, b) {\n  return a + b\n}",
                   "var count = 0;", "const API_URL = process.env.API_URL"):
        c = default_classifier.classify(prompt)
        assert (c.label, c.classifier) == ("code", "rule"), (prompt, c)


# --------------------------------------------------------------------------------------------
# Priority
# --------------------------------------------------------------------------------------------


def test_infer_priority(synthetic_table):
    t = synthetic_table
    assert infer_priority("this is URGENT, fix it", t) == ("latency", "cue: urgent")
    assert infer_priority("we go live tomorrow", t) == ("latency", "cue: live")
    assert infer_priority("tl;dr of this please", t) == ("latency", "cue: tl;dr")
    assert infer_priority("need it right   now please", t) == ("latency", "cue: right now")
    # Whole words only: "deliver", "alive", "productionise" are not cues.
    assert infer_priority("please deliver this parcel", t) == ("default", "default")
    assert infer_priority("is it alive", t) == ("default", "default")
    assert infer_priority("the productionised thing", t) == ("default", "default")
    assert infer_priority("deploy to production carefully", t) == ("quality", "cue: production")
    # Priorities are tried in table order: latency before quality.
    assert infer_priority("production is down, urgent", t)[0] == "latency"
    # Given wins, and must exist.
    assert infer_priority("urgent!", t, "quality") == ("quality", "given")
    with pytest.raises(ValueError, match="unknown priority"):
        infer_priority("x", t, "nope")
    assert infer_priority("hello", t) == (t.default_priority, "default")


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


def _classifier(table, trained):
    return CachingClassifier(
        RuleClassifier.from_table(table, LocalClassifier(trained.model))
    )


def test_decide_certain(synthetic_table, synthetic_trained):
    table = replace(synthetic_table, classifier=replace(synthetic_table.classifier, threshold=0.0))
    d = decide("write a poem about rain, urgent", table, _classifier(table, synthetic_trained))
    assert (d.task, d.priority, d.priority_reason) == ("creative", "latency", "cue: urgent")
    assert d.cell == table.cell("creative", "latency")
    assert d.uncertain is False
    assert "creative" in d.reason and "latency" in d.reason
    d = decide("```\nx\n```", table, _classifier(table, synthetic_trained), priority="quality")
    assert (d.task, d.priority, d.priority_reason) == ("code", "quality", "given")
    assert "rule code" in d.reason


def test_decide_uncertain_goes_to_baseline(synthetic_table, synthetic_trained):
    table = replace(synthetic_table, classifier=replace(synthetic_table.classifier, threshold=0.99))
    d = decide("hmm", table, _classifier(table, synthetic_trained))
    assert d.uncertain is True
    assert d.cell == Cell(primary="sim/frontier", fallback="sim/frontier-fb")
    conf = d.classification.confidence
    assert d.reason.endswith(f"low confidence {conf:.2f} < 0.99) → baseline")
    assert d.reason.startswith(f"{d.classification.label}? (")  # the guess, and why
    assert d.task == d.classification.label


def test_decide_uncertain_goes_to_a_task(synthetic_table, synthetic_trained):
    table = replace(
        synthetic_table,
        classifier=replace(synthetic_table.classifier, threshold=0.99, uncertain_route="factual"),
    )
    d = decide("hmm, asap", table, _classifier(table, synthetic_trained))
    assert d.uncertain is True
    assert (d.task, d.priority) == ("factual", "latency")
    assert d.cell == table.cell("factual", "latency")
    assert "low confidence" in d.reason and "→ factual / latency" in d.reason


def test_decide_with_rule_is_certain_even_at_high_threshold(synthetic_table, synthetic_trained):
    table = replace(synthetic_table, classifier=replace(synthetic_table.classifier, threshold=0.99))
    d = decide("```\nprint(1)\n```", table, _classifier(table, synthetic_trained))
    assert (d.uncertain, d.task) == (False, "code")


# --------------------------------------------------------------------------------------------
# The LLM classifier (a fake provider client)
# --------------------------------------------------------------------------------------------


class FakeClient:
    def __init__(self, events):
        self.events = events
        self.requests = []

    async def stream(self, request, timeouts):
        self.requests.append(request)
        for event in self.events:
            if isinstance(event, Exception):
                raise event
            yield event


def _llm(table, trained, events):
    client = FakeClient(events)
    local = LocalClassifier(trained.model)
    llm = LLMClassifier(client, "sim/tiny", list(table.tasks), local,
                          descriptions={n: t.description for n, t in table.tasks.items()})
    return llm, client


def test_llm_classifier_confidence_from_logprobs(synthetic_table, synthetic_trained):
    alternatives = (("math", np.log(0.6)), ("code", np.log(0.2)), ("The", np.log(0.15)),
                    ("fact", np.log(0.05)))
    llm, client = _llm(synthetic_table, synthetic_trained, [
        Started(0.0, "tiny", True),
        TextDelta(0.1, "math", logprobs=alternatives),
        UsageReport(0.2, 50, 1),
        Finished(0.2, "stop"),
    ])
    c = llm.classify("what is 2 + 2")
    assert (c.label, c.classifier) == ("math", "llm")
    # Renormalised over label names: 0.6 / (0.6 + 0.2 + 0.05).
    assert c.confidence == pytest.approx(0.6 / 0.85)
    assert [label for label, _ in c.top] == ["math", "code", "factual"]
    assert sum(p for _, p in c.top) == pytest.approx(1.0)
    request = client.requests[0]
    assert request.model == "tiny" and request.logprobs
    assert "what is 2 + 2" in request.messages[-1].content
    assert all(label in request.messages[0].content for label in synthetic_table.tasks)


def test_llm_classifier_without_logprobs_has_no_confidence(synthetic_table, synthetic_trained):
    llm, _ = _llm(synthetic_table, synthetic_trained, [
        Started(0.0, "tiny", True), TextDelta(0.1, " Creative."), Finished(0.2, "stop"),
    ])
    c = llm.classify("write a poem")
    assert (c.label, c.confidence, c.classifier) == ("creative", None, "llm")
    assert "no confidence" in c.reason
    # decide: no confidence from the LLM counts as certain, and says so.
    table = replace(synthetic_table, classifier=replace(synthetic_table.classifier, threshold=0.9))
    d = decide("write a poem", table, llm)
    assert d.uncertain is False and d.task == "creative"
    assert "llm gave no confidence, taken as certain" in d.reason


def test_llm_classifier_fails_open_to_local(synthetic_table, synthetic_trained):
    for events, why in [
        ([StreamError(0.1, "http", "server error", status=500)], "http: server error"),
        ([Started(0.0, "tiny", True), TextDelta(0.1, "banana"), Finished(0.2, "stop")],
         "answered"),
        ([RuntimeError("boom")], "boom"),
    ]:
        llm, _ = _llm(synthetic_table, synthetic_trained, events)
        c = llm.classify("solve 2x = 10")
        assert c.classifier == "fallback"
        assert c.reason.startswith("llm failed (") and why in c.reason
        assert c.label == "math"
        assert c.confidence is not None
    llm = LLMClassifier(None, "sim/tiny", ["math"], LocalClassifier(synthetic_trained.model))
    assert "no provider client" in llm.classify("solve 2x = 10").reason


async def test_llm_classifier_inside_an_event_loop(synthetic_table, synthetic_trained):
    llm, _ = _llm(synthetic_table, synthetic_trained, [TextDelta(0.1, "factual")])
    assert (await llm.aclassify("who wrote hamlet")).label == "factual"
    assert llm.classify("who wrote hamlet").label == "factual"  # from a helper thread


def test_build_classifier_llm_kind(tmp_path, synthetic_trained):
    table = make_table(SYNTHETIC, kind="llm")
    client = FakeClient([TextDelta(0.1, "code")])
    classifier = build_classifier(table, directory=tmp_path, llm_client=client)
    assert classifier.classify("hello world program").label == "code"
    assert build_classifier(table, directory=tmp_path).classify("hi").classifier == "fallback"
