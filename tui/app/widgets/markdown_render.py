"""Markdown into terminal lines for AnswerView: Rich's Markdown renderer, with a faster code block.

Rich draws a fenced code block with its Syntax renderable, which took 20–35 ms for 400
characters of Python on this machine (word-wrapping styled Text and padding it costs far more
than the highlighting itself), and a streaming answer renders its open block again on every
draw. Here code is highlighted by Pygments as before (same lexers, same themes) but laid out
directly as segments: padded by one cell, long lines wrapped at token boundaries or spaces,
background filled to the edge. Everything else is Rich's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

from rich.cells import get_character_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock
from rich.markdown import Markdown as RichMarkdown
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax, SyntaxTheme

TAB = "    "


@lru_cache(maxsize=64)
def _lexer(name: str):
    """A Pygments lexer for a fence's language, None when there is none (plain text)."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    if not name or name == "text":
        return None
    try:
        return get_lexer_by_name(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=8)
def _theme(name: str) -> SyntaxTheme:
    return Syntax.get_theme(name)


@lru_cache(maxsize=1024)
def _token_style(theme_name: str, token_type) -> Style:
    theme = _theme(theme_name)
    return theme.get_background_style() + theme.get_style_for_token(token_type)


def _tokens(code: str, lexer_name: str) -> Iterable[tuple[object, str]]:
    lexer = _lexer(lexer_name)
    if lexer is None:
        from pygments.token import Token

        return ((Token.Text, code),)
    return lexer.get_tokens(code)


def _fit(text: str, cells: int) -> int:
    """How many characters of ``text`` fit in ``cells`` cells."""
    used = 0
    for i, ch in enumerate(text):
        used += get_character_cell_size(ch)
        if used > cells:
            return i
    return len(text)


class FastCode:
    """A code block: one padding line above and below, one cell each side, wrapped lines."""

    def __init__(self, code: str, lexer_name: str, theme: str) -> None:
        self.code = code.expandtabs(len(TAB))
        self.lexer_name = lexer_name
        self.theme = theme

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        background = _theme(self.theme).get_background_style()
        blank = Segment(" " * width, background)
        inner = max(1, width - 2)
        lines = list(self._lines(inner))
        while len(lines) > 1 and not lines[-1]:  # a lexer's closing newline: no empty line
            lines.pop()
        yield blank
        yield Segment.line()
        for line in lines:
            used = sum(seg.cell_length for seg in line)
            yield Segment(" ", background)
            yield from line
            yield Segment(" " * (width - 1 - used), background)
            yield Segment.line()
        yield blank
        yield Segment.line()

    def _lines(self, inner: int) -> Iterator[list[Segment]]:
        """The highlighted code as lines of at most ``inner`` cells."""
        line: list[Segment] = []
        used = 0
        for token_type, value in _tokens(self.code, self.lexer_name):
            style = _token_style(self.theme, token_type)
            parts = value.split("\n")
            for i, part in enumerate(parts):
                if i:
                    yield line
                    line, used = [], 0
                while part:
                    segment = Segment(part, style)
                    room = inner - used
                    if segment.cell_length <= room:
                        line.append(segment)
                        used += segment.cell_length
                        break
                    # Wrap like words: a token that fits on a line of its own moves to the
                    # next line whole; a longer one (a string, a comment) breaks after its
                    # last space that fits, else at the edge (a wide char never splits).
                    if line and segment.cell_length <= inner and part.strip():
                        cut = 0
                    else:
                        cut = _fit(part, room)
                        space = part.rfind(" ", 0, cut)
                        if 0 < space and space + 1 < cut:
                            cut = space + 1
                        cut = cut or (0 if line else 1)
                    if cut:
                        line.append(Segment(part[:cut], style))
                    yield line
                    line, used = [], 0
                    part = part[cut:]
        yield line


class _CodeBlock(CodeBlock):
    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield FastCode(str(self.text).rstrip(), self.lexer_name, self.theme)


class AnswerMarkdown(RichMarkdown):
    """Rich's Markdown with FastCode for fenced and indented code."""

    elements = {**RichMarkdown.elements, "fence": _CodeBlock, "code_block": _CodeBlock}
