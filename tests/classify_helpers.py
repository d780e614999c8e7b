"""The tables and fixtures the tests/test_classify_*.py modules share: a small synthetic table
(and the model trained on it), the packaged default table and its classifier, and a private
model cache folder for every test."""

from __future__ import annotations

import pytest

from tui.router.classifier.build import build_classifier
from tui.router.classifier.cache import CACHE_ENV
from tui.router.classifier.local import Classifier
from tui.router.classifier.training import Trained, examples_by_label, train
from tui.router.types import (
    Baseline,
    Cell,
    ClassifierSettings,
    Priority,
    Provider,
    RoutingTable,
    TaskType,
)

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
