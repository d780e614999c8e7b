"""One side of a run: header with model and badges, the streamed answer, live metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cache

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static

from tui.router.metrics import MetricsSnapshot
from tui.router.sanitize import clean
from tui.router.types import AttemptEnded, AttemptStarted, RunEvent, RunResult, TextDelta

# Streamed text is drawn at most this often (the owner calls draw_pending on this tick; the
# main screen draws both panes in one batch, so each frame lays the screen out once). Each draw re-renders the pane, which takes longer
# than a fast model (hundreds of chunks a second) takes to send the next chunk; drawing every
# chunk froze the UI for hundreds of milliseconds (tests/bench/bench_tui.py measures it).
DRAW_INTERVAL_S = 0.1
# A streamed answer is drawn into a chain of Markdown widgets, a new one started at a paragraph
# break (outside a code fence) once the current one holds this many characters: Markdown re-lays
# out every block of its document on each append, so one growing widget made each frame slower
# as the answer grew (about 70 ms per frame by 3,500 tokens). The finished answer is drawn once,
# whole, into the first widget.
SEGMENT_CHARS = 1500
# While an answer streams and its pane is at rest at the top, finished segments that begin
# this many pane heights down are folded into one blank spacer of the same height (display:
# none takes them out of layout). Textual lays out every widget of the screen on each frame, so
# a long answer's paragraphs made each frame slower as the answer grew. The person sees no
# difference: the folded text is below the fold, and it is put back the moment the pane
# scrolls or resizes (or the next run starts).
FOLD_BELOW_SCREENS = 2


@cache
def _parser():
    """One Markdown parser for every answer widget. Textual's Markdown builds a new parser for
    each append unless given a factory, and building one costs about a millisecond: at ten
    appends a second per pane that was a steady tax on every frame."""
    from markdown_it import MarkdownIt

    return MarkdownIt("gfm-like")


def _answer_widget(classes: str) -> Markdown:
    return Markdown("", classes=classes, open_links=False, parser_factory=_parser)


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
    out.append("  ⏱ ", style="dim")
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
    RunPane > VerticalScroll { height: 1fr; padding: 0 1; }
    RunPane .pane-discarded { color: $text-muted; text-style: italic; border-left: thick $warning; padding-left: 1; display: none; }
    RunPane .pane-error { color: $error; display: none; }
    RunPane > .pane-metrics { height: 1; padding: 0 1; background: $boost; }
    RunPane .pane-fold { display: none; }
    """

    def __init__(self, side: str, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.side = side
        self.title = title
        self._draw_lock = asyncio.Lock()
        self._parts: list[str] = []
        self._segments: list[Markdown] = []  # streaming continuations after self.answer
        self._folded: list[Markdown] = []  # segments folded into the spacer (display: none)
        self._fold_allowed = True  # until the person scrolls this pane during the run
        self._segment_chars = 0
        self._fences = 0  # code fences seen in the streamed text (odd: inside a code block)
        self._unshown: list[str] = []  # streamed, not drawn yet (drawn by the draw timer)
        self._attempt: int | None = None
        self._model: str | None = None
        self._simulated: bool | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.title}: –", style="bold"), classes="pane-header")
        with VerticalScroll():
            yield Static("", classes="pane-discarded", markup=False)
            yield _answer_widget("pane-answer")
            yield Static("", classes="pane-fold")
            yield Static("", classes="pane-error", markup=False)
        yield Static(render_metrics(None), classes="pane-metrics")

    @property
    def answer(self) -> Markdown:
        return self.query_one(".pane-answer", Markdown)

    @property
    def text(self) -> str:
        """The answer streamed so far (the current attempt's text)."""
        return "".join(self._parts)

    @property
    def shown_source(self) -> str:
        """The Markdown the pane's answer widgets hold: the first widget and its continuation
        segments (a long answer streams into a chain of them)."""
        return "".join(w.source for w in (self.answer, *self._segments))

    def on_mount(self) -> None:
        self.watch(self.query_one(VerticalScroll), "scroll_y", self._scrolled, init=False)

    def on_resize(self) -> None:
        self._unfold()  # heights change with the width: the spacer would be wrong

    def _scrolled(self, scroll_y: float) -> None:
        if scroll_y and self._folded:
            self._unfold()
            self._fold_allowed = False  # the person is reading on: keep everything laid out

    async def _fold_far_segments(self) -> None:
        """Fold finished segments far below the top of a pane at rest (FOLD_BELOW_SCREENS)."""
        scroll = self.query_one(VerticalScroll)
        fold_at = scroll.size.height * FOLD_BELOW_SCREENS
        if not self._fold_allowed or scroll.scroll_y or fold_at <= 0:
            return
        # The live segment and the one just finished are left alone (its last lines may not
        # be laid out yet, so its height is not final).
        new = [s for s in self._segments[:-2]
               if s.display and s.virtual_region.y >= fold_at and s.outer_size.height > 0]
        if not new:
            return
        spacer = self.query_one(".pane-fold", Static)
        if not self._folded:
            scroll.move_child(spacer, before=new[0])
            spacer.styles.height = 0
        spacer.styles.height = int(spacer.styles.height.value) + sum(
            s.outer_size.height for s in new)
        for s in new:
            s.display = False
        self._folded.extend(new)
        spacer.display = True

    def _unfold(self) -> None:
        if not self._folded:
            return
        for s in self._folded:
            s.display = True
        self._folded.clear()
        spacer = self.query_one(".pane-fold", Static)
        spacer.display = False
        spacer.styles.height = 0

    async def reset(self, model: str | None = None) -> None:
        self._unfold()
        self._fold_allowed = True
        await self._stop_stream()
        await self._drop_segments()
        self._parts.clear()
        self._attempt = None
        self._model, self._simulated = model, None
        self.remove_class("-error")
        for cls in (".pane-discarded", ".pane-error"):
            w = self.query_one(cls, Static)
            w.update("")
            w.display = False
        await self.answer.update("")
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

    async def _stop_stream(self) -> None:
        """Stop drawing streamed text; text not drawn yet is dropped (callers redraw in full)."""
        self._unshown.clear()
        async with self._draw_lock:  # a draw in progress finishes before the caller redraws
            pass

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

    async def draw_pending(self) -> None:
        """Append the text streamed since the last draw to the answer."""
        if not self._unshown:
            return
        async with self._draw_lock:
            text = "".join(self._unshown)
            self._unshown.clear()
            while text:
                room = max(0, SEGMENT_CHARS - self._segment_chars)
                cut = self._paragraph_break(text, room)
                if cut < 0:
                    break
                await self._write(text[:cut])
                await self._new_segment()
                text = text[cut:]
            await self._write(text)

    def _paragraph_break(self, text: str, skip: int) -> int:
        """Index just after the first blank line of ``text`` at or after ``skip`` characters
        that is outside a code fence, or -1."""
        start = skip
        while (i := text.find("\n\n", start)) >= 0:
            if (self._fences + text.count("```", 0, i)) % 2 == 0:
                return i + 2
            start = i + 2
        return -1

    async def _write(self, text: str) -> None:
        """Append to the last widget of the chain. Straight appends, not a MarkdownStream: text
        is already gathered per draw, and a stream's own task appended at its own moments, so
        the two panes' appends landed in different frames (two layouts per draw, not one)."""
        if not text:
            return
        current = self._segments[-1] if self._segments else self.answer
        self._segment_chars += len(text)
        self._fences += text.count("```")
        await current.append(text)

    async def _new_segment(self) -> None:
        segment = _answer_widget("pane-answer-more")
        last = self._segments[-1] if self._segments else self.answer
        await last.parent.mount(segment, after=last)
        self._segments.append(segment)
        self._segment_chars = 0
        await self._fold_far_segments()

    async def _drop_segments(self) -> None:
        self._unfold()
        segments, self._segments = self._segments, []
        self._segment_chars = 0
        self._fences = 0
        for segment in segments:
            await segment.remove()

    async def _set_aside_failed_text(self) -> None:
        """A failed attempt's text stays visible, apart from the answer that replaces it."""
        discarded = self.text
        await self._stop_stream()
        await self._drop_segments()
        self._parts.clear()
        self._attempt = None
        if discarded:
            note = self.query_one(".pane-discarded", Static)
            note.update(Text("streamed before the failure (not the answer):\n" + discarded))
            note.display = True
        await self.answer.update("")

    def _show_error(self, message: str) -> None:
        w = self.query_one(".pane-error", Static)
        w.update(Text(clean(message)))
        w.display = True

    async def finish(self, result: RunResult | None, snap: MetricsSnapshot | None) -> None:
        """The side ended: the whole answer, the final figures and any error.

        A short answer gets one full update. A long one that already streamed whole into its
        chain of widgets only gets what is left to draw: laying the whole answer out again at
        once stalled the screen for 100–300 ms at the end of long answers."""
        self._fold_allowed = False  # nothing more is folded in this answer
        if result is not None and self._segments and self.text == result.text:
            await self.draw_pending()
        else:
            await self._stop_stream()
            if result is not None:
                await self._drop_segments()
                await self.answer.update(clean(result.text))
        # What is folded stays folded until the pane scrolls or resizes: putting a long answer
        # back into the layout at once cost one ~80 ms frame right as the answer ended.
        if result is not None:
            self._model, self._simulated = result.model, result.simulated
            if result.error:
                self._show_error("error: " + result.error)
                self.add_class("-error")
        if snap is not None:
            self._draw_header(snap.badges)
            self.show_metrics(snap)
