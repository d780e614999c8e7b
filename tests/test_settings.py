"""tui/router/settings.py: every ROUTEDECK_* variable, one rule (empty = unset)."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from tui.router import settings
from tui.router.log import runlog
from tui.router.providers import registry

EMPTY_VALUES = ["", "   ", "\t\n"]


def test_get_treats_missing_empty_and_blank_alike():
    for value in EMPTY_VALUES:
        assert settings.get("ROUTEDECK_X", {"ROUTEDECK_X": value}) is None
    assert settings.get("ROUTEDECK_X", {}) is None
    assert settings.get("ROUTEDECK_X", {"ROUTEDECK_X": " v "}) == "v"


def test_default_env_is_os_environ_read_at_call_time(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(settings.CACHE_DIR, "/tmp/rd-a")
    assert settings.cache_dir() == Path("/tmp/rd-a")
    monkeypatch.setenv(settings.CACHE_DIR, "/tmp/rd-b")
    assert settings.cache_dir() == Path("/tmp/rd-b")


@pytest.mark.parametrize("value", EMPTY_VALUES)
def test_cache_dir_empty_is_the_default(value: str):
    default = Path(platformdirs.user_cache_dir("routedeck", appauthor=False))
    assert settings.cache_dir({settings.CACHE_DIR: value}) == default
    assert settings.cache_dir({}) == default
    assert settings.table_cache_dir({settings.CACHE_DIR: value}) == default / "tables"


def test_cache_dir_set(tmp_path: Path):
    env = {settings.CACHE_DIR: str(tmp_path)}
    assert settings.cache_dir(env) == tmp_path
    assert settings.table_cache_dir(env) == tmp_path / "tables"
    assert settings.cache_dir({settings.CACHE_DIR: "~/rd"}) == Path.home() / "rd"


def test_log_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    default = Path(platformdirs.user_data_dir("routedeck")) / "runs.sqlite3"
    assert settings.log_path({}) == default
    assert settings.log_path({settings.LOG: ""}) == default
    assert settings.log_path({settings.LOG: str(tmp_path / "r.db")}) == tmp_path / "r.db"
    monkeypatch.setenv(settings.LOG, str(tmp_path / "x.db"))
    assert runlog.default_path() == tmp_path / "x.db"
    monkeypatch.setenv(settings.LOG, "")
    assert runlog.default_path() == default


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_simulate_true(value: str):
    assert settings.simulate({settings.SIMULATE: value})
    assert registry.simulation_forced({settings.SIMULATE: value})


@pytest.mark.parametrize("value", [None, "", " ", "0", "no", "off", "2"])
def test_simulate_false(value: str | None):
    env = {} if value is None else {settings.SIMULATE: value}
    assert not settings.simulate(env)
    assert not registry.simulation_forced(env)


@pytest.mark.parametrize(
    ("value", "speed"),
    [(None, 1.0), ("", 1.0), (" ", 1.0), ("20", 20.0), (" 2.5 ", 2.5), ("0", 1.0),
     ("-3", 1.0), ("fast", 1.0), ("nan", 1.0)],
)
def test_sim_speed(value: str | None, speed: float):
    env = {} if value is None else {settings.SIM_SPEED: value}
    assert settings.sim_speed(env) == speed


def test_bench_dir_keymap_and_real_prompts(tmp_path: Path):
    data = Path(platformdirs.user_data_dir("routedeck"))
    config = Path(platformdirs.user_config_dir("routedeck"))
    assert settings.bench_dir({settings.BENCH_DIR: ""}) == data / "bench"
    assert settings.bench_dir({settings.BENCH_DIR: str(tmp_path)}) == tmp_path
    assert settings.keymap_path({}) == config / "keymap.toml"
    assert settings.keymap_path({settings.KEYMAP: str(tmp_path / "k.toml")}) == tmp_path / "k.toml"
    assert settings.real_prompts_dir({settings.REAL_PROMPTS: " "}) is None
    assert settings.real_prompts_dir({settings.REAL_PROMPTS: str(tmp_path)}) == tmp_path


def test_names_are_every_routedeck_variable():
    assert len(set(settings.NAMES)) == len(settings.NAMES)
    assert all(name.startswith("ROUTEDECK_") for name in settings.NAMES)
