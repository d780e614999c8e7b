"""Settings every test runs with: private folders, and no way to reach a real provider.

Each test gets a run log (``ROUTEDECK_LOG``) in its own temporary folder, and every test shares one
temporary cache folder (``ROUTEDECK_CACHE_DIR``) for the session, so a table's classifier is trained
once per test session rather than once per test, and the user's cache is never read or written.
Modules that need a cache of their own (to test the cache itself) still set theirs: their autouse
fixtures run after this one.

Keys (``*_API_KEY``) and base-URL overrides (``*_BASE_URL``) are removed from the environment, as
are ``ROUTEDECK_SIMULATE`` and ``ROUTEDECK_SIM_SPEED``: a model without a key is simulated, and a
test that wants a real protocol sets a key and points the provider at the loopback fake server
itself (``monkeypatch.setenv``), so the user's shell never changes what a test does.

The TUI test modules (tests/test_tui_*.py) share the fixtures below the autouse one: a copy of
the packaged table (``routes_file``), an app factory (``make_app``), OpenAI models streaming from
the loopback fake server (``openai_on_server``), and two that a module opts into with
``pytestmark = pytest.mark.usefixtures(...)``: ``close_shared_http_client`` and
``module_private_folders``. They import the app only when used, so a module that never builds it
does not load Textual. Their plain helpers (Pilot, screen text) are in tests/tui_helpers.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fakeserver import FakeServer, fake_server  # noqa: F401  (fake_server is a fixture)

if TYPE_CHECKING:
    from tui.app.app import RouteDeckApp

_CLEARED_SUFFIXES = ("_API_KEY", "_BASE_URL")
_CLEARED_NAMES = ("ROUTEDECK_SIMULATE", "ROUTEDECK_SIM_SPEED")


@pytest.fixture(scope="session")
def shared_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One temporary cache folder for the whole test session (trained classifiers, parsed tables)."""
    return tmp_path_factory.mktemp("routedeck-cache")


@pytest.fixture(autouse=True)
def _hermetic_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_cache_dir: Path
) -> None:
    monkeypatch.setenv("ROUTEDECK_CACHE_DIR", str(shared_cache_dir))
    monkeypatch.setenv("ROUTEDECK_LOG", str(tmp_path / "routedeck-env-runs.sqlite3"))
    for name in list(os.environ):
        if name.upper().endswith(_CLEARED_SUFFIXES) or name in _CLEARED_NAMES:
            monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------------------
# Shared by the TUI test modules
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    """A copy of the packaged routes.toml in the test's temporary folder."""
    from tui.router.table.paths import default_routes_path

    target = tmp_path / "routes.toml"
    shutil.copyfile(default_routes_path(), target)
    return target


@pytest.fixture
def make_app(routes_file: Path, tmp_path: Path) -> Iterator[Callable[..., RouteDeckApp]]:
    """``make_app(routes=None, env=None)``: the app on a Session over a temporary copy of the
    table and a temporary run log. ``env=None`` reads keys from os.environ, as the CLI does."""
    from tui.app.app import RouteDeckApp
    from tui.router.log.runlog import RunLog
    from tui.router.run.session import Session
    from tui.router.table.load import load_table

    logs: list[RunLog] = []

    def make(routes: Path | None = None, env: dict[str, str] | None = None) -> RouteDeckApp:
        log = RunLog(tmp_path / f"runs-{len(logs)}.sqlite3")
        logs.append(log)
        kwargs = {} if env is None else {"env": env}
        session = Session(table=load_table(routes or routes_file), runlog=log, **kwargs)
        return RouteDeckApp(session)

    yield make
    for log in logs:
        log.close()


@pytest.fixture
async def close_shared_http_client():
    """Real clients share one httpx client per event loop: close it with the test's loop."""
    from tui.router.providers.registry import aclose_shared_http_client

    yield
    await aclose_shared_http_client()


@pytest.fixture
def openai_on_server(
    monkeypatch: pytest.MonkeyPatch,
    fake_server: FakeServer,  # noqa: F811
) -> FakeServer:
    """OpenAI models (the code/default primary and the baseline) stream from the fake server,
    with the key ``tui_helpers.OPENAI_KEY``."""
    from tui_helpers import OPENAI_KEY

    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_url)
    return fake_server


@pytest.fixture(scope="module")
def module_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One temporary cache folder per module: the classifier is trained once, not per test."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def module_private_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module_cache_dir: Path
) -> None:
    """The module's own cache folder instead of the session's, and a run log of the test's."""
    monkeypatch.setenv("ROUTEDECK_CACHE_DIR", str(module_cache_dir))
    monkeypatch.setenv("ROUTEDECK_LOG", str(tmp_path / "env-runs.sqlite3"))
