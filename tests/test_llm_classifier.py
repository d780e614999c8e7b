"""The LLM classifier and the cascade, wired in: ``[classifier] kind = "llm"`` / ``"cascade"``
from the command line (classify, route, bench) and the TUI, against the loopback fake server.

The proof that the LLM's answer is used: the fake server answers "math" for prompts the local
classifier calls something else ("Write a poem about the sea" is creative to it). Requests are
counted per model: the classifying model is ``gpt-4.1-nano`` (the packaged table's llm_model),
which no cell of the grid uses.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from fakeserver import FakeServer, Reply
from tui_helpers import main_screen, set_prompt, settle, type_text, until

from tui.cli import main
from tui.router.log.runlog import RunLog
from tui.router.run.session import Session
from tui.router.table.load import load_table
from tui.router.table.paths import default_routes_path

LLM = "gpt-4.1-nano"  # the packaged [classifier] llm_model, "openai/gpt-4.1-nano"
KEY = "sk-test-classifier-0123456789"
POEM = "Write a poem about the sea"  # local: creative, sure of it
GIBBERISH = "asdf qwer zxcv"  # local: unsure (it knows none of its words)
# First-token alternatives for "math": renormalised over task names, math 0.8 / code 0.2.
MATH_LOGPROBS = (("math", math.log(0.6)), ("code", math.log(0.15)), ("The", math.log(0.25)))

pytestmark = pytest.mark.usefixtures("close_shared_http_client")


def routes_with(tmp_path: Path, kind: str, *, llm_model: str | None = None,
                deadline: float | None = None) -> Path:
    text = default_routes_path().read_text(encoding="utf-8")
    text = text.replace('kind = "local"\nthreshold', f'kind = "{kind}"\nthreshold', 1)
    if llm_model is not None:
        text = text.replace('llm_model = "openai/gpt-4.1-nano"', f'llm_model = "{llm_model}"', 1)
    if deadline is not None:
        assert "\nclassifier = 2.0\n" in text  # the packaged [timeouts] deadline
        text = text.replace("\nclassifier = 2.0\n", f"\nclassifier = {deadline}\n", 1)
    path = tmp_path / "routes.toml"
    path.write_text(text, encoding="utf-8")
    assert load_table(path).classifier.kind == kind
    return path


def llm_requests(server: FakeServer, model: str = LLM) -> list:
    return [r for r in server.requests if r.model == model]


def cli_json(capsys, *argv: str) -> dict:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def server(fake_server, monkeypatch) -> FakeServer:  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_url)
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")
    return fake_server


# ---------------------------------------------------------------------------------------------
# kind = "llm" from the command line
# ---------------------------------------------------------------------------------------------


def test_classify_sends_one_request_to_llm_model_and_uses_its_answer(server, tmp_path, capsys):
    routes = routes_with(tmp_path, "llm")
    server.route(LLM, Reply.ok("math", logprobs=MATH_LOGPROBS, input_tokens=300,
                               output_tokens=1))
    data = cli_json(capsys, "--routes", str(routes), "classify", POEM)
    [request] = llm_requests(server)
    assert request.api_key == KEY
    assert request.json["logprobs"] is True and request.json["top_logprobs"] == 5
    assert POEM in request.json["messages"][-1]["content"]
    # The answer is the LLM's, not the local classifier's (creative).
    assert (data["task"], data["label"], data["classifier"]) == ("math", "math", "llm")
    # Confidence from the first token's logprobs, renormalised over task names.
    assert data["confidence"] == pytest.approx(0.8)
    assert [label for label, _ in data["top"]] == ["math", "code"]
    # Its cost (300 in, 1 out at gpt-4.1-nano's price) and time are in the JSON.
    from tui.router.cost.pricing import cost_usd

    assert data["classifier_cost_usd"] == pytest.approx(cost_usd("openai/gpt-4.1-nano", 300, 1))
    assert data["classifier_cost_usd"] > 0
    assert data["classifier_ms"] > 0
    assert data["classifier_llm"]["input_tokens"] == 300
    assert data["classifier_llm"]["outcome"] == "ok"


def test_no_logprobs_means_no_confidence_and_the_llm_label_is_taken(
    fake_server, monkeypatch, tmp_path, capsys  # noqa: F811
):
    """Anthropic returns no logprobs: "no confidence", taken as certain (documented)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_server.anthropic_url)
    routes = routes_with(tmp_path, "llm", llm_model="anthropic/claude-haiku-4-5")
    fake_server.route("claude-haiku-4-5", Reply.ok("math"))
    data = cli_json(capsys, "--routes", str(routes), "classify", POEM)
    assert len(llm_requests(fake_server, "claude-haiku-4-5")) == 1
    assert (data["label"], data["confidence"], data["classifier"]) == ("math", None, "llm")
    assert data["uncertain"] is False
    assert "no confidence" in data["reason"]
    assert "llm gave no confidence, taken as certain" in data["reason"]


def test_a_model_that_refuses_logprobs_is_asked_again_without_them(server, tmp_path, capsys):
    """OpenAI's reasoning models (gpt-5-nano among them) answer 400 to a logprobs request."""
    routes = routes_with(tmp_path, "llm")
    server.route(LLM, Reply.http(400, "logprobs are not supported with reasoning models"),
                 Reply.ok("math"))
    data = cli_json(capsys, "--routes", str(routes), "classify", POEM)
    first, second = llm_requests(server)
    assert first.json.get("logprobs") is True and "logprobs" not in second.json
    assert (data["label"], data["confidence"], data["classifier"]) == ("math", None, "llm")


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply.http(401, "Incorrect API key provided"), "llm failed (http: "),
        (Reply.http(503, "overloaded"), "llm failed (http: "),
        (Reply.stall_headers(seconds=30), "llm failed (no answer within the 0.3 s deadline)"),
    ],
    ids=["401", "503", "timeout"],
)
def test_a_failing_classifier_model_leaves_the_local_label_with_the_reason(
    server, tmp_path, capsys, reply, why
):
    routes = routes_with(tmp_path, "llm", deadline=0.3)
    server.route(LLM, reply)
    data = cli_json(capsys, "--routes", str(routes), "classify", POEM)
    assert len(llm_requests(server)) == 1  # asked once: no retry on a classifier call
    assert (data["label"], data["classifier"]) == ("creative", "fallback")
    assert data["reason"].startswith("creative (" + why)
    assert "local classifier" in data["reason"]
    assert data["uncertain"] is False  # the local label is sure of it
    outcome = data["classifier_llm"]["outcome"]
    assert outcome == ("timeout" if "deadline" in why else "failed")
    if outcome == "failed":  # refused before any work: nothing to pay
        assert data["classifier_cost_usd"] == 0


def test_without_a_key_the_local_classifier_decides_and_says_why(fake_server, tmp_path, capsys,  # noqa: F811
                                                                 monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_url)  # a key is all that is missing
    routes = routes_with(tmp_path, "llm")
    data = cli_json(capsys, "--routes", str(routes), "classify", POEM)
    assert fake_server.requests == []  # not simulated either: nothing is called
    assert (data["label"], data["classifier"]) == ("creative", "local")
    assert "no OPENAI_API_KEY for openai/gpt-4.1-nano: local classifier" in data["reason"]
    assert data["classifier_cost_usd"] == 0


# ---------------------------------------------------------------------------------------------
# kind = "cascade"
# ---------------------------------------------------------------------------------------------


def test_cascade_a_clear_prompt_sends_no_request(server, tmp_path, capsys):
    routes = routes_with(tmp_path, "cascade")
    server.route(LLM, Reply.ok("math", logprobs=MATH_LOGPROBS))
    data = cli_json(capsys, "--routes", str(routes), "classify", POEM)
    assert llm_requests(server) == []
    assert (data["label"], data["classifier"], data["classifier_llm"]) == ("creative", "local", None)
    assert data["classifier_cost_usd"] == 0


def test_cascade_an_unclear_prompt_sends_one_request_and_its_answer_routes(server, tmp_path,
                                                                          capsys):
    routes = routes_with(tmp_path, "cascade")
    server.route(LLM, Reply.ok("math", logprobs=MATH_LOGPROBS))
    data = cli_json(capsys, "--routes", str(routes), "classify", GIBBERISH)
    assert len(llm_requests(server)) == 1
    assert (data["label"], data["classifier"], data["uncertain"]) == ("math", "llm", False)
    assert data["reason"].startswith("math (local unsure (")
    assert data["classifier_cost_usd"] > 0


@pytest.mark.parametrize(
    "reply",
    [Reply.ok("math", logprobs=(("math", math.log(0.4)), ("code", math.log(0.35)),
                                ("general", math.log(0.25)))),
     Reply.http(503)],
    ids=["llm-unsure", "llm-fails"],
)
def test_cascade_llm_unsure_or_failing_takes_the_uncertain_route(server, tmp_path, capsys, reply):
    routes = routes_with(tmp_path, "cascade")
    server.route(LLM, reply)
    data = cli_json(capsys, "--routes", str(routes), "classify", GIBBERISH)
    assert len(llm_requests(server)) == 1
    assert data["uncertain"] is True
    assert data["primary"] == load_table(routes).baseline.model
    assert data["reason"].endswith("→ baseline")


def test_cascade_without_a_key_is_the_local_classifier_with_the_reason(tmp_path, capsys):
    routes = routes_with(tmp_path, "cascade")
    data = cli_json(capsys, "--routes", str(routes), "classify", GIBBERISH)
    assert data["uncertain"] is True and data["classifier"] == "local"
    assert "no OPENAI_API_KEY for openai/gpt-4.1-nano: local classifier" in data["reason"]


# ---------------------------------------------------------------------------------------------
# route: the cost in --json, in the routed side's cost and in the run log
# ---------------------------------------------------------------------------------------------


def test_route_counts_the_classification_in_the_routed_cost_and_logs_it(server, tmp_path, capsys):
    routes = routes_with(tmp_path, "llm")
    log = tmp_path / "runs.sqlite3"
    server.route(LLM, Reply.ok("math", logprobs=MATH_LOGPROBS, input_tokens=300,
                               output_tokens=1))
    data = cli_json(capsys, "--routes", str(routes), "--log", str(log), "route", POEM)
    assert len(llm_requests(server)) == 1
    decision = data["decision"]
    assert decision["task"] == "math" and decision["classifier"] == "llm"
    spent = decision["classifier_cost_usd"]
    assert spent > 0
    routed = data["routed"]
    from tui.router.cost.pricing import cost_usd

    answer = cost_usd(routed["model"], routed["input_tokens"], routed["output_tokens"])
    assert routed["cost_usd"] == pytest.approx(answer + spent)
    assert data["savings_usd"] == pytest.approx(data["baseline"]["cost_usd"] - answer - spent)
    with RunLog(log) as runlog:
        [record] = runlog.recent()
    assert record.routed.cost_usd == pytest.approx(answer + spent)
    assert record.classifier_llm["cost_usd"] == pytest.approx(spent)
    assert record.classifier_llm["model"] == "openai/gpt-4.1-nano"
    assert record.classifier_llm["outcome"] == "ok"
    assert record.classifier_llm["input_tokens"] == 300


def test_route_prints_which_classifier_decided_and_its_cost(server, tmp_path, capsys):
    routes = routes_with(tmp_path, "llm")
    server.route(LLM, Reply.ok("math", input_tokens=300, output_tokens=1))
    assert main(["--routes", str(routes), "--no-log", "route", POEM]) == 0
    out = capsys.readouterr().out
    assert re.search(r"classified by llm, .* \(llm openai/gpt-4.1-nano ok: .* ms, 300→1 tok, "
                     r"\$0\.0000\d+\) \(counted in the routed cost\)", out), out


# ---------------------------------------------------------------------------------------------
# bench: prompts sent to the LLM and what classifying cost
# ---------------------------------------------------------------------------------------------


def _workload(tmp_path: Path) -> Path:
    path = tmp_path / "w.jsonl"
    rows = [POEM, GIBBERISH, "what is the capital of France?", "qwop zxq", POEM]
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in rows), encoding="utf-8")
    return path


def test_bench_cascade_reports_calls_made_and_their_cost(server, tmp_path, capsys):
    routes = routes_with(tmp_path, "cascade")
    server.route(LLM, Reply.ok("general", input_tokens=300, output_tokens=1))
    data = cli_json(capsys, "--routes", str(routes), "--no-log", "bench", str(_workload(tmp_path)))
    c = data["classification"]
    assert len(llm_requests(server)) == 2  # the two gibberish prompts; the poem once, no call
    assert (c["prompts"], c["asked"], c["answered"], c["would_ask"]) == (4, 2, 2, 0)
    from tui.router.cost.pricing import cost_usd

    assert c["cost_usd"] == pytest.approx(2 * cost_usd("openai/gpt-4.1-nano", 300, 1))
    assert c["per_1000_usd"] == pytest.approx(1000 * c["total_usd"] / 4)
    assert data["savings_after_classification_pct"] < data["savings_pct"]


def test_bench_cascade_without_a_key_projects_the_calls_it_would_make(tmp_path, capsys):
    routes = routes_with(tmp_path, "cascade")
    data = cli_json(capsys, "--routes", str(routes), "--no-log", "bench", str(_workload(tmp_path)))
    c = data["classification"]
    assert (c["asked"], c["would_ask"], c["cost_usd"]) == (0, 2, 0)
    assert c["projected_usd"] > 0 and c["total_usd"] == c["projected_usd"]
    main(["--routes", str(routes), "--no-log", "bench", str(_workload(tmp_path))])
    out = capsys.readouterr().out
    assert "2 of 4 prompts to the LLM" in out and "2 not asked (no key)" in out


def test_bench_with_the_local_classifier_says_nothing_of_an_llm(tmp_path, capsys):
    data = cli_json(capsys, "--no-log", "bench", str(_workload(tmp_path)))
    assert data["classification"]["to_llm"] == 0 and data["classification"]["model"] is None


# ---------------------------------------------------------------------------------------------
# The session: local labels, corrections and the table's LLM layer
# ---------------------------------------------------------------------------------------------


def test_session_decides_locally_on_request_and_keeps_the_llm_after_a_correction(server,
                                                                                 tmp_path):
    import os

    routes = routes_with(tmp_path, "llm")
    server.route(LLM, Reply.ok("math"))
    session = Session(table=load_table(routes), env=dict(os.environ))
    typed = session.decide(POEM, ask_llm=False)
    assert typed.classification.classifier == "local" and llm_requests(server) == []
    assert session.decides_quickly(POEM, ask_llm=False)
    assert not session.decides_quickly(POEM)
    local_stack = session.load_local_classifier()
    session.use_classifier(session.table, local_stack)  # a retrained local stack, say
    assert session.decide(POEM).classification.label == "math"
    assert len(llm_requests(server)) == 1


def test_a_failed_classification_is_not_cached_an_answer_is(server, tmp_path):
    import os

    routes = routes_with(tmp_path, "llm")
    server.route(LLM, Reply.http(503), Reply.ok("math"))
    session = Session(table=load_table(routes), env=dict(os.environ))
    assert session.decide(POEM).classification.classifier == "fallback"
    again = session.decide(POEM).classification
    assert (again.classifier, again.label, again.cached) == ("llm", "math", False)
    third = session.decide(POEM).classification
    assert third.cached and third.cost_usd == 0  # from the cache: nothing paid twice
    assert len(llm_requests(server)) == 2


def test_table_kind_cascade_and_the_classifier_deadline_round_trip(tmp_path):
    from tui.router.table.check import TableError
    from tui.router.table.save import save_table

    routes = routes_with(tmp_path, "cascade", deadline=1.5)
    table = load_table(routes)
    assert table.timeouts.classifier == 1.5
    save_table(table, routes)
    assert load_table(routes).timeouts.classifier == 1.5
    broken = tmp_path / "broken.toml"
    text = routes.read_text(encoding="utf-8")
    broken.write_text(re.sub(r'\nllm_model = "[^"]*"', "", text, count=1), encoding="utf-8")
    with pytest.raises(TableError, match='kind = "cascade" needs the model that classifies'):
        load_table(broken)


# ---------------------------------------------------------------------------------------------
# The TUI: the local label while typing, the LLM once per run (or on ctrl+l)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def llm_app(make_app, server, tmp_path):
    import os

    target = tmp_path / "llm-routes"
    target.mkdir()
    routes = routes_with(target, "llm")
    server.route(LLM, Reply.ok("math", logprobs=MATH_LOGPROBS, input_tokens=300,
                               output_tokens=1))
    return make_app(routes=routes, env=dict(os.environ))


def _decision_bar(app) -> str:
    from tui.app.widgets.decision_bar import DecisionBar

    return str(main_screen(app).query_one(DecisionBar).content)


async def test_tui_typing_calls_nothing_and_a_run_asks_the_llm_once(llm_app, server):
    app = llm_app
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await type_text(pilot, POEM)
        await settle(pilot)
        assert llm_requests(server) == []  # never a paid call per keystroke
        bar = _decision_bar(app)
        assert bar.startswith(" creative ") and "local label; LLM on run (^l now)" in bar
        await pilot.press("ctrl+j")
        main = main_screen(app)
        await until(pilot, lambda: main.last_pair is not None, "the run finished")
        await settle(pilot)
        assert len(llm_requests(server)) == 1
        pair = main.last_pair
        assert pair.decision.classification.classifier == "llm"
        assert pair.decision.task == "math"
        assert "· by LLM " in _decision_bar(app)
        spent = pair.decision.classification.cost_usd
        assert spent > 0
        from tui.router.cost.pricing import cost_usd

        r = pair.routed
        answer = cost_usd(r.model, r.input_tokens, r.output_tokens, table=app.session.table)
        assert r.cost_usd == pytest.approx(answer + spent)


async def test_tui_ctrl_l_asks_the_llm_once_and_the_run_uses_that_answer(llm_app, server):
    app = llm_app
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await set_prompt(pilot, POEM)
        await settle(pilot)
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert len(llm_requests(server)) == 1
        main = main_screen(app)
        assert main.last_decision.classification.classifier == "llm"
        assert "· by LLM " in _decision_bar(app)
        await pilot.press("ctrl+j")
        await until(pilot, lambda: main.last_pair is not None, "the run finished")
        await settle(pilot)
        assert len(llm_requests(server)) == 1  # the run did not ask again ...
        assert main.last_pair.decision.classification.cost_usd > 0  # ... and pays for it


async def test_tui_without_a_key_shows_the_local_label_and_no_pending_llm(make_app, tmp_path):
    routes = routes_with(tmp_path, "llm")
    app = make_app(routes=routes, env={})
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await type_text(pilot, POEM)
        await settle(pilot)
        assert "LLM on run" not in _decision_bar(app)
        await pilot.press("ctrl+j")
        main = main_screen(app)
        await until(pilot, lambda: main.last_pair is not None, "the run finished")
        reason = main.last_pair.decision.classification.reason
        assert reason.startswith("no OPENAI_API_KEY for openai/gpt-4.1-nano: local classifier")
        assert "local label (LLM not called)" in _decision_bar(app)
