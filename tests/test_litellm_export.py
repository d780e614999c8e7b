"""`routedeck export litellm`: the config writer and the gateway's decision logic.

These run without LiteLLM (the callback's own hooks are tested at the end when it is importable);
tests/test_litellm_proxy.py runs the exported folder in a real LiteLLM Proxy.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import os
from pathlib import Path

import pytest
import yaml

from tui.cli import main
from tui.router.gateway.litellm_export import (
    CALLBACK_MODULE,
    CONFIG_NAME,
    MODEL_NAME,
    ROUTES_NAME,
    ExportError,
    build_config,
    export_litellm,
    to_yaml,
)
from tui.router.gateway.routing import (
    BASELINE_GROUP,
    DECISION_METADATA,
    VIRTUAL_MODEL,
    Gateway,
    GatewayDecision,
    cell_group,
    decision_headers,
    last_user_message,
    requested_priority,
)
from tui.router.table.decide import decide
from tui.router.table.load import load_table

# Importing LiteLLM would otherwise fetch its price map from the internet: tests stay on the machine.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEYS = {
    "OPENAI_API_KEY": "sk-proj-SECRETopenai0123456789abcdef",
    "ANTHROPIC_API_KEY": "sk-ant-SECRETanthropic0123456789ab",
    "GROQ_API_KEY": "gsk_SECRETgroq0123456789abcdefgh",
    "GEMINI_API_KEY": "AIzaSECRETgemini0123456789abcdefg",
}


@pytest.fixture
def table(routes_file: Path):
    return load_table(routes_file)


@pytest.fixture
def exported(table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    return export_litellm(table, tmp_path / "out")


def _entries(config: dict) -> dict[str, dict]:
    return {e["model_name"]: e for e in config["model_list"]}


def _fallbacks(config: dict) -> dict[str, list[str]]:
    return {k: v for d in config["router_settings"]["fallbacks"] for k, v in d.items()}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The config writer
# --------------------------------------------------------------------------------------------


def test_every_model_every_cell_the_baseline_and_the_virtual_model_are_listed(table):
    entries = _entries(build_config(table, {}))
    for (task, prio), cell in table.routes.items():
        assert cell.primary in entries and cell.fallback in entries
        group = entries[cell_group(task, prio)]
        assert group["litellm_params"] == entries[cell.primary]["litellm_params"]
    assert table.baseline.model in entries and table.baseline.fallback in entries
    assert entries[BASELINE_GROUP]["litellm_params"] == entries[table.baseline.model]["litellm_params"]
    # The virtual model is deployed on the uncertain route (the baseline here), so a request the
    # callback cannot route still gets an answer.
    assert entries[VIRTUAL_MODEL]["litellm_params"] == entries[table.baseline.model]["litellm_params"]


def test_each_cell_falls_back_to_its_own_fallback(table):
    fallbacks = _fallbacks(build_config(table, {}))
    for (task, prio), cell in table.routes.items():
        assert fallbacks[cell_group(task, prio)] == [cell.fallback]
    assert fallbacks[BASELINE_GROUP] == [table.baseline.fallback]
    assert fallbacks[VIRTUAL_MODEL] == [table.baseline.fallback]


def test_two_cells_with_one_primary_keep_their_own_fallbacks(routes_file: Path):
    # code/default and extraction/quality share gpt-5-mini as primary; give them different
    # fallbacks: a fallback keyed by model would have to pick one.
    assert load_table(routes_file).cell("extraction", "quality").primary == "openai/gpt-5-mini"
    fallbacks = _fallbacks(build_config(load_table(routes_file), {}))
    assert fallbacks["routedeck/code/default"] == ["google/gemini-3-flash-preview"]
    assert fallbacks["routedeck/extraction/quality"] == ["anthropic/claude-haiku-4-5"]


def test_keys_are_environment_references_never_values(exported):
    texts = [p.read_bytes() for p in exported.out_dir.iterdir() if p.is_file()]
    assert {p.name for p in exported.out_dir.iterdir()} >= {
        CONFIG_NAME, f"{CALLBACK_MODULE}.py", ROUTES_NAME, MODEL_NAME}
    for value in KEYS.values():
        assert not any(value.encode() in blob for blob in texts), value
    config = yaml.safe_load((exported.out_dir / CONFIG_NAME).read_text())
    entries = _entries(config)
    assert entries["openai/gpt-5.2"]["litellm_params"]["api_key"] == "os.environ/OPENAI_API_KEY"
    assert entries["anthropic/claude-sonnet-4-5"]["litellm_params"]["api_key"] == \
        "os.environ/ANTHROPIC_API_KEY"
    for entry in config["model_list"]:
        key = entry["litellm_params"].get("api_key")
        assert key is None or key.startswith("os.environ/") or key == "no-key"


def test_api_base_only_when_overridden(routes_file: Path):
    table = load_table(routes_file)
    # As shipped: LiteLLM's own providers, no api_base.
    e = _entries(build_config(table, {}))
    assert e["groq/llama-3.3-70b-versatile"]["litellm_params"] == {
        "model": "groq/llama-3.3-70b-versatile", "api_key": "os.environ/GROQ_API_KEY",
        "timeout": 300.0, "stream_timeout": 60.0}
    assert "api_base" not in e["anthropic/claude-sonnet-4-5"]["litellm_params"]
    # <PROVIDER>_BASE_URL at export time: the same wire protocol RouteDeck speaks, at that URL.
    e = _entries(build_config(table, {"OPENAI_BASE_URL": "http://127.0.0.1:9999/v1",
                                      "ANTHROPIC_BASE_URL": "http://127.0.0.1:9998"}))
    assert e["openai/gpt-5.2"]["litellm_params"]["api_base"] == "http://127.0.0.1:9999/v1"
    assert e["openai/gpt-5.2"]["litellm_params"]["model"] == "openai/gpt-5.2"
    assert e["anthropic/claude-opus-4-6"]["litellm_params"]["model"] == "anthropic/claude-opus-4-6"
    assert e["anthropic/claude-opus-4-6"]["litellm_params"]["api_base"] == "http://127.0.0.1:9998"
    assert "api_base" not in e["groq/llama-3.1-8b-instant"]["litellm_params"]
    # A base URL changed in routes.toml: an OpenAI-compatible call to it.
    _edit(routes_file, 'base_url = "https://api.groq.com/openai/v1"',
          'base_url = "https://groq.internal.example/v1"')
    e = _entries(build_config(load_table(routes_file), {}))
    assert e["groq/llama-3.1-8b-instant"]["litellm_params"]["model"] == "openai/llama-3.1-8b-instant"
    assert e["groq/llama-3.1-8b-instant"]["litellm_params"]["api_base"] == \
        "https://groq.internal.example/v1"


def test_timeouts_and_retries_follow_the_table(routes_file: Path):
    _edit(routes_file, "total = 300.0", "total = 90.0")
    _edit(routes_file, "first_token = 60.0", "first_token = 12.0")
    _edit(routes_file, "idle = 30.0", "idle = 25.0")
    _edit(routes_file, "max_retries = 2", "max_retries = 4")
    config = build_config(load_table(routes_file), {})
    for entry in config["model_list"]:
        assert entry["litellm_params"]["timeout"] == 90.0
        assert entry["litellm_params"]["stream_timeout"] == 25.0  # the longer of the two waits
    rs = config["router_settings"]
    assert rs["timeout"] == 90.0 and rs["num_retries"] == 4
    assert rs["retry_policy"]["RateLimitErrorRetries"] == 4
    # 5xx and timeouts fall back at once, as in RouteDeck.
    assert rs["retry_policy"]["InternalServerErrorRetries"] == 0
    assert rs["retry_policy"]["TimeoutErrorRetries"] == 0
    assert config["litellm_settings"]["request_timeout"] == 90.0


def test_the_file_says_which_table_it_came_from(exported, table):
    text = (exported.out_dir / CONFIG_NAME).read_text()
    assert f"# sha256: {table.fingerprint}" in text
    assert f"# routes.toml: {table.path}" in text
    assert (exported.out_dir / ROUTES_NAME).read_bytes() == Path(table.path).read_bytes()
    callback = (exported.out_dir / f"{CALLBACK_MODULE}.py").read_text()
    assert table.fingerprint in callback
    compile(callback, "routedeck_callback.py", "exec")
    config = yaml.safe_load(text)
    assert config["litellm_settings"]["callbacks"] == [f"{CALLBACK_MODULE}.proxy_handler_instance"]
    assert config == exported.config


def test_yaml_writer_round_trips_hostile_strings():
    nasty = ['a"b', "line\nbreak: x", "- item", "# not a comment", "{x: 1}", "é中文", "\x1b[2J",
             "true", "null", "", "key: value", "'single'"]
    doc = {"list": nasty, "map": {s: [s] for s in nasty}, "n": 1.5, "b": True, "empty": []}
    assert yaml.safe_load(to_yaml(doc)) == doc


def test_a_simulated_model_is_refused(routes_file: Path):
    _edit(routes_file, 'primary = "openai/gpt-5-mini"', 'primary = "sim/fast"')
    with pytest.raises(ExportError, match="simulated"):
        build_config(load_table(routes_file), {})


def test_cli_export_writes_the_folder_and_reports_a_broken_table(routes_file, tmp_path, capsys):
    out = tmp_path / "deploy"
    assert main(["export", "litellm", "--routes", str(routes_file), "--out", str(out)]) == 0
    assert (out / CONFIG_NAME).exists() and (out / MODEL_NAME).exists()
    assert "wrote" in capsys.readouterr().out
    _edit(routes_file, 'primary = "openai/gpt-5-mini"', 'primary = "antropic/x"')
    assert main(["export", "litellm", "--routes", str(routes_file), "--out", str(out)]) == 2
    assert "unknown provider" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The gateway's decisions
# --------------------------------------------------------------------------------------------


def _request(prompt: str, model: str = VIRTUAL_MODEL, **extra) -> dict:
    return {"model": model, "messages": [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": prompt}], **extra}


@pytest.fixture
def gateway(exported, table) -> Gateway:
    gw = Gateway(exported.out_dir / ROUTES_NAME, exported.out_dir / MODEL_NAME,
                 fingerprint=table.fingerprint)
    gw.load()
    assert gw.broken is None and gw.degraded is None
    return gw


def test_the_virtual_model_is_routed_to_the_cell_classify_names(gateway, table):
    from tui.router.classifier.build import build_classifier

    classifier = build_classifier(table)
    for prompt in ("write a python function that merges two sorted lists",
                   "solve for x: 3x + 7 = 22",
                   "write a haiku about rain on a tin roof",
                   "urgent: extract every date from this email: meeting moved to 3 May"):
        data = _request(prompt)
        decision = gateway.rewrite(data)
        expected = decide(prompt, table, classifier)
        assert decision.task == expected.task and decision.priority == expected.priority
        assert data["model"] == cell_group(expected.task, expected.priority)
        assert decision.primary == expected.cell.primary
        assert decision.fallback == expected.cell.fallback
        headers = decision_headers(data)
        assert headers["x-routedeck-task"] == expected.task
        assert headers["x-routedeck-cell"] == f"{expected.task}/{expected.priority}"
        assert headers["x-routedeck-uncertain"] == "false"
        assert float(headers["x-routedeck-confidence"]) == pytest.approx(
            expected.classification.confidence, abs=1e-3)


def test_a_concrete_model_passes_through_untouched(gateway):
    for model in ("openai/gpt-5.2", "routedeck/code/quality", "gpt-4o"):
        data = _request("write a python function", model=model, metadata={"x": 1})
        before = copy.deepcopy(data)
        assert gateway.rewrite(data) is None
        assert data == before
        assert decision_headers(data) is None


def test_priority_from_header_then_metadata_then_cues(gateway):
    prompt = "write a python function that merges two sorted lists"
    hdr = _request(prompt, proxy_server_request={"headers": {"X-RouteDeck-Priority": "Quality"}},
                   metadata={"routedeck_priority": "latency"})
    assert gateway.rewrite(hdr).priority == "quality"
    assert hdr["model"] == "routedeck/code/quality"
    meta = _request(prompt, metadata={"routedeck_priority": "latency"})
    assert gateway.rewrite(meta).priority == "latency"
    cue = _request("urgent: " + prompt)
    d = gateway.rewrite(cue)
    assert (d.priority, d.priority_reason) == ("latency", "cue: urgent")
    # An unknown priority is ignored: the prompt decides.
    bad = _request(prompt, metadata={"routedeck_priority": "cheapest"})
    assert gateway.rewrite(bad).priority == "default"


def test_gibberish_takes_the_uncertain_route(gateway, table):
    data = _request("asdf qwer zxcv")
    d = gateway.rewrite(data)
    assert d.uncertain and data["model"] == BASELINE_GROUP
    assert d.primary == table.baseline.model
    assert decision_headers(data)["x-routedeck-uncertain"] == "true"


def test_last_user_message_reads_text_parts_only():
    data = {"messages": [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}},
                                     {"type": "text", "text": "solve 2x = 4"}]},
        {"role": "assistant", "content": "thinking"},
    ]}
    assert last_user_message(data) == "solve 2x = 4"
    assert last_user_message({"messages": [{"role": "system", "content": "x"}]}) == ""
    assert last_user_message({"prompt": "legacy completion"}) == "legacy completion"
    assert requested_priority({}) is None


def test_a_broken_table_fails_open_never_raises(exported, table):
    broken = exported.out_dir / ROUTES_NAME
    broken.write_text("this is [not toml", encoding="utf-8")
    gw = Gateway(broken, exported.out_dir / MODEL_NAME, fingerprint=table.fingerprint)
    data = _request("write a python function")
    d = gw.rewrite(data)
    assert gw.broken and d.failed_open
    # The virtual model stays: its deployment is the uncertain route.
    assert data["model"] == VIRTUAL_MODEL and d.uncertain
    assert decision_headers(data)["x-routedeck-failed-open"].startswith("routing table unavailable")


def test_a_table_edited_after_export_fails_open(exported, table):
    _edit(exported.out_dir / ROUTES_NAME, 'primary = "openai/gpt-5-mini"',
          'primary = "openai/gpt-4o"')
    gw = Gateway(exported.out_dir / ROUTES_NAME, exported.out_dir / MODEL_NAME,
                 fingerprint=table.fingerprint)
    data = _request("write a python function")
    assert gw.rewrite(data).failed_open and data["model"] == VIRTUAL_MODEL
    assert "export again" in gw.broken


def test_a_broken_classifier_fails_open_to_the_uncertain_route(exported, table):
    (exported.out_dir / MODEL_NAME).write_bytes(b"PK\x03\x04 not a model")
    gw = Gateway(exported.out_dir / ROUTES_NAME, exported.out_dir / MODEL_NAME,
                 fingerprint=table.fingerprint)
    data = _request("write a python function that merges two sorted lists")
    d = gw.rewrite(data)
    assert gw.degraded and gw.broken is None
    assert d.uncertain and data["model"] == BASELINE_GROUP
    assert decision_headers(data)["x-routedeck-failed-open"] == "classifier unavailable"


def test_a_classifier_error_at_request_time_fails_open(gateway):
    def boom(prompt):
        raise RuntimeError("bad day")

    gateway.classifier.classify = boom
    data = _request("write a python function")
    d = gateway.rewrite(data)
    assert d.failed_open == "RuntimeError: bad day" and data["model"] == VIRTUAL_MODEL


def test_no_user_message_fails_open(gateway):
    data = {"model": VIRTUAL_MODEL, "messages": [{"role": "system", "content": "hi"}]}
    assert gateway.rewrite(data).failed_open == "no user message to classify"
    assert data["model"] == VIRTUAL_MODEL


def test_header_values_cannot_inject_headers():
    d = GatewayDecision(group="routedeck/x/y", task="x", priority="y", priority_reason="given",
                        confidence=0.5, uncertain=False, primary="evil\r\nSet-Cookie: a=b",
                        fallback="ü", classifier="local")
    for value in d.headers().values():
        assert all(0x20 <= ord(ch) < 0x7F for ch in value)
    assert DECISION_METADATA == "routedeck_decision"


def test_only_the_callback_module_imports_litellm():
    root = Path(__file__).resolve().parents[1] / "tui"
    importers = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "litellm" or n.startswith("litellm.") for n in names):
                importers.add(path.relative_to(root).as_posix())
    assert importers == {"router/gateway/litellm_callback.py"}


# --------------------------------------------------------------------------------------------
# The callback's hooks (when LiteLLM is installed)
# --------------------------------------------------------------------------------------------

needs_litellm = pytest.mark.skipif(
    importlib.util.find_spec("litellm") is None,
    reason="LiteLLM is not installed (pip install -e '.[litellm]')",
)


@needs_litellm
async def test_callback_rewrites_the_request_and_returns_the_headers(exported, table):
    from tui.router.gateway.litellm_callback import RouteDeckCallback

    cb = RouteDeckCallback(exported.out_dir / ROUTES_NAME, exported.out_dir / MODEL_NAME,
                           fingerprint=table.fingerprint)
    data = _request("write a python function that merges two sorted lists")
    out = await cb.async_pre_call_hook(None, None, data, "acompletion")
    assert out["model"] == "routedeck/code/default"
    headers = await cb.async_post_call_response_headers_hook(out, None, None)
    assert headers["x-routedeck-task"] == "code"
    other = _request("hi", model="openai/gpt-5.2")
    assert (await cb.async_pre_call_hook(None, None, other, "acompletion"))["model"] == \
        "openai/gpt-5.2"
    assert await cb.async_post_call_response_headers_hook(other, None, None) is None
    # A long prompt is classified in a thread: same answer.
    long = _request("write a python function that merges two sorted lists. " * 100)
    assert (await cb.async_pre_call_hook(None, None, long, "acompletion"))["model"] == \
        "routedeck/code/default"
