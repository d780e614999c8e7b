"""A searchable list of the models a person can pick, with prices and real/simulated status.

Shared by the cell editor (pick a cell's primary or fallback) and the model picker (pin a model
for the next runs). The list holds the table's own models, every model the price library knows
for the table's providers (``Session.known_models``) and, when an Ollama server answers, its local
models. Building it prices about a thousand models, so it happens in a thread worker; asking
Ollama happens in its own worker with a short timeout, and neither can fail the screen.

Every label is a ``rich.text.Text`` of cleaned text: model names come from routes.toml, the price
library or a local server, and are never read as markup.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from tui.router.cost.pricing import is_local, price_per_mtok
from tui.router.sanitize import clean
from tui.router.types import RoutingTable, split_model_id
from tui.router.units import per_mtok

# Cells a row needs beside the model name: gap, price (22), badge, scroll bar (" (current)"
# after it may be cut where the list is narrow).
LABEL_TAIL = 2 + 22 + 6 + 2
# At most this many matches are listed (OptionList lays out every option it holds, about
# 0.15 ms each); typing narrows the rest.
MAX_SHOWN = 120


# ---------------------------------------------------------------------------------------------
# Prices and validation (plain functions: the grid and the editors use them too)
# ---------------------------------------------------------------------------------------------


def price_label(model_id: str, price: tuple[float, float] | None, table: RoutingTable) -> str:
    """``"$0.25 in / $2.00 out"`` per million tokens, ``"local"`` for a free local server,
    ``"n/a"`` when the price library does not know the model."""
    if price is None:
        return "n/a"
    if price == (0.0, 0.0) and is_local(model_id, table):
        return "local"
    return f"{per_mtok(price[0])} in / {per_mtok(price[1])} out"


def price_style(label: str) -> str:
    return {"n/a": "yellow", "local": "green"}.get(label, "")


def model_problem(model_id: str, table: RoutingTable) -> str | None:
    """Why ``model_id`` cannot be used with ``table``, or None when it can."""
    if not model_id:
        return "no model given"
    try:
        provider, _ = split_model_id(model_id)
    except ValueError:
        return f"{model_id!r} is not a model id: write it as provider/model"
    if any(ch.isspace() for ch in model_id):
        return f"{model_id!r} contains spaces: write it as provider/model"
    if provider not in table.providers:
        known = ", ".join(table.providers) or "none"
        return f"unknown provider {provider!r} in {model_id!r} (known providers: {known})"
    return None


# ---------------------------------------------------------------------------------------------
# Entries (built off the UI thread, cached for the session)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEntry:
    model: str
    price: tuple[float, float] | None


_cache_lock = threading.Lock()
_cache: dict[tuple, list[ModelEntry]] = {}


def _cache_key(table: RoutingTable) -> tuple:
    providers = tuple(sorted((n, p.price_provider or n) for n, p in table.providers.items()))
    return providers, tuple(table.models())


def build_entries(session) -> list[ModelEntry]:
    """Every model the session knows, priced. Blocking (imports the price library): call it in a
    thread. Cached per table shape, so a second editor opens at once."""
    table = session.table
    key = _cache_key(table)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    entries = [ModelEntry(m, price_per_mtok(m, table)) for m in session.known_models()]
    with _cache_lock:
        _cache[key] = entries
    return entries


def clear_model_cache() -> None:
    """Forget the priced lists built so far (the next list is built afresh)."""
    with _cache_lock:
        _cache.clear()


def _matches(model: str, terms: list[str]) -> bool:
    low = model.lower()
    return all(t in low for t in terms)


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------


class ModelList(Vertical):
    """A filter box over a list of models. Enter in the box (or on an option) chooses a model and
    posts :class:`ModelList.Chosen`; ``""`` is the "none" entry when one is offered."""

    DEFAULT_CSS = """
    ModelList { height: 1fr; border: round $primary 50%; border-title-color: $text-muted; }
    ModelList:focus-within { border: round $primary; }
    ModelList > #model-filter { margin: 0 0 0 0; }
    ModelList > #model-status { height: 1; padding: 0 1; color: $text-muted; }
    ModelList > OptionList { height: 1fr; border: none; }
    """

    BINDINGS = [
        Binding(
            "down",
            "focus_options",
            "Models",
            id="model_list_down",
            tooltip="Move from the search box into the list of models",
            show=False,
        ),
    ]

    class Chosen(Message):
        """A model was chosen (``""`` for the "none" entry)."""

        def __init__(self, model_list: ModelList, model: str) -> None:
            super().__init__()
            self.model_list = model_list
            self.model = model

        @property
        def control(self) -> ModelList:
            return self.model_list

    class Loaded(Message):
        """The full, priced list arrived (or failed to): prices shown elsewhere can be filled."""

        def __init__(self, model_list: ModelList) -> None:
            super().__init__()
            self.model_list = model_list

        @property
        def control(self) -> ModelList:
            return self.model_list

    def __init__(
        self,
        session,
        *,
        current: str | None = None,
        none_label: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.session = session
        self.current = current
        self.none_label = none_label
        self.loading_models = True
        self._entries: dict[str, ModelEntry] = {}
        # What each option index stands for: a model id, "" for none, None for a note.
        self._shown: list[str | None] = []
        self._laid_out_width = 0  # the list width the labels were last laid out for
        self.border_title = "models"

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search models (all words must match)", id="model-filter")
        yield Static(Text("loading the model list…"), id="model-status")
        yield OptionList(id="model-options")

    def on_mount(self) -> None:
        table = self.session.table
        # The table's own models at once (no price yet); the full priced list follows.
        for m in table.models():
            self._entries.setdefault(m, ModelEntry(m, None))
        self.refilter()
        self._load_entries()
        self._load_ollama()

    # -- public -------------------------------------------------------------------------------

    @property
    def filter_input(self) -> Input:
        return self.query_one("#model-filter", Input)

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#model-options", OptionList)

    @property
    def models(self) -> list[str]:
        return list(self._entries)

    @property
    def shown(self) -> list[str | None]:
        """What the options stand for, in order (model ids, "" for none, None for notes)."""
        return list(self._shown)

    def entry(self, model: str) -> ModelEntry | None:
        return self._entries.get(model)

    def set_current(self, current: str | None, none_label: str | None = None) -> None:
        self.current = current
        self.none_label = none_label
        self.refilter()

    def set_filter(self, text: str) -> None:
        self.filter_input.value = text
        self.refilter()

    # -- loading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="model-list", exit_on_error=False)
    def _load_entries(self) -> None:
        entries = build_entries(self.session)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._add_entries, entries, True)

    @work(exclusive=True, group="model-list-ollama", exit_on_error=False)
    async def _load_ollama(self) -> None:
        provider = self.session.table.providers.get("ollama")
        if provider is None:
            return
        try:
            from tui.router.providers.ollama import list_ollama_models
        except ImportError:
            return
        try:
            names = await list_ollama_models(provider.base_url or "http://localhost:11434")
        except Exception:
            return  # a local server that answers oddly must never fail the picker
        table = self.session.table
        entries = []
        for name in names:
            name = clean(str(name))
            if model_problem(name, table) is None:
                entries.append(ModelEntry(name, price_per_mtok(name, table)))
        if entries:
            self._add_entries(entries, False)

    def _add_entries(self, entries: list[ModelEntry], complete: bool) -> None:
        for e in entries:
            old = self._entries.get(e.model)
            if old is None or old.price is None:
                self._entries[e.model] = e
        if complete:
            self.loading_models = False
        self.refilter_keeping_highlight()
        if complete:
            self.post_message(self.Loaded(self))

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "model-list" and event.state == WorkerState.ERROR:
            event.stop()
            self.loading_models = False
            self.post_message(self.Loaded(self))
            self._status(
                Text(f"could not list every model: {clean(str(event.worker.error))}", "yellow")
            )

    # -- filtering ----------------------------------------------------------------------------

    @on(Input.Changed, "#model-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refilter()

    def refilter_keeping_highlight(self) -> None:
        """Refilter after new entries arrived, keeping the highlighted model highlighted."""
        ol = self.option_list
        index = ol.highlighted
        keep = self._shown[index] if index is not None and index < len(self._shown) else None
        self.refilter()
        if keep is not None and keep in self._shown:
            ol.highlighted = self._shown.index(keep)

    def refilter(self) -> None:
        table = self.session.table
        query = clean(self.filter_input.value).strip()
        terms = query.lower().split()
        matches = [m for m in self._entries if _matches(m, terms)]
        shown: list[str | None] = []
        options: list[Option] = []
        if self.none_label is not None and not terms:
            shown.append("")
            label = Text("∅ ", style="dim")
            label.append(self.none_label, style="italic")
            if not self.current:
                label.append("  (current)", style="bold")
            options.append(Option(label))
        if query and "/" in query and " " not in query and query not in self._entries:
            shown.append(query)
            label = Text("use ", style="dim")
            label.append(query, style="bold")
            label.append(" as typed", style="dim")
            options.append(Option(label))
        width = self._name_width(matches[:MAX_SHOWN])
        for m in matches[:MAX_SHOWN]:
            shown.append(m)
            options.append(Option(self._label(m, width, table)))
        if len(matches) > MAX_SHOWN:
            shown.append(None)
            options.append(
                Option(
                    Text(f"… {len(matches) - MAX_SHOWN} more: type to narrow", style="dim"),
                    disabled=True,
                )
            )
        self._shown = shown
        ol = self.option_list
        ol.set_options(options)
        if shown:
            start = shown.index(self.current) if self.current in shown and not terms else 0
            if shown[start] is not None:
                ol.highlighted = start
        loading = " (loading more…)" if self.loading_models else ""
        total = len(self._entries)
        if terms:
            self._status(Text(f"{len(matches)} of {total} models match{loading}"))
        else:
            self._status(Text(f"{total} models{loading}; type to search"))

    def _name_width(self, models: list[str]) -> int:
        """Cells for the model names: the longest shown, within what the list's width leaves
        beside the price and the real/sim badge (longer names are cut with "…")."""
        room = self.option_list.scrollable_content_region.width or 100
        longest = max((len(m) for m in models), default=0)
        return max(12, min(longest, 48, room - LABEL_TAIL))

    def on_resize(self) -> None:
        width = self.option_list.scrollable_content_region.width
        if width and width != self._laid_out_width:
            self._laid_out_width = width
            self.refilter_keeping_highlight()

    def _label(self, model: str, width: int, table: RoutingTable) -> Text:
        entry = self._entries[model]
        out = Text(no_wrap=True, overflow="ellipsis")
        name = clean(model)
        if len(name) > width:
            name = name[: width - 1] + "…"
        out.append(name.ljust(width), style="bold" if model == self.current else "")
        price = price_label(model, entry.price, table)
        if entry.price is None and self.loading_models:
            price = "…"
        out.append("  ")
        out.append(price.ljust(22), style=price_style(price) or "dim")
        simulated, _why = self.session.is_simulated(model)
        if simulated:
            out.append(" sim ", style="black on yellow")
        else:
            out.append(" real ", style="black on green")
        if model == self.current:
            out.append("  (current)", style="bold")
        return out

    def _status(self, text: Text) -> None:
        self.query_one("#model-status", Static).update(text)

    # -- choosing -----------------------------------------------------------------------------

    def action_focus_options(self) -> None:
        ol = self.option_list
        ol.focus()
        if ol.highlighted is None and ol.option_count:
            ol.highlighted = 0

    @on(Input.Submitted, "#model-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        index = self.option_list.highlighted
        if index is None and self._shown:
            index = 0
        self._choose(index)

    @on(OptionList.OptionSelected, "#model-options")
    def _option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option_index)

    def _choose(self, index: int | None) -> None:
        if index is None or not (0 <= index < len(self._shown)):
            self.app.bell()
            return
        model = self._shown[index]
        if model is None:
            return
        self.post_message(self.Chosen(self, model))
