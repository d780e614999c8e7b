"""A yardstick for comparing benchmark runs on a shared, noisy machine: the same code measured
20-50% apart from one minute to the next here, so each benchmark prints how fast the machine
was at the time (lower is faster)."""

from __future__ import annotations

import time


def machine_reference() -> float:
    """Seconds a fixed pure-Python loop of a million additions takes (best of three)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best


def describe() -> str:
    return (f"machine yardstick: 1M-addition Python loop {machine_reference() * 1000:.0f} ms "
            "(lower is a faster moment of this shared machine; 44-76 ms seen on 2026-11-22, 36-64 on 2026-12-05)")
