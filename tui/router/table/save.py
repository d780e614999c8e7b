"""Saving a routing table: its TOML document, the save itself, and merging edits.

Saving rebuilds the TOML document from ``table.raw`` (so keys this program does not know stay where
they were) updated with the table's known fields, validates it, refuses to overwrite a file that
changed on disk since it was loaded, keeps the previous file as ``<name>.bak`` and replaces the
target atomically (temporary file in the same folder, fsync, ``os.replace``). A symlinked target is
replaced by a regular file: the save never writes through the link into the packaged default.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w

from tui.router.table.cache import CACHE_MIN_BYTES, cache_put
from tui.router.table.check import Problem, TableError
from tui.router.table.load import build_table
from tui.router.table.paths import display_path, save_target, sha256_hex
from tui.router.types import (
    DEFAULT_JUDGE_INSTRUCTIONS,
    ClassifierSettings,
    JudgeSettings,
    RoutingTable,
    Timeouts,
)


class ConflictError(RuntimeError):
    """The file on disk changed since the table was loaded (or is another file); not overwritten."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(message)





def _same(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and type(a) is not dict and a == b


def _merge(old: Any, updates: dict[str, Any], soft: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of ``old`` with ``updates`` applied in place. A None update deletes the key; an
    empty ``soft`` update is not added when the key was absent; an equal value keeps its old
    spelling (10 stays 10 rather than becoming 10.0)."""
    new = dict(old) if isinstance(old, dict) else {}
    for k, v in updates.items():
        if v is None:
            new.pop(k, None)
        elif k in soft and not v and k not in new:
            continue
        elif not (k in new and _same(new[k], v)):
            new[k] = v
    return new


def _section(old: Any, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A name -> table section: entries keep their old places, documentation strings stay,
    entries that are gone are dropped and new ones are appended."""
    new: dict[str, Any] = {}
    for k, v in old.items() if isinstance(old, dict) else ():
        if k in entries:
            new[k] = entries[k]
        elif not isinstance(v, dict):
            new[k] = v
    for k, v in entries.items():
        new.setdefault(k, v)
    return new


def _sub(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _to_doc(table: RoutingTable) -> dict[str, Any]:
    """The TOML document of ``table``: ``table.raw`` updated with the table's known fields."""
    raw = table.raw if isinstance(table.raw, dict) else {}
    sections: dict[str, Any] = {}
    sections["baseline"] = _merge(
        raw.get("baseline"), {"model": table.baseline.model, "fallback": table.baseline.fallback}
    )
    cl = table.classifier
    if "classifier" in raw or cl != ClassifierSettings():
        sections["classifier"] = _merge(
            raw.get("classifier"),
            {
                "kind": cl.kind,
                "threshold": cl.threshold,
                "uncertain_route": cl.uncertain_route,
                "llm_model": cl.llm_model,
            },
        )
    jd = table.judge
    if "judge" in raw or jd != JudgeSettings():
        # The default instructions are written only when the file had some (or they changed).
        had = isinstance(raw.get("judge"), dict) and "instructions" in raw["judge"]
        keep = had or jd.instructions != DEFAULT_JUDGE_INSTRUCTIONS
        sections["judge"] = _merge(
            raw.get("judge"),
            {
                "model": jd.model,
                "fallback": jd.fallback,
                "auto": jd.auto,
                "instructions": jd.instructions if keep else None,
            },
            soft=("auto",),
        )
    to = table.timeouts
    if "timeouts" in raw or to != Timeouts():
        # "total" is written when the file has it or it differs from the default, so a file
        # from before it existed is not rewritten just to add it.
        has_total = isinstance(raw.get("timeouts"), dict) and "total" in raw["timeouts"]
        sections["timeouts"] = _merge(
            raw.get("timeouts"),
            {
                "connect": to.connect,
                "first_token": to.first_token,
                "idle": to.idle,
                "total": to.total if has_total or to.total != Timeouts().total else None,
                "max_retries": to.max_retries,
                "max_retry_wait": to.max_retry_wait,
                # Written when the file has it or it differs from the default (as "total").
                "classifier": to.classifier
                if _sub(raw, "timeouts", "classifier") is not None
                or to.classifier != Timeouts().classifier
                else None,
            },
        )
    sections["priorities"] = _section(
        raw.get("priorities"),
        {
            name: _merge(
                _sub(raw, "priorities", name),
                {"description": pr.description, "cues": list(pr.cues)},
                soft=("description", "cues"),
            )
            for name, pr in table.priorities.items()
        },
    )
    sections["providers"] = _section(
        raw.get("providers"),
        {
            name: _merge(
                _sub(raw, "providers", name),
                {
                    "kind": pv.kind,
                    "base_url": pv.base_url,
                    "api_key_env": pv.api_key_env,
                    "price_provider": pv.price_provider,
                },
                soft=("base_url",),
            )
            for name, pv in table.providers.items()
        },
    )
    if "profiles" in raw or table.profiles:
        sections["profiles"] = _section(
            raw.get("profiles"),
            {
                model_id: _merge(
                    _sub(raw, "profiles", model_id),
                    {"ttft_ms": pf.ttft_ms, "tokens_per_s": pf.tokens_per_s},
                )
                for model_id, pf in table.profiles.items()
            },
        )
    by_task: dict[str, dict[str, dict[str, Any]]] = {}
    for (tname, pname), cell in table.routes.items():
        by_task.setdefault(tname, {})[pname] = _merge(
            _sub(raw, "routes", tname, pname),
            {
                "primary": cell.primary,
                "fallback": cell.fallback,
                "hedge_after_ms": cell.hedge_after_ms,
            },
        )
    sections["routes"] = _section(
        raw.get("routes"),
        {t: _section(_sub(raw, "routes", t), cells) for t, cells in by_task.items()},
    )
    sections["tasks"] = _section(
        raw.get("tasks"),
        {
            name: _merge(
                _sub(raw, "tasks", name),
                {
                    "description": t.description,
                    "rules": list(t.rules),
                    "vocabulary": list(t.vocabulary),
                    "examples": list(t.examples),
                },
                soft=("description", "rules", "vocabulary"),
            )
            for name, t in table.tasks.items()
        },
    )
    doc: dict[str, Any] = {}
    for k, v in raw.items():
        doc[k] = sections.pop(k) if k in sections else v
    doc.update(sections)
    return doc


def _render(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The TOML text of ``doc`` and the document that text parses back to.

    Multi-line strings read best, but tomli-w writes a carriage return inside one as a plain
    line break; when the text does not parse back to the same document, plain strings are used.
    """
    text = tomli_w.dumps(doc, multiline_strings=True)
    parsed = tomllib.loads(text)
    if parsed != doc:
        text = tomli_w.dumps(doc, multiline_strings=False)
        parsed = tomllib.loads(text)
    return text, parsed


def dumps_table(table: RoutingTable) -> str:
    """The TOML text a save of ``table`` would write."""
    return _render(_to_doc(table))[0]


@dataclass(frozen=True)
class SaveResult:
    """What :func:`save_table_result` did: ``table`` as saved (or as already on disk);
    ``written`` is False when the file already held this table, so nothing was written and no
    ``.bak`` was rotated ("no changes"); ``removed_temp_files`` counts leftovers of interrupted
    saves cleaned up on the way."""

    table: RoutingTable
    written: bool
    path: Path
    removed_temp_files: int = 0


def save_table(
    table: RoutingTable, path: str | os.PathLike[str] | None = None, *, force: bool = False
) -> RoutingTable:
    """Write ``table`` atomically and return it as saved (new ``path``, ``fingerprint``, ``raw``).

    :func:`save_table_result` does the work and also says whether anything was written.
    """
    return save_table_result(table, path, force=force).table


def save_table_result(
    table: RoutingTable, path: str | os.PathLike[str] | None = None, *, force: bool = False
) -> SaveResult:
    """Write ``table`` atomically; a :class:`SaveResult`.

    The target is ``path``, else ``table.path``, else ./routes.toml; a table loaded from the
    packaged default is saved to ./routes.toml, never into the package. The table is validated
    first (:class:`TableError`, nothing written). If the target exists and is not the file the
    table was loaded from, unchanged, :class:`ConflictError` is raised unless ``force``. The old
    file is kept as ``<name>.bak``. A symlink at the target is replaced by a regular file.

    Re-reading the file, comparing its fingerprint and replacing it happen under an exclusive
    lock on ``.<name>.lock`` beside it, so of two processes saving at once one wins and the
    other gets :class:`ConflictError` (nothing is lost silently). Under that lock, temporary
    files that killed saves left beside the target are removed. When the file on disk already
    holds this table (the same document; with ``force``, the same bytes), nothing is written
    and ``written`` is False.
    """
    target = save_target(table.path, path)
    label = display_path(target)
    text, parsed = _render(_to_doc(table))
    data = text.encode("utf-8")
    digest = sha256_hex(data)
    new_table = build_table(parsed, path=target, text=None, fingerprint=digest, label=label)

    with _save_lock(target, label):
        removed = _remove_stale_temps(target)
        old: bytes | None = target.read_bytes() if target.exists() else None
        if old is not None and not force:
            _check_unchanged(table, target, old, label)
        if old is not None and (old == data if force else _same_document(old, data, parsed)):
            on_disk = replace(new_table, fingerprint=sha256_hex(old))
            return SaveResult(on_disk, False, target, removed)
        if old is not None:
            try:
                mode = target.stat().st_mode & 0o7777
            except OSError:
                mode = 0o644
            _atomic_write(target.with_name(target.name + ".bak"), old, mode)
        else:
            mode = 0o644
        _atomic_write(target, data, mode)
    if len(data) >= CACHE_MIN_BYTES:
        cache_put(digest, new_table.raw)
    return SaveResult(new_table, True, target, removed)


def _check_unchanged(table: RoutingTable, target: Path, old: bytes, label: str) -> None:
    same_file = table.path is not None and Path(os.path.abspath(table.path)) == target
    if not same_file:
        raise ConflictError(
            target,
            f"{label} already exists and is not the file this table was loaded "
            "from; save with force to overwrite it",
        )
    if table.fingerprint is None or sha256_hex(old) != table.fingerprint:
        raise ConflictError(
            target,
            f"{label} changed on disk since it was loaded; reload it, or save "
            "with force to overwrite the changes",
        )


def _same_document(old: bytes, data: bytes, parsed: dict[str, Any]) -> bool:
    """The file's bytes say the same as what a save would write (same bytes, or the same TOML
    document: a hand-written file saved with no edit is not rewritten, its comments stay)."""
    if old == data:
        return True
    try:
        return tomllib.loads(old.decode("utf-8").removeprefix("\ufeff")) == parsed
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


# How long a save waits for another process's save to finish before reporting a conflict.
SAVE_LOCK_WAIT_S = 10.0


@contextlib.contextmanager
def _save_lock(target: Path, label: str) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.lock`` beside ``target`` (fcntl.flock; released by
    the kernel when the process dies, so a killed save never leaves it held). Where no lock
    file can be made (a read-only folder) the save goes on unlocked and fails on its own."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: saves are not serialised
        yield
        return
    lock_path = target.with_name(f".{target.name}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + SAVE_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConflictError(
                        target, f"{label} is being saved by another process; try again"
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


# Temporary files of our saves are named ".<name>.<random>.tmp" (and ".<name>.bak.<random>.tmp").
_TEMP_PATTERN = ".{name}.*.tmp"


def _remove_stale_temps(target: Path) -> int:
    """Remove temporary files that killed saves left beside ``target``; how many. Called with
    the save lock held: every save of ours writes its temporary files under that lock, so any
    of ours seen now belongs to a save that died."""
    removed = 0
    for leftover in target.parent.glob(_TEMP_PATTERN.format(name=glob.escape(target.name))):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(leftover.lstat().st_mode):
                leftover.unlink()
                removed += 1
    return removed


def _atomic_write(target: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file beside ``target``, fsync it, then rename it over
    ``target`` (replacing a symlink itself, not what it points to)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)



def table_problems(table: RoutingTable) -> list[Problem]:
    """Every problem a save of ``table`` would report (empty when it can be saved)."""
    try:
        build_table(
            _to_doc(table), path=table.path, text=None, fingerprint=None, label=display_path(table.path)
        )
    except TableError as e:
        return e.problems
    return []


# --------------------------------------------------------------------------------------------
# Merging edits onto a file that changed on disk
# --------------------------------------------------------------------------------------------

CellKey = tuple[str, str]


@dataclass(frozen=True)
class MergeResult:
    """``table``: the file on disk (``theirs``) with the user's edited cells applied; it keeps
    theirs' path and fingerprint, so saving it checks against the file as it is now.
    ``applied``: the (task, priority) cells written onto theirs, in grid order. ``conflicts``:
    cells both sides changed, differently (``applied`` includes them: the user's edit wins),
    and edited cells the new file no longer has (not applied)."""

    table: RoutingTable
    applied: list[CellKey]
    conflicts: list[CellKey]


def merge_edits(base: RoutingTable, mine: RoutingTable, theirs: RoutingTable) -> MergeResult:
    """Apply the cells edited in ``mine`` (relative to ``base``, the table as loaded) onto
    ``theirs`` (the file as it is on disk now). Only grid cells are merged: the grid is what a
    person edits; every other part of the result is theirs."""
    merged = theirs
    applied: list[CellKey] = []
    conflicts: list[CellKey] = []
    for key, my_cell in mine.routes.items():
        base_cell = base.routes.get(key)
        if my_cell == base_cell:
            continue  # not edited
        their_cell = theirs.routes.get(key)
        if their_cell is None:
            conflicts.append(key)  # the new file has no such task or priority any more
            continue
        if their_cell == my_cell:
            continue  # both made the same edit: nothing to apply
        if their_cell != base_cell:
            conflicts.append(key)
        merged = merged.with_cell(*key, my_cell)
        applied.append(key)
    return MergeResult(merged, applied, conflicts)

