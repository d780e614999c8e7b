"""Where a routes file is read from and saved to, and how it is named in messages."""

from __future__ import annotations

import contextlib
import hashlib
import os
from importlib import resources
from pathlib import Path

ROUTES_FILENAME = "routes.toml"


def default_routes_path() -> Path:
    """The routes.toml shipped inside the package (``tui/data/routes.toml``)."""
    return Path(str(resources.files("tui") / "data" / ROUTES_FILENAME))


def resolve_routes_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The absolute path a load would read: ``path``, else ./routes.toml if it exists, else the
    packaged default. Symlinks are not resolved (a save replaces the link, not its target)."""
    if path is None:
        local = Path.cwd() / ROUTES_FILENAME
        return local if local.exists() else default_routes_path()
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def display_path(path: Path | None) -> str:
    """How a file is named in messages: relative to the current folder when inside it."""
    if path is None:
        return ROUTES_FILENAME
    with contextlib.suppress(ValueError, OSError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()



def save_target(table_path: Path | None, path: str | os.PathLike[str] | None) -> Path:
    """Where a save writes: ``path``, else the table's own path, else ./routes.toml. A table
    loaded from the packaged default is saved in the current folder, never into the package."""
    if path is not None:
        return resolve_routes_path(path)
    if table_path is None:
        return Path.cwd() / ROUTES_FILENAME
    target = Path(os.path.abspath(table_path))
    if target == Path(os.path.abspath(default_routes_path())):
        # Never edit the packaged default: a table loaded from it is saved in the current folder.
        return Path.cwd() / ROUTES_FILENAME
    return target
