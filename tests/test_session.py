"""The engine facade the TUI and the CLI share."""

from __future__ import annotations

from tui.router.run.session import Session
from tui.router.table.load import load_table


def test_a_classifier_that_cannot_be_built_fails_open_to_the_uncertain_route(monkeypatch):
    import tui.router.classifier.build as build

    def broken(*args, **kwargs):
        raise RuntimeError("model cache unreadable")

    monkeypatch.setattr(build, "build_classifier", broken)
    session = Session(table=load_table(None), env={})
    decision = session.decide("write a haiku about rain")
    assert decision.uncertain is True
    assert decision.cell.primary == session.table.baseline.model
    assert decision.classification.confidence is None
    assert "classifier unavailable (RuntimeError: model cache unreadable)" in decision.classification.reason


def test_session_totals_add_up_recorded_runs():
    from tui.router.types import Cell, Classification, Decision, PairResult, RunResult

    c = Classification("code", 0.9, (("code", 0.9),), "local", "test", 0.1)
    d = Decision("p", c, "code", "default", "default", Cell("openai/gpt-5-mini"), False, "r")

    def side(name, cost):
        return RunResult(name, "m/x", True, "t", 1.0, 2.0, 1, 1, False, cost)

    session = Session(table=load_table(None), env={})
    session.record(PairResult(d, side("routed", 0.001), side("baseline", 0.004), 2.0))
    session.record(PairResult(d, side("routed", None), side("baseline", 0.004), 2.0))
    assert session.totals.runs == 2
    assert session.totals.priced_runs == 1
    assert abs(session.totals.savings_pct - 75.0) < 1e-9


def test_prepare_runs_builds_what_a_first_run_needs():
    import sys

    from tui.router.providers.http import ssl_context

    ssl_context.cache_clear()
    Session.prepare_runs()
    assert ssl_context.cache_info().currsize == 1  # the CA bundle is loaded once, here
    for module in ("tui.router.run.execute", "httpcore", "h11"):
        assert module in sys.modules


def test_decides_quickly_only_with_the_local_classifier_loaded_for_this_table_and_a_short_prompt():
    import dataclasses

    from tui.router.run.session import QUICK_DECIDE_MAX_CHARS

    session = Session(table=load_table(None), env={})
    assert not session.decides_quickly("sort a list")  # nothing loaded yet: it would train
    session.load_classifier()
    assert session.decides_quickly("sort a list")
    assert not session.decides_quickly("x" * (QUICK_DECIDE_MAX_CHARS + 1))
    table = session.table
    fewer = dataclasses.replace(table, tasks=dict(list(table.tasks.items())[:-1]))
    session.set_table(fewer)
    assert not session.decides_quickly("sort a list")  # another training is needed first
    llm = dataclasses.replace(table, classifier=dataclasses.replace(table.classifier, kind="llm"))
    session.set_table(llm)
    assert not session.decides_quickly("sort a list")  # it would call a model
