"""The screens' side of the seam with the engine: a typed way to the session and the app.

Every RouteDeck screen derives from :class:`DeckScreen` (a full screen) or :class:`DeckModal`
(a dialog) and reaches the engine through ``self.session`` (the engine's
:class:`~tui.router.run.session.Session`) and the app's own state through ``self.deck``, both
typed, instead of ``self.app.session`` (untyped: ``App`` has no ``session``). What the app tells
screens arrives as messages (:mod:`tui.app.messages`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import ModalScreen, Screen, ScreenResultType

if TYPE_CHECKING:
    from tui.app.app import RouteDeckApp
    from tui.router.run.session import Session


class _DeckAccess:
    """``deck`` and ``session`` for a screen of the RouteDeck app."""

    @property
    def deck(self) -> RouteDeckApp:
        """The app this screen runs in (a :class:`~tui.app.app.RouteDeckApp`)."""
        return cast("RouteDeckApp", cast(Screen, self).app)

    @property
    def session(self) -> Session:
        """The engine: table, classifier, run log, totals."""
        return self.deck.session


class DeckScreen(_DeckAccess, Screen[ScreenResultType]):
    """A full RouteDeck screen (main, grid, history, savings)."""


class DeckModal(_DeckAccess, ModalScreen[ScreenResultType]):
    """A RouteDeck dialog over another screen (a correction, say)."""
