"""``routedeck``'s entry point: the argument parser, ``main``, the TUI and ``--web``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from tui.cli.commands import (
    add_export_parser,
    cmd_bench,
    cmd_classify,
    cmd_eval,
    cmd_route,
)
from tui.cli.common import EXIT_OK, EXIT_USAGE, UserError, make_session, open_table, print_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="routedeck",
        description="A terminal playground for task-aware LLM routing. "
        "With no command, opens the TUI.",
    )
    parser.add_argument("--routes", metavar="PATH", help="routes.toml to use (default: ./routes.toml, else the packaged one)")
    parser.add_argument("--simulate", action="store_true", help="run every model on the simulator")
    parser.add_argument("--log", metavar="PATH", help="run log file (default: the user data folder, or ROUTEDECK_LOG)")
    parser.add_argument("--no-log", action="store_true", help="do not record runs")
    parser.add_argument("--web", action="store_true", help="serve the TUI to a browser on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="port for --web (default 8000; 0 picks a free one)")
    parser.add_argument("--no-browser", action="store_true", help="with --web: print the URL only, do not open a browser")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--routes", metavar="PATH", default=argparse.SUPPRESS, help="routes.toml to use")
        p.set_defaults(func=func)
        return p

    p = add("classify", "classify a prompt and show the routing decision", cmd_classify)
    p.add_argument("prompt", help="the prompt, or - to read it from stdin")
    p.add_argument("--priority", "-p", help="priority to route with (default: inferred from the prompt)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("eval", "score the classifier on a labelled JSONL file (prompt, task_type)", cmd_eval)
    p.add_argument("file", help="JSONL file, one {\"prompt\", \"task_type\"} per line")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("route", "run a prompt on the routed model and on the baseline, side by side", cmd_route)
    p.add_argument("prompt", help="the prompt, or - to read it from stdin")
    p.add_argument("--priority", "-p", help="priority to route with (default: inferred from the prompt)")
    p.add_argument("--model", "-m", help="run the routed side on this provider/model instead")
    p.add_argument("--baseline", "-b", help="compare against this provider/model instead")
    p.add_argument("--simulate", action="store_true", default=argparse.SUPPRESS, help="run every model on the simulator")
    p.add_argument("--log", metavar="PATH", default=argparse.SUPPRESS, help="run log file (default: the user data folder, or ROUTEDECK_LOG)")
    p.add_argument("--no-log", action="store_true", default=argparse.SUPPRESS, help="do not record this run")
    p.add_argument("--judge", nargs="?", const="", metavar="MODEL", help="then ask the LLM judge whether the routed answer held up (default model: [judge] in routes.toml, else the baseline); its cost is kept apart from the savings")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("bench", "project what routing a workload saves (and, with --execute, measure it)", cmd_bench)
    p.add_argument("workload", help="JSONL file: prompt, optional task_type and output_tokens")
    p.add_argument("--execute", action="store_true", help="run every prompt for real (resumable)")
    p.add_argument("--concurrency", type=int, default=4, help="runs in flight with --execute (default 4)")
    p.add_argument("--simulate", action="store_true", default=argparse.SUPPRESS, help="run every model on the simulator")
    p.add_argument("--log", metavar="PATH", default=argparse.SUPPRESS, help="run log file")
    p.add_argument("--no-log", action="store_true", default=argparse.SUPPRESS, help="do not record runs")
    p.add_argument("--judge", nargs="?", const="", metavar="MODEL", help="with --execute: the LLM judge compares every routed answer with the baseline's; prints the savings at quality")
    p.add_argument("--json", action="store_true", help="print JSON")

    add_export_parser(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "routes"):
        args.routes = None
    try:
        if args.command is None:
            return _run_tui(args)
        return int(args.func(args) or 0)
    except UserError as exc:
        print_error(f"routedeck: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print_error("routedeck: interrupted")
        return 130
    except BrokenPipeError:
        # Output piped into something that closed early (| head): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _run_tui(args: argparse.Namespace) -> int:
    if getattr(args, "web", False):
        return _serve_web(args)
    table = open_table(args.routes)
    session = make_session(args, table)
    from tui.app.app import run_app

    return run_app(session)


def _serve_web(args: argparse.Namespace) -> int:
    """Serve the TUI to a browser on 127.0.0.1, behind a per-launch token (tui/web/server.py)."""
    try:
        from tui.web.server import WebServer
    except ModuleNotFoundError as exc:
        if exc.name not in ("textual_serve", "aiohttp", "aiohttp_jinja2", "jinja2"):
            raise
        raise UserError(
            "--web needs textual-serve: pip install 'routedeck[web]'"
        ) from None
    # A broken routes.toml is reported here, once, rather than by every browser session.
    open_table(args.routes)
    server = WebServer(web_app_argv(args), port=args.port, open_browser=not args.no_browser)
    try:
        server.serve()
    except OSError as exc:
        raise UserError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    return EXIT_OK


# The TUI's own options, passed on to the app process textual-serve starts for each browser
# session so that they mean the same there. tests/test_web.py checks that every top-level
# option but the --web ones is listed here.
WEB_PATH_OPTIONS = {"routes": "--routes", "log": "--log"}


WEB_FLAG_OPTIONS = {"simulate": "--simulate", "no_log": "--no-log"}


WEB_OWN_OPTIONS = ("web", "port", "no_browser")


def web_app_argv(args: argparse.Namespace) -> list[str]:
    """The argv of the app process behind `routedeck --web` (paths made absolute)."""
    argv = [sys.executable, "-m", "tui.cli"]
    for dest, flag in WEB_PATH_OPTIONS.items():
        if value := getattr(args, dest, None):
            argv += [flag, os.path.abspath(value)]
    for dest, flag in WEB_FLAG_OPTIONS.items():
        if getattr(args, dest, False):
            argv.append(flag)
    return argv
