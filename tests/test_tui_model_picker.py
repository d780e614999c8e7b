"""The model picker (the main screen's "pin model", f4) and the model list it shares with the
cell editor, driven through Textual's Pilot: choosing, refusing an unknown provider, the price
library's models, local Ollama models, and a failing Ollama or price library.

Every test works on a copy of the packaged routes.toml in a temporary folder, with a temporary
cache folder and run log, so nothing touches the user's files. No test asserts on time.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input
from tui_grid_helpers import SIZE
from tui_helpers import new_app, settle, type_text

from tui.app.screens.main import MainScreen
from tui.app.screens.model_picker import NO_PIN_LABEL, ModelPicker
from tui.app.widgets.model_list import ModelList, clear_model_cache, price_label
from tui.router.run.session import Session

# The module's own classifier cache folder, and a run log per test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("module_private_folders")


# ---------------------------------------------------------------------------------------------
# The model picker (the main screen's "pin model")
# ---------------------------------------------------------------------------------------------


async def test_model_picker_results(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    results: list[str | None] = []
    async with app.run_test(size=SIZE) as pilot:
        table = app.session.table
        model = table.models()[2]
        for keys in (("enter",), ("escape",), None):
            picker = ModelPicker(app.session, current=None, allow_none=True)
            app.push_screen(picker, results.append)
            await settle(pilot)
            ml = picker.query_one(ModelList)
            assert ml.shown[0] == ""  # "route normally (no pin)" comes first
            if keys is None:
                await type_text(pilot, model)
                await pilot.press("enter")
            else:
                await pilot.press(*keys)
            await settle(pilot)
            assert not isinstance(app.screen, ModelPicker)
    assert results == ["", None, model]
    assert NO_PIN_LABEL == "route normally (no pin)"


async def test_model_picker_refuses_an_unknown_provider(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        picker = ModelPicker(app.session)
        app.push_screen(picker)
        await settle(pilot)
        await type_text(pilot, "nosuch/model")
        await pilot.pause()
        assert picker.query_one(ModelList).shown[0] == "nosuch/model"  # "use ... as typed"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is picker
        assert "unknown provider 'nosuch'" in picker.error


async def test_pin_model_from_the_main_screen(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        model = app.session.table.models()[1]
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)
        await type_text(pilot, model)
        await pilot.press("enter")
        await settle(pilot)
        assert main.pinned_model == model


async def test_model_list_offers_priced_library_models(routes_file, tmp_path):
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        picker = ModelPicker(app.session)
        app.push_screen(picker)
        await settle(pilot)
        ml = picker.query_one(ModelList)
        assert not ml.loading_models
        # More than the table names: the price library's models of the table's providers.
        assert len(ml.models) > len(app.session.table.models())
        assert set(app.session.table.models()) <= set(ml.models)
        await type_text(pilot, "gpt 5 mini")
        await pilot.pause()
        shown = [m for m in ml.shown if m]
        assert shown and all("gpt" in m and "5" in m and "mini" in m for m in shown)
        assert isinstance(picker.query_one("#model-filter"), Input)


async def test_model_list_adds_local_ollama_models(routes_file, tmp_path, monkeypatch):
    import tui.router.providers.ollama as ollama

    async def fake_list(base_url, timeout=0.3):
        return ["ollama/llama3.2:1b", "ollama/[/b]tiny"]

    monkeypatch.setattr(ollama, "list_ollama_models", fake_list)
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        picker = ModelPicker(app.session)
        app.push_screen(picker)
        await settle(pilot)
        ml = picker.query_one(ModelList)
        assert "ollama/llama3.2:1b" in ml.models and "ollama/[/b]tiny" in ml.models
        assert (
            price_label(
                "ollama/llama3.2:1b", ml.entry("ollama/llama3.2:1b").price, app.session.table
            )
            == "local"
        )
        await type_text(pilot, "ollama/")
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running


async def test_model_list_survives_a_failing_ollama_and_price_library(
    routes_file, tmp_path, monkeypatch
):
    import tui.router.providers.ollama as ollama

    async def broken_list(base_url, timeout=0.3):
        raise RuntimeError("[/b] boom")

    def broken_known_models(self):
        raise RuntimeError("[/b] no price data")

    monkeypatch.setattr(ollama, "list_ollama_models", broken_list)
    monkeypatch.setattr(Session, "known_models", broken_known_models)
    clear_model_cache()
    app = new_app(routes_file, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        picker = ModelPicker(app.session)
        app.push_screen(picker)
        await settle(pilot)
        ml = picker.query_one(ModelList)
        assert not ml.loading_models
        # The table's own models are still there to choose from.
        assert ml.models == app.session.table.models()
        model = app.session.table.models()[0]
        await type_text(pilot, model)
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running
        assert not isinstance(app.screen, ModelPicker)
