"""The shared metrics' arithmetic, one small function per metric, over plain numbers.

The data layer fetches populations; these functions turn them into a headline ``value``, the
``count`` of the population it stands on, and supporting ``stats``. Two rules hold throughout,
because both teams are judged by these numbers: an empty population answers ``value=None``
with ``count=0`` (never a zero that looks like a result), and a zero denominator answers None
rather than raising. For rates, ``count`` is the denominator's population. Negative counts
are a caller's bug and raise ``ValueError``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metrics.stats import Summary, median, median_counts, summary, summary_counts

UNSPECIFIED_REASON = "unspecified"


@dataclass(frozen=True)
class MetricValue:
    """A metric's headline, the size of its population, and the numbers behind it."""

    value: float | None
    count: int
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunnelPath:
    """How far one MQL of a cohort got; a later stage implies the earlier ones."""

    reached_sal: bool = False
    reached_sql: bool = False
    won: bool = False


def _counts(**counts: int) -> None:
    for name, number in counts.items():
        if number < 0:
            raise ValueError(f"{name} cannot be negative, got {number}")


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _rate(part: int, whole: int, stats: dict[str, Any]) -> MetricValue:
    if whole == 0:
        return MetricValue(None, 0, stats)
    return MetricValue(part / whole, whole, stats)


def acceptance_rate(accepted: int, rejected: int, pending: int) -> MetricValue:
    """Accepted over decided handoffs; pending ones are reported apart, not counted."""
    _counts(accepted=accepted, rejected=rejected, pending=pending)
    stats = {"accepted": accepted, "rejected": rejected, "pending": pending}
    return _rate(accepted, accepted + rejected, stats)


def rejection_reasons(reasons: Sequence[str]) -> MetricValue:
    """Rejections by reason code, most frequent first: Marketing's feedback loop.

    ``stats["by_reason"]`` lists ``{"reason", "count", "share"}``; a blank code counts as
    ``"unspecified"`` so it stays visible instead of vanishing.
    """
    return rejection_reasons_counts(Counter(reasons))


def rejection_reasons_counts(counts: Mapping[str | None, int]) -> MetricValue:
    """``rejection_reasons`` from rejections already counted per raw reason code."""
    tally: Counter[str] = Counter()
    for reason, n in counts.items():
        _counts(rejections=n)
        tally[(reason or "").strip() or UNSPECIFIED_REASON] += n
    total = sum(tally.values())
    groups = [
        {"reason": reason, "count": count, "share": count / total}
        for reason, count in sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    ]
    return MetricValue(total or None, total, {"by_reason": groups})


def funnel_conversion(cohort: Sequence[FunnelPath]) -> MetricValue:
    """Of a cohort of MQLs, the share that was won, with each step's own conversion.

    A later stage implies the earlier ones (a lead converted straight into an opportunity was
    accepted in effect), so the three step rates multiply to the headline.
    """
    return funnel_counts(
        mqls=len(cohort),
        sals=sum(1 for path in cohort if path.reached_sal or path.reached_sql or path.won),
        sqls=sum(1 for path in cohort if path.reached_sql or path.won),
        won=sum(1 for path in cohort if path.won))


def funnel_counts(*, mqls: int, sals: int, sqls: int, won: int) -> MetricValue:
    """``funnel_conversion`` from a cohort already counted per step (each step implies the
    ones before it, so ``mqls >= sals >= sqls >= won``)."""
    _counts(mqls=mqls, sals=sals, sqls=sqls, won=won)
    stats = {
        "mqls": mqls, "sals": sals, "sqls": sqls, "won": won,
        "mql_to_sal": _ratio(sals, mqls),
        "sal_to_sql": _ratio(sqls, sals),
        "sql_to_won": _ratio(won, sqls),
    }
    return _rate(won, mqls, stats)


def durations(minutes_business: Sequence[int], minutes_calendar: Sequence[int]) -> MetricValue:
    """Time to accept or to first touch: median business minutes as the headline.

    The two lists describe the same stopped clocks. ``stats`` holds median, mean and p90 in
    business minutes and, prefixed ``calendar_``, in wall-clock minutes: how the buyer waited.
    """
    if len(minutes_business) != len(minutes_calendar):
        raise ValueError("business and calendar durations must describe the same clocks")
    return _durations(summary(minutes_business), summary(minutes_calendar),
                      len(minutes_business))


def durations_counts(business: Mapping[float, int],
                     calendar: Mapping[float, int]) -> MetricValue:
    """``durations`` from histograms ``{minutes: clocks}`` of the same stopped clocks."""
    count = sum(business.values())
    if count != sum(calendar.values()):
        raise ValueError("business and calendar durations must describe the same clocks")
    return _durations(summary_counts(business), summary_counts(calendar), count)


def _durations(business: Summary | None, calendar: Summary | None, count: int) -> MetricValue:
    stats: dict[str, Any] = {"median": None, "mean": None, "p90": None,
                             "calendar_median": None, "calendar_mean": None,
                             "calendar_p90": None}
    if business is not None and calendar is not None:
        stats.update(business)
        stats.update({f"calendar_{key}": number for key, number in calendar.items()})
    return MetricValue(stats["median"], count, stats)


def sla_compliance(met: int, breached: int) -> MetricValue:
    """Met over met plus breached, for SLA clocks that fell due in the window."""
    _counts(met=met, breached=breached)
    return _rate(met, met + breached, {"met": met, "breached": breached})


def sales_cycle_length(days: Sequence[float], *,
                       from_lead_created: Sequence[float] = ()) -> MetricValue:
    """Days from opportunity created to closed-won: median headline, mean and p90 beside it.

    ``from_lead_created`` (optional) gives the longer cycle from the lead's creation; its
    summary lands in ``stats["from_lead_created"]`` (None when empty).
    """
    stats: dict[str, Any] = dict(summary(days) or {"median": None, "mean": None, "p90": None})
    stats["from_lead_created"] = summary(from_lead_created)
    return MetricValue(median(days), len(days), stats)


def sales_cycle_counts(days: Mapping[float, int], *,
                       from_lead_created: Mapping[float, int]) -> MetricValue:
    """``sales_cycle_length`` from histograms ``{days: deals}``."""
    stats: dict[str, Any] = dict(summary_counts(days)
                                 or {"median": None, "mean": None, "p90": None})
    stats["from_lead_created"] = summary_counts(from_lead_created)
    return MetricValue(median_counts(days), sum(days.values()), stats)


def win_rate(won: Sequence[float], lost: Sequence[float]) -> MetricValue:
    """Won over closed deals by count; ``stats["by_amount"]`` weighs them by amount.

    Each list holds the amounts of closed deals; open deals are not passed in at all.
    """
    return win_rate_totals(won=len(won), lost=len(lost), won_amount=sum(won),
                           lost_amount=sum(lost))


def win_rate_totals(*, won: int, lost: int, won_amount: float,
                    lost_amount: float) -> MetricValue:
    """``win_rate`` from counts and amount totals of won and lost deals."""
    _counts(won=won, lost=lost)
    stats = {
        "won": won, "lost": lost,
        "won_amount": won_amount, "lost_amount": lost_amount,
        "by_amount": _ratio(won_amount, won_amount + lost_amount),
    }
    return _rate(won, won + lost, stats)


def cost_of_sales(sales_spend: float, marketing_spend: float, won_revenue: float, *,
                  won_deals: int) -> MetricValue:
    """All Sales and Marketing spend over won revenue: cost per unit of revenue won."""
    _counts(won_deals=won_deals)
    spend = sales_spend + marketing_spend
    stats = {"sales_spend": sales_spend, "marketing_spend": marketing_spend,
             "spend": spend, "won_revenue": won_revenue}
    if won_deals == 0 or not won_revenue:
        return MetricValue(None, won_deals, stats)
    return MetricValue(spend / won_revenue, won_deals, stats)


def cost_per(spend: float, units: int) -> MetricValue:
    """Spend divided by a count of things bought with it (customers, MQLs, SALs)."""
    _counts(units=units)
    stats = {"spend": spend, "units": units}
    return MetricValue(_ratio(spend, units), units, stats)


def cac(spend: float, new_customers: int) -> MetricValue:
    """Customer acquisition cost: spend over new customers won."""
    return cost_per(spend, new_customers)


def cost_per_mql(marketing_spend: float, mqls: int) -> MetricValue:
    """Marketing spend over the MQLs it produced."""
    return cost_per(marketing_spend, mqls)


def cost_per_sal(spend: float, sals: int) -> MetricValue:
    """Spend over the leads Sales accepted: what a lead worth working costs."""
    return cost_per(spend, sals)


def pipeline_velocity(open_opportunities: int, win_rate: float | None,
                      mean_won_amount: float | None,
                      median_cycle_days: float | None) -> MetricValue:
    """Expected revenue per day: opportunities x win rate x deal size / cycle days.

    Any missing input, or a cycle of zero days, makes the velocity unknown (None), since a
    figure built on a guessed input would be read as a result.
    """
    _counts(open_opportunities=open_opportunities)
    stats = {"open_opportunities": open_opportunities, "win_rate": win_rate,
             "mean_won_amount": mean_won_amount, "median_cycle_days": median_cycle_days}
    if open_opportunities == 0:
        return MetricValue(None, 0, stats)
    if win_rate is None or mean_won_amount is None or not median_cycle_days:
        return MetricValue(None, open_opportunities, stats)
    value = open_opportunities * win_rate * mean_won_amount / median_cycle_days
    return MetricValue(value, open_opportunities, stats)


def marketing_sourced_share(won: Sequence[tuple[float, bool]]) -> MetricValue:
    """Share of revenue whose person was a marketing MQL first, by amount.

    Pass won deals for the revenue share, or open opportunities for the pipeline share;
    ``stats["by_count"]`` gives the share of deals.
    """
    return marketing_sourced_totals(
        deals=len(won), total_amount=sum(amount for amount, _ in won),
        sourced_deals=sum(1 for _, was_mql in won if was_mql),
        sourced_amount=sum(amount for amount, was_mql in won if was_mql))


def marketing_sourced_totals(*, deals: int, total_amount: float, sourced_deals: int,
                             sourced_amount: float) -> MetricValue:
    """``marketing_sourced_share`` from counts and amount totals, all deals and sourced ones."""
    _counts(deals=deals, sourced_deals=sourced_deals)
    stats = {"sourced_amount": sourced_amount, "total_amount": total_amount,
             "sourced_deals": sourced_deals, "by_count": _ratio(sourced_deals, deals)}
    if not deals:
        return MetricValue(None, 0, stats)
    return MetricValue(_ratio(sourced_amount, total_amount), deals, stats)


def forecast_accuracy(pairs: Sequence[tuple[float, float]]) -> MetricValue:
    """Mean over ``(forecast, actual)`` pairs of 1 - |actual - forecast| / |actual|.

    A pair whose actual is 0 has no relative error and is skipped (counted in
    ``stats["skipped_zero_actual"]``). The score is not clamped: a forecast more than twice
    the actual scores below zero, which is the honest reading of it.
    """
    scores = [1 - abs(actual - forecast) / abs(actual) for forecast, actual in pairs if actual]
    stats = {"pairs": len(pairs), "skipped_zero_actual": len(pairs) - len(scores)}
    if not scores:
        return MetricValue(None, 0, stats)
    return MetricValue(sum(scores) / len(scores), len(scores), stats)


def commitment_attainment(delivered: int, committed: int) -> MetricValue:
    """MQLs Marketing delivered over MQLs it committed for the period; may exceed 1."""
    _counts(delivered=delivered, committed=committed)
    return _rate(delivered, committed, {"delivered": delivered, "committed": committed})
