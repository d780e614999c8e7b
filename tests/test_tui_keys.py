"""The main screen's feedback keys: f9 records a verdict on the last run, f6 corrects a label."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tui_helpers import new_app, until

from tui.app.app import RouteDeckApp
from tui.app.screens.correction import CorrectionScreen
from tui.app.screens.verdict import VerdictScreen
from tui.app.widgets.prompt_editor import PromptEditor
from tui.router.log.runlog import RunLog
from tui.router.run.session import Session
from tui.router.table.load import load_table
from tui.router.table.paths import default_routes_path


@pytest.fixture
def app(routes_file: Path, tmp_path: Path, monkeypatch) -> RouteDeckApp:
    monkeypatch.setenv("ROUTEDECK_SIM_SPEED", "50")
    return new_app(routes_file, tmp_path)


async def test_f9_records_a_verdict_on_the_last_run(app):
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: app.session.classifier_ready, "classifier loaded")
        await pilot.press("f9")  # nothing ran yet: a note, no modal
        await pilot.pause()
        assert not isinstance(app.screen, VerdictScreen)
        app.screen.query_one(PromptEditor).insert("write a haiku about the sea")
        await pilot.press("ctrl+j")
        main = app.screen
        await until(pilot, lambda: main.last_run_id is not None, "the run finished and was logged")
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, VerdictScreen), "verdict modal")
        await pilot.press("t")
        await until(
            pilot, lambda: app.session.runlog.verdict_counts().get("tie") == 1, "verdict stored"
        )
        assert app.session.runlog.get(main.last_run_id).verdict == "tie"


async def test_f8_opens_the_correction_for_the_typed_prompt(app):
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: app.session.classifier_ready, "classifier loaded")
        app.screen.query_one(PromptEditor).insert("tell me about the rings of saturn")
        await pilot.press("f8")
        await until(pilot, lambda: isinstance(app.screen, CorrectionScreen), "correction modal")
        assert app.screen.prompt == "tell me about the rings of saturn"


async def test_ctrl_j_runs_even_when_a_pane_has_focus(app):
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: app.session.classifier_ready, "classifier loaded")
        main = app.screen
        main.query_one(PromptEditor).insert("what is the capital of peru")
        main.query_one("#routed").answer.focus()
        await pilot.pause()
        await pilot.press("ctrl+j")
        await until(pilot, lambda: main.last_run_id is not None, "the run finished")


async def test_a_long_answer_with_a_long_code_block_streams_whole(tmp_path, monkeypatch):
    """A long answer streamed in small chunks ends up shown exactly as sent: the same source,
    and the same lines as the answer drawn in one go (a code block longer than a block's limit
    is cut and its fence reopened, invisibly)."""
    from fakeserver import FakeServer, Reply

    from tui.app.widgets.answer_view import OPEN_BLOCK_MAX_CHARS
    from tui.app.widgets.run_pane import RunPane

    paragraphs = [f"Paragraph {i}. " + "words " * 60 for i in range(12)]
    paragraphs.insert(5, "```python\n" + "\n\n".join(f"x{i} = {i}" for i in range(40)) + "\n```")
    answer = "\n\n".join(paragraphs)
    assert len(answer) > 3 * OPEN_BLOCK_MAX_CHARS
    chunks = [answer[i : i + 40] for i in range(0, len(answer), 40)]
    with FakeServer() as server:
        server.default = Reply.ok(chunks=chunks, delay=0.002)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-chain-0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
        routes = tmp_path / "routes.toml"
        shutil.copyfile(default_routes_path(), routes)
        session = Session(table=load_table(routes), runlog=RunLog(tmp_path / "r.sqlite3"))
        app = RouteDeckApp(session)
        async with app.run_test(size=(140, 45)) as pilot:
            await until(pilot, lambda: app.session.classifier_ready, "classifier loaded")
            main = app.screen
            main.query_one(PromptEditor).insert("fix my python function, it returns None")
            await pilot.press("ctrl+j")
            await until(pilot, lambda: main.last_pair is not None, "the run finished")
            await pilot.pause()
            pane = main.query_one("#routed", RunPane)
            assert main.last_pair.routed.text == answer
            view = pane.answer
            assert view.source == answer
            streamed = view.rendered_text()
            assert "x39 = 39" in streamed and "Paragraph 11." in streamed
            view.update(answer)
            await until(pilot, lambda: view.rendered, "the answer rendered again")
            assert view.rendered_text() == streamed
        from tui.router.providers.registry import aclose_shared_http_client

        await aclose_shared_http_client()


async def test_dragging_over_an_answer_selects_it_and_ctrl_c_copies_it(app):
    from tui_helpers import find_on_screen, pane, run

    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: app.session.classifier_ready, "classifier loaded")
        await run(pilot, "what is the capital of peru")
        routed = pane(app, "routed")
        start = find_on_screen(app, "[simulated ")
        assert start is not None
        view = routed.answer
        x0, y0 = start[0] - view.region.x, start[1] - view.region.y
        await pilot.mouse_down(view, offset=(x0, y0))
        await pilot.hover(view, offset=(x0 + 30, y0 + 1))
        await pilot.mouse_up(view, offset=(x0 + 30, y0 + 1))
        await pilot.pause()
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.clipboard.startswith("[simulated ")
        assert "\n" in app.clipboard  # two lines of the answer
        assert app.clipboard.replace("\n", " ") in " ".join(view.rendered_text().split("\n"))


async def test_the_command_palette_acts_on_the_app_and_the_main_screen(app):
    """The palette's commands (tui/app/commands.py): one on the app, one on the main screen."""
    from tui.app.commands import RouteDeckCommands
    from tui.app.screens.history import HistoryScreen

    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: app.session.classifier_ready, "classifier loaded")
        main = app.screen
        assert RouteDeckCommands in app.COMMANDS
        commands = {name: action for name, action, _ in RouteDeckCommands(main)._commands()}
        commands["Priority: auto"]()
        assert main.priority_mode == "auto"
        commands["Open history"]()
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history")
        await pilot.pause(0.3)  # let the history screen finish mounting before the app exits
