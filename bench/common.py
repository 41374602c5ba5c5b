"""Shared by the benchmark scripts."""

from __future__ import annotations


def percentile(values: list[float], q: float, ndigits: int = 1) -> float | None:
    """Nearest-rank percentile (q in [0, 1]) of the measured values, rounded; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], ndigits)
