"""Merge a person's unsaved cell edits onto a routes.toml that changed on disk meanwhile.

The UI's stand-in for the engine's ``tui.router.table.merge_edits`` (same signature, same
result), used until that lands; swap the import in :func:`merge_edits_here` and delete this
module's :func:`merge_cells`::

    result = merge_edits_here(base=app.saved_table, mine=app.session.table, theirs=on_disk)
    result.table      # the table on disk with every cell I edited applied (mine win)
    result.applied    # [(task, priority), ...] the cells I edited, now in result.table
    result.conflicts  # the subset also changed on disk (to something else than mine)

A cell "I edited" is one whose value in ``mine`` differs from ``base`` (the table as it was
loaded). Only cells merge; the caller decides what to do with any other edit. Plain data over
the RoutingTable API: no Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tui.router.types import RoutingTable

CellKey = tuple[str, str]


@dataclass(frozen=True)
class MergeResult:
    table: RoutingTable
    applied: list[CellKey] = field(default_factory=list)
    conflicts: list[CellKey] = field(default_factory=list)


def merge_cells(base: RoutingTable, mine: RoutingTable, theirs: RoutingTable) -> MergeResult:
    """``theirs`` with each cell that ``mine`` changed from ``base`` set to mine's value.

    A cell edited here that names a task or priority the file on disk no longer has is still
    applied (the save's validation then names it). ``conflicts`` lists the applied cells whose
    value on disk also differs from ``base`` and from mine.
    """
    table = theirs
    applied: list[CellKey] = []
    conflicts: list[CellKey] = []
    for key, cell in mine.routes.items():
        if base.routes.get(key) == cell:
            continue  # not edited here
        disk = theirs.routes.get(key)
        if disk == cell:
            continue  # the file already says what I said
        if disk != base.routes.get(key):
            conflicts.append(key)
        table = table.with_cell(key[0], key[1], cell)
        applied.append(key)
    return MergeResult(table, applied, conflicts)


def merge_edits_here(base: RoutingTable, mine: RoutingTable, theirs: RoutingTable) -> MergeResult:
    """The engine's merge when it has one, else :func:`merge_cells`."""
    try:
        from tui.router.table import merge_edits  # type: ignore[attr-defined]
    except ImportError:
        return merge_cells(base, mine, theirs)
    return merge_edits(base, mine, theirs)
