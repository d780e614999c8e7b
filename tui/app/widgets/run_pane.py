"""One side of a run: header with model and badges, the streamed answer, live metrics."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from tui.app.widgets.answer_view import AnswerView
from tui.router.run.metrics import MetricsSnapshot
from tui.router.sanitize import clean
from tui.router.types import AttemptEnded, AttemptStarted, RunEvent, RunResult, TextDelta
from tui.router.units import dollars, duration

# Streamed text is drawn at most this often (the main screen calls draw_pending for both panes
# in one batch on this tick, so each frame lays the screen out once). Drawing every chunk of a
# fast model (hundreds a second) would redraw the pane far more often than a screen can show.
DRAW_INTERVAL_S = 0.05


# A pane's figures, most important last: the first to go when the line is too narrow. Cost is
# the point of the app and is never dropped.
DROP_FIRST = ("speed", "ttft", "elapsed", "tokens")
ONE_LINE = (("ttft", "elapsed", "tokens", "speed", "cost"),)
TWO_LINES = (("ttft", "elapsed", "speed"), ("tokens", "cost"))
# Panes narrower than this (content cells) show their figures on two lines.
ONE_LINE_MIN_WIDTH = 64


def metrics_height(width: int | None) -> int:
    return 1 if width is None or width >= ONE_LINE_MIN_WIDTH else 2


def _metric_parts(m: MetricsSnapshot | None) -> dict[str, Text]:
    def part(label: str, value: str, style: str = "") -> Text:
        out = Text(f"{label} " if label else "", style="dim")
        out.append(value, style=style)
        return out

    if m is None:
        dash = "–"
        return {
            "ttft": part("TTFT", dash), "elapsed": part("Δt", dash), "tokens": part("tok", dash),
            "speed": part("", "–/s"), "cost": part("cost", dash),
        }
    est = "~" if m.tokens_estimated else ""
    return {
        "ttft": part("TTFT", duration(m.ttft_ms)),
        "elapsed": part("Δt", duration(m.elapsed_ms)),  # "⏱" is in no common monospace font
        "tokens": part("tok", f"{est}{m.input_tokens:,}→{est}{m.output_tokens:,}"),
        "speed": part("", f"{m.tokens_per_s:,.0f} tok/s" if m.tokens_per_s else "–/s"),
        "cost": part("cost", dollars(m.cost_usd, estimated=m.cost_estimated), "bold"),
    }


def render_metrics(m: MetricsSnapshot | None, width: int | None = None) -> Text:
    """TTFT, elapsed, tokens in→out, speed and cost ("~" marks an estimate), on one line, or on
    two when ``width`` (the cells there are) is under ONE_LINE_MIN_WIDTH; figures that still do
    not fit are left out, least important first (DROP_FIRST), cost never."""
    parts = _metric_parts(m)
    layout = ONE_LINE if metrics_height(width) == 1 else TWO_LINES
    dropped: set[str] = set()

    def lines() -> list[Text]:
        return [
            Text("  ").join(parts[name] for name in line if name not in dropped)
            for line in layout
        ]

    for name in DROP_FIRST:
        if width is None or all(line.cell_len <= width for line in lines()):
            break
        dropped.add(name)
    return Text("\n", no_wrap=True, overflow="ellipsis").join(lines())


class PaneMetrics(Static):
    """A pane's figures, laid out for the width the pane has (see :func:`render_metrics`)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(render_metrics(None), **kwargs)
        self.snapshot: MetricsSnapshot | None = None

    def show(self, snap: MetricsSnapshot | None, *, layout: bool = False) -> None:
        self.snapshot = snap
        width = self.content_size.width or None
        self.update(render_metrics(snap, width), layout=layout)

    def on_resize(self) -> None:
        height = metrics_height(self.content_size.width or None)
        if self.styles.height is None or self.styles.height.value != height:
            self.styles.height = height
        self.show(self.snapshot, layout=True)


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
    RunPane > .pane-error.-note { color: $text-muted; text-style: italic; }
    RunPane > .pane-metrics {
        height: 1; padding: 0 1; background: $boost; text-wrap: nowrap; text-overflow: ellipsis;
    }
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
        self.pinned = False  # this run's model was pinned (f4), not routed

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.title}: –", style="bold"), classes="pane-header")
        # A failed attempt's text, set aside above the answer that replaces it (scrolls alone).
        with VerticalScroll(classes="pane-discarded-box", can_focus=False):
            yield Static("", classes="pane-discarded", markup=False)
        yield AnswerView(classes="pane-answer")
        yield Static("", classes="pane-error", markup=False)
        yield PaneMetrics(classes="pane-metrics")

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

    async def reset(self, model: str | None = None, *, pinned: bool = False) -> None:
        """Empty the pane for a new run on ``model`` (``pinned``: chosen with f4, not routed)."""
        self.pinned = pinned
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
        self.query_one(PaneMetrics).show(None)

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
        if self.pinned:
            out.append(" ")
            out.append(" PINNED ", style="bold black on cyan")
        for badge in badges:
            if badge == "simulated":
                continue
            out.append(" ")
            style = {"error": "black on red", "cancelled": "white on grey37"}.get(
                badge, "black on magenta"
            )
            out.append(f" {badge.upper()} ", style=style)
        self.query_one(".pane-header", Static).update(out)

    def show_metrics(self, snap: MetricsSnapshot) -> None:
        # Lines of a fixed height (set from the width): a repaint, not a layout of the screen.
        self.query_one(PaneMetrics).show(snap)

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

    def _show_error(self, message: str, *, note: bool = False) -> None:
        """The error line (``note``: a muted line, for what is not an error)."""
        w = self.query_one(".pane-error", Static)
        w.update(Text(clean(message)))
        w.set_class(note, "-note")
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
            if result.status == "cancelled":  # the person stopped it: not an error
                self._show_error("cancelled", note=True)
            elif result.error:
                self._show_error("error: " + result.error)
                self.add_class("-error")
        if snap is not None:
            self._draw_header(snap.badges)
            self.show_metrics(snap)
