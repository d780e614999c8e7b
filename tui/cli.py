"""``routedeck``: the TUI by default, and the same engine headless from the command line.

Subcommands import what they need when they run, so ``routedeck --help`` stays fast and the
headless paths never import Textual.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, but what it ran failed (e.g. both sides of a run errored)
EXIT_USAGE = 2  # bad input: a broken routes.toml, an empty prompt, an unreadable file

MAX_PROMPT_BYTES = 8 * 1024 * 1024


class UserError(Exception):
    """A problem with what the user gave us: printed as a message, exit status 2, no traceback."""


# ------------------------------------------------------------------------------------------
# Output helpers: everything from outside is printed as plain text with no control sequences.
# ------------------------------------------------------------------------------------------


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, markup=False, highlight=False, emoji=False, soft_wrap=False)


def _safe(text: str) -> str:
    from tui.router.sanitize import clean

    return clean(text)


def _err(message: str) -> None:
    sys.stderr.write(_safe(message).rstrip("\n") + "\n")


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _read_prompt(arg: str) -> str:
    if arg == "-":
        data = sys.stdin.buffer.read(MAX_PROMPT_BYTES + 1)
        if len(data) > MAX_PROMPT_BYTES:
            raise UserError(f"prompt on stdin is larger than {MAX_PROMPT_BYTES // (1024 * 1024)} MB")
        text = data.decode("utf-8", errors="replace")
    else:
        text = arg
    if not text.strip():
        raise UserError("empty prompt: give the prompt as an argument, or '-' to read it from stdin")
    return text


def _load_table(path: str | None):
    from tui.router.table import TableError, load_table

    try:
        return load_table(path)
    except TableError as exc:
        raise UserError(str(exc)) from None
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename or path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _progress_note(message: str) -> None:
    if sys.stderr.isatty():
        _err(message)


def _build_classifier(table):
    from tui.router.classify import build_classifier

    return build_classifier(table, on_progress=_progress_note)


def _fmt_pct(p: float | None) -> str:
    return "n/a" if p is None else f"{p * 100:.0f}%"


# ------------------------------------------------------------------------------------------
# routedeck classify
# ------------------------------------------------------------------------------------------


def decision_json(decision) -> dict[str, Any]:
    c = decision.classification
    return {
        "task": decision.task,
        "label": c.label,
        "confidence": c.confidence,
        "top": [[label, prob] for label, prob in c.top],
        "priority": decision.priority,
        "priority_reason": decision.priority_reason,
        "primary": decision.cell.primary,
        "fallback": decision.cell.fallback,
        "uncertain": decision.uncertain,
        "reason": decision.reason,
        "classifier": c.classifier,
        "elapsed_ms": c.elapsed_ms,
    }


def cmd_classify(args: argparse.Namespace) -> int:
    prompt = _read_prompt(args.prompt)
    table = _load_table(args.routes)
    if args.priority is not None and args.priority not in table.priorities:
        raise UserError(
            f'unknown priority "{args.priority}" (known: {", ".join(table.priority_names)})'
        )
    from tui.router.classify import decide

    classifier = _build_classifier(table)
    decision = decide(prompt, table, classifier, priority=args.priority)
    if args.json:
        _print_json(decision_json(decision))
        return EXIT_OK
    _print_decision(decision)
    return EXIT_OK


def _print_decision(decision) -> None:
    from rich.table import Table
    from rich.text import Text

    c = decision.classification
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    conf = "no confidence" if c.confidence is None else f"{c.confidence:.2f}"
    task = Text(decision.task)
    if decision.uncertain:
        task.append(f"  (classified {c.label}, uncertain)", style="yellow")
    grid.add_row("task", task)
    grid.add_row("confidence", Text(conf))
    grid.add_row("top 3", Text("  ".join(f"{lab} {p:.2f}" for lab, p in c.top)))
    grid.add_row("priority", Text(f"{decision.priority} ({decision.priority_reason})"))
    grid.add_row("primary", Text(decision.cell.primary))
    grid.add_row("fallback", Text(decision.cell.fallback or "none"))
    grid.add_row("why", Text(_safe(decision.reason)))
    grid.add_row("classifier", Text(f"{c.classifier}, {c.elapsed_ms:.2f} ms"))
    _console().print(grid)


# ------------------------------------------------------------------------------------------
# routedeck eval
# ------------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from tui.router.evaluate import EvalInputError, read_labelled, score

    table = _load_table(args.routes)
    try:
        rows = read_labelled(args.file, table.task_names)
    except EvalInputError as exc:
        raise UserError(str(exc)) from None
    classifier = _build_classifier(table)
    classify = getattr(classifier, "classify_uncached", classifier.classify)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("classifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with progress:
        bar = progress.add_task("classify", total=len(rows))
        report = score(rows, classify, table.task_names, on_row=lambda: progress.advance(bar))
    if args.json:
        _print_json(report.as_json())
        return EXIT_OK
    _print_eval(report)
    return EXIT_OK


def _print_eval(report) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    console.print(
        Text(
            f"n={report.n}  accuracy={report.accuracy:.3f}  macro-F1={report.macro_f1:.3f}  "
            f"ECE={'n/a' if report.ece is None else f'{report.ece:.3f}'}  "
            f"latency p50={report.latency_ms['p50']:.2f} ms  p95={report.latency_ms['p95']:.2f} ms"
            f"  p99={report.latency_ms['p99']:.2f} ms"
        )
    )
    per = Table(title="per class", title_justify="left")
    for col in ("task", "precision", "recall", "F1", "support"):
        per.add_column(col, justify="right" if col != "task" else "left")
    for lab in report.labels:
        m = report.per_class[lab]
        per.add_row(
            Text(lab), f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
            str(int(m["support"])),
        )
    console.print(per)
    conf = Table(title="confusion (rows: true, columns: predicted)", title_justify="left")
    conf.add_column("")
    for lab in report.labels:
        conf.add_column(Text(lab[:10]), justify="right")
    for t in report.labels:
        conf.add_row(Text(t), *[str(report.confusion[t][p]) for p in report.labels])
    console.print(conf)


# ------------------------------------------------------------------------------------------
# The parser
# ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="routedeck",
        description="A terminal playground for task-aware LLM routing. "
        "With no command, opens the TUI.",
    )
    parser.add_argument("--routes", metavar="PATH", help="routes.toml to use (default: ./routes.toml, else the packaged one)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--routes", metavar="PATH", default=argparse.SUPPRESS, help="routes.toml to use")
        p.set_defaults(func=func)
        return p

    p = add("classify", "classify a prompt and show the routing decision", cmd_classify)
    p.add_argument("prompt", help="the prompt, or - to read it from stdin")
    p.add_argument("--priority", "-p", help="priority to route with (default: inferred from the prompt)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("eval", "score the classifier on a labelled JSONL file (prompt, task_type)", cmd_eval)
    p.add_argument("file", help="JSONL file, one {\"prompt\", \"task_type\"} per line")
    p.add_argument("--json", action="store_true", help="print JSON")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "routes"):
        args.routes = None
    try:
        if args.command is None:
            return _run_tui(args)
        return int(args.func(args) or 0)
    except UserError as exc:
        _err(f"routedeck: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("routedeck: interrupted")
        return 130
    except BrokenPipeError:
        # Output piped into something that closed early (| head): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _run_tui(args: argparse.Namespace) -> int:
    try:
        from tui.app.app import run_app
    except ImportError:
        build_parser().print_help()
        return EXIT_OK
    table = _load_table(args.routes)
    return run_app(table) or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
