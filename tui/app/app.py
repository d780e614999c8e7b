"""The RouteDeck Textual app: a thin layer over tui.router's Session."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.notifications import SeverityLevel

from tui.app.commands import RouteDeckCommands
from tui.app.messages import ClassifierFailed, ClassifierReady, SaveStateChanged, TableChanged
from tui.router.run.session import Session
from tui.router.sanitize import clean
from tui.router.table.check import TableError
from tui.router.table.load import load_table
from tui.router.table.paths import default_routes_path
from tui.router.table.save import ConflictError, save_table
from tui.router.types import RoutingTable

if TYPE_CHECKING:
    from tui.app.screens.main import MainScreen


class RouteDeckApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "RouteDeck"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | {RouteDeckCommands}
    # Classes every screen gets from the terminal's size, for the layouts of small terminals
    # (80x24 is "-narrow -short", 60x20 "-narrow -tiny"; 140x45 "-wide -tall").
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-tiny"), (22, "-short"), (32, "-tall")]

    BINDINGS = [
        Binding("f1", "help", "Help", id="help", tooltip="Every key and what it does"),
        Binding("f2", "grid", "Routes", id="grid", tooltip="The routing table: edit cells, save"),
        Binding("f3", "history", "History", id="history", tooltip="Past runs from the run log"),
        Binding(
            "f5",
            "savings",
            "Savings",
            id="savings",
            tooltip="What routing saves on a workload: charts, what-if, threshold explorer",
        ),
        Binding("ctrl+s", "save_routes", "Save", id="save", tooltip="Save the routing table to routes.toml", show=False),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            id="quit",
            tooltip="Quit (asks first when the routing table has unsaved edits)",
            priority=True,
        ),
    ]

    def __init__(self, session: Session, *, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.session = session
        self.saved_table: RoutingTable = session.table
        # Why the last save failed (None after a save or reload that worked): the grid shows it.
        self.last_save_error: str | None = None
        self._keymap_overrides = keymap or {}
        self.streaming_gc = StreamingGC()

    def get_driver_class(self):
        """Textual's driver, reading bracketed pastes whole (see tui/app/paste.py)."""
        from tui.app.paste import use_paste_safe_parser

        return use_paste_safe_parser(super().get_driver_class())

    def notify(
        self,
        message: str | Text,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """A ``Text`` message (how this app marks one that holds outside text) is shown as plain
        text, cleaned of control sequences: Textual's toast parses ``str`` messages as markup and
        crashes on anything else."""
        if isinstance(message, Text):
            message, markup = clean(message.plain), False
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # -- lifecycle ------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self._keymap_overrides:
            self.set_keymap(self._keymap_overrides)
        from tui.app.screens.main import MainScreen

        self.push_screen(MainScreen())
        self.warn_about_run_log()
        # After the first frame: loading (or, the first time, training) the classifier in a
        # thread competes with the first paint for the GIL, and a person should see the app
        # at once; the editor works while the classifier loads.
        self.call_after_refresh(self.load_classifier)

    def warn_about_run_log(self) -> None:
        """Say once, and for long enough to read, that a damaged run log was moved aside and
        where it went (the engine started a fresh one and goes on)."""
        warning = getattr(self.session.runlog, "warning", None)
        if warning and warning != getattr(self, "_run_log_warned", None):
            self._run_log_warned = warning
            self.notify(Text(warning), title="run log", severity="warning", timeout=20)

    @work(thread=True, exclusive=True, group="classifier", exit_on_error=False)
    def load_classifier(self) -> None:
        try:
            self.session.load_classifier()
        except Exception as exc:  # fail open: the UI stays usable, runs go to the default route
            self.call_from_thread(self._classifier_failed, f"{type(exc).__name__}: {exc}")
            return
        self.call_from_thread(self._classifier_loaded)
        # What the first run needs, paid here rather than on the event loop when the person
        # presses run: the engine, HTTP, TLS and price data, and the widgets' lazy imports
        # (scroll bars, code highlighting for fenced blocks).
        self.session.prepare_runs()
        import textual.scrollbar  # noqa: F401

        from tui.app.widgets.answer_view import prepare

        prepare()

        settle_gc()

    def _main(self) -> MainScreen | None:
        """The main screen, wherever it is on the stack (the command palette acts on it)."""
        from tui.app.screens.main import MainScreen

        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def tell_screens(self, make: Callable[[], Message]) -> None:
        """Post a message (a new one from ``make`` for each) to every screen on the stack: each
        handles what concerns it (tui/app/messages.py)."""
        for screen in self.screen_stack:
            screen.post_message(make())

    def _classifier_loaded(self) -> None:
        self.tell_screens(ClassifierReady)

    def _classifier_failed(self, message: str) -> None:
        self.tell_screens(lambda: ClassifierFailed(message))

    # -- the routing table ----------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self.session.table != self.saved_table

    def apply_table(self, table: RoutingTable) -> None:
        """Edits apply to the next run at once, saved or not."""
        self.session.set_table(table)
        self.tell_screens(TableChanged)

    @property
    def has_changes_to_save(self) -> bool:
        """Edits not saved yet, or a table still read from the packaged default (saving it
        makes ./routes.toml, a copy a person can edit)."""
        return self.dirty or self.session.table.path is None or is_packaged_default(
            self.session.table.path
        )

    def save_routes(self, *, force: bool = False) -> str:
        """Save through the engine's atomic save: "saved", "unchanged" (nothing to save: the
        file is not touched, its .bak not rotated), "conflict" (the file changed on disk;
        nothing written) or "failed" (a dialog says why; the edits stay, unsaved)."""
        if not force and not self.has_changes_to_save:
            self.notify("no changes to save", timeout=3)
            return "unchanged"
        try:
            saved = save_table(self.session.table, force=force)
        except ConflictError:
            return "conflict"
        except (OSError, TableError) as exc:
            self.save_failed(exc)
            return "failed"
        self.last_save_error = None
        self.saved_table = saved
        self.apply_table(saved)
        self._refresh_dirty_views()
        self.notify(Text(f"saved {saved.path}"), timeout=3)
        return "saved"

    def save_failed(self, exc: Exception, what: str = "save the routing table") -> None:
        """A dialog that stays until dismissed (a toast goes unseen), and a note the grid keeps
        showing: the edits are still in the table, unsaved."""
        from tui.app.screens.confirm import Choice, ChoiceScreen

        self.last_save_error = clean(str(exc))
        self._refresh_dirty_views()
        self.push_screen(
            ChoiceScreen(
                f"Could not {what}:\n{self.last_save_error}\n\n"
                "Nothing was written. Your edits are kept (unsaved) and still apply to runs; "
                "free the folder or the disk and press ctrl+s again.",
                [Choice("ok", "Keep editing", "primary")],
                title="save failed",
            )
        )

    def _refresh_dirty_views(self) -> None:
        self.tell_screens(SaveStateChanged)

    def action_save_routes(self) -> None:
        self.save_with_conflict_check()

    def save_with_conflict_check(self, then=None) -> None:
        """Save; on success (or nothing to save) call ``then``. When the file changed on disk,
        ask: merge my edited cells onto it, overwrite it, reload it, or cancel. A failed save
        never calls ``then`` (so "Save and quit" stays, with the edits)."""
        outcome = self.save_routes()
        if outcome in ("saved", "unchanged"):
            if then:
                then()
            return
        if outcome == "failed":
            return
        from tui.app.screens.confirm import Choice, ChoiceScreen

        def decided(choice: str | None) -> None:
            if choice == "merge":
                self.merge_routes(then)
            elif choice == "overwrite":
                if self.save_routes(force=True) == "saved" and then:
                    then()
            elif choice == "reload":
                self.reload_routes()

        edited = edited_cells(self.saved_table, self.session.table)
        question = "routes.toml changed on disk since it was loaded."
        if edited:
            question += "\nYour edited cells: " + cell_list(edited)
        self.push_screen(
            ChoiceScreen(
                question,
                [
                    Choice("merge", "Merge my cells into it", "primary"),
                    Choice("overwrite", "Overwrite it", "error"),
                    Choice("reload", "Reload, drop my edits", "warning"),
                    Choice("cancel", "Cancel", "default"),
                ],
            ),
            decided,
        )

    def merge_routes(self, then=None) -> None:
        """Apply the cells edited here onto the file as it is on disk now, then save (when
        some of those cells changed on disk too, stop before saving and list them)."""
        from tui.app.screens.confirm import Choice, ChoiceScreen
        from tui.router.table.save import merge_edits

        try:
            theirs = load_table(routes_file_on_disk(self.session.table))
        except (TableError, OSError) as exc:
            self.save_failed(exc, "read routes.toml to merge my cells into it")
            return
        mine, base = self.session.table, self.saved_table
        result = merge_edits(base, mine, theirs)
        table = result.table
        if mine.classifier != base.classifier:  # the savings screen's threshold, say
            table = replace(table, classifier=mine.classifier)
        self.saved_table = theirs
        self.apply_table(table)
        self._refresh_dirty_views()
        if result.conflicts:
            self.push_screen(
                ChoiceScreen(
                    f"Merged {len(result.applied)} edited cell(s) into routes.toml as it is "
                    f"on disk: {cell_list(result.applied)}.\n"
                    f"Also changed on disk (your version kept): {cell_list(result.conflicts)}."
                    "\nNot saved yet: check them in the grid (f2), then ctrl+s.",
                    [Choice("ok", "OK", "primary")],
                    title="merged, not saved",
                )
            )
            return
        note = f"merged {len(result.applied)} cell(s): {cell_list(result.applied)}"
        self.notify(Text(note or "nothing to merge"), timeout=8)
        self.save_with_conflict_check(then)

    def reload_routes(self) -> None:
        try:
            table = load_table(routes_file_on_disk(self.session.table))
        except (TableError, OSError) as exc:
            self.notify(Text(f"could not reload: {exc}"), severity="error", timeout=10)
            return
        self.saved_table = table
        self.last_save_error = None
        self.apply_table(table)
        self.notify("routes.toml reloaded", timeout=3)

    # -- screens --------------------------------------------------------------------------

    def action_help(self) -> None:
        from tui.app.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def _show(self, screen_type: type, make) -> None:
        """Bring a screen forward: back to it if it is already open, else open a new one."""
        if isinstance(self.screen, screen_type):
            return
        if any(isinstance(s, screen_type) for s in self.screen_stack):
            while not isinstance(self.screen, screen_type):
                self.pop_screen()
            return
        self.push_screen(make())

    def action_grid(self) -> None:
        from tui.app.screens.grid import GridScreen

        self._show(GridScreen, GridScreen)

    def action_history(self) -> None:
        from tui.app.screens.history import HistoryScreen

        self._show(HistoryScreen, HistoryScreen)

    def action_savings(self) -> None:
        from tui.app.screens.savings import SavingsScreen

        self._show(SavingsScreen, SavingsScreen)

    async def action_quit(self) -> None:
        if not self.dirty:
            self.exit()
            return
        from tui.app.screens.confirm import Choice, ChoiceScreen

        def decided(choice: str | None) -> None:
            if choice == "save":
                self.save_with_conflict_check(then=self.exit)
            elif choice == "discard":
                self.exit()

        self.push_screen(
            ChoiceScreen(
                "The routing table has unsaved edits.",
                [
                    Choice("save", "Save and quit", "primary"),
                    Choice("discard", "Discard and quit", "error"),
                    Choice("cancel", "Cancel", "default"),
                ],
            ),
            decided,
        )


def is_packaged_default(path: Path) -> bool:
    return Path(os.path.abspath(path)) == Path(os.path.abspath(default_routes_path()))


def routes_file_on_disk(table: RoutingTable) -> Path:
    """The file a save of ``table`` writes (and so the one to merge with or reload): its own,
    or ./routes.toml for a table read from the packaged default once that file exists."""
    path = table.path
    if path is None or is_packaged_default(path):
        local = Path.cwd() / "routes.toml"
        if local.exists() or path is None:
            return local
    return Path(path)


def edited_cells(base: RoutingTable, mine: RoutingTable) -> list[tuple[str, str]]:
    """The cells ``mine`` changed from ``base``, in the table's order."""
    return [key for key, cell in mine.routes.items() if base.routes.get(key) != cell]


def cell_list(cells: list[tuple[str, str]], limit: int = 8) -> str:
    """"code × default, math × latency, …" (outside names, cleaned)."""
    names = [f"{clean(t)} × {clean(p)}" for t, p in cells[:limit]]
    if len(cells) > limit:
        names.append(f"and {len(cells) - limit} more")
    return ", ".join(names) or "none"


_GC_TUNED = False


def tune_gc() -> None:
    """Fewer, shorter garbage-collector pauses while answers stream. Textual allocates many
    short-lived objects per frame; with Python's default thresholds a full collection over every
    long-lived object (the table's examples, modules, widgets) came about twice a second during a
    run and paused the UI for up to 110 ms each time (tests/bench/bench_tui.py). What exists at
    start-up is frozen out of the collector's scans (again by :func:`settle_gc` once the app is
    up), young collections run less often, and runs hold full collections off
    (:class:`StreamingGC`)."""
    import gc

    global _GC_TUNED
    _GC_TUNED = True
    gc.freeze()
    gc.set_threshold(5_000, 10, 10)


def settle_gc() -> None:
    """After start-up (screens built, classifier loaded, price data imported): freeze what is
    alive, so later full collections scan only what runs create. Only where tune_gc was called
    (the real app, the benchmark), not in tests that build many apps in one process."""
    if _GC_TUNED:
        import gc

        gc.freeze()


class StreamingGC:
    """Holds full garbage collections off while answers stream, and runs one soon after.

    A full collection scans every tracked object and paused the screen 130 ms in the middle of a
    long two-pane run (bench_tui prints each collection). Young collections go on as usual, so
    memory does not pile up: what a run leaves in cycles is collected once the run is over,
    while the person reads the answers. Holds nest (a new run may start before the last one
    has wound down)."""

    HELD_THRESHOLD = 1_000_000  # young-generation collections before a full one: never, in a run

    def __init__(self) -> None:
        self._holds = 0
        self._saved: tuple[int, int, int] | None = None

    @property
    def held(self) -> bool:
        return self._holds > 0

    def hold(self) -> None:
        import gc

        if self._saved is None:  # not already held (or released and awaiting its collection)
            self._saved = gc.get_threshold()
            first, second, _ = self._saved
            gc.set_threshold(first, second, self.HELD_THRESHOLD)
        self._holds += 1

    def release(self) -> None:
        """A run is over. Full collections stay held until :meth:`collect_if_idle` (restoring
        the thresholds at once made the pent-up full collection land on the run's last frame)."""
        self._holds = max(0, self._holds - 1)

    def collect_if_idle(self) -> None:
        """The deferred full collection, then the usual thresholds (nothing while a run holds
        collections off: that run's own release schedules the next attempt)."""
        import gc

        if self._holds or self._saved is None:
            return
        gc.collect()
        gc.set_threshold(*self._saved)
        self._saved = None


def run_app(session: Session) -> int:
    from tui.app.keymap import load_keymap

    app = RouteDeckApp(session, keymap=load_keymap())
    tune_gc()  # here, not in the App: tests run many apps in one process
    app.run()
    return app.return_code or 0
