"""The local classifier's model: what it learns from a table (numpy inference ==
scikit-learn), robustness to odd input, the real default table, and training on other tables."""

from __future__ import annotations

from dataclasses import replace

import classify_helpers
import numpy as np
import pytest
from classify_helpers import SYNTHETIC, has_real_examples, make_table

from tui.router.classifier import features as F
from tui.router.classifier.build import build_classifier
from tui.router.classifier.local import CachingClassifier, LocalClassifier, RuleClassifier
from tui.router.classifier.model import MIN_SHARE
from tui.router.classifier.training import (
    DEFAULT_PARAMS,
    augment,
    examples_by_label,
    fit_temperature,
    group_normalize,
    model_key,
    train,
)
from tui.router.table.decide import decide

# The shared fixtures, bound by name so pytest finds them here (imported, ruff would read
# every test argument of the same name as a redefinition, F811).
_cache_dir = classify_helpers._cache_dir
synthetic_table = classify_helpers.synthetic_table
synthetic_trained = classify_helpers.synthetic_trained
default_table = classify_helpers.default_table
default_classifier = classify_helpers.default_classifier


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
# More training: other tables, the warm-started final fit, task vocabularies
# --------------------------------------------------------------------------------------------


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
