"""`routedeck --web` served for real: a subprocess on a free loopback port, driven over HTTP and
its websocket (issue 20).

Each server is ``python -m tui.cli --web --port 0 --no-browser ...`` started by the test; the URL
it prints carries the launch's token. The checks: the page and the websocket answer 403 without
the token, a websocket handshake from another Origin is refused, the printed URL works (page
200, websocket 101 and the app's screen), the token is printed once and logged nowhere else,
the page loads nothing from another host, and the TUI options reach the app process: one
simulated run is driven through the websocket (keys in, screen out) and the run log it lands in
is checked, for ``--log PATH`` and for ``--no-log``.

Skipped when textual-serve is not installed (it comes with the ``test`` and ``web`` extras).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip(
    "textual_serve", reason="textual-serve is not installed: pip install -e '.[test]' (or '.[web]')"
)
import aiohttp  # noqa: E402  (comes with textual-serve)

from tui.cli import (  # noqa: E402
    WEB_FLAG_OPTIONS,
    WEB_OWN_OPTIONS,
    WEB_PATH_OPTIONS,
    build_parser,
    web_app_argv,
)
from tui.web.server import command_line  # noqa: E402

URL_LINE = re.compile(r"routedeck: open (http://127\.0\.0\.1:(\d+)/\?token=([\w-]+))")
ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
# A guard against a hung subprocess, not a measurement: nothing is asserted on time.
GUARD_S = 90.0


# ---------------------------------------------------------------------------------------------
# The options the app process gets (no server needed)
# ---------------------------------------------------------------------------------------------


def test_web_app_argv_passes_every_tui_option(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    given = parser.parse_args(["--web", "--port", "0", "--routes", "my routes.toml",
                               "--simulate", "--log", "logs/runs.sqlite3", "--no-log"])
    argv = web_app_argv(given)
    assert argv[:3] == [sys.executable, "-m", "tui.cli"]
    got = parser.parse_args(argv[3:])
    assert got.routes == str(tmp_path / "my routes.toml")
    assert got.log == str(tmp_path / "logs" / "runs.sqlite3")
    assert got.simulate and got.no_log and not got.web and got.command is None
    # Every top-level option is either the TUI's (and passed on) or --web's own: a new TUI
    # option that is not added to the lists in tui/cli/entry.py fails here.
    dests = {a.dest for a in parser._actions if a.option_strings and a.dest != "help"}
    assert dests == set(WEB_PATH_OPTIONS) | set(WEB_FLAG_OPTIONS) | set(WEB_OWN_OPTIONS)


def test_web_app_argv_leaves_out_what_was_not_given() -> None:
    argv = web_app_argv(build_parser().parse_args(["--web"]))
    assert argv == [sys.executable, "-m", "tui.cli"]


def test_command_line_survives_the_shell(tmp_path: Path) -> None:
    """textual-serve runs one shell string: a hostile path reaches the app as one word."""
    marker = tmp_path / "ran"
    word = f"a b; touch {marker} $(touch {marker}) `touch {marker}` 'q\"\n"
    argv = [sys.executable, "-c", "import sys; sys.stdout.write(sys.argv[1])", word]
    assert shlex.split(command_line(argv)) == argv
    out = subprocess.run(["/bin/sh", "-c", command_line(argv)], capture_output=True, text=True,
                         timeout=GUARD_S, check=True).stdout
    assert out == word
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# A real server
# ---------------------------------------------------------------------------------------------


@dataclass
class Served:
    """One `routedeck --web` subprocess and everything it printed."""

    proc: subprocess.Popen[str]
    url: str = ""
    port: int = 0
    token: str = ""
    output: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, token: str | None = None) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{self.token if token is None else token}"

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if (m := URL_LINE.search(line)) and not self.ready.is_set():
                self.url, self.port, self.token = m.group(1), int(m.group(2)), m.group(3)
                self.ready.set()
        self.ready.set()

    def stop(self) -> str:
        """SIGTERM, as ctrl+c would; returns everything the server printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=GUARD_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return "".join(self.output)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """``serve(*options)``: start `routedeck --web --port 0 --no-browser *options` in tmp_path
    (the conftest points ROUTEDECK_LOG and ROUTEDECK_CACHE_DIR at private folders)."""
    started: list[Served] = []

    def start(*options: str, sim_speed: str = "40") -> Served:
        import os

        env = dict(os.environ, ROUTEDECK_SIM_SPEED=sim_speed)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "--web", "--port", "0", "--no-browser", *options],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        served = Served(proc)
        started.append(served)
        threading.Thread(target=served.read, daemon=True).start()
        assert served.ready.wait(GUARD_S) and served.url, "".join(served.output)
        return served

    yield start
    for served in started:
        served.stop()


async def handshake_status(url: str, origin: str | None) -> int:
    """The status a websocket handshake gets (101 when accepted)."""
    headers = {"Origin": origin} if origin is not None else {}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers, autoping=False) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def get(url: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text(errors="replace"), dict(response.headers)


async def test_page_without_the_token_is_refused(serve) -> None:
    served = serve()
    for url in (f"{served.origin}/", f"{served.origin}/?token=", f"{served.origin}/?token=nope",
                f"{served.origin}/?token={served.token[:-1]}",
                f"{served.origin}/?token={served.token}x", f"{served.origin}/ws"):
        status, body, _ = await get(url)
        assert status == 403, url
        assert served.token not in body


async def test_websocket_without_the_token_is_refused(serve) -> None:
    served = serve()
    for url in (f"ws://127.0.0.1:{served.port}/ws", served.ws_url(""), served.ws_url("nope"),
                served.ws_url(served.token[:-1]), served.ws_url(served.token.upper())):
        assert await handshake_status(url, served.origin) == 403, url


async def test_websocket_from_another_origin_is_refused(serve) -> None:
    served = serve()
    for origin in ("http://evil.example", f"http://evil.example:{served.port}",
                   f"https://127.0.0.1:{served.port}", "http://127.0.0.1", "null", None):
        assert await handshake_status(served.ws_url(), origin) == 403, origin


async def test_printed_url_serves_the_page_and_the_app(serve) -> None:
    served = serve("--simulate")
    status, html, headers = await get(served.url)
    assert status == 200
    assert f'data-session-websocket-url="{served.ws_url()}"' in html
    assert headers["Referrer-Policy"] == "no-referrer"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(served.ws_url() + "?width=100&height=30",
                                   headers={"Origin": served.origin}) as ws:
            screen = Screen(ws)
            await screen.wait_for("ctrl+j runs the prompt")
            await ws.send_json(["stdin", "\x11"])  # ctrl+q: the app quits, the socket closes
            await screen.wait_closed()


async def test_page_references_no_outside_host(serve) -> None:
    served = serve()
    status, html, headers = await get(served.url)
    assert status == 200
    assert "googleapis" not in html and "gstatic" not in html
    for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"'<>)]+", html, flags=re.I):
        assert url.startswith((f"{served.origin}/", f"ws://127.0.0.1:{served.port}/")), url
    # Everything the page links to comes from this server, and nothing those files pull in
    # comes from elsewhere (the stylesheet's url()s, the fonts).
    linked = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert linked and all(u.startswith("/static/") or u == "data:," for u in linked), linked
    for path in linked:
        if path.endswith(".css"):
            _, css, _ = await get(served.origin + path)
            assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)
        if path.startswith("/static/"):
            assert (await get(served.origin + path))[0] == 200, path
    # And the browser is told to load nothing from anywhere else.
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert re.findall(r"https?://", policy) == []


async def test_token_is_printed_once_and_logged_nowhere_else(serve) -> None:
    served = serve("--simulate")
    await get(f"{served.origin}/")
    await get(served.url)
    await get(f"{served.origin}/static/css/xterm.css")
    await handshake_status(served.ws_url(), "http://evil.example")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(served.ws_url(), headers={"Origin": served.origin}) as ws:
            await Screen(ws).wait_for("ctrl+j runs the prompt")
    output = served.stop()
    assert served.proc.returncode == 0, output
    assert output.count(served.token) == 1, output
    assert [line for line in output.splitlines() if served.token in line] == [
        f"routedeck: open {served.url} (ctrl+c stops)"
    ]


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        pytest.skip("needs Linux's /proc to see the app processes")
    return [int(p) for p in path.read_text().split()]


async def test_stopping_the_server_ends_its_sessions(serve) -> None:
    """ctrl+c with a browser still connected: the app process behind it is ended, not orphaned."""
    served = serve("--simulate")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(served.ws_url(), headers={"Origin": served.origin}) as ws:
            screen = Screen(ws)
            await screen.wait_for("ctrl+j runs the prompt")
            apps = children(served.proc.pid)
            assert len(apps) == 1
            served.proc.send_signal(signal.SIGINT)
            await screen.wait_closed()
    output = served.stop()
    assert served.proc.returncode == 0, output
    assert not Path(f"/proc/{apps[0]}").exists()


# ---------------------------------------------------------------------------------------------
# The TUI's options in the browser: one run driven through the websocket
# ---------------------------------------------------------------------------------------------


class Screen:
    """The app's terminal output as text (escape sequences dropped), read from the websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.text = ""

    async def _read_one(self) -> bool:
        message = await self.ws.receive()
        if message.type == aiohttp.WSMsgType.BINARY:
            self.text += ANSI.sub("", message.data.decode("utf-8", "replace"))
        return message.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.ERROR)

    async def wait_for(self, words: str) -> None:
        async def until() -> None:
            while words not in self.text:
                assert await self._read_one(), f"socket closed before {words!r}: {self.text[-2000:]}"

        await asyncio.wait_for(until(), GUARD_S)

    async def wait_closed(self) -> None:
        async def until() -> None:
            while await self._read_one():
                pass

        await asyncio.wait_for(until(), GUARD_S)


async def run_once_in_the_browser(served: Served) -> str:
    """Type a prompt, ctrl+j, wait for the session line to count the run, then ctrl+q."""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(served.ws_url() + "?width=120&height=40",
                                   headers={"Origin": served.origin}) as ws:
            screen = Screen(ws)
            await screen.wait_for("ctrl+j runs the prompt")
            await ws.send_json(["stdin", "write a haiku about routers"])
            await screen.wait_for("runner-up")  # classified: the classifier is loaded
            await ws.send_json(["stdin", "\n"])  # ctrl+j, as a terminal sends it
            await screen.wait_for("session: 1 run")
            await ws.send_json(["stdin", "\x11"])  # ctrl+q; the process exits, the socket closes
            await screen.wait_closed()
            return screen.text


def rows(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        db.close()


async def test_log_and_routes_reach_the_browser_session(serve, tmp_path: Path) -> None:
    from tui.router.table.paths import default_routes_path

    env_log = tmp_path / "routedeck-env-runs.sqlite3"  # ROUTEDECK_LOG, set by the conftest
    shutil.copyfile(default_routes_path(), tmp_path / "my routes.toml")
    served = serve("--simulate", "--routes", "my routes.toml", "--log", "chosen/runs.sqlite3")
    text = await run_once_in_the_browser(served)
    served.stop()
    assert rows(tmp_path / "chosen" / "runs.sqlite3") == 1
    assert not env_log.exists()
    assert f"{tmp_path / 'my routes.toml'}" in text  # the header names the table in use


async def test_no_log_reaches_the_browser_session(serve, tmp_path: Path) -> None:
    env_log = tmp_path / "routedeck-env-runs.sqlite3"
    served = serve("--simulate", "--no-log")
    text = await run_once_in_the_browser(served)
    served.stop()
    assert "SIMULATED" in text
    assert not env_log.exists()
    assert list(tmp_path.rglob("*.sqlite3*")) == []
