"""The Textual UI over tui.router: ``tui.app.app.run_app(session)`` runs it."""

# The header's icon (a click opens the command palette). Textual's default, "⭘", is in neither
# DejaVu Sans Mono nor Roboto Mono: in a browser (routedeck --web) it showed as a blank. "≡" is
# in DejaVu and in the WGL4 set that Windows and macOS monospace fonts cover.
HEADER_ICON = "≡"
