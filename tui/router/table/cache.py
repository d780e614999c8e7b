"""The parse cache: parsed documents of big routes files, as JSON keyed by the SHA-256 of the
file's bytes, in ``tables`` under ``settings.cache_dir()`` (``$ROUTEDECK_CACHE_DIR``, else the user cache
folder; an empty value means unset, as for every ROUTEDECK_* variable). A cached document is only used for the exact bytes
it was parsed from, and it is validated like a fresh one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tui.router import settings

# Files smaller than this parse fast enough without the cache.
CACHE_MIN_BYTES = 32 * 1024
_CACHE_KEEP = 16
_CACHE_FORMAT = 1


def _cache_dir() -> Path | None:
    try:
        return settings.table_cache_dir()
    except Exception:  # pragma: no cover - no usable cache folder: parse every time
        return None


def cache_get(digest: str) -> dict[str, Any] | None:
    folder = _cache_dir()
    if folder is None:
        return None
    try:
        obj = json.loads((folder / f"{digest}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if (
        isinstance(obj, dict)
        and obj.get("format") == _CACHE_FORMAT
        and obj.get("sha256") == digest
        and isinstance(obj.get("doc"), dict)
    ):
        return obj["doc"]
    return None


def cache_put(digest: str, doc: dict[str, Any]) -> None:
    folder = _cache_dir()
    if folder is None:
        return
    try:
        payload = json.dumps(
            {"format": _CACHE_FORMAT, "sha256": digest, "doc": doc}, ensure_ascii=False
        )
    except (TypeError, ValueError):
        return  # dates and times do not go through JSON: such files are parsed every time
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
            os.replace(tmp, folder / f"{digest}.json")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        entries = sorted(folder.glob("*.json"), key=lambda e: e.stat().st_mtime, reverse=True)
        for stale in entries[_CACHE_KEEP:]:
            stale.unlink()
    except OSError:
        pass
