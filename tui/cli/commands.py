"""``routedeck``'s commands (classify, eval, route, bench, export) and what they print."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UserError,
    check_model,
    console_for,
    make_session,
    open_table,
    print_error,
    print_json,
    progress_bar,
    progress_note,
    read_prompt,
    safe_text,
    simulation_note,
    table_classifier,
)
from tui.cli.shapes import decision_json, judge_json, pair_json
from tui.router.units import dollars, ms, percent


def classifier_note(c) -> str:
    """Which classifier decided, how long it took and what it cost, in words."""

    text = f"{c.classifier}, {ms(c.elapsed_ms, digits=2)}"
    call = c.llm
    if call is None:
        return text
    if call.outcome == "unavailable":
        return text + f" (llm {call.model} not called)"
    if c.cached:
        return text + f" (llm {call.model}: cached, free)"
    tokens = f"{'~' if call.usage_estimated else ''}{call.input_tokens}→{call.output_tokens} tok"
    return text + f" (llm {call.model} {call.outcome}: {ms(call.ms)}, {tokens}, " \
        f"{dollars(c.cost_usd, estimated=call.usage_estimated)})"


def cmd_classify(args: argparse.Namespace) -> int:
    prompt = read_prompt(args.prompt)
    table = open_table(args.routes)
    if args.priority is not None and args.priority not in table.priorities:
        raise UserError(
            f'unknown priority "{args.priority}" (known: {", ".join(table.priority_names)})'
        )
    from tui.router.table.decide import decide

    classifier = table_classifier(table, args)
    decision = decide(prompt, table, classifier, priority=args.priority)
    if args.json:
        print_json(decision_json(decision))
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
    grid.add_row("why", Text(safe_text(decision.reason)))
    grid.add_row("classifier", Text(safe_text(classifier_note(c))))
    console_for().print(grid)


def cmd_eval(args: argparse.Namespace) -> int:
    from tui.router.classifier.evaluate import EvalInputError, read_labelled, score

    table = open_table(args.routes)
    try:
        rows = read_labelled(args.file, table.task_names)
    except EvalInputError as exc:
        raise UserError(str(exc)) from None
    classifier = table_classifier(table, args)
    classify = getattr(classifier, "classify_uncached", classifier.classify)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("classifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console_for(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with progress:
        bar = progress.add_task("classify", total=len(rows))
        report = score(rows, classify, table.task_names, on_row=lambda: progress.advance(bar))
    if args.json:
        print_json(report.as_json())
        return EXIT_OK
    _print_eval(report)
    return EXIT_OK


def _print_eval(report) -> None:
    from rich.table import Table
    from rich.text import Text

    console = console_for()
    console.print(
        Text(
            f"n={report.n}  accuracy={report.accuracy:.3f}  macro-F1={report.macro_f1:.3f}  "
            f"ECE={'n/a' if report.ece is None else f'{report.ece:.3f}'}  "
            f"latency p50={ms(report.latency_ms['p50'], digits=2)}  "
            f"p95={ms(report.latency_ms['p95'], digits=2)}"
            f"  p99={ms(report.latency_ms['p99'], digits=2)}"
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


def cmd_route(args: argparse.Namespace) -> int:
    import asyncio

    prompt = read_prompt(args.prompt)
    table = open_table(args.routes)
    if args.priority is not None and args.priority not in table.priorities:
        raise UserError(
            f'unknown priority "{args.priority}" (known: {", ".join(table.priority_names)})'
        )
    for flag, model in (("--model", args.model), ("--baseline", args.baseline),
                        ("--judge", getattr(args, "judge", None) or None)):
        if model is not None:
            check_model(table, flag, model)
    session = make_session(args, table)
    decision = session.decide(prompt, args.priority)
    models = [args.model or decision.cell.primary, args.baseline or table.baseline.model]
    note = simulation_note(session, models)
    if note:
        print_error(f"routedeck: {note}")
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
        print_json(out)
    else:
        _print_pair_summary(pair)
        if judgement is not None:
            _print_judgement(judgement)
    both_failed = pair.routed.error is not None and pair.baseline.error is not None
    return EXIT_FAILED if both_failed else EXIT_OK


async def _run_and_judge(session, decision, args, *, live: bool, plain: bool):
    """The run, then (with --judge) the judge's two calls on it, in one event loop."""
    pair = await _run_pair(session, decision, args, live=live, plain=plain)
    judge = getattr(args, "judge", None)
    if judge is None:
        return pair, None
    return pair, await session.judge(pair, judge or None)


def _print_judgement(judgement) -> None:
    from rich.text import Text


    line = Text("judge ")
    line.append(safe_text(judgement.model), style="bold")
    if not judgement.ran or judgement.verdict is None:
        line.append(": no verdict: ")
        line.append(safe_text(judgement.error or "?"), style="yellow")
    else:
        words = {"routed": "the routed answer is better", "baseline": "the baseline is better",
                 "tie": "as good as each other", "unparsed": "unparsed reply"}
        line.append(f": {words.get(judgement.verdict, judgement.verdict)}", style="bold")
        if judgement.consistent is False:
            line.append(" (the two orders disagreed)", style="yellow")
        if judgement.reason:
            line.append(" - " + safe_text(judgement.reason))
    if judgement.ran:
        line.append(f"   judge cost {dollars(judgement.cost_usd)} (not in the savings)",
                    style="dim")
    console_for().print(line)


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
            out.write(f"{side:>8} | {safe_text(pending[side])}\n")
            pending[side] = ""

    async with run:
        async for ev in run:
            if not plain:
                continue
            event = ev.event
            if isinstance(event, AttemptStarted) and event.role in ("fallback", "hedge", "retry"):
                flush(ev.side)
                why = f" ({event.reason})" if event.reason else ""
                out.write(safe_text(f"{ev.side:>8} | --- {event.role}: {event.model}{why} ---") + "\n")
            elif isinstance(event, TextDelta):
                pending[ev.side] += event.text
                *lines, pending[ev.side] = pending[ev.side].split("\n")
                for line in lines:
                    out.write(f"{ev.side:>8} | {safe_text(line)}\n")
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

    console = console_for()

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

    ttft, elapsed = ms(snap.ttft_ms), ms(snap.elapsed_ms)
    est = "~" if snap.tokens_estimated else ""
    rate = "–" if not snap.tokens_per_s else f"{snap.tokens_per_s:,.0f}"
    return (
        f"TTFT {ttft}  elapsed {elapsed}  tokens {est}{snap.input_tokens}/{est}{snap.output_tokens}"
        f"  {rate} tok/s  cost {dollars(snap.cost_usd, estimated=snap.cost_estimated)}"
    )


def _print_pair_summary(pair) -> None:
    from rich.table import Table
    from rich.text import Text


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
            dollars(r.cost_usd),
            Text(("hedge" if r.hedged else "yes") + (f" ({r.fallback_reason})" if r.fallback_reason else "")) if r.fallback_used else "no",
            Text(safe_text(r.error or "")),
        )
    console = console_for()
    console.print(t)
    d = pair.decision
    line = Text(f"task {d.task} ({d.priority}), ")
    if pair.savings_usd is None:
        line.append("savings n/a (a model has no known price)")
    else:
        pct = "" if pair.savings_pct is None else f" ({percent(pair.savings_pct, 1)})"
        word = "saved" if pair.savings_usd >= 0 else "cost more"
        line.append(f"routing {word} {dollars(abs(pair.savings_usd))}{pct}", style="bold")
    console.print(line)
    c = d.classification
    if c.llm is not None:
        counted = " (counted in the routed cost)" if c.cost_usd else ""
        console.print(Text(safe_text("classified by " + classifier_note(c) + counted), style="dim"))


def cmd_bench(args: argparse.Namespace) -> int:
    from tui.router.cost.classified import WorkloadOptions
    from tui.router.cost.projection import project
    from tui.router.cost.workload import WorkloadError, read_workload

    if getattr(args, "judge", None) is not None and not args.execute:
        raise UserError("--judge needs --execute: the judge compares answers, so the prompts must run")
    table = open_table(args.routes)
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
        check_model(table, "--judge", judge)
    session = make_session(args, table, log=True)
    averages = None
    if session.runlog is not None:
        averages = session.runlog.avg_output_tokens_by_task() or None
    classifier = session.load_classifier()
    progress = progress_bar("classifying", len(items))
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
        print_json(out)
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

    if classification.model is None:
        return
    console = console_for()
    c = classification
    parts = [f"classifier {c.kind} ({c.model}): {c.to_llm} of {c.prompts} prompts to the LLM"]
    if c.asked:
        parts.append(f"{c.asked} asked ({c.answered} answered), cost {dollars(c.cost_usd)}")
    if c.would_ask:
        parts.append(
            f"{c.would_ask} not asked (no key): projected {dollars(c.projected_usd, estimated=True)}"
            f" at ~{c.input_tokens // max(1, c.to_llm)} input + {ANSWER_TOKENS} output tokens each,"
            " reasoning tokens not counted"
        )
    per = c.per_1000_usd
    parts.append(f"classification {dollars(c.total_usd)} in total, "
                 f"{dollars(per)} per 1,000 prompts")
    net = _net_savings_pct(projection, c)
    if net is not None:
        parts.append(f"savings after classification {percent(net, 1)}")
    console.print(Text(safe_text("; ".join(parts)), style="bold"))


def _print_quality(quality: dict[str, Any], measured: dict[str, Any] | None) -> None:
    """Savings at quality, in one line; then what the judge cost (apart from the savings)."""
    from rich.text import Text


    console = console_for()
    if quality.get("error"):
        console.print(Text(safe_text(f"quality: {quality['error']}"), style="yellow"))
        return
    console.print(Text(safe_text(quality["sentence"]), style="bold"), soft_wrap=True)  # one line
    extra = [f"judge {quality['judge_model']}: {dollars(quality['judge_cost_usd'])}, "
             "not counted in the savings"]
    for key, words in (("n_inconsistent", "counted as ties because the two orders disagreed"),
                       ("n_unparsed", "unparsed replies"), ("n_failed", "judge failures")):
        if quality.get(key):
            extra.append(f"{quality[key]} {words}")
    console.print(Text(safe_text("; ".join(extra)), style="dim"))


def _print_projection(projection, measured) -> None:
    from rich.table import Table
    from rich.text import Text


    console = console_for()
    t = Table(title=f"projected cost of routing {projection.n} prompts vs {projection.baseline_model}", title_justify="left")
    for col in ("task", "prompts", "routed", "baseline", "saved"):
        t.add_column(col, justify="left" if col == "task" else "right")
    for name, tp in projection.by_task.items():
        pct = percent(tp.savings_pct)
        t.add_row(Text(name), str(tp.count), dollars(tp.routed_usd), dollars(tp.baseline_usd), pct)
    pct = percent(projection.savings_pct, 1)
    t.add_row(Text("total", style="bold"), str(projection.n), dollars(projection.routed_usd),
              dollars(projection.baseline_usd), Text(pct, style="bold"))
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
                f"{dollars(measured['routed_usd'])} vs baseline {dollars(measured['baseline_usd'])}, "
                f"saved {percent(measured['savings_pct'], 1)}"
                f" (projected {pct})",
                style="bold",
            )
        )


def _execute_workload(args, session, items, projection) -> dict[str, Any]:
    """Run every prompt for real (bounded concurrency), journaled so a rerun never pays twice
    (tui/router/cost/journal.py); this shows the progress and says when it resumes."""
    import asyncio

    from tui.router.cost.journal import (
        execute_workload,
        journal_path,
        measured_totals,
        read_journal,
        workload_judge,
        workload_quality,
    )

    judge, judge_why = workload_judge(session, getattr(args, "judge", None))
    if judge_why:
        print_error(f"routedeck: {judge_why}")
    journal = journal_path(args.workload, session.table, judge)
    journal.parent.mkdir(parents=True, exist_ok=True)
    done = read_journal(journal)
    if done:
        print_error(f"routedeck: resuming: {len(done)} of {len(items)} prompts already ran ({journal})")
    progress = progress_bar("running", len(items))

    async def run_all() -> None:
        with progress:
            bar = progress.add_task("run", total=len(items), completed=len(done), note="")

            def on_row(row: dict[str, Any], routed: float, baseline: float) -> None:
                progress.update(bar, advance=1,
                                note=f"routed {dollars(routed, zero='$0')} vs baseline "
                                     f"{dollars(baseline, zero='$0')}")

            await execute_workload(session, items, journal, done, concurrency=args.concurrency,
                                   judge=judge, judge_why=judge_why, on_row=on_row)

    try:
        asyncio.run(run_all())
    except KeyboardInterrupt:
        print_error(f"routedeck: interrupted after {len(done)} of {len(items)} prompts; run the same command again to resume")
        raise
    rows = [done[i] for i in sorted(done)]
    measured = measured_totals(rows, journal)
    if judge is not None:
        measured["quality"] = workload_quality(session, judge, judge_why, rows, measured)
    return measured


def cmd_export(args: argparse.Namespace) -> int:
    """Write the table as a LiteLLM Proxy config folder (tui/router/gateway/litellm_export.py)."""
    from tui.router.gateway.litellm_export import ExportError, check_export, export_litellm

    table = open_table(args.routes)
    try:
        result = export_litellm(table, args.out, on_progress=progress_note)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    out = sys.stdout
    for path in result.files:
        out.write(safe_text(f"wrote {path}") + "\n")
    for note in result.notes:
        out.write(safe_text(f"note: {note}") + "\n")
    if args.check:
        try:
            check = check_export(result.out_dir, result.config)
        except ExportError as exc:
            raise UserError(str(exc)) from None
        if not check.ok:
            for problem in check.problems:
                print_error(f"routedeck: check: {problem}")
            return EXIT_FAILED
        out.write(safe_text(f"check: LiteLLM {check.litellm_version} loaded the config: "
                        f"{len(check.groups)} model groups, the routedeck callback ready") + "\n")
    out.write(safe_text(f"run it: cd {result.out_dir} && LITELLM_MASTER_KEY=... litellm --config "
                    "config.yaml") + "\n")
    return EXIT_OK


def add_export_parser(add) -> None:
    p = add("export", "export the routing table to run elsewhere (litellm: a LiteLLM Proxy config)",
            cmd_export)
    p.add_argument("target", choices=["litellm"], help="what to export to")
    p.add_argument("--out", metavar="DIR", default="litellm-export",
                   help="folder to write config.yaml and its callback into (default ./litellm-export)")
    p.add_argument("--check", action="store_true",
                   help="load the written config with LiteLLM's own loader (needs routedeck[litellm])")
