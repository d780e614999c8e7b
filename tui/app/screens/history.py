"""Past runs from the run log, newest first, with totals, filtered by task type.

The log is read in a thread worker (SQLite on the event loop would stall the UI). Everything in a
row that came from outside (prompt, model names, task and priority names) is cleaned and shown as
plain Text. Without a run log (``--no-log``) the screen says so instead.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui.app import HEADER_ICON
from tui.app.screens.base import DeckScreen
from tui.app.widgets.footer import KeyFooter
from tui.router.sanitize import clean
from tui.router.units import dollars, duration, percent, share

# How many runs the screen lists (the totals cover every run of the filter).
LIMIT = 200
PROMPT_WIDTH = 60
ALL = ""  # the filter value for every task type (a task name is never empty)

# The figures first, the prompt last (it is also shown in full under the table).
COLUMNS = (
    ("time", "time"),
    ("task", "task"),
    ("priority", "priority"),
    ("routed", "routed model"),
    ("r_cost", "routed $"),
    ("baseline", "baseline model"),
    ("b_cost", "baseline $"),
    ("saving", "saving"),
    ("ttft", "TTFT ms r / b"),
    ("mode", "real/sim"),
    ("flags", "fallback/hedge"),
    ("verdicts", "you / judge"),
    ("prompt", "prompt"),
)


def first_line(prompt: str, width: int = PROMPT_WIDTH) -> str:
    """The prompt's first non-empty line, cleaned and cut to ``width`` characters."""
    text = clean(prompt)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    more = len(lines) > 1
    if len(line) > width:
        return line[: width - 1] + "…"
    return line + (" …" if more else "")


def _when(created_at: datetime) -> str:
    try:
        return created_at.astimezone().strftime("%m-%d %H:%M")
    except (ValueError, OSError):
        return str(created_at)[:16]


def _side_cost(side) -> Text:
    if side.status == "cancelled" and side.cost_usd is None:
        return Text("cancelled", style="dim")
    if side.error and side.cost_usd is None:
        return Text("error", style="red")
    return Text(
        dollars(side.cost_usd, estimated=side.usage_estimated),
        style="yellow" if side.cost_usd is None else "",
    )


def _saving(record) -> Text:
    saved = record.savings_usd
    if saved is None:
        return Text("n/a", style="yellow")
    base = record.baseline.cost_usd
    style = "green" if saved >= 0 else "red"
    out = Text(dollars(saved), style=style)
    if base:
        out.append(f" {share(saved / base)}", style=style)
    return out


def _mode(record) -> Text:
    r, b = record.routed.simulated, record.baseline.simulated
    if r == b:
        return Text("sim" if r else "real", style="yellow" if r else "green")
    return Text(f"{'sim' if r else 'real'}/{'sim' if b else 'real'}", style="yellow")


def _flags(record) -> Text:
    out = Text()
    for side, name in ((record.routed, ""), (record.baseline, "base ")):
        words = []
        if side.fallback_used:
            words.append("fallback")
        if side.hedged:
            words.append("hedge")
        if side.error:
            words.append("error")
        elif side.status == "cancelled":
            words.append("cancelled")
        if words:
            if out:
                out.append(" ")
            out.append(name + "+".join(words), style="red" if side.error else "magenta")
    return out


def render_row(record) -> list[Text]:
    """One run as the cells of a row, in the order of :data:`COLUMNS`."""
    ttft = Text(f"{duration(record.routed.ttft_ms, compact=True)} / "
                f"{duration(record.baseline.ttft_ms, compact=True)}")
    return [
        Text(_when(record.created_at), style="dim"),
        Text(clean(record.task), style="bold"),
        Text(clean(record.priority)),
        Text(clean(record.routed.model)),
        _side_cost(record.routed),
        Text(clean(record.baseline.model), style="dim"),
        _side_cost(record.baseline),
        _saving(record),
        ttft,
        _mode(record),
        _flags(record),
        _verdicts(record),
        Text(first_line(record.prompt)),
    ]


_VERDICT_STYLE = {"routed": "green", "tie": "green", "baseline": "red", "unparsed": "yellow"}


def _verdicts(record) -> Text:
    """A person's verdict (f9) and the LLM judge's, side by side ("–" for none)."""
    out = Text()
    human = record.verdict
    out.append(clean(human) if human else "–", style=_VERDICT_STYLE.get(human or "", "dim"))
    out.append(" / ", style="dim")
    judge = getattr(record, "judge", None)
    if judge is None:
        out.append("–", style="dim")
    elif judge.verdict is None:
        out.append("failed", style="red")
    else:
        word = "tie?" if judge.verdict == "tie" and judge.consistent is False else judge.verdict
        out.append(clean(word), style=_VERDICT_STYLE.get(judge.verdict, ""))
    return out


def _judge_detail(out: Text, judge) -> None:
    out.append("\njudge ", style="dim")
    out.append(clean(judge.model))
    out.append(" ")
    if judge.verdict is None:
        out.append("failed", style="red")
    else:
        out.append(clean(judge.verdict), style=_VERDICT_STYLE.get(judge.verdict, "bold"))
        if judge.consistent is False:
            out.append(" (the two orders disagreed)", style="yellow")
    out.append(f" · {dollars(judge.cost_usd)}", style="dim")
    text = judge.reason if judge.verdict is not None else judge.error
    if text:
        out.append(" · ", style="dim")
        out.append(" ".join(clean(text).split())[:400])


def render_detail(record) -> Text:
    """The highlighted run: its prompt (first lines), why it went where it went, what failed."""
    out = Text()
    lines = [ln for ln in clean(record.prompt).splitlines() if ln.strip()]
    out.append("prompt ", style="dim")
    out.append(" ⏎ ".join(ln.strip() for ln in lines[:3])[:400])
    if len(lines) > 3:
        out.append(f" … ({len(lines)} lines)", style="dim")
    out.append("\nwhy ", style="dim")
    out.append(clean(record.reason or "–"))
    if record.confidence is not None:
        out.append(f"  (confidence {record.confidence:.2f}", style="dim")
        out.append(", uncertain)" if record.uncertain else ")", style="dim")
    for side, name in ((record.routed, "routed"), (record.baseline, "baseline")):
        if side.fallback_reason:
            out.append(f"\n{name} fallback ", style="dim")
            out.append(clean(side.fallback_reason), style="magenta")
        if side.error:
            out.append(f"\n{name} error ", style="dim")
            out.append(clean(side.error), style="red")
        elif side.status == "cancelled":
            out.append(f"\n{name} cancelled", style="dim")
    if record.verdict:
        out.append("\nverdict ", style="dim")
        out.append(clean(record.verdict))
    if getattr(record, "judge", None) is not None:
        _judge_detail(out, record.judge)
    return out


def render_judge_totals(judge_totals) -> Text:
    """What the judge cost over these runs: apart from what routing saved."""
    out = Text()
    if judge_totals is None or not judge_totals.judged:
        return out
    n = judge_totals.judged
    out.append(f"   judge {dollars(judge_totals.cost_usd)} on {n} run{'' if n == 1 else 's'}",
               style="dim")
    out.append(" (not in the savings)", style="dim")
    return out


def render_totals(totals, task: str | None) -> Text:
    out = Text(" ")
    out.append(clean(task) if task else "all task types", style="bold")
    out.append(": ")
    out.append(f"{totals.runs} run{'' if totals.runs == 1 else 's'}", style="bold")
    if not totals.runs:
        out.append("   no runs logged yet", style="dim")
        return out
    out.append("   routed ", style="dim")
    out.append(dollars(totals.routed_cost_usd))
    out.append(" vs baseline ", style="dim")
    out.append(dollars(totals.baseline_cost_usd))
    pct = totals.savings_pct
    if pct is not None:
        style = "bold green" if pct >= 0 else "bold red"
        saved = totals.savings_usd
        out.append("   saved ", style="dim")
        out.append(dollars(saved), style=style)
        out.append(f" ({percent(pct, 1)})", style=style)
    unpriced = totals.runs - totals.priced_runs
    if unpriced:
        out.append(
            f"   {unpriced} run{'' if unpriced == 1 else 's'} without a known price left out",
            style="yellow",
        )
    return out


class HistoryScreen(DeckScreen):
    """Recent runs and their totals; 1..9 filter by task type, 0 shows all."""

    DEFAULT_CSS = """
    HistoryScreen { layout: vertical; }
    HistoryScreen #history-bar { height: auto; }
    HistoryScreen #history-filter { width: 40; }
    HistoryScreen #history-totals { height: auto; padding: 1 1 0 1; width: 1fr; }
    HistoryScreen #history-message { height: auto; padding: 1 2; display: none; }
    HistoryScreen #history-message.-shown { display: block; }
    HistoryScreen #history-table { height: 1fr; }
    HistoryScreen #history-detail { height: auto; max-height: 8; padding: 0 1; background: $boost; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="history_back", tooltip="Back to the previous screen"),
        Binding(
            "r",
            "refresh_log",
            "Refresh",
            id="history_refresh",
            tooltip="Read the run log again (other RouteDeck windows may have added runs)",
        ),
        Binding(
            "0",
            "filter_task(0)",
            "All tasks",
            id="history_all",
            tooltip="Show the runs of every task type",
        ),
    ] + [
        Binding(
            str(n),
            f"filter_task({n})",
            "Task filter" if n == 1 else f"Task {n}",
            id=f"history_task_{n}",
            tooltip=f"Show only the runs of the table's task type number {n} (as listed in the filter)",
            show=n == 1,
            key_display="1-9" if n == 1 else None,
        )
        for n in range(1, 10)
    ]

    def __init__(self) -> None:
        super().__init__()
        self.task_filter: str | None = None
        self.records: list = []
        self.totals = None


    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal

        tasks = self.session.table.task_names
        options = [(Text("all task types"), ALL)] + [
            (Text(f"{i}  {clean(t)}" if i <= 9 else clean(t)), t)
            for i, t in enumerate(tasks, start=1)
        ]
        yield Header(show_clock=False, icon=HEADER_ICON)
        with Horizontal(id="history-bar"):
            yield Select(options, value=ALL, allow_blank=False, id="history-filter")
            yield Static(Text(" reading the run log…", style="dim"), id="history-totals")
        yield Static("", id="history-message")
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="history-detail")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.title = "History"
        dt = self.query_one("#history-table", DataTable)
        for key, label in COLUMNS:
            dt.add_column(Text(label, style="bold"), key=key)
        if self.session.runlog is None:
            self._show_message(
                Text(
                    "The run log is disabled (RouteDeck was started without one, e.g. --no-log): "
                    "runs are not kept, so there is no history to show.",
                    style="yellow",
                )
            )
            self.query_one("#history-totals", Static).update(
                Text(" run log disabled", style="yellow")
            )
        else:
            self.load()
        dt.focus()

    def on_screen_resume(self) -> None:
        if self.session.runlog is not None and self.is_mounted:
            self.load()

    def _show_message(self, text: Text | None) -> None:
        msg = self.query_one("#history-message", Static)
        msg.update(text or "")
        msg.set_class(text is not None, "-shown")

    # -- reading ------------------------------------------------------------------------------

    def load(self) -> None:
        self._read(self.task_filter)

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def _read(self, task: str | None) -> None:
        log = self.session.runlog
        if log is None:
            return
        records = log.recent(LIMIT, task)
        totals = log.totals(task)
        judge_totals = log.judge_totals(task)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, task, records, totals, judge_totals)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "history" and event.state == WorkerState.ERROR:
            event.stop()
            self._show_message(
                Text(f"could not read the run log: {clean(str(event.worker.error))}", style="red")
            )

    def _show(self, task: str | None, records: list, totals, judge_totals=None) -> None:
        if task != self.task_filter:
            return  # a newer filter is being read
        self.records = records
        self.totals = totals
        line = render_totals(totals, task)
        if totals.runs:
            line.append_text(render_judge_totals(judge_totals))
        self.query_one("#history-totals", Static).update(line)
        dt = self.query_one("#history-table", DataTable)
        dt.clear()
        for record in records:
            dt.add_row(*render_row(record), key=str(record.id))
        self._show_detail(dt.cursor_row if records else None)
        if records:
            self._show_message(None)
        else:
            what = f"of task type {clean(task)!r} " if task else ""
            self._show_message(
                Text(
                    f"No runs {what}in the log yet: run a prompt (ctrl+j) on the main screen.",
                    style="dim",
                )
            )

    @on(DataTable.RowHighlighted, "#history-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def _show_detail(self, index: int | None) -> None:
        detail = self.query_one("#history-detail", Static)
        if index is None or not (0 <= index < len(self.records)):
            detail.update("")
            return
        detail.update(render_detail(self.records[index]))

    # -- filtering ----------------------------------------------------------------------------

    def set_filter(self, task: str | None) -> None:
        if task == self.task_filter:
            return
        self.task_filter = task
        select = self.query_one("#history-filter", Select)
        if select.value != (task or ALL):
            with select.prevent(Select.Changed):
                select.value = task or ALL
        if self.session.runlog is not None:
            self.query_one("#history-totals", Static).update(
                Text(" reading the run log…", style="dim")
            )
            self.load()

    @on(Select.Changed, "#history-filter")
    def _filter_changed(self, event: Select.Changed) -> None:
        value = event.value
        self.set_filter(value if isinstance(value, str) and value else None)

    def action_filter_task(self, n: int) -> None:
        tasks = self.session.table.task_names
        if n == 0:
            self.set_filter(None)
        elif 1 <= n <= len(tasks):
            self.set_filter(tasks[n - 1])
        else:
            self.app.bell()

    def action_refresh_log(self) -> None:
        if self.session.runlog is not None:
            self.load()

    def action_back(self) -> None:
        self.app.pop_screen()
