"""`routedeck --web`: the TUI in a browser, for the person who started it only (see server.py)."""
