"""The command palette: the main actions by name, built from the current state."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.app.widgets.prompt_editor import PromptEditor

if TYPE_CHECKING:
    from tui.app.app import RouteDeckApp
    from tui.app.screens.main import MainScreen

# What a command does when picked (it may return an awaitable: the palette awaits it).
Action = Callable[[], Any]


class RouteDeckCommands(Provider):
    @property
    def deck(self) -> RouteDeckApp:
        return cast("RouteDeckApp", self.app)

    def _commands(self) -> list[tuple[str, Action, str]]:
        app = self.deck
        main = app._main()

        def on_main(act: Callable[[MainScreen], Any]) -> Action:
            return lambda: act(main) if main is not None else None

        cmds: list[tuple[str, Action, str]] = [
            ("Run the prompt", on_main(lambda m: m.query_one("#prompt", PromptEditor).action_submit()), "run it on the routed model and the baseline"),
            ("Cancel the run", on_main(lambda m: m.action_cancel_run()), "stop both streams"),
            ("Open the routing table", app.action_grid, "edit cells and save routes.toml"),
            ("Save the routing table", app.action_save_routes, "write routes.toml atomically"),
            ("Reload routes.toml", app.reload_routes, "drop unsaved edits"),
            ("Open history", app.action_history, "past runs and totals"),
            ("Open savings", app.action_savings, "projected savings on a workload, what-if, threshold"),
            ("The label is wrong: correct it", on_main(lambda m: m.action_correct_label()), "add the prompt as a training example"),
            ("Verdict on the last run", on_main(lambda m: m.action_verdict()), "routed better / tie / baseline better"),
            ("Pin a model for the next runs", on_main(lambda m: m.action_pin_model()), "run on a chosen model"),
            ("Help: every key", app.action_help, "keys, remapping"),
        ]
        if main is not None:
            for name in ["auto", *app.session.table.priority_names]:
                cmds.append((f"Priority: {name}", partial(self._set_priority, name), "route with this priority"))
        return cmds

    def _set_priority(self, name: str) -> None:
        main = self.deck._main()
        if main is not None:
            main.priority_mode = name
            main.reclassify()

    async def discover(self) -> Hits:
        for name, action, help_text in self._commands():
            yield DiscoveryHit(name, action, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), action, help=help_text)
