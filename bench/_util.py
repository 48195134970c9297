"""Shared helpers for the benchmarks: timing medians and the JSON measure shape."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    """Run fn `repeat` times and return the median wall time in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, unit: str, ours: float, reference: float, reference_name: str,
            target: float, higher_is_better: bool) -> dict:
    """One measure: speedup is reference time / our time, or our rate / reference rate."""
    if higher_is_better:
        speedup = ours / reference if reference else float("inf")
    else:
        speedup = reference / ours if ours else float("inf")
    return {
        "name": name,
        "unit": unit,
        "ours": round(ours, 6),
        "reference": round(reference, 6),
        "reference_name": reference_name,
        "speedup": round(speedup, 3),
        "target": target,
    }


def result(benchmark: str, measures: list[dict]) -> dict:
    """The one JSON object a benchmark prints."""
    return {"benchmark": benchmark, "measures": measures}
