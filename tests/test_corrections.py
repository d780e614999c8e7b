"""tui.router.classifier.corrections: a wrong label becomes a training example, the classifier retrains
incrementally (same model as a full training), and the table is saved atomically."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from small_examples import EXAMPLES as SMALL_EXAMPLES

from tui.router.classifier.build import build_classifier
from tui.router.classifier.cache import load_or_train
from tui.router.classifier.corrections import (
    CorrectionError,
    add_correction,
    apply_correction,
    prepare,
    retrain,
    retrain_and_compare,
)
from tui.router.classifier.local import LocalClassifier
from tui.router.classifier.training import DEFAULT_PARAMS, examples_by_label, train
from tui.router.table import save as save_mod
from tui.router.table.load import load_table, table_from_dict
from tui.router.table.save import ConflictError

EXAMPLES = SMALL_EXAMPLES
DEV = [
    ("write a python function to reverse a list", "code"),
    ("what is 17 squared", "math"),
    ("write a poem about winter mornings", "creative"),
    ("who painted the mona lisa", "factual"),
    ("my java program throws NullPointerException", "code"),
    ("solve 2x - 4 = 10", "math"),
]
# A prompt the small classifier does not call factual (checked in the test), corrected to it.
PROMPT = "explain how a refrigerator keeps food cold"
TARGET = "factual"


def mini_doc() -> dict:
    tasks = {n: {"description": f"{n} prompts", "examples": list(ex)}
             for n, ex in EXAMPLES.items()}
    tasks["code"]["rules"] = ["```"]
    return {
        "baseline": {"model": "openai/gpt-5.2"},
        "classifier": {"kind": "local", "threshold": 0.5, "uncertain_route": "baseline"},
        "priorities": {"default": {}},
        "providers": {"openai": {"kind": "openai-compatible",
                                 "base_url": "https://api.openai.com/v1",
                                 "api_key_env": "OPENAI_API_KEY"}},
        "routes": {t: {"default": {"primary": "openai/gpt-5-mini"}} for t in EXAMPLES},
        "tasks": tasks,
    }


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEDECK_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(tomli_w.dumps(mini_doc()), encoding="utf-8")
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "models"


# --------------------------------------------------------------------------------------------
# The table edit
# --------------------------------------------------------------------------------------------


def test_add_correction_cleans_the_prompt_and_appends_it() -> None:
    table = table_from_dict(mini_doc())
    dirty = "make a \x1b[31mred\x1b[0m poem\x07 about\r\n  the sea\tplease"
    new = add_correction(table, dirty, "creative")
    added = new.tasks["creative"].examples[-1]
    assert added == "make a red poem about\n  the sea\tplease"
    assert new.tasks["creative"].examples[:-1] == table.tasks["creative"].examples
    assert table.tasks["creative"].examples == tuple(EXAMPLES["creative"])  # the old one intact
    assert new.path == table.path and new.fingerprint == table.fingerprint
    # The same prompt again (white space aside) changes nothing.
    assert add_correction(new, "make a red poem about the sea please", "creative") is new


def test_a_prompt_that_is_an_example_elsewhere_moves() -> None:
    doc = mini_doc()
    doc["tasks"]["factual"]["examples"].append("how many moons does mars have")
    table = table_from_dict(doc)
    new = add_correction(table, "how many  moons does mars have", "math")
    assert "how many moons does mars have" not in new.tasks["factual"].examples
    assert new.tasks["math"].examples[-1] == "how many  moons does mars have"


def test_add_correction_refuses_what_cannot_be_saved() -> None:
    table = table_from_dict(mini_doc())
    with pytest.raises(CorrectionError, match="unknown task type 'poetry'"):
        add_correction(table, "a poem", "poetry")
    with pytest.raises(CorrectionError, match="empty"):
        add_correction(table, " \x1b[2J\x07 ", "creative")
    with pytest.raises(CorrectionError, match="would not save"):
        add_correction(table, "use my key sk-proj-4f9Qx2LmT7vB8nR1wZ3kY6aH0cJ5dE", "code")
    doc = mini_doc()
    doc["tasks"]["factual"]["examples"] = EXAMPLES["factual"][:5]
    small = table_from_dict(doc)
    with pytest.raises(CorrectionError, match="fewer than 5 examples"):
        add_correction(small, EXAMPLES["factual"][0], "math")


# --------------------------------------------------------------------------------------------
# Retraining
# --------------------------------------------------------------------------------------------


def test_correction_makes_the_prompt_classify_as_the_new_task_and_saves_atomically(
    routes: Path, models: Path
) -> None:
    before_bytes = routes.read_bytes()
    old = build_classifier(load_table(routes), directory=models)
    assert old.classify(PROMPT).label != TARGET

    result = apply_correction(routes, PROMPT, TARGET, DEV, directory=models)
    report = result.report
    assert result.saved
    assert report.before is not None and report.before.label != TARGET
    assert report.after.label == TARGET and report.fixed
    assert report.method == "incremental"
    assert report.added and report.moved_from == ()
    assert report.dev_before is not None and report.dev_after is not None
    assert report.dev_before.n == report.dev_after.n == len(DEV)
    assert 0.0 <= report.dev_after.accuracy <= 1.0 and 0.0 <= report.dev_after.macro_f1 <= 1.0
    assert result.classifier.classify(PROMPT).label == TARGET

    # Saved through save_table: the file reloads with the example, the old one is kept as .bak,
    # no temporary file is left, and the returned table carries the new fingerprint.
    reloaded = load_table(routes)
    assert PROMPT in reloaded.tasks[TARGET].examples
    assert (routes.parent / "routes.toml.bak").read_bytes() == before_bytes
    assert not [p for p in routes.parent.iterdir() if p.name.endswith(".tmp")]
    assert result.table.fingerprint == hashlib.sha256(routes.read_bytes()).hexdigest()

    # The retrained model is in the classifier cache: the next build loads it, no training.
    said: list[str] = []
    again = build_classifier(reloaded, directory=models, on_progress=said.append)
    assert any("from cache" in s for s in said), said
    assert again.classify(PROMPT).label == TARGET


def test_a_failed_write_leaves_the_file_as_it_was(
    routes: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = routes.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(save_mod.os, "replace", broken_replace)
    with pytest.raises(OSError):
        apply_correction(routes, PROMPT, TARGET, directory=models)
    monkeypatch.undo()
    assert routes.read_bytes() == before
    assert not [p for p in routes.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_file_changed_on_disk_is_not_overwritten(routes: Path, models: Path) -> None:
    table = load_table(routes)
    routes.write_text(routes.read_text() + "\n# edited elsewhere\n")
    edited = routes.read_bytes()
    with pytest.raises(ConflictError):
        apply_correction(table, PROMPT, TARGET, directory=models)
    assert routes.read_bytes() == edited


def test_save_false_and_duplicates_write_nothing(routes: Path, models: Path) -> None:
    before = routes.read_bytes()
    result = apply_correction(routes, PROMPT, TARGET, save=False, directory=models)
    assert not result.saved and routes.read_bytes() == before
    assert PROMPT in result.table.tasks[TARGET].examples
    dup = apply_correction(routes, EXAMPLES["math"][0], "math", directory=models)
    assert not dup.saved and not dup.report.added and dup.report.method == "unchanged"
    assert routes.read_bytes() == before


PASTED = [
    "why does this loop never end?\n```\nwhile count < limit:\n    total += values[count]\n"
    "    print('running total', total, 'at', count, 'of', limit)\n```",
    "what does this function return for an empty list?\n```\ndef head(items):\n"
    "    return items[0] if items else sorted(items, key=len, reverse=True)[:1]\n```",
]


def test_incremental_retraining_gives_the_model_a_full_training_gives(models: Path) -> None:
    doc = mini_doc()
    doc["tasks"]["code"]["examples"] += PASTED  # passages: augmented copies are made too
    old_table = table_from_dict(doc)
    prepare(old_table, directory=models)
    new_table = add_correction(old_table, PROMPT, TARGET)
    new_table = add_correction(new_table, "a ballad about a sailor and the moon", "creative")
    classifier, info = retrain(old_table, new_table, directory=models, save=False)
    assert info["method"] == "incremental"
    inc = LocalClassifier
    inc_model = classifier.inner.inner.model
    assert isinstance(classifier.inner.inner, inc)
    # The reference: a full training of the same examples, solved as tightly.
    tight = replace(DEFAULT_PARAMS, tol=DEFAULT_PARAMS.tol / 100)
    full = train(examples_by_label(new_table), tight, calibrate=False).model
    assert set(inc_model.vocab) == set(full.vocab)
    assert inc_model.meta["n_augmented"] == full.meta.get("n_augmented", 0) > 0
    assert np.allclose(inc_model.idf[[inc_model.vocab[t] for t in full.vocab]], full.idf)
    prompts = [p for ex in EXAMPLES.values() for p in ex] + [p for p, _ in DEV] + [PROMPT]
    for prompt in prompts:
        a = inc_model.predict_proba(prompt, calibrated=False)
        b = full.predict_proba(prompt, calibrated=False)
        assert int(np.argmax(a)) == int(np.argmax(b)), prompt
        assert np.abs(a - b).max() < 0.02, prompt
    # The calibration temperature is kept from the model it started from.
    old_model = load_or_train(old_table, directory=models)
    assert inc_model.temperature == old_model.temperature


def test_a_rule_decided_prompt_is_reported_not_fixed(routes: Path, models: Path) -> None:
    table = load_table(routes)
    fenced = "```\nroses are red\n```\nturn this into a longer poem"
    new = add_correction(table, fenced, "creative")
    report = retrain_and_compare(table, new, DEV, directory=models)
    assert report.task == "creative" and report.prompt == fenced
    assert report.after.classifier == "rule" and not report.fixed
    assert any("rule" in note for note in report.notes)
    assert report.as_json()["fixed"] is False


def test_dev_rows_from_a_file_and_dicts(routes: Path, models: Path, tmp_path: Path) -> None:
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(
        '{"prompt": "%s", "task_type": "%s"}\n' % (p, t) for p, t in DEV  # noqa: UP031
    ))
    table = load_table(routes)
    new = add_correction(table, PROMPT, TARGET)
    by_file = retrain_and_compare(table, new, dev, directory=models)
    by_dict = retrain_and_compare(
        table, new, [{"prompt": p, "task_type": t} for p, t in DEV], directory=models
    )
    assert by_file.dev_after == by_dict.dev_after
    assert by_file.dev_after is not None and by_file.dev_after.n == len(DEV)
    assert os.path.exists(dev)
