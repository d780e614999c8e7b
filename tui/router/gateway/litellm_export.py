"""``routedeck export litellm``: the routing table as a LiteLLM Proxy config.

:func:`export_litellm` writes into a folder everything ``litellm --config config.yaml`` needs to
serve the table's routing to real traffic::

    config.yaml            model_list, router_settings (fallbacks, retries, timeouts), the callback
    routedeck_callback.py  the callback LiteLLM loads (``callbacks: routedeck_callback.<instance>``)
    routes.toml            the exact bytes of the exported table (its sha256 is in config.yaml)
    classifier.npz         the trained classifier, loaded by each worker with numpy alone

The config's models:

- one entry per model of the grid and of the baseline, named by its RouteDeck id
  (``openai/gpt-5-mini``), so clients may also call a model by name (passed through untouched);
- one group per cell, ``routedeck/<task>/<priority>``, deployed on the cell's primary, with the
  cell's fallback in ``router_settings.fallbacks``; and ``routedeck/baseline`` likewise;
- the virtual model ``routedeck/auto`` that clients call, deployed on the uncertain route's cell,
  so a request the callback cannot route still gets an answer.

API keys appear only as ``os.environ/NAME`` references (the provider's ``api_key_env``), never as
values. ``api_base`` is written when the table's base URL differs from the provider's usual one or
``<PROVIDER>_BASE_URL`` overrides it at export time.

:func:`check_export` loads the written config with LiteLLM's own config loader, in a child process
run from the folder, and reports the model groups and the callback it found.

This module never imports LiteLLM (the check runs it in a child process).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.router.gateway.routing import BASELINE_GROUP, VIRTUAL_MODEL, cell_group
from tui.router.types import Cell, RoutingTable, Timeouts, split_model_id

CONFIG_NAME = "config.yaml"
CALLBACK_MODULE = "routedeck_callback"
CALLBACK_INSTANCE = "proxy_handler_instance"
ROUTES_NAME = "routes.toml"
MODEL_NAME = "classifier.npz"

# RouteDeck provider name -> (LiteLLM's provider prefix, the base URL LiteLLM uses for it). A
# provider listed here whose base URL is this one is written with LiteLLM's own prefix and no
# api_base; any other (or an overridden base URL) speaks the same wire protocol RouteDeck does:
# "openai/" or "anthropic/" with an api_base.
NATIVE_PROVIDERS: dict[str, tuple[str, str]] = {
    "openai": ("openai", "https://api.openai.com/v1"),
    "anthropic": ("anthropic", "https://api.anthropic.com"),
    "google": ("gemini", "https://generativelanguage.googleapis.com/v1beta/openai"),
    "groq": ("groq", "https://api.groq.com/openai/v1"),
    "deepseek": ("deepseek", "https://api.deepseek.com"),
    "openrouter": ("openrouter", "https://openrouter.ai/api/v1"),
    "perplexity": ("perplexity", "https://api.perplexity.ai"),
    "mistral": ("mistral", "https://api.mistral.ai/v1"),
    "together": ("together_ai", "https://api.together.xyz/v1"),
    "cerebras": ("cerebras", "https://api.cerebras.ai/v1"),
}


class ExportError(ValueError):
    """The table cannot be exported as it is (the message says what to change)."""


@dataclass
class ExportResult:
    out_dir: Path
    files: list[Path]
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# The config, as data
# --------------------------------------------------------------------------------------------


def _norm_url(url: str) -> str:
    return url.strip().rstrip("/")


def litellm_params(model_id: str, table: RoutingTable, env: Mapping[str, str]) -> dict[str, Any]:
    """How LiteLLM calls one RouteDeck model: its ``model``, ``api_base`` when overridden, and the
    key as an ``os.environ/NAME`` reference."""
    from tui.router.providers.registry import base_url_env_var

    provider_name, model = split_model_id(model_id)
    provider = table.providers[provider_name]
    if provider.kind == "simulated":
        raise ExportError(f"{model_id}: provider {provider_name!r} is simulated and cannot serve "
                          "real traffic: route that cell to a real model before exporting")
    env_url = env.get(base_url_env_var(provider_name), "").strip()
    base_url = env_url or provider.base_url
    native = NATIVE_PROVIDERS.get(provider_name)
    params: dict[str, Any] = {}
    if native is not None and not env_url and _norm_url(base_url) == _norm_url(native[1]):
        params["model"] = f"{native[0]}/{model}"
    else:
        prefix = "anthropic" if provider.kind == "anthropic" else "openai"
        params["model"] = f"{prefix}/{model}"
        if not base_url:
            raise ExportError(f"{model_id}: provider {provider_name!r} has no base_url (set it in "
                              f"routes.toml or {base_url_env_var(provider_name)})")
        params["api_base"] = base_url
    if provider.api_key_env:
        params["api_key"] = f"os.environ/{provider.api_key_env}"
    elif params["model"].startswith("openai/"):
        # A local server with no key: the OpenAI client still wants one; this is no secret.
        params["api_key"] = "no-key"
    return params


def _timeout_params(t: Timeouts) -> dict[str, Any]:
    # LiteLLM's timeout bounds a call (a whole non-streamed answer); stream_timeout bounds each
    # wait on a stream, the first token's included, so it takes the longer of the two waits.
    return {"timeout": t.total, "stream_timeout": max(t.first_token, t.idle)}


def _exported_cells(table: RoutingTable) -> dict[str, Cell]:
    """Model group -> cell, for every cell of the grid and the baseline."""
    cells = {cell_group(task, prio): cell for (task, prio), cell in table.routes.items()}
    cells[BASELINE_GROUP] = Cell(table.baseline.model, table.baseline.fallback)
    return cells


def uncertain_cell(table: RoutingTable) -> tuple[str, Cell]:
    """The group and cell a request takes when it cannot be routed (default priority)."""
    route, prio = table.classifier.uncertain_route, table.default_priority
    if route != "baseline" and (route, prio) in table.routes:
        return cell_group(route, prio), table.cell(route, prio)
    return BASELINE_GROUP, Cell(table.baseline.model, table.baseline.fallback)


def build_config(
    table: RoutingTable,
    env: Mapping[str, str] = os.environ,
    *,
    virtual_model: str = VIRTUAL_MODEL,
) -> dict[str, Any]:
    """The LiteLLM Proxy config for ``table`` as a dict (see the module docstring)."""
    t = table.timeouts
    cells = _exported_cells(table)
    models: list[str] = []
    for cell in cells.values():
        for m in (cell.primary, cell.fallback):
            if m and m not in models:
                models.append(m)
    params = {m: litellm_params(m, table, env) for m in models}

    def entry(name: str, model: str, **info: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model_name": name,
            "litellm_params": {**params[model], **_timeout_params(t)},
        }
        if info:
            out["model_info"] = info
        return out

    model_list = [entry(m, m) for m in models]
    for group, cell in cells.items():
        model_list.append(entry(group, cell.primary, routedeck_cell=group.removeprefix("routedeck/")))
    auto_group, auto_cell = uncertain_cell(table)
    model_list.append(entry(virtual_model, auto_cell.primary,
                            routedeck_cell="auto: routed per request by the routedeck callback"))
    fallbacks = [{g: [c.fallback]} for g, c in cells.items() if c.fallback]
    if auto_cell.fallback:
        fallbacks.append({virtual_model: [auto_cell.fallback]})
    return {
        "model_list": model_list,
        "litellm_settings": {
            "callbacks": [f"{CALLBACK_MODULE}.{CALLBACK_INSTANCE}"],
            "request_timeout": t.total,
        },
        "router_settings": {
            "num_retries": t.max_retries,
            "timeout": t.total,
            # RouteDeck retries 408/409/429 and falls back at once on 5xx and timeouts.
            "retry_policy": {
                "RateLimitErrorRetries": t.max_retries,
                "TimeoutErrorRetries": 0,
                "InternalServerErrorRetries": 0,
                "ServiceUnavailableErrorRetries": 0,
                "BadRequestErrorRetries": 0,
                "AuthenticationErrorRetries": 0,
                "NotFoundErrorRetries": 0,
                "ContentPolicyViolationErrorRetries": 0,
            },
            "fallbacks": fallbacks,
        },
    }


# --------------------------------------------------------------------------------------------
# Writing it
# --------------------------------------------------------------------------------------------


def _scalar(v: Any) -> str:
    # JSON scalars are YAML 1.2 scalars: strings are double-quoted with JSON escapes, so no
    # name from routes.toml can change the document's structure.
    return json.dumps(v, ensure_ascii=True)


_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _key(k: Any) -> str:
    k = str(k)
    return k if _BARE.fullmatch(k) and k not in ("true", "false", "null") else _scalar(k)


def to_yaml(obj: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and JSON scalars."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines.append(to_yaml(v, indent + 2))
            else:
                lines.append(f"{pad}{_key(k)}: {_flow(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                body = to_yaml(v, indent + 2)
                lines.append(f"{pad}- {body.lstrip()}")
            else:
                lines.append(f"{pad}- {_flow(v)}")
    else:
        lines.append(pad + _scalar(obj))
    return "\n".join(lines)


def _flow(v: Any) -> str:
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=True)  # empty, or a small flow collection
    return _scalar(v)


def _header(table: RoutingTable, source: Path, notes: list[str]) -> str:
    lines = [
        "# LiteLLM Proxy config written by `routedeck export litellm`. Export again rather",
        "# than editing: the callback checks that routes.toml beside it is the one exported.",
        f"# routes.toml: {_one_line(str(source))}",
        f"# sha256: {table.fingerprint}",
        f"# clients call {VIRTUAL_MODEL!r}; any other model name passes through untouched.",
        "# Keys are os.environ/NAME references: set those variables (and LITELLM_MASTER_KEY)",
        "# where the proxy runs, then: litellm --config config.yaml (from this folder)",
    ]
    lines += [f"# note: {_one_line(n)}" for n in notes]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _notes(table: RoutingTable) -> list[str]:
    t = table.timeouts
    notes = [
        f"timeouts: total {t.total:g} s -> timeout; max(first_token {t.first_token:g}, idle "
        f"{t.idle:g}) s -> stream_timeout; connect {t.connect:g} s and max_retry_wait "
        f"{t.max_retry_wait:g} s have no LiteLLM setting and are not carried over",
    ]
    hedged = [cell_group(*k) for k, c in table.routes.items() if c.hedge_after_ms]
    if hedged:
        notes.append("hedge_after_ms is not carried over (LiteLLM does not hedge): "
                     + ", ".join(hedged))
    if table.classifier.kind == "llm":
        notes.append("classifier.kind = 'llm': the proxy classifies with the local classifier")
    return notes


_CALLBACK_SOURCE = '''\
"""The RouteDeck callback for LiteLLM Proxy, written by `routedeck export litellm`.

config.yaml names it (litellm_settings.callbacks: {module}.{instance}). It needs RouteDeck
installed where the proxy runs (pip install "routedeck[litellm]"), and reads routes.toml and
classifier.npz from this folder once per worker.
"""

from pathlib import Path

from tui.router.gateway.litellm_callback import RouteDeckCallback

_HERE = Path(__file__).resolve().parent

{instance} = RouteDeckCallback(
    routes_path=_HERE / {routes!r},
    model_path=_HERE / {model!r},
    virtual_model={virtual!r},
    fingerprint={fingerprint!r},
)
'''


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def export_litellm(
    table: RoutingTable,
    out_dir: str | os.PathLike[str],
    env: Mapping[str, str] = os.environ,
    *,
    on_progress=None,
) -> ExportResult:
    """Write the LiteLLM Proxy folder for ``table`` (see the module docstring)."""
    if table.path is None or not table.fingerprint:
        raise ExportError("the table was not loaded from a file: save it first")
    source = Path(table.path)
    data = source.read_bytes()
    if hashlib.sha256(data).hexdigest() != table.fingerprint:
        raise ExportError(f"{source} changed since it was loaded: load it again and re-export")
    config = build_config(table, env)
    notes = _notes(table)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    from tui.router.classifier.cache import load_or_train

    model = load_or_train(table, on_progress=on_progress)
    model.save(out / MODEL_NAME)
    _write(out / ROUTES_NAME, data)
    callback = _CALLBACK_SOURCE.format(
        module=CALLBACK_MODULE, instance=CALLBACK_INSTANCE, routes=ROUTES_NAME, model=MODEL_NAME,
        virtual=VIRTUAL_MODEL, fingerprint=table.fingerprint,
    )
    _write(out / f"{CALLBACK_MODULE}.py", callback.encode("utf-8"))
    text = _header(table, source, notes) + to_yaml(config) + "\n"
    _write(out / CONFIG_NAME, text.encode("utf-8"))
    files = [out / n for n in (CONFIG_NAME, f"{CALLBACK_MODULE}.py", ROUTES_NAME, MODEL_NAME)]
    return ExportResult(out, files, config, notes)


# --------------------------------------------------------------------------------------------
# Checking it with LiteLLM's own loader
# --------------------------------------------------------------------------------------------

# Run in a child process from the export folder: LiteLLM's loader sets process-wide state and
# imports the callback module relative to the working directory.
_CHECK_SCRIPT = r"""
import asyncio, json, sys
from importlib.metadata import version
import litellm
from litellm.proxy.proxy_server import ProxyConfig

router, model_list, general = asyncio.run(
    ProxyConfig().load_config(router=None, config_file_path=sys.argv[1]))
callbacks = [c for c in litellm.callbacks if type(c).__name__ == "RouteDeckCallback"]
gw = callbacks[0].gateway if callbacks else None
if gw is not None:
    gw.load()
print(json.dumps({
    "litellm": version("litellm"),
    "groups": sorted(router.get_model_names()) if router is not None else [],
    "fallbacks": getattr(router, "fallbacks", None) or [],
    "callback": bool(callbacks),
    "broken": gw.broken if gw else None,
    "degraded": gw.degraded if gw else None,
}))
"""


@dataclass
class CheckResult:
    ok: bool
    problems: list[str]
    groups: list[str]
    litellm_version: str


def check_export(out_dir: str | os.PathLike[str], expected: dict[str, Any] | None = None,
                 *, timeout: float = 300.0) -> CheckResult:
    """Load ``out_dir/config.yaml`` with LiteLLM's config loader; every model group and fallback
    the export wrote must be there, and the callback must load the table and the classifier.
    Raises ExportError when LiteLLM is not installed or its loader fails."""
    out = Path(out_dir).resolve()
    env = dict(os.environ)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price map
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHECK_SCRIPT, str(out / CONFIG_NAME)],
            cwd=out, env=env, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ExportError(f"LiteLLM's config loader did not finish in {timeout:g} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        if "No module named 'litellm'" in proc.stderr:
            raise ExportError("--check needs LiteLLM: pip install 'routedeck[litellm]'")
        raise ExportError(f"LiteLLM could not load {out / CONFIG_NAME}: {last}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    problems: list[str] = []
    if not report["callback"]:
        problems.append("LiteLLM did not load the routedeck callback")
    if report.get("broken"):
        problems.append(f"the callback cannot route: {report['broken']}")
    if report.get("degraded"):
        problems.append(f"the callback's classifier is unavailable: {report['degraded']}")
    if expected is not None:
        wanted = {e["model_name"] for e in expected["model_list"]}
        missing = sorted(wanted - set(report["groups"]))
        if missing:
            problems.append("model groups LiteLLM does not have: " + ", ".join(missing))
        want_fb = {k: v for d in expected["router_settings"]["fallbacks"] for k, v in d.items()}
        got_fb = {k: v for d in report["fallbacks"] for k, v in d.items()}
        if want_fb != got_fb:
            problems.append("LiteLLM's fallbacks differ from the exported ones")
    return CheckResult(not problems, problems, report["groups"], report["litellm"])
