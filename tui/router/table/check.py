"""Checking a routes document: the problems it reports, the checker that collects them while the
table is built, secret detection, and the "did you mean" name suggestions."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tui.router.classifier.rules import RuleError

# An unknown key this close to a known one (difflib ratio) is reported as a misspelling.
_MISSPELLING_CUTOFF = 0.75


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



BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Values that look like API keys: a known vendor prefix followed by a long token with a digit...
# (No look-behind for "not after a letter": it would make the search much slower; see below.)
_SECRET_PREFIX = re.compile(r"(sk-ant-|sk-|gsk_|AIza|xai-|pplx-)([A-Za-z0-9_-]{16,})")
# ...or a whole value that is one long random-looking token.
_TOKEN_VALUE = re.compile(r"\s*([A-Za-z0-9_\-+/=.]{32,})\s*")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+=]{24,}")
# Keys whose value is a secret by name.
SECRET_KEY = re.compile(
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


def secret_reason(value: str, *, prefixes: bool = True) -> str | None:
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


def quote(value: Any) -> str:
    """A value quoted for a message: never a secret, no control characters, not too long."""
    if not isinstance(value, str):
        return repr(value)
    if secret_reason(value):
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


def format_key_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        seg = part if BARE_KEY.fullmatch(part) else quote(part)
        out += ("." if out else "") + seg
    return out


def kind_of(v: Any) -> str:
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


def close_match(name: str, known: Sequence[str]) -> str | None:
    """The known name ``name`` is probably a misspelling of, or None."""
    lowered = {k.casefold(): k for k in known}
    if name.casefold() in lowered and lowered[name.casefold()] != name:
        return lowered[name.casefold()]
    m = difflib.get_close_matches(name.casefold(), list(lowered), n=1, cutoff=_MISSPELLING_CUTOFF)
    return lowered[m[0]] if m else None


def known_list(names: list[str]) -> str:
    return ", ".join(n if BARE_KEY.fullmatch(n) else quote(n) for n in names)


def suggest(name: str, known: Sequence[str]) -> str:
    m = close_match(name, known)
    return f'; did you mean "{m}"?' if m else ""


KeyPath = tuple[str | int, ...]


class Checker:
    """Collects (key path, message) pairs while building the table's parts."""

    def __init__(self) -> None:
        self.items: list[tuple[KeyPath, str]] = []

    def add(self, path: KeyPath, message: str) -> None:
        self.items.append((path, message))

    def table(self, path: KeyPath, v: Any) -> dict[str, Any] | None:
        if isinstance(v, dict):
            return v
        self.add(path, f"must be a table ([{format_key_path(path)}]), not {kind_of(v)}")
        return None

    def entries(self, path: KeyPath, d: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The named sub-tables of a section; a "description" string documents the section."""
        for name, v in d.items():
            if name == "description" and isinstance(v, str):
                continue
            if isinstance(v, dict):
                yield name, v
            else:
                self.add(path + (name,), f"must be a table, not {kind_of(v)}")

    def unknown_keys(self, path: KeyPath, d: dict[str, Any], known: tuple[str, ...]) -> None:
        for k in d:
            if k in known or SECRET_KEY.fullmatch(k):
                continue
            if m := close_match(k, known):
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
            self.add(path, f"must be a string, not {kind_of(v)}")
            return default
        if nonempty and not v.strip():
            self.add(path, "must not be empty")
        return v

    def string_list(self, path: KeyPath, v: Any) -> list[str]:
        if v is None:
            return []
        if not isinstance(v, list):
            self.add(path, f"must be an array of strings, not {kind_of(v)}")
            return []
        out = []
        for i, item in enumerate(v):
            if isinstance(item, str):
                out.append(item)
            else:
                self.add(path + (i,), f"must be a string, not {kind_of(item)}")
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
            self.add(path, f"must be {what}, not {kind_of(v)}")
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
            self.add(path, f"must be {what}, not {kind_of(v)}")
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
            self.add(path, f'must be a model id string like "provider/model", not {kind_of(v)}')
            return None
        if secret_reason(v):
            return None  # reported by the secret scan, never echoed
        provider, sep, model = v.partition("/")
        if not sep or not provider or not model:
            self.add(path, f'model id {quote(v)} must look like "provider/model"')
            return None
        if any(not ch.isprintable() or ch.isspace() for ch in v):
            self.add(path, f"model id {quote(v)} contains spaces or control characters")
            return None
        if providers is not None and provider not in providers:
            self.add(
                path,
                f"unknown provider {quote(provider)} (known: {known_list(providers)})"
                + suggest(provider, providers),
            )
        return v

    def secrets(self, path: KeyPath, v: Any) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                if SECRET_KEY.fullmatch(k) and isinstance(item, str) and item.strip():
                    self.add(path + (k,), f'a key named "{k}" holds a value; {_KEY_ADVICE}')
                else:
                    self.secrets(path + (k,), item)
        elif isinstance(v, list):
            # One substring scan for the whole array (examples are most of the file).
            hinted = _key_prefix_reason("\x00".join(x for x in v if isinstance(x, str))) is not None
            for i, item in enumerate(v):
                if not isinstance(item, str):
                    self.secrets(path + (i,), item)
                elif reason := secret_reason(item, prefixes=hinted):
                    self.add(path + (i,), f"{reason}; {_KEY_ADVICE}")
        elif isinstance(v, str) and (reason := secret_reason(v)):
            self.add(path, f"{reason}; {_KEY_ADVICE}")


def rule_message(rule: str, error: RuleError) -> str:
    """Why a rule is refused; a pattern Python's ``re`` accepts but RE2 refuses (look-around,
    back-references) gets the reason rules run on RE2."""
    message = f"invalid regular expression {quote(rule)}: {error}"
    try:
        re.compile(rule)
    except (re.error, RecursionError, OverflowError):
        return message
    return (
        f"{message} (rules run on RE2, which matches in linear time so that no rule can hang "
        "the app; it has no look-around or back-references)"
    )


def check_names(c: Checker, section: str, what: str, names: list[str]) -> None:
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
                f"duplicate {what} name: {quote(name)} and {quote(seen[low])} differ only in letter case",
            )
        else:
            seen[low] = name

