"""The exported folder in a real LiteLLM Proxy on 127.0.0.1, every provider pointed at the
loopback fake server (tests/fakeserver.py).

Runs when LiteLLM and its server dependencies are importable (``pip install -e ".[litellm]"``);
nothing is installed at test time. One proxy is started for the module (it takes 10-20 s here)
and every test sends its requests to it through the OpenAI wire protocol.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakeserver import FakeServer, Reply

from tui.router.classifier.build import build_classifier
from tui.router.gateway.litellm_export import export_litellm
from tui.router.gateway.routing import VIRTUAL_MODEL
from tui.router.table.decide import decide
from tui.router.table.load import load_table
from tui.router.table.paths import default_routes_path
from tui.router.types import split_model_id

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("litellm", "fastapi", "uvicorn")),
    reason="LiteLLM Proxy is not installed (pip install -e '.[litellm]'); "
    "run here with it installed, see the issue 18 note",
)

MASTER_KEY = "sk-master-e2e-0123456789"
SECRET = "sk-e2e-SECRET-0123456789abcdefghij"
START_TIMEOUT_S = 180.0

# One prompt of each task type, each one the classifier is sure of.
PROMPTS = {
    "code": "write a python function that merges two sorted lists",
    "math": "solve for x: 3x + 7 = 22",
    "extraction": "extract every date and amount from this invoice as JSON: "
                  "Invoice 2231, issued 3 May 2024, total $1,250.00, due 2 June 2024",
    "creative": "write a haiku about rain on a tin roof",
    "factual": "who wrote pride and prejudice",
    "general": "my landlord wants to raise the rent by $200 a month, how do I negotiate?",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    def __init__(self, url: str, server: FakeServer, table, classifier, folder: Path) -> None:
        self.url, self.server, self.table, self.classifier, self.folder = (
            url, server, table, classifier, folder)
        self.client = httpx.Client(base_url=url, timeout=60.0,
                                   headers={"Authorization": f"Bearer {MASTER_KEY}"})

    def chat(self, prompt: str, model: str = VIRTUAL_MODEL, **kw) -> httpx.Response:
        headers = kw.pop("headers", {})
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], **kw}
        return self.client.post("/v1/chat/completions", json=body, headers=headers)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    folder = tmp_path_factory.mktemp("litellm")
    cache = tmp_path_factory.mktemp("cache")
    table = load_table(default_routes_path())
    with FakeServer() as server:
        env = {k: v for k, v in os.environ.items()
               if not k.upper().endswith(("_API_KEY", "_BASE_URL"))}
        env.update(ROUTEDECK_CACHE_DIR=str(cache), LITELLM_MASTER_KEY=MASTER_KEY,
                   LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1")
        from tui.router.providers.registry import base_url_env_var

        for name, provider in table.providers.items():
            if provider.kind == "simulated":
                continue
            url = server.anthropic_url if provider.kind == "anthropic" else server.openai_url
            env[base_url_env_var(name)] = url
            if provider.api_key_env:
                env[provider.api_key_env] = SECRET
        old_cache = os.environ.get("ROUTEDECK_CACHE_DIR")
        os.environ["ROUTEDECK_CACHE_DIR"] = str(cache)
        try:
            export_litellm(table, folder, env)
            classifier = build_classifier(table)
        finally:
            if old_cache is None:
                os.environ.pop("ROUTEDECK_CACHE_DIR", None)
            else:
                os.environ["ROUTEDECK_CACHE_DIR"] = old_cache
        port = _free_port()
        log_path = folder / "proxy.log"
        with open(log_path, "wb") as log:
            litellm_bin = Path(sys.executable).with_name("litellm")
            proc = subprocess.Popen(
                [str(litellm_bin), "--config", "config.yaml", "--host", "127.0.0.1",
                 "--port", str(port), "--num_workers", "1"],
                cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, proc, log_path)
            p = Proxy(url, server, table, classifier, folder)
            yield p
            p.client.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = log_path.read_text(errors="replace")[-3000:].replace(SECRET, "***")
    pytest.fail(f"LiteLLM Proxy did not start (exit {proc.poll()}):\n{tail}")


@pytest.fixture
def fake(proxy: Proxy) -> Iterator[FakeServer]:
    proxy.server.reset()
    yield proxy.server


def _upstream_models(server: FakeServer) -> list[str | None]:
    return [r.model for r in server.requests if r.protocol in ("openai", "anthropic")]


@pytest.mark.parametrize("task", list(PROMPTS))
def test_each_task_reaches_the_model_classify_names(proxy: Proxy, fake: FakeServer, task: str):
    expected = decide(PROMPTS[task], proxy.table, proxy.classifier)
    assert expected.task == task and not expected.uncertain
    fake.default = Reply.ok(f"answer for {task}")
    r = proxy.chat(PROMPTS[task])
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == f"answer for {task}"
    assert _upstream_models(fake) == [split_model_id(expected.cell.primary)[1]]
    assert r.headers["x-routedeck-task"] == task
    assert r.headers["x-routedeck-cell"] == f"{task}/{expected.priority}"
    assert r.headers["x-routedeck-model"] == expected.cell.primary
    assert r.headers["x-routedeck-uncertain"] == "false"
    assert float(r.headers["x-routedeck-confidence"]) >= proxy.table.classifier.threshold
    # The key reached the upstream from the environment; RouteDeck's metadata did not.
    req = fake.requests[0]
    assert req.api_key == SECRET
    assert b"routedeck" not in req.body


def test_a_503_on_the_primary_lands_on_the_cells_fallback(proxy: Proxy, fake: FakeServer):
    cell = proxy.table.cell("code", "default")
    primary, fallback = split_model_id(cell.primary)[1], split_model_id(cell.fallback)[1]
    fake.route(primary, Reply.http(503, "overloaded"))
    fake.route(fallback, Reply.ok("from the fallback"))
    r = proxy.chat(PROMPTS["code"])
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "from the fallback"
    seen = _upstream_models(fake)
    assert seen[0] == primary and seen[-1] == fallback
    assert r.headers["x-routedeck-fallback"] == cell.fallback


def test_streaming_works_end_to_end(proxy: Proxy, fake: FakeServer):
    fake.default = Reply.ok("one two three four", delay=0.01)
    body = {"model": VIRTUAL_MODEL, "stream": True,
            "messages": [{"role": "user", "content": PROMPTS["creative"]}]}
    text, events = "", 0
    with proxy.client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["x-routedeck-task"] == "creative"
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            events += 1
            for choice in chunk.get("choices", []):
                text += (choice.get("delta") or {}).get("content") or ""
    assert text == "one two three four" and events >= 4
    expected = decide(PROMPTS["creative"], proxy.table, proxy.classifier).cell.primary
    assert _upstream_models(fake) == [split_model_id(expected)[1]]
    assert fake.requests[0].json["stream"] is True


def test_a_concrete_model_passes_through(proxy: Proxy, fake: FakeServer):
    r = proxy.chat(PROMPTS["code"], model="openai/gpt-5.2")
    assert r.status_code == 200, r.text
    assert _upstream_models(fake) == ["gpt-5.2"]
    assert not any(h.startswith("x-routedeck-") for h in r.headers)


def test_the_priority_header_picks_the_column(proxy: Proxy, fake: FakeServer):
    r = proxy.chat(PROMPTS["code"], headers={"x-routedeck-priority": "quality"})
    assert r.status_code == 200, r.text
    cell = proxy.table.cell("code", "quality")
    assert r.headers["x-routedeck-cell"] == "code/quality"
    assert _upstream_models(fake) == [split_model_id(cell.primary)[1]]
    assert fake.requests[0].protocol == ("anthropic" if cell.primary.startswith("anthropic/")
                                         else "openai")


def test_no_key_value_in_the_exported_files(proxy: Proxy):
    for path in proxy.folder.iterdir():
        if path.is_file() and path.name != "proxy.log":
            assert SECRET.encode() not in path.read_bytes(), path.name


def test_check_loads_the_config_with_litellms_loader(proxy: Proxy, tmp_path: Path):
    import shutil

    import yaml

    from tui.router.gateway.litellm_export import check_export

    expected = yaml.safe_load((proxy.folder / "config.yaml").read_text())
    result = check_export(proxy.folder, expected)
    assert result.ok, result.problems
    assert "routedeck/auto" in result.groups and "routedeck/code/default" in result.groups
    # A config that lost a group is caught.
    broken = tmp_path / "broken"
    shutil.copytree(proxy.folder, broken, ignore=shutil.ignore_patterns("proxy.log"))
    config = dict(expected)
    config["model_list"] = [e for e in expected["model_list"]
                            if e["model_name"] != "routedeck/baseline"]
    from tui.router.gateway.litellm_export import to_yaml

    (broken / "config.yaml").write_text(to_yaml(config) + "\n")
    result = check_export(broken, expected)
    assert not result.ok
    assert any("routedeck/baseline" in p for p in result.problems)
