"""Load, validate and save ``routes.toml``, the routing table a person edits.

Loading reports every problem of a file at once, each naming the file, the line and the key::

    routes.toml:41: routes.code.quality.primary: unknown provider "antropic" (known: openai, ...)

``tomllib`` gives no line numbers, so a small locator (:class:`_Locator`) scans the text for table
headers, dotted keys, inline tables and array elements, and maps every key path to its line. It only
runs when there is a problem to report, so a clean load costs a parse and a validation pass.

Saving rebuilds the TOML document from ``table.raw`` (so keys this program does not know stay where
they were) updated with the table's known fields, validates it, refuses to overwrite a file that
changed on disk since it was loaded, keeps the previous file as ``<name>.bak`` and replaces the
target atomically (temporary file in the same folder, fsync, ``os.replace``). A symlinked target is
replaced by a regular file: the save never writes through the link into the packaged default.

Parsing a big file with ``tomllib`` (pure Python, character by character in strings) takes tens of
milliseconds, so parsed documents of files larger than :data:`CACHE_MIN_BYTES` are cached as JSON,
keyed by the SHA-256 of the file's bytes, in ``$ROUTEDECK_CACHE_DIR/tables`` (default: the user
cache folder; an empty ``ROUTEDECK_CACHE_DIR`` turns the cache off). A cached document is only used
for the exact bytes it was parsed from, and it is validated like a fresh one.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import glob
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from tui.router.classifier.rules import RuleError, compile_rule
from tui.router.files import read_regular_file
from tui.router.types import (
    DEFAULT_JUDGE_INSTRUCTIONS,
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

__all__ = [
    "CACHE_MIN_BYTES",
    "CLASSIFIER_KINDS",
    "MIN_EXAMPLES",
    "REQUIRED_SECTIONS",
    "ROUTES_FILENAME",
    "MAX_ROUTES_BYTES",
    "ConflictError",
    "MergeResult",
    "Problem",
    "SaveResult",
    "TableError",
    "default_routes_path",
    "dumps_table",
    "load_table",
    "merge_edits",
    "resolve_routes_path",
    "save_table",
    "save_table_result",
    "table_from_dict",
    "table_problems",
]

ROUTES_FILENAME = "routes.toml"
# A task type needs at least this many examples for the local classifier to learn it.
MIN_EXAMPLES = 5
REQUIRED_SECTIONS = ("tasks", "priorities", "routes", "baseline", "providers")
OPTIONAL_SECTIONS = ("classifier", "timeouts", "profiles", "judge", "version", "description")
CLASSIFIER_KINDS = ("local", "llm", "cascade")
# Files smaller than this parse fast enough without the cache.
CACHE_MIN_BYTES = 32 * 1024
# A routes file larger than this is refused (the packaged one is about 400 KB).
MAX_ROUTES_BYTES = 8 * 1024 * 1024
_CACHE_KEEP = 16
_CACHE_FORMAT = 1

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
# An unknown key this close to a known one (difflib ratio) is reported as a misspelling.
_MISSPELLING_CUTOFF = 0.75


# --------------------------------------------------------------------------------------------
# Problems and errors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a routing table, located as precisely as the file allows."""

    file: str
    line: int | None
    key: str  # the key path, e.g. "routes.code.quality.primary" ("" for the whole file)
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class TableError(ValueError):
    """A routing table that cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class ConflictError(RuntimeError):
    """The file on disk changed since the table was loaded (or is another file); not overwritten."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def default_routes_path() -> Path:
    """The routes.toml shipped inside the package (``tui/data/routes.toml``)."""
    return Path(str(resources.files("tui") / "data" / ROUTES_FILENAME))


def resolve_routes_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The absolute path a load would read: ``path``, else ./routes.toml if it exists, else the
    packaged default. Symlinks are not resolved (a save replaces the link, not its target)."""
    if path is None:
        local = Path.cwd() / ROUTES_FILENAME
        return local if local.exists() else default_routes_path()
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _display(path: Path | None) -> str:
    """How a file is named in messages: relative to the current folder when inside it."""
    if path is None:
        return ROUTES_FILENAME
    with contextlib.suppress(ValueError, OSError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_table(path: str | os.PathLike[str] | None = None) -> RoutingTable:
    """Read, parse and validate a routes file (see :func:`resolve_routes_path` for ``None``).

    Raises :class:`TableError` listing every problem (unreadable file, TOML syntax, validation).
    The table's ``path`` is the absolute path read and ``fingerprint`` the SHA-256 of its bytes.
    """
    p = resolve_routes_path(path)
    label = _display(p)
    data = _read_routes_file(p, label)
    digest = _sha256(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise TableError([Problem(label, line, "", "the file is not UTF-8 text")]) from e
    text = text.removeprefix("\ufeff")
    cacheable = len(data) >= CACHE_MIN_BYTES
    doc = _cache_get(digest) if cacheable else None
    from_cache = doc is not None
    if doc is None:
        doc = _parse(text, label=label)
    table = _build(doc, path=p, text=text, fingerprint=digest, label=label)
    # Only a table that passed every check (the key check included) is cached: a key pasted
    # into routes.toml must not end up in the cache folder.
    if cacheable and not from_cache:
        _cache_put(digest, doc)
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
    fingerprint = _sha256(text.encode("utf-8")) if text is not None else None
    return _build(doc, path=p, text=text, fingerprint=fingerprint, label=_display(p))


def table_problems(table: RoutingTable) -> list[Problem]:
    """Every problem a save of ``table`` would report (empty when it can be saved)."""
    try:
        _build(
            _to_doc(table), path=table.path, text=None, fingerprint=None, label=_display(table.path)
        )
    except TableError as e:
        return e.problems
    return []


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
# Validation
# --------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Values that look like API keys: a known vendor prefix followed by a long token with a digit...
# (No look-behind for "not after a letter": it would make the search much slower; see below.)
_SECRET_PREFIX = re.compile(r"(sk-ant-|sk-|gsk_|AIza|xai-|pplx-)([A-Za-z0-9_-]{16,})")
# ...or a whole value that is one long random-looking token.
_TOKEN_VALUE = re.compile(r"\s*([A-Za-z0-9_\-+/=.]{32,})\s*")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+=]{24,}")
# Keys whose value is a secret by name.
_SECRET_KEY = re.compile(
    r"(api[_-]?key|key|token|secret|password|passwd|access[_-]?token|auth[_-]?token|bearer)",
    re.IGNORECASE,
)
_KEY_ADVICE = (
    "remove it: keys are read from the environment only; set api_key_env to the NAME of the "
    "variable that holds the key (e.g. OPENAI_API_KEY)"
)


def _entropy(s: str) -> float:
    n = len(s)
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _key_prefix_reason(value: str) -> str | None:
    # Plain substring tests first (fast), then the regular expression.
    if "sk-" in value or "gsk_" in value or "AIza" in value or "xai-" in value or "pplx-" in value:
        for m in _SECRET_PREFIX.finditer(value):
            if m.start() and value[m.start() - 1].isalnum():
                continue  # inside a word: "task-..."
            if any(ch.isdigit() for ch in m.group(2)):
                return f'looks like an API key (it starts with "{m.group(1)}")'
    return None


def _secret_reason(value: str, *, prefixes: bool = True) -> str | None:
    """Why ``value`` looks like a secret (never quoting it), or None. ``prefixes=False`` skips
    the vendor-prefix test (the caller knows none of the prefixes occurs in the value)."""
    if prefixes and (reason := _key_prefix_reason(value)):
        return reason
    if len(value) < 32 or not (token := _TOKEN_VALUE.fullmatch(value)):
        return None
    for run in _TOKEN_RUN.findall(token.group(1)):
        has_digit = any(ch.isdigit() for ch in run)
        has_alpha = any(ch.isalpha() for ch in run)
        if has_digit and has_alpha and _entropy(run) >= 3.5:
            return "looks like a secret token (a long random string)"
    return None


def _q(value: Any) -> str:
    """A value quoted for a message: never a secret, no control characters, not too long."""
    if not isinstance(value, str):
        return repr(value)
    if _secret_reason(value):
        return "(a value that looks like a secret, not shown)"
    if len(value) > 60:
        value = value[:57] + "..."
    out = "".join(
        ch
        if ch.isprintable() and ch not in '"\\'
        else ("\\" + ch if ch in '"\\' else repr(ch)[1:-1])
        for ch in value
    )
    return f'"{out}"'


def _fmt_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        seg = part if _BARE_KEY.fullmatch(part) else _q(part)
        out += ("." if out else "") + seg
    return out


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "a table"
    return "a date/time"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _close(name: str, known: list[str] | tuple[str, ...]) -> str | None:
    """The known name ``name`` is probably a misspelling of, or None."""
    lowered = {k.casefold(): k for k in known}
    if name.casefold() in lowered and lowered[name.casefold()] != name:
        return lowered[name.casefold()]
    m = difflib.get_close_matches(name.casefold(), list(lowered), n=1, cutoff=_MISSPELLING_CUTOFF)
    return lowered[m[0]] if m else None


def _known_list(names: list[str]) -> str:
    return ", ".join(n if _BARE_KEY.fullmatch(n) else _q(n) for n in names)


def _suggest(name: str, known: list[str]) -> str:
    m = _close(name, known)
    return f'; did you mean "{m}"?' if m else ""


KeyPath = tuple[str | int, ...]


class _Checker:
    """Collects (key path, message) pairs while building the table's parts."""

    def __init__(self) -> None:
        self.items: list[tuple[KeyPath, str]] = []

    def add(self, path: KeyPath, message: str) -> None:
        self.items.append((path, message))

    def table(self, path: KeyPath, v: Any) -> dict[str, Any] | None:
        if isinstance(v, dict):
            return v
        self.add(path, f"must be a table ([{_fmt_path(path)}]), not {_kind_of(v)}")
        return None

    def entries(self, path: KeyPath, d: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The named sub-tables of a section; a "description" string documents the section."""
        for name, v in d.items():
            if name == "description" and isinstance(v, str):
                continue
            if isinstance(v, dict):
                yield name, v
            else:
                self.add(path + (name,), f"must be a table, not {_kind_of(v)}")

    def unknown_keys(self, path: KeyPath, d: dict[str, Any], known: tuple[str, ...]) -> None:
        for k in d:
            if k in known or _SECRET_KEY.fullmatch(k):
                continue
            if m := _close(k, known):
                self.add(path + (k,), f'unknown key; did you mean "{m}"?')

    def string(
        self,
        path: KeyPath,
        v: Any,
        *,
        default: str = "",
        required: bool = False,
        nonempty: bool = False,
    ) -> str:
        if v is None:
            if required:
                self.add(path, "missing")
            return default
        if not isinstance(v, str):
            self.add(path, f"must be a string, not {_kind_of(v)}")
            return default
        if nonempty and not v.strip():
            self.add(path, "must not be empty")
        return v

    def string_list(self, path: KeyPath, v: Any) -> list[str]:
        if v is None:
            return []
        if not isinstance(v, list):
            self.add(path, f"must be an array of strings, not {_kind_of(v)}")
            return []
        out = []
        for i, item in enumerate(v):
            if isinstance(item, str):
                out.append(item)
            else:
                self.add(path + (i,), f"must be a string, not {_kind_of(item)}")
        return out

    def number(
        self,
        path: KeyPath,
        v: Any,
        *,
        default: float,
        minimum: float | None = 0.0,
        positive: bool = False,
        what: str = "a number",
        required: bool = False,
    ) -> float:
        if v is None:
            if required:
                self.add(path, f"missing; give {what}")
            return default
        if not _is_number(v) or math.isnan(v):
            self.add(path, f"must be {what}, not {_kind_of(v)}")
            return default
        if positive and v <= 0:
            self.add(path, f"must be greater than 0, not {v}")
        elif minimum is not None and v < minimum:
            self.add(path, f"must not be negative, not {v}")
        return float(v)

    def integer(self, path: KeyPath, v: Any, *, default: int | None, what: str) -> int | None:
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            self.add(path, f"must be {what}, not {_kind_of(v)}")
            return default
        if v < 0:
            self.add(path, f"must not be negative, not {v}")
        return v

    def model(
        self, path: KeyPath, v: Any, providers: list[str] | None, *, required: bool
    ) -> str | None:
        if v is None:
            if required:
                self.add(path, 'missing; give a model id like "openai/gpt-5-mini"')
            return None
        if not isinstance(v, str):
            self.add(path, f'must be a model id string like "provider/model", not {_kind_of(v)}')
            return None
        if _secret_reason(v):
            return None  # reported by the secret scan, never echoed
        provider, sep, model = v.partition("/")
        if not sep or not provider or not model:
            self.add(path, f'model id {_q(v)} must look like "provider/model"')
            return None
        if any(not ch.isprintable() or ch.isspace() for ch in v):
            self.add(path, f"model id {_q(v)} contains spaces or control characters")
            return None
        if providers is not None and provider not in providers:
            self.add(
                path,
                f"unknown provider {_q(provider)} (known: {_known_list(providers)})"
                + _suggest(provider, providers),
            )
        return v

    def secrets(self, path: KeyPath, v: Any) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                if _SECRET_KEY.fullmatch(k) and isinstance(item, str) and item.strip():
                    self.add(path + (k,), f'a key named "{k}" holds a value; {_KEY_ADVICE}')
                else:
                    self.secrets(path + (k,), item)
        elif isinstance(v, list):
            # One substring scan for the whole array (examples are most of the file).
            hinted = _key_prefix_reason("\x00".join(x for x in v if isinstance(x, str))) is not None
            for i, item in enumerate(v):
                if not isinstance(item, str):
                    self.secrets(path + (i,), item)
                elif reason := _secret_reason(item, prefixes=hinted):
                    self.add(path + (i,), f"{reason}; {_KEY_ADVICE}")
        elif isinstance(v, str) and (reason := _secret_reason(v)):
            self.add(path, f"{reason}; {_KEY_ADVICE}")


def _rule_message(rule: str, error: RuleError) -> str:
    """Why a rule is refused; a pattern Python's ``re`` accepts but RE2 refuses (look-around,
    back-references) gets the reason rules run on RE2."""
    message = f"invalid regular expression {_q(rule)}: {error}"
    try:
        re.compile(rule)
    except (re.error, RecursionError, OverflowError):
        return message
    return (
        f"{message} (rules run on RE2, which matches in linear time so that no rule can hang "
        "the app; it has no look-around or back-references)"
    )


def _names_check(c: _Checker, section: str, what: str, names: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        path: KeyPath = (section, name)
        if not name.strip():
            c.add(path, f"empty {what} name")
            continue
        if any(not ch.isprintable() for ch in name):
            c.add(path, f"{what} name contains control characters")
        low = name.casefold()
        if low in seen:
            c.add(
                path,
                f"duplicate {what} name: {_q(name)} and {_q(seen[low])} differ only in letter case",
            )
        else:
            seen[low] = name


def _build(
    doc: Any, *, path: Path | None, text: str | None, fingerprint: str | None, label: str
) -> RoutingTable:
    c = _Checker()
    if not isinstance(doc, dict):
        raise TableError([Problem(label, None, "", "the document must be a TOML table")])

    # -- top level ---------------------------------------------------------------------------
    known_top = REQUIRED_SECTIONS + OPTIONAL_SECTIONS
    misspelled: set[str] = set()
    for k in doc:
        if k not in known_top and not _SECRET_KEY.fullmatch(k) and (m := _close(k, known_top)):
            c.add((k,), f'unknown section; did you mean "{m}"?')
            misspelled.add(m)
    for s in REQUIRED_SECTIONS:
        if s not in doc and s not in misspelled:
            c.add((s,), f"missing required section [{s}]")
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        c.add(("version",), f"must be an integer, not {_kind_of(version)}")
    elif isinstance(version, int) and version > 1:
        c.add(("version",), f"this file is version {version}; this RouteDeck reads version 1")
    c.string(("description",), doc.get("description"))

    # -- providers ---------------------------------------------------------------------------
    providers: dict[str, Provider] = {}
    provider_names: list[str] | None = None
    if "providers" in doc and (sec := c.table(("providers",), doc["providers"])) is not None:
        provider_names = []
        for name, v in c.entries(("providers",), sec):
            p: KeyPath = ("providers", name)
            provider_names.append(name)
            if not name.strip() or "/" in name:
                c.add(p, 'a provider name must be non-empty and contain no "/"')
            kind = v.get("kind")
            if kind is None:
                c.add(p + ("kind",), f"missing; one of {', '.join(PROVIDER_KINDS)}")
            elif not isinstance(kind, str):
                c.add(p + ("kind",), f"must be a string, not {_kind_of(kind)}")
            elif kind not in PROVIDER_KINDS:
                c.add(
                    p + ("kind",),
                    f"unknown provider kind {_q(kind)} (known: {', '.join(PROVIDER_KINDS)})"
                    + _suggest(kind, PROVIDER_KINDS),
                )
            base_url = c.string(p + ("base_url",), v.get("base_url"))
            if base_url and not base_url.startswith(("http://", "https://")):
                c.add(p + ("base_url",), "must start with http:// or https://")
            key_env = v.get("api_key_env")
            if key_env is not None:
                key_env = c.string(p + ("api_key_env",), key_env) or None
                if key_env and not _secret_reason(key_env) and not _ENV_NAME.fullmatch(key_env):
                    c.add(
                        p + ("api_key_env",),
                        "must be the NAME of an environment variable (letters, digits and _), "
                        "e.g. OPENAI_API_KEY",
                    )
            price = c.string(p + ("price_provider",), v.get("price_provider")) or None
            c.unknown_keys(p, v, _PROVIDER_KEYS)
            providers[name] = Provider(
                name=name,
                kind=kind if kind in PROVIDER_KINDS else "simulated",  # type: ignore[arg-type]
                base_url=base_url,
                api_key_env=key_env,
                price_provider=price,
            )
        if not provider_names:
            c.add(("providers",), "no providers defined")

    # -- tasks -------------------------------------------------------------------------------
    tasks: dict[str, TaskType] = {}
    tasks_ok = False
    if "tasks" in doc and (sec := c.table(("tasks",), doc["tasks"])) is not None:
        tasks_ok = True
        items = list(c.entries(("tasks",), sec))
        _names_check(c, "tasks", "task", [n for n, _ in items])
        for name, v in items:
            p = ("tasks", name)
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
                    c.add(p + ("rules", i), _rule_message(rule, e))
            vocabulary = c.string_list(p + ("vocabulary",), v.get("vocabulary"))
            for i, entry in enumerate(vocabulary):
                n_words = len(entry.split())
                if n_words == 0:
                    c.add(p + ("vocabulary", i), "empty entry")
                elif n_words > VOCABULARY_MAX_WORDS:
                    c.add(p + ("vocabulary", i),
                          f"{_q(entry)} has {n_words} words; an entry is one word or a "
                          "two-word phrase")
            raw_examples = v.get("examples")
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
            c.unknown_keys(p, v, _TASK_KEYS)
            tasks[name] = TaskType(name, description, tuple(examples), tuple(rules),
                                   tuple(vocabulary))
        if not items:
            c.add(("tasks",), "no task types defined")

    # -- priorities --------------------------------------------------------------------------
    priorities: dict[str, Priority] = {}
    priorities_ok = False
    if "priorities" in doc and (sec := c.table(("priorities",), doc["priorities"])) is not None:
        priorities_ok = True
        items = list(c.entries(("priorities",), sec))
        _names_check(c, "priorities", "priority", [n for n, _ in items])
        for name, v in items:
            p = ("priorities", name)
            description = c.string(p + ("description",), v.get("description"))
            cues = c.string_list(p + ("cues",), v.get("cues"))
            for i, cue in enumerate(cues):
                if not cue.strip():
                    c.add(p + ("cues", i), "empty cue")
            c.unknown_keys(p, v, _PRIORITY_KEYS)
            priorities[name] = Priority(name, description, tuple(cues))
        if not items:
            c.add(("priorities",), "no priorities defined")

    # -- routes ------------------------------------------------------------------------------
    routes: dict[tuple[str, str], Cell] = {}
    task_names, priority_names = list(tasks), list(priorities)
    if "routes" in doc and (sec := c.table(("routes",), doc["routes"])) is not None:
        present: set[tuple[str, str]] = set()
        for tname, tv in c.entries(("routes",), sec):
            p = ("routes", tname)
            if tasks_ok and tname not in tasks:
                c.add(
                    p,
                    f"no task {_q(tname)} in [tasks] (known: {_known_list(task_names)})"
                    + _suggest(tname, task_names),
                )
            for pname, cv in c.entries(p, tv):
                cp = p + (pname,)
                present.add((tname, pname))
                if priorities_ok and pname not in priorities:
                    c.add(
                        cp,
                        f"no priority {_q(pname)} in [priorities] "
                        f"(known: {_known_list(priority_names)})" + _suggest(pname, priority_names),
                    )
                cell = _cell(c, cp, cv, provider_names)
                if cell is not None and tname in tasks and pname in priorities:
                    routes[(tname, pname)] = cell
        for tname in tasks:
            for pname in priorities:
                if (tname, pname) not in present:
                    c.add(
                        ("routes", tname, pname),
                        f"task {_q(tname)} has no cell for priority {_q(pname)}; add "
                        f"[{_fmt_path(('routes', tname, pname))}] with a primary model",
                    )
        # Order the grid as the tasks and priorities are ordered.
        routes = {(t, pr): routes[(t, pr)] for t in tasks for pr in priorities if (t, pr) in routes}

    # -- baseline ----------------------------------------------------------------------------
    baseline = Baseline(model="")
    if "baseline" in doc and (sec := c.table(("baseline",), doc["baseline"])) is not None:
        model = c.model(("baseline", "model"), sec.get("model"), provider_names, required=True)
        fallback = c.model(
            ("baseline", "fallback"), sec.get("fallback"), provider_names, required=False
        )
        c.unknown_keys(("baseline",), sec, _BASELINE_KEYS)
        baseline = Baseline(model or "", fallback)

    # -- classifier --------------------------------------------------------------------------
    classifier = ClassifierSettings()
    if "classifier" in doc and (sec := c.table(("classifier",), doc["classifier"])) is not None:
        p = ("classifier",)
        kind = c.string(p + ("kind",), sec.get("kind"), default=classifier.kind)
        if kind not in CLASSIFIER_KINDS:
            c.add(p + ("kind",), f'must be "local", "llm" or "cascade", not {_q(kind)}')
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
        if uncertain != "baseline" and tasks_ok and uncertain not in tasks:
            c.add(
                p + ("uncertain_route",),
                f'must be "baseline" or a task name (known: {_known_list(task_names)}), '
                f"not {_q(uncertain)}" + _suggest(uncertain, ["baseline", *task_names]),
            )
        llm_model = c.model(
            p + ("llm_model",), sec.get("llm_model"), provider_names, required=False
        )
        if kind in ("llm", "cascade") and llm_model is None and sec.get("llm_model") is None:
            c.add(p + ("llm_model",), f'missing; kind = "{kind}" needs the model that classifies')
        c.unknown_keys(p, sec, _CLASSIFIER_KEYS)
        classifier = ClassifierSettings(kind, threshold, uncertain, llm_model)  # type: ignore[arg-type]

    # -- timeouts and the judge -------------------------------------------------------------
    timeouts = _timeouts(c, doc)
    judge = _judge(c, doc, provider_names)

    # -- profiles ----------------------------------------------------------------------------
    profiles: dict[str, ModelProfile] = {}
    if "profiles" in doc and (sec := c.table(("profiles",), doc["profiles"])) is not None:
        for model_id, v in c.entries(("profiles",), sec):
            p = ("profiles", model_id)
            c.model(p, model_id, provider_names, required=True)
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

    # -- secrets anywhere --------------------------------------------------------------------
    c.secrets((), doc)

    if c.items:
        raise TableError(_problems(c.items, label, text))
    return RoutingTable(
        tasks=tasks,
        priorities=priorities,
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


def _judge(c: _Checker, doc: dict[str, Any], provider_names: list[str] | None) -> JudgeSettings:
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
        c.add(p + ("auto",), f"must be true or false, not {_kind_of(auto)}")
        auto = judge.auto
    instructions = c.string(
        p + ("instructions",), sec.get("instructions"), default=judge.instructions, nonempty=True
    )
    c.unknown_keys(p, sec, _JUDGE_KEYS)
    return JudgeSettings(model, fallback, auto, instructions if instructions.strip()
                         else judge.instructions)


def _timeouts(c: _Checker, doc: dict[str, Any]) -> Timeouts:
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
    c: _Checker, path: KeyPath, v: dict[str, Any], providers: list[str] | None
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


def _problems(items: list[tuple[KeyPath, str]], label: str, text: str | None) -> list[Problem]:
    locator = _Locator(text) if text is not None else None
    seen: set[tuple[KeyPath, str]] = set()
    out: list[Problem] = []
    for path, message in items:
        if (path, message) in seen:
            continue
        seen.add((path, message))
        line = locator.line_of(path) if locator is not None else None
        out.append(Problem(label, line, _fmt_path(path), message))
    # In the order of the file; problems with no line (missing sections) first.
    return sorted(out, key=lambda pr: pr.line or 0)


# --------------------------------------------------------------------------------------------
# The line locator
# --------------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


_WS = re.compile(r"[ \t]*")
_WS_NL_COMMENTS = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_BASIC_STR = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LITERAL_STR = re.compile(r"'[^'\n]*'")
_ML_BASIC_STR = re.compile(r'"""(?:[^\\]|\\.)*?"""(?:""?(?!"))?', re.DOTALL)
_ML_LITERAL_STR = re.compile(r"'''.*?'''(?:''?(?!'))?", re.DOTALL)
_DATETIME = re.compile(
    r"\d{4}-\d\d-\d\d(?:[Tt ]\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)?)?"
)
_SCALAR = re.compile(r"[^\s,\]\}#]+")


class _Locator:
    """Maps key paths to the line where they appear in a TOML text (which parsed without error).

    Knows table headers (``[a."b c".d]``, ``[[a]]``), dotted keys, inline tables and array
    elements (path ``(..., "examples", 3)``). A path not found is looked up by its parents, so a
    missing key points at its table's header.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.lines: dict[KeyPath, int] = {}
        with contextlib.suppress(_Stop, IndexError, tomllib.TOMLDecodeError):
            self._scan()

    def line_of(self, path: KeyPath) -> int | None:
        for n in range(len(path), 0, -1):
            if (line := self.lines.get(path[:n])) is not None:
                return line
        return None

    # -- scanning ------------------------------------------------------------------------------

    def _line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def _record(self, base: KeyPath, key: KeyPath, pos: int) -> None:
        line = self._line(pos)
        for n in range(1, len(key) + 1):
            self.lines.setdefault(base + key[:n], line)

    def _skip(self, pattern: re.Pattern[str]) -> None:
        m = pattern.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def _peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def _expect(self, s: str) -> None:
        if not self._peek(s):
            raise _Stop
        self.pos += len(s)

    def _key(self) -> KeyPath:
        parts: list[str | int] = []
        while True:
            self._skip(_WS)
            text, pos = self.text, self.pos
            if m := _BASIC_STR.match(text, pos):
                parts.append(tomllib.loads("k = " + m.group())["k"])
            elif m := _LITERAL_STR.match(text, pos):
                parts.append(m.group()[1:-1])
            elif m := _BARE_KEY.match(text, pos):
                parts.append(m.group())
            else:
                raise _Stop
            self.pos = m.end()
            self._skip(_WS)
            if not self._peek("."):
                return tuple(parts)
            self.pos += 1

    def _scan(self) -> None:
        current: KeyPath = ()
        tables_of_arrays: dict[KeyPath, int] = {}
        n = len(self.text)
        while True:
            self._skip(_WS_NL_COMMENTS)
            if self.pos >= n:
                return
            start = self.pos
            if self._peek("[["):
                self.pos += 2
                key = self._key()
                self._expect("]]")
                index = tables_of_arrays.get(key, -1) + 1
                tables_of_arrays[key] = index
                current = key + (index,)
                self._record((), current, start)
            elif self._peek("["):
                self.pos += 1
                current = self._key()
                self._expect("]")
                self._record((), current, start)
            else:
                key = self._key()
                self._expect("=")
                self._skip(_WS)
                self._record(current, key, start)
                self._value(current + key)
            # The rest of the line: spaces and a comment.
            self._skip(_WS)
            if self.pos < n and self.text[self.pos] == "#":
                self._skip(_WS_NL_COMMENTS)
            elif self.pos < n and self.text[self.pos] not in "\r\n":
                end = self.text.find("\n", self.pos)
                self.pos = n if end < 0 else end

    def _value(self, path: KeyPath) -> None:
        text, pos = self.text, self.pos
        ch = text[pos]
        if ch == "[":
            self.pos += 1
            index = 0
            while True:
                self._skip(_WS_NL_COMMENTS)
                if self._peek("]"):
                    self.pos += 1
                    return
                self._record(path, (index,), self.pos)
                self._value(path + (index,))
                self._skip(_WS_NL_COMMENTS)
                if self._peek(","):
                    self.pos += 1
                    index += 1
                elif not self._peek("]"):
                    raise _Stop
        elif ch == "{":
            self.pos += 1
            while True:
                self._skip(_WS_NL_COMMENTS)
                if self._peek("}"):
                    self.pos += 1
                    return
                start = self.pos
                key = self._key()
                self._expect("=")
                self._skip(_WS)
                self._record(path, key, start)
                self._value(path + key)
                self._skip(_WS_NL_COMMENTS)
                if self._peek(","):
                    self.pos += 1
                elif not self._peek("}"):
                    raise _Stop
        else:
            for pattern in (
                _ML_BASIC_STR,
                _ML_LITERAL_STR,
                _BASIC_STR,
                _LITERAL_STR,
                _DATETIME,
                _SCALAR,
            ):
                if m := pattern.match(text, pos):
                    self.pos = m.end()
                    return
            raise _Stop


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and type(a) is not dict and a == b


def _merge(old: Any, updates: dict[str, Any], soft: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of ``old`` with ``updates`` applied in place. A None update deletes the key; an
    empty ``soft`` update is not added when the key was absent; an equal value keeps its old
    spelling (10 stays 10 rather than becoming 10.0)."""
    new = dict(old) if isinstance(old, dict) else {}
    for k, v in updates.items():
        if v is None:
            new.pop(k, None)
        elif k in soft and not v and k not in new:
            continue
        elif not (k in new and _same(new[k], v)):
            new[k] = v
    return new


def _section(old: Any, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A name -> table section: entries keep their old places, documentation strings stay,
    entries that are gone are dropped and new ones are appended."""
    new: dict[str, Any] = {}
    for k, v in old.items() if isinstance(old, dict) else ():
        if k in entries:
            new[k] = entries[k]
        elif not isinstance(v, dict):
            new[k] = v
    for k, v in entries.items():
        new.setdefault(k, v)
    return new


def _sub(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _to_doc(table: RoutingTable) -> dict[str, Any]:
    """The TOML document of ``table``: ``table.raw`` updated with the table's known fields."""
    raw = table.raw if isinstance(table.raw, dict) else {}
    sections: dict[str, Any] = {}
    sections["baseline"] = _merge(
        raw.get("baseline"), {"model": table.baseline.model, "fallback": table.baseline.fallback}
    )
    cl = table.classifier
    if "classifier" in raw or cl != ClassifierSettings():
        sections["classifier"] = _merge(
            raw.get("classifier"),
            {
                "kind": cl.kind,
                "threshold": cl.threshold,
                "uncertain_route": cl.uncertain_route,
                "llm_model": cl.llm_model,
            },
        )
    jd = table.judge
    if "judge" in raw or jd != JudgeSettings():
        # The default instructions are written only when the file had some (or they changed).
        had = isinstance(raw.get("judge"), dict) and "instructions" in raw["judge"]
        keep = had or jd.instructions != DEFAULT_JUDGE_INSTRUCTIONS
        sections["judge"] = _merge(
            raw.get("judge"),
            {
                "model": jd.model,
                "fallback": jd.fallback,
                "auto": jd.auto,
                "instructions": jd.instructions if keep else None,
            },
            soft=("auto",),
        )
    to = table.timeouts
    if "timeouts" in raw or to != Timeouts():
        # "total" is written when the file has it or it differs from the default, so a file
        # from before it existed is not rewritten just to add it.
        has_total = isinstance(raw.get("timeouts"), dict) and "total" in raw["timeouts"]
        sections["timeouts"] = _merge(
            raw.get("timeouts"),
            {
                "connect": to.connect,
                "first_token": to.first_token,
                "idle": to.idle,
                "total": to.total if has_total or to.total != Timeouts().total else None,
                "max_retries": to.max_retries,
                "max_retry_wait": to.max_retry_wait,
                # Written when the file has it or it differs from the default (as "total").
                "classifier": to.classifier
                if _sub(raw, "timeouts", "classifier") is not None
                or to.classifier != Timeouts().classifier
                else None,
            },
        )
    sections["priorities"] = _section(
        raw.get("priorities"),
        {
            name: _merge(
                _sub(raw, "priorities", name),
                {"description": pr.description, "cues": list(pr.cues)},
                soft=("description", "cues"),
            )
            for name, pr in table.priorities.items()
        },
    )
    sections["providers"] = _section(
        raw.get("providers"),
        {
            name: _merge(
                _sub(raw, "providers", name),
                {
                    "kind": pv.kind,
                    "base_url": pv.base_url,
                    "api_key_env": pv.api_key_env,
                    "price_provider": pv.price_provider,
                },
                soft=("base_url",),
            )
            for name, pv in table.providers.items()
        },
    )
    if "profiles" in raw or table.profiles:
        sections["profiles"] = _section(
            raw.get("profiles"),
            {
                model_id: _merge(
                    _sub(raw, "profiles", model_id),
                    {"ttft_ms": pf.ttft_ms, "tokens_per_s": pf.tokens_per_s},
                )
                for model_id, pf in table.profiles.items()
            },
        )
    by_task: dict[str, dict[str, dict[str, Any]]] = {}
    for (tname, pname), cell in table.routes.items():
        by_task.setdefault(tname, {})[pname] = _merge(
            _sub(raw, "routes", tname, pname),
            {
                "primary": cell.primary,
                "fallback": cell.fallback,
                "hedge_after_ms": cell.hedge_after_ms,
            },
        )
    sections["routes"] = _section(
        raw.get("routes"),
        {t: _section(_sub(raw, "routes", t), cells) for t, cells in by_task.items()},
    )
    sections["tasks"] = _section(
        raw.get("tasks"),
        {
            name: _merge(
                _sub(raw, "tasks", name),
                {
                    "description": t.description,
                    "rules": list(t.rules),
                    "vocabulary": list(t.vocabulary),
                    "examples": list(t.examples),
                },
                soft=("description", "rules", "vocabulary"),
            )
            for name, t in table.tasks.items()
        },
    )
    doc: dict[str, Any] = {}
    for k, v in raw.items():
        doc[k] = sections.pop(k) if k in sections else v
    doc.update(sections)
    return doc


def _render(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The TOML text of ``doc`` and the document that text parses back to.

    Multi-line strings read best, but tomli-w writes a carriage return inside one as a plain
    line break; when the text does not parse back to the same document, plain strings are used.
    """
    text = tomli_w.dumps(doc, multiline_strings=True)
    parsed = tomllib.loads(text)
    if parsed != doc:
        text = tomli_w.dumps(doc, multiline_strings=False)
        parsed = tomllib.loads(text)
    return text, parsed


def dumps_table(table: RoutingTable) -> str:
    """The TOML text a save of ``table`` would write."""
    return _render(_to_doc(table))[0]


def _save_target(table: RoutingTable, path: str | os.PathLike[str] | None) -> Path:
    if path is not None:
        return resolve_routes_path(path)
    if table.path is None:
        return Path.cwd() / ROUTES_FILENAME
    target = Path(os.path.abspath(table.path))
    if target == Path(os.path.abspath(default_routes_path())):
        # Never edit the packaged default: a table loaded from it is saved in the current folder.
        return Path.cwd() / ROUTES_FILENAME
    return target


@dataclass(frozen=True)
class SaveResult:
    """What :func:`save_table_result` did: ``table`` as saved (or as already on disk);
    ``written`` is False when the file already held this table, so nothing was written and no
    ``.bak`` was rotated ("no changes"); ``removed_temp_files`` counts leftovers of interrupted
    saves cleaned up on the way."""

    table: RoutingTable
    written: bool
    path: Path
    removed_temp_files: int = 0


def save_table(
    table: RoutingTable, path: str | os.PathLike[str] | None = None, *, force: bool = False
) -> RoutingTable:
    """Write ``table`` atomically and return it as saved (new ``path``, ``fingerprint``, ``raw``).

    :func:`save_table_result` does the work and also says whether anything was written.
    """
    return save_table_result(table, path, force=force).table


def save_table_result(
    table: RoutingTable, path: str | os.PathLike[str] | None = None, *, force: bool = False
) -> SaveResult:
    """Write ``table`` atomically; a :class:`SaveResult`.

    The target is ``path``, else ``table.path``, else ./routes.toml; a table loaded from the
    packaged default is saved to ./routes.toml, never into the package. The table is validated
    first (:class:`TableError`, nothing written). If the target exists and is not the file the
    table was loaded from, unchanged, :class:`ConflictError` is raised unless ``force``. The old
    file is kept as ``<name>.bak``. A symlink at the target is replaced by a regular file.

    Re-reading the file, comparing its fingerprint and replacing it happen under an exclusive
    lock on ``.<name>.lock`` beside it, so of two processes saving at once one wins and the
    other gets :class:`ConflictError` (nothing is lost silently). Under that lock, temporary
    files that killed saves left beside the target are removed. When the file on disk already
    holds this table (the same document; with ``force``, the same bytes), nothing is written
    and ``written`` is False.
    """
    target = _save_target(table, path)
    label = _display(target)
    text, parsed = _render(_to_doc(table))
    data = text.encode("utf-8")
    digest = _sha256(data)
    new_table = _build(parsed, path=target, text=None, fingerprint=digest, label=label)

    with _save_lock(target, label):
        removed = _remove_stale_temps(target)
        old: bytes | None = target.read_bytes() if target.exists() else None
        if old is not None and not force:
            _check_unchanged(table, target, old, label)
        if old is not None and (old == data if force else _same_document(old, data, parsed)):
            on_disk = replace(new_table, fingerprint=_sha256(old))
            return SaveResult(on_disk, False, target, removed)
        if old is not None:
            try:
                mode = target.stat().st_mode & 0o7777
            except OSError:
                mode = 0o644
            _atomic_write(target.with_name(target.name + ".bak"), old, mode)
        else:
            mode = 0o644
        _atomic_write(target, data, mode)
    if len(data) >= CACHE_MIN_BYTES:
        _cache_put(digest, new_table.raw)
    return SaveResult(new_table, True, target, removed)


def _check_unchanged(table: RoutingTable, target: Path, old: bytes, label: str) -> None:
    same_file = table.path is not None and Path(os.path.abspath(table.path)) == target
    if not same_file:
        raise ConflictError(
            target,
            f"{label} already exists and is not the file this table was loaded "
            "from; save with force to overwrite it",
        )
    if table.fingerprint is None or _sha256(old) != table.fingerprint:
        raise ConflictError(
            target,
            f"{label} changed on disk since it was loaded; reload it, or save "
            "with force to overwrite the changes",
        )


def _same_document(old: bytes, data: bytes, parsed: dict[str, Any]) -> bool:
    """The file's bytes say the same as what a save would write (same bytes, or the same TOML
    document: a hand-written file saved with no edit is not rewritten, its comments stay)."""
    if old == data:
        return True
    try:
        return tomllib.loads(old.decode("utf-8").removeprefix("\ufeff")) == parsed
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


# How long a save waits for another process's save to finish before reporting a conflict.
SAVE_LOCK_WAIT_S = 10.0


@contextlib.contextmanager
def _save_lock(target: Path, label: str) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.lock`` beside ``target`` (fcntl.flock; released by
    the kernel when the process dies, so a killed save never leaves it held). Where no lock
    file can be made (a read-only folder) the save goes on unlocked and fails on its own."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: saves are not serialised
        yield
        return
    lock_path = target.with_name(f".{target.name}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + SAVE_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConflictError(
                        target, f"{label} is being saved by another process; try again"
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


# Temporary files of our saves are named ".<name>.<random>.tmp" (and ".<name>.bak.<random>.tmp").
_TEMP_PATTERN = ".{name}.*.tmp"


def _remove_stale_temps(target: Path) -> int:
    """Remove temporary files that killed saves left beside ``target``; how many. Called with
    the save lock held: every save of ours writes its temporary files under that lock, so any
    of ours seen now belongs to a save that died."""
    removed = 0
    for leftover in target.parent.glob(_TEMP_PATTERN.format(name=glob.escape(target.name))):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(leftover.lstat().st_mode):
                leftover.unlink()
                removed += 1
    return removed


def _atomic_write(target: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file beside ``target``, fsync it, then rename it over
    ``target`` (replacing a symlink itself, not what it points to)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --------------------------------------------------------------------------------------------
# Merging edits onto a file that changed on disk
# --------------------------------------------------------------------------------------------

CellKey = tuple[str, str]


@dataclass(frozen=True)
class MergeResult:
    """``table``: the file on disk (``theirs``) with the user's edited cells applied; it keeps
    theirs' path and fingerprint, so saving it checks against the file as it is now.
    ``applied``: the (task, priority) cells written onto theirs, in grid order. ``conflicts``:
    cells both sides changed, differently (``applied`` includes them: the user's edit wins),
    and edited cells the new file no longer has (not applied)."""

    table: RoutingTable
    applied: list[CellKey]
    conflicts: list[CellKey]


def merge_edits(base: RoutingTable, mine: RoutingTable, theirs: RoutingTable) -> MergeResult:
    """Apply the cells edited in ``mine`` (relative to ``base``, the table as loaded) onto
    ``theirs`` (the file as it is on disk now). Only grid cells are merged: the grid is what a
    person edits; every other part of the result is theirs."""
    merged = theirs
    applied: list[CellKey] = []
    conflicts: list[CellKey] = []
    for key, my_cell in mine.routes.items():
        base_cell = base.routes.get(key)
        if my_cell == base_cell:
            continue  # not edited
        their_cell = theirs.routes.get(key)
        if their_cell is None:
            conflicts.append(key)  # the new file has no such task or priority any more
            continue
        if their_cell == my_cell:
            continue  # both made the same edit: nothing to apply
        if their_cell != base_cell:
            conflicts.append(key)
        merged = merged.with_cell(*key, my_cell)
        applied.append(key)
    return MergeResult(merged, applied, conflicts)


# --------------------------------------------------------------------------------------------
# The parse cache
# --------------------------------------------------------------------------------------------


def _cache_dir() -> Path | None:
    env = os.environ.get("ROUTEDECK_CACHE_DIR")
    if env is not None:
        return Path(env) / "tables" if env.strip() else None
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("routedeck")) / "tables"
    except Exception:  # pragma: no cover - no usable cache folder: parse every time
        return None


def _cache_get(digest: str) -> dict[str, Any] | None:
    folder = _cache_dir()
    if folder is None:
        return None
    try:
        obj = json.loads((folder / f"{digest}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if (
        isinstance(obj, dict)
        and obj.get("format") == _CACHE_FORMAT
        and obj.get("sha256") == digest
        and isinstance(obj.get("doc"), dict)
    ):
        return obj["doc"]
    return None


def _cache_put(digest: str, doc: dict[str, Any]) -> None:
    folder = _cache_dir()
    if folder is None:
        return
    try:
        payload = json.dumps(
            {"format": _CACHE_FORMAT, "sha256": digest, "doc": doc}, ensure_ascii=False
        )
    except (TypeError, ValueError):
        return  # dates and times do not go through JSON: such files are parsed every time
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
            os.replace(tmp, folder / f"{digest}.json")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        entries = sorted(folder.glob("*.json"), key=lambda e: e.stat().st_mtime, reverse=True)
        for stale in entries[_CACHE_KEEP:]:
            stale.unlink()
    except OSError:
        pass
