"""Each metric's answer from aggregates: the database counts and groups, ``formulas`` decides.

The population path (``metrics.compute``) fetches every record so it can list them; these
functions ask ``metrics.aggregates`` for counts, sums and histograms instead, one tally per
group, and hand them to the same pure formulas. A group's answer is the formula over that
group's tally and the headline the formula over their sum, so groups and headline agree as
they do over records.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from datetime import date, timedelta
from typing import Any

from metrics import aggregates, compute, formulas, repository
from metrics.aggregates import Tallies
from metrics.facts import active_version
from metrics.formulas import MetricValue
from metrics.query import MetricAnswer, MetricQuery, answer, midnight
from metrics.records import CommitmentRecord, ForecastRecord
from metrics.stats import median_counts

Tally = Counter[Hashable]


def _answer(q: MetricQuery, tallies: Tallies, reduce: Callable[[Tally], MetricValue], *,
            versions: Iterable[int | None] = (),
            default_groups: Callable[[MetricValue], list[dict[str, Any]]] | None = None
            ) -> MetricAnswer:
    """The headline over every group's tally summed, and each group by the same reducer."""
    total: Tally = Counter()
    for tally in tallies.values():
        total.update(tally)
    result = reduce(total)
    if q.group_by is not None:
        groups = []
        for key, tally in tallies.items():
            found = reduce(tally)
            groups.append({"key": key, "value": found.value, "count": found.count,
                           "stats": found.stats})
        groups.sort(key=lambda row: (-row["count"], row["key"]))
    else:
        groups = default_groups(result) if default_groups else []
    return MetricAnswer(result=result, groups=groups,
                        definition_versions=sorted({v for v in versions if v is not None}))


def _sum(tally: Tally, measure: str, *where: Any) -> float:
    """The measure over every entry whose leading dimensions equal ``where``."""
    return sum(value for (name, *dims), value in _items(tally)
               if name == measure and tuple(dims[:len(where)]) == where)


def _items(tally: Tally) -> Iterable[tuple[tuple[Any, ...], float]]:
    return ((key, value) for key, value in tally.items() if isinstance(key, tuple))


def _histogram(tally: Tally, measure: str, position: int = 0,
               where: tuple[Any, ...] = ()) -> dict[float, int]:
    """``{value: count}`` of the dimension at ``position`` over the entries whose leading
    dimensions equal ``where`` (None values left out)."""
    out: dict[float, int] = {}
    for (name, *dims), value in _items(tally):
        if (name == measure and tuple(dims[:len(where)]) == where
                and dims[position] is not None):
            out[float(dims[position])] = out.get(float(dims[position]), 0) + int(value)
    return out


def _versions(tallies: Tallies, position: int) -> set[int | None]:
    """The definition versions found at dimension ``position`` of any entry."""
    return {dims[position] for tally in tallies.values() for (_, *dims), value in _items(tally)
            if value}


def lead_acceptance_rate(q: MetricQuery) -> MetricAnswer:
    tallies = aggregates.handoffs(q.session, q.start, q.end, states=("accepted", "rejected"),
                                  version=active_version(q.session),
                                  group_by=q.group_by, pending=True)

    def reduce(t: Tally) -> MetricValue:
        return formulas.acceptance_rate(int(_sum(t, "accepted")), int(_sum(t, "rejected")),
                                        int(_sum(t, "pending")))

    return _answer(q, tallies, reduce, versions=_versions(tallies, 0))


def rejection_reasons(q: MetricQuery) -> MetricAnswer:
    tallies = aggregates.handoffs(q.session, q.start, q.end, states=("rejected",),
                                  version=active_version(q.session),
                                  group_by=q.group_by, by_reason=True)

    def reduce(t: Tally) -> MetricValue:
        counts: Counter[str | None] = Counter()
        for (_, _version, reason), n in _items(t):
            counts[reason] += int(n)
        return formulas.rejection_reasons_counts(counts)

    def by_reason(result: MetricValue) -> list[dict[str, Any]]:
        return [{"key": row["reason"], "value": row["count"], "count": row["count"],
                 "stats": {"share": row["share"]}} for row in result.stats["by_reason"]]

    return _answer(q, tallies, reduce, versions=_versions(tallies, 0),
                   default_groups=by_reason)


def funnel_conversion(q: MetricQuery) -> MetricAnswer:
    tallies = aggregates.mql_funnel(q.session, q.start, q.end,
                                    version=active_version(q.session),
                                    group_by=q.group_by)

    def reduce(t: Tally) -> MetricValue:
        return formulas.funnel_counts(mqls=int(_sum(t, "mqls")), sals=int(_sum(t, "sals")),
                                      sqls=int(_sum(t, "sqls")), won=int(_sum(t, "won")))

    return _answer(q, tallies, reduce, versions=_versions(tallies, 0))


def _duration(kind: str) -> Callable[[MetricQuery], MetricAnswer]:
    """Time to accept and time to first touch differ only in the clock they read."""

    def compute(q: MetricQuery) -> MetricAnswer:
        tallies = aggregates.clock_durations(q.session, q.start, q.end, kind=kind,
                                             version=active_version(q.session),
                                             group_by=q.group_by)

        def reduce(t: Tally) -> MetricValue:
            return formulas.durations_counts(_histogram(t, "business"),
                                              _histogram(t, "calendar"))

        versions = {dims[1] for tally in tallies.values()
                    for (name, *dims), n in _items(tally) if name == "business" and n}
        return _answer(q, tallies, reduce, versions=versions)

    return compute


time_to_accept = _duration("accept")
time_to_first_touch = _duration("first_touch")


def sla_compliance(q: MetricQuery) -> MetricAnswer:
    tallies = aggregates.clock_outcomes(q.session, q.start, q.end,
                                        version=active_version(q.session),
                                        now=q.now, group_by=q.group_by)

    def outcome(t: Tally, wanted: str, kind: str | None = None) -> int:
        return int(_sum(t, wanted) if kind is None else _sum(t, wanted, kind))

    def reduce(t: Tally) -> MetricValue:
        sides = {kind: formulas.sla_compliance(outcome(t, "met", kind),
                                               outcome(t, "breached", kind)).value
                 for kind in ("accept", "first_touch")}
        return compute.with_stats(formulas.sla_compliance(outcome(t, "met"),
                                                     outcome(t, "breached")),
                             pending=outcome(t, "pending"), by_clock=sides)

    return _answer(q, tallies, reduce, versions=_versions(tallies, 1))


def _closed(q: MetricQuery, **options: Any) -> Tallies:
    return aggregates.deals_closed(q.session, closed_from=q.first_day, closed_before=q.end_day,
                                   group_by=q.group_by, **options)


def sales_cycle_length(q: MetricQuery) -> MetricAnswer:
    tallies = aggregates.won_cycles(q.session, closed_from=q.first_day,
                                    closed_before=q.end_day, group_by=q.group_by, lead=True)

    def reduce(t: Tally) -> MetricValue:
        return formulas.sales_cycle_counts(_histogram(t, "cycle"),
                                           from_lead_created=_histogram(t, "lead"))

    # a deal without a created date has no cycle and is not in the population
    return _answer(q, {k: t for k, t in tallies.items() if _histogram(t, "cycle")}, reduce)


def _win_rate(t: Tally) -> MetricValue:
    return formulas.win_rate_totals(
        won=int(_sum(t, "n", True)), lost=int(_sum(t, "n", False)),
        won_amount=_sum(t, "amount", True), lost_amount=_sum(t, "amount", False))


def win_rate(q: MetricQuery) -> MetricAnswer:
    return _answer(q, _closed(q), _win_rate)


def _spend(q: MetricQuery) -> tuple[float, float]:
    """Sales and marketing spend prorated into the window."""
    totals = aggregates.spend_totals(q.session, q.first_day, q.end_day)
    return totals["sales"], totals["marketing"]


def cost_of_sales(q: MetricQuery) -> MetricAnswer:
    sales, marketing = _spend(q)
    won = _closed(q, won_only=True).get("", Counter())
    return MetricAnswer(result=formulas.cost_of_sales(
        sales, marketing, _sum(won, "amount"), won_deals=int(_sum(won, "n"))))


def cac(q: MetricQuery) -> MetricAnswer:
    sales, marketing = _spend(q)
    customers = aggregates.new_customers(q.session, first_day=q.first_day, end_day=q.end_day)
    return MetricAnswer(result=formulas.cac(sales + marketing, customers))


def cost_per_mql(q: MetricQuery) -> MetricAnswer:
    _, marketing = _spend(q)
    mqls = aggregates.mql_count(q.session, q.start, q.end,
                                version=active_version(q.session))
    total = mqls.get("", Counter())
    return MetricAnswer(result=formulas.cost_per_mql(marketing, int(_sum(total, "n"))),
                        definition_versions=sorted(v for v in _versions(mqls, 0)
                                                   if v is not None))


def pipeline_velocity(q: MetricQuery) -> MetricAnswer:
    tallies = aggregates.merge(
        aggregates.deals_open(q.session, open_at=q.end, closed_before=q.end_day,
                              group_by=q.group_by),
        _closed(q),
        aggregates.won_cycles(q.session, closed_from=q.first_day, closed_before=q.end_day,
                              group_by=q.group_by))

    def reduce(t: Tally) -> MetricValue:
        won = _sum(t, "n", True)
        return formulas.pipeline_velocity(
            int(_sum(t, "open")), _win_rate(t).value,
            _sum(t, "amount", True) / won if won else None,
            median_counts(_histogram(t, "cycle")))

    return _answer(q, tallies, reduce)


def marketing_sourced_share(q: MetricQuery) -> MetricAnswer:
    version = active_version(q.session)
    tallies = aggregates.sourced_wins(q.session, closed_from=q.first_day,
                                      closed_before=q.end_day, version=version,
                                      group_by=q.group_by)

    def reduce(t: Tally) -> MetricValue:
        return formulas.marketing_sourced_totals(
            deals=int(_sum(t, "n")), total_amount=_sum(t, "amount"),
            sourced_deals=int(_sum(t, "n", True)), sourced_amount=_sum(t, "amount", True))

    sourced = any(_sum(t, "n", True) for t in tallies.values())
    versions = ({version} if sourced else set()) if version is not None else {
        dims[1] for t in tallies.values() for (_, *dims), n in _items(t) if dims[0] and n}
    return _answer(q, tallies, reduce, versions=versions)


def forecast_accuracy(q: MetricQuery) -> MetricAnswer:
    forecasts = repository.forecasts(q.session, q.first_day, q.end_day)
    won: list[tuple[tuple[Any, ...], float]] = []
    if forecasts:
        won = list(_items(aggregates.won_by_day(
            q.session, closed_from=min(f.period_start for f in forecasts),
            closed_before=max(f.period_end for f in forecasts) + timedelta(days=1),
            by_segment=any(f.segment for f in forecasts),
            by_team=any(f.team for f in forecasts))[""]))
    series: dict[tuple[str | None, str | None], _Days] = {}
    records = []
    for f in forecasts:
        segment, team = f.segment, f.team
        if (segment, team) not in series:  # each facet's daily revenue, gathered once
            series[segment, team] = _Days(
                (day, total, None) for (_, day, s, t), total in won
                if (segment is None or s == segment) and (team is None or t == team))
        actual = sum(n for _, n in series[segment, team].between(f.period_start,
                                                                  f.period_end))
        records.append(ForecastRecord(
            id=f.id or 0, period_start=f.period_start, period_end=f.period_end,
            forecast=f.amount, actual=actual, facets=compute.everyone(segment, team)))
    found = answer(q, records, compute.forecast_reduce)
    return dataclasses.replace(found, records=())


class _Days:
    """Daily figures in day order, read by inclusive date range (periods cover months and
    there may be many of them: a scan of every day per period grew as their product)."""

    def __init__(self, rows: Iterable[tuple[date, float, Any]]) -> None:
        ordered = sorted(rows, key=lambda row: row[0])
        self.days = [day for day, _, _ in ordered]
        self.rows = [(tag, value) for _, value, tag in ordered]

    def between(self, first: date, last: date) -> list[tuple[Any, float]]:
        return self.rows[bisect_left(self.days, first):bisect_right(self.days, last)]


def mql_commitment_attainment(q: MetricQuery) -> MetricAnswer:
    commitments = repository.commitments(q.session, q.first_day, q.end_day)
    days: list[tuple[tuple[Any, ...], float]] = []
    if commitments:
        days = list(_items(aggregates.mql_days(
            q.session, midnight(min(c.period_start for c in commitments)),
            midnight(max(c.period_end for c in commitments) + timedelta(days=1)),
            version=active_version(q.session),
            by_segment=any(c.segment for c in commitments)).get("", Counter())))
    series: dict[str | None, _Days] = {}
    records, versions = [], set()
    for c in commitments:
        segment = c.segment or None
        if segment not in series:
            series[segment] = _Days((day, n, version) for (_, day, version, *seg), n in days
                                    if n and (segment is None or seg[0] == segment))
        delivered = 0
        for version, n in series[segment].between(c.period_start, c.period_end):
            delivered += int(n)
            versions.add(version)
        records.append(CommitmentRecord(
            id=c.id or 0, period_start=c.period_start, period_end=c.period_end,
            committed=c.mqls_promised, delivered=delivered,
            facets=compute.everyone(c.segment, None)))
    found = answer(q, records, compute.commitment_reduce, versions=list(versions))
    return dataclasses.replace(found, records=())
