"""One side of a run: header with model and badges, the streamed answer, live metrics."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static

from tui.router.metrics import LiveMetrics
from tui.router.sanitize import StreamCleaner, clean
from tui.router.types import (
    AttemptEnded,
    AttemptStarted,
    RunEvent,
    RunResult,
    StreamError,
    TextDelta,
)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


def _usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def render_metrics(m: LiveMetrics) -> Text:
    est = "~" if m.tokens_estimated else ""
    out = Text()
    out.append("TTFT ", style="dim")
    out.append(_ms(m.ttft_ms))
    out.append("  elapsed ", style="dim")
    out.append(_ms(m.elapsed_ms))
    out.append("  tokens ", style="dim")
    out.append(f"{est}{m.input_tokens:,} in / {est}{m.output_tokens:,} out")
    out.append("  ", style="dim")
    out.append(f"{m.tokens_per_s:,.0f} tok/s" if m.tokens_per_s else "– tok/s")
    out.append("  cost ", style="dim")
    out.append(("~" if m.cost_estimated and m.cost_usd is not None else "") + _usd(m.cost_usd))
    return out


class RunPane(Vertical):
    """Shows one side ("routed" or "baseline") of a side-by-side run as it streams."""

    DEFAULT_CSS = """
    RunPane { width: 1fr; height: 1fr; border: round $primary 40%; }
    RunPane.-error { border: round $error; }
    RunPane > .pane-header { height: auto; padding: 0 1; }
    RunPane > VerticalScroll { height: 1fr; padding: 0 1; }
    RunPane .pane-discarded { color: $text-muted; text-style: italic; border-left: thick $warning; padding-left: 1; display: none; }
    RunPane .pane-error { color: $error; display: none; }
    RunPane > .pane-metrics { height: 1; padding: 0 1; background: $boost; }
    """

    def __init__(self, side: str, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.side = side
        self.title = title
        self.metrics: LiveMetrics | None = None
        self._stream = None
        self._cleaner = StreamCleaner()
        self._text_parts: list[str] = []
        self._attempt: int | None = None
        self._badges: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.title}: –", style="bold"), classes="pane-header")
        with VerticalScroll():
            yield Static("", classes="pane-discarded", markup=False)
            yield Markdown("", classes="pane-answer")
            yield Static("", classes="pane-error", markup=False)
        yield Static("", classes="pane-metrics")

    # -- state --------------------------------------------------------------------------

    @property
    def answer(self) -> Markdown:
        return self.query_one(".pane-answer", Markdown)

    @property
    def text(self) -> str:
        return "".join(self._text_parts)

    async def reset(self, model: str | None = None) -> None:
        await self._stop_stream()
        self.metrics = LiveMetrics(self.side)
        self._cleaner = StreamCleaner()
        self._text_parts.clear()
        self._attempt = None
        self._badges = []
        self.remove_class("-error")
        for cls in (".pane-discarded", ".pane-error"):
            w = self.query_one(cls, Static)
            w.update("")
            w.display = False
        await self.answer.update("")
        self._header(model, simulated=None)
        self._refresh_metrics()

    def _header(self, model: str | None, simulated: bool | None) -> None:
        out = Text()
        out.append(f"{self.title}: ", style="bold")
        out.append(clean(model or "–"), style="bold")
        if simulated is True:
            out.append("  SIMULATED ", style="black on yellow")
        elif simulated is False:
            out.append("  real ", style="black on green")
        for badge in self._badges:
            out.append("  ")
            out.append(f" {badge} ", style="black on magenta")
        self.query_one(".pane-header", Static).update(out)

    def _refresh_metrics(self) -> None:
        if self.metrics is not None:
            self.query_one(".pane-metrics", Static).update(render_metrics(self.metrics))

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()

    # -- events -------------------------------------------------------------------------

    async def handle(self, run_event: RunEvent) -> None:
        if self.metrics is None:
            self.metrics = LiveMetrics(self.side)
        self.metrics.apply(run_event)
        event = run_event.event
        if isinstance(event, AttemptStarted):
            if event.role in ("fallback", "hedge"):
                self._badges.append("HEDGE" if event.role == "hedge" else "FALLBACK")
            self._header(event.model, event.simulated)
        elif isinstance(event, TextDelta):
            if self._attempt is not None and run_event.attempt != self._attempt:
                await self._switch_attempt()
            self._attempt = run_event.attempt
            chunk = self._cleaner.feed(event.text)
            if chunk:
                self._text_parts.append(chunk)
                if self._stream is None:
                    self._stream = Markdown.get_stream(self.answer)
                await self._stream.write(chunk)
        elif isinstance(event, AttemptEnded) and event.outcome == "failed" and event.error:
            self._show_error(event.error, final=False)
        self._refresh_metrics()

    async def _switch_attempt(self) -> None:
        """A new attempt streams: keep the failed attempt's text visibly apart."""
        discarded = self.text
        await self._stop_stream()
        self._text_parts.clear()
        self._cleaner = StreamCleaner()
        if discarded:
            note = self.query_one(".pane-discarded", Static)
            note.update(Text("from the failed attempt, before it broke:\n" + discarded))
            note.display = True
        await self.answer.update("")

    def _show_error(self, error: StreamError, *, final: bool) -> None:
        w = self.query_one(".pane-error", Static)
        prefix = "error" if final else "attempt failed"
        w.update(Text(f"{prefix}: {clean(error.message)}"))
        w.display = True
        if final:
            self.add_class("-error")

    async def finish(self, result: RunResult | None, *, tick_only: bool = False) -> None:
        """The side ended: one full update of the answer, final metrics and any error."""
        await self._stop_stream()
        if result is not None:
            if self.metrics is not None:
                self.metrics.finish(result)
            if result.text:
                await self.answer.update(clean(result.text))
            if result.error:
                w = self.query_one(".pane-error", Static)
                w.update(Text("error: " + clean(result.error)))
                w.display = True
                self.add_class("-error")
        self._refresh_metrics()

    def tick(self) -> None:
        """Refresh the elapsed time while a run is in flight."""
        self._refresh_metrics()
