"""The classifier's caches (in memory and on disk) and what importing and a warm cache load:
neither Textual nor scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import classify_helpers
import numpy as np
import pytest
from classify_helpers import SYNTHETIC, make_table

from tui.router.classifier import cache as classifier_cache
from tui.router.classifier.cache import CACHE_ENV, cache_dir, cache_path, load_or_train
from tui.router.classifier.local import CachingClassifier, LocalClassifier
from tui.router.classifier.model import LinearModel
from tui.router.classifier.training import model_key

# The shared fixtures, bound by name so pytest finds them here (imported, ruff would read
# every test argument of the same name as a redefinition, F811).
_cache_dir = classify_helpers._cache_dir
synthetic_table = classify_helpers.synthetic_table
synthetic_trained = classify_helpers.synthetic_trained


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
