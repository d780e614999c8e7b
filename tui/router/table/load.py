"""Loading ``routes.toml``: read, parse and validate it into a :class:`RoutingTable`.

Loading reports every problem of a file at once, each naming the file, the line and the key::

    routes.toml:41: routes.code.quality.primary: unknown provider "antropic" (known: openai, ...)

The table is built section by section (:func:`build_table`); each section's step reports its problems
to a :class:`~tui.router.table.check.Checker`, and only when there are some does the line locator
(:mod:`tui.router.table.locate`) run, so a clean load costs a parse and a validation pass.

Parsing a big file with ``tomllib`` (pure Python, character by character in strings) takes tens of
milliseconds, so parsed documents of files larger than
:data:`~tui.router.table.cache.CACHE_MIN_BYTES` are cached (:mod:`tui.router.table.cache`).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tui.router.classifier.rules import RuleError, compile_rule
from tui.router.files import read_regular_file
from tui.router.table.cache import CACHE_MIN_BYTES, cache_get, cache_put
from tui.router.table.check import (
    ENV_NAME,
    SECRET_KEY,
    Checker,
    KeyPath,
    Problem,
    TableError,
    check_names,
    close_match,
    format_key_path,
    kind_of,
    known_list,
    quote,
    rule_message,
    secret_reason,
    suggest,
)
from tui.router.table.locate import locate_problems
from tui.router.table.paths import display_path, resolve_routes_path, sha256_hex
from tui.router.types import (
    PROVIDER_KINDS,
    Baseline,
    Cell,
    ClassifierSettings,
    JudgeSettings,
    ModelProfile,
    Priority,
    Provider,
    RoutingTable,
    TaskType,
    Timeouts,
)

# A task type needs at least this many examples for the local classifier to learn it.
MIN_EXAMPLES = 5
REQUIRED_SECTIONS = ("tasks", "priorities", "routes", "baseline", "providers")
OPTIONAL_SECTIONS = ("classifier", "timeouts", "profiles", "judge", "version", "description")
ClassifierKind = Literal["local", "llm", "cascade"]
CLASSIFIER_KINDS: tuple[ClassifierKind, ...] = ("local", "llm", "cascade")
# A routes file larger than this is refused (the packaged one is about 400 KB).
MAX_ROUTES_BYTES = 8 * 1024 * 1024

# The keys each kind of table knows ("description" documents the file and is allowed anywhere).
_CELL_KEYS = ("primary", "fallback", "hedge_after_ms", "description")
_BASELINE_KEYS = ("model", "fallback", "description")
_CLASSIFIER_KEYS = ("kind", "threshold", "uncertain_route", "llm_model", "description")
_JUDGE_KEYS = ("model", "fallback", "auto", "instructions", "description")
_TIMEOUT_KEYS = (
    "connect", "first_token", "idle", "total", "max_retries", "max_retry_wait", "classifier",
    "description",
)
_PROVIDER_KEYS = ("kind", "base_url", "api_key_env", "price_provider", "description")
_PROFILE_KEYS = ("ttft_ms", "tokens_per_s", "description")
_TASK_KEYS = ("description", "rules", "vocabulary", "examples")
VOCABULARY_MAX_WORDS = 2  # a vocabulary entry is a word or a two-word phrase
_PRIORITY_KEYS = ("description", "cues")


def load_table(path: str | os.PathLike[str] | None = None) -> RoutingTable:
    """Read, parse and validate a routes file (see :func:`resolve_routes_path` for ``None``).

    Raises :class:`TableError` listing every problem (unreadable file, TOML syntax, validation).
    The table's ``path`` is the absolute path read and ``fingerprint`` the SHA-256 of its bytes.
    """
    p = resolve_routes_path(path)
    label = display_path(p)
    data = _read_routes_file(p, label)
    digest = sha256_hex(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise TableError([Problem(label, line, "", "the file is not UTF-8 text")]) from e
    text = text.removeprefix("\ufeff")
    cacheable = len(data) >= CACHE_MIN_BYTES
    doc = cache_get(digest) if cacheable else None
    from_cache = doc is not None
    if doc is None:
        doc = _parse(text, label=label)
    table = build_table(doc, path=p, text=text, fingerprint=digest, label=label)
    # Only a table that passed every check (the key check included) is cached: a key pasted
    # into routes.toml must not end up in the cache folder.
    if cacheable and not from_cache:
        cache_put(digest, doc)
    return table


def _read_routes_file(p: Path, label: str) -> bytes:
    """The bytes of a routes file: a regular file (not a FIFO, a device such as /dev/zero, or a
    folder) of at most :data:`MAX_ROUTES_BYTES`, opened without blocking."""
    try:
        return read_regular_file(p, MAX_ROUTES_BYTES)
    except OSError as e:
        raise TableError(
            [Problem(label, None, "", f"cannot read the file: {e.strerror or e}")]
        ) from e


def table_from_dict(
    doc: dict[str, Any], *, path: str | os.PathLike[str] | None = None, text: str | None = None
) -> RoutingTable:
    """Validate a parsed document and build the table; raises :class:`TableError`.

    ``text`` (the TOML the document was parsed from) gives problems their line numbers and the
    table its fingerprint; ``path`` is recorded as the table's path and names the file in messages.
    """
    p = resolve_routes_path(path) if path is not None else None
    fingerprint = sha256_hex(text.encode("utf-8")) if text is not None else None
    return build_table(doc, path=p, text=text, fingerprint=fingerprint, label=display_path(p))


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _parse(text: str, *, label: str) -> dict[str, Any]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        line = None
        if m := _TOML_POSITION.search(msg):
            line = int(m.group(1))
            msg = f"TOML syntax error at column {m.group(2)}: {msg[: m.start()]}"
        else:
            msg = "TOML syntax error: " + msg.replace(" (at end of document)", " at the end")
        raise TableError([Problem(label, line, "", msg)]) from None
    return doc



# --------------------------------------------------------------------------------------------
# Building the table, one section of routes.toml at a time
# --------------------------------------------------------------------------------------------


@dataclass
class _Known:
    """What the sections read so far tell the ones after them: the provider names (None when
    [providers] is missing or not a table, so that models are not checked against it) and the
    task types and priorities (``*_ok``: their section was a table, so names can be checked)."""

    provider_names: list[str] | None = None
    tasks: dict[str, TaskType] = field(default_factory=dict)
    tasks_ok: bool = False
    priorities: dict[str, Priority] = field(default_factory=dict)
    priorities_ok: bool = False


def build_table(
    doc: Any, *, path: Path | None, text: str | None, fingerprint: str | None, label: str
) -> RoutingTable:
    """Validate ``doc`` section by section and build the table; raises :class:`TableError`
    listing every problem, located in ``text`` when it is given."""
    if not isinstance(doc, dict):
        raise TableError([Problem(label, None, "", "the document must be a TOML table")])
    c = Checker()
    _check_top_level(c, doc)
    known = _Known()
    providers = _providers(c, doc, known)
    _tasks(c, doc, known)
    _priorities(c, doc, known)
    routes = _routes(c, doc, known)
    baseline = _baseline(c, doc, known)
    classifier = _classifier(c, doc, known)
    timeouts = _timeouts(c, doc)
    judge = _judge(c, doc, known.provider_names)
    profiles = _profiles(c, doc, known)
    c.secrets((), doc)  # secrets anywhere

    if c.items:
        raise TableError(locate_problems(c.items, label, text))
    return RoutingTable(
        tasks=known.tasks,
        priorities=known.priorities,
        routes=routes,
        baseline=baseline,
        classifier=classifier,
        providers=providers,
        profiles=profiles,
        timeouts=timeouts,
        judge=judge,
        raw=doc,
        path=path,
        fingerprint=fingerprint,
    )


def _section(c: Checker, doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The section ``name`` when the document has it and it is a table (a problem otherwise)."""
    if name not in doc:
        return None
    return c.table((name,), doc[name])


def _check_top_level(c: Checker, doc: dict[str, Any]) -> None:
    """Misspelled and missing sections, the version and the file's description."""
    known_top = REQUIRED_SECTIONS + OPTIONAL_SECTIONS
    misspelled: set[str] = set()
    for k in doc:
        if k not in known_top and not SECRET_KEY.fullmatch(k) and (m := close_match(k, known_top)):
            c.add((k,), f'unknown section; did you mean "{m}"?')
            misspelled.add(m)
    for s in REQUIRED_SECTIONS:
        if s not in doc and s not in misspelled:
            c.add((s,), f"missing required section [{s}]")
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        c.add(("version",), f"must be an integer, not {kind_of(version)}")
    elif isinstance(version, int) and version > 1:
        c.add(("version",), f"this file is version {version}; this RouteDeck reads version 1")
    c.string(("description",), doc.get("description"))


def _providers(c: Checker, doc: dict[str, Any], known: _Known) -> dict[str, Provider]:
    """The [providers] section; records the provider names in ``known``."""
    providers: dict[str, Provider] = {}
    if (sec := _section(c, doc, "providers")) is None:
        return providers
    known.provider_names = []
    for name, v in c.entries(("providers",), sec):
        known.provider_names.append(name)
        providers[name] = _provider(c, name, v)
    if not known.provider_names:
        c.add(("providers",), "no providers defined")
    return providers


def _provider(c: Checker, name: str, v: dict[str, Any]) -> Provider:
    p: KeyPath = ("providers", name)
    if not name.strip() or "/" in name:
        c.add(p, 'a provider name must be non-empty and contain no "/"')
    kind = v.get("kind")
    if kind is None:
        c.add(p + ("kind",), f"missing; one of {', '.join(PROVIDER_KINDS)}")
    elif not isinstance(kind, str):
        c.add(p + ("kind",), f"must be a string, not {kind_of(kind)}")
    elif kind not in PROVIDER_KINDS:
        c.add(
            p + ("kind",),
            f"unknown provider kind {quote(kind)} (known: {', '.join(PROVIDER_KINDS)})"
            + suggest(kind, PROVIDER_KINDS),
        )
    base_url = c.string(p + ("base_url",), v.get("base_url"))
    if base_url and not base_url.startswith(("http://", "https://")):
        c.add(p + ("base_url",), "must start with http:// or https://")
    key_env = v.get("api_key_env")
    if key_env is not None:
        key_env = c.string(p + ("api_key_env",), key_env) or None
        if key_env and not secret_reason(key_env) and not ENV_NAME.fullmatch(key_env):
            c.add(
                p + ("api_key_env",),
                "must be the NAME of an environment variable (letters, digits and _), "
                "e.g. OPENAI_API_KEY",
            )
    price = c.string(p + ("price_provider",), v.get("price_provider")) or None
    c.unknown_keys(p, v, _PROVIDER_KEYS)
    return Provider(
        name=name,
        kind=kind if kind in PROVIDER_KINDS else "simulated",
        base_url=base_url,
        api_key_env=key_env,
        price_provider=price,
    )


def _tasks(c: Checker, doc: dict[str, Any], known: _Known) -> None:
    """The [tasks] section, into ``known.tasks``."""
    if (sec := _section(c, doc, "tasks")) is None:
        return
    known.tasks_ok = True
    items = list(c.entries(("tasks",), sec))
    check_names(c, "tasks", "task", [n for n, _ in items])
    for name, v in items:
        known.tasks[name] = _task(c, name, v)
    if not items:
        c.add(("tasks",), "no task types defined")


def _task(c: Checker, name: str, v: dict[str, Any]) -> TaskType:
    p: KeyPath = ("tasks", name)
    if name.casefold() == "baseline":
        c.add(
            p,
            '"baseline" is reserved (classifier.uncertain_route uses it); rename the task',
        )
    description = c.string(p + ("description",), v.get("description"))
    rules = c.string_list(p + ("rules",), v.get("rules"))
    for i, rule in enumerate(rules):
        try:
            compile_rule(rule)
        except RuleError as e:
            c.add(p + ("rules", i), rule_message(rule, e))
    vocabulary = c.string_list(p + ("vocabulary",), v.get("vocabulary"))
    for i, entry in enumerate(vocabulary):
        n_words = len(entry.split())
        if n_words == 0:
            c.add(p + ("vocabulary", i), "empty entry")
        elif n_words > VOCABULARY_MAX_WORDS:
            c.add(p + ("vocabulary", i),
                  f"{quote(entry)} has {n_words} words; an entry is one word or a "
                  "two-word phrase")
    examples = _examples(c, p, v.get("examples"))
    c.unknown_keys(p, v, _TASK_KEYS)
    return TaskType(name, description, tuple(examples), tuple(rules), tuple(vocabulary))


def _examples(c: Checker, p: KeyPath, raw_examples: Any) -> list[str]:
    """A task's example prompts: strings, none empty, at least :data:`MIN_EXAMPLES` of them."""
    examples = c.string_list(p + ("examples",), raw_examples)
    for i, example in enumerate(examples):
        if not example.strip():
            c.add(p + ("examples", i), "empty example")
    n = sum(1 for example in examples if example.strip())
    if raw_examples is None:
        c.add(p + ("examples",), f"missing; give at least {MIN_EXAMPLES} example prompts")
    elif isinstance(raw_examples, list) and n < MIN_EXAMPLES:
        c.add(
            p + ("examples",),
            f"{n} example{'' if n == 1 else 's'}; a task needs at least {MIN_EXAMPLES} "
            "for the classifier to learn it",
        )
    return examples


def _priorities(c: Checker, doc: dict[str, Any], known: _Known) -> None:
    """The [priorities] section, into ``known.priorities``."""
    if (sec := _section(c, doc, "priorities")) is None:
        return
    known.priorities_ok = True
    items = list(c.entries(("priorities",), sec))
    check_names(c, "priorities", "priority", [n for n, _ in items])
    for name, v in items:
        p: KeyPath = ("priorities", name)
        description = c.string(p + ("description",), v.get("description"))
        cues = c.string_list(p + ("cues",), v.get("cues"))
        for i, cue in enumerate(cues):
            if not cue.strip():
                c.add(p + ("cues", i), "empty cue")
        c.unknown_keys(p, v, _PRIORITY_KEYS)
        known.priorities[name] = Priority(name, description, tuple(cues))
    if not items:
        c.add(("priorities",), "no priorities defined")


def _routes(c: Checker, doc: dict[str, Any], known: _Known) -> dict[tuple[str, str], Cell]:
    """The [routes] grid: one cell per (task, priority), every one of them present, in the
    order of the tasks and priorities."""
    routes: dict[tuple[str, str], Cell] = {}
    tasks, priorities = known.tasks, known.priorities
    task_names = list(tasks)
    if (sec := _section(c, doc, "routes")) is None:
        return routes
    present: set[tuple[str, str]] = set()
    for tname, tv in c.entries(("routes",), sec):
        p: KeyPath = ("routes", tname)
        if known.tasks_ok and tname not in tasks:
            c.add(
                p,
                f"no task {quote(tname)} in [tasks] (known: {known_list(task_names)})"
                + suggest(tname, task_names),
            )
        for pname, cv in c.entries(p, tv):
            present.add((tname, pname))
            cell = _route_cell(c, p + (pname,), cv, known)
            if cell is not None and tname in tasks and pname in priorities:
                routes[(tname, pname)] = cell
    for tname in tasks:
        for pname in priorities:
            if (tname, pname) not in present:
                c.add(
                    ("routes", tname, pname),
                    f"task {quote(tname)} has no cell for priority {quote(pname)}; add "
                    f"[{format_key_path(('routes', tname, pname))}] with a primary model",
                )
    # Order the grid as the tasks and priorities are ordered.
    return {(t, pr): routes[(t, pr)] for t in tasks for pr in priorities if (t, pr) in routes}


def _route_cell(c: Checker, cp: KeyPath, cv: dict[str, Any], known: _Known) -> Cell | None:
    """One cell of the grid, at ``cp`` = ("routes", task, priority)."""
    pname = cp[-1]
    if known.priorities_ok and pname not in known.priorities:
        priority_names = list(known.priorities)
        c.add(
            cp,
            f"no priority {quote(pname)} in [priorities] "
            f"(known: {known_list(priority_names)})" + suggest(str(pname), priority_names),
        )
    return _cell(c, cp, cv, known.provider_names)


def _baseline(c: Checker, doc: dict[str, Any], known: _Known) -> Baseline:
    if (sec := _section(c, doc, "baseline")) is None:
        return Baseline(model="")
    names = known.provider_names
    model = c.model(("baseline", "model"), sec.get("model"), names, required=True)
    fallback = c.model(("baseline", "fallback"), sec.get("fallback"), names, required=False)
    c.unknown_keys(("baseline",), sec, _BASELINE_KEYS)
    return Baseline(model or "", fallback)


def _classifier(c: Checker, doc: dict[str, Any], known: _Known) -> ClassifierSettings:
    classifier = ClassifierSettings()
    if (sec := _section(c, doc, "classifier")) is None:
        return classifier
    p: KeyPath = ("classifier",)
    given = c.string(p + ("kind",), sec.get("kind"), default=classifier.kind)
    kind = next((k for k in CLASSIFIER_KINDS if k == given), None)
    if kind is None:
        c.add(p + ("kind",), f'must be "local", "llm" or "cascade", not {quote(given)}')
        kind = classifier.kind
    threshold = c.number(
        p + ("threshold",),
        sec.get("threshold"),
        default=classifier.threshold,
        minimum=None,
        what="a number between 0 and 1",
    )
    if not 0.0 <= threshold <= 1.0:
        c.add(p + ("threshold",), f"must be between 0 and 1, not {threshold:g}")
    uncertain = c.string(
        p + ("uncertain_route",), sec.get("uncertain_route"), default=classifier.uncertain_route
    )
    if uncertain != "baseline" and known.tasks_ok and uncertain not in known.tasks:
        task_names = list(known.tasks)
        c.add(
            p + ("uncertain_route",),
            f'must be "baseline" or a task name (known: {known_list(task_names)}), '
            f"not {quote(uncertain)}" + suggest(uncertain, ["baseline", *task_names]),
        )
    llm_model = c.model(
        p + ("llm_model",), sec.get("llm_model"), known.provider_names, required=False
    )
    if kind in ("llm", "cascade") and llm_model is None and sec.get("llm_model") is None:
        c.add(p + ("llm_model",), f'missing; kind = "{kind}" needs the model that classifies')
    c.unknown_keys(p, sec, _CLASSIFIER_KEYS)
    return ClassifierSettings(kind, threshold, uncertain, llm_model)


def _profiles(c: Checker, doc: dict[str, Any], known: _Known) -> dict[str, ModelProfile]:
    profiles: dict[str, ModelProfile] = {}
    if (sec := _section(c, doc, "profiles")) is None:
        return profiles
    for model_id, v in c.entries(("profiles",), sec):
        p: KeyPath = ("profiles", model_id)
        c.model(p, model_id, known.provider_names, required=True)
        ttft = c.number(
            p + ("ttft_ms",), v.get("ttft_ms"), default=0.0, required=True, what="milliseconds"
        )
        speed = c.number(
            p + ("tokens_per_s",),
            v.get("tokens_per_s"),
            default=1.0,
            positive=True,
            required=True,
            what="tokens per second",
        )
        c.unknown_keys(p, v, _PROFILE_KEYS)
        profiles[model_id] = ModelProfile(ttft, speed)
    return profiles


def _judge(c: Checker, doc: dict[str, Any], provider_names: list[str] | None) -> JudgeSettings:
    """The [judge] section: its model (default: the baseline's), whether it runs after every
    run in the TUI, and its instructions."""
    judge = JudgeSettings()
    if "judge" not in doc or (sec := c.table(("judge",), doc["judge"])) is None:
        return judge
    p = ("judge",)
    model = c.model(p + ("model",), sec.get("model"), provider_names, required=False)
    fallback = c.model(p + ("fallback",), sec.get("fallback"), provider_names, required=False)
    auto = sec.get("auto", judge.auto)
    if not isinstance(auto, bool):
        c.add(p + ("auto",), f"must be true or false, not {kind_of(auto)}")
        auto = judge.auto
    instructions = c.string(
        p + ("instructions",), sec.get("instructions"), default=judge.instructions, nonempty=True
    )
    c.unknown_keys(p, sec, _JUDGE_KEYS)
    return JudgeSettings(model, fallback, auto, instructions if instructions.strip()
                         else judge.instructions)


def _timeouts(c: Checker, doc: dict[str, Any]) -> Timeouts:
    """The [timeouts] section (every value a positive number of seconds, retries a count)."""
    timeouts = Timeouts()
    if "timeouts" in doc and (sec := c.table(("timeouts",), doc["timeouts"])) is not None:
        p = ("timeouts",)
        seconds = "a number of seconds"
        timeouts = Timeouts(
            connect=c.number(
                p + ("connect",),
                sec.get("connect"),
                default=timeouts.connect,
                positive=True,
                what=seconds,
            ),
            first_token=c.number(
                p + ("first_token",),
                sec.get("first_token"),
                default=timeouts.first_token,
                positive=True,
                what=seconds,
            ),
            idle=c.number(
                p + ("idle",), sec.get("idle"), default=timeouts.idle, positive=True, what=seconds
            ),
            total=c.number(
                p + ("total",), sec.get("total"), default=timeouts.total, positive=True,
                what=seconds,
            ),
            max_retries=c.integer(
                p + ("max_retries",),
                sec.get("max_retries"),
                default=timeouts.max_retries,
                what="a whole number",
            )
            or 0,
            max_retry_wait=c.number(
                p + ("max_retry_wait",),
                sec.get("max_retry_wait"),
                default=timeouts.max_retry_wait,
                what=seconds,
            ),
            classifier=c.number(
                p + ("classifier",),
                sec.get("classifier"),
                default=timeouts.classifier,
                positive=True,
                what=seconds,
            ),
        )
        c.unknown_keys(p, sec, _TIMEOUT_KEYS)
    return timeouts


def _cell(
    c: Checker, path: KeyPath, v: dict[str, Any], providers: list[str] | None
) -> Cell | None:
    primary = c.model(path + ("primary",), v.get("primary"), providers, required=True)
    fallback = c.model(path + ("fallback",), v.get("fallback"), providers, required=False)
    hedge = c.integer(
        path + ("hedge_after_ms",),
        v.get("hedge_after_ms"),
        default=None,
        what="a whole number of milliseconds",
    )
    if hedge is not None and v.get("fallback") is None:
        c.add(
            path + ("hedge_after_ms",), "hedging starts the fallback model, but this cell has none"
        )
    if primary is not None and fallback == primary:
        c.add(
            path + ("fallback",),
            f'the fallback is the primary again ("{primary}"): choose a different model, or none',
        )
    c.unknown_keys(path, v, _CELL_KEYS)
    return Cell(primary, fallback, hedge) if primary is not None else None

