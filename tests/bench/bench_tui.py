"""The TUI's speed: first paint, keystroke → label, two streaming panes, idle CPU. Prints its
figures next to the load average (the machine is shared); asserts nothing.

    .venv/bin/python tests/bench/bench_tui.py [--keys 100] [--tokens 4000] [--rate 500] [--content words|markdown] [--idle 5]

Targets (issue 4): first paint <= 1.0 s; keystroke → updated label p95 <= 50 ms once the
classifier is loaded; two panes each streaming 500 tokens/s for 4,000 tokens with no frame gap
over 100 ms; idle CPU near zero.

1. First paint, as a person sees it: ``routedeck`` started in a pseudo-terminal (140x45), timed
   from the moment the process is spawned until the terminal has received a frame showing the main
   screen (its title and the first-run intro, or both pane headers), then until the decision bar says the classifier is
   ready. Run cold (empty cache folder: the classifier trains in a thread worker meanwhile) and
   warm (the cached classifier). Also in-process: ``App.run_test`` from creating the app to the
   first frame the compositor produced for the main screen (imports already paid).
2. Keystroke → label: in-process (Pilot, headless), the classifier loaded; for each keystroke of
   a ~100 character prompt, from ``pilot.press`` until the first frame drawn after the decision
   bar shows the decision for the text as it now is.
3. Streaming: both panes stream from the loopback fake server (tests/fakeserver.py, in its own
   process, real OpenAI SSE) ``--tokens`` chunks at ``--rate`` chunks/s each: numbered words in
   paragraphs, or with ``--content markdown`` a Markdown answer (headings, lists, long code
   blocks, tables) in 4-character chunks. A 10 ms interval
   timer in the app records the event loop's worst lag; the gaps between frames the compositor
   drew while the panes were streaming are recorded too.
4. Idle CPU: the process's CPU time over ``--idle`` seconds with nothing happening, for the
   in-process app and for the ``routedeck`` process in the pseudo-terminal (from /proc).

Every folder the app would write to (run log, caches, config) is a temporary one.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parents[1]))

SIZE = (140, 45)
PROMPT_KEYS = (
    "write a python function that parses a csv file of orders and returns the totals per "
    "customer, sorted"
)
RUN_PROMPT = "write a python function that reverses a linked list"


def loadavg() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load n/a"
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


# ---------------------------------------------------------------------------------------------
# 1. First paint in a pseudo-terminal, and idle CPU of that process
# ---------------------------------------------------------------------------------------------


def _private_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith("ROUTEDECK_")}
    env.update(
        ROUTEDECK_LOG=str(folder / "runs.sqlite3"),
        ROUTEDECK_CACHE_DIR=str(folder / "cache"),
        XDG_CONFIG_HOME=str(folder / "config"),
        XDG_DATA_HOME=str(folder / "data"),
        XDG_CACHE_HOME=str(folder / "xdg-cache"),
        TERM="xterm-256color",
        COLORTERM="truecolor",
        COLUMNS=str(SIZE[0]),
        LINES=str(SIZE[1]),
    )
    return env


def _proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def pty_first_paint(folder: Path, idle_s: float | None) -> dict[str, float | None]:
    """Spawn ``routedeck`` on a pseudo-terminal; seconds until its first main-screen frame and
    until the classifier is ready; optionally its CPU seconds over ``idle_s`` idle seconds."""
    import fcntl
    import pty
    import termios

    exe = Path(sys.executable).with_name("routedeck")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tui.cli"]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=folder,
                            env=_private_env(folder), start_new_session=True, close_fds=True)
    os.close(slave)
    out = bytearray()
    painted = ready = None
    deadline = t0 + 120
    try:
        while time.perf_counter() < deadline and (painted is None or ready is None):
            r, _, _ = select.select([master], [], [], 0.05)
            if not r:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            out += data
            now = time.perf_counter()
            # Textual answers the terminal's queries itself; a frame is the text it draws.
            # The main screen before a run: its title and the first-run intro (the panes
            # take its place on the first run), or the pane headers (versions before that).
            first_run = b"No run yet" in out or (b"routed:" in out and b"baseline:" in out)
            if painted is None and b"RouteDeck" in out and first_run:
                painted = now - t0
            if ready is None and b"type a prompt to see" in out:
                ready = now - t0
        cpu = None
        if idle_s and painted is not None:
            time.sleep(1.0)  # let the last frames and the classifier's worker end
            _drain(master)
            c0 = _proc_cpu_s(proc.pid)
            t_idle = time.perf_counter()
            while time.perf_counter() - t_idle < idle_s:  # keep reading so it never blocks
                _drain(master, 0.2)
            c1 = _proc_cpu_s(proc.pid)
            if c0 is not None and c1 is not None:
                cpu = c1 - c0
        os.write(master, b"\x11")  # ctrl+q
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return {"painted": painted, "ready": ready, "idle_cpu": cpu}


def _drain(fd: int, wait: float = 0.0) -> None:
    while True:
        r, _, _ = select.select([fd], [], [], wait)
        if not r:
            return
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return
        wait = 0.0


# ---------------------------------------------------------------------------------------------
# In-process measures (Pilot, headless)
# ---------------------------------------------------------------------------------------------


# A Markdown answer of the shapes models write (heading, prose, a list, a long code block, a
# table), repeated; chunks of about four characters, as tokens are.
MARKDOWN_ANSWER = "\n\n".join([
    "## Step {n}",
    "Here is how the **parser** handles `input` in step {n}, with the edge cases that matter "
    "when the data is large and arrives in pieces.",
    "- read the header\n- validate each row\n- keep the totals per customer",
    "```python\n" + "\n".join(
        f"def handle_{{n}}_{i}(rows):\n    return [r for r in rows if r.get('id') == {i}]"
        for i in range(12)) + "\n```",
    "| field | type | note |\n|---|---|---|\n| id | int | unique |\n| total | float | EUR |",
]) + "\n\n"


def answer_chunks(content: str, tokens: int) -> tuple[str, ...]:
    if content == "words":
        return tuple(f" tok{i}" + ("\n\n" if i % 60 == 59 else "") for i in range(tokens))
    chunks: list[str] = []
    n = 0
    while len(chunks) < tokens:
        text = MARKDOWN_ANSWER.replace("{n}", str(n))
        chunks.extend(text[i : i + 4] for i in range(0, len(text), 4))
        n += 1
    return tuple(chunks[:tokens])


def _server_process(conn, tokens: int, rate: float, content: str) -> None:
    """The loopback models in their own process, so the app's process has the GIL to itself."""
    from fakeserver import FakeServer, Reply

    with FakeServer() as server:
        words = answer_chunks(content, tokens)
        reply = Reply.ok(chunks=words, delay=1.0 / rate, comments=False,
                         input_tokens=12, output_tokens=tokens)
        server.route("gpt-5-mini", reply)
        server.route("gpt-5.2", reply)
        conn.send(server.openai_url)
        conn.recv()  # "stop"


def make_bench_app(folder: Path, env: dict[str, str]):
    from textual.app import App

    from tui.app.app import RouteDeckApp
    from tui.router.log.runlog import RunLog
    from tui.router.run.session import Session
    from tui.router.table.load import load_table
    from tui.router.table.paths import default_routes_path

    class TimedApp(RouteDeckApp):
        """Records when the compositor produced each frame (headless: drawn, not written)."""

        CSS_PATH = str(Path(sys.modules[RouteDeckApp.__module__].__file__).with_name("app.tcss"))

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.frames: list[float] = []

        def post_display_hook(self) -> None:
            self.frames.append(time.perf_counter())
            App.post_display_hook(self)

    routes = folder / "routes.toml"
    shutil.copyfile(default_routes_path(), routes)
    session = Session(table=load_table(routes), runlog=RunLog(folder / "runs.sqlite3"), env=env)
    return TimedApp(session)


async def in_process(args, folder: Path, server_url: str) -> dict[str, object]:
    from tui.app.screens.main import MainScreen
    from tui.app.widgets.prompt_editor import PromptEditor
    from tui.app.widgets.run_pane import RunPane

    figures: dict[str, object] = {}
    env = {"OPENAI_API_KEY": "sk-bench-0000000000", "OPENAI_BASE_URL": server_url}
    t_create = time.perf_counter()
    app = make_bench_app(folder, env)
    if not args.no_gc_tuning:
        from tui.app.app import tune_gc

        tune_gc()  # as run_app does before the app starts
    async with app.run_test(size=SIZE) as pilot:
        # First frame of the main screen.
        while not (isinstance(app.screen, MainScreen) and app.frames):
            await asyncio.sleep(0.001)
        figures["first_frame_s"] = app.frames[0] - t_create
        while not app.session.classifier_ready:  # it starts loading after the first frame
            await asyncio.sleep(0.005)
        await app.workers.wait_for_complete()  # the rest of the start-up worker
        figures["classifier_ready_s"] = time.perf_counter() - t_create
        await pilot.pause()
        screen = app.screen
        editor = screen.query_one(PromptEditor)

        # 2. Keystroke → label.
        shown: list[tuple[str, float]] = []
        original_show = screen.show_decision

        def show_decision(decision) -> None:
            original_show(decision)
            shown.append((decision.prompt, time.perf_counter()))

        screen.show_decision = show_decision  # the worker calls it through the instance
        latencies: list[float] = []
        for ch in PROMPT_KEYS[: args.keys]:
            key = {" ": "space", ",": "comma"}.get(ch, ch)
            t0 = time.perf_counter()
            await pilot.press(key)
            text = editor.text
            guard = t0 + 30
            while not (shown and shown[-1][0] == text) and time.perf_counter() < guard:
                await asyncio.sleep(0.0005)
            if not (shown and shown[-1][0] == text):
                figures.setdefault("keys_lost", 0)
                figures["keys_lost"] += 1  # type: ignore[operator]
                continue
            t_shown = shown[-1][1]
            while not (app.frames and app.frames[-1] >= t_shown):
                await asyncio.sleep(0.0005)
            latencies.append(next(f for f in app.frames if f >= t_shown) - t0)
        figures["keys"] = latencies

        # 4a. Idle CPU, in process.
        await pilot.pause(1.0)
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(args.idle)
        figures["idle_cpu_s"] = (time.process_time() - c0, time.perf_counter() - w0)

        # 3. Two panes streaming.
        lags: list[float] = []
        last = [time.perf_counter()]

        lag_at: list[float] = []  # when each gap ended

        def tick() -> None:
            now = time.perf_counter()
            lags.append(now - last[0])
            lag_at.append(now)
            last[0] = now

        editor.load_text(RUN_PROMPT)
        await app.workers.wait_for_complete()
        await pilot.pause()
        timer = app.set_interval(0.01, tick)
        import gc

        collections: list[tuple[int, float, float]] = []  # (generation, when, pause s)
        gc_started = [0.0]

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                now = time.perf_counter()
                collections.append((info["generation"], now, now - gc_started[0]))

        gc.callbacks.append(on_gc)
        routed = screen.query_one("#routed", RunPane)
        frames_before = len(app.frames)
        c0, t0 = time.process_time(), time.perf_counter()
        last[0] = t0
        await pilot.press("ctrl+j")
        first_text = None
        while first_text is None:
            if routed.text:
                first_text = time.perf_counter()
            await asyncio.sleep(0.005)
        await app.workers.wait_for_complete()
        t_end, c_end = time.perf_counter(), time.process_time()
        timer.stop()
        gc.callbacks.remove(on_gc)
        frames = [f for f in app.frames[frames_before:] if first_text <= f <= t_end]
        gaps = [b - a for a, b in zip(frames, frames[1:], strict=False)]
        pair = screen.last_pair
        figures["stream"] = {
            "wall_s": t_end - t0,
            "cpu_s": c_end - c0,
            "tick_gaps": lags,
            "long_gaps": [(round((at - t0) * 1000), round(g * 1000)) for g, at in zip(lags, lag_at, strict=True) if g > 0.1],
            "frame_gaps": gaps,
            "long_frame_gaps": [(round((b - t0) * 1000), round((b - a) * 1000))
                                for a, b in zip(frames, frames[1:], strict=False) if b - a > 0.1],
            "frames": len(frames),
            "routed_tokens": pair.routed.output_tokens if pair else None,
            "baseline_tokens": pair.baseline.output_tokens if pair else None,
            "errors": [e for e in (pair.routed.error, pair.baseline.error) if e] if pair else ["no result"],
            "routed_chars": len(routed.shown_source),
            "gc": [(g, round((at - t0) * 1000), pause) for g, at, pause in collections],
        }
        from tui.router.providers.registry import aclose_shared_http_client

        await aclose_shared_http_client()
    app.session.runlog.close()
    return figures


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=100, help=f"keystrokes timed (at most {len(PROMPT_KEYS)})")
    ap.add_argument("--tokens", type=int, default=4000, help="chunks each pane streams")
    ap.add_argument("--rate", type=float, default=500.0, help="chunks per second per pane")
    ap.add_argument("--content", choices=("words", "markdown"), default="words",
                    help="what streams: numbered words in paragraphs, or a Markdown answer "
                         "(headings, lists, code blocks, tables) in 4-character chunks")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured")
    ap.add_argument("--no-pty", action="store_true", help="skip the pseudo-terminal measures")
    ap.add_argument("--no-gc-tuning", action="store_true",
                    help="in process, keep Python's default garbage-collector settings")
    args = ap.parse_args()

    import textual

    print(f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}, Textual {textual.__version__}, "
          f"{os.cpu_count()} CPUs, {loadavg()}")
    sys.path.insert(0, str(HERE.parent))
    import yardstick

    print(yardstick.describe())

    with tempfile.TemporaryDirectory(prefix="routedeck-bench-") as tmp:
        folder = Path(tmp)
        if not args.no_pty and sys.platform.startswith("linux"):
            cold = pty_first_paint(folder, None)  # empty cache: trains while it starts
            warm = pty_first_paint(folder, args.idle)  # the classifier cached by the cold run
            print(f"\n1. first paint, `routedeck` in a {SIZE[0]}x{SIZE[1]} pseudo-terminal "
                  f"(spawn → main screen frame received; target <= 1.0 s)   [{loadavg()}]")
            for label, r in (("cold (no cached classifier)", cold), ("warm (cached classifier)", warm)):
                painted = "never" if r["painted"] is None else ms(r["painted"])
                ready = "never" if r["ready"] is None else ms(r["ready"])
                print(f"   {label:<28} first paint {painted:>9}   classifier ready {ready:>9}")

        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        server = ctx.Process(target=_server_process, args=(child, args.tokens, args.rate, args.content),
                             daemon=True)
        server.start()
        url = parent.recv()
        os.environ["ROUTEDECK_CACHE_DIR"] = str(folder / "cache")  # warm from the pty runs
        os.environ["ROUTEDECK_LOG"] = str(folder / "inproc-env.sqlite3")
        try:
            figures = asyncio.run(in_process(args, folder, url))
        finally:
            parent.send("stop")
            server.join(timeout=10)

        print(f"   in process (App.run_test, imports paid): first frame "
              f"{ms(figures['first_frame_s'])}, classifier ready {ms(figures['classifier_ready_s'])}")

        keys = figures["keys"]
        print(f"\n2. keystroke → label drawn, {len(keys)} keystrokes, classifier loaded "
              f"(target p95 <= 50 ms)   [{loadavg()}]")
        print(f"   p50 {pct(keys, 50) * 1000:6.1f} ms   p95 {pct(keys, 95) * 1000:6.1f} ms   "
              f"p99 {pct(keys, 99) * 1000:6.1f} ms   max {max(keys) * 1000:6.1f} ms")
        if figures.get("keys_lost"):
            print(f"   {figures['keys_lost']} keystrokes never got their label (30 s)")

        s = figures["stream"]
        tick_max = max(s["tick_gaps"]) if s["tick_gaps"] else float("nan")
        frame_max = max(s["frame_gaps"]) if s["frame_gaps"] else float("nan")
        gc_note = "default gc" if args.no_gc_tuning else "gc tuned as run_app does"
        print(f"\n3. two panes streaming {args.tokens:,} chunks ({args.content}) each at {args.rate:,.0f}/s, "
              f"{gc_note} (target: no frame gap over 100 ms)   [{loadavg()}]")
        print(f"   run took {s['wall_s']:.2f} s wall, {s['cpu_s']:.2f} s CPU in the app's process; "
              f"tokens routed {s['routed_tokens']}, baseline {s['baseline_tokens']}; "
              f"errors {s['errors'] or 'none'}")
        print(f"   event-loop lag (10 ms timer): p50 {pct(s['tick_gaps'], 50) * 1000:5.1f} ms   "
              f"p99 {pct(s['tick_gaps'], 99) * 1000:5.1f} ms   max {tick_max * 1000:5.1f} ms   "
              f"gaps > 100 ms: {sum(g > 0.1 for g in s['tick_gaps'])}")
        by_gen = {g: [p for gg, _, p in s["gc"] if gg == g] for g in (0, 1, 2)}
        print("   garbage collections during the run: " + ", ".join(
            f"gen{g} {len(p)}x max {max(p) * 1000:.1f} ms" if p else f"gen{g} 0x"
            for g, p in by_gen.items()))
        if by_gen[2]:
            print("   full collections (ms after ctrl+j: pause ms): " + ", ".join(
                f"{at}: {p * 1000:.0f}" for g, at, p in s["gc"] if g == 2))
        if s["long_gaps"]:
            print("   gaps over 100 ms (ms after ctrl+j: gap ms): "
                  + ", ".join(f"{at}: {g}" for at, g in s["long_gaps"][:12]))
        print(f"   frames drawn while streaming: {s['frames']}, gap p50 "
              f"{pct(s['frame_gaps'], 50) * 1000:5.1f} ms   p99 {pct(s['frame_gaps'], 99) * 1000:5.1f} ms   "
              f"max {frame_max * 1000:5.1f} ms")
        if s["long_frame_gaps"]:
            print("   frame gaps over 100 ms (ms after ctrl+j: gap ms): "
                  + ", ".join(f"{at}: {g}" for at, g in s["long_frame_gaps"][:12]))

        cpu, wall = figures["idle_cpu_s"]
        print(f"\n4. idle CPU (target near zero)   [{loadavg()}]")
        print(f"   in process: {cpu * 1000:.0f} ms CPU over {wall:.1f} s ({100 * cpu / wall:.2f}% of one core)")
        if not args.no_pty and sys.platform.startswith("linux"):
            idle = warm["idle_cpu"]
            if idle is None:
                print("   routedeck in the pseudo-terminal: n/a")
            else:
                print(f"   routedeck in the pseudo-terminal: {idle * 1000:.0f} ms CPU over "
                      f"{args.idle:.1f} s ({100 * idle / args.idle:.2f}% of one core; includes the "
                      f"editor's blinking cursor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
