"""The key footer, ordered for small terminals: help and the screens first.

Textual's Footer lists the focused widget's keys, then the screen's, then the app's, and cuts
what does not fit: at 80 columns help (f1) and the screens (f2, f3, f5) fell off the end.
:class:`KeyFooter` shows them first, then the rest in their usual order, and packs the keys
closer together on narrow terminals, and leaves out the keys that do not fit whole. Every key stays in the help screen (f1) and the command
palette (ctrl+p).
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Actions shown first, in this order (help, the screens, then running the prompt).
FIRST_ACTIONS = ("help", "grid", "history", "savings", "submit", "run")
# Footers narrower than this pack their keys closer.
COMPACT_BELOW = 120


def footer_order(bindings: list) -> list:
    """``bindings`` (``(binding, enabled, tooltip)``) with FIRST_ACTIONS first, one per action."""
    by_action: dict[str, tuple] = {}
    for item in bindings:
        by_action.setdefault(item[0].action, item)
    items = list(by_action.values())

    def rank(item: tuple) -> int:
        action = item[0].action
        return FIRST_ACTIONS.index(action) if action in FIRST_ACTIONS else len(FIRST_ACTIONS)

    return sorted(items, key=rank)  # stable: the others keep their order


class KeyFooter(Footer):
    """Help and the screens first; only the keys that fit whole (the rest are in f1's list)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("compact", self.app.size.width < COMPACT_BELOW)
        super().__init__(**kwargs)
        self._laid_out_for = 0

    def _key_width(self, binding) -> int:
        """Cells a FooterKey takes (its padding, and its margin when packed)."""
        text = len(self.app.get_key_display(binding)) + len(binding.description)
        return text + (2 if self.compact else 3)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        shown = [
            (binding, enabled, tooltip)
            for (_, binding, enabled, tooltip) in active.values()
            if binding.show
        ]
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        room = self.app.size.width
        if palette is not None:
            # Its left border (and, packed, the right padding KeyFooter's CSS gives it).
            room -= self._key_width(palette[1]) + (1 if self.compact else 0)
        self._laid_out_for = self.app.size.width
        for binding, enabled, tooltip in footer_order(shown):
            room -= self._key_width(binding)
            if room < 0:
                break
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip or binding.tooltip or binding.description,
            ).data_bind(compact=Footer.compact)
        if palette is not None:
            _node, binding, enabled, _tooltip = palette
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < COMPACT_BELOW
        if self._bindings_ready and self._laid_out_for != self.app.size.width:
            self.call_after_refresh(self.recompose)
