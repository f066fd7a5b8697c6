"""The record fetches behind a metric's population: plain reads, the same on both databases.

The population endpoint lists these records, and ``metrics.compute`` reduces them with the
formulas; the API's headline numbers come from ``metrics.aggregates`` instead, and the tests
hold the two to the same answers. Spend, forecasts and commitments are few rows and are read
here by both paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, true
from sqlmodel import Session, col, select

from metrics.facts import ClockFact
from metrics.formulas import FunnelPath
from metrics.models import Forecast, Spend
from metrics.query import UNASSIGNED, UNKNOWN, Facets, segment_of
from metrics.records import ClockRecord, DealRecord, HandoffRecord, MqlRecord, SpendRecord
from service.crm.models import Account, Campaign, Opportunity, Owner
from service.handoffs.models import Commitment, Handoff
from service.people.models import Person, StageEvent
from service.sync.models import CrmRow

CHUNK = 500
ALL_VERSIONS = None


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    items = sorted(set(values), key=str)
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


@dataclass
class Lookup:
    """Facets of persons, accounts and owners, loaded in chunks for the records at hand."""

    session: Session
    person_source: dict[int, str] = field(default_factory=dict)
    person: dict[int, tuple[str | None, str | None, datetime | None]] = field(
        default_factory=dict)  # owner, account, created
    employees: dict[str, int | None] = field(default_factory=dict)
    team: dict[str, str | None] = field(default_factory=dict)

    def load(self, *, persons: Iterable[int] = (), accounts: Iterable[str | None] = (),
             owners: Iterable[str | None] = ()) -> None:
        new_persons = [p for p in persons if p not in self.person]
        for ids in _chunks(new_persons):
            for pid, owner, account, created in self.session.exec(
                    select(Person.id, Person.owner_key, Person.account_key, Person.created_at)
                    .where(col(Person.id).in_(ids))):
                self.person[pid] = (owner, account, created)
            first: dict[int, tuple[Any, ...]] = {}
            for pid, source, created, key in self.session.exec(
                    select(CrmRow.person_id, CrmRow.source, CrmRow.created_at, CrmRow.key)
                    .where(col(CrmRow.person_id).in_(ids), CrmRow.kind == "person")):
                rank = (created is None, created or datetime.min, key)
                if pid not in first or rank < first[pid][0]:
                    first[pid] = (rank, source)
            self.person_source.update({pid: row[1] for pid, row in first.items()})
        accounts = [a for a in accounts if a]
        accounts += [self.person[p][1] for p in new_persons if p in self.person]
        owners = [o for o in owners if o]
        owners += [self.person[p][0] for p in new_persons if p in self.person]
        for keys in _chunks(a for a in accounts if a and a not in self.employees):
            self.employees.update({k: None for k in keys})
            self.employees.update(self.session.exec(
                select(Account.key, Account.employees).where(col(Account.key).in_(keys))).all())
        for keys in _chunks(o for o in owners if o and o not in self.team):
            self.team.update({k: None for k in keys})
            self.team.update(self.session.exec(
                select(Owner.key, Owner.team).where(col(Owner.key).in_(keys))).all())

    def facets(self, *, source: str | None, account: str | None, owner: str | None) -> Facets:
        return Facets(source=source or UNKNOWN,
                      segment=segment_of(self.employees.get(account)) if account else UNKNOWN,
                      owner=owner or UNASSIGNED,
                      team=(self.team.get(owner) or UNASSIGNED) if owner else UNASSIGNED)

    def person_facets(self, person_id: int | None, *, owner: str | None = None) -> Facets:
        """A person's facets; ``owner`` (a handoff's owner) overrides the person's own."""
        p_owner, account, _ = self.person.get(person_id or -1, (None, None, None))
        return self.facets(source=self.person_source.get(person_id or -1), account=account,
                           owner=owner or p_owner)



def _handoff_version(version: int | None) -> Any:
    return true() if version is ALL_VERSIONS else Handoff.definition_version == version


def _mql_version(version: int | None) -> Any:
    return true() if version is ALL_VERSIONS else StageEvent.definition_version == version


def handoffs(session: Session, start: datetime, end: datetime, *, states: Sequence[str],
             version: int | None, pending: bool = False) -> list[HandoffRecord]:
    """Handoffs decided in the window with a state in ``states``; with ``pending``, also those
    opened in the window and still undecided at its end."""
    decided = and_(col(Handoff.state).in_(states), col(Handoff.decided_at) >= start,
                   col(Handoff.decided_at) < end)
    undecided = and_(Handoff.opened_at >= start, Handoff.opened_at < end,
                     or_(col(Handoff.decided_at).is_(None), col(Handoff.decided_at) >= end))
    rows = list(session.exec(select(
        Handoff.id, Handoff.person_id, Handoff.state, Handoff.reason, Handoff.decided_at,
        Handoff.definition_version, Handoff.owner_key).where(
        or_(decided, undecided) if pending else decided, _handoff_version(version))
        .order_by(Handoff.id)))
    lookup = Lookup(session)
    lookup.load(persons=[h.person_id for h in rows], owners=[h.owner_key for h in rows])
    out = []
    for h in rows:
        is_decided = (h.state in states and h.decided_at is not None
                      and start <= h.decided_at < end)
        out.append(HandoffRecord(
            id=h.id or 0, person_id=h.person_id, state=h.state if is_decided else "pending",
            reason=h.reason, decided_at=h.decided_at, definition_version=h.definition_version,
            facets=lookup.person_facets(h.person_id, owner=h.owner_key)))
    return out


def clocks(session: Session, start: datetime, end: datetime, *, kind: str | None,
           by: str, version: int | None, now: datetime) -> list[ClockRecord]:
    """SLA clocks stopped (``by="stopped"``) or due (``by="due"``) in the window."""
    column = ClockFact.stopped_at if by == "stopped" else ClockFact.due_at
    # read from the clock mirror (0008), indexed for these windows, so that sla_clock needs
    # no index beyond what its writers use (see ``metrics.facts.clock_outcome_sql``)
    stmt = (select(col(ClockFact.clock_id).label("id"), ClockFact.handoff_id, ClockFact.kind,
                   ClockFact.state, ClockFact.due_at, ClockFact.stopped_at,
                   ClockFact.business_minutes, ClockFact.calendar_minutes, Handoff.person_id,
                   Handoff.owner_key, Handoff.definition_version)
            .join(Handoff, col(Handoff.id) == ClockFact.handoff_id)
            .where(col(column) >= start, col(column) < end, _handoff_version(version))
            .order_by(col(ClockFact.clock_id)))
    if kind is not None:
        stmt = stmt.where(ClockFact.kind == kind)
    rows = list(session.exec(stmt))
    lookup = Lookup(session)
    lookup.load(persons=[c.person_id for c in rows], owners=[c.owner_key for c in rows])
    return [ClockRecord(
        id=c.id or 0, handoff_id=c.handoff_id, person_id=c.person_id, kind=c.kind,
        outcome=clock_outcome(c, now=now), due_at=c.due_at, stopped_at=c.stopped_at,
        business_minutes=c.business_minutes, calendar_minutes=c.calendar_minutes,
        definition_version=c.definition_version,
        facets=lookup.person_facets(c.person_id, owner=c.owner_key)) for c in rows]


def clock_outcome(clock: Any, *, now: datetime) -> str:
    """Met or breached; a clock still running past its due instant has breached."""
    if clock.state in ("met", "breached"):
        return clock.state
    if clock.stopped_at is not None:
        return "met" if clock.stopped_at <= clock.due_at else "breached"
    return "breached" if clock.due_at <= now else "pending"


def mql_events(session: Session, start: datetime, end: datetime, *,
               version: int | None) -> list[Any]:
    """MQL events in the window as plain rows (id, person_id, at, definition_version)."""
    return list(session.exec(select(
        StageEvent.id, StageEvent.person_id, StageEvent.at, StageEvent.definition_version).where(
        StageEvent.stage == "mql", StageEvent.at >= start, StageEvent.at < end,
        _mql_version(version)).order_by(StageEvent.at, StageEvent.id)))


def mql_cohort(session: Session, start: datetime, end: datetime, *,
               version: int | None) -> list[MqlRecord]:
    """MQL events in the window, each with how far its person got afterwards."""
    events = mql_events(session, start, end, version=version)
    later: dict[int, list[tuple[str, datetime]]] = {}
    accepted: set[int] = set()
    for ids in _chunks(e.person_id for e in events):
        for pid, stage, at in session.exec(select(
                StageEvent.person_id, StageEvent.stage, StageEvent.at).where(
                col(StageEvent.person_id).in_(ids),
                col(StageEvent.stage).in_(("sal", "sql", "won")))):
            later.setdefault(pid, []).append((stage, at))
    for ids in _chunks(e.id for e in events):
        accepted.update(session.exec(select(Handoff.mql_event_id).where(
            col(Handoff.mql_event_id).in_(ids), Handoff.state == "accepted")).all())
    lookup = Lookup(session)
    lookup.load(persons=[e.person_id for e in events])
    out = []
    for e in events:
        reached = {stage for stage, at in later.get(e.person_id, []) if at >= e.at}
        path = FunnelPath(reached_sal="sal" in reached or e.id in accepted,
                          reached_sql="sql" in reached, won="won" in reached)
        out.append(MqlRecord(event_id=e.id or 0, person_id=e.person_id, at=e.at,
                             definition_version=e.definition_version, path=path,
                             facets=lookup.person_facets(e.person_id)))
    return out


def first_mqls(session: Session, person_ids: Iterable[int], *,
               version: int | None) -> dict[int, list[tuple[datetime, int | None]]]:
    """Every counted MQL instant (with its version) of each person, earliest first."""
    found: dict[int, list[tuple[datetime, int | None]]] = {}
    for ids in _chunks(person_ids):
        for pid, at, v in session.exec(select(
                StageEvent.person_id, StageEvent.at, StageEvent.definition_version).where(
                col(StageEvent.person_id).in_(ids), StageEvent.stage == "mql",
                _mql_version(version))):
            found.setdefault(pid, []).append((at, v))
    return {pid: sorted(items, key=lambda item: item[0]) for pid, items in found.items()}


def deals(session: Session, *, closed_from: date | None = None, closed_before: date,
          won_only: bool = False, open_at: datetime | None = None,
          version: int | None = ALL_VERSIONS, sourcing: bool = False) -> list[DealRecord]:
    """Live opportunities closed in ``[closed_from, closed_before)``, or with ``open_at`` those
    created before it and not closed before ``closed_before`` (open as of that instant)."""
    # plain columns joined in one query (no ORM objects, no IN-list lookups): at 200k
    # opportunities the lookups cost more than the query itself
    stmt = (select(Opportunity.key, Opportunity.amount, Opportunity.is_won,
                   Opportunity.created_at, Opportunity.close_date, Opportunity.account_key,
                   Opportunity.owner_key, Opportunity.source, CrmRow.person_id,
                   Person.created_at.label("lead_created_at"),  # type: ignore[attr-defined]
                   Account.employees, Owner.team)
            .join(CrmRow, col(CrmRow.key) == Opportunity.person_record_key, isouter=True)
            .join(Person, col(Person.id) == CrmRow.person_id, isouter=True)
            .join(Account, col(Account.key) == Opportunity.account_key, isouter=True)
            .join(Owner, col(Owner.key) == Opportunity.owner_key, isouter=True)
            .where(Opportunity.live).order_by(Opportunity.key))
    if open_at is not None:
        stmt = stmt.where(col(Opportunity.created_at) < open_at, or_(
            col(Opportunity.is_closed).is_(False),
            and_(col(Opportunity.close_date).is_not(None),
                 col(Opportunity.close_date) >= closed_before)))
    else:
        stmt = stmt.where(Opportunity.is_closed, col(Opportunity.close_date) < closed_before)
        if closed_from is not None:
            stmt = stmt.where(col(Opportunity.close_date) >= closed_from)
        if won_only:
            stmt = stmt.where(Opportunity.is_won)
    rows = [(row, row.person_id) for row in session.exec(stmt)]
    mqls = first_mqls(session, [p for _, p in rows if p is not None],
                      version=version) if sourcing else {}
    out = []
    for opp, pid in rows:
        role = "open" if open_at is not None else ("won" if opp.is_won else "lost")
        customer = (f"account:{opp.account_key}" if opp.account_key
                    else f"person:{pid}" if pid is not None else f"opportunity:{opp.key}")
        before = [(at, v) for at, v in mqls.get(pid or -1, [])
                  if opp.created_at is not None and at < opp.created_at]
        out.append(DealRecord(
            key=opp.key, amount=float(opp.amount or 0), role=role, created_at=opp.created_at,
            close_date=opp.close_date, person_id=pid, customer=customer,
            lead_created=opp.lead_created_at.date() if opp.lead_created_at else None,
            facets=Facets(
                source=opp.source or UNKNOWN,
                segment=segment_of(opp.employees) if opp.account_key else UNKNOWN,
                owner=opp.owner_key or UNASSIGNED,
                team=(opp.team or UNASSIGNED) if opp.owner_key else UNASSIGNED),
            sourced=bool(before), mql_version=before[0][1] if before else None))
    return out


def _overlap_days(start: date, end: date, first_day: date, end_day: date) -> int:
    """Days of the inclusive period ``start..end`` inside ``[first_day, end_day)``."""
    return max(0, (min(end + timedelta(days=1), end_day) - max(start, first_day)).days)


def _spend_periods(session: Session, first_day: date, end_day: date
                   ) -> Iterator[tuple[str, str, float, date, date]]:
    """``(ref_id, team, amount, start, end)`` of each spend and campaign cost overlapping
    the window (a campaign with one date lasts that day); ``aggregates.spend_totals`` is the
    same in SQL, and tests hold the two to the same sums."""
    for sid, team, amount, start, end in session.execute(
            select(Spend.id, Spend.team, Spend.amount, Spend.period_start, Spend.period_end)
            .where(Spend.period_start < end_day, Spend.period_end >= first_day)
            .order_by(Spend.id)):
        yield f"spend:{sid}", team, amount, start, end
    for key, cost, start_date, end_date in session.execute(
            select(Campaign.key, Campaign.actual_cost, Campaign.start_date, Campaign.end_date)
            .where(Campaign.live, col(Campaign.actual_cost).is_not(None),
                   or_(col(Campaign.start_date).is_not(None),
                       col(Campaign.end_date).is_not(None)))
            .order_by(Campaign.key)):
        begin = start_date or end_date
        finish = max(begin, end_date or start_date)
        if begin < end_day and finish >= first_day:
            yield f"campaign:{key}", "marketing", float(cost or 0), begin, finish


def spend(session: Session, first_day: date, end_day: date) -> list[SpendRecord]:
    """API spend and CRM campaign cost (marketing), prorated by days inside the window."""
    return [_prorated(ref_id, team, amount, start, end, first_day, end_day)
            for ref_id, team, amount, start, end in _spend_periods(session, first_day, end_day)]


def _prorated(ref_id: str, team: str, amount: float, start: date, end: date,
              first_day: date, end_day: date) -> SpendRecord:
    days = (end - start).days + 1
    share = amount * _overlap_days(start, end, first_day, end_day) / days
    return SpendRecord(ref_id=ref_id, team=team, amount=share, full_amount=amount,
                       period_start=start, period_end=end)


def forecasts(session: Session, first_day: date, end_day: date) -> list[Forecast]:
    return list(session.exec(select(Forecast).where(
        Forecast.period_end >= first_day, Forecast.period_end < end_day).order_by(Forecast.id)))


def commitments(session: Session, first_day: date, end_day: date) -> list[Commitment]:
    """Commitments whose whole period lies inside the window."""
    return list(session.exec(select(Commitment).where(
        Commitment.period_start >= first_day, Commitment.period_end < end_day)
        .order_by(Commitment.id)))


def person_segments(session: Session, person_ids: Iterable[int]) -> dict[int, str]:
    lookup = Lookup(session)
    ids = list(person_ids)
    lookup.load(persons=ids)
    return {pid: lookup.person_facets(pid).segment for pid in ids}
