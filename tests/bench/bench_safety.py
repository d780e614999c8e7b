"""Issue 14's suite as a matrix: nothing lost, nothing leaked, nothing hangs. Prints counts.

    .venv/bin/python tests/bench/bench_safety.py [--kills 100] [--races 100] [--rounds 1]

Runs tests/safety_suite.py with more trials than tests/test_safety.py does, on the loopback fake
server and in a temporary folder (its own ROUTEDECK_CACHE_DIR and ROUTEDECK_LOG), and prints:

* faults right N/M: provider faults (HTTP errors, resets, stalls, malformed streams, slow
  drips past the total limit, ...) that ended as they should (fallback, retry or error);
* bad inputs clean N/M: hostile command lines (invalid UTF-8, /dev/zero, FIFOs, huge files, a
  catastrophic regex rule, ...) that ended with a message or a result, no traceback, no hang;
* run logs recovered N/M: corrupt and truncated run logs moved aside with a fresh log started;
* saves intact N/M: routes.toml loads after each kill -9 during a save loop;
  orphaned temp files: left after the next save (temp files the kills left before it, too);
* lost edits: of two processes saving at once, edits reported saved but missing from the file;
* key leaks: keys found in stdout, stderr, the run log or the cache folder.

Every line that did not hold is listed under it. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE.parents[1]))

import safety_suite as suite  # noqa: E402


def _matrix(title: str, rows: list[tuple[str, bool, str]]) -> None:
    good = sum(ok for _, ok, _ in rows)
    print(f"{title:<24} {good}/{len(rows)}")
    for name, ok, detail in rows:
        if not ok:
            print(f"    NOT OK  {name}: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="kill -9 trials (default 100)")
    parser.add_argument("--races", type=int, default=100, help="concurrent-save trials (100)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the fault matrix (1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-safety-") as tmp:
        folder = Path(tmp)
        os.environ["ROUTEDECK_CACHE_DIR"] = str(folder / "cache")
        os.environ["ROUTEDECK_LOG"] = str(folder / "env-runs.sqlite3")
        for name in list(os.environ):
            if name.endswith(("_API_KEY", "_BASE_URL")) or name.startswith("ROUTEDECK_SIM"):
                del os.environ[name]
        started = time.perf_counter()
        print(f"bench_safety: python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

        faults: list[tuple[str, bool, str]] = []
        for _ in range(max(1, args.rounds)):
            faults += suite.fault_matrix()
        _matrix("faults right", faults)

        _matrix("bad inputs clean", suite.bad_input_matrix(folder / "bad-input"))
        _matrix("run logs recovered", suite.corrupt_logs(folder / "logs"))

        kills = suite.kill_saves(folder / "kills", args.kills)
        print(f"{'saves intact':<24} {kills.intact}/{kills.trials}")
        for problem in kills.problems[:5]:
            print(f"    NOT OK  {problem}")
        print(f"{'orphaned temp files':<24} {kills.orphaned_after_next_save} after the next save "
              f"({kills.temp_before_next_save} left by the kills before it)")

        races = suite.concurrent_saves(folder / "races", args.races)
        print(f"{'lost edits':<24} {races.lost_edits} in {races.trials} trials of two saves at "
              f"once ({races.conflicts} conflicts reported, {races.both_saved} both saved, "
              f"{races.no_winner} with no winner)")

        leaks = suite.key_leak_sweep(folder / "keys")
        print(f"{'key leaks':<24} {len(leaks.leaks)} ({leaks.keys} keys x {leaks.places // 3} "
              "places: stdout, stderr, run log, cache)")
        for leak in leaks.leaks:
            print(f"    LEAK    {leak}")
        print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
