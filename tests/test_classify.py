"""The classifier layer: rules, the local model (numpy inference == scikit-learn), the caches,
the LLM classifier with a fake provider, priority cues and the routing decision."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import textwrap
import unicodedata
from dataclasses import replace

import numpy as np
import pytest

from tui.router.classifier import cache as classifier_cache
from tui.router.classifier import features as F
from tui.router.classifier import split as S
from tui.router.classifier import words as W
from tui.router.classifier.build import build_classifier
from tui.router.classifier.cache import CACHE_ENV, cache_dir, cache_path, load_or_train
from tui.router.classifier.llm import LLMClassifier
from tui.router.classifier.local import (
    CachingClassifier,
    Classifier,
    LocalClassifier,
    RuleClassifier,
)
from tui.router.classifier.model import MIN_SHARE, LinearModel
from tui.router.classifier.training import (
    DEFAULT_PARAMS,
    Trained,
    augment,
    examples_by_label,
    fit_temperature,
    group_normalize,
    model_key,
    train,
    vocabularies,
)
from tui.router.table.decide import decide, infer_priority
from tui.router.types import (
    Baseline,
    Cell,
    ClassifierSettings,
    Finished,
    Priority,
    Provider,
    RoutingTable,
    Started,
    StreamError,
    TaskType,
    TextDelta,
    UsageReport,
)

# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

SYNTHETIC = {
    "code": [
        "write a python function that reverses a linked list",
        "why does my javascript fetch call return undefined",
        "fix this bug in my sql query that joins two tables",
        "how do I undo the last git commit",
        "my react component re-renders forever, what is wrong",
        "explain this rust borrow checker error",
        "write a bash script that renames all files in a folder",
        "what is the difference between a process and a thread",
    ],
    "math": [
        "solve 3x + 7 = 22 for x",
        "what is the derivative of x^3 sin x",
        "a train travels 300 km in 2.5 hours, what is its average speed",
        "what is 15% of 240",
        "prove that the square root of 2 is irrational",
        "integrate 1/(1+x^2) from 0 to 1",
        "how many ways can 5 people sit in a row",
        "probability of rolling two sixes with two dice",
    ],
    "creative": [
        "write a poem about the sea at night",
        "tell me a short story about a dragon who is afraid of fire",
        "write song lyrics about leaving home",
        "give me a funny limerick about a cat",
        "write a haiku about autumn leaves",
        "invent a slogan for a coffee shop",
        "write a bedtime story for a five year old",
        "compose a sonnet about lost love",
    ],
    "factual": [
        "what is the capital of australia",
        "who wrote pride and prejudice",
        "when did the second world war end",
        "how does photosynthesis work",
        "why is the sky blue",
        "what is the tallest mountain in africa",
        "who was the first person on the moon",
        "how far is the moon from earth",
    ],
}


def make_table(
    examples: dict[str, list[str]],
    *,
    rules: dict[str, tuple[str, ...]] | None = None,
    threshold: float = 0.2,
    uncertain_route: str = "baseline",
    kind: str = "local",
) -> RoutingTable:
    rules = rules or {}
    tasks = {
        name: TaskType(name, f"{name} prompts", tuple(ex), tuple(rules.get(name, ())))
        for name, ex in examples.items()
    }
    priorities = {
        "default": Priority("default"),
        "latency": Priority("latency", cues=("urgent", "asap", "live", "right now", "tl;dr")),
        "quality": Priority("quality", cues=("production", "carefully")),
    }
    routes = {
        (task, prio): Cell(f"sim/{task}-{prio}", f"sim/{task}-{prio}-fb")
        for task in tasks
        for prio in priorities
    }
    return RoutingTable(
        tasks=tasks,
        priorities=priorities,
        routes=routes,
        baseline=Baseline("sim/frontier", "sim/frontier-fb"),
        classifier=ClassifierSettings(
            kind=kind, threshold=threshold, uncertain_route=uncertain_route,
            llm_model="sim/tiny",
        ),
        providers={"sim": Provider("sim", "simulated")},
    )


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """Every test gets its own model cache folder (never the user's)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def synthetic_table() -> RoutingTable:
    return make_table(SYNTHETIC, rules={"code": ("```",)})


@pytest.fixture(scope="module")
def synthetic_trained(synthetic_table) -> Trained:
    return train(examples_by_label(synthetic_table))


@pytest.fixture(scope="module")
def default_table() -> RoutingTable:
    from tui.router.table.load import load_table

    return load_table()


@pytest.fixture(scope="module")
def default_classifier(default_table, tmp_path_factory) -> Classifier:
    directory = tmp_path_factory.mktemp("default-cache")
    return build_classifier(default_table, directory=directory)


def has_real_examples(table: RoutingTable) -> bool:
    return sum(len(t.examples) for t in table.tasks.values()) >= 300


# --------------------------------------------------------------------------------------------
# The local classifier
# --------------------------------------------------------------------------------------------


def test_local_classifier_learns_the_synthetic_table(synthetic_trained):
    local = LocalClassifier(synthetic_trained.model)
    assert set(local.labels) == set(SYNTHETIC)
    cases = {
        "write a python script that parses a csv file": "code",
        "solve 2x - 4 = 10": "math",
        "write a poem about the rain": "creative",
        "who wrote war and peace": "factual",
    }
    for prompt, label in cases.items():
        result = local.classify(prompt)
        assert result.label == label, (prompt, result)
        assert result.classifier == "local"
        assert result.reason.startswith("local classifier")
        assert result.cached is False
        assert result.elapsed_ms >= 0


def test_confidence_is_a_probability_and_top3_is_sorted(synthetic_trained):
    local = LocalClassifier(synthetic_trained.model)
    for prompt in ["write a poem", "what is 2+2", "hello there", "x", "why is the sky blue"]:
        c = local.classify(prompt)
        assert 0.0 <= c.confidence <= 1.0
        assert 1 <= len(c.top) <= 3
        probs = [p for _, p in c.top]
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) <= 1.0 + 1e-9
        assert c.top[0] == (c.label, c.confidence)
        assert len({label for label, _ in c.top}) == len(c.top)


def _sklearn_tfidf(trained, texts):
    """``texts`` through scikit-learn's TfidfVectorizer fitted as the model's was (same tokens,
    sublinear tf, smooth idf, min_df), columns in the model's order."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=lambda tokens: tokens, sublinear_tf=True, norm=None,
                                 min_df=DEFAULT_PARAMS.min_df)
    vectorizer.fit([F.tokens(t) for t in trained.texts])
    names = list(vectorizer.get_feature_names_out())
    assert sorted(names) == sorted(trained.model.vocab)
    order = [vectorizer.vocabulary_[t] for t in sorted(trained.model.vocab,
                                                        key=trained.model.vocab.get)]
    np.testing.assert_allclose(trained.model.idf, vectorizer.idf_[order], rtol=0, atol=1e-12)
    return vectorizer.transform([F.tokens(t) for t in texts])[:, order]


def test_own_tfidf_equals_sklearn_tfidf_vectorizer(synthetic_trained):
    trained = synthetic_trained
    model = trained.model
    expected = group_normalize(_sklearn_tfidf(trained, trained.texts), model.groups,
                                 model.group_weights)
    assert trained.matrix.shape == expected.shape
    np.testing.assert_allclose(trained.matrix.toarray(), expected.toarray(), rtol=0, atol=1e-12)


def _softmax_rows(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_numpy_inference_equals_sklearn_predict_proba(synthetic_trained):
    trained = synthetic_trained
    model = trained.model
    texts = [t for ex in SYNTHETIC.values() for t in ex]
    texts += ["completely new words zebra quantum", "```\nprint(1)\n```", "Text: a b c\n\nsummarize"]
    # scikit-learn's own path: its vectorizer (with our analyzer), group normalisation, LR;
    # the logits scaled by the share of known words.
    X = group_normalize(_sklearn_tfidf(trained, texts), model.groups, model.group_weights)
    known = np.array([model.columns(t)[2] for t in texts])[:, None]
    assert known.min() < 1.0 < known.max() + 1e-9  # the new words are not known
    z = known * trained.estimator.decision_function(X)
    got = np.array([model.predict_proba(t, calibrated=False) for t in texts])
    np.testing.assert_allclose(got, _softmax_rows(z), rtol=0, atol=1e-9)
    # Where every word is known, that is scikit-learn's predict_proba itself.
    full = known[:, 0] == 1.0
    assert full.any()
    np.testing.assert_allclose(got[full], trained.estimator.predict_proba(X[full]), rtol=0,
                               atol=1e-9)
    # And the calibrated probabilities are softmax(logits / T).
    got_cal = np.array([model.predict_proba(t) for t in texts])
    np.testing.assert_allclose(got_cal, _softmax_rows(z / model.temperature), rtol=0, atol=1e-9)


def test_a_prompt_without_known_words_gets_a_near_uniform_distribution(synthetic_trained):
    model = synthetic_trained.model
    for prompt in ("asdf qwer zxcv", "???", "zzqx"):
        assert model.columns(prompt)[2] == MIN_SHARE
        probs = model.predict_proba(prompt)
        assert probs.max() < 1.5 / len(model.labels)
    # a prompt of known words keeps its confidence
    assert model.predict_proba("write a poem about the sea").max() > 0.5


def test_temperature_is_positive_and_finite(synthetic_trained):
    assert 0.05 <= synthetic_trained.model.temperature <= 20
    meta = synthetic_trained.model.meta
    assert 0.0 <= meta["cv_macro_f1"] <= 1.0


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(size=(4000, 4)) * 2.0
    p = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    # A model three times too sure: the fitted temperature should be about 3.
    t = fit_temperature(true_logits * 3.0, y)
    assert 2.6 < t < 3.4


def _copies(texts: list[str], y: np.ndarray) -> dict[str, str]:
    extra, extra_y, source = augment(texts, y, share=0.3, seed=0)
    assert list(extra_y) == [int(y[i]) for i in source]  # a copy keeps its example's label
    return {texts[i]: copy for i, copy in zip(source, extra, strict=True)}


def test_adding_an_example_leaves_the_other_examples_augmented_copies_alone(default_table):
    """Which examples get a borrowed passage, which one and how, follows each example's own
    text: editing the table must not reshuffle every copy (and every borderline prompt)."""
    examples = examples_by_label(default_table)
    texts = [t for ex in examples.values() for t in ex]
    y = np.array([i for i, ex in enumerate(examples.values()) for _ in ex])
    before = _copies(texts, y)
    assert 0.2 * len(texts) < len(before) < 0.4 * len(texts)
    assert all(source in copy for source, copy in before.items())
    # A short example, inserted in the middle of the table: every other copy is unchanged.
    at = len(texts) // 3
    short = "how many bridges cross the river in prague"
    after = _copies(texts[:at] + [short] + texts[at:], np.insert(y, at, y[at]))
    assert {s: c for s, c in after.items() if s != short} == before
    # One with pasted material adds a passage to borrow: only a few copies move to it.
    pasted = "Who wrote this?\n\n" + " ".join(["The lighthouse keeper counted the ships."] * 4)
    after = _copies(texts + [pasted], np.append(y, y[-1]))
    assert after.keys() == before.keys()
    moved = sum(after[s] != before[s] for s in before)
    assert moved <= 0.05 * len(before)
    # Another seed draws other copies.
    other = augment(texts, y, share=0.3, seed=1)[0]
    assert set(other) != set(before.values())


def test_adding_a_task_type_with_examples_makes_it_predictable(tmp_path):
    cooking = [
        "how long should I boil an egg for a runny yolk",
        "what can I cook with chickpeas and spinach",
        "give me a recipe for banana bread",
        "how do I make a roux for gravy",
        "what temperature do I roast a chicken at",
        "how to make fluffy pancakes from scratch",
        "substitute for buttermilk in a cake recipe",
        "how do I caramelise onions properly",
    ]
    table = make_table({**SYNTHETIC, "cooking": cooking})
    classifier = build_classifier(table, directory=tmp_path)
    assert "cooking" in classifier.inner.inner.labels
    result = classifier.classify("recipe for a chocolate cake with a runny middle")
    assert result.label == "cooking"


def test_task_without_examples_is_not_learnt_but_rules_still_reach_it(tmp_path):
    table = make_table({**SYNTHETIC, "legal": []}, rules={"legal": (r"(?i)\bcontract law\b",)})
    classifier = build_classifier(table, directory=tmp_path)
    assert "legal" not in classifier.inner.inner.labels
    assert classifier.classify("question about contract law in Texas").label == "legal"


def test_single_task_table_always_answers_that_task(tmp_path):
    table = make_table({"general": ["hello", "how are you"]})
    result = build_classifier(table, directory=tmp_path).classify("anything at all")
    assert result.label == "general"
    assert result.confidence == pytest.approx(1.0)


def test_a_table_with_no_examples_cannot_be_trained(tmp_path):
    table = make_table({"a": [], "b": []})
    with pytest.raises(ValueError, match="no task type has examples"):
        build_classifier(table, directory=tmp_path)


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
# Caches
# --------------------------------------------------------------------------------------------


def test_repeated_prompt_comes_from_the_lru_cache(synthetic_trained):
    calls = []

    class Counting:
        name = "local"

        def classify(self, prompt):
            calls.append(prompt)
            return LocalClassifier(synthetic_trained.model).classify(prompt)

    cc = CachingClassifier(Counting(), maxsize=2)
    first = cc.classify("write a poem about rain")
    second = cc.classify("write a poem about rain")
    assert first.cached is False and second.cached is True
    assert (second.label, second.confidence, second.top) == (
        first.label, first.confidence, first.top
    )
    assert len(calls) == 1
    cc.classify("b")
    cc.classify("c")  # evicts the poem (maxsize 2)
    cc.classify("write a poem about rain")
    assert len(calls) == 4
    assert cc.classify_uncached("c").cached is False
    big = "word " * 2000  # long prompts are keyed by their hash
    assert cc.classify(big).cached is False
    assert cc.classify(big).cached is True


def test_disk_cache_hit_miss_and_corruption(tmp_path, monkeypatch):
    table = make_table(SYNTHETIC)
    messages: list[str] = []
    first = load_or_train(table, directory=tmp_path, on_progress=messages.append)
    path = cache_path(model_key(table), tmp_path)
    assert path.exists()
    assert any("trained" in m for m in messages)
    assert not list(tmp_path.glob("*.tmp"))  # written atomically, nothing left behind

    # Hit: no training at all.
    def no_training(*a, **k):
        raise AssertionError("should have come from the cache")

    monkeypatch.setattr(classifier_cache, "train", no_training)
    messages.clear()
    second = load_or_train(table, directory=tmp_path, on_progress=messages.append)
    assert any("loaded from cache" in m for m in messages)
    assert second.labels == first.labels
    assert second.temperature == first.temperature
    np.testing.assert_array_equal(second.coef, first.coef)
    prompt = "what is the derivative of x^2"
    np.testing.assert_allclose(second.predict_proba(prompt), first.predict_proba(prompt))
    monkeypatch.undo()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))

    # Miss: other examples, other key, other file.
    other = make_table({**SYNTHETIC, "factual": SYNTHETIC["factual"] + ["who painted the mona lisa"]})
    assert model_key(other) != model_key(table)
    load_or_train(other, directory=tmp_path)
    assert cache_path(model_key(other), tmp_path).exists()

    # Corruption: garbage is ignored, the model retrained and the file rewritten.
    path.write_bytes(b"not a zip file at all")
    messages.clear()
    again = load_or_train(table, directory=tmp_path, on_progress=messages.append)
    assert any("cache ignored" in m for m in messages)
    assert any("trained" in m for m in messages)
    np.testing.assert_allclose(again.predict_proba(prompt), first.predict_proba(prompt))
    assert LinearModel.load(path, model_key(table)).labels == first.labels

    # A valid file under the wrong key is refused.
    with pytest.raises(ValueError):
        LinearModel.load(path, model_key(other))

    # A truncated file is refused too.
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        LinearModel.load(path, model_key(table))


def test_cache_dir_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"
    monkeypatch.delenv(CACHE_ENV)
    assert "routedeck" in str(cache_dir())


def test_unwritable_cache_dir_still_gives_a_classifier(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the folder should be
    messages: list[str] = []
    model = load_or_train(make_table(SYNTHETIC), directory=blocker / "sub",
                            on_progress=messages.append)
    assert model.labels
    assert any("not written" in m for m in messages)


# --------------------------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------------------------


def test_empty_prompt_is_an_error(synthetic_table, synthetic_trained):
    classifier = CachingClassifier(
        RuleClassifier.from_table(synthetic_table, LocalClassifier(synthetic_trained.model))
    )
    for prompt in ["", "   ", "\n\t "]:
        with pytest.raises(ValueError, match="empty prompt"):
            classifier.classify(prompt)
        with pytest.raises(ValueError, match="empty prompt"):
            decide(prompt, synthetic_table, classifier)


def test_huge_prompt_and_binary_junk_give_a_result(synthetic_table, synthetic_trained):
    classifier = RuleClassifier.from_table(
        synthetic_table, LocalClassifier(synthetic_trained.model)
    )
    rng = np.random.default_rng(0)
    junk = bytes(rng.integers(0, 256, 5000, dtype=np.uint8)).decode("latin-1")
    surrogates = bytes(rng.integers(0, 256, 3000, dtype=np.uint8)).decode(
        "utf-8", "surrogateescape"
    )
    prompts = [
        "write a poem about rain. " * 45_000,  # about 1 MB
        "x" * 1_000_000,
        junk,
        surrogates,
        "\x00\x01\x02\x1b[2J\x7f\x9b",
        "ok\u200b\u202e reversed",
    ]
    for prompt in prompts:
        c = classifier.classify(prompt)
        assert c.label in synthetic_table.tasks
        assert c.confidence is None or 0.0 <= c.confidence <= 1.0
        assert "\x1b" not in c.reason and "\x00" not in c.reason
    assert classifier.classify(prompts[0]).label == "creative"
    d = decide(junk, synthetic_table, CachingClassifier(classifier))
    assert d.cell.primary


def test_featurizer_bounds_work_on_huge_input():
    huge = "pasted material line\n" * 60_000
    tokens = F.tokens("summarize the following:\n" + huge)
    assert len(tokens) < 5_000
    assert "w:summarize" in tokens


# --------------------------------------------------------------------------------------------
# Instruction versus pasted material
# --------------------------------------------------------------------------------------------


def test_split_separates_instruction_from_pasted_material():
    s = S.split_prompt(F.clean(
        "Here is an email from my landlord:\n\n"
        "Dear tenant, the rent will increase by 5% from next month as discussed before.\n\n"
        "Write a polite reply asking for the increase to be delayed?"
    ))
    assert any("landlord" in i for i in s.instruction)
    assert any("polite reply" in i for i in s.instruction)
    assert [p.how for p in s.passages] == ["colon"]
    assert "rent will increase" in s.passages[0].text

    s = S.split_prompt(F.clean("why does this fail?\n```python\ndef f(:\n    pass\n```"))
    assert s.instruction == ["why does this fail?"]
    assert (s.passages[0].how, s.passages[0].kind, s.passages[0].label) == (
        "fence", "code", "python"
    )

    s = S.split_prompt(F.clean("Text: Alice met Bob in Paris in 1999 and they founded Acme.\n\n"
                               "Question: who founded Acme?"))
    assert s.instruction == ["who founded Acme?"]
    assert s.passages[0].label == "text"


def test_a_paragraph_then_a_short_question_about_it_is_reading_comprehension():
    text = ("Lake Baikal in Siberia is the deepest lake on Earth, reaching 1,642 metres, and holds"
            " about a fifth of the world's unfrozen fresh water. It is home to the nerpa seal.")
    s = S.split_prompt(F.clean(text + "\n\nHow deep is the lake?"))
    assert s.instruction == ["How deep is the lake?"]
    assert [(p.how, p.text) for p in s.passages] == [("para", text)]
    # Two paragraphs that both ask stay instruction.
    s = S.split_prompt(F.clean("I'm hosting ten people on Saturday and my oven is broken, so what"
                               " can I cook on two hobs? Nothing too fancy please.\n\nAny ideas?"))
    assert not s.passages


def test_a_short_ask_then_paragraphs_that_ask_nothing_makes_them_material():
    """Chat prompts ask first and paste after, often with no colon: the article is material
    (before, its words and numbers were instruction, and the figures made it math)."""
    article = ("In this randomized trial, 1,204 adults aged 50-75 were assigned to a low-salt diet"
               " or usual care for 18 months. Systolic pressure fell by 6.1 mmHg in the diet group"
               " and 1.2 mmHg with usual care; adherence was 71%.")
    for ask in ("tl;dr", "what's the sample size and the main result? no time to read it all"):
        s = S.split_prompt(F.clean(ask + "\n\n" + article))
        assert s.instruction == [ask]
        assert [(p.how, p.text) for p in s.passages] == [("para", article)]
    # A paragraph that asks something stays instruction ("can you ..." after a short ask).
    s = S.split_prompt(F.clean("Write a cover letter.\n\nCan you mention that I led a team of"
                               " five nurses for three years and that I speak Spanish? Keep it"
                               " under 300 words please."))
    assert not s.passages
    # A role-play set-up is the ask, not material before a short question.
    setup = ("Let's roleplay. You are Bram, a grumpy innkeeper in a small fantasy village. I'm a"
             " traveler who walked in soaked from the storm with two silver coins. Stay in"
             " character no matter what.")
    s = S.split_prompt(F.clean(setup + "\n\n*shakes off the rain* Evening. Got a room?"))
    assert s.instruction[0] == setup and not s.passages


def test_a_plain_line_above_pasted_code_is_the_ask():
    """A line of plain words over a code block, without a blank line between ('its not
    working', 'why', 'what does this do' with no question mark) is the ask, not code."""
    code = "func main() {\n    ch := make(chan int)\n    go func() { ch <- 1 }()\n}"
    for ask in ("why", "its not working", "what does this do", "help?"):
        s = S.split_prompt(F.clean(ask + "\n" + code))
        assert s.instruction == [ask]
        assert [(p.how, p.kind) for p in s.passages] == [("structured", "code")]


def test_go_code_is_code_and_a_one_line_summarize_pastes_its_text():
    # Go indents with tabs: that is code, not a tab-separated table.
    go = "func (s *Server) get(w http.ResponseWriter, r *http.Request) {\n\tid := r.URL.Query()"
    go += ".Get(\"id\")\n\tif id == \"\" {\n\t\treturn\n\t}\n}"
    s = S.split_prompt(F.clean("Can you review this Go handler?\n\n" + go))
    assert [p.kind for p in s.passages] == ["code"]
    s = S.split_prompt(F.clean("Which city is oldest?\n\nname\tfounded\nRome\t753 BC\nParis\t250 BC"))
    assert [p.kind for p in s.passages] == ["table"]
    # "summarize: <text>" on one line: the text is material.
    s = S.split_prompt(F.clean("summarize: The new firmware adds a vacation mode, fixes the bug"
                               " where the display froze after a power cut, and improves Wi-Fi."))
    assert s.instruction == ["summarize:"]
    assert [p.how for p in s.passages] == ["inline"]


def test_a_question_line_ends_labelled_material_in_the_same_paragraph():
    s = S.split_prompt(F.clean("Reference: The vault opened in 2008 and keeps seeds at minus 18"
                               " degrees.\nQuestion: How cold is it kept?"))
    assert s.instruction == ["How cold is it kept?"]
    assert [(p.how, p.label) for p in s.passages] == [("label", "reference")]
    assert s.passages[0].text == "The vault opened in 2008 and keeps seeds at minus 18 degrees."


def test_a_letter_after_a_question_about_it_is_material_though_it_asks_things():
    """A short last paragraph that asks something closes pasted material as the ask; a letter
    (a greeting with a name, or a sign-off with one) asks things too, and stays material."""
    for letter in (
        "Dear customer service, my order #55812 arrived broken. I would like a replacement. Best,"
        " Paolo",
        "Hi team, can you all send me your slides by Friday? I need them for the review.",
        "Can you send me the invoice again? I need it for my taxes.\nThanks,\nPriya",
    ):
        s = S.split_prompt(F.clean("Who wrote this email and what do they want?\n\n" + letter))
        assert s.instruction == ["Who wrote this email and what do they want?"]
        assert [p.text for p in s.passages] == [letter]
    # A closing ask stays the ask, thanks and all.
    s = S.split_prompt(F.clean("Here is the email:\n\nThe meeting moves to 3pm on Monday in room"
                               " 4B, and lunch is provided.\n\nCan you summarise it? Thanks so much"))
    assert s.instruction[-1] == "Can you summarise it? Thanks so much"


def test_inference_maps_a_prompt_to_the_columns_of_its_tokens(default_table):
    """LinearModel.counts goes from words to columns through caches, never building the token
    strings; it must count exactly the columns of the analyzer's tokens, on every prompt shape
    (short asks, pasted passages, fences, huge and non-Latin text), and again from the caches."""
    trained = train(examples_by_label(default_table), calibrate=False,
                      vocabulary=vocabularies(default_table))
    model = trained.model
    pool = [e for v in examples_by_label(default_table).values() for e in v]
    prompts = pool[::7] + [
        "summarize this:\n\n" + "\n\n".join(pool[:40]),
        "```python\n" + "\n".join(pool[40:80]) + "\n```\nwhy does this fail?",
        "Écris un poème sur la mer, s'il te plaît — 海についての詩",
        "x" * 50_000 + " what is this",
        "1234 + 5678 = ? and the integral of x^2",
    ]
    for _ in range(2):  # the second time, every word comes from the caches
        for prompt in prompts:
            ids = np.array([model.vocab.get(t, -1) for t in F.tokens(prompt, model.lexicon)],
                           dtype=np.intp)
            want_cols, want_counts = np.unique(ids[ids >= 0], return_counts=True)
            cols, counts = model.counts(prompt)
            assert np.array_equal(cols, want_cols), prompt[:60]
            assert np.array_equal(counts, want_counts), prompt[:60]


def test_passage_tokens_are_prefixed_apart_from_instruction_tokens():
    tokens = F.tokens('Translate "the weather is lovely in spring here" into French')
    assert "w:translate" in tokens and "w:french" in tokens
    assert "p:weather" in tokens and "w:weather" not in tokens
    assert "s:passage" in tokens
    assert {F.group_of(t) for t in ("w:x", "b:x_y", "f:x")} == {F.GROUP_WORDS}
    assert F.group_of("c: wor") == F.GROUP_CHARS
    assert F.group_of("p:x") == F.GROUP_PASSAGE
    assert F.group_of("s:passage") == F.GROUP_SHAPE


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


# --------------------------------------------------------------------------------------------
# The real default table
# --------------------------------------------------------------------------------------------


def test_default_table_classifies_clear_prompts(default_table, default_classifier):
    if not has_real_examples(default_table):
        pytest.skip("routes.toml still has placeholder examples")
    cases = {
        "write a haiku about the first snow": "creative",
        "what is the capital of canada": "factual",
        "solve x^2 - 5x + 6 = 0": "math",
        "how do I reverse a list in python": "code",
        "Extract every date and amount from this invoice:\n\nInvoice 42, issued 3 March 2024, "
        "total 1,250.00 EUR, due 2 April 2024.": "extraction",
        "what should I get my sister for her birthday, she likes hiking": "general",
        # Pasted material does not make a prompt extraction: the ask decides.
        "Here is an article:\n\nThe city council voted on Tuesday to expand the bike lane "
        "network across downtown, citing safety data from last year.\n\n"
        "Write a funny poem about it.": "creative",
    }
    for prompt, label in cases.items():
        c = default_classifier.classify(prompt)
        assert c.label == label, (prompt, c)


def test_default_table_fits_its_own_examples(default_table, default_classifier):
    if not has_real_examples(default_table):
        pytest.skip("routes.toml still has placeholder examples")
    local = default_classifier.inner.inner
    right = total = 0
    for name, task in default_table.tasks.items():
        for example in task.examples[::7]:
            right += local.classify(example).label == name
            total += 1
    assert right / total > 0.9
    assert local.model.meta.get("cv_macro_f1", 1.0) > 0.75


# --------------------------------------------------------------------------------------------
# Imports
# --------------------------------------------------------------------------------------------


def test_importing_the_classifier_loads_neither_textual_nor_sklearn():
    code = textwrap.dedent(
        """
        import json, sys
        import tui.router.classifier.build, tui.router.classifier.features
        import tui.router.table.decide
        print(json.dumps(sorted(sys.modules)))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    mods = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)
    assert not any(m == "sklearn" or m.startswith("sklearn.") for m in mods)
    assert not any(m == "scipy" or m.startswith("scipy.") for m in mods)


def test_warm_cache_classification_does_not_import_sklearn(tmp_path):
    table_code = "from tui.router.table.load import load_table; t = load_table()"
    code = textwrap.dedent(
        f"""
        import json, sys
        {table_code}
        from tui.router.classifier.build import build_classifier
        from tui.router.table.decide import decide
        c = build_classifier(t)
        d = decide("write a limerick about a cat", t, c)
        print(json.dumps({{"warm": "sklearn" in sys.modules, "task": d.task}}))
        """
    )
    env = {**__import__("os").environ, CACHE_ENV: str(tmp_path)}
    run = lambda: json.loads(subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300,
        env=env,
    ).stdout.strip().splitlines()[-1])
    cold = run()
    warm = run()
    assert cold["warm"] is True  # the first run trained
    assert warm["warm"] is False  # the second loaded the cached arrays
    assert warm["task"] == cold["task"]


def test_a_table_with_two_task_types_trains_and_predicts(tmp_path):
    """Task types are data: a table of just two must work like one of six."""
    from tui.router.classifier.training import train

    examples = {
        "code": [f"fix the python error in function number {i} of my script" for i in range(12)]
        + ["my javascript loop never ends", "write a sql query joining two tables"],
        "creative": [f"write a short poem about the colour of season {i}" for i in range(12)]
        + ["a limerick about a cat", "a bedtime story about a brave snail"],
    }
    trained = train(examples)
    model = trained.model
    assert set(model.labels) == {"code", "creative"}
    probs = model.predict_proba("please debug this python function")
    assert abs(sum(probs) - 1.0) < 1e-9
    assert model.labels[int(max(range(2), key=lambda i: probs[i]))] == "code"


def test_accents_fold_to_their_base_letters_and_other_scripts_are_kept():
    assert W.split_words("Poème función naïve Ünïcödé") == ["poeme", "funcion", "naive", "unicode"]
    assert W.split_words("Привет, мир") == ["привет", "мир"]
    # The translation table fills itself as text arrives: a second pass gives the same answer.
    assert W.split_words("crème brûlée") == W.split_words("crème brûlée") == ["creme", "brulee"]
    assert W.split_words("ﬁle ½ mp3 it’s O'Neil's x'y'z _a_b") == [
        "file", "1", "2", "mp0", "it's", "o'neil", "s", "x'y", "z", "a", "b"]


def _reference_words(text: str) -> list[str]:
    """The definition split_words keeps to: lower case, 1-9 as 0, ’ as ', NFKD without combining
    marks, then the word regex."""
    text = re.sub("[1-9]", "0", text.lower()).replace("’", "'")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return W.WORD_RE.findall(text)


def test_words_are_what_the_word_regex_finds_in_the_folded_text(default_table):
    rng = random.Random(5)
    texts = [t for ex in examples_by_label(default_table).values() for t in ex]
    texts += ["".join(chr(rng.randrange(0x30000)) for _ in range(200)) for _ in range(200)]
    texts += ["".join(rng.choice("ab'’ _-19é\u0301ﬁ½İΣσς.Я٣") for _ in range(40))
              for _ in range(3000)]
    for text in texts:
        assert W._plain_words(text) == _reference_words(text), repr(text)


def test_chinese_and_japanese_runs_become_character_pairs():
    assert W.split_words("写一首关于春天的诗") == ["写一", "一首", "首关", "关于", "于春", "春天", "天的", "的诗"]
    assert W.split_words("用Python写函数, ok") == ["用", "python", "写函", "函数", "ok"]
    assert W.split_words("Javaの配列") == ["java", "の配", "配列"]
    assert W.split_words("猫") == ["猫"]
    assert W.split_words("ｶﾀｶﾅ text") == ["カタ", "タカ", "カナ", "text"]  # half-width folds first
    # Korean has spaces: its words stay whole (as jamo, like every word, NFKD-decomposed).
    assert W.split_words("한국어 문장") == W._plain_words("한국어 문장") and len(W.split_words("한국어 문장")) == 2


def test_instruction_cues_count_whole_words_and_questions():
    # "can", "you", "please", "summarize" and the question mark: 5 cues over 5 words.
    assert S._instructiveness("can you please summarize this?") == 1.0
    assert S._instructiveness("you're right") == 0.5  # "you're" counts by its head
    assert S._instructiveness("2024-05-14 02:00:01 INFO etl.main starting run") == 0.0
    assert S._instructiveness("cannot yourself") == 0.0  # parts of words are not cues


def test_final_fit_from_the_fold_models_reaches_the_cold_fits_optimum(synthetic_table):
    """The final fit starts from the calibration folds' models; it must land where a cold fit
    does (same loss, same predictions), only sooner."""
    examples = examples_by_label(synthetic_table)
    warm = train(examples)  # calibrate=True: warm-started final fit
    cold = train(examples, calibrate=False)  # no folds: a cold final fit
    texts = [t for ex in examples.values() for t in ex]
    warm_p = np.array([warm.model.predict_proba(t, calibrated=False) for t in texts])
    cold_p = np.array([cold.model.predict_proba(t, calibrated=False) for t in texts])
    assert (warm_p.argmax(axis=1) == cold_p.argmax(axis=1)).all()
    np.testing.assert_allclose(warm_p, cold_p, atol=0.05)


def test_a_task_vocabulary_carries_over_to_words_the_examples_never_use(tmp_path):
    """Vocabulary words seen in the code examples teach the model what a vocabulary hit is
    worth; a vocabulary word no example uses then still pulls a prompt towards code."""
    base = make_table(SYNTHETIC)
    vocab = ("python", "javascript", "sql", "git", "react", "rust", "bash", "zorblax")
    tasks = dict(base.tasks)
    tasks["code"] = replace(tasks["code"], vocabulary=vocab)
    with_vocab = replace(base, tasks=tasks)
    assert model_key(with_vocab) != model_key(base)  # the cache knows the difference
    plain = LocalClassifier.from_table(base, directory=tmp_path)
    lexical = LocalClassifier.from_table(with_vocab, directory=tmp_path)
    prompt = "zorblax question"
    p_plain = dict(zip(plain.labels, plain.model.predict_proba(prompt), strict=True))
    p_lex = dict(zip(lexical.labels, lexical.model.predict_proba(prompt), strict=True))
    assert max(p_plain, key=p_plain.get) != "code"  # without the vocabulary: not code
    assert max(p_lex, key=p_lex.get) == "code"  # with it: code
    assert "code vocabulary" in lexical.model.evidence(
        *lexical.model.vectorize(prompt), lexical.labels.index("code"))
    # The vocabulary is part of the cached model: a warm load featurizes the same way.
    reloaded = LocalClassifier.from_table(with_vocab, directory=tmp_path)
    assert reloaded.model.vocabulary == {"code": vocab}
    np.testing.assert_allclose(reloaded.model.predict_proba(prompt), lexical.model.predict_proba(prompt))


def test_lexicon_normalises_entries_like_prompt_words_and_matches_phrases():
    lex = F.Lexicon.build({"creative": ["Poème", "fairy tale"], "code": ["node.js", "git"]})
    words = W.split_words("Écris un poème, a fairy tale about node.js and Git")
    assert sorted(lex.hits(words)) == ["x:code", "x:code", "x:creative", "x:creative"]
    assert not F.Lexicon.build({})
    # Chinese and Japanese entries are runs of character pairs, whatever their length.
    cjk = F.Lexicon.build({"code": ["プログラム", "数据库"], "math": ["方程"]})
    assert sorted(cjk.hits(W.split_words("このプログラムの数据库と方程"))) == ["x:code", "x:code", "x:math"]
    assert cjk.hits(W.split_words("プログ")) == []
    assert F.tokens("a fairy tale", F.Lexicon()) == F.tokens("a fairy tale")


# What a code line is, as one regex tried at every position (the definition _code_line keeps to).
_CODE_LINE_REFERENCE = re.compile(
    r"^\s*(def|class|import|from|return|elif|else|try|except|catch|function|const|let|var|"
    r"public|private|static|void|int|#include|using|package|func|fn|struct|SELECT|INSERT|UPDATE|"
    r"CREATE|DELETE|ALTER|DROP|WITH|\$|>>>|sudo|npm|pip|git|cd|docker|kubectl)\b|"
    r"^\s*(if|for|while)\b.*[:{)]\s*$|[;{}]\s*$|^\s{2,}\S|=>|->|::|==|!=|\+=|&&|\|\||"
    r"\w\([^()\n]{0,80}\)"
)


def test_a_code_line_is_what_the_reference_regex_finds(default_table):
    rng = random.Random(3)
    texts = [t for ex in examples_by_label(default_table).values() for t in ex]
    lines = [ln for t in texts for ln in t.split("\n")]
    lines += ["".join(rng.choice("ab (){};:=-><|&!+ \t\u00a0") for _ in range(rng.randrange(30)))
              for _ in range(5000)]
    lines += ["  x", "if x:", "for i in y {  ", "print(x) ", "a -> b", "done;  ", "", "   "]
    assert sum(map(S._code_line, lines)) > 1000  # the examples hold plenty of code
    for line in lines:
        assert S._code_line(line) == bool(_CODE_LINE_REFERENCE.search(line)), repr(line)


def test_tokens_come_in_the_same_order_in_every_process():
    """Token order sets the model's column order; were it to follow string hashing (a set), two
    trainings on the same table would differ and a borderline prompt could flip."""
    prompts = [
        "Fix this: if (a >= b && c != d) { x = y % 2; } -> why [] and $x?",
        "Summarise:\n\n```\nSELECT 1;\n```\n\nand this log:\n\n2024-01-01 ERROR x\n2024-01-01 WARN y"
        "\n\n| a | b |\n| 1 | 2 |",
    ]
    script = ("import json, sys; from tui.router.classifier import features as F; "
              "print(json.dumps([F.tokens(p) for p in json.loads(sys.argv[1])]))")
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script, json.dumps(prompts)], env=env,
                              capture_output=True, text=True, check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert sum(t.startswith("y:") for t in json.loads(outputs.pop())[0]) >= 5


def test_the_material_noun_prefilter_never_hides_a_match(default_table):
    texts = [t for ex in examples_by_label(default_table).values() for t in ex]
    pieces = [t[i : i + 300] for t in texts for i in range(0, len(t), 150)]
    pieces += ["Summarize THE ARTICLE below", "fix my e-mail", "the big Listing:", "our CV",
               "the ſtory", "this ＴＥＸＴ"]
    assert sum(map(S._names_material, pieces)) > 100
    for piece in pieces:
        assert S._names_material(piece) == bool(S._NAMES_MATERIAL.search(piece)), piece
