"""Remappable keys: ``~/.config/routedeck/keymap.toml`` maps binding ids to keys.

Example::

    run = "ctrl+r"
    grid = "f6"

Unknown ids are ignored by Textual; a broken file is reported and ignored, never fatal.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from tui.router import settings


def keymap_path() -> Path:
    return settings.keymap_path()


def load_keymap(path: Path | None = None) -> dict[str, str]:
    path = path or keymap_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"routedeck: ignoring keymap {path}: {exc}\n")
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}
