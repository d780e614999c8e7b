"""tui.router.table, saving routes.toml safely: round trips, unknown keys kept and a .bak
written, no overwrite of a changed or another file, validation before writing, the original
intact after a failed save, symlinks replaced, and awkward strings kept."""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import table_helpers
import tomli_w
from table_helpers import _default_text, append, set_key

from tui.router.table import paths as paths_mod
from tui.router.table.check import TableError
from tui.router.table.load import load_table
from tui.router.table.save import ConflictError, dumps_table, save_table, table_problems
from tui.router.types import Cell

# The shared fixtures, bound by name so pytest finds them here (imported, ruff would read
# every test argument of the same name as a redefinition, F811).
_private_cache = table_helpers._private_cache
routes = table_helpers.routes


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_round_trip_is_equal(routes: Path) -> None:
    table = load_table(routes)
    saved = save_table(table)
    assert saved.path == routes
    again = load_table(routes)
    assert again == table == saved
    assert again.fingerprint == saved.fingerprint == hashlib.sha256(routes.read_bytes()).hexdigest()


def test_unchanged_tomli_w_file_saves_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    text = tomli_w.dumps(tomllib.loads(_default_text()), multiline_strings=True)
    path.write_text(text, encoding="utf-8")
    save_table(load_table(path))
    assert path.read_text("utf-8") == text


def test_save_edits_a_cell_keeps_unknown_keys_and_writes_bak(routes: Path) -> None:
    set_key(routes, "[routes.code.default]", "note", '"keep me"')
    set_key(routes, "[timeouts]", "connect", "10")
    append(routes, '\n[my_notes]\nowner = "ops team"\nlist = [1, 2]\n')
    before = routes.read_bytes()
    table = load_table(routes)
    edited = table.with_cell("code", "default", Cell("anthropic/claude-haiku-4-5", None, None))
    saved = save_table(edited)

    assert (routes.parent / "routes.toml.bak").read_bytes() == before
    reloaded = load_table(routes)
    assert reloaded == saved == edited
    assert reloaded.cell("code", "default") == Cell("anthropic/claude-haiku-4-5")
    raw = reloaded.raw
    assert raw["routes"]["code"]["default"] == {
        "primary": "anthropic/claude-haiku-4-5",
        "note": "keep me",
    }
    assert raw["my_notes"] == {"owner": "ops team", "list": [1, 2]}
    assert "connect = 10\n" in routes.read_text("utf-8")  # an integer stays as it was written
    assert list(raw)[: len(table.raw)] == list(table.raw)  # sections keep their places
    assert _leftovers(routes.parent) == []
    # The returned table carries the new fingerprint: saving it again is no conflict.
    save_table(saved.with_cell("code", "default", Cell("openai/gpt-5-mini")))


def test_save_refuses_to_overwrite_a_changed_file(routes: Path) -> None:
    table = load_table(routes)
    append(routes, "\n# edited by hand meanwhile\n")
    changed = routes.read_bytes()
    with pytest.raises(ConflictError, match="changed on disk since it was loaded"):
        save_table(table)
    assert routes.read_bytes() == changed
    save_table(table, force=True)
    assert load_table(routes) == table
    assert (routes.parent / "routes.toml.bak").read_bytes() == changed


def test_save_refuses_to_overwrite_another_file(routes: Path, tmp_path: Path) -> None:
    table = load_table(routes)
    other = tmp_path / "other.toml"
    other.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(ConflictError, match="already exists"):
        save_table(table, other)
    assert other.read_text("utf-8") == "x = 1\n"
    saved = save_table(table, other, force=True)
    assert saved.path == other and load_table(other) == table
    fresh = tmp_path / "new.toml"
    assert save_table(table, fresh).path == fresh


def test_save_validates_before_writing(routes: Path) -> None:
    table = load_table(routes)
    before = routes.read_bytes()
    broken = table.with_cell("code", "default", Cell("antropic/claude", None, 100))
    assert [p.key for p in table_problems(broken)] == [
        "routes.code.default.primary",
        "routes.code.default.hedge_after_ms",
    ]
    assert table_problems(table) == []
    with pytest.raises(TableError):
        save_table(broken)
    assert routes.read_bytes() == before
    assert not (routes.parent / "routes.toml.bak").exists()


@pytest.mark.parametrize("fail", ["dumps", "fsync", "replace-target", "replace-any"])
def test_failed_save_leaves_the_original_intact(
    routes: Path, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    table = load_table(routes)
    before = routes.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    if fail == "dumps":
        monkeypatch.setattr(tomli_w, "dumps", boom)
    elif fail == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:
        real_replace = os.replace

        def replace(src: str, dst: str | Path) -> None:
            if fail == "replace-any" or Path(dst) == routes:
                boom()
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        save_table(table.with_cell("code", "default", Cell("openai/gpt-5.2")))
    assert routes.read_bytes() == before
    assert _leftovers(routes.parent) == []
    assert load_table(routes) == table


def test_symlinked_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    package = tmp_path / "package"
    package.mkdir()
    shipped = package / "routes.toml"
    shipped.write_text(_default_text(), encoding="utf-8")
    shipped_bytes = shipped.read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    link = work / "routes.toml"
    link.symlink_to(shipped)

    table = load_table(link)
    saved = save_table(table.with_cell("math", "default", Cell("openai/gpt-5.2")))
    assert saved.path == link
    assert not link.is_symlink() and link.is_file()
    assert shipped.read_bytes() == shipped_bytes
    assert (work / "routes.toml.bak").read_bytes() == shipped_bytes
    assert load_table(link).cell("math", "default") == Cell("openai/gpt-5.2")
    assert _leftovers(work) == []


def test_table_from_the_packaged_default_is_saved_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "package"
    package.mkdir()
    shipped = package / "routes.toml"
    shipped.write_text(_default_text(), encoding="utf-8")
    shipped_bytes = shipped.read_bytes()
    monkeypatch.setattr(paths_mod, "default_routes_path", lambda: shipped)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    table = load_table()
    assert table.path == shipped
    saved = save_table(table.with_cell("math", "default", Cell("openai/gpt-5.2")))
    assert saved.path == work / "routes.toml"
    assert shipped.read_bytes() == shipped_bytes
    assert load_table().cell("math", "default") == Cell("openai/gpt-5.2")


def test_awkward_strings_survive_a_round_trip(routes: Path) -> None:
    table = load_table(routes)
    awkward = (
        'a """ triple quote',
        'ends with a quote"',
        "back\\slash\nand a newline",
        "windows\r\nline ends",
        "tab\there, ünïcødé ✓",
        "trailing backslash\\",
        "```python\nprint('hi')\n```",
    )
    code = table.tasks["code"]
    new_code = type(code)(code.name, code.description, code.examples + awkward, code.rules)
    edited = replace(table, tasks={**table.tasks, "code": new_code})
    save_table(edited)
    assert load_table(routes).tasks["code"].examples[-len(awkward) :] == awkward
    assert "windows" in dumps_table(edited)
