"""Order statistics computed by hand, so every database gives the same numbers.

The database only fetches values; medians and percentiles are computed here rather than with
``percentile_cont`` or a dialect's approximation. Percentiles use linear interpolation
between closest ranks (numpy's default "linear", Hyndman and Fan type 7, and
``statistics.quantiles(method="inclusive")``): for ``n`` sorted values the q-th percentile
sits at position ``h = (n - 1) * q / 100`` and is ``x[floor(h)] + (h - floor(h)) *
(x[floor(h) + 1] - x[floor(h)])``. Empty input answers None, never raises and never 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from typing import TypedDict


class Summary(TypedDict):
    median: float
    mean: float
    p90: float


def _values(xs: Iterable[float]) -> list[float]:
    return sorted(float(x) for x in xs)


def _percentile_sorted(values: list[float], q: float) -> float:
    # Interpolated in exact rationals and rounded once, so p90 of 1..10 is 9.1 rather than
    # 9.099999999999998, and the answer does not depend on the order of float operations.
    position = Fraction(len(values) - 1) * Fraction(q) / 100
    low = math.floor(position)
    fraction = position - low
    if fraction == 0:
        return values[low]
    below, above = Fraction(values[low]), Fraction(values[low + 1])
    return float(below + fraction * (above - below))


def percentile(xs: Iterable[float], q: float) -> float | None:
    """The q-th percentile (q from 0 to 100) by linear interpolation; None when empty."""
    if isinstance(q, bool) or not 0 <= q <= 100:
        raise ValueError(f"q must be from 0 to 100, got {q!r}")
    values = _values(xs)
    if not values:
        return None
    return _percentile_sorted(values, q)


def _median_sorted(values: list[float]) -> float:
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


def median(xs: Iterable[float]) -> float | None:
    """The middle value, or the mean of the two middle ones; None when empty."""
    values = _values(xs)
    return _median_sorted(values) if values else None


def mean(xs: Iterable[float]) -> float | None:
    """The arithmetic mean, summed without float drift; None when empty."""
    values = _values(xs)
    return math.fsum(values) / len(values) if values else None


def summary(xs: Iterable[float]) -> Summary | None:
    """Median (the headline for durations), mean and p90 together; None when empty."""
    values = _values(xs)
    if not values:
        return None
    return {
        "median": _median_sorted(values),
        "mean": math.fsum(values) / len(values),
        "p90": _percentile_sorted(values, 90),
    }
