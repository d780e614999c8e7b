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
from pathlib import Path
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


def _safe(text: str) -> str:
    """Text fit to print: no lone surrogates (bytes of argv that were not UTF-8), no keys, no
    control sequences."""
    from tui.router.sanitize import clean, clean_surrogates, env_secrets, redact

    return clean(redact(clean_surrogates(text), _SECRETS or env_secrets(os.environ)))


def _safe_json(obj: Any) -> Any:
    """``obj`` with every string in it made safe by :func:`_safe` (keys included)."""
    if isinstance(obj, str):
        return _safe(obj)
    if isinstance(obj, dict):
        return {_safe_json(k): _safe_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_safe_json(v) for v in obj]
    return obj


def _err(message: str) -> None:
    sys.stderr.write(_safe(message).rstrip("\n") + "\n")


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(_safe_json(obj), ensure_ascii=False, indent=2) + "\n")


def _read_prompt(arg: str) -> str:
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


def _load_table(path: str | None):
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


def _progress_note(message: str) -> None:
    if sys.stderr.isatty():
        _err(message)


def _build_classifier(table, args: argparse.Namespace | None = None):
    """The table's classifier; an LLM one resolved from the environment like any model."""
    from tui.router.classifier.build import build_classifier, resolve_llm

    client, why = resolve_llm(
        table, env=os.environ, force_simulated=bool(getattr(args, "simulate", False))
    )
    return build_classifier(
        table, on_progress=_progress_note, llm_client=client, llm_unavailable=why
    )


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
        # What classifying cost (an LLM classifier's call; 0 without one) and how long it took.
        "classifier_cost_usd": c.cost_usd,
        "classifier_ms": c.elapsed_ms,
        "classifier_llm": _llm_json(c),
    }


def _llm_json(c) -> dict[str, Any] | None:
    call = c.llm
    if call is None:
        return None
    return {
        "model": call.model,
        "outcome": call.outcome,
        "ms": call.ms,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "usage_estimated": call.usage_estimated,
        "cost_usd": c.cost_usd,
        "cached": c.cached,
    }


def classifier_note(c) -> str:
    """Which classifier decided, how long it took and what it cost, in words."""
    from tui.router.cost.pricing import format_usd

    text = f"{c.classifier}, {c.elapsed_ms:,.2f} ms"
    call = c.llm
    if call is None:
        return text
    if call.outcome == "unavailable":
        return text + f" (llm {call.model} not called)"
    if c.cached:
        return text + f" (llm {call.model}: cached, free)"
    tokens = f"{'~' if call.usage_estimated else ''}{call.input_tokens}→{call.output_tokens} tok"
    return text + f" (llm {call.model} {call.outcome}: {call.ms:,.0f} ms, {tokens}, " \
        f"{format_usd(c.cost_usd, estimated=call.usage_estimated)})"


def cmd_classify(args: argparse.Namespace) -> int:
    prompt = _read_prompt(args.prompt)
    table = _load_table(args.routes)
    if args.priority is not None and args.priority not in table.priorities:
        raise UserError(
            f'unknown priority "{args.priority}" (known: {", ".join(table.priority_names)})'
        )
    from tui.router.table.decide import decide

    classifier = _build_classifier(table, args)
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
    grid.add_row("classifier", Text(_safe(classifier_note(c))))
    _console().print(grid)


# ------------------------------------------------------------------------------------------
# routedeck eval
# ------------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from tui.router.classifier.evaluate import EvalInputError, read_labelled, score

    table = _load_table(args.routes)
    try:
        rows = read_labelled(args.file, table.task_names)
    except EvalInputError as exc:
        raise UserError(str(exc)) from None
    classifier = _build_classifier(table, args)
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
# routedeck route
# ------------------------------------------------------------------------------------------


def _make_session(args: argparse.Namespace, table, *, log: bool = True):
    from tui.router.run.session import Session

    runlog = None
    if log and not getattr(args, "no_log", False):
        from tui.router.log.runlog import RunLog, RunLogError

        try:
            runlog = RunLog(getattr(args, "log", None))
        except (RunLogError, OSError) as exc:
            _err(f"routedeck: run log disabled: {exc}")
        else:
            if runlog.warning:
                _err(f"routedeck: warning: {runlog.warning}")
    return Session(
        table=table, force_simulated=getattr(args, "simulate", False), runlog=runlog,
        on_progress=_progress_note,
    )


def _simulation_note(session, models: list[str]) -> str | None:
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


def side_json(r) -> dict[str, Any]:
    return {
        "model": r.model,
        "simulated": r.simulated,
        "ttft_ms": r.ttft_ms,
        "total_ms": r.total_ms,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "usage_estimated": r.usage_estimated,
        "cost_usd": r.cost_usd,
        "fallback_used": r.fallback_used,
        "fallback_reason": r.fallback_reason,
        "hedged": r.hedged,
        "status": r.status,
        "error": r.error,
        "text": r.text,
        # What was tried on this side, in order, and the text of attempts that failed midway
        # (never part of "text").
        "attempts": [
            {
                "model": a.model,
                "role": a.role,
                "outcome": a.outcome,
                "simulated": a.simulated,
                "error": a.error,
            }
            for a in r.attempts
        ],
        "failed_attempts": sum(1 for a in r.attempts if a.outcome == "failed"),
        "discarded_text": r.discarded_text,
    }


def pair_json(pair) -> dict[str, Any]:
    return {
        "decision": decision_json(pair.decision),
        "routed": side_json(pair.routed),
        "baseline": side_json(pair.baseline),
        "savings_usd": pair.savings_usd,
        "savings_pct": pair.savings_pct,
        "wall_ms": pair.wall_ms,
    }


def cmd_route(args: argparse.Namespace) -> int:
    import asyncio

    prompt = _read_prompt(args.prompt)
    table = _load_table(args.routes)
    if args.priority is not None and args.priority not in table.priorities:
        raise UserError(
            f'unknown priority "{args.priority}" (known: {", ".join(table.priority_names)})'
        )
    for flag, model in (("--model", args.model), ("--baseline", args.baseline),
                        ("--judge", getattr(args, "judge", None) or None)):
        if model is not None:
            _check_model(table, flag, model)
    session = _make_session(args, table)
    decision = session.decide(prompt, args.priority)
    models = [args.model or decision.cell.primary, args.baseline or table.baseline.model]
    note = _simulation_note(session, models)
    if note:
        _err(f"routedeck: {note}")
    live = not args.json and sys.stdout.isatty()
    pair, judgement = asyncio.run(
        _run_and_judge(session, decision, args, live=live, plain=not args.json and not live)
    )
    run_id = session.record(pair)
    if judgement is not None:
        session.record_judgement(run_id, judgement)
    if args.json:
        out = pair_json(pair)
        if judgement is not None:
            out["judge"] = judge_json(judgement)
        _print_json(out)
    else:
        _print_pair_summary(pair)
        if judgement is not None:
            _print_judgement(judgement)
    both_failed = pair.routed.error is not None and pair.baseline.error is not None
    return EXIT_FAILED if both_failed else EXIT_OK


def _check_model(table, flag: str, model: str) -> None:
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        raise UserError(f"{flag} {model!r}: a model id looks like provider/model")
    if provider not in table.providers:
        raise UserError(
            f'{flag} {model!r}: unknown provider "{provider}" (known: {", ".join(table.providers)})'
        )


async def _run_and_judge(session, decision, args, *, live: bool, plain: bool):
    """The run, then (with --judge) the judge's two calls on it, in one event loop."""
    pair = await _run_pair(session, decision, args, live=live, plain=plain)
    judge = getattr(args, "judge", None)
    if judge is None:
        return pair, None
    return pair, await session.judge(pair, judge or None)


def judge_json(judgement) -> dict[str, Any]:
    """``judge`` of ``route --json``: the verdict and its cost (never part of the savings)."""
    return {
        "model": judgement.model,
        "verdict": judgement.verdict,
        "consistent": judgement.consistent,
        "reason": judgement.reason or None,
        "cost_usd": judgement.cost_usd,
        "error": judgement.error,
    }


def _print_judgement(judgement) -> None:
    from rich.text import Text

    from tui.router.cost.pricing import format_usd

    line = Text("judge ")
    line.append(_safe(judgement.model), style="bold")
    if not judgement.ran or judgement.verdict is None:
        line.append(": no verdict: ")
        line.append(_safe(judgement.error or "?"), style="yellow")
    else:
        words = {"routed": "the routed answer is better", "baseline": "the baseline is better",
                 "tie": "as good as each other", "unparsed": "unparsed reply"}
        line.append(f": {words.get(judgement.verdict, judgement.verdict)}", style="bold")
        if judgement.consistent is False:
            line.append(" (the two orders disagreed)", style="yellow")
        if judgement.reason:
            line.append(" - " + _safe(judgement.reason))
    if judgement.ran:
        line.append(f"   judge cost {format_usd(judgement.cost_usd)} (not in the savings)",
                    style="dim")
    _console().print(line)


async def _run_pair(session, decision, args, *, live: bool, plain: bool):
    run = session.start(decision, model=args.model, baseline=args.baseline)
    if live:
        return await _run_live(run)
    # Not a terminal: each side's complete lines, prefixed with the side, as they arrive; a
    # fallback or a hedge that takes over is announced, so no two answers run together.
    from tui.router.types import AttemptStarted, TextDelta

    pending = {"routed": "", "baseline": ""}
    out = sys.stdout

    def flush(side: str) -> None:
        if pending[side]:
            out.write(f"{side:>8} | {_safe(pending[side])}\n")
            pending[side] = ""

    async with run:
        async for ev in run:
            if not plain:
                continue
            event = ev.event
            if isinstance(event, AttemptStarted) and event.role in ("fallback", "hedge", "retry"):
                flush(ev.side)
                why = f" ({event.reason})" if event.reason else ""
                out.write(_safe(f"{ev.side:>8} | --- {event.role}: {event.model}{why} ---") + "\n")
            elif isinstance(event, TextDelta):
                pending[ev.side] += event.text
                *lines, pending[ev.side] = pending[ev.side].split("\n")
                for line in lines:
                    out.write(f"{ev.side:>8} | {_safe(line)}\n")
    if plain:
        flush("routed")
        flush("baseline")
        out.flush()
    return run.result


async def _run_live(run):
    """A terminal: both answers side by side, streaming, with live figures."""
    from rich.console import Group
    from rich.live import Live
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = _console()

    def render():
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        height = max(5, console.size.height - 8)
        cells = []
        for side in ("routed", "baseline"):
            metrics = run.metrics[side]
            snap = metrics.snapshot()
            # The answer being streamed; text of a failed attempt is not mixed into it.
            lines = metrics.text.splitlines()[-height:]
            title = Text(f"{side}: {snap.model}")
            if snap.badges:
                title.append("  " + " ".join(b.upper() for b in snap.badges), style="yellow")
            figures = Text(_figures(snap), style="dim")
            cells.append(
                Panel(Group(Text("\n".join(lines)), figures), title=title, title_align="left",
                      height=height + 3)
            )
        grid.add_row(*cells)
        return grid

    with Live(render(), console=console, refresh_per_second=10, transient=False) as view:
        async with run:
            async for _ in run:
                view.update(render())
        view.update(render())
    return run.result


def _figures(snap) -> str:
    from tui.router.cost.pricing import format_usd

    ttft = "–" if snap.ttft_ms is None else f"{snap.ttft_ms:,.0f} ms"
    elapsed = "–" if snap.elapsed_ms is None else f"{snap.elapsed_ms:,.0f} ms"
    est = "~" if snap.tokens_estimated else ""
    rate = "–" if not snap.tokens_per_s else f"{snap.tokens_per_s:,.0f}"
    return (
        f"TTFT {ttft}  elapsed {elapsed}  tokens {est}{snap.input_tokens}/{est}{snap.output_tokens}"
        f"  {rate} tok/s  cost {format_usd(snap.cost_usd, estimated=snap.cost_estimated)}"
    )


def _print_pair_summary(pair) -> None:
    from rich.table import Table
    from rich.text import Text

    from tui.router.cost.pricing import format_usd

    t = Table(title="routed vs baseline", title_justify="left")
    for col in ("side", "model", "real/sim", "TTFT ms", "total ms", "in tok", "out tok", "cost", "fallback", "error"):
        t.add_column(col, justify="right" if col in ("TTFT ms", "total ms", "in tok", "out tok", "cost") else "left")
    for r in (pair.routed, pair.baseline):
        est = "~" if r.usage_estimated else ""
        t.add_row(
            r.side,
            Text(r.model),
            "simulated" if r.simulated else "real",
            "–" if r.ttft_ms is None else f"{r.ttft_ms:,.0f}",
            "–" if r.total_ms is None else f"{r.total_ms:,.0f}",
            f"{est}{r.input_tokens:,}",
            f"{est}{r.output_tokens:,}",
            format_usd(r.cost_usd),
            Text(("hedge" if r.hedged else "yes") + (f" ({r.fallback_reason})" if r.fallback_reason else "")) if r.fallback_used else "no",
            Text(_safe(r.error or "")),
        )
    console = _console()
    console.print(t)
    d = pair.decision
    line = Text(f"task {d.task} ({d.priority}), ")
    if pair.savings_usd is None:
        line.append("savings n/a (a model has no known price)")
    else:
        pct = "" if pair.savings_pct is None else f" ({pair.savings_pct:.1f}%)"
        word = "saved" if pair.savings_usd >= 0 else "cost more"
        line.append(f"routing {word} {format_usd(abs(pair.savings_usd))}{pct}", style="bold")
    console.print(line)
    c = d.classification
    if c.llm is not None:
        counted = " (counted in the routed cost)" if c.cost_usd else ""
        console.print(Text(_safe("classified by " + classifier_note(c) + counted), style="dim"))


# ------------------------------------------------------------------------------------------
# routedeck bench
# ------------------------------------------------------------------------------------------


def _progress(label: str, total: int):
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
        console=_console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def cmd_bench(args: argparse.Namespace) -> int:
    from tui.router.cost.classified import WorkloadOptions
    from tui.router.cost.projection import project
    from tui.router.cost.workload import WorkloadError, read_workload

    if getattr(args, "judge", None) is not None and not args.execute:
        raise UserError("--judge needs --execute: the judge compares answers, so the prompts must run")
    table = _load_table(args.routes)
    try:
        items = read_workload(args.workload)
    except WorkloadError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{args.workload}: cannot read: {exc.strerror or exc}") from None
    if not items:
        raise UserError(f"{args.workload}: no prompts")
    judge = getattr(args, "judge", None)
    if judge:
        _check_model(table, "--judge", judge)
    session = _make_session(args, table, log=True)
    averages = None
    if session.runlog is not None:
        averages = session.runlog.avg_output_tokens_by_task() or None
    classifier = session.load_classifier()
    progress = _progress("classifying", len(items))
    with progress:
        bar = progress.add_task("classify", total=len(items), note="")

        def on_progress(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        options = WorkloadOptions(output_tokens_by_task=averages, on_progress=on_progress)
        projection = project(items, table, classifier, options=options)
    from tui.router.classifier.cost import summarize

    classification = summarize(
        ((it.prompt, it.classification) for it in projection.classified or ()), table
    )
    measured = None
    if args.execute:
        measured = _execute_workload(args, session, items, projection)
    quality = measured.pop("quality", None) if measured is not None else None
    if args.json:
        out = projection.as_json()
        out["classification"] = classification.as_json()
        out["savings_after_classification_pct"] = _net_savings_pct(projection, classification)
        if measured is not None:
            out["measured"] = measured
        if quality is not None:
            out["quality"] = quality
        _print_json(out)
    else:
        _print_projection(projection, measured)
        _print_classification_cost(projection, classification)
        if quality is not None:
            _print_quality(quality, measured)
    return EXIT_OK


def _net_savings_pct(projection, classification) -> float | None:
    """The projected savings once classification is paid for (None when it is unpriced)."""
    spent = classification.total_usd
    if spent is None or not projection.baseline_usd:
        return None
    return 100.0 * (projection.savings_usd - spent) / projection.baseline_usd


def _print_classification_cost(projection, classification) -> None:
    """bench: how many prompts went to the LLM classifier and what classifying cost."""
    from rich.text import Text

    from tui.router.classifier.cost import ANSWER_TOKENS
    from tui.router.cost.pricing import format_usd

    if classification.model is None:
        return
    console = _console()
    c = classification
    parts = [f"classifier {c.kind} ({c.model}): {c.to_llm} of {c.prompts} prompts to the LLM"]
    if c.asked:
        parts.append(f"{c.asked} asked ({c.answered} answered), cost {format_usd(c.cost_usd)}")
    if c.would_ask:
        parts.append(
            f"{c.would_ask} not asked (no key): projected {format_usd(c.projected_usd, estimated=True)}"
            f" at ~{c.input_tokens // max(1, c.to_llm)} input + {ANSWER_TOKENS} output tokens each,"
            " reasoning tokens not counted"
        )
    per = c.per_1000_usd
    parts.append(f"classification {format_usd(c.total_usd)} in total, "
                 f"{format_usd(per)} per 1,000 prompts")
    net = _net_savings_pct(projection, c)
    if net is not None:
        parts.append(f"savings after classification {net:.1f}%")
    console.print(Text(_safe("; ".join(parts)), style="bold"))


def _print_quality(quality: dict[str, Any], measured: dict[str, Any]) -> None:
    """Savings at quality, in one line; then what the judge cost (apart from the savings)."""
    from rich.text import Text

    from tui.router.cost.pricing import format_usd

    console = _console()
    if quality.get("error"):
        console.print(Text(_safe(f"quality: {quality['error']}"), style="yellow"))
        return
    console.print(Text(_safe(quality["sentence"]), style="bold"), soft_wrap=True)  # one line
    extra = [f"judge {quality['judge_model']}: {format_usd(quality['judge_cost_usd'])}, "
             "not counted in the savings"]
    for key, words in (("n_inconsistent", "counted as ties because the two orders disagreed"),
                       ("n_unparsed", "unparsed replies"), ("n_failed", "judge failures")):
        if quality.get(key):
            extra.append(f"{quality[key]} {words}")
    console.print(Text(_safe("; ".join(extra)), style="dim"))


def _print_projection(projection, measured) -> None:
    from rich.table import Table
    from rich.text import Text

    from tui.router.cost.pricing import format_usd

    console = _console()
    t = Table(title=f"projected cost of routing {projection.n} prompts vs {projection.baseline_model}", title_justify="left")
    for col in ("task", "prompts", "routed", "baseline", "saved"):
        t.add_column(col, justify="left" if col == "task" else "right")
    for name, tp in projection.by_task.items():
        pct = "n/a" if tp.savings_pct is None else f"{tp.savings_pct:.0f}%"
        t.add_row(Text(name), str(tp.count), format_usd(tp.routed_usd), format_usd(tp.baseline_usd), pct)
    pct = "n/a" if projection.savings_pct is None else f"{projection.savings_pct:.1f}%"
    t.add_row(Text("total", style="bold"), str(projection.n), format_usd(projection.routed_usd),
              format_usd(projection.baseline_usd), Text(pct, style="bold"))
    console.print(t)
    notes = [
        "input tokens estimated from the text (chars/4)",
        "output tokens: " + ", ".join(f"{k} {v}" for k, v in projection.output_tokens_sources.items()),
        f"{projection.n_uncertain} prompts below the confidence threshold {projection.threshold:.2f} went to the uncertain route",
    ]
    if projection.unpriced:
        notes.append(f"{projection.unpriced} prompts left out: a model has no known price")
    if projection.accuracy is not None:
        notes.append(f"classifier accuracy on the {projection.n_labelled} labelled prompts: {projection.accuracy:.1%}")
    for note in notes:
        console.print(Text(note, style="dim"))
    if measured:
        console.print(
            Text(
                f"measured over {measured['n']} runs ({measured['simulated']} simulated): routed "
                f"{format_usd(measured['routed_usd'])} vs baseline {format_usd(measured['baseline_usd'])}, "
                f"saved {'n/a' if measured['savings_pct'] is None else format(measured['savings_pct'], '.1f') + '%'}"
                f" (projected {pct})",
                style="bold",
            )
        )


def _journal_path(workload: str, table, judge: str | None = None) -> Path:
    """Where an executed workload's progress is kept, so an interrupted run resumes for free.
    A judged execution (``judge``: the judge model) keeps a journal of its own."""
    import hashlib

    from platformdirs import user_data_dir

    digest = hashlib.sha256()
    digest.update(Path(workload).read_bytes())
    digest.update(repr(sorted((k, v.primary) for k, v in table.routes.items())).encode())
    digest.update(table.baseline.model.encode())
    if judge is not None:
        digest.update(f"judge:{judge}".encode())
    base = os.environ.get("ROUTEDECK_BENCH_DIR") or os.path.join(user_data_dir("routedeck"), "bench")
    return Path(base) / f"{digest.hexdigest()[:20]}.jsonl"


def _read_journal(path: Path) -> dict[int, dict]:
    done: dict[int, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return done
    for line in lines:
        try:
            row = json.loads(line)
            done[int(row["index"])] = row
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash: that prompt simply runs again
    return done


def _execute_workload(args, session, items, projection) -> dict[str, Any]:
    """Run every prompt for real (bounded concurrency), journaled so a rerun never pays twice."""
    import asyncio

    judge, judge_why = _workload_judge(args, session)
    journal = _journal_path(args.workload, session.table, judge)
    journal.parent.mkdir(parents=True, exist_ok=True)
    done = _read_journal(journal)
    todo = [i for i in range(len(items)) if i not in done]
    if done:
        _err(f"routedeck: resuming: {len(done)} of {len(items)} prompts already ran ({journal})")
    progress = _progress("running", len(items))

    async def run_all() -> None:
        sem = asyncio.Semaphore(max(1, args.concurrency))
        spent = {"routed": sum(r.get("routed_usd") or 0 for r in done.values()),
                 "baseline": sum(r.get("baseline_usd") or 0 for r in done.values())}
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            with progress:
                bar = progress.add_task("run", total=len(items), completed=len(done), note="")

                async def one(i: int) -> None:
                    judgement = None
                    async with sem:
                        decision = session.decide(items[i].prompt, items[i].priority)
                        pair = await session.start(decision).wait()
                        if judge is not None and judge_why is None:
                            judgement = await session.judge(pair, judge or None)
                    run_id = session.record(pair)
                    if judgement is not None:
                        session.record_judgement(run_id, judgement)
                    row = {
                        "index": i,
                        "task": decision.task,
                        "routed_model": pair.routed.model,
                        "baseline_model": pair.baseline.model,
                        "routed_usd": pair.routed.cost_usd,
                        "baseline_usd": pair.baseline.cost_usd,
                        "simulated": pair.routed.simulated or pair.baseline.simulated,
                        "error": pair.routed.error or pair.baseline.error,
                    }
                    if judgement is not None:
                        row["judge"] = judge_json(judgement) | {"ran": judgement.ran}
                    os.write(fd, (json.dumps(row) + "\n").encode())
                    os.fsync(fd)
                    done[i] = row
                    spent["routed"] += pair.routed.cost_usd or 0
                    spent["baseline"] += pair.baseline.cost_usd or 0
                    progress.update(
                        bar, advance=1,
                        note=f"routed ${spent['routed']:.4f} vs baseline ${spent['baseline']:.4f}",
                    )

                await asyncio.gather(*(one(i) for i in todo))
        finally:
            os.close(fd)

    try:
        asyncio.run(run_all())
    except KeyboardInterrupt:
        _err(f"routedeck: interrupted after {len(done)} of {len(items)} prompts; run the same command again to resume")
        raise
    rows = [done[i] for i in sorted(done)]
    priced = [r for r in rows if r.get("routed_usd") is not None and r.get("baseline_usd") is not None]
    routed = sum(r["routed_usd"] for r in priced)
    baseline = sum(r["baseline_usd"] for r in priced)
    measured = {
        "n": len(rows),
        "routed_usd": routed,
        "baseline_usd": baseline,
        "savings_pct": (100.0 * (baseline - routed) / baseline) if baseline else None,
        "unpriced": len(rows) - len(priced),
        "errors": sum(1 for r in rows if r.get("error")),
        "simulated": sum(1 for r in rows if r.get("simulated")),
        "journal": str(journal),
    }
    if judge is not None:
        measured["quality"] = _workload_quality(session, judge, judge_why, rows, measured)
    return measured


def _workload_judge(args, session) -> tuple[str | None, str | None]:
    """(the --judge model, "" for the default one, or None; why the judge cannot run, if so)."""
    judge = getattr(args, "judge", None)
    if judge is None:
        return None, None
    from tui.router.run.judge import judge_plan

    model, _, why = judge_plan(session.table, model=judge or None, env=session.env,
                               force_simulated=session.force_simulated)
    if why:
        _err(f"routedeck: {why}")
    return judge or model, why


def _workload_quality(session, judge: str, why: str | None, rows: list[dict],
                      measured: dict[str, Any]) -> dict[str, Any]:
    """``quality`` of ``bench --execute --judge``: the judge's verdicts over the workload."""
    from tui.router.run.judge import Judgement, summarize

    model = session.judge_model(judge or None)
    judged = [
        (r["task"], Judgement(model, j.get("verdict"), j.get("consistent"), "",
                              j.get("cost_usd"), j.get("error"), bool(j.get("ran"))))
        for r in rows if (j := r.get("judge"))
    ]
    summary = summarize(model, judged)
    out = summary.as_json()
    out["not_judged"] = sum(1 for r in rows if not (r.get("judge") or {}).get("ran"))
    out["sentence"] = summary.sentence(measured["savings_pct"])
    if why:
        out["error"] = why
    return out


# ------------------------------------------------------------------------------------------
# routedeck export litellm
# ------------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    """Write the table as a LiteLLM Proxy config folder (tui/router/gateway/litellm_export.py)."""
    from tui.router.gateway.litellm_export import ExportError, check_export, export_litellm

    table = _load_table(args.routes)
    try:
        result = export_litellm(table, args.out, on_progress=_progress_note)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    out = sys.stdout
    for path in result.files:
        out.write(_safe(f"wrote {path}") + "\n")
    for note in result.notes:
        out.write(_safe(f"note: {note}") + "\n")
    if args.check:
        try:
            check = check_export(result.out_dir, result.config)
        except ExportError as exc:
            raise UserError(str(exc)) from None
        if not check.ok:
            for problem in check.problems:
                _err(f"routedeck: check: {problem}")
            return EXIT_FAILED
        out.write(_safe(f"check: LiteLLM {check.litellm_version} loaded the config: "
                        f"{len(check.groups)} model groups, the routedeck callback ready") + "\n")
    out.write(_safe(f"run it: cd {result.out_dir} && LITELLM_MASTER_KEY=... litellm --config "
                    "config.yaml") + "\n")
    return EXIT_OK


def _add_export_parser(add) -> None:
    p = add("export", "export the routing table to run elsewhere (litellm: a LiteLLM Proxy config)",
            cmd_export)
    p.add_argument("target", choices=["litellm"], help="what to export to")
    p.add_argument("--out", metavar="DIR", default="litellm-export",
                   help="folder to write config.yaml and its callback into (default ./litellm-export)")
    p.add_argument("--check", action="store_true",
                   help="load the written config with LiteLLM's own loader (needs routedeck[litellm])")


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
    parser.add_argument("--simulate", action="store_true", help="run every model on the simulator")
    parser.add_argument("--log", metavar="PATH", help="run log file (default: the user data folder, or ROUTEDECK_LOG)")
    parser.add_argument("--no-log", action="store_true", help="do not record runs")
    parser.add_argument("--web", action="store_true", help="serve the TUI to a browser on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="port for --web (default 8000; 0 picks a free one)")
    parser.add_argument("--no-browser", action="store_true", help="with --web: print the URL only, do not open a browser")
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

    p = add("route", "run a prompt on the routed model and on the baseline, side by side", cmd_route)
    p.add_argument("prompt", help="the prompt, or - to read it from stdin")
    p.add_argument("--priority", "-p", help="priority to route with (default: inferred from the prompt)")
    p.add_argument("--model", "-m", help="run the routed side on this provider/model instead")
    p.add_argument("--baseline", "-b", help="compare against this provider/model instead")
    p.add_argument("--simulate", action="store_true", default=argparse.SUPPRESS, help="run every model on the simulator")
    p.add_argument("--log", metavar="PATH", default=argparse.SUPPRESS, help="run log file (default: the user data folder, or ROUTEDECK_LOG)")
    p.add_argument("--no-log", action="store_true", default=argparse.SUPPRESS, help="do not record this run")
    p.add_argument("--judge", nargs="?", const="", metavar="MODEL", help="then ask the LLM judge whether the routed answer held up (default model: [judge] in routes.toml, else the baseline); its cost is kept apart from the savings")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("bench", "project what routing a workload saves (and, with --execute, measure it)", cmd_bench)
    p.add_argument("workload", help="JSONL file: prompt, optional task_type and output_tokens")
    p.add_argument("--execute", action="store_true", help="run every prompt for real (resumable)")
    p.add_argument("--concurrency", type=int, default=4, help="runs in flight with --execute (default 4)")
    p.add_argument("--simulate", action="store_true", default=argparse.SUPPRESS, help="run every model on the simulator")
    p.add_argument("--log", metavar="PATH", default=argparse.SUPPRESS, help="run log file")
    p.add_argument("--no-log", action="store_true", default=argparse.SUPPRESS, help="do not record runs")
    p.add_argument("--judge", nargs="?", const="", metavar="MODEL", help="with --execute: the LLM judge compares every routed answer with the baseline's; prints the savings at quality")
    p.add_argument("--json", action="store_true", help="print JSON")

    _add_export_parser(add)
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
    if getattr(args, "web", False):
        return _serve_web(args)
    table = _load_table(args.routes)
    session = _make_session(args, table)
    from tui.app.app import run_app

    return run_app(session)


def _serve_web(args: argparse.Namespace) -> int:
    """Serve the TUI to a browser on 127.0.0.1, behind a per-launch token (tui/web/server.py)."""
    try:
        from tui.web.server import WebServer
    except ModuleNotFoundError as exc:
        if exc.name not in ("textual_serve", "aiohttp", "aiohttp_jinja2", "jinja2"):
            raise
        raise UserError(
            "--web needs textual-serve: pip install 'routedeck[web]'"
        ) from None
    # A broken routes.toml is reported here, once, rather than by every browser session.
    _load_table(args.routes)
    server = WebServer(web_app_argv(args), port=args.port, open_browser=not args.no_browser)
    try:
        server.serve()
    except OSError as exc:
        raise UserError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    return EXIT_OK


# The TUI's own options, passed on to the app process textual-serve starts for each browser
# session so that they mean the same there. tests/test_web.py checks that every top-level
# option but the --web ones is listed here.
WEB_PATH_OPTIONS = {"routes": "--routes", "log": "--log"}
WEB_FLAG_OPTIONS = {"simulate": "--simulate", "no_log": "--no-log"}
WEB_OWN_OPTIONS = ("web", "port", "no_browser")


def web_app_argv(args: argparse.Namespace) -> list[str]:
    """The argv of the app process behind `routedeck --web` (paths made absolute)."""
    argv = [sys.executable, "-m", "tui.cli"]
    for dest, flag in WEB_PATH_OPTIONS.items():
        if value := getattr(args, dest, None):
            argv += [flag, os.path.abspath(value)]
    for dest, flag in WEB_FLAG_OPTIONS.items():
        if getattr(args, dest, False):
            argv.append(flag)
    return argv


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
