"""What every ``routedeck`` command shares: exit codes, output made safe to print (everything
from outside is printed as plain text with no control sequences, no keys), reading the prompt,
loading the routing table, the session and the classifier, progress bars."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_OK = 0


EXIT_FAILED = 1  # the command ran, but what it ran failed (e.g. both sides of a run errored)


EXIT_USAGE = 2  # bad input: a broken routes.toml, an empty prompt, an unreadable file


MAX_PROMPT_BYTES = 8 * 1024 * 1024


class UserError(Exception):
    """A problem with what the user gave us: printed as a message, exit status 2, no traceback."""


def console_for(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, markup=False, highlight=False, emoji=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or captured: wide enough that tables keep their columns whole.
        console.width = max(console.width, 140)
    return console


# Values never printed: set from the routing table once it is loaded (its api_key_env
# variables) on top of the environment's key-like variables.
_SECRETS: tuple[str, ...] = ()


def _set_secrets(table) -> None:
    global _SECRETS
    from tui.router.sanitize import configured_secrets

    _SECRETS = configured_secrets(os.environ, table)


def safe_text(text: str) -> str:
    """Text fit to print: no lone surrogates (bytes of argv that were not UTF-8), no keys, no
    control sequences."""
    from tui.router.sanitize import clean, clean_surrogates, env_secrets, redact

    return clean(redact(clean_surrogates(text), _SECRETS or env_secrets(os.environ)))


def _safe_json(obj: Any) -> Any:
    """``obj`` with every string in it made safe by :func:`safe_text` (keys included)."""
    if isinstance(obj, str):
        return safe_text(obj)
    if isinstance(obj, dict):
        return {_safe_json(k): _safe_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_safe_json(v) for v in obj]
    return obj


def print_error(message: str) -> None:
    sys.stderr.write(safe_text(message).rstrip("\n") + "\n")


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(_safe_json(obj), ensure_ascii=False, indent=2) + "\n")


def read_prompt(arg: str) -> str:
    if arg == "-":
        data = sys.stdin.buffer.read(MAX_PROMPT_BYTES + 1)
        if len(data) > MAX_PROMPT_BYTES:
            raise UserError(f"prompt on stdin is larger than {MAX_PROMPT_BYTES // (1024 * 1024)} MB")
        text = data.decode("utf-8", errors="replace")
    else:
        # Bytes of argv that are not UTF-8 arrive as lone surrogates: replaced, at the edge.
        from tui.router.sanitize import clean_surrogates

        text = clean_surrogates(arg)
    if not text.strip():
        raise UserError("empty prompt: give the prompt as an argument, or '-' to read it from stdin")
    return text


def open_table(path: str | None):
    from tui.router.table.check import TableError
    from tui.router.table.load import load_table

    try:
        table = load_table(path)
        _set_secrets(table)
        return table
    except TableError as exc:
        n = len(exc.problems)
        if n <= 1:
            raise UserError(str(exc)) from None
        listed = "\n".join(f"  {line}" for line in str(exc).splitlines())
        raise UserError(f"the routing table has {n} problems:\n{listed}") from None
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename or path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None


def progress_note(message: str) -> None:
    if sys.stderr.isatty():
        print_error(message)


def table_classifier(table, args: argparse.Namespace | None = None):
    """The table's classifier; an LLM one resolved from the environment like any model."""
    from tui.router.classifier.build import build_classifier, resolve_llm

    client, why = resolve_llm(
        table, env=os.environ, force_simulated=bool(getattr(args, "simulate", False))
    )
    return build_classifier(
        table, on_progress=progress_note, llm_client=client, llm_unavailable=why
    )


def make_session(args: argparse.Namespace, table, *, log: bool = True):
    from tui.router.run.session import Session

    runlog = None
    if log and not getattr(args, "no_log", False):
        from tui.router.log.runlog import RunLog, RunLogError

        try:
            runlog = RunLog(getattr(args, "log", None))
        except (RunLogError, OSError) as exc:
            print_error(f"routedeck: run log disabled: {exc}")
        else:
            if runlog.warning:
                print_error(f"routedeck: warning: {runlog.warning}")
    return Session(
        table=table, force_simulated=getattr(args, "simulate", False), runlog=runlog,
        on_progress=progress_note,
    )


def simulation_note(session, models: list[str]) -> str | None:
    simulated = {m: session.is_simulated(m) for m in models}
    sims = {m: why for m, (sim, why) in simulated.items() if sim}
    if not sims:
        return None
    if len(sims) == len(models):
        if session.force_simulated:
            return "every model runs on the simulator (asked for): answers, timings and tokens are simulated"
        return (
            "no API key found for these models: they run on the simulator, so answers, timings "
            "and tokens are simulated (costs use the real models' prices)"
        )
    return "simulated: " + "; ".join(f"{m} ({why})" for m, why in sims.items())


def check_model(table, flag: str, model: str) -> None:
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        raise UserError(f"{flag} {model!r}: a model id looks like provider/model")
    if provider not in table.providers:
        raise UserError(
            f'{flag} {model!r}: unknown provider "{provider}" (known: {", ".join(table.providers)})'
        )


def progress_bar(label: str, total: int):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=console_for(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
