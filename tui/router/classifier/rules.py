"""The regular expressions of routes.toml's ``rules``, compiled for a linear-time engine.

A rule is written by whoever edits routes.toml and runs on every prompt a person types. With
Python's backtracking ``re`` a rule such as ``^(a+)+$`` takes exponential time on a prompt of
thirty-odd "a"s followed by "!": the app would hang. Rules therefore run on RE2 (google-re2),
which matches in time linear in the prompt for every pattern it accepts. RE2 refuses what it
cannot run in linear time (look-ahead and look-behind, back-references, repetition counts over
1000); :func:`compile_rule` raises :class:`RuleError` with RE2's reason, and loading the table
reports it with the rule's line and key.

Differences from ``re`` worth knowing when writing a rule: ``\\w``, ``\\d``, ``\\s`` and ``\\b``
are ASCII only (use ``\\pL``, ``\\p{N}`` for letters and digits of every script); ``(?i)``,
``(?m)``, ``(?s)`` and named groups ``(?P<name>...)`` work as in Python.

Usage::

    rx = compile_rule(r"Traceback \\(most recent call last\\)")   # or RuleError
    m = rx.search(prompt)                                      # None, or m.group(0), m.start()
"""

from __future__ import annotations

from typing import Any

import re2

__all__ = ["RuleError", "compile_rule", "ENGINE"]

ENGINE = "RE2"
# Memory RE2 may use for one compiled rule (its default is 8 MiB; a rule over this is refused).
_MAX_MEM = 8 << 20


class RuleError(ValueError):
    """A rule RE2 cannot compile; the message says why (never quoting more than the pattern)."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own message to stderr otherwise
    options.max_mem = _MAX_MEM
    return options


def compile_rule(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (an object with ``search`` like ``re.Pattern``'s)."""
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RuleError(f"{reason}") from None
    except (TypeError, UnicodeEncodeError) as exc:
        raise RuleError(f"not a usable pattern: {exc}") from None
