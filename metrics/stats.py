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
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from itertools import accumulate
from typing import TypedDict, overload


class Summary(TypedDict):
    median: float
    mean: float
    p90: float


def _values(xs: Iterable[float]) -> list[float]:
    return sorted(float(x) for x in xs)


def _percentile_sorted(values: Sequence[float], q: float) -> float:
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


def _median_sorted(values: Sequence[float]) -> float:
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


class Ranked(Sequence[float]):
    """A histogram ``{value: how many}`` read as the sorted list it stands for.

    The database can count equal values (``GROUP BY value``) instead of shipping every row;
    indexing this by rank lets the very functions above (and so the very same arithmetic)
    answer from the counts.
    """

    def __init__(self, counts: Mapping[float, int]) -> None:
        pairs = sorted((float(value), int(n)) for value, n in counts.items() if n > 0)
        self._values = [value for value, _ in pairs]
        self._ends = list(accumulate(n for _, n in pairs))  # rank just past each value
        self._fsum = math.fsum(value * n for value, n in pairs)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, rank: int) -> float: ...

    @overload
    def __getitem__(self, rank: slice) -> Sequence[float]: ...

    def __getitem__(self, rank: int | slice) -> float | Sequence[float]:
        if isinstance(rank, slice):
            return [self[i] for i in range(*rank.indices(len(self)))]
        if not 0 <= rank < len(self):
            raise IndexError(rank)
        return self._values[bisect_right(self._ends, rank)]

    def mean(self) -> float:
        # value * n is exact for the integer minutes and days counted this way
        return self._fsum / len(self)


def summary_counts(counts: Mapping[float, int]) -> Summary | None:
    """``summary`` of the values a histogram ``{value: how many}`` stands for."""
    ranked = Ranked(counts)
    if not len(ranked):
        return None
    return {"median": _median_sorted(ranked), "mean": ranked.mean(),
            "p90": _percentile_sorted(ranked, 90)}


def median_counts(counts: Mapping[float, int]) -> float | None:
    """``median`` of the values a histogram ``{value: how many}`` stands for."""
    ranked = Ranked(counts)
    return _median_sorted(ranked) if len(ranked) else None
