"""Workloads: the prompts a projection prices, read from JSONL files or from the run log.

A workload file has one JSON object per line: ``prompt`` (a non-empty string) and optionally
``task_type`` (the true task, for accuracy), ``output_tokens`` and ``priority``. Every bad line is
reported at once (:class:`WorkloadError`). Input tokens are ESTIMATED (:func:`estimate_tokens`);
output tokens assumed when not given are :data:`DEFAULT_OUTPUT_TOKENS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.router.files import read_regular_file
from tui.router.run.metrics import estimate_tokens as _estimate_tokens

# Output tokens assumed per task type when neither the item nor the run log says (a typical
# answer's length for that kind of work; the README documents these figures).
DEFAULT_OUTPUT_TOKENS: dict[str, int] = {
    "code": 600,
    "math": 400,
    "extraction": 250,
    "creative": 700,
    "factual": 300,
    "general": 450,
}
UNKNOWN_TASK_OUTPUT_TOKENS = 400  # a task type DEFAULT_OUTPUT_TOKENS does not list
CHARS_PER_TOKEN = 4  # the input-token estimate: ceil(len(prompt) / 4)
# A bad workload file's message lists this many problems (WorkloadError.problems has them all).
MAX_LISTED_PROBLEMS = 200


@dataclass(frozen=True)
class WorkloadItem:
    prompt: str
    # The true task type, when the workload is labelled (accuracy is reported on these).
    task_type: str | None = None
    # The answer's length when known (else the run log's average or a default is assumed).
    output_tokens: int | None = None
    # A priority to route with (e.g. replaying a logged run); None infers it from the prompt.
    priority: str | None = None
    line: int = 0  # line number in the file it came from (0: not from a file)


class WorkloadError(ValueError):
    """A workload that cannot be used. ``problems`` holds ``(line, message)`` for every bad line
    (line 0: the file as a whole); the message lists them as ``name:line: message``."""

    def __init__(self, name: str, problems: list[tuple[int, str]]):
        self.name = name
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = [
            f"{self.name}:{line}: {msg}" if line else f"{self.name}: {msg}"
            for line, msg in self.problems[:MAX_LISTED_PROBLEMS]
        ]
        more = len(self.problems) - MAX_LISTED_PROBLEMS
        if more > 0:
            shown.append(f"{self.name}: … and {more} more bad line{'s' if more > 1 else ''}")
        return "\n".join(shown)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_workload(lines: Iterable[str | bytes], name: str = "workload") -> list[WorkloadItem]:
    """Workload items from JSONL lines (``str`` or ``bytes``; blank lines are skipped).

    Each line is an object with ``prompt`` (a non-empty string) and optionally ``task_type``
    (string or null), ``output_tokens`` (a non-negative integer or null) and ``priority``
    (string or null); other keys are ignored. Every bad line is reported at once, with its number,
    in one :class:`WorkloadError`.
    """
    items: list[WorkloadItem] = []
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append((number, f"not UTF-8 text (byte {exc.start + 1})"))
                continue
        else:
            line = raw
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((number, f"not JSON ({exc.msg}, column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append((number, 'expected a JSON object like {"prompt": "..."}'))
            continue
        item = _item(obj, number)
        if isinstance(item, str):
            problems.append((number, item))
            continue
        items.append(item)
    if problems:
        raise WorkloadError(name, problems)
    if not items:
        raise WorkloadError(name, [(0, "no prompts in the file")])
    return items


def _item(obj: dict[str, Any], number: int) -> WorkloadItem | str:
    """The workload item of one line's JSON object, or why it is not one."""
    bad: list[str] = []
    prompt = obj.get("prompt")
    if "prompt" not in obj:
        bad.append("'prompt' is missing")
    elif not isinstance(prompt, str):
        bad.append(f"'prompt' must be a string, not {_json_kind(prompt)}")
    elif not prompt.strip():
        bad.append("'prompt' is empty")
    task_type = obj.get("task_type")
    if task_type is not None and (not isinstance(task_type, str) or not task_type.strip()):
        bad.append("'task_type' must be a non-empty string or null")
    out = obj.get("output_tokens")
    if out is not None:
        if isinstance(out, float) and out.is_integer():
            out = int(out)
        if not _is_int(out):
            bad.append(f"'output_tokens' must be a whole number, not {_json_kind(out)}")
        elif out < 0:
            bad.append(f"'output_tokens' must not be negative, not {out}")
    priority = obj.get("priority")
    if priority is not None and (not isinstance(priority, str) or not priority.strip()):
        bad.append("'priority' must be a non-empty string or null")
    if bad or not isinstance(prompt, str):  # (a prompt that is not a string is in ``bad``)
        return "; ".join(bad)
    return WorkloadItem(prompt, task_type, out, priority, number)


# A workload file larger than this is refused (a regular file only: never a pipe or a device).
MAX_WORKLOAD_BYTES = 64 * 1024 * 1024


def read_workload(path: str | os.PathLike[str]) -> list[WorkloadItem]:
    """Read a JSONL workload file (see :func:`parse_workload`); raises :class:`WorkloadError`.

    Lines are split on ``\\n`` only (JSON strings may hold U+2028 and similar characters raw).
    """
    p = Path(path)
    try:
        data = read_regular_file(p, MAX_WORKLOAD_BYTES)
    except OSError as exc:
        raise WorkloadError(str(p), [(0, f"cannot read: {exc.strerror or exc}")]) from None
    return parse_workload(data.split(b"\n"), str(p))


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return f"the number {v}"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return "an object"


def workload_from_runs(runs: Iterable[Any], *, keep_priority: bool = True) -> list[WorkloadItem]:
    """Workload items from run-log records (``RunLog.recent(...)``), oldest first, for what-if
    replay of past prompts. Their output tokens are left to the run log's averages (the two sides
    of a logged run answered at different lengths); their priority is kept unless told not to."""
    items = [
        WorkloadItem(
            prompt=r.prompt,
            priority=r.priority if keep_priority else None,
            line=int(getattr(r, "id", 0) or 0),
        )
        for r in runs
        if isinstance(getattr(r, "prompt", None), str) and r.prompt.strip()
    ]
    items.sort(key=lambda it: it.line)
    return items


def estimate_tokens(text: str) -> int:
    """An ESTIMATE of the tokens of ``text``: ``ceil(len / 4)``, at least 1."""
    return max(1, _estimate_tokens(len(text)))

