"""Timing helpers shared by the benchmark modules (bench/bench_*.py) and bench/run.py.

Each bench module defines ``cases(quick: bool = False) -> list[dict]``; a row is
``{"case": str, "ours_s": float, "anchor": str, "anchor_s": float, "note": str}`` (median seconds),
with ours and the anchor timed in the same process on the same data, interleaved.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_time(fn: Callable[[], object], *, repeat: int = 7, warmup: int = 1, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` untimed calls.

    A run that is faster than ``min_time`` is repeated in a loop and divided, to beat timer noise.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            dt = time.perf_counter() - t0
            if dt >= min_time or n >= 1 << 16:
                break
            n *= 4
        times.append(dt / n)
    return statistics.median(times)


def paired_times(ours: Callable[[], object], anchor: Callable[[], object], *, repeat: int = 7,
                 warmup: int = 1, min_time: float = 0.02) -> tuple[float, float]:
    """Medians of ``ours`` and ``anchor``, timed alternately so that machine load hits both alike."""
    for _ in range(warmup):
        ours(), anchor()
    a, b = [], []
    for _ in range(repeat):
        a.append(median_time(ours, repeat=1, warmup=0, min_time=min_time))
        b.append(median_time(anchor, repeat=1, warmup=0, min_time=min_time))
    return statistics.median(a), statistics.median(b)


def row(case: str, ours_s: float, anchor: str, anchor_s: float, note: str = "") -> dict:
    return {"case": case, "ours_s": ours_s, "anchor": anchor, "anchor_s": anchor_s, "note": note}
