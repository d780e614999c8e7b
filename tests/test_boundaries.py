"""The engine never imports Textual, and the headless CLI paths never load the UI."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    import json

    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_engine_never_imports_textual():
    mods = _modules_after(
        """
        import importlib, pkgutil, tui.router
        for info in pkgutil.walk_packages(tui.router.__path__, "tui.router."):
            importlib.import_module(info.name)
        """
    )
    assert any(m.startswith("tui.router.") for m in mods)
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)


def test_cli_classify_and_eval_paths_never_import_textual(tmp_path, monkeypatch):
    labelled = tmp_path / "few.jsonl"
    labelled.write_text('{"prompt": "write a haiku about rain", "task_type": "creative"}\n')
    mods = _modules_after(
        f"""
        import contextlib, io
        from tui.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["classify", "fix this python error", "--json"]) == 0
            assert main(["eval", {str(labelled)!r}, "--json"]) == 0
        """
    )
    assert "tui.router.classifier.build" in mods
    assert "tui.router.table.decide" in mods
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)


def test_no_module_of_the_product_is_longer_than_a_reader_can_hold():
    """Issue 17: no module over 800 lines, tests included (ruff holds functions to complexity 20). A module that
    grows past it is split by responsibility within its folder, as the README's map shows."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    lines = {
        path.relative_to(root).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for folder in ("tui", "tests")
        for path in (root / folder).rglob("*.py")
    }
    assert len(lines) > 100
    assert {name: n for name, n in lines.items() if n > 800} == {}
