"""The metrics' aggregate queries: the database filters, joins, counts, sums and groups.

Each function answers ``Tallies``: per group key ("" without ``group_by``) a ``Counter``
whose keys are ``(measure, *dimensions)`` and whose values are counts or sums. Medians and
percentiles are never computed here: durations come back as histograms (``GROUP BY`` the
whole number of minutes or days, with a count), which are exact on both databases and which
``metrics.stats`` reads with the same arithmetic it applies to a plain list. The grouping
facets are the SQL twins of ``repository.Lookup`` (a person's first CRM row's source, the
segment of their account, the handoff's or person's owner and that owner's team).

Deals, MQLs and SLA clocks are read from ``metrics.facts``, brought up to date first: the
joins a deal or an MQL needs (its person, their MQLs, later stages, segment) are made once
when the facts are built rather than in every request, and whole-day windows without a
grouping read the daily counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    Date,
    Float,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlmodel import Session, col

from metrics.facts import (
    ClockDay,
    ClockFact,
    ClockMonth,
    Customer,
    DealDay,
    DealFact,
    HandoffDay,
    MqlDay,
    MqlFact,
    WonCycleMonth,
    clock_outcome_sql,
    ensure_fresh,
)
from metrics.models import Spend
from metrics.query import UNASSIGNED, UNKNOWN, GroupBy
from service.crm.models import Account, Campaign, Owner
from service.handoffs.models import Handoff
from service.people.models import Person
from service.sync.models import CrmRow

Tallies = dict[str, Counter[Hashable]]
Expr = Any  # a SQLAlchemy column expression
ALL_VERSIONS = None


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _utc_day(session: Session, instant: Expr) -> Expr:
    """The UTC date of a stored instant."""
    if _dialect(session) == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), instant), Date)
    return type_coerce(func.date(instant), Date)  # SQLite keeps naive UTC text


def _month(session: Session, day: Expr) -> Expr:
    """The first day of a date's month."""
    if _dialect(session) == "postgresql":
        return cast(func.date_trunc("month", day), Date)
    return type_coerce(func.date(day, "start of month"), Date)


def _whole_months(first: date, end: date) -> tuple[date, date] | None:
    """The whole calendar months inside ``[first, end)`` as ``[from, to)`` month starts."""
    start = first if first.day == 1 else _next_month(first)
    stop = end.replace(day=1)
    return (start, stop) if start < stop else None


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _outside(first: Any, end: Any, inner: tuple[Any, Any]) -> list[tuple[Any, Any]]:
    """The parts of ``[first, end)`` before and after ``inner`` that are not empty: what a
    window of whole months leaves to be read row by row."""
    return [(a, b) for a, b in ((first, inner[0]), (inner[1], end)) if a < b]


def _ungrouped(tally: Counter[Hashable]) -> Tallies:
    """A monthly count's tally as the headline group, or no group when it counted nothing."""
    return {"": tally} if tally else {}


def _days(session: Session, day: Expr, instant: Expr) -> Expr:
    """Whole days from an instant's UTC date to ``day``."""
    if _dialect(session) == "postgresql":
        return type_coerce(day - _utc_day(session, instant), Integer)
    return cast(func.julianday(day) - func.julianday(func.date(instant)), Integer)


def _day_number(session: Session, day: Expr) -> Expr:
    """A date as whole days since 1970-01-01, so spans are subtractions in either dialect."""
    if _dialect(session) == "postgresql":
        return type_coerce(day - literal_column("DATE '1970-01-01'"), Integer)
    return cast(func.julianday(day) - 2440587.5, Integer)


def _least(a: Expr, b: Expr) -> Expr:
    return case((a < b, a), else_=b)


def _greatest(a: Expr, b: Expr) -> Expr:
    return case((a > b, a), else_=b)


def spend_totals(session: Session, first_day: date, end_day: date) -> dict[str, float]:
    """Spend per team prorated by days inside ``[first_day, end_day)``: API spend, and CRM
    campaign costs as marketing's (a campaign with one date lasts that day). Summed in the
    database: an organisation may hold thousands of campaigns."""
    dialect = _dialect(session)
    stmt = _SPEND_TOTALS.get(dialect)
    if stmt is None:  # built once per dialect: building it costs more than running it
        stmt = _SPEND_TOTALS[dialect] = _spend_totals(session)
    totals = {"sales": 0.0, "marketing": 0.0}
    for team, total in session.execute(stmt, {"first_day": first_day, "end_day": end_day}):
        totals[team] = float(total or 0)
    return totals


_SPEND_TOTALS: dict[str, Select[Any]] = {}


def _spend_totals(session: Session) -> Select[Any]:
    first_day, end_day = bindparam("first_day", type_=Date), bindparam("end_day", type_=Date)
    first, end = _day_number(session, first_day), _day_number(session, end_day)

    def prorated(amount: Expr, begin: Expr, finish: Expr) -> Expr:
        """``amount`` times the share of the period's days (inclusive) inside the window."""
        overlap = _greatest(_least(finish + 1, end) - _greatest(begin, first), literal(0))
        return amount * overlap / cast(finish - begin + 1, Float)

    spend = (select(Spend.team.label("team"),
                    prorated(col(Spend.amount), _day_number(session, Spend.period_start),
                             _day_number(session, Spend.period_end)).label("share"))
             .where(col(Spend.period_start) < end_day, col(Spend.period_end) >= first_day))
    begin = _day_number(session, func.coalesce(Campaign.start_date, Campaign.end_date))
    finish = _greatest(begin, _day_number(session, func.coalesce(Campaign.end_date,
                                                                  Campaign.start_date)))
    campaigns = (select(literal("marketing").label("team"),
                        prorated(col(Campaign.actual_cost), begin, finish).label("share"))
                 .where(Campaign.live, col(Campaign.actual_cost).is_not(None),
                        or_(col(Campaign.start_date).is_not(None),
                            col(Campaign.end_date).is_not(None)),
                        begin < end, finish >= first))
    rows = union_all(spend, campaigns).subquery()
    return select(rows.c.team, func.sum(rows.c.share)).group_by(rows.c.team)


def _or(value: Expr, fallback: str) -> Expr:
    """``value or fallback`` as Python reads it (None and "" fall back)."""
    return func.coalesce(func.nullif(value, ""), fallback)


def _segment(employees: Expr) -> Expr:
    """``query.segment_of`` in SQL."""
    return case((employees.is_(None), UNKNOWN), (employees < 100, "SMB"),
                (employees < 1000, "Mid-Market"), else_="Enterprise")


def _person_facet(stmt: Select[Any], group_by: GroupBy | None, person_id: Expr, *,
                  owner: Expr | None = None) -> tuple[Select[Any], Expr | None]:
    """The group key of a person's record; ``owner`` (a handoff's) overrides the person's."""
    if group_by is None:
        return stmt, None
    if group_by == "source":
        first = (select(CrmRow.source)
                 .where(CrmRow.person_id == person_id, CrmRow.kind == "person")
                 .order_by(col(CrmRow.created_at).is_(None), CrmRow.created_at, CrmRow.key)
                 .limit(1).correlate_except(CrmRow).scalar_subquery())
        return stmt, _or(first, UNKNOWN)
    stmt = stmt.join(Person, col(Person.id) == person_id, isouter=True)
    owner_key = func.nullif(Person.owner_key, "")
    if owner is not None:
        owner_key = func.coalesce(func.nullif(owner, ""), owner_key)
    if group_by == "owner":
        return stmt, func.coalesce(owner_key, UNASSIGNED)
    if group_by == "team":
        stmt = stmt.join(Owner, col(Owner.key) == owner_key, isouter=True)
        return stmt, _or(Owner.team, UNASSIGNED)
    stmt = stmt.join(Account, col(Account.key) == Person.account_key, isouter=True)
    return stmt, _segment(Account.employees)


def _deal_facet(stmt: Select[Any], group_by: GroupBy | None
                ) -> tuple[Select[Any], Expr | None]:
    """The group key of an opportunity: its own source and owner, its account's segment and
    its owner's team (the last two kept with the deal facts)."""
    if group_by is None:
        return stmt, None
    if group_by == "source":
        return stmt, _or(DealFact.source, UNKNOWN)
    if group_by == "owner":
        return stmt, _or(DealFact.owner_key, UNASSIGNED)
    if group_by == "team":
        return stmt, DealFact.team
    return stmt, DealFact.segment


def _number(value: Any) -> float | int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    return float(value) if isinstance(value, Decimal | float) else value


Measure = Callable[[Any], Expr]  # from the per-row subquery's columns to an aggregate


def count(_: Any) -> Expr:
    return func.count()


def amount(c: Any) -> Expr:
    return func.coalesce(func.sum(c.amount), 0)


def _tally(session: Session, stmt: Select[Any], key: Expr | None, dims: Sequence[Expr],
           measures: Mapping[str, Measure], inputs: Mapping[str, Expr] | None = None
           ) -> Tallies:
    """Group ``stmt``'s rows by ``key`` and ``dims``; fold each group's measures into tallies."""
    return _prepare(stmt, key, dims, measures, inputs).run(session)


@dataclass(frozen=True)
class Prepared:
    """A tally's statement and how its rows fold: built once, with bound parameters, where
    every dashboard poll asks it (building and keying a statement costs more than running
    it)."""

    stmt: Select[Any]
    keyed: bool
    dims: int
    measures: tuple[str, ...]

    def run(self, session: Session, params: Mapping[str, Any] | None = None) -> Tallies:
        out: Tallies = {}
        start = 1 if self.keyed else 0
        for row in session.execute(self.stmt, dict(params or {})):
            values = tuple(row)
            group = str(values[0]) if self.keyed else ""
            dim = values[start:start + self.dims]
            tally = out.get(group)
            if tally is None:  # not setdefault: a Counter per row adds up over many rows
                tally = out[group] = Counter()
            for name, value in zip(self.measures, values[start + self.dims:], strict=True):
                tally[(name, *dim)] += _number(value)
        return out


def _prepare(stmt: Select[Any], key: Expr | None, dims: Sequence[Expr],
             measures: Mapping[str, Measure], inputs: Mapping[str, Expr] | None = None
             ) -> Prepared:
    """The row expressions (key, dimensions, ``inputs`` the measures read) are computed in a
    subquery and grouped outside it, so a grouped expression (an ``EXISTS``, a ``CASE``) is
    one column on every database."""
    columns = ([key.label("k")] if key is not None else [])
    columns += [dim.label(f"d{i}") for i, dim in enumerate(dims)]
    columns += [expr.label(name) for name, expr in (inputs or {}).items()]
    rows = stmt.add_columns(*columns or [literal(1).label("one")]).subquery("row")
    groups = ([rows.c.k] if key is not None else []) + [rows.c[f"d{i}"] for i in range(len(dims))]
    outer = select(*groups, *(measure(rows.c) for measure in measures.values())
                   ).select_from(rows)
    return Prepared(outer.group_by(*groups) if groups else outer, key is not None, len(dims),
                    tuple(measures))


def merge(*parts: Tallies) -> Tallies:
    """Tallies of several queries over the same grouping, one ``Counter`` per group."""
    out: Tallies = {}
    for part in parts:
        for group, tally in part.items():
            out.setdefault(group, Counter()).update(tally)
    return out


def _handoff_version(version: int | None) -> Expr:
    return true() if version is ALL_VERSIONS else Handoff.definition_version == version


def handoffs(session: Session, start: datetime, end: datetime, *, states: Sequence[str],
             version: int | None, group_by: GroupBy | None, pending: bool = False,
             by_reason: bool = False) -> Tallies:
    """``(state, version[, reason])`` counts: handoffs decided in the window with a state in
    ``states``; with ``pending``, those opened in it and undecided at its end as "pending".

    Each state is a filtered count rather than a grouped ``CASE``, whose number of groups
    the planner cannot estimate (it then sorts on disk instead of hashing a handful). The
    decided and the pending handoffs (never the same: one was decided before the end, the
    other not) are two queries, each read from its own covering index.
    """
    days = _whole_days(start, end)
    if days is not None and group_by is None:
        return _handoff_days(session, days, states=states, version=version, pending=pending,
                             by_reason=by_reason)
    decided = and_(col(Handoff.state).in_(states), col(Handoff.decided_at) >= start,
                   col(Handoff.decided_at) < end)
    undecided = and_(Handoff.opened_at >= start, Handoff.opened_at < end,
                     or_(col(Handoff.decided_at).is_(None), col(Handoff.decided_at) >= end))
    dims = [Handoff.definition_version, *([Handoff.reason] if by_reason else [])]
    names = [*states, "pending"] if pending else list(states)
    out: Tallies = {}
    for where, state in ((decided, Handoff.state), (undecided, literal("pending")))[
            :2 if pending else 1]:
        stmt = select().select_from(Handoff).where(where, _handoff_version(version))
        stmt, key = _person_facet(stmt, group_by, Handoff.person_id, owner=Handoff.owner_key)
        found = _tally(session, stmt, key, dims,
                       {name: _when("state", name) for name in names}, {"state": state})
        for group, tally in found.items():
            out.setdefault(group, Counter()).update(tally)
    return out


def _handoff_days(session: Session, days: tuple[date, date], *, states: Sequence[str],
                  version: int | None, pending: bool, by_reason: bool) -> Tallies:
    """``handoffs`` for a whole-day window without a grouping, from the daily counts: a
    handoff decided at or after the window's end midnight was decided on or after its end
    day, and one never decided has no decided day."""
    first, last = days
    dims = [HandoffDay.definition_version, *([HandoffDay.reason] if by_reason else [])]
    versioned = true() if version is ALL_VERSIONS else HandoffDay.definition_version == version
    decided = (select(HandoffDay.state, *dims, func.sum(HandoffDay.n))
               .where(col(HandoffDay.decided_day) >= first, col(HandoffDay.decided_day) < last,
                      col(HandoffDay.state).in_(states), versioned)
               .group_by(HandoffDay.state, *dims))
    parts = [decided]
    if pending:
        parts.append(select(literal("pending"), *dims, func.sum(HandoffDay.n))
                     .where(col(HandoffDay.opened_day) >= first,
                            col(HandoffDay.opened_day) < last,
                            or_(col(HandoffDay.decided_day).is_(None),
                                col(HandoffDay.decided_day) >= last), versioned)
                     .group_by(*dims))
    tally: Counter[Hashable] = Counter()
    for part in parts:
        for state, *dim, n in session.execute(part):
            if n:
                tally[(state, *dim)] += int(n)
    return {"": tally} if tally else {}


def _when(column: str, value: str) -> Measure:
    """Count the rows whose ``column`` (of the per-row subquery) equals ``value``."""
    return lambda c: func.count().filter(c[column] == value)


def _clock_facet(stmt: Select[Any], group_by: GroupBy | None
                 ) -> tuple[Select[Any], Expr | None]:
    """A clock's group key: its handoff's person, the handoff's owner overriding theirs (the
    handoff is joined only for a grouping: the clock facts carry the version)."""
    if group_by is None:
        return stmt, None
    stmt = stmt.join(Handoff, col(Handoff.id) == ClockFact.handoff_id)
    return _person_facet(stmt, group_by, Handoff.person_id, owner=Handoff.owner_key)


def _clock_version(version: int | None) -> Expr:
    return true() if version is ALL_VERSIONS else ClockFact.definition_version == version


def clock_durations(session: Session, start: datetime, end: datetime, *, kind: str,
                    version: int | None, group_by: GroupBy | None) -> Tallies:
    """Histograms of clocks of ``kind`` stopped in the window: ``("business", minutes,
    version)`` and ``("calendar", minutes, version)``, counting clocks with both durations.

    Without a grouping, the window's whole UTC months are read from the monthly counts
    (``metrics.facts.ClockMonth``) and only its partial months from the clocks."""
    months = _whole_months(_utc_date(start, up=True), _utc_date(end, up=False)
                           ) if group_by is None else None
    if months is None:
        return _clock_durations(session, start, end, kind=kind, version=version,
                                group_by=group_by)
    first, stop = (datetime.combine(m, time(), UTC) for m in months)
    rows = session.execute(
        select(ClockMonth.measure, ClockMonth.minutes, ClockMonth.definition_version,
               func.sum(ClockMonth.n))
        .where(ClockMonth.kind == kind, col(ClockMonth.month) >= months[0],
               col(ClockMonth.month) < months[1],
               true() if version is ALL_VERSIONS else ClockMonth.definition_version == version)
        .group_by(ClockMonth.measure, ClockMonth.minutes, ClockMonth.definition_version))
    whole = Counter({(measure, minutes, found): int(n)
                     for measure, minutes, found, n in rows if n})
    return merge(_ungrouped(whole), *(
        _clock_durations(session, a, b, kind=kind, version=version, group_by=None)
        for a, b in _outside(start, end, (first, stop))))


def _utc_date(instant: datetime, *, up: bool) -> date:
    """The UTC date of ``instant``, or (``up``) of the next midnight when it is not one."""
    utc = instant.astimezone(UTC)
    day = utc.date()
    return day + timedelta(days=1) if up and utc.time() != time() else day


def _clock_durations(session: Session, start: datetime, end: datetime, *, kind: str,
                     version: int | None, group_by: GroupBy | None) -> Tallies:
    """``clock_durations`` from the clocks themselves.

    The clocks are first counted per (business, calendar) pair, one pass over the index;
    both histograms are then summed from those pairs (a common table expression read by two
    grouped selects joined with ``UNION ALL``), so the second pass reads pairs, not clocks.
    Pairs repeat: a clock's calendar minutes are its business minutes plus the closed hours
    it spanned (nights, weekends, holidays), a small set of values.
    """
    stmt = (select().select_from(ClockFact)
            .where(col(ClockFact.stopped_at) >= start, col(ClockFact.stopped_at) < end,
                   ClockFact.kind == kind, col(ClockFact.business_minutes).is_not(None),
                   col(ClockFact.calendar_minutes).is_not(None), _clock_version(version)))
    stmt, key = _clock_facet(stmt, group_by)
    dims = [*([key.label("k")] if key is not None else []),
            col(ClockFact.business_minutes).label("business"),
            col(ClockFact.calendar_minutes).label("calendar"),
            col(ClockFact.definition_version).label("version")]
    pairs = (stmt.add_columns(*dims, func.count().label("n"))
             .group_by(*(d.element for d in dims)).cte("clock_pairs"))
    keys = [pairs.c.k] if key is not None else []
    both = union_all(*(
        select(*keys, literal_column(f"'{name}'").label("measure"),
               pairs.c[name].label("minutes"), pairs.c.version, func.sum(pairs.c.n).label("n"))
        .group_by(*keys, pairs.c[name], pairs.c.version)
        for name in ("business", "calendar")))
    out: Tallies = {}
    for row in session.execute(select(both.subquery())):
        *group, measure, minutes, found_version, n = tuple(row)
        tally = out.setdefault(str(group[0]) if group else "", Counter())
        tally[(measure, minutes, found_version)] += int(n)
    return out


def clock_outcomes(session: Session, start: datetime, end: datetime, *, version: int | None,
                   now: datetime, group_by: GroupBy | None) -> Tallies:
    """``(outcome, kind, version)`` counts over clocks due in the window (``clock_outcome``),
    each outcome a filtered count (see ``handoffs``)."""
    days = _whole_days(start, end)
    if days is not None and group_by is None:
        return _clock_days(session, days, start=start, end=end, version=version, now=now)
    return _clock_outcomes(session, start, end, version=version, now=now, group_by=group_by)


def _clock_outcomes(session: Session, start: datetime, end: datetime, *, version: int | None,
                    now: datetime, group_by: GroupBy | None) -> Tallies:
    outcome = clock_outcome_sql(now)
    stmt = (select().select_from(ClockFact)
            .where(col(ClockFact.due_at) >= start, col(ClockFact.due_at) < end,
                   _clock_version(version)))
    stmt, key = _clock_facet(stmt, group_by)
    return _tally(session, stmt, key, [ClockFact.kind, ClockFact.definition_version],
                  {name: _when("outcome", name) for name in ("met", "breached", "pending")},
                  {"outcome": outcome})


def _clock_days(session: Session, days: tuple[date, date], *, start: datetime,
                end: datetime, version: int | None, now: datetime) -> Tallies:
    """``clock_outcomes`` for a whole-day window without a grouping: the days before the
    one ``now`` falls on from the daily counts (a clock still running there fell due before
    now, so it is breached), that day and later ones from the clocks themselves."""
    today = now.astimezone(UTC).date()
    first, last = days
    tally: Counter[Hashable] = Counter()
    if first < today:
        settled = (select(ClockDay.outcome, ClockDay.kind, ClockDay.definition_version,
                          func.sum(ClockDay.n))
                   .where(col(ClockDay.due_day) >= first,
                          col(ClockDay.due_day) < min(last, today),
                          true() if version is ALL_VERSIONS
                          else ClockDay.definition_version == version)
                   .group_by(ClockDay.outcome, ClockDay.kind, ClockDay.definition_version))
        for outcome, kind, found_version, n in session.execute(settled):
            if n:
                tally[("breached" if outcome == "running" else outcome, kind,
                       found_version)] += int(n)
    out: Tallies = {"": tally} if tally else {}
    if last > today:
        live = _clock_outcomes(session, max(start, datetime.combine(today, time(0), UTC)),
                               end, version=version, now=now, group_by=None)
        out = merge(out, live)
    return out


def _whole_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """``[first, last)`` days when the window runs from one UTC midnight to another (then
    the daily MQL counts answer exactly), else None."""
    first, last = (instant.astimezone(UTC) for instant in (start, end))
    if first.time() != time(0) or last.time() != time(0):
        return None
    return first.date(), last.date()


def _mql_rows(session: Session, start: datetime, end: datetime, version: int | None,
              group_by: GroupBy | None = None) -> tuple[Select[Any], Any, Expr | None]:
    """The MQL facts of the window: its daily counts (``n`` per row) for a whole-day window
    without a grouping, else the events themselves (one per row)."""
    ensure_fresh(session, "mqls")
    days = _whole_days(start, end)
    if days is not None and group_by is None:
        stmt = select().select_from(MqlDay).where(
            col(MqlDay.day) >= days[0], col(MqlDay.day) < days[1],
            true() if version is ALL_VERSIONS else MqlDay.definition_version == version)
        return stmt, MqlDay, None
    stmt = select().select_from(MqlFact).where(
        MqlFact.at >= start, MqlFact.at < end,
        true() if version is ALL_VERSIONS else MqlFact.definition_version == version)
    stmt, key = _person_facet(stmt, group_by, MqlFact.person_id)
    return stmt, MqlFact, key


def _mqls(fact: Any) -> Measure:
    """How many MQLs the rows stand for: a day count each, or one event each."""
    if fact is MqlDay:
        return lambda c: func.coalesce(func.sum(c.n), 0)
    return count


def _flagged(fact: Any, flag: str) -> Measure:
    if fact is MqlDay:
        return lambda c: func.coalesce(func.sum(c.n).filter(c[flag]), 0)
    return lambda c: func.count().filter(c[flag])


def mql_funnel(session: Session, start: datetime, end: datetime, *, version: int | None,
               group_by: GroupBy | None) -> Tallies:
    """MQL events in the window by version: ``mqls``, and how many reached SAL (a later SAL,
    SQL or win, or an accepted handoff), SQL (a later SQL or win) and a win afterwards.

    How far each MQL's person got is a fact kept ahead (``metric_mql``), so this is a count
    over the window's facts, or over its days' counts.
    """
    stmt, fact, key = _mql_rows(session, start, end, version, group_by)
    inputs = {"sal": fact.reached_sal, "sql": fact.reached_sql, "won": fact.won}
    if fact is MqlDay:
        inputs["n"] = MqlDay.n
    return _tally(session, stmt, key, [fact.definition_version], {
        "mqls": _mqls(fact), "sals": _flagged(fact, "sal"),
        "sqls": _flagged(fact, "sql"), "won": _flagged(fact, "won")}, inputs)


def mql_days(session: Session, start: datetime, end: datetime, *, version: int | None,
             by_segment: bool) -> Tallies:
    """``("n", utc_day, version[, segment])``: MQL events in the window per UTC day (the
    segment is the person's, kept with each MQL fact)."""
    stmt, fact, _ = _mql_rows(session, start, end, version)
    dims = [fact.day, fact.definition_version, *([fact.segment] if by_segment else [])]
    return _tally(session, stmt, None, dims, {"n": _mqls(fact)},
                  {"n": MqlDay.n} if fact is MqlDay else None)


@cache
def _mql_day_count(every_version: bool) -> Prepared:
    """The daily MQL counts' tally, its days and version bound at run time (cost per MQL
    asks it on every poll)."""
    rows = select().select_from(MqlDay).where(
        col(MqlDay.day) >= bindparam("first_day", type_=Date),
        col(MqlDay.day) < bindparam("end_day", type_=Date),
        true() if every_version else MqlDay.definition_version == bindparam("version"))
    return _prepare(rows, None, [MqlDay.definition_version], {"n": _mqls(MqlDay)},
                    {"n": MqlDay.n})


def mql_count(session: Session, start: datetime, end: datetime, *,
              version: int | None) -> Tallies:
    """``("n", version)``: MQL events in the window."""
    days = _whole_days(start, end)
    if days is not None:
        ensure_fresh(session, "mqls")
        every = version is ALL_VERSIONS
        params: dict[str, Any] = {"first_day": days[0], "end_day": days[1]}
        if not every:
            params["version"] = version
        return _mql_day_count(every).run(session, params)
    stmt, fact, _ = _mql_rows(session, start, end, version)
    return _tally(session, stmt, None, [fact.definition_version], {"n": _mqls(fact)},
                  {"n": MqlDay.n} if fact is MqlDay else None)


def _deals(session: Session, version: int | None | Literal["active"] = "active"
           ) -> Select[Any]:
    """The deal facts, brought up to date (for ``version``'s sourcing) first."""
    ensure_fresh(session, "deals", version)
    return select().select_from(DealFact)


def _live_closed(closed_from: date | None, closed_before: date, *, won_only: bool) -> Expr:
    conditions = [DealFact.is_closed, col(DealFact.close_date) < closed_before]
    if closed_from is not None:
        conditions.append(col(DealFact.close_date) >= closed_from)
    if won_only:
        conditions.append(DealFact.is_won)
    return and_(*conditions)


def _deal_days(*, bounded: bool, won_only: bool) -> Select[Any]:
    """The daily counts of the live deals closed in ``[:closed_from, :closed_before)``
    (from the beginning unless ``bounded``); see :func:`_day_params`."""
    stmt = select().select_from(DealDay).where(
        col(DealDay.close_date) < bindparam("closed_before", type_=Date))
    if bounded:
        stmt = stmt.where(col(DealDay.close_date) >= bindparam("closed_from", type_=Date))
    return stmt.where(DealDay.is_won) if won_only else stmt


def _day_params(closed_from: date | None, closed_before: date) -> dict[str, date]:
    params = {"closed_before": closed_before}
    if closed_from is not None:
        params["closed_from"] = closed_from
    return params


def _summed(column: str) -> Measure:
    return lambda c: func.coalesce(func.sum(c[column]), 0)


@cache
def _deal_day_tally(group_by: GroupBy | None, bounded: bool, won_only: bool) -> Prepared:
    """``("n" | "amount", is_won)`` from the daily counts, per shape (win rate and cost of
    sales ask it on every poll)."""
    key = None if group_by is None else getattr(DealDay, group_by)
    return _prepare(_deal_days(bounded=bounded, won_only=won_only), key, [DealDay.is_won],
                    {"n": _summed("n"), "amount": _summed("amount")},
                    {"n": DealDay.n, "amount": DealDay.amount})


def deals_closed(session: Session, *, closed_from: date | None, closed_before: date,
                 group_by: GroupBy | None, won_only: bool = False) -> Tallies:
    """``("n" | "amount", is_won)`` over live deals closed in ``[closed_from,
    closed_before)``; grouped by nothing, segment or team, the daily counts answer."""
    if group_by in (None, "segment", "team"):
        ensure_fresh(session, "deals")
        tally = _deal_day_tally(group_by, closed_from is not None, won_only)
        return tally.run(session, _day_params(closed_from, closed_before))
    stmt = _deals(session).where(_live_closed(closed_from, closed_before, won_only=won_only))
    stmt, key = _deal_facet(stmt, group_by)
    return _tally(session, stmt, key, [DealFact.is_won], {"n": count, "amount": amount},
                  {"amount": DealFact.amount})


def deals_open(session: Session, *, open_at: datetime, closed_before: date,
               group_by: GroupBy | None) -> Tallies:
    """``("open",)``: live deals created before ``open_at`` and not closed before
    ``closed_before``.

    Counted in two parts, each read from its own partial index: the deals not closed, and
    the deals closed on or after ``closed_before`` (one condition joining both with OR
    would read the whole table)."""
    created = _deals(session).where(col(DealFact.created_at) < open_at)
    parts = (created.where(not_(DealFact.is_closed)),
             created.where(DealFact.is_closed, col(DealFact.close_date) >= closed_before))
    return merge(*(_tally(session, *_deal_facet(part, group_by), [], {"open": count})
                   for part in parts))


def won_cycles(session: Session, *, closed_from: date, closed_before: date,
               group_by: GroupBy | None, lead: bool = False) -> Tallies:
    """``("cycle", days)``: live won deals closed in the window by days from creation to
    close (deals without a created date left out); with ``lead``, also ``("lead", days)``
    by days from their person's creation (deals without a known person left out).

    Without a grouping, the window's whole months are read from the monthly counts and
    only its partial months from the deals. The deals are read in two passes over the won
    deals' index rather than one over (cycle, lead) pairs: a deal's lead days add how long
    its person waited before the deal, so deals rarely share a pair, and counting pairs
    costs more than a second pass."""
    names = {"cycle": DealFact.cycle_days, **({"lead": DealFact.lead_days} if lead else {})}
    months = _whole_months(closed_from, closed_before) if group_by is None else None
    ranges = [(closed_from, closed_before)]
    parts: list[Tallies] = []
    if months is not None:
        ranges = _outside(closed_from, closed_before, months)
        ensure_fresh(session, "deals")
        rows = session.execute(
            select(WonCycleMonth.measure, WonCycleMonth.days, func.sum(WonCycleMonth.n))
            .where(col(WonCycleMonth.month) >= months[0], col(WonCycleMonth.month) < months[1],
                   col(WonCycleMonth.measure).in_(names))
            .group_by(WonCycleMonth.measure, WonCycleMonth.days))
        parts.append(_ungrouped(Counter({(measure, days): int(n) for measure, days, n in rows})))
    for first, before in ranges:
        won = _deals(session).where(_live_closed(first, before, won_only=True))
        parts += [_tally(session, *_deal_facet(won.where(col(days).is_not(None)), group_by),
                         [days], {name: count}) for name, days in names.items()]
    return merge(*parts)


def sourced_wins(session: Session, *, closed_from: date, closed_before: date,
                 version: int | None, group_by: GroupBy | None) -> Tallies:
    """``("n" | "amount", sourced, first_version)`` over won deals in the window: sourced
    when the deal's person was an MQL (of ``version``) before the deal was created;
    ``first_version`` is that earliest MQL's version (None when not sourced, or when a
    single version counts). The deal facts are built for ``version``."""
    stmt = _deals(session, version).where(
        _live_closed(closed_from, closed_before, won_only=True))
    stmt, key = _deal_facet(stmt, group_by)
    dims: list[Expr] = [DealFact.sourced]
    if version is ALL_VERSIONS:
        dims.append(DealFact.mql_version)
    return _tally(session, stmt, key, dims, {"n": count, "amount": amount},
                  {"amount": DealFact.amount})


def new_customers(session: Session, *, first_day: date, end_day: date) -> int:
    """Customers (account, else person, else the deal itself) whose first live won deal
    closed in ``[first_day, end_day)``."""
    ensure_fresh(session, "deals")
    found = session.execute(select(func.count()).select_from(Customer).where(
        col(Customer.first_won) >= first_day, col(Customer.first_won) < end_day)).scalar_one()
    return int(found)


def won_by_day(session: Session, *, closed_from: date, closed_before: date,
               by_segment: bool, by_team: bool) -> Tallies:
    """``("amount", close_date, segment | None, team | None)``: live won revenue per day."""
    ensure_fresh(session, "deals")
    facets: list[GroupBy] = [f for f, wanted in (("segment", by_segment), ("team", by_team))
                             if wanted]
    dims: list[Expr] = [DealDay.close_date, *(getattr(DealDay, f) for f in facets)]
    found = _prepare(_deal_days(bounded=True, won_only=True), None, dims,
                     {"amount": _summed("amount")}, {"amount": DealDay.amount}
                     ).run(session, _day_params(closed_from, closed_before)).get("", Counter())
    out: Counter[Hashable] = Counter()
    for (name, day, *keys), total in found.items():
        named = dict(zip(facets, keys, strict=True))
        out[(name, day, named.get("segment"), named.get("team"))] += total
    return {"": out}
