"""AnswerView: Markdown streamed line by line (tui/app/widgets/answer_view.py)."""

from __future__ import annotations

import random

from textual.app import App, ComposeResult
from textual.geometry import Offset
from textual.selection import Selection
from tui_helpers import find_on_screen, until

from tui.app.widgets.answer_view import OPEN_BLOCK_MAX_CHARS, AnswerView

ANSWER = "\n\n".join([
    "# Reversing a list",
    "Here is **one way** to do it, with `reversed`:",
    "```python\n" + "\n\n".join(f"x{i} = {i}  # step {i}" for i in range(120)) + "\n```",
    "- first point\n- second point\n\n  still the second point",
    "3. three\n4. four",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "> quoted " + "words " * 300,
    "A closing paragraph with a [link](https://example.com).",
])


class ViewApp(App):
    def compose(self) -> ComposeResult:
        yield AnswerView()


def stream(view: AnswerView, text: str, seed: int = 7) -> None:
    rng = random.Random(seed)
    i = 0
    while i < len(text):
        n = rng.randint(1, 60)
        view.append(text[i : i + n])
        i += n


async def test_streamed_in_chunks_it_shows_the_same_lines_as_set_at_once():
    app = ViewApp()
    async with app.run_test(size=(80, 30)) as pilot:
        view = app.query_one(AnswerView)
        stream(view, ANSWER)
        await until(pilot, lambda: view.rendered, "rendered")
        assert view.source == ANSWER
        streamed = view.rendered_text()
        view.update(ANSWER)
        await until(pilot, lambda: view.rendered, "rendered again")
        assert view.rendered_text() == streamed
        # Markdown, not source: the heading's hashes and the emphasis stars are gone.
        assert "Reversing a list" in streamed and "# Reversing" not in streamed
        assert "one way" in streamed and "**" not in streamed
        assert "x119 = 119  # step 119" in streamed
        assert "```" not in streamed  # the long code block was cut and its fence reopened
        assert "link (https://example.com)" in streamed  # links shown as text


async def test_a_long_block_is_cut_so_a_draw_renders_little():
    """However a model writes (a long code block, one huge paragraph, no spaces at all), the
    block rendered again on each draw stays near OPEN_BLOCK_MAX_CHARS."""
    wall = "".join(f"word{i} " for i in range(2000))
    nospace = "x" * 5000
    code = "```js\n" + "\n".join(f"let v{i} = {i};" for i in range(800)) + "\n```"
    app = ViewApp()
    async with app.run_test(size=(80, 30)) as pilot:
        view = app.query_one(AnswerView)
        for text in (wall, nospace, code):
            view.update("")
            stream(view, text)
            assert len(view._open) <= OPEN_BLOCK_MAX_CHARS + 16
            assert view.source == text
            await until(pilot, lambda: view.rendered, "rendered")
        shown = view.rendered_text().split("\n")
        code_lines = [line.strip() for line in shown if line.strip()]
        assert code_lines == [f"let v{i} = {i};" for i in range(800)]  # cut, seamlessly
        assert len(shown) == 800 + 2  # and its padding line above and below, nothing between
        assert len(view._blocks) > 800 * 14 // 400


async def test_markup_in_the_answer_is_shown_as_text():
    text = "[b]bold?[/b] and [@click=app.quit]click me[/] and [red]x[/red]"
    app = ViewApp()
    async with app.run_test(size=(80, 10)) as pilot:
        view = app.query_one(AnswerView)
        view.append(text)
        await pilot.pause()
        assert view.rendered_text() == text
        await pilot.click(AnswerView, offset=(30, 0))
        await pilot.pause()
        assert app.is_running  # the click markup did not quit the app


async def test_a_resize_renders_again_at_the_new_width():
    app = ViewApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(AnswerView)
        view.update("words " * 400)
        await until(pilot, lambda: view.rendered, "rendered")
        wide = view.line_count
        await pilot.resize_terminal(50, 30)
        await until(pilot, lambda: view.rendered and view.line_count != wide, "re-rendered")
        assert view.line_count > wide
        width = view.scrollable_content_region.width
        assert all(line.cell_length == width for line in view._done + view._open_lines)
        assert view.virtual_size.height == view.line_count


async def test_a_200_kb_answer_set_at_once_renders_in_slices_and_scrolls_to_its_end():
    big = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 30 for i in range(550))
    assert len(big) > 200_000
    app = ViewApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(AnswerView)
        view.update(big)
        assert not view.rendered  # the first slice only: the screen is not held up
        await until(pilot, lambda: view.rendered, "all rendered")
        view.scroll_end(animate=False)
        await pilot.pause()
        await pilot.pause()
        assert find_on_screen(app, "Paragraph 549:")


async def test_a_mouse_selection_copies_the_rendered_words():
    app = ViewApp()
    async with app.run_test(size=(60, 10)) as pilot:
        view = app.query_one(AnswerView)
        view.update("**alpha** beta gamma\n\ndelta epsilon")
        await pilot.pause()
        await pilot.mouse_down(AnswerView, offset=(0, 0))
        await pilot.hover(AnswerView, offset=(5, 2))
        await pilot.mouse_up(AnswerView, offset=(5, 2))
        await pilot.pause()
        assert app.screen.get_selected_text() == "alpha beta gamma\n\ndelta "
        assert view.get_selection(Selection.from_offsets(Offset(0, 2), Offset(13, 2))) == (
            "delta epsilon", "\n")


async def test_text_streaming_below_the_visible_lines_shows_when_scrolled_to():
    """The open block is drawn less often while it is out of sight; scrolling to it, or the
    answer ending, draws it at once."""
    app = ViewApp()
    async with app.run_test(size=(80, 10)) as pilot:
        view = app.query_one(AnswerView)
        view.append("\n\n".join(f"Paragraph {i}." for i in range(40)) + "\n\nThe open tail")
        await until(pilot, lambda: view.rendered, "rendered")
        view.append(" grows")
        assert not view.rendered  # out of sight: its render waits
        view.scroll_end(animate=False)
        await until(pilot, lambda: find_on_screen(app, "The open tail grows"), "tail shown")
        # Scrolled to the end, the view follows the answer as it grows.
        view.append("\n\n" + "\n\n".join(f"More {i}." for i in range(10)))
        await until(pilot, lambda: find_on_screen(app, "More 8."), "followed")
        view.append("\n\nThe end.")
        view.flush()
        assert view.rendered
        await until(pilot, lambda: find_on_screen(app, "The end."), "the end shown")


async def test_a_theme_change_draws_the_answer_again_in_its_colours():
    app = ViewApp()
    async with app.run_test(size=(60, 12)) as pilot:
        view = app.query_one(AnswerView)
        view.update("Some code:\n\n```python\nx = 1\n```")
        await until(pilot, lambda: view.rendered, "rendered")

        def code_background():
            line = next(s for s in view._done + view._open_lines if "x = 1" in s.text)
            return next(seg.style.bgcolor for seg in line if seg.text.strip())

        dark = code_background()
        app.theme = "textual-light"
        await until(pilot, lambda: view.rendered and code_background() != dark, "restyled")
        assert "x = 1" in view.rendered_text()
