"""What routing saves on a workload, drawn live: totals, savings by task type, cumulative cost,
and a threshold explorer.

The workload is the packaged demo workload (``tui/data/demo_workload.jsonl``), a JSONL file given
to the screen, or the session's run log (``w`` toggles). It is classified ONCE, in a thread
worker, with a progress bar; every figure after that is a re-projection of those
classifications (``projection.reproject``), so editing a grid cell, moving the threshold or
applying it redraws in milliseconds, with the session's CURRENT table, saved or not (what-if).

The screen notices a new table on resume (back from the grid), through :meth:`table_changed`
(on the app's :class:`~tui.app.messages.TableChanged`, which every change of the session's table
posts: an edit, a save, a correction, the command palette). When the task types change
(a label correction retrained the classifier) the workload is classified again.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Header, ProgressBar, Static
from textual.worker import get_current_worker

from tui.app import HEADER_ICON
from tui.app.messages import TableChanged
from tui.app.screens.base import DeckScreen
from tui.app.widgets.charts import (
    BarChart,
    BarRow,
    CumulativeChart,
    sparkline,
)
from tui.app.widgets.footer import KeyFooter
from tui.router.sanitize import clean
from tui.router.units import dollars, percent, share

if TYPE_CHECKING:
    from tui.router.cost.classified import Classified
    from tui.router.cost.projection import Projection
    from tui.router.cost.sweep import SweepPoint
    from tui.router.cost.workload import WorkloadItem
    from tui.router.types import RoutingTable

Source = Literal["workload", "runlog"]

THRESHOLD_STEP = 0.05
RUNLOG_LIMIT = 5_000  # newest runs replayed from the run log
CHART_SAMPLES = 400  # cumulative points kept for the chart (it resamples to its width)


def demo_workload_path() -> Path:
    """The demo workload shipped in the package."""
    return Path(str(resources.files("tui") / "data" / "demo_workload.jsonl"))


class _Cancelled(Exception):
    """Raised from the progress callback to stop a classification nobody waits for."""


def _clamp_threshold(value: float) -> float:
    return min(1.0, max(0.0, round(value, 2)))


def render_totals(p: Projection, table: RoutingTable, *, dirty: bool) -> Text:
    """The headline figures of a projection (every outside name appended as plain text)."""
    out = Text()
    out.append("routed ", style="dim")
    out.append(dollars(p.routed_usd), style="bold green")
    out.append("  vs baseline ", style="dim")
    out.append(dollars(p.baseline_usd), style="bold dark_orange")
    out.append(" (")
    out.append(clean(p.baseline_model))
    out.append(")   savings ", style="dim")
    pct = p.savings_pct
    tone = "bold green" if (pct or 0) > 0 else ("bold red" if (pct or 0) < 0 else "bold")
    out.append(percent(pct, 1), style=tone)
    out.append(f" ({dollars(p.savings_usd)})", style="dim")
    out.append("\n")
    out.append(f"{p.n} prompts", style="bold")
    out.append("   unpriced ", style="dim")
    out.append(str(p.unpriced), style="yellow" if p.unpriced else "")
    out.append("   uncertain ", style="dim")
    out.append(f"{share(p.share_uncertain, 1)} ({p.n_uncertain})")
    out.append(f" at threshold {p.threshold:.2f}", style="dim")
    out.append("   accuracy ", style="dim")
    if p.accuracy is None:
        out.append("n/a (no labels)", style="dim")
    else:
        out.append(share(p.accuracy, 1))
        out.append(f" of {p.n_labelled} labelled", style="dim")
    out.append("\n")
    sources = ", ".join(f"{k} {v}" for k, v in sorted(p.output_tokens_sources.items()))
    out.append(
        f"estimates: input tokens = characters / 4; output tokens from {sources or 'nothing'}; "
        "primary models at today's prices",
        style="dim italic",
    )
    if dirty:
        out.append("\n")
        out.append("● the table has unsaved edits: these figures use them (ctrl+s saves)",
                   style="bold yellow")
    return out


def _nearest(sweep: list[SweepPoint], threshold: float) -> int | None:
    if not sweep:
        return None
    return min(range(len(sweep)), key=lambda i: abs(sweep[i].threshold - threshold))


def render_explorer(
    p: Projection, table: RoutingTable, *, accuracy_confident: float | None,
    n_confident_labelled: int,
) -> Text:
    """The threshold explorer's headline: the explored threshold's figures, together."""
    out = Text()
    table_thr = table.classifier.threshold
    out.append("threshold ", style="bold")
    out.append(f"{p.threshold:.2f}", style="bold reverse")
    if abs(p.threshold - table_thr) > 1e-9:
        out.append(f"  (the table uses {table_thr:.2f}; a applies this one)", style="yellow")
    else:
        out.append("  (the table's)", style="dim")
    out.append("\n")
    out.append("uncertain route (", style="dim")
    out.append(clean(table.classifier.uncertain_route))
    out.append(") ", style="dim")
    out.append(share(p.share_uncertain, 1), style="bold")
    out.append(f" ({p.n_uncertain} of {p.n})", style="dim")
    out.append("   projected ", style="dim")
    out.append(dollars(p.routed_usd), style="bold green")
    out.append(" vs ", style="dim")
    out.append(dollars(p.baseline_usd), style="dark_orange")
    out.append("   savings ", style="dim")
    out.append(percent(p.savings_pct, 1), style="bold")
    out.append("   accuracy (confident, labelled) ", style="dim")
    if accuracy_confident is None:
        out.append("n/a", style="dim")
    else:
        out.append(share(accuracy_confident, 1), style="bold")
        out.append(f" of {n_confident_labelled}", style="dim")
    return out


def _threshold_label(t: float) -> str:
    return "1.0" if t >= 0.995 else f"{t:.2f}".lstrip("0")


def render_sweep(sweep: list[SweepPoint], threshold: float) -> Text:
    """The whole sweep: a row of thresholds, then uncertain share, savings and accuracy per
    threshold (percent), each followed by its sparkline; the nearest threshold is marked."""
    out = Text(no_wrap=True, overflow="crop")
    if not sweep:
        return out
    marked = _nearest(sweep, threshold)
    label_w, cell_w = 12, 4
    out.append("threshold".ljust(label_w), style="dim")
    for i, s in enumerate(sweep):
        out.append(_threshold_label(s.threshold).rjust(cell_w - 1),
                   style="bold reverse" if i == marked else "dim")
        out.append(" ")
    rows: list[tuple[str, list[float | None], str, float | None, float | None]] = [
        ("uncertain", [s.share_uncertain * 100 for s in sweep], "yellow", 0.0, 100.0),
        ("savings", [s.savings_pct for s in sweep], "green", None, None),
        ("accuracy", [None if s.accuracy_confident is None else s.accuracy_confident * 100
                      for s in sweep], "cyan", None, 100.0),
    ]
    for name, values, style, lo, hi in rows:
        out.append("\n")
        out.append(f"{name} %".ljust(label_w), style="dim")
        for i, v in enumerate(values):
            cell = "–" if v is None or not math.isfinite(v) else f"{v:.0f}"
            out.append(cell.rjust(cell_w - 1), style="bold reverse" if i == marked else "")
            out.append(" ")
        out.append(" ")
        out.append_text(sparkline(values, marked=marked, lo=lo, hi=hi, style=style))
    return out


def confident_accuracy(
    projection: Projection, sweep: list[SweepPoint]
) -> tuple[float | None, int]:
    """Accuracy of the labelled prompts routed by their own label (not sent to the uncertain
    route) at the projection's threshold, and how many there are: read from the sweep when it
    has that threshold, else counted (blocking for big workloads: call it in the worker)."""
    for s in sweep:
        if abs(s.threshold - projection.threshold) < 1e-9:
            return s.accuracy_confident, s.n_confident_labelled
    n = correct = 0
    for row in projection.rows:
        if row.true_label is not None and not row.uncertain:
            n += 1
            correct += row.true_label == row.task
    return (correct / n if n else None), n


class SavingsScreen(DeckScreen):
    """The projected savings of a workload under the current (possibly unsaved) table."""

    DEFAULT_CSS = """
    SavingsScreen { layout: vertical; }
    SavingsScreen #savings-body { height: 1fr; }
    SavingsScreen #savings-source { height: auto; padding: 0 1; }
    SavingsScreen #savings-progress { height: 1; padding: 0 1; }
    SavingsScreen #savings-progress.-hidden { display: none; }
    SavingsScreen #savings-totals { height: auto; padding: 0 1; margin-bottom: 1; }
    SavingsScreen #savings-quality { height: auto; padding: 0 1; margin-bottom: 1; display: none; }
    SavingsScreen #savings-quality.-shown { display: block; }
    SavingsScreen #savings-charts { height: auto; }
    SavingsScreen .savings-panel {
        width: 1fr; height: auto; border: round $accent 40%; padding: 0 1;
        border-title-color: $text-muted;
    }
    SavingsScreen #savings-explorer-panel {
        height: auto; border: round $accent 40%; padding: 0 1; border-title-color: $text-muted;
    }
    SavingsScreen #savings-explorer { height: auto; margin-bottom: 1; }
    SavingsScreen #savings-sweep { height: auto; text-wrap: nowrap; text-overflow: clip; }
    SavingsScreen #savings-cumulative { height: 14; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="savings_back", tooltip="Back to the previous screen"),
        Binding(
            "left,minus",
            "threshold_down",
            "Threshold −",
            id="savings_threshold_down",
            tooltip=f"Lower the confidence threshold by {THRESHOLD_STEP:.2f}: fewer prompts go "
            "to the uncertain route",
        ),
        Binding(
            "right,plus,equals_sign",
            "threshold_up",
            "Threshold +",
            id="savings_threshold_up",
            tooltip=f"Raise the confidence threshold by {THRESHOLD_STEP:.2f}: more prompts go to "
            "the uncertain route",
        ),
        Binding(
            "a",
            "apply_threshold",
            "Apply threshold",
            id="savings_apply_threshold",
            tooltip="Put the explored threshold in the routing table (an unsaved edit: ctrl+s "
            "saves it)",
        ),
        Binding(
            "0",
            "reset_threshold",
            "Table's threshold",
            id="savings_reset_threshold",
            tooltip="Go back to the threshold the routing table uses",
        ),
        Binding(
            "w",
            "toggle_source",
            "Workload / run log",
            id="savings_source",
            tooltip="Switch between the workload file and the prompts in the run log",
        ),
    ]

    def __init__(
        self,
        workload: str | os.PathLike[str] | None = None,
        *,
        source: Source = "workload",
        runlog_limit: int = RUNLOG_LIMIT,
    ) -> None:
        super().__init__()
        # None: the packaged demo workload.
        self.workload_path: Path | None = Path(workload) if workload is not None else None
        self.source: Source = source
        self.runlog_limit = runlog_limit
        self.classified: Classified | None = None
        self.classified_table: RoutingTable | None = None  # the table it was classified with
        self.projection: Projection | None = None  # under shown_table at the shown threshold
        self.shown_table: RoutingTable | None = None  # the table the figures were computed for
        self.sweep: list[SweepPoint] = []
        self._sweep_table: RoutingTable | None = None
        # The explored threshold; None follows the table's.
        self.explored: float | None = None
        self.error: str | None = None

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon=HEADER_ICON)
        with VerticalScroll(id="savings-body", can_focus=False):
            yield Static("", id="savings-source")
            yield ProgressBar(id="savings-progress", show_eta=False)
            yield Static(Text("classifying…", style="dim"), id="savings-totals")
            yield Static("", id="savings-quality")
            with Horizontal(id="savings-charts"):
                with Vertical(classes="savings-panel", id="savings-bars-panel"):
                    yield BarChart(id="savings-bars")
                with Vertical(classes="savings-panel", id="savings-cumulative-panel"):
                    yield CumulativeChart(id="savings-cumulative")
            with Vertical(id="savings-explorer-panel"):
                yield Static("", id="savings-explorer")
                yield Static("", id="savings-sweep")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.title = "Savings"
        self.query_one("#savings-bars-panel").border_title = "cost by task type"
        self.query_one("#savings-cumulative-panel").border_title = (
            "cumulative cost over the prompts"
        )
        self.query_one("#savings-explorer-panel").border_title = (
            "threshold explorer: share sent to the uncertain route, cost, accuracy"
        )
        self.load()
        self.load_quality()

    # -- what the figures are computed from -------------------------------------------------------


    @property
    def threshold(self) -> float:
        """The threshold the figures use: the explored one, else the current table's."""
        if self.explored is not None:
            return self.explored
        return self.session.table.classifier.threshold

    def source_label(self) -> Text:
        out = Text()
        if self.source == "runlog":
            out.append("run log", style="bold")
            path = getattr(self.session.runlog, "path", None)
            if path is not None:
                out.append(" ")
                out.append(clean(str(path)), style="dim")
            out.append(f" (newest {self.runlog_limit} runs)", style="dim")
        elif self.workload_path is None:
            out.append("demo workload", style="bold")
            out.append(" (packaged with RouteDeck)", style="dim")
        else:
            out.append("workload ", style="dim")
            out.append(clean(str(self.workload_path)), style="bold")
        if self.classified is not None:
            out.append(f"   {len(self.classified)} prompts", style="dim")
        out.append("   w: ", style="dim")
        out.append("workload file" if self.source == "runlog" else "run log", style="dim")
        return out

    def _read_items(self, source: Source) -> list[WorkloadItem]:
        """The workload's items (blocking: file or database reads)."""
        from tui.router.cost.workload import read_workload, workload_from_runs

        if source == "runlog":
            runlog = self.session.runlog
            if runlog is None:
                raise LookupError("this session keeps no run log")
            items = workload_from_runs(runlog.recent(self.runlog_limit))
            if not items:
                raise LookupError(
                    "the run log has no prompts yet: run a few, or press w for the workload file"
                )
            return items
        return read_workload(self.workload_path or demo_workload_path())

    # -- classifying (once per workload and set of task types) -------------------------------------

    def load(self) -> None:
        """Classify the current source's workload (in a thread worker), then draw."""
        self.classified = None
        self.classified_table = None
        self.projection = None
        self.error = None
        bar = self.query_one("#savings-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.remove_class("-hidden")
        self.query_one("#savings-source", Static).update(self.source_label())
        self.query_one("#savings-totals", Static).update(Text("classifying…", style="dim"))
        self._classify(self.source, self.session.table, self.threshold)

    @work(thread=True, exclusive=True, group="savings-classify", exit_on_error=False)
    def _classify(self, source: Source, table: RoutingTable, threshold: float) -> None:
        worker = get_current_worker()
        from tui.router.cost.classified import WorkloadOptions, classify_workload
        from tui.router.cost.projection import reproject
        from tui.router.cost.sweep import threshold_sweep
        from tui.router.cost.workload import WorkloadError

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:
                raise _Cancelled
            self.app.call_from_thread(self._progress, done, total)

        try:
            items = self._read_items(source)
            runlog = self.session.runlog
            by_task = runlog.avg_output_tokens_by_task() if runlog is not None else None
            # The local label: opening this screen never pays an LLM classifier per prompt
            # (`routedeck bench` projects what the LLM or the cascade would cost).
            classifier = self.session.load_local_classifier()
            options = WorkloadOptions(output_tokens_by_task=by_task, on_progress=progress)
            classified = classify_workload(items, table, classifier, options=options)
            projection = reproject(classified, table, threshold=threshold)
            sweep = threshold_sweep(classified, table)
            confident = confident_accuracy(projection, sweep)
        except _Cancelled:
            return
        except (WorkloadError, LookupError) as exc:
            message = str(exc)
        except Exception as exc:  # shown on the screen; the app keeps running
            message = f"{type(exc).__name__}: {exc}"
        else:
            if not worker.is_cancelled:
                self.app.call_from_thread(
                    self._classified, source, classified, table, projection, sweep, confident
                )
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._failed, source, message)

    def _progress(self, done: int, total: int) -> None:
        if self.is_attached:
            self.query_one("#savings-progress", ProgressBar).update(total=total, progress=done)

    def _failed(self, source: Source, message: str) -> None:
        if not self.is_attached or source != self.source:
            return
        self.error = message
        self.query_one("#savings-progress", ProgressBar).add_class("-hidden")
        self.query_one("#savings-totals", Static).update(Text(clean(message), style="bold red"))
        self.query_one("#savings-bars", BarChart).show_message("nothing to chart")
        self.query_one("#savings-cumulative", CumulativeChart).show_message("nothing to chart")
        self.query_one("#savings-explorer", Static).update("")
        self.query_one("#savings-sweep", Static).update("")

    def _classified(
        self,
        source: Source,
        classified: Classified,
        table: RoutingTable,
        projection: Projection,
        sweep: list[SweepPoint],
        confident: tuple[float | None, int],
    ) -> None:
        if not self.is_attached or source != self.source:
            return
        self.classified = classified
        self.classified_table = table
        self.sweep, self._sweep_table = sweep, table
        self.query_one("#savings-progress", ProgressBar).add_class("-hidden")
        self.query_one("#savings-source", Static).update(self.source_label())
        self._show(projection, table, confident)
        self.table_changed()  # the table may have changed while the workload was classified

    # -- re-projecting (what-if and the threshold explorer) -------------------------------------

    def on_table_changed(self, _: TableChanged) -> None:
        self.table_changed()

    def table_changed(self) -> None:
        """Redraw for the session's current table (call after any edit; cheap when unchanged)."""
        if not self.is_attached or self.classified is None:
            return
        table = self.session.table
        if not self.classified.matches(table):
            self.load()  # new task types or examples: the labels may have changed
            return
        if self.explored is not None and abs(self.explored - table.classifier.threshold) < 1e-9:
            self.explored = None
        if table is self.shown_table and self.projection is not None and (
            abs(self.projection.threshold - self.threshold) < 1e-9
        ):
            return
        self.recompute()

    def on_screen_resume(self) -> None:
        self.table_changed()
        self.load_quality()

    @work(thread=True, exclusive=True, group="savings-quality", exit_on_error=False)
    def load_quality(self) -> None:
        """The LLM judge's verdicts in the run log, per task type (shown only when there are
        some): quality next to the savings."""
        runlog = self.session.runlog
        if runlog is None or getattr(runlog, "path", None) is None:
            return
        from tui.router.run.judge import quality_by_task

        try:
            by_task = quality_by_task(runlog)
            cost = runlog.judge_totals().cost_usd
        except Exception:  # noqa: BLE001 - a bonus: an unreadable log shows none
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_quality, by_task, cost)

    def _show_quality(self, by_task: dict, cost: float) -> None:
        if not self.is_attached:
            return
        from tui.app.widgets.judge_bar import render_task_quality

        widget = self.query_one("#savings-quality", Static)
        shown = any(s.n for s in by_task.values())
        widget.set_class(shown, "-shown")
        widget.update(render_task_quality(by_task, cost) if shown else "")

    def recompute(self) -> None:
        if self.classified is None:
            return
        table = self.session.table
        sweep = self.sweep if self._sweep_table is table else None
        self._reproject(self.classified, table, self.threshold, sweep)

    @work(thread=True, exclusive=True, group="savings-project", exit_on_error=False)
    def _reproject(
        self,
        classified: Classified,
        table: RoutingTable,
        threshold: float,
        sweep: list[SweepPoint] | None,
    ) -> None:
        from tui.router.cost.projection import reproject
        from tui.router.cost.sweep import threshold_sweep

        worker = get_current_worker()
        try:
            projection = reproject(classified, table, threshold=threshold)
            if sweep is None:
                sweep = threshold_sweep(classified, table)
            confident = confident_accuracy(projection, sweep)
        except Exception as exc:
            if not worker.is_cancelled:
                self.app.call_from_thread(
                    self.notify, Text(f"could not project: {type(exc).__name__}: {exc}"),
                    severity="error",
                )
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(
                self._reprojected, classified, table, projection, sweep, confident
            )

    def _reprojected(
        self,
        classified: Classified,
        table: RoutingTable,
        projection: Projection,
        sweep: list[SweepPoint],
        confident: tuple[float | None, int],
    ) -> None:
        if not self.is_attached or classified is not self.classified:
            return
        self.sweep, self._sweep_table = sweep, table
        self._show(projection, table, confident)

    # -- drawing --------------------------------------------------------------------------------

    def _show(
        self, projection: Projection, table: RoutingTable, confident: tuple[float | None, int]
    ) -> None:
        self.projection = projection
        self.shown_table = table
        from tui.app.screens.grid import display_path

        # The path as the grid shows it (relative to the current folder: shorter at 80 columns).
        self.sub_title = "what-if: unsaved table" if self.deck.dirty else clean(
            display_path(table.path) if table.path else "routes.toml"
        )
        self.query_one("#savings-totals", Static).update(
            render_totals(projection, table, dirty=self.deck.dirty)
        )
        self.query_one("#savings-bars", BarChart).set_rows(
            [
                BarRow(t.task, t.count, t.routed_usd, t.baseline_usd, t.unpriced)
                for t in projection.by_task.values()
            ]
        )
        self.query_one("#savings-cumulative", CumulativeChart).set_points(
            projection.cumulative(points=CHART_SAMPLES)
        )
        acc, n_conf = confident
        self.query_one("#savings-explorer", Static).update(
            render_explorer(projection, table, accuracy_confident=acc, n_confident_labelled=n_conf)
        )
        self.query_one("#savings-sweep", Static).update(
            render_sweep(self.sweep, projection.threshold)
        )

    # -- actions --------------------------------------------------------------------------------

    def _move_threshold(self, delta: float) -> None:
        if self.classified is None:
            message = "no workload to explore" if self.error else "still classifying the workload"
            self.notify(message, timeout=2)
            return
        new = _clamp_threshold(self.threshold + delta)
        table_thr = self.session.table.classifier.threshold
        self.explored = None if abs(new - table_thr) < 1e-9 else new
        self.recompute()

    def action_threshold_down(self) -> None:
        self._move_threshold(-THRESHOLD_STEP)

    def action_threshold_up(self) -> None:
        self._move_threshold(THRESHOLD_STEP)

    def action_reset_threshold(self) -> None:
        self.explored = None
        self.recompute()

    def action_apply_threshold(self) -> None:
        table = self.session.table
        new = self.threshold
        if abs(new - table.classifier.threshold) < 1e-9:
            self.notify(Text(f"the table already uses threshold {new:.2f}"), timeout=3)
            return
        self.deck.apply_table(replace(table, classifier=replace(table.classifier, threshold=new)))
        self.explored = None
        self.table_changed()
        note = Text(f"threshold {new:.2f} applied")
        note.append("  (applies to the next run; ctrl+s saves)", style="dim")
        self.notify(note, timeout=3)

    def action_toggle_source(self) -> None:
        if self.source == "workload" and self.session.runlog is None:
            self.notify("this session keeps no run log", severity="warning", timeout=3)
            return
        self.source = "runlog" if self.source == "workload" else "workload"
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()
