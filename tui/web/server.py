"""`routedeck --web`: the TUI served to a browser on 127.0.0.1, to the person who started it only.

Use it as the CLI does::

    from tui.web.server import WebServer
    WebServer([sys.executable, "-m", "tui.cli", "--simulate"], port=0).serve()

textual-serve runs the given command once per browser connection, its terminal carried over a
websocket, and has no authentication of its own. 127.0.0.1 is no boundary for a browser: any
page open in it can reach a loopback port, and with API keys in the environment a connection
can start paid runs or rewrite routes.toml. So this server, built on textual-serve's:

- makes a secret token for each launch (``secrets.token_urlsafe``). The page wants it as
  ``/?token=...`` (the URL printed at start), the websocket in its path, ``/ws/<token>`` (the
  page writes it there; textual-serve's script appends ``?width=..&height=..`` to that URL).
  Anything else but the static files answers 403 without it;
- refuses a websocket handshake whose Origin is not the server's own, ``http://127.0.0.1:PORT``
  (a page elsewhere cannot borrow the user's browser to drive the app);
- serves its own page (index.html here): no font, script or style from another host. The
  Roboto Mono files textual-serve ships are declared as a local web font, and a
  Content-Security-Policy keeps the browser from loading anything from elsewhere;
- keeps the access log off, so the token shows in one line only: the printed URL.

Downloads (``/download/<key>``, a screenshot taken in the app) need no token: their key is a
random id made for that one file, known only to the page that holds the websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.server import Server, to_int

HOST = "127.0.0.1"
TEMPLATE = "index.html"
# The one bundled font the page declares (variable weight), as textual-serve ships it.
FONT_FILE = "fonts/RobotoMono-VariableFont_wght.ttf"
FONT_ITALIC_FILE = "fonts/RobotoMono-Italic-VariableFont_wght.ttf"
# At a stop, open sessions are cancelled (each then tells its app process to quit and waits for
# it to exit); this bounds how long the server waits for that.
SHUTDOWN_TIMEOUT_S = 10.0


def command_line(argv: Sequence[str]) -> str:
    """The app's argv as the one shell string textual-serve runs, every word quoted."""
    if sys.platform == "win32":  # pragma: no cover - cmd.exe has its own quoting
        return subprocess.list2cmdline(list(argv))
    return shlex.join(argv)


class WebServer(Server):
    """textual-serve's Server with a per-launch token, an Origin check and a self-contained page."""

    def __init__(self, argv: Sequence[str], *, port: int = 8000, title: str = "RouteDeck",
                 open_browser: bool = True) -> None:
        super().__init__(command_line(argv), host=HOST, port=port, title=title,
                         templates_path=Path(__file__).parent.resolve())
        self.token = secrets.token_urlsafe(32)
        self.open_browser = open_browser
        self.url: str | None = None
        self._sessions: set[asyncio.Task[Any]] = set()

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- the aiohttp application ---------------------------------------------------------

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path),
                             autoescape=True)
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.get("/ws/{token}", self.handle_websocket, name="websocket"),
            web.get("/download/{key}", self.handle_download, name="download"),
            web.static("/static", self.statics_path, name="static"),
        ])
        app.on_shutdown.append(self._end_sessions)
        return app

    def token_ok(self, request: web.Request) -> bool:
        given = request.match_info.get("token") or request.query.get("token") or ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """403 unless the request carries the token (and, for the websocket, our Origin)."""
        path = request.path
        if path.startswith("/static/") or path.startswith("/download/"):
            return await handler(request)
        if not self.token_ok(request):
            raise web.HTTPForbidden(text="routedeck: open the URL that `routedeck --web` printed "
                                         "(it carries this session's token)\n")
        if path.startswith("/ws/") and request.headers.get("Origin") != self.origin:
            raise web.HTTPForbidden(text=f"routedeck: websocket refused: Origin is not {self.origin}\n")
        return await handler(request)

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        static = request.app.router["static"].url_for(filename="/")
        ws_path = request.app.router["websocket"].url_for(token=self.token)
        context = {
            "title": self.title,
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "token": self.token,
            "static_url": f"{str(static).rstrip('/')}/",
            "websocket_url": f"ws://{HOST}:{self.port}{ws_path}",
            "font_file": FONT_FILE,
            "font_italic_file": FONT_ITALIC_FILE,
        }
        response = aiohttp_jinja2.render_template(TEMPLATE, request, context)
        response.headers.update(self._page_headers())
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's session (one app process), tracked so that a stop can end it."""
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._sessions.discard(task)

    async def _end_sessions(self, app: web.Application) -> None:
        for task in list(self._sessions):
            task.cancel()

    def _page_headers(self) -> dict[str, str]:
        """Nothing from another host, no framing, no Referer (the page URL holds the token)."""
        policy = "; ".join([
            "default-src 'none'",
            "script-src 'self'",
            # textual.js adds its terminal's stylesheet as <style> elements.
            "style-src 'self' 'unsafe-inline'",
            "font-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' ws://{HOST}:{self.port}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ])
        return {
            "Content-Security-Policy": policy,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }

    # -- running -------------------------------------------------------------------------

    def serve(self, debug: bool = False) -> None:
        """Serve until ctrl+c or SIGTERM; print the URL (the only place the token is shown)."""
        self.debug = debug
        self.initialize_logging()
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        runner = web.AppRunner(await self._make_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        redirect: Path | None = None
        try:
            site = web.TCPSite(runner, HOST, self.port)
            await site.start()
            self.port = runner.addresses[0][1]  # the port chosen when asked for 0
            self.public_url = self.origin
            self.url = f"{self.origin}/?token={self.token}"
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            print(f"routedeck: open {self.url} (ctrl+c stops)", file=sys.stderr, flush=True)
            if self.open_browser and browser_available():
                redirect = redirect_file(self.url)
                threading.Thread(target=open_in_browser, args=(redirect,), daemon=True).start()
            await stop.wait()
        finally:
            await runner.cleanup()
            if redirect is not None:
                redirect.unlink(missing_ok=True)


def redirect_file(url: str) -> Path:
    """A private (0600) HTML file that sends the browser on to the URL.

    The browser is given this file's address, so the token never sits on a command line where
    other users of the machine could read it (ps). It is removed when the server stops.
    """
    fd, path = tempfile.mkstemp(prefix="routedeck-", suffix=".html")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f'<!DOCTYPE html><meta charset="utf-8">'
                f'<meta http-equiv="refresh" content="0;url={url}">'
                f'<a href="{url}">RouteDeck</a>\n')
    return Path(path)


def browser_available() -> bool:
    """False with no display on Linux: a text browser would take over this terminal, and it
    cannot run the page anyway."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_in_browser(redirect: Path) -> bool:
    """Best effort: open the redirect file in the user's browser."""
    try:
        return webbrowser.open_new_tab(redirect.as_uri())
    except webbrowser.Error:
        return False
