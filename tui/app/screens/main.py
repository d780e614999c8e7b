"""The main screen: type a prompt, see its route as you type, run it side by side."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Header, Static, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from tui.app import HEADER_ICON
from tui.app.messages import ClassifierFailed, ClassifierReady, SaveStateChanged, TableChanged
from tui.app.screens.base import DeckScreen
from tui.app.widgets.comparison import ComparisonBar
from tui.app.widgets.decision_bar import DecisionBar
from tui.app.widgets.footer import KeyFooter
from tui.app.widgets.intro import render_intro
from tui.app.widgets.judge_bar import JudgeBar
from tui.app.widgets.prompt_editor import PromptEditor
from tui.app.widgets.run_pane import DRAW_INTERVAL_S, RunPane
from tui.router.sanitize import clean
from tui.router.types import AttemptEnded, Decision, PairResult


class MainScreen(DeckScreen):
    BINDINGS = [
        Binding("escape", "cancel_run", "Cancel", id="cancel", tooltip="Cancel the run in flight"),
        # The editor binds the run keys itself; this one runs it when focus is elsewhere
        # (after clicking into a pane, say).
        Binding(
            "ctrl+j,alt+enter",
            "run",
            "Run",
            id="run_anywhere",
            tooltip="Run the prompt, wherever the focus is (after a click into a pane, say)",
            show=False,
        ),
        Binding(
            "ctrl+t",
            "cycle_priority",
            "Priority",
            id="priority",
            tooltip="Cycle the priority: auto (from cues in the prompt), then each priority",
        ),
        Binding(
            "f4",
            "pin_model",
            "Pin model",
            id="pin_model",
            tooltip="Run the next prompt on a model you choose instead of the routed one",
        ),
        Binding(
            "f6",
            "why",
            "Why",
            id="why",
            tooltip="The routing decision in full: every line of it, every label's probability",
            priority=True,  # over the editor's own f6 (select the line)
        ),
        Binding(
            "ctrl+l",
            "ask_llm",
            "Ask LLM",
            id="ask_llm",
            tooltip="Ask the LLM classifier ([classifier] llm_model) for this prompt's label now "
            "(once: the run uses its answer); while typing the local label shows, for free",
            show=False,
            priority=True,
        ),
        Binding(
            "f8",
            "correct_label",
            "Wrong label",
            id="correct_label",
            tooltip="The task type is wrong: pick the right one; the prompt becomes a training "
            "example and the classifier retrains",
        ),
        Binding(
            "f9",
            "verdict",
            "Verdict",
            id="verdict",
            tooltip="After a run: was the routed or the baseline answer better?",
        ),
        Binding(
            "f7",
            "judge",
            "Judge",
            id="judge",
            tooltip="Ask the LLM judge ([judge] in routes.toml) whether the routed answer held "
            "up against the baseline's: two calls, both answer orders; its cost is kept apart",
            priority=True,  # over the editor's own f7 (select all)
            show=False,  # the line under the panes names it when it is the way to judge
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.priority_mode = "auto"  # "auto" or a priority name
        self.pinned_model: str | None = None
        self.last_decision: Decision | None = None
        self.last_pair: PairResult | None = None
        self.last_run_id: int | None = None
        self.last_judgement = None  # the LLM judge's Judgement of last_pair, once it has one
        self._run_started = False
        # Held by a run while it draws in the panes. A new run cancels the one in flight
        # (exclusive worker) and waits here until that one has drawn its end, so the cancelled
        # run's last update never lands in the new run's panes.
        self._panes_lock = asyncio.Lock()
        self._classifier_problem: str | None = None
        # The decision the LLM classifier made for a prompt (ctrl+l or a run): a run of the same
        # prompt and priority uses it instead of paying for the call again.
        self._asked: Decision | None = None


    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon=HEADER_ICON)
        yield PromptEditor(id="prompt")
        yield DecisionBar(id="decision")
        # Before the first run: how to run, and which models are simulated (the panes are
        # empty until then). The first run swaps in the panes for good.
        with VerticalScroll(id="intro", can_focus=False):
            yield Static(render_intro(self.session), id="intro-text")
        with Horizontal(id="panes"):
            yield RunPane("routed", "routed", id="routed")
            yield RunPane("baseline", "baseline", id="baseline")
        yield JudgeBar(id="judge")
        yield ComparisonBar(id="comparison")
        yield KeyFooter()

    def on_mount(self) -> None:
        # The classifier's worker may have ended before this screen was composed.
        if self._classifier_problem is not None:
            self.classifier_failed(self._classifier_problem)
        elif self.session.classifier_ready:
            self.classifier_loaded()
        else:
            self.query_one(DecisionBar).show_message("loading the classifier…")
        self.query_one(ComparisonBar).show(None, None)
        self.query_one(PromptEditor).focus()
        self.refresh_sub_title()
        self.call_after_refresh(self.fill_intro)

    @work(thread=True, group="intro", exit_on_error=False)
    def fill_intro(self) -> None:
        """Which models are simulated and the variable that makes each real: asking the engine
        imports the provider clients (about 60 ms), so off the event loop, after the first
        frame."""
        from tui.app.widgets.intro import render_providers

        intro = render_intro(self.session, render_providers(self.session))
        self.app.call_from_thread(self.query_one("#intro-text", Static).update, intro)

    def refresh_sub_title(self) -> None:
        parts = [self.session.table_label]
        if self.deck.dirty:
            parts.append("routes edited, unsaved")
        if self.pinned_model:
            parts.append(f"pinned: {self.pinned_model} (f4 unpins)")
        self.sub_title = clean(" · ".join(parts))  # a path and a model id: outside text

    # -- live classification --------------------------------------------------------------

    @on(TextArea.Changed, "#prompt")
    def prompt_changed(self, event: TextArea.Changed) -> None:
        self.reclassify()

    def reclassify(self) -> None:
        text = self.query_one(PromptEditor).text
        if not self.session.classifier_ready:
            return
        if not text.strip():
            self.last_decision = None
            self.query_one(DecisionBar).show_message("type a prompt to see where it goes")
            return
        asked = self._asked_for(text, self.current_priority())
        if asked is not None:  # the LLM's label for this very text (ctrl+l, then a priority change)
            self.show_decision(asked)
            return
        if self.session.decides_quickly(text, ask_llm=False):
            # About a millisecond: deciding here shows it in the next frame, where a thread
            # worker's start, hand-back and state messages cost more than the decision. Should
            # it raise, the worker decides again and reports the error as always.
            self.workers.cancel_group(self, "classify")
            try:
                decision = self.session.decide(text, self.current_priority(), ask_llm=False)
            except Exception:  # noqa: BLE001 - reported by the worker below
                pass
            else:
                self.show_decision(decision)
                return
        self.classify_text(text, self.current_priority())

    def current_priority(self) -> str | None:
        return None if self.priority_mode == "auto" else self.priority_mode

    @work(thread=True, exclusive=True, group="classify", exit_on_error=False)
    def classify_text(self, text: str, priority: str | None) -> None:
        # As a person types, the local label only: a paid model is never called per keystroke.
        decision = self.session.decide(text, priority, ask_llm=False)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_if_current, decision)

    def _show_if_current(self, decision: Decision) -> None:
        """A worker's decision, unless the prompt changed meanwhile (a newer one is shown)."""
        if decision.prompt == self.query_one(PromptEditor).text:
            self.show_decision(decision)

    def show_decision(self, decision: Decision) -> None:
        self.last_decision = decision
        self.query_one(DecisionBar).show_decision(
            decision, priority_mode=self.priority_mode, pinned=self.pinned_model,
            llm_pending=self._would_ask_llm(decision),
        )

    def _would_ask_llm(self, decision: Decision) -> bool:
        """Whether running this (local, typed) decision's prompt would ask the LLM classifier:
        kind "llm" always, "cascade" when the local label is unsure; never by rule or without
        a way to call the model."""
        c = decision.classification
        session = self.session
        if c.llm is not None or c.classifier == "rule" or session.llm_model is None:
            return False
        if session.llm_unavailable is not None:
            return False
        return session.table.classifier.kind == "llm" or decision.uncertain

    def _asked_for(self, text: str, priority: str | None) -> Decision | None:
        """The LLM classifier's decision for ``text`` at ``priority``, if it was asked."""
        asked = self._asked
        if asked is None or asked.prompt != text:
            return None
        if priority is not None and asked.priority != priority:
            return None
        if priority is None and asked.priority_reason == "given":
            return None
        return asked

    def action_ask_llm(self) -> None:
        text = self.query_one(PromptEditor).text
        model = self.session.llm_model
        if model is None:
            self.notify(Text('the classifier is local: set [classifier] kind = "llm" or '
                             '"cascade" and llm_model in routes.toml to ask a model'), timeout=4)
            return
        if not text.strip():
            self.notify("type a prompt first", severity="warning", timeout=2)
            return
        self.query_one(DecisionBar).show_message(f"asking {model}…")
        self.ask_llm(text, self.current_priority())

    @work(thread=True, exclusive=True, group="classify", exit_on_error=False)
    def ask_llm(self, text: str, priority: str | None) -> None:
        decision = self.session.decide(text, priority)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._llm_answered, decision)

    def _llm_answered(self, decision: Decision) -> None:
        if decision.classification.llm is not None:
            self._asked = decision
        self._show_if_current(decision)

    def classifier_loaded(self) -> None:
        if not self.query(DecisionBar):  # not composed yet: on_mount shows the state
            return
        self.query_one(DecisionBar).show_message("type a prompt to see where it goes")
        self.reclassify()

    # -- what the app tells this screen ----------------------------------------------------

    def on_classifier_ready(self, _: ClassifierReady) -> None:
        self.classifier_loaded()

    def on_classifier_failed(self, message: ClassifierFailed) -> None:
        self.classifier_failed(message.reason)

    def on_table_changed(self, _: TableChanged) -> None:
        self.refresh_sub_title()
        self.reclassify()

    def on_save_state_changed(self, _: SaveStateChanged) -> None:
        self.refresh_sub_title()

    def classifier_failed(self, message: str) -> None:
        self._classifier_problem = message
        if not self.query(DecisionBar):  # not composed yet: on_mount shows it
            return
        self.query_one(DecisionBar).show_message(
            f"classifier unavailable ({message}); prompts go to the uncertain route", style="yellow"
        )

    # -- actions --------------------------------------------------------------------------

    def action_cycle_priority(self) -> None:
        modes = ["auto", *self.session.table.priority_names]
        i = modes.index(self.priority_mode) if self.priority_mode in modes else 0
        self.priority_mode = modes[(i + 1) % len(modes)]
        self.notify(Text(f"priority: {self.priority_mode}"), timeout=2)
        self.reclassify()

    def action_pin_model(self) -> None:
        from tui.app.screens.model_picker import ModelPicker

        def chosen(model: str | None) -> None:
            if model is None:  # cancelled: the pin (or no pin) stays
                return
            self.pinned_model = model or None
            self.refresh_sub_title()
            if self.last_decision is not None:
                self.show_decision(self.last_decision)
            note = f"next runs use {clean(model)} (f4 unpins)" if model else "pin removed: routing"
            self.notify(Text(note), timeout=3)

        self.app.push_screen(ModelPicker(self.session, current=self.pinned_model, allow_none=True), chosen)

    def action_correct_label(self) -> None:
        from tui.app.screens.correction import CorrectionScreen

        text = self.query_one(PromptEditor).text
        if not text.strip():
            self.notify("type a prompt first", severity="warning", timeout=2)
            return
        decision = self.last_decision
        self.app.push_screen(
            CorrectionScreen(text, decision if decision and decision.prompt == text else None)
        )

    def action_why(self) -> None:
        from tui.app.screens.why import WhyScreen

        text = self.query_one(PromptEditor).text
        decision = self.last_decision
        if decision is None or decision.prompt != text:
            self.notify("type a prompt first: the route shows as you type", timeout=3)
            return
        self.app.push_screen(
            WhyScreen(decision, priority_mode=self.priority_mode, pinned=self.pinned_model)
        )

    @on(DecisionBar.Clicked)
    def _decision_clicked(self) -> None:
        if self.last_decision is not None:
            self.action_why()

    def action_verdict(self) -> None:
        from tui.app.screens.verdict import VerdictScreen

        if self.last_pair is None or self.last_run_id is None or self.session.runlog is None:
            self.notify("run a prompt first: a verdict is on a finished run", timeout=3)
            return
        run_id = self.last_run_id

        def chosen(verdict: str | None) -> None:
            if verdict:
                self.save_verdict(run_id, verdict)

        self.app.push_screen(VerdictScreen(self.last_pair), chosen)

    @work(thread=True, group="verdict", exit_on_error=False)
    def save_verdict(self, run_id: int, verdict: str) -> None:
        self.session.runlog.set_verdict(run_id, verdict)
        self.app.call_from_thread(self.notify, Text(f"verdict saved: {verdict}"), timeout=2)

    def action_run(self) -> None:
        self.query_one(PromptEditor).action_submit()

    def action_cancel_run(self) -> None:
        if self.workers and any(w.group == "run" and w.is_running for w in self.workers):
            self.workers.cancel_group(self, "run")
            self.notify("run cancelled", timeout=2)
        elif self.workers and any(w.group == "judge" and w.is_running for w in self.workers):
            self.workers.cancel_group(self, "judge")
            self.query_one(JudgeBar).show_cancelled()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """A run or a classification that raised (exit_on_error=False keeps the app up) says why
        instead of doing nothing."""
        if event.state == WorkerState.ERROR and event.worker.group in ("run", "classify"):
            error = event.worker.error
            what = "run" if event.worker.group == "run" else "classification"
            if what == "run":
                self.query_one(ComparisonBar).update(Text(" the run failed", style="bold red"))
            self.notify(
                Text(f"{what} failed: {type(error).__name__}: {error}"), severity="error", timeout=8
            )

    @on(PromptEditor.Submitted)
    def submitted(self, event: PromptEditor.Submitted) -> None:
        if not event.text.strip():
            self.notify("type a prompt first", severity="warning", timeout=2)
            return
        self.workers.cancel_group(self, "judge")  # a judge of the last run: that run is over
        self.run_prompt(event.text, self.current_priority(), self.pinned_model)

    # -- running --------------------------------------------------------------------------

    @work(exclusive=True, group="run", exit_on_error=False)
    async def run_prompt(self, text: str, priority: str | None, pinned: str | None) -> None:
        async with self._panes_lock:
            await self._run_prompt(text, priority, pinned)

    def _show_panes(self) -> None:
        """The panes in place of the first-run intro (for good)."""
        self.query_one("#intro").display = False
        self.query_one("#panes").display = True

    async def _run_prompt(self, text: str, priority: str | None, pinned: str | None) -> None:
        routed, baseline = self.query_one("#routed", RunPane), self.query_one("#baseline", RunPane)
        panes = {"routed": routed, "baseline": baseline}
        comparison = self.query_one(ComparisonBar)
        decision = self._asked_for(text, priority)
        if decision is None:  # the LLM classifier, if the table has one, is asked here, once
            typed = self.last_decision
            if typed is not None and typed.prompt == text and self._would_ask_llm(typed):
                self.query_one(DecisionBar).show_message(f"asking {self.session.llm_model}…")
            decision = await asyncio.to_thread(self.session.decide, text, priority)
        self._asked = None  # this run pays for the call (if any); another run asks afresh
        self.show_decision(decision)
        run = self.session.start(decision, model=pinned)
        self._show_panes()
        await routed.reset(pinned or decision.cell.primary, pinned=bool(pinned))
        await baseline.reset(self.session.table.baseline.model)
        comparison.show_running(
            pinned or decision.cell.primary, self.session.table.baseline.model, self.session.totals
        )
        judge_settings = self.session.table.judge
        self.query_one(JudgeBar).show_waiting(self.session.judge_model(), judge_settings.auto,
                                              self._judge_key())

        def tick() -> None:
            # Both panes' new text and figures in one batch: one layout of the screen per
            # frame, not one per pane (bench_tui measures the frames).
            with self.app.batch_update():
                for side, pane in panes.items():
                    pane.draw_pending()
                    pane.show_metrics(run.metrics[side].snapshot())

        ticker = self.set_interval(DRAW_INTERVAL_S, tick)
        finished: set[str] = set()
        gc_policy = self.deck.streaming_gc
        gc_policy.hold()
        try:
            async with run:
                async for run_event in run:
                    side = run_event.side
                    await panes[side].handle(run_event, run.metrics[side].snapshot)
                    event = run_event.event
                    if isinstance(event, AttemptEnded) and event.final:
                        # This side is done: its full answer and final figures now, not when
                        # the slower side ends too.
                        metrics = run.metrics[side]
                        await panes[side].finish(metrics.result(), metrics.snapshot())
                        finished.add(side)
        except asyncio.CancelledError:
            # The figures shown are the last run's no more: say so rather than leave them.
            comparison.show_cancelled(self.session.totals)
            raise
        finally:
            ticker.stop()
            gc_policy.release()
            self.app.set_timer(1.0, gc_policy.collect_if_idle)
            pair = run.result
            if pair is not None:
                for side, result in (("routed", pair.routed), ("baseline", pair.baseline)):
                    if side not in finished:
                        await panes[side].finish(result, run.metrics[side].snapshot())
        self.last_pair = pair
        self.last_run_id = await asyncio.to_thread(self._record, pair, pinned)
        comparison.show(pair, self.session.totals, pinned=pinned)
        self.deck.warn_about_run_log()
        self.after_run_judge(pair, self.last_run_id)

    def _record(self, pair: PairResult, pinned: str | None) -> int | None:
        """Log the run; a run on a pinned model is not routing, so it stays out of the
        session's routing totals (the run log keeps it, with the model it ran on)."""
        totals = self.session.totals
        run_id = self.session.record(pair)
        if pinned:
            self.session.totals = totals
        return run_id

    # -- the LLM judge --------------------------------------------------------------------

    def _judge_key(self) -> str:
        """The key that asks the judge (f7 unless remapped)."""
        for binding in self.active_bindings.values():
            if binding.binding.action == "judge":
                return binding.binding.key_display or binding.binding.key
        return "f7"

    def after_run_judge(self, pair: PairResult | None, run_id: int | None) -> None:
        """After a run: judge it at once when [judge] auto is on, else say how to; or say why
        the judge cannot run (no key: a simulated verdict would mean nothing)."""
        bar = self.query_one(JudgeBar)
        if pair is None:
            return
        why = self.session.why_not_judged(pair)
        if why is not None:
            bar.show_unavailable(why)
        elif self.session.table.judge.auto:
            self.judge_run(pair, run_id)
        else:
            bar.show_idle(self.session.judge_model(), self._judge_key())

    def action_judge(self) -> None:
        pair = self.last_pair
        if pair is None:
            self.notify("run a prompt first: the judge compares a finished run's answers",
                        timeout=3)
            return
        why = self.session.why_not_judged(pair)
        if why is not None:
            self.query_one(JudgeBar).show_unavailable(why)
            self.notify(Text(why), severity="warning", timeout=5)
            return
        self.judge_run(pair, self.last_run_id)

    @work(exclusive=True, group="judge", exit_on_error=False)
    async def judge_run(self, pair: PairResult, run_id: int | None) -> None:
        bar = self.query_one(JudgeBar)
        bar.show_running(self.session.judge_model())
        try:
            judgement = await self.session.judge(pair)
            await asyncio.to_thread(self.session.record_judgement, run_id, judgement)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the run stands; the judge says what broke
            bar.show_unavailable(f"the judge failed: {type(exc).__name__}: {exc}")
            return
        if self.last_pair is pair:
            self.last_judgement = judgement
            bar.show_judgement(judgement)
