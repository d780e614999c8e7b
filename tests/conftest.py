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
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
