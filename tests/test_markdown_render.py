"""The Markdown renderer behind AnswerView (tui/app/widgets/markdown_render.py)."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown

from tui.app.widgets.markdown_render import AnswerMarkdown

WIDTH = 40


def render(markdown: str, cls=AnswerMarkdown) -> list[list]:
    console = Console(width=WIDTH, force_terminal=True, color_system="truecolor")
    return console.render_lines(cls(markdown, code_theme="monokai"), console.options, pad=True)


def texts(lines) -> list[str]:
    return ["".join(seg.text for seg in line) for line in lines]


def test_a_code_block_shows_the_same_code_as_richs_own_renderer():
    code = "```python\ndef total(rows):\n    return sum(r['n'] for r in rows)  # all\n```"
    ours, richs = texts(render(code)), texts(render(code, Markdown))
    assert [t.rstrip() for t in ours] == [t.rstrip() for t in richs]


def test_code_is_highlighted_on_the_themes_background_to_the_edge():
    lines = render("```python\nimport os\n```")
    assert len(lines) == 3  # a padding line above and below
    for line in lines:
        assert sum(seg.cell_length for seg in line) == WIDTH
        assert all(seg.style and seg.style.bgcolor for seg in line if seg.text)
    keyword = next(seg for seg in lines[1] if seg.text == "import")
    plain = next(seg for seg in lines[1] if seg.text == "os")
    assert keyword.style.color != plain.style.color


def test_long_code_lines_wrap_within_the_width_wide_characters_and_tabs_included():
    long_line = "x = '" + "漢字" * 40 + "'"
    lines = render(f"```python\n{long_line}\n\tindented()\n```")
    shown = texts(lines)
    assert all(sum(seg.cell_length for seg in line) == WIDTH for line in lines)
    assert "".join(t.strip() for t in shown[1:-2]) == long_line  # every character, in order
    assert shown[-2].startswith("     indented()")  # the tab is four spaces, after the margin


def test_every_common_language_gets_exactly_its_lines():
    for lang in ("python", "bash", "json", "yaml", "rust", "sql", "html", "go", "c", "text", ""):
        shown = texts(render(f"```{lang}\nx = 1\ny = 2\n```"))
        assert [t.strip() for t in shown] == ["", "x = 1", "y = 2", ""], lang


def test_an_unknown_language_is_shown_as_plain_text():
    shown = texts(render("```klingon\nqapla' batlh\n```"))
    assert shown[1].strip() == "qapla' batlh"


def test_prose_is_rendered_by_rich_unchanged():
    prose = "# Title\n\nSome *emphasis* and a list:\n\n- one\n- two"
    assert texts(render(prose)) == texts(render(prose, Markdown))
