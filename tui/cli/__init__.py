"""``routedeck``: the TUI by default, and the same engine headless from the command line.

Subcommands import what they need when they run, so ``routedeck --help`` stays fast and the
headless paths never import Textual.

The package: :mod:`tui.cli.entry` (``main`` and the argument parser, the TUI and ``--web``),
:mod:`tui.cli.commands` (the commands and what they print), :mod:`tui.cli.shapes` (their
``--json`` shapes), :mod:`tui.cli.common` (exit codes, safe output, loading the table and the
session). ``routedeck = "tui.cli:main"`` and ``python -m tui.cli`` both run :func:`main`.
"""

from tui.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError
from tui.cli.entry import (
    WEB_FLAG_OPTIONS,
    WEB_OWN_OPTIONS,
    WEB_PATH_OPTIONS,
    build_parser,
    main,
    web_app_argv,
)
from tui.cli.shapes import decision_json, judge_json, pair_json, side_json

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "WEB_FLAG_OPTIONS",
    "WEB_OWN_OPTIONS",
    "WEB_PATH_OPTIONS",
    "UserError",
    "build_parser",
    "decision_json",
    "judge_json",
    "main",
    "pair_json",
    "side_json",
    "web_app_argv",
]
