"""What the tests/test_table_*.py modules share: fake secrets, a private parse cache for every
test, a valid copy of the default routes.toml (``routes``), and small editors and readers of it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest
import tomli_w

from tui.router.table.check import TableError
from tui.router.table.load import MIN_EXAMPLES, load_table
from tui.router.table.paths import default_routes_path

FAKE_OPENAI_KEY = "sk-proj-4f9Qx2LmT7vB8nR1wZ3kY6aH0cJ5dE"
FAKE_GOOGLE_KEY = "AIzaSyD3xQ9mP2kL8vN4bR7tY1uW6zC0fG5hJ"
FAKE_TOKEN = "a3f9c2e17b4d8a6f0e5c9b2d7a1f4e8c3b6d9a0f2e5c8b1d4a7f0e3c6b9d2a5f"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ROUTEDECK_CACHE_DIR", str(cache))
    return cache


def _default_text() -> str:
    """The packaged routes.toml, with every task topped up to MIN_EXAMPLES examples when it has
    fewer (its examples are placeholders until the real ones are filled in)."""
    text = default_routes_path().read_text("utf-8")
    doc = tomllib.loads(text)
    short = [t for t in doc["tasks"].values() if len(t.get("examples", [])) < MIN_EXAMPLES]
    if not short:
        return text
    for task in short:
        have = task.setdefault("examples", [])
        have += [f"extra example {i} for the tests" for i in range(MIN_EXAMPLES - len(have))]
    return tomli_w.dumps(doc, multiline_strings=True)


@pytest.fixture
def routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid copy of the default routes.toml in a temporary folder, the current folder (so
    messages name it "routes.toml", as a person running RouteDeck there would see it)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "routes.toml"
    path.write_text(_default_text(), encoding="utf-8")
    return path


def line_no(text: str, needle: str, *, after: str | None = None) -> int:
    """The 1-based line of the first ``needle`` (after the first ``after``)."""
    start = text.index(after) if after is not None else 0
    return text.count("\n", 0, text.index(needle, start)) + 1


def edit(path: Path, old: str, new: str, *, after: str | None = None) -> str:
    """Replace the first ``old`` (after the first ``after``) in the file; return the new text."""
    text = path.read_text("utf-8")
    start = text.index(after) if after is not None else 0
    i = text.index(old, start)
    text = text[:i] + new + text[i + len(old) :]
    path.write_text(text, encoding="utf-8")
    return text


def append(path: Path, extra: str) -> str:
    text = path.read_text("utf-8") + extra
    path.write_text(text, encoding="utf-8")
    return text


def problems(path: Path) -> list[str]:
    with pytest.raises(TableError) as info:
        load_table(path)
    assert info.value.problems, "a TableError always lists its problems"
    return [str(p) for p in info.value.problems]


def the_problem(path: Path, key: str) -> str:
    """The one message about ``key``."""
    found = [m for m in problems(path) if f": {key}: " in m]
    assert len(found) == 1, found
    return found[0]


def remove_block(path: Path, header: str) -> str:
    """Remove a [table] (its header line through the blank line that ends it)."""
    text = path.read_text("utf-8")
    start = text.index(header + "\n")
    end = text.find("\n\n", start)
    text = text[:start] + (text[end + 2 :] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")
    return text


def set_key(path: Path, header: str, key: str, value: str) -> tuple[str, int]:
    """Set ``key = value`` (TOML) in the table that starts with ``header`` (one of the short
    tables that end at a blank line), replacing the key's line or adding one after the header.
    Returns the new text and the key's line."""
    text = path.read_text("utf-8")
    start = text.index(header + "\n") + len(header) + 1
    end = text.find("\n\n", start)
    end = len(text) if end < 0 else end
    block = text[start:end]
    m = re.search(rf"^{re.escape(key)} = .*$", block, re.MULTILINE)
    line = f"{key} = {value}"
    if m:
        block = block[: m.start()] + line + block[m.end() :]
        at = start + m.start()
    else:
        block = line + "\n" + block
        at = start
    text = text[:start] + block + text[end:]
    path.write_text(text, encoding="utf-8")
    return text, text.count("\n", 0, at) + 1


def known(names: Iterable[str]) -> str:
    return ", ".join(names)
