"""Each metric's population as records plus a reducer: what the population endpoint lists.

The repository fetches every record a metric counts, and ``formulas`` reduces them. The
headline numbers the API serves come from ``metrics.headlines`` instead, which asks the
database for aggregates; both paths share the formulas and are tested to agree.

A reducer turns any subset of a population into a ``MetricValue``, which is what lets
``group_by`` apply the headline's own formula to every group.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from metrics import formulas, repository
from metrics.facts import active_version
from metrics.formulas import MetricValue
from metrics.query import Facets, MetricAnswer, MetricQuery, answer, midnight
from metrics.records import (
    ClockRecord,
    CommitmentRecord,
    CustomerRecord,
    DealRecord,
    ForecastRecord,
    HandoffRecord,
    MqlRecord,
    SpendRecord,
)
from metrics.stats import mean, median

ALL = "all"


def with_stats(result: MetricValue, **extra: Any) -> MetricValue:
    return dataclasses.replace(result, stats={**result.stats, **extra})


def lead_acceptance_rate(q: MetricQuery) -> MetricAnswer:
    version = active_version(q.session)
    records = repository.handoffs(q.session, q.start, q.end, states=("accepted", "rejected"),
                                  version=version, pending=True)

    def reduce(rs: Sequence[HandoffRecord]) -> MetricValue:
        states = [r.state for r in rs]
        return formulas.acceptance_rate(states.count("accepted"), states.count("rejected"),
                                        states.count("pending"))

    found = answer(q, records, reduce, versions=[r.definition_version for r in records])
    return dataclasses.replace(found, records=[r for r in records if r.state != "pending"])


def rejection_reasons(q: MetricQuery) -> MetricAnswer:
    version = active_version(q.session)
    records = repository.handoffs(q.session, q.start, q.end, states=("rejected",),
                                  version=version)

    def reduce(rs: Sequence[HandoffRecord]) -> MetricValue:
        return formulas.rejection_reasons([r.reason or "" for r in rs])

    def by_reason(result: MetricValue) -> list[dict[str, Any]]:
        return [{"key": row["reason"], "value": row["count"], "count": row["count"],
                 "stats": {"share": row["share"]}} for row in result.stats["by_reason"]]

    return answer(q, records, reduce, versions=[r.definition_version for r in records],
                  default_groups=by_reason)


def funnel_conversion(q: MetricQuery) -> MetricAnswer:
    version = active_version(q.session)
    records = repository.mql_cohort(q.session, q.start, q.end, version=version)

    def reduce(rs: Sequence[MqlRecord]) -> MetricValue:
        return formulas.funnel_conversion([r.path for r in rs])

    return answer(q, records, reduce, versions=[r.definition_version for r in records])


def _duration(kind: str) -> Callable[[MetricQuery], MetricAnswer]:
    """Time to accept and time to first touch differ only in the clock they read."""

    def compute(q: MetricQuery) -> MetricAnswer:
        version = active_version(q.session)
        records = [r for r in repository.clocks(q.session, q.start, q.end, kind=kind,
                                                by="stopped", version=version, now=q.now)
                   if r.business_minutes is not None and r.calendar_minutes is not None]

        def reduce(rs: Sequence[ClockRecord]) -> MetricValue:
            return formulas.durations([r.business_minutes or 0 for r in rs],
                                      [r.calendar_minutes or 0 for r in rs])

        return answer(q, records, reduce, versions=[r.definition_version for r in records])

    return compute


time_to_accept = _duration("accept")
time_to_first_touch = _duration("first_touch")


def sla_compliance(q: MetricQuery) -> MetricAnswer:
    version = active_version(q.session)
    records = repository.clocks(q.session, q.start, q.end, kind=None, by="due",
                                version=version, now=q.now)

    def reduce(rs: Sequence[ClockRecord]) -> MetricValue:
        outcomes = [r.outcome for r in rs]
        sides = {kind: formulas.sla_compliance(
            sum(1 for r in rs if r.kind == kind and r.outcome == "met"),
            sum(1 for r in rs if r.kind == kind and r.outcome == "breached")).value
            for kind in ("accept", "first_touch")}
        return with_stats(formulas.sla_compliance(outcomes.count("met"),
                                                  outcomes.count("breached")),
                          pending=outcomes.count("pending"), by_clock=sides)

    found = answer(q, records, reduce, versions=[r.definition_version for r in records])
    return dataclasses.replace(found, records=[r for r in records if r.outcome != "pending"])


def _won(q: MetricQuery, *, sourcing: bool = False,
         version: int | None = repository.ALL_VERSIONS) -> list[DealRecord]:
    return repository.deals(q.session, closed_from=q.first_day, closed_before=q.end_day,
                            won_only=True, sourcing=sourcing, version=version)


def sales_cycle_length(q: MetricQuery) -> MetricAnswer:
    records = [r for r in _won(q) if r.cycle_days is not None]

    def reduce(rs: Sequence[DealRecord]) -> MetricValue:
        return formulas.sales_cycle_length(
            [float(r.cycle_days or 0) for r in rs],
            from_lead_created=[float(r.lead_cycle_days) for r in rs
                               if r.lead_cycle_days is not None])

    return answer(q, records, reduce)


def win_rate(q: MetricQuery) -> MetricAnswer:
    records = repository.deals(q.session, closed_from=q.first_day, closed_before=q.end_day)

    def reduce(rs: Sequence[DealRecord]) -> MetricValue:
        return formulas.win_rate([r.amount for r in rs if r.role == "won"],
                                 [r.amount for r in rs if r.role == "lost"])

    return answer(q, records, reduce)


def _spend(rs: Sequence[object], team: str | None = None) -> float:
    return sum(r.amount for r in rs
               if isinstance(r, SpendRecord) and (team is None or r.team == team))


def cost_of_sales(q: MetricQuery) -> MetricAnswer:
    records: list[Any] = [*repository.spend(q.session, q.first_day, q.end_day), *_won(q)]

    def reduce(rs: Sequence[Any]) -> MetricValue:
        won = [r for r in rs if isinstance(r, DealRecord)]
        return formulas.cost_of_sales(_spend(rs, "sales"), _spend(rs, "marketing"),
                                      sum(r.amount for r in won), won_deals=len(won))

    return answer(q, records, reduce)


def cac(q: MetricQuery) -> MetricAnswer:
    won_ever = repository.deals(q.session, closed_before=q.end_day, won_only=True)
    first: dict[str, DealRecord] = {}
    for deal in sorted(won_ever, key=lambda d: (d.close_date, d.key)):
        first.setdefault(deal.customer, deal)
    customers = [CustomerRecord(customer=c, first_deal=d.key, close_date=d.close_date,
                                facets=d.facets)
                 for c, d in first.items() if d.close_date and d.close_date >= q.first_day]
    records: list[Any] = [*repository.spend(q.session, q.first_day, q.end_day), *customers]

    def reduce(rs: Sequence[Any]) -> MetricValue:
        return formulas.cac(_spend(rs), sum(1 for r in rs if isinstance(r, CustomerRecord)))

    return answer(q, records, reduce)


def cost_per_mql(q: MetricQuery) -> MetricAnswer:
    version = active_version(q.session)
    spend = [s for s in repository.spend(q.session, q.first_day, q.end_day)
             if s.team == "marketing"]
    mqls = repository.mql_cohort(q.session, q.start, q.end, version=version)
    records: list[Any] = [*spend, *mqls]

    def reduce(rs: Sequence[Any]) -> MetricValue:
        return formulas.cost_per_mql(_spend(rs), sum(1 for r in rs if isinstance(r, MqlRecord)))

    return answer(q, records, reduce, versions=[m.definition_version for m in mqls])


def pipeline_velocity(q: MetricQuery) -> MetricAnswer:
    opened = repository.deals(q.session, closed_before=q.end_day, open_at=q.end)
    closed = repository.deals(q.session, closed_from=q.first_day, closed_before=q.end_day)
    records = [*opened, *closed]

    def reduce(rs: Sequence[DealRecord]) -> MetricValue:
        won = [r for r in rs if r.role == "won"]
        rate = formulas.win_rate([r.amount for r in won],
                                 [r.amount for r in rs if r.role == "lost"]).value
        cycle = median(float(r.cycle_days) for r in won if r.cycle_days is not None)
        return formulas.pipeline_velocity(sum(1 for r in rs if r.role == "open"), rate,
                                          mean(r.amount for r in won), cycle)

    return answer(q, records, reduce)


def marketing_sourced_share(q: MetricQuery) -> MetricAnswer:
    version = active_version(q.session)
    records = _won(q, sourcing=True, version=version)

    def reduce(rs: Sequence[DealRecord]) -> MetricValue:
        return formulas.marketing_sourced_share([(r.amount, r.sourced) for r in rs])

    return answer(q, records, reduce, versions=[r.mql_version for r in records if r.sourced])


def forecast_accuracy(q: MetricQuery) -> MetricAnswer:
    forecasts = repository.forecasts(q.session, q.first_day, q.end_day)
    won: list[DealRecord] = []
    if forecasts:
        won = repository.deals(q.session, closed_from=min(f.period_start for f in forecasts),
                               closed_before=max(f.period_end for f in forecasts)
                               + timedelta(days=1), won_only=True)
    records = []
    for f in forecasts:
        actual = sum(d.amount for d in won
                     if d.close_date and f.period_start <= d.close_date <= f.period_end
                     and (f.segment is None or d.facets.segment == f.segment)
                     and (f.team is None or d.facets.team == f.team))
        records.append(ForecastRecord(
            id=f.id or 0, period_start=f.period_start, period_end=f.period_end,
            forecast=f.amount, actual=actual, facets=everyone(f.segment, f.team)))
    return answer(q, records, forecast_reduce)


def everyone(segment: str | None, team: str | None) -> Facets:
    """Facets of a forecast or commitment: its segment and team, else "all"."""
    return Facets(source=ALL, owner=ALL, segment=segment or ALL, team=team or ALL)


def forecast_reduce(rs: Sequence[ForecastRecord]) -> MetricValue:
    return formulas.forecast_accuracy([(r.forecast, r.actual) for r in rs])


def commitment_reduce(rs: Sequence[CommitmentRecord]) -> MetricValue:
    return formulas.commitment_attainment(sum(r.delivered for r in rs),
                                          sum(r.committed for r in rs))


def mql_commitment_attainment(q: MetricQuery) -> MetricAnswer:
    version = active_version(q.session)
    commitments = repository.commitments(q.session, q.first_day, q.end_day)
    records, versions = [], []
    for c in commitments:
        events = repository.mql_events(q.session, midnight(c.period_start),
                                       midnight(c.period_end + timedelta(days=1)),
                                       version=version)
        if c.segment:
            segments = repository.person_segments(q.session, {e.person_id for e in events})
            events = [e for e in events if segments.get(e.person_id) == c.segment]
        versions += [e.definition_version for e in events]
        records.append(CommitmentRecord(
            id=c.id or 0, period_start=c.period_start, period_end=c.period_end,
            committed=c.mqls_promised, delivered=len(events),
            facets=everyone(c.segment, None)))
    return answer(q, records, commitment_reduce, versions=versions)
