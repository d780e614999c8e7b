""""The label is wrong": pick the right task type, and the prompt becomes a training example.

Opened with the prompt and its decision. One key per task type (1..9 in table order, or the
list). Then, in a thread worker: ``corrections.apply_correction`` adds the example to the SAVED
table (``app.saved_table``) and writes routes.toml atomically, the classifier retrains, and the
dev set (if any) is scored before and after. Unsaved grid edits are not written by a correction:
they stay unsaved, on top of the corrected table. Afterwards the session uses the corrected table
and the retrained classifier at once, and ``app.saved_table`` is the table as written.

``corrections.prepare`` runs in a background worker as soon as the modal opens (scikit-learn's
import and the featurized training set), so the retrain itself is fast.

Dismissed with the ``CorrectionResult`` (or None when nothing was corrected).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import LoadingIndicator, OptionList, Static
from textual.widgets.option_list import Option

from tui.app.screens.base import DeckModal
from tui.router.sanitize import clean
from tui.router.types import Decision, RoutingTable
from tui.router.units import ms, share

if TYPE_CHECKING:
    from tui.router.classifier.corrections import CorrectionReport, CorrectionResult, DevScore
    from tui.router.classifier.evaluate import LabelledPrompt

PROMPT_PREVIEW_LINES = 4
PROMPT_PREVIEW_CHARS = 400
MAX_TASK_KEYS = 9
DESCRIPTION_CHARS = 96  # an option's label is cut to this many characters (one line)


def _arrow_style(before: float, after: float) -> str:
    if after > before + 1e-12:
        return "bold green"
    if after < before - 1e-12:
        return "bold red"
    return "bold"


def render_report(report: CorrectionReport, *, saved_to: str | None, dev_label: Text) -> Text:
    """What the correction did, in plain Text (the prompt and names never read as markup)."""
    out = Text()
    task = clean(report.task)
    if report.added:
        out.append("✓ added as an example of ", style="green")
        out.append(task, style="bold")
        if report.moved_from:
            out.append(" (moved from ")
            out.append(", ".join(clean(m) for m in report.moved_from), style="bold")
            out.append(")")
    else:
        out.append("already an example of ", style="dim")
        out.append(task, style="bold")
    if saved_to:
        out.append("; written to ", style="dim")
        out.append(clean(saved_to))
        out.append(" at once (the previous file kept as ", style="dim")
        out.append(clean(Path(saved_to).name) + ".bak")
        out.append(")", style="dim")
    out.append("\n")
    before, after = report.before, report.after
    out.append("classified now ", style="dim")
    out.append(clean(after.label), style="bold green" if report.fixed else "bold yellow")
    if after.confidence is not None:
        out.append(f" {after.confidence:.2f}")
    if before is not None:
        out.append("   (before: ", style="dim")
        out.append(clean(before.label))
        if before.confidence is not None:
            out.append(f" {before.confidence:.2f}")
        out.append(")", style="dim")
    out.append("   ✓ fixed" if report.fixed else "   not fixed yet",
               style="bold green" if report.fixed else "bold yellow")
    out.append("\n")
    out.append_text(dev_label)
    if report.dev_before is not None and report.dev_after is not None:
        out.append("\n")
        _score_line(out, report.dev_before, report.dev_after)
        out.append(f"   {report.dev_fixed} fixed, {report.dev_broken} broken", style="dim")
    out.append("\n")
    out.append(f"retrained ({report.method}) in {ms(report.retrain_ms)}", style="dim")
    for note in report.notes:
        out.append("\n")
        out.append("note: ", style="yellow")
        out.append(clean(note))
    return out


def _score_line(out: Text, before: DevScore, after: DevScore) -> None:
    out.append("accuracy ", style="dim")
    out.append(share(before.accuracy, 1))
    out.append(" → ", style="dim")
    out.append(share(after.accuracy, 1), style=_arrow_style(before.accuracy, after.accuracy))
    out.append("   macro-F1 ", style="dim")
    out.append(f"{before.macro_f1:.3f}")
    out.append(" → ", style="dim")
    out.append(f"{after.macro_f1:.3f}", style=_arrow_style(before.macro_f1, after.macro_f1))
    out.append(f"   on {after.n} prompts", style="dim")


def _task_bindings() -> list[Binding]:
    return [
        Binding(
            str(i),
            f"pick({i})",
            f"Task {i}",
            id=f"correction_task_{i}",
            tooltip=f"The right task type is number {i} in the list (table order)",
            show=False,
        )
        for i in range(1, MAX_TASK_KEYS + 1)
    ]


class CorrectionScreen(DeckModal["CorrectionResult | None"]):
    DEFAULT_CSS = """
    CorrectionScreen { align: center middle; }
    CorrectionScreen > Vertical {
        width: 90%; max-width: 120; height: auto; max-height: 90%; border: thick $warning;
        background: $surface; padding: 1 2;
    }
    CorrectionScreen Static { height: auto; }
    CorrectionScreen #correction-prompt {
        border: round $accent 40%; padding: 0 1; margin: 1 0; max-height: 8;
    }
    CorrectionScreen OptionList { height: auto; max-height: 12; }
    CorrectionScreen #correction-status { margin-top: 1; }
    CorrectionScreen LoadingIndicator { height: 1; display: none; }
    CorrectionScreen LoadingIndicator.-busy { display: block; }
    CorrectionScreen #correction-report { margin-top: 1; }
    """

    BINDINGS = [
        *_task_bindings(),
        Binding("escape", "close", "Close", id="correction_close",
                tooltip="Close (after a correction: keep it; before: change nothing)"),
    ]

    def __init__(
        self,
        prompt: str,
        decision: Decision | None = None,
        *,
        dev_set: str | os.PathLike[str] | None | Literal["auto"] = "auto",
    ) -> None:
        """``prompt``: the text to learn from (``decision.prompt`` wins when given).
        ``dev_set``: a labelled JSONL file scored before and after; ``"auto"`` looks for
        ``tests/data/dev.jsonl`` beside the routes file's repository (:func:`find_dev_set`);
        None scores nothing."""
        super().__init__()
        self.prompt = decision.prompt if decision is not None else prompt
        self.decision = decision
        self._dev_set_arg = dev_set
        self.dev_path: Path | None = None
        self.dev_rows: list[LabelledPrompt] | None = None
        self.dev_problem: str | None = None
        self.result: CorrectionResult | None = None
        self.busy = False
        self._ready = threading.Event()
        self._tasks: list[str] = []


    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        self._tasks = list(self.session.table.task_names)
        with Vertical():
            yield Static(Text("The label is wrong: which task type is this prompt?", style="bold"))
            yield Static(self._prompt_text(), id="correction-prompt")
            yield OptionList(*self._options(), id="correction-tasks", markup=False)
            yield LoadingIndicator()
            yield Static(Text("getting the classifier ready…", style="dim"), id="correction-status")
            yield Static("", id="correction-report")

    def _prompt_text(self) -> Text:
        text = clean(self.prompt)
        lines = text.splitlines() or [""]
        shown = "\n".join(lines[:PROMPT_PREVIEW_LINES])
        if len(shown) > PROMPT_PREVIEW_CHARS:
            shown = shown[:PROMPT_PREVIEW_CHARS]
        out = Text(shown)
        if shown != text:
            out.append(f" … ({len(text)} characters)", style="dim")
        d = self.decision
        if d is not None:
            c = d.classification
            out.append("\nclassified ", style="dim")
            out.append(clean(c.label), style="bold")
            if c.confidence is not None:
                out.append(f" {c.confidence:.2f}")
            out.append(f" by {clean(c.classifier)}", style="dim")
            if d.uncertain:
                out.append("  (uncertain)", style="yellow")
        return out

    def _options(self) -> list[Option]:
        table = self.session.table
        current = self.decision.classification.label if self.decision else None
        options = []
        for i, name in enumerate(self._tasks, start=1):
            label = Text()
            label.append(f"{i}  " if i <= MAX_TASK_KEYS else "   ", style="bold")
            label.append(clean(name), style="bold")
            if name == current:
                label.append("  (classified now)", style="yellow")
            description = clean(table.tasks[name].description).strip()
            room = DESCRIPTION_CHARS - len(label.plain)
            if description and room > 10:
                first = description.splitlines()[0]
                if len(first) > room:
                    first = first[: room - 1].rstrip() + "…"
                label.append("  ")
                label.append(first, style="dim")
            options.append(Option(label, id=f"task-{i}"))
        return options

    def on_mount(self) -> None:
        tasks = self.query_one("#correction-tasks", OptionList)
        tasks.focus()
        current = self.decision.classification.label if self.decision else None
        # Start on the first task that is not the current label (the likely answer is another).
        for i, name in enumerate(self._tasks):
            if name != current:
                tasks.highlighted = i
                break
        self._prepare(self._dev_set_arg)

    # -- getting ready --------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="correction-prepare", exit_on_error=False)
    def _prepare(self, dev_set: str | os.PathLike[str] | None) -> None:
        """Load the classifier, featurize the training set, read the dev set (in the background)."""
        status = "ready: pick the right task type (1–9 or enter)"
        try:
            from tui.router.classifier.corrections import find_dev_set, prepare
            from tui.router.classifier.evaluate import EvalInputError, read_labelled

            saved = self.deck.saved_table
            table = self.session.table
            path = find_dev_set(saved.path) if dev_set == "auto" else (
                Path(dev_set) if dev_set is not None else None
            )
            if path is None and dev_set == "auto":
                # Outside the repository: the labelled prompts shipped in the package.
                from tui.app.screens.savings import demo_workload_path

                path = demo_workload_path()
            self.dev_path = path
            if path is not None:
                try:
                    self.dev_rows = read_labelled(path, table.task_names)
                except EvalInputError as exc:
                    self.dev_problem = str(exc).splitlines()[0]
            classifier = self.session.load_local_classifier()
            prepare(saved, classifier, trainer=self.session.corrections)
        except Exception as exc:  # the correction itself will say what is wrong
            status = f"not prepared ({type(exc).__name__}: {exc}); a correction may be slower"
        finally:
            self._ready.set()
        self.app.call_from_thread(self._set_status, Text(clean(status), style="dim"))

    def _set_status(self, text: Text) -> None:
        if self.is_attached and not self.busy and self.result is None:
            self.query_one("#correction-status", Static).update(text)

    def dev_label(self) -> Text:
        if self.dev_path is None:
            return Text("no labelled set: accuracy before and after not measured", style="dim")
        from tui.app.screens.savings import demo_workload_path

        if self.dev_path == demo_workload_path():
            out = Text("labelled set ", style="dim")
            out.append("the demo workload packaged with RouteDeck")
        else:
            out = Text("dev set ", style="dim")
            out.append(clean(str(self.dev_path)))
        if self.dev_problem:
            out.append(f" not used: {clean(self.dev_problem)}", style="yellow")
        elif self.dev_rows is not None:
            out.append(f" ({len(self.dev_rows)} prompts)", style="dim")
        return out

    # -- picking ----------------------------------------------------------------------------------

    def action_pick(self, number: int) -> None:
        if 1 <= number <= len(self._tasks):
            self.pick(self._tasks[number - 1])

    @on(OptionList.OptionSelected, "#correction-tasks")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.pick(self._tasks[event.option_index])

    def pick(self, task: str) -> None:
        """Correct the prompt's label to ``task`` (once; ignored while a correction runs)."""
        if self.busy or self.result is not None:
            return
        self.busy = True
        self.query_one(LoadingIndicator).add_class("-busy")
        self.query_one("#correction-tasks", OptionList).disabled = True
        status = Text("adding the example, saving routes.toml and retraining as ", style="dim")
        status.append(clean(task), style="bold")
        status.append("…", style="dim")
        self.query_one("#correction-status", Static).update(status)
        self.query_one("#correction-report", Static).update("")
        self._correct(task, self.deck.saved_table)

    @work(thread=True, exclusive=True, group="correction-apply", exit_on_error=False)
    def _correct(self, task: str, saved: RoutingTable) -> None:
        from tui.router.classifier.corrections import CorrectionError, apply_correction
        from tui.router.table.check import TableError
        from tui.router.table.save import ConflictError

        self._ready.wait(timeout=120)
        try:
            classifier = self.session.load_local_classifier()
            result = apply_correction(saved, self.prompt, task, self.dev_rows, save=True,
                                      classifier=classifier, trainer=self.session.corrections)
        except ConflictError as exc:
            message = f"{exc} (nothing was written; reload routes.toml, then correct again)"
        except (CorrectionError, TableError) as exc:
            message = str(exc)
        except OSError as exc:
            message = f"could not save routes.toml: {exc.strerror or exc}"
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
        else:
            # Delivered even if the modal was closed meanwhile: routes.toml is already written,
            # so the session must follow it.
            self.app.call_from_thread(self._corrected, saved, result)
            return
        self.app.call_from_thread(self._failed, message)

    def _corrected(self, saved_before: RoutingTable, result: CorrectionResult) -> None:
        from tui.router.classifier.corrections import session_table_after

        app = self.deck
        session = self.session
        if result.saved:
            table = session_table_after(session.table, saved_before, result.table)
            session.use_classifier(table, result.classifier)
            app.saved_table = result.table
            app.apply_table(table)  # the main screen re-classifies; other screens see the table
        self.result = result
        self.busy = False
        if not self.is_attached:
            return
        self.query_one(LoadingIndicator).remove_class("-busy")
        saved_to = str(result.table.path) if result.saved and result.table.path else None
        self.query_one("#correction-status", Static).update(
            Text("done: escape or enter closes", style="dim")
        )
        self.query_one("#correction-report", Static).update(
            render_report(result.report, saved_to=saved_to, dev_label=self.dev_label())
        )

    def _failed(self, message: str) -> None:
        self.busy = False
        if not self.is_attached:
            return
        self.query_one(LoadingIndicator).remove_class("-busy")
        tasks = self.query_one("#correction-tasks", OptionList)
        tasks.disabled = False
        tasks.focus()
        self.query_one("#correction-status", Static).update(
            Text(clean(message), style="bold red")
        )

    # -- closing ----------------------------------------------------------------------------------

    def action_close(self) -> None:
        if self.busy:
            self.notify("retraining: a moment…", timeout=2)
            return
        self.dismiss(self.result)

    def key_enter(self) -> None:
        if self.result is not None and not self.busy:
            self.dismiss(self.result)
