"""Each shared metric on small hand-computed examples, and on empty populations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.formulas import (
    FunnelPath,
    MetricValue,
    acceptance_rate,
    cac,
    commitment_attainment,
    cost_of_sales,
    cost_per_mql,
    cost_per_sal,
    durations,
    durations_counts,
    forecast_accuracy,
    funnel_conversion,
    marketing_sourced_share,
    pipeline_velocity,
    rejection_reasons,
    rejection_reasons_counts,
    sales_cycle_counts,
    sales_cycle_length,
    sla_compliance,
    win_rate,
    win_rate_totals,
)


def test_acceptance_rate_counts_decided_handoffs_and_shows_pending_apart() -> None:
    result = acceptance_rate(accepted=30, rejected=10, pending=7)
    assert result.value == 0.75 and result.count == 40
    assert result.stats == {"accepted": 30, "rejected": 10, "pending": 7}


def test_acceptance_rate_with_only_pending_handoffs_is_null() -> None:
    result = acceptance_rate(accepted=0, rejected=0, pending=5)
    assert (result.value, result.count, result.stats["pending"]) == (None, 0, 5)


def test_all_rejected_is_a_real_zero() -> None:
    assert acceptance_rate(0, 4, 0).value == 0.0


def test_rejection_reasons_grouped_most_frequent_first() -> None:
    result = rejection_reasons(["bad_fit", "no_budget", "bad_fit", "", "bad_fit"])
    assert result.value == 5 and result.count == 5
    assert result.stats["by_reason"] == [
        {"reason": "bad_fit", "count": 3, "share": 0.6},
        {"reason": "no_budget", "count": 1, "share": 0.2},
        {"reason": "unspecified", "count": 1, "share": 0.2},
    ]


def test_no_rejections_is_null() -> None:
    assert rejection_reasons([]) == MetricValue(None, 0, {"by_reason": []})


def test_funnel_conversion_by_step_and_overall() -> None:
    cohort = (
        [FunnelPath()] * 5
        + [FunnelPath(reached_sal=True)] * 2
        + [FunnelPath(reached_sal=True, reached_sql=True)]
        + [FunnelPath(reached_sal=True, reached_sql=True, won=True)]
        + [FunnelPath(reached_sql=True, won=True)]  # converted straight to an opportunity
    )
    result = funnel_conversion(cohort)
    assert result.value == 0.2 and result.count == 10
    assert result.stats == {
        "mqls": 10, "sals": 5, "sqls": 3, "won": 2,
        "mql_to_sal": 0.5, "sal_to_sql": 0.6, "sql_to_won": pytest.approx(2 / 3),
    }


def test_funnel_steps_with_nobody_to_convert_are_null() -> None:
    result = funnel_conversion([FunnelPath()] * 4)
    assert result.value == 0.0 and result.count == 4
    assert result.stats["mql_to_sal"] == 0.0
    assert result.stats["sal_to_sql"] is None and result.stats["sql_to_won"] is None
    empty = funnel_conversion([])
    assert (empty.value, empty.count, empty.stats["mql_to_sal"]) == (None, 0, None)


@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1))
def test_funnel_steps_multiply_to_the_headline(flags: list[tuple[bool, bool, bool]]) -> None:
    result = funnel_conversion([FunnelPath(*f) for f in flags])
    steps = [result.stats[k] for k in ("mql_to_sal", "sal_to_sql", "sql_to_won")]
    if None not in steps:
        assert steps[0] * steps[1] * steps[2] == pytest.approx(result.value)
    else:
        assert result.value == 0.0


def test_durations_headline_is_median_business_minutes() -> None:
    result = durations([10, 20, 30, 40, 500], [10, 25, 45, 1000, 3000])
    assert result.value == 30.0 and result.count == 5
    assert result.stats == {
        "median": 30.0, "mean": 120.0, "p90": 316.0,
        "calendar_median": 45.0, "calendar_mean": 816.0, "calendar_p90": 2200.0,
    }


def test_durations_empty_and_mismatched() -> None:
    result = durations([], [])
    assert result.value is None and result.count == 0
    assert result.stats["median"] is None and result.stats["calendar_p90"] is None
    with pytest.raises(ValueError):
        durations([1, 2], [1])


def test_sla_compliance() -> None:
    assert sla_compliance(met=8, breached=2) == MetricValue(0.8, 10, {"met": 8, "breached": 2})
    assert sla_compliance(0, 0).value is None


def test_sales_cycle_length_median_headline() -> None:
    result = sales_cycle_length([10, 20, 30, 100], from_lead_created=[40, 60])
    assert result.value == 25.0 and result.count == 4
    assert result.stats["mean"] == 40.0 and result.stats["p90"] == 79.0
    assert result.stats["from_lead_created"] == {"median": 50.0, "mean": 50.0, "p90": 58.0}
    empty = sales_cycle_length([])
    assert (empty.value, empty.count, empty.stats["median"]) == (None, 0, None)
    assert empty.stats["from_lead_created"] is None


def test_win_rate_by_count_and_by_amount() -> None:
    result = win_rate(won=[100.0, 300.0], lost=[50.0, 50.0, 500.0])
    assert result.value == 0.4 and result.count == 5
    assert result.stats["by_amount"] == 0.4
    assert result.stats["won_amount"] == 400.0 and result.stats["lost"] == 3
    assert win_rate([], []).value is None and win_rate([], []).count == 0
    assert win_rate([0.0], [0.0]).stats["by_amount"] is None


def test_cost_of_sales() -> None:
    result = cost_of_sales(30_000, 20_000, 200_000, won_deals=4)
    assert result.value == 0.25 and result.count == 4
    assert result.stats["spend"] == 50_000
    assert cost_of_sales(30_000, 20_000, 0, won_deals=0).value is None
    assert cost_of_sales(1, 1, 0, won_deals=2).value is None


def test_cost_per_customer_mql_and_sal() -> None:
    assert cac(90_000, 3).value == 30_000 and cac(90_000, 3).count == 3
    assert cost_per_mql(10_000, 400).value == 25
    assert cost_per_sal(10_000, 200).value == 50
    assert cac(90_000, 0) == MetricValue(None, 0, {"spend": 90_000, "units": 0})
    assert cost_per_mql(0, 0).value is None


def test_pipeline_velocity_is_revenue_per_day() -> None:
    result = pipeline_velocity(50, 0.25, 20_000.0, 40.0)
    assert result.value == 6_250.0 and result.count == 50


@pytest.mark.parametrize(
    ("opps", "rate", "amount", "days", "count"),
    [
        (0, 0.25, 20_000.0, 40.0, 0),
        (50, None, 20_000.0, 40.0, 50),
        (50, 0.25, None, 40.0, 50),
        (50, 0.25, 20_000.0, None, 50),
        (50, 0.25, 20_000.0, 0.0, 50),
    ],
)
def test_pipeline_velocity_unknown_inputs_give_null(
    opps: int, rate: float | None, amount: float | None, days: float | None, count: int
) -> None:
    result = pipeline_velocity(opps, rate, amount, days)
    assert result.value is None and result.count == count


def test_marketing_sourced_share_by_amount_and_by_count() -> None:
    result = marketing_sourced_share([(100.0, True), (300.0, False), (100.0, True), (0.0, False)])
    assert result.value == 0.4 and result.count == 4
    assert result.stats["by_count"] == 0.5 and result.stats["sourced_amount"] == 200.0
    assert marketing_sourced_share([]).value is None
    assert marketing_sourced_share([]).count == 0


def test_forecast_accuracy_skips_zero_actuals() -> None:
    result = forecast_accuracy([(90.0, 100.0), (120.0, 100.0), (50.0, 0.0)])
    assert result.value == pytest.approx(0.85) and result.count == 2
    assert result.stats == {"pairs": 3, "skipped_zero_actual": 1}


def test_forecast_accuracy_perfect_and_far_off() -> None:
    assert forecast_accuracy([(100.0, 100.0)]).value == 1.0
    assert forecast_accuracy([(300.0, 100.0)]).value == -1.0


def test_forecast_accuracy_with_nothing_measurable_is_null() -> None:
    assert forecast_accuracy([]) == MetricValue(None, 0, {"pairs": 0, "skipped_zero_actual": 0})
    assert forecast_accuracy([(10.0, 0.0)]).value is None


def test_commitment_attainment_can_exceed_one() -> None:
    assert commitment_attainment(delivered=90, committed=100).value == 0.9
    assert commitment_attainment(delivered=120, committed=100).value == 1.2
    assert commitment_attainment(delivered=5, committed=0).value is None


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        acceptance_rate(-1, 0, 0)
    with pytest.raises(ValueError):
        cac(100, -2)


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000))
def test_rates_never_raise_and_stay_in_range(a: int, b: int, c: int) -> None:
    for result in (acceptance_rate(a, b, c), sla_compliance(a, b)):
        assert result.count == a + b
        assert result.value is None if a + b == 0 else 0 <= result.value <= 1


def test_aggregate_forms_answer_as_the_list_forms() -> None:
    assert rejection_reasons_counts({"No Budget": 2, " ": 1, None: 1}) == rejection_reasons(
        ["No Budget", "No Budget", " ", ""])
    assert durations_counts({30: 1, 60: 1, 240: 1}, {100: 1, 400: 1, 1380: 1}) == durations(
        [60, 30, 240], [1380, 100, 400])
    assert sales_cycle_counts({9: 1, 30: 1, 50: 1}, from_lead_created={61: 1, 12: 1}) == (
        sales_cycle_length([50, 9, 30], from_lead_created=[61, 12]))
    assert win_rate_totals(won=3, lost=1, won_amount=4500, lost_amount=2000) == win_rate(
        [1000, 3000, 500], [2000])


def test_aggregate_forms_refuse_what_cannot_be() -> None:
    with pytest.raises(ValueError):
        durations_counts({30: 2}, {100: 1})
    with pytest.raises(ValueError):
        win_rate_totals(won=-1, lost=0, won_amount=0, lost_amount=0)
    with pytest.raises(ValueError):
        rejection_reasons_counts({"No Budget": -1})
