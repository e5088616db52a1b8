"""Small, dependency-free statistics for the benchmarks (medians and percentiles of samples)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def median(samples: Sequence[float]) -> float:
    """The median of ``samples`` (NaN when there are none)."""
    return percentile(samples, 50.0)


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile of ``samples``, linearly interpolated (NaN when there are none)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return float(ordered[0])
    position = (len(ordered) - 1) * pct / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    fraction = position - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)
