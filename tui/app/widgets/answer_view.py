"""A model's answer as Markdown, drawn line by line: cheap to stream into, whatever its length.

Textual's Markdown widget makes every block of the document a widget of its own, so each frame
of a long streaming answer laid out and re-rendered hundreds of widgets (two panes at 500
tokens/s spent most of their time there, with frame gaps over 100 ms). AnswerView is one
scrolling widget using Textual's line API instead, as Textual's Log does:

- The source is cut into blocks at blank lines outside code fences. A finished block is
  rendered once with Rich's Markdown renderer into lines (Strips) and kept; only the open block
  at the end is rendered again as text streams into it. Blocks are joined by one blank line.
- An open block that grows past OPEN_BLOCK_MAX_CHARS without a blank line (a wall of text),
  or past FENCE_BLOCK_MAX_CHARS inside a code fence, is cut at a line break, so a draw never
  re-renders more than that; a cut inside a fence closes it for the part above and reopens it
  below, and the pieces join without a seam.
- The compositor asks only for the lines on screen, and a draw refreshes only the lines that
  changed (the open block's), so a 200 kB answer costs what a screenful costs to draw. While
  the open block is below the visible lines it is rendered at most every OFFSCREEN_RENDER_S.
  Rendering after a width change, or of a whole answer set at once, goes in slices of
  RENDER_SLICE_S per frame from the top, so it never stalls the screen.
- Scrolled to its end, the view follows the answer as it grows.

The text is the model's, already cleaned of control sequences; it is parsed as Markdown only,
never as Rich or Textual markup, and links are shown as text (no terminal hyperlinks). Mouse
selection works on the rendered text, as in Textual's Log.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.timer import Timer

# An open block longer than this is cut at its last line break (or space) before it.
OPEN_BLOCK_MAX_CHARS = 1200
# The same inside a code block: highlighting makes code several times dearer to render than
# prose (an 870-character block took 23 ms with Rich's Syntax, 10 ms with FastCode).
FENCE_BLOCK_MAX_CHARS = 400
# An open block below the visible lines is rendered again at most this often.
OFFSCREEN_RENDER_S = 0.5
# The scroll bar's thumb follows a growing answer this often.
SCROLLBAR_INTERVAL_S = 0.25
# Long text is taken in pieces of this size, so each cut copies little.
_ADD_CHARS = 2048
# Rendering done in one go before the rest is left to the next frame.
RENDER_SLICE_S = 0.012
# A fence line: up to three spaces, then ``` or ~~~ (CommonMark).
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def prepare() -> None:
    """Pay the first answer's imports (Markdown parser, Rich's renderer, code highlighting and
    its theme) off the event loop: the app calls this from a worker thread at start-up."""
    from rich.console import Console

    from tui.app.widgets.markdown_render import AnswerMarkdown

    sample = "# h\n\n*a* `b`\n\n- c\n\n```python\nx = [1]\n```\n\n| d |\n|---|\n| e |"
    console = Console(width=40, file=None, force_terminal=True, color_system="truecolor")
    for theme in ("monokai", "default"):
        console.render_lines(AnswerMarkdown(sample, code_theme=theme, hyperlinks=False))


@dataclass(slots=True)
class _Block:
    text: str  # Markdown as rendered (a cut fence is closed or reopened here)
    gap: bool  # a blank line separates it from the block above (False after a forced cut)
    seam_above: bool = False  # continues a code block cut above (its top padding is dropped)
    seam_below: bool = False  # a code block cut here goes on below (its bottom padding too)


def _no_text(line: list[Segment]) -> bool:
    return not "".join(seg.text for seg in line).strip()


def _blank(line: list[Segment]) -> bool:
    """A line with no text and no background (code blocks' padding lines have one)."""
    return _no_text(line) and not any(seg.style and seg.style.bgcolor for seg in line)


class AnswerView(ScrollView):
    """Markdown that grows by ``append`` and is replaced by ``update``; ``source`` is the text."""

    DEFAULT_CSS = """
    AnswerView { height: 1fr; overflow-x: hidden; scrollbar-gutter: stable; }
    """
    ALLOW_SELECT = True

    def __init__(self, source: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self._width = 0  # the width the lines below are rendered at
        self._clear()
        self._continue_pending = False
        self._scrollbar_timer: Timer | None = None
        self._open_timer: Timer | None = None  # a deferred render of the open block
        self._open_at = 0.0  # when the open block was last rendered
        self._streaming = False  # appended to since the last update or flush
        if source:
            self._add(source)

    # ---- the text ------------------------------------------------------------------------

    @property
    def source(self) -> str:
        return "".join(self._source)

    @property
    def line_count(self) -> int:
        return len(self._done) + len(self._open_lines)

    @property
    def rendered(self) -> bool:
        """Every line of the source is rendered (rendering goes in slices after a width change
        or a whole answer set at once)."""
        return self._done_blocks == len(self._blocks) and not self._open_dirty

    def append(self, text: str) -> None:
        """Add streamed text at the end (``flush`` when the answer ends)."""
        self._streaming = True
        if text:
            self._add(text)
            self._changed()

    def update(self, source: str) -> None:
        """Replace the whole answer."""
        self._streaming = False
        self._clear()
        if source:
            self._add(source)
        self._changed(layout=True)

    def _clear(self) -> None:
        """No text, nothing rendered (the width stays)."""
        self._source: list[str] = []
        self._blocks: list[_Block] = []  # finished blocks
        self._open = ""  # the open block's source
        self._open_fence: str | None = None  # the open block is inside this fence ("```")
        self._fence_line = ""  # the line that opened it (with its language)
        self._min_cut = 0  # a forced cut lands after this index (past a reopened fence line)
        self._open_gap = False  # the open block follows a blank line
        self._open_seam = False  # the open block continues a code block cut above
        self._scanned = 0  # the open block's lines before this index are scanned
        self._prev_blank = False  # the last scanned line was blank
        # Rendered lines: finished blocks [0, _done_blocks), then the open one.
        self._done: list[Strip] = []
        self._done_blocks = 0
        self._open_lines: list[Strip] = []
        self._open_dirty = False

    def _add(self, text: str) -> None:
        self._source.append(text)
        self._open_dirty = True
        for i in range(0, len(text), _ADD_CHARS):  # bounded copies when cutting long text
            self._open += text[i : i + _ADD_CHARS]
            self._split()

    def _split(self) -> None:
        """Move finished blocks out of the open one. A block ends at a blank line outside a
        fence followed by a line that starts in the first column; a line that would carry the
        block past OPEN_BLOCK_MAX_CHARS starts a new one (a line longer than that is itself cut
        at a space). Every cut depends on the text alone, never on how it was chunked, so an
        answer streamed in pieces is drawn exactly as the same answer set at once."""
        while True:
            s, pos = self._open, self._scanned
            nl = s.find("\n", pos)
            limit = OPEN_BLOCK_MAX_CHARS if self._open_fence is None else FENCE_BLOCK_MAX_CHARS
            if (nl if nl >= 0 else len(s)) > limit:
                if pos > self._min_cut:
                    self._force_cut(pos, gap=self._open_fence is None and self._prev_blank)
                else:  # one line longer than a block: at its last space before the limit
                    cut = s.rfind(" ", pos, limit) + 1
                    self._force_cut(cut if cut > pos else max(limit, pos + 1), gap=False)
                continue
            if nl < 0:
                return
            line = s[pos:nl]
            fence = _FENCE.match(line)
            if self._open_fence is not None:
                if fence and fence.group(1)[0] == self._open_fence[0] and (
                    len(fence.group(1)) >= len(self._open_fence)
                ) and not line[fence.end():].strip():
                    self._open_fence = None
            elif (self._prev_blank and line and not line[0].isspace()
                  and s[:pos].strip()):
                self._force_cut(pos, gap=True)
                continue
            elif fence:
                self._open_fence, self._fence_line = fence.group(1), line
            self._prev_blank = self._open_fence is None and not line.strip()
            self._scanned = nl + 1

    def _force_cut(self, cut: int, *, gap: bool) -> None:
        """The open block ends at ``cut`` and a new one starts there (``gap``: after a blank
        line). A cut inside a code fence closes it above and reopens it, language and all,
        below."""
        s = self._open
        fence = self._open_fence
        head, rest = s[:cut], s[cut:]
        if fence is not None:
            head = head.rstrip("\n") + "\n" + fence
            rest = self._fence_line + "\n" + rest
            self._min_cut = len(self._fence_line) + 1
        else:
            self._min_cut = 0
        self._blocks.append(_Block(head.rstrip("\n"), self._open_gap, self._open_seam,
                                   fence is not None))
        self._open_seam = fence is not None
        self._open = rest
        self._scanned = self._min_cut
        self._open_gap = gap
        self._prev_blank = False

    # ---- rendering -----------------------------------------------------------------------

    def _render(self, text: str, width: int, seam_above: bool = False,
                seam_below: bool = False) -> list[Strip]:
        from tui.app.widgets.markdown_render import AnswerMarkdown

        dark = getattr(self.app.current_theme, "dark", True)
        md = AnswerMarkdown(text, code_theme="monokai" if dark else "default", hyperlinks=False)
        console = self.app.console
        options = console.options.update(width=width, height=None, highlight=False,
                                         markup=False)
        lines = console.render_lines(md, options, style=self.rich_style, pad=True)
        start, end = 0, len(lines)
        # A code block's padding line where it was cut: the pieces join seamlessly.
        if seam_above and end and _no_text(lines[0]):
            start += 1
        if seam_below and end > start and _no_text(lines[-1]):
            end -= 1
        while start < end and _blank(lines[start]):
            start += 1
        while end > start and _blank(lines[end - 1]):
            end -= 1
        return [Strip(line, width) for line in lines[start:end]]

    def flush(self) -> None:
        """The answer has ended: draw everything now (no render is deferred any more)."""
        self._streaming = False
        self._changed()
        self._update_scrollbar()

    def _bring_up_to_date(self, width: int) -> bool:
        """Render what is not rendered at ``width``, for at most RENDER_SLICE_S; True when all
        of it is."""
        if width != self._width:
            self._width = width
            self._done.clear()
            self._done_blocks = 0
            self._open_dirty = True
        if width <= 0:
            return True
        deadline = time.perf_counter() + RENDER_SLICE_S
        blank = Strip.blank(width, self.rich_style)
        finished = self._done_blocks < len(self._blocks)
        while self._done_blocks < len(self._blocks):
            block = self._blocks[self._done_blocks]
            lines = self._render(block.text, width, block.seam_above, block.seam_below)
            if lines and self._done and block.gap:
                self._done.append(blank)
            self._done.extend(lines)
            self._done_blocks += 1
            self._open_dirty = True
            if time.perf_counter() > deadline and self._done_blocks < len(self._blocks):
                self._open_lines = []
                return False
        if self._open_dirty:
            if self._streaming and (wait := self._open_wait()) > 0:
                if finished:
                    self._open_lines = []  # its start now shows in the blocks above
                if self._open_timer is None:
                    self._open_timer = self.set_timer(wait, self._render_deferred)
                return True
            lines = (self._render(self._open, width, self._open_seam)
                     if self._open.strip() else [])
            if lines and self._done and self._open_gap:
                lines.insert(0, blank)
            self._open_lines = lines
            self._open_dirty = False
            self._open_at = time.perf_counter()
        return True

    def _open_wait(self) -> float:
        """Seconds the open block's render may wait: while it starts below the visible lines
        it is rendered at most every OFFSCREEN_RENDER_S (nobody sees it; the line count it adds
        to the scroll range can lag that long)."""
        if len(self._done) < self.scroll_offset.y + self.container_size.height:
            return 0.0
        return self._open_at + OFFSCREEN_RENDER_S - time.perf_counter()

    def _render_deferred(self) -> None:
        self._open_timer = None
        if self._open_dirty:
            self._changed()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._open_dirty and self._open_timer is not None:
            self._changed()  # scrolled towards a deferred open block: draw it now

    def _changed(self, layout: bool = False) -> None:
        """Render what changed and refresh only its lines (all of them after a width change)."""
        width = self.scrollable_content_region.width
        if not self.is_mounted or width <= 0:
            return  # rendered when the widget gets its size (on_resize)
        old_width, old_total, first = self._width, self.line_count, len(self._done)
        # Scrolled to the end (by the person: it starts at the top), the view follows the text.
        follow = 0 < self.scroll_offset.y >= self.max_scroll_y
        done = self._bring_up_to_date(width)
        total = self.line_count
        if width != old_width or layout:
            self.virtual_size = Size(width, total)
            self.refresh()
        else:
            if total != old_total:
                self._grow(Size(width, total))
            self.refresh_lines(first, max(total, old_total) - first)
        if follow and total > old_total:
            self.scroll_to(y=self.max_scroll_y, animate=False)
        if not done:
            self._continue_later()

    def _grow(self, size: Size) -> None:
        """A new line count. Setting virtual_size repaints the whole widget and lays the screen
        out again; that is only needed when the scroll bar appears or goes. Otherwise the size
        is set quietly, the changed lines are refreshed by the caller, and the scroll bar's
        thumb follows every SCROLLBAR_INTERVAL_S (it is a hint; scrolling uses the new size at
        once)."""
        viewport = self.container_size.height
        if (self.virtual_size.height > viewport) != (size.height > viewport):
            self.virtual_size = size
            return
        self.set_reactive(AnswerView.virtual_size, size)
        if self._scrollbar_timer is None and self.show_vertical_scrollbar:
            self._scrollbar_timer = self.set_timer(SCROLLBAR_INTERVAL_S, self._update_scrollbar)

    def _update_scrollbar(self) -> None:
        if self._scrollbar_timer is not None:
            self._scrollbar_timer.stop()
        self._scrollbar_timer = None
        if self.show_vertical_scrollbar:
            self.vertical_scrollbar.window_virtual_size = self.virtual_size.height

    def _continue_later(self) -> None:
        if not self._continue_pending:
            self._continue_pending = True
            self.set_timer(0.001, self._continue)

    def _continue(self) -> None:
        self._continue_pending = False
        self._changed()

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._restyle, init=False)

    def _restyle(self) -> None:
        self._width = -1  # every line again, in the new theme's colours
        self._changed(layout=True)

    def on_resize(self) -> None:
        if self.scrollable_content_region.width != self._width:
            self._changed(layout=True)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        y += self.scroll_offset.y
        if y < len(self._done):
            strip = self._done[y]
        elif y - len(self._done) < len(self._open_lines):
            strip = self._open_lines[y - len(self._done)]
        else:
            return Strip.blank(width, self.rich_style)
        if strip.cell_length != width:
            strip = strip.crop_extend(0, width, self.rich_style)
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(y)) is not None:
            start, end = span
            end = strip.cell_length if end == -1 else end
            if end > start:
                style: Style = self.screen.get_component_rich_style("screen--selection")
                before, middle, after = strip.divide([start, end, strip.cell_length])
                strip = Strip.join([before, middle.apply_style(style), after])
        return strip.apply_offsets(0, y)

    # ---- selection -----------------------------------------------------------------------

    def rendered_text(self) -> str:
        """The answer as drawn: its rendered lines as plain text (what a selection copies)."""
        return "\n".join(strip.text.rstrip() for strip in (*self._done, *self._open_lines))

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract(self.rendered_text()), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()
