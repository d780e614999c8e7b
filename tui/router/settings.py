"""Every ``ROUTEDECK_*`` environment variable, read in one place and by one rule.

Each setting is a small function taking an optional environment mapping (default
``os.environ``, read at call time, so tests can pass a dict or monkeypatch the environment).

The one rule for a value: **empty is unset**. A variable that is missing, empty or only
whitespace gives the default; any other value is used with surrounding whitespace stripped.
(Before this module, an empty ``ROUTEDECK_CACHE_DIR`` meant "the default folder" to the
classifier and "no cache" to the table parser.)

=========================  ===================================================  ===================
variable                   meaning                                              function
=========================  ===================================================  ===================
``ROUTEDECK_CACHE_DIR``    cache folder (trained classifier, parsed tables)     :func:`cache_dir`,
                                                                                :func:`table_cache_dir`
``ROUTEDECK_LOG``          the run log file                                     :func:`log_path`
``ROUTEDECK_SIMULATE``     ``1``/``true``/``yes``/``on``: every model simulated :func:`simulate`
``ROUTEDECK_SIM_SPEED``    simulated models N times faster (N > 0)              :func:`sim_speed`
``ROUTEDECK_BENCH_DIR``    where ``routedeck bench`` keeps its journals         :func:`bench_dir`
``ROUTEDECK_KEYMAP``       the TUI's key map file                               :func:`keymap_path`
``ROUTEDECK_REAL_PROMPTS`` a folder of real prompts for the benchmarks          :func:`real_prompts_dir`
=========================  ===================================================  ===================

Default folders come from ``platformdirs`` (imported only when a default is needed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "APP",
    "BENCH_DIR",
    "CACHE_DIR",
    "KEYMAP",
    "LOG",
    "LOG_FILE_NAME",
    "NAMES",
    "REAL_PROMPTS",
    "SIMULATE",
    "SIM_SPEED",
    "bench_dir",
    "cache_dir",
    "get",
    "keymap_path",
    "log_path",
    "real_prompts_dir",
    "sim_speed",
    "simulate",
    "table_cache_dir",
]

APP = "routedeck"

CACHE_DIR = "ROUTEDECK_CACHE_DIR"
LOG = "ROUTEDECK_LOG"
SIMULATE = "ROUTEDECK_SIMULATE"
SIM_SPEED = "ROUTEDECK_SIM_SPEED"
BENCH_DIR = "ROUTEDECK_BENCH_DIR"
KEYMAP = "ROUTEDECK_KEYMAP"
REAL_PROMPTS = "ROUTEDECK_REAL_PROMPTS"
NAMES: tuple[str, ...] = (CACHE_DIR, LOG, SIMULATE, SIM_SPEED, BENCH_DIR, KEYMAP, REAL_PROMPTS)

LOG_FILE_NAME = "runs.sqlite3"
_TRUE = frozenset({"1", "true", "yes", "on"})


def get(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The variable's value stripped, or None when it is missing, empty or only whitespace."""
    value = (os.environ if env is None else env).get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$ROUTEDECK_CACHE_DIR``, else the user's cache folder for routedeck."""
    value = get(CACHE_DIR, env)
    if value is not None:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def table_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where parsed routing tables are cached: ``tables`` in :func:`cache_dir`."""
    return cache_dir(env) / "tables"


def log_path(env: Mapping[str, str] | None = None) -> Path:
    """``$ROUTEDECK_LOG``, else ``runs.sqlite3`` in the user's data folder."""
    value = get(LOG, env)
    if value is not None:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP)) / LOG_FILE_NAME


def simulate(env: Mapping[str, str] | None = None) -> bool:
    """``ROUTEDECK_SIMULATE`` is 1, true, yes or on (any case): every model is simulated."""
    value = get(SIMULATE, env)
    return value is not None and value.lower() in _TRUE


def sim_speed(env: Mapping[str, str] | None = None) -> float:
    """``ROUTEDECK_SIM_SPEED`` as a factor > 0; 1.0 when unset, unreadable or not positive."""
    value = get(SIM_SPEED, env)
    if value is None:
        return 1.0
    try:
        speed = float(value)
    except ValueError:
        return 1.0
    return speed if speed > 0 else 1.0  # also rejects nan ("nan" > 0 is false)


def bench_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$ROUTEDECK_BENCH_DIR``, else ``bench`` in the user's data folder."""
    value = get(BENCH_DIR, env)
    if value is not None:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP)) / "bench"


def keymap_path(env: Mapping[str, str] | None = None) -> Path:
    """``$ROUTEDECK_KEYMAP``, else ``keymap.toml`` in the user's config folder."""
    value = get(KEYMAP, env)
    if value is not None:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP)) / "keymap.toml"


def real_prompts_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """``$ROUTEDECK_REAL_PROMPTS`` (the benchmarks' folder of real prompts), None when unset."""
    value = get(REAL_PROMPTS, env)
    return Path(value).expanduser() if value is not None else None
