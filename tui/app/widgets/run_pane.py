"""One side of a run: header with model and badges, the streamed answer, live metrics."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from tui.app.widgets.answer_view import AnswerView
from tui.router.metrics import MetricsSnapshot
from tui.router.sanitize import clean
from tui.router.types import AttemptEnded, AttemptStarted, RunEvent, RunResult, TextDelta

# Streamed text is drawn at most this often (the main screen calls draw_pending for both panes
# in one batch on this tick, so each frame lays the screen out once). Drawing every chunk of a
# fast model (hundreds a second) would redraw the pane far more often than a screen can show.
DRAW_INTERVAL_S = 0.05


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value < 1_000 else f"{value / 1000:,.2f} s"


def render_metrics(m: MetricsSnapshot | None) -> Text:
    """One compact line: TTFT, elapsed, tokens in→out, speed, cost ("~" marks an estimate)."""
    from tui.router.pricing import format_usd

    out = Text(no_wrap=True, overflow="ellipsis")
    if m is None:
        out.append("TTFT –  elapsed –  tokens –  cost –", style="dim")
        return out
    est = "~" if m.tokens_estimated else ""
    out.append("TTFT ", style="dim")
    out.append(_ms(m.ttft_ms))
    out.append("  Δt ", style="dim")  # elapsed ("⏱" is in no common monospace font)
    out.append(_ms(m.elapsed_ms))
    out.append("  tok ", style="dim")
    out.append(f"{est}{m.input_tokens:,}→{est}{m.output_tokens:,}")
    out.append("  ")
    out.append(f"{m.tokens_per_s:,.0f}/s" if m.tokens_per_s else "–/s")
    out.append("  cost ", style="dim")
    out.append(format_usd(m.cost_usd, estimated=m.cost_estimated), style="bold")
    return out


class RunPane(Vertical):
    """Shows one side ("routed" or "baseline") of a side-by-side run as it streams.

    The engine's PairRun folds every event into a LiveMetrics; the pane only draws snapshots of
    it, so no figure is computed here. Text arrives already cleaned of control sequences.
    """

    DEFAULT_CSS = """
    RunPane { width: 1fr; height: 1fr; border: round $primary 40%; }
    RunPane.-error { border: round $error; }
    RunPane > .pane-header { height: auto; padding: 0 1; }
    RunPane > AnswerView { padding: 0 1; }
    RunPane > .pane-discarded-box { height: auto; max-height: 35%; padding: 0 1; display: none; }
    RunPane .pane-discarded { color: $text-muted; text-style: italic; border-left: thick $warning; padding-left: 1; }
    RunPane > .pane-error { color: $error; padding: 0 1; display: none; }
    RunPane > .pane-metrics { height: 1; padding: 0 1; background: $boost; }
    """

    def __init__(self, side: str, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.side = side
        self.title = title
        self._parts: list[str] = []
        self._unshown: list[str] = []  # streamed, not drawn yet (drawn by the draw timer)
        self._attempt: int | None = None
        self._model: str | None = None
        self._simulated: bool | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.title}: –", style="bold"), classes="pane-header")
        # A failed attempt's text, set aside above the answer that replaces it (scrolls alone).
        with VerticalScroll(classes="pane-discarded-box", can_focus=False):
            yield Static("", classes="pane-discarded", markup=False)
        yield AnswerView(classes="pane-answer")
        yield Static("", classes="pane-error", markup=False)
        yield Static(render_metrics(None), classes="pane-metrics")

    @property
    def answer(self) -> AnswerView:
        return self.query_one(".pane-answer", AnswerView)

    @property
    def text(self) -> str:
        """The answer streamed so far (the current attempt's text)."""
        return "".join(self._parts)

    @property
    def shown_source(self) -> str:
        """The Markdown the pane's answer shows."""
        return self.answer.source

    async def reset(self, model: str | None = None) -> None:
        self._stop_stream()
        self._parts.clear()
        self._attempt = None
        self._model, self._simulated = model, None
        self.remove_class("-error")
        for cls in (".pane-discarded", ".pane-error"):
            self.query_one(cls, Static).update("")
        self.query_one(".pane-discarded-box").display = False
        self.query_one(".pane-error").display = False
        self.answer.update("")
        self._draw_header(())
        self.query_one(".pane-metrics", Static).update(render_metrics(None))

    def _draw_header(self, badges: tuple[str, ...]) -> None:
        out = Text()
        out.append(f"{self.title}: ", style="bold")
        out.append(clean(self._model or "–"), style="bold")
        if self._simulated is True:
            out.append(" ")
            out.append(" SIMULATED ", style="bold black on yellow")
        elif self._simulated is False:
            out.append(" ")
            out.append(" real ", style="black on green")
        for badge in badges:
            if badge == "simulated":
                continue
            out.append(" ")
            style = "black on red" if badge in ("error", "cancelled") else "black on magenta"
            out.append(f" {badge.upper()} ", style=style)
        self.query_one(".pane-header", Static).update(out)

    def show_metrics(self, snap: MetricsSnapshot) -> None:
        # One line of fixed height: a repaint, not a layout of the whole screen.
        self.query_one(".pane-metrics", Static).update(render_metrics(snap), layout=False)

    def _stop_stream(self) -> None:
        """Stop drawing streamed text; text not drawn yet is dropped (callers redraw in full)."""
        self._unshown.clear()

    async def handle(
        self, run_event: RunEvent, snap: MetricsSnapshot | Callable[[], MetricsSnapshot]
    ) -> None:
        """Draw one event of this side; ``snap`` is the side's metrics with it folded in, or a
        function that returns them (called only when needed: a snapshot prices the usage).

        Text is gathered; the owner draws it with ``draw_pending`` every DRAW_INTERVAL_S, and
        the figures of a text chunk with its periodic ``show_metrics``."""
        event = run_event.event
        if isinstance(event, TextDelta):
            if self._attempt is not None and run_event.attempt != self._attempt:
                await self._set_aside_failed_text()
            if self._attempt != run_event.attempt:
                self._attempt = run_event.attempt
                s = snap() if callable(snap) else snap
                self._model, self._simulated = s.model, s.simulated
                self._draw_header(s.badges)
                self.show_metrics(s)
            self._parts.append(event.text)
            self._unshown.append(event.text)
            return
        s = snap() if callable(snap) else snap
        if isinstance(event, AttemptStarted):
            if self._model is None or event.role != "primary" or self._attempt is None:
                self._model, self._simulated = event.model, event.simulated
        elif isinstance(event, AttemptEnded) and event.outcome == "failed" and event.error:
            self._show_error(f"{event.model} failed: {event.error.message}")
            if self._parts:
                await self._set_aside_failed_text()
        self._draw_header(s.badges)
        self.show_metrics(s)

    def draw_pending(self) -> None:
        """Append the text streamed since the last draw to the answer."""
        if self._unshown:
            text = "".join(self._unshown)
            self._unshown.clear()
            self.answer.append(text)

    async def _set_aside_failed_text(self) -> None:
        """A failed attempt's text stays visible, apart from the answer that replaces it."""
        discarded = self.text
        self._stop_stream()
        self._parts.clear()
        self._attempt = None
        if discarded:
            note = self.query_one(".pane-discarded", Static)
            note.update(Text("streamed before the failure (not the answer):\n" + discarded))
            self.query_one(".pane-discarded-box").display = True
        self.answer.update("")

    def _show_error(self, message: str) -> None:
        w = self.query_one(".pane-error", Static)
        w.update(Text(clean(message)))
        w.display = True

    async def finish(self, result: RunResult | None, snap: MetricsSnapshot | None) -> None:
        """The side ended: the whole answer, the final figures and any error. An answer that
        streamed whole only gets what is left to draw; otherwise the answer is set in full."""
        if result is not None and self.text == result.text:
            self.draw_pending()
            self.answer.flush()
        else:
            self._stop_stream()
            if result is not None:
                self.answer.update(clean(result.text))
        if result is not None:
            self._model, self._simulated = result.model, result.simulated
            if result.error:
                self._show_error("error: " + result.error)
                self.add_class("-error")
        if snap is not None:
            self._draw_header(snap.badges)
            self.show_metrics(snap)
