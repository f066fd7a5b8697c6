"""Medians and percentiles: known values, empty input, and agreement with the standard library."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.stats import Ranked, mean, median, median_counts, percentile, summary, summary_counts

ONE_TO_TEN = list(range(1, 11))


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 1.0), (10, 1.9), (25, 3.25), (50, 5.5), (75, 7.75), (90, 9.1), (100, 10.0)],
)
def test_percentile_interpolates_linearly_between_closest_ranks(q: float, expected: float) -> None:
    assert percentile(ONE_TO_TEN, q) == pytest.approx(expected)


def test_p90_of_one_to_ten_is_exactly_nine_point_one() -> None:
    assert percentile(ONE_TO_TEN, 90) == 9.1


def test_order_of_input_does_not_matter() -> None:
    assert percentile([10, 1, 7, 3], 50) == percentile([1, 3, 7, 10], 50) == 5.0


def test_single_value_is_every_percentile() -> None:
    assert percentile([42], 0) == percentile([42], 90) == percentile([42], 100) == 42.0


def test_median_of_odd_and_even_counts() -> None:
    assert median([5, 1, 3]) == 3.0
    assert median([4, 1, 3, 2]) == 2.5


def test_mean() -> None:
    assert mean([1, 2, 3, 4]) == 2.5
    assert mean([0.1] * 10) == 0.1


def test_summary_has_the_three_headline_numbers() -> None:
    assert summary([1, 2, 3, 4, 100]) == {"median": 3.0, "mean": 22.0, "p90": 61.6}


def test_empty_input_is_none_not_zero_and_never_raises() -> None:
    assert percentile([], 90) is None
    assert median([]) is None
    assert mean([]) is None
    assert summary([]) is None
    assert median(iter([])) is None


@pytest.mark.parametrize("q", [-1, 100.5, float("nan")])
def test_percentile_outside_zero_to_hundred_is_a_mistake(q: float) -> None:
    with pytest.raises(ValueError):
        percentile(ONE_TO_TEN, q)


values = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=2, max_size=50,
)


@given(values, st.integers(min_value=1, max_value=99))
def test_percentile_agrees_with_inclusive_quantiles(xs: list[float], k: int) -> None:
    expected = statistics.quantiles(xs, n=100, method="inclusive")[k - 1]
    assert percentile(xs, k) == pytest.approx(expected, rel=1e-9, abs=1e-6)


@given(values)
def test_median_agrees_with_the_standard_library(xs: list[float]) -> None:
    assert median(xs) == pytest.approx(statistics.median(xs), rel=1e-12, abs=1e-9)
    assert percentile(xs, 50) == pytest.approx(statistics.median(xs), rel=1e-9, abs=1e-6)


@given(values, st.floats(min_value=0, max_value=100))
def test_percentile_stays_within_the_data(xs: list[float], q: float) -> None:
    result = percentile(xs, q)
    assert result is not None and min(xs) <= result <= max(xs)


def test_a_histogram_reads_as_the_sorted_values_it_stands_for() -> None:
    ranked = Ranked({30: 2, 9: 1, 50: 1, 7: 0})
    assert list(ranked) == [9.0, 30.0, 30.0, 50.0]
    assert (len(ranked), ranked[3]) == (4, 50.0)
    with pytest.raises(IndexError):
        ranked[4]


def test_summary_of_a_histogram_is_the_summary_of_its_values() -> None:
    # sorted 9, 30, 50 (see the sales-cycle world): median 30, mean 89/3, p90 46
    assert summary_counts({9: 1, 30: 1, 50: 1}) == summary([9, 30, 50])
    assert summary_counts({1: 1, 2: 1, 3: 1, 4: 1, 100: 1}) == {
        "median": 3.0, "mean": 22.0, "p90": 61.6}
    assert summary_counts({}) is None and median_counts({5: 0}) is None


@given(st.lists(st.integers(min_value=-100_000, max_value=100_000), min_size=1, max_size=200))
def test_histograms_give_exactly_what_the_list_gives(xs: list[int]) -> None:
    counts = Counter(xs)
    assert summary_counts(counts) == summary(xs)
    assert median_counts(counts) == median(xs)
