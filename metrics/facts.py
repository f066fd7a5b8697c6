"""Facts the metrics read instead of joining at query time, and how they stay correct.

The slow parts of the metric queries were joins a deal or an MQL makes for every request: a
deal's person (through its CRM row), that person's creation date and whether they were an
MQL before the deal was created; an MQL's later stages, accepted handoff and segment; an SLA
clock's definition version (on its handoff). These tables hold those answers per row:

* ``metric_deal``: each live opportunity with its person, cycle and lead-cycle days, its
  customer, segment and team, and whether it was marketing sourced (for the version in
  ``metric_fact_state``); ``metric_deal_day`` counts closed deals per day, and
  ``metric_customer`` holds each customer's first win;
* ``metric_mql``: each MQL event with its UTC day, its person's segment and how far the
  person got afterwards; ``metric_mql_day`` counts them per day, for whole-day windows;
* ``metric_clock``: each SLA clock with its handoff's definition version;
* ``metric_handoff_day`` and ``metric_clock_day``: handoffs and clock outcomes per UTC day,
  as signed deltas that migration 0011's triggers append on every write (so they are exact
  without any rebuild) and ``compact`` folds after each sync; ``metric_clock_month``, the
  stopped clocks' business and calendar minutes per UTC month, kept the same way (0015).

Facts are only read by the headline path (``metrics.aggregates``); the population endpoint
still joins the live tables, and the tests hold both to the same answers.

Keeping them correct is the database's job, not the writers': migration 0008 puts triggers
on the tables the facts are made of. Clocks are mirrored as they are written, one set-based
statement per statement (a clock changes alone, and its handoff's version never changes).
Deal and MQL facts depend on merges, links, deletions and re-syncs across several tables,
so a write there only leaves a ``metric_change`` marker for the family in the writer's own
transaction; the next metric request that reads the family (``ensure_fresh``) consumes the
markers and rebuilds it, set-based, in its own transaction. A marker becomes visible
exactly when its writer commits, so no committed change is ever missed and an uncommitted
one is never counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.orm import aliased
from sqlmodel import Field, Session, SQLModel, col

from metrics.query import UNASSIGNED
from service.crm.models import Account, Opportunity, Owner
from service.db import utc_field
from service.definitions.models import LeadDefinition
from service.handoffs.models import Handoff
from service.people.models import Person, StageEvent
from service.sync.models import CrmRow

Family = Literal["deals", "mqls"]
FAMILIES: tuple[Family, ...] = ("deals", "mqls")
# the tables each rebuilt family is made of (migration 0008 marks a family on their writes)
INPUTS: dict[Family, tuple[str, ...]] = {
    "deals": ("opportunity", "crm_record", "person", "stage_event", "lead_definition",
              "account", "owner"),
    "mqls": ("stage_event", "handoff", "person", "account"),
}
_LOCK = 0x7472756365  # the advisory lock serialising rebuilds on PostgreSQL
_CHECKED = "truce.fresh_facts"  # session.info: what this answer found fresh


class DealFact(SQLModel, table=True):
    """A live opportunity with what its deal metrics would otherwise join for."""

    __tablename__ = "metric_deal"
    # a window's closed deals, and the deals open at its end, read from the index alone on
    # PostgreSQL (however many rebuilds' dead rows the table still holds)
    __table_args__ = (
        Index("ix_metric_deal_closed", "close_date", sqlite_where=text("is_closed"),
              postgresql_where=text("is_closed"), postgresql_include=[
                  "is_won", "cycle_days", "lead_days", "amount", "sourced", "mql_version"]),
        Index("ix_metric_deal_created_at", "created_at",
              postgresql_include=["is_closed", "close_date"]),
        # the deals open at an instant (most are closed), and the won deals of a window
        Index("ix_metric_deal_open", "created_at", sqlite_where=text("NOT is_closed"),
              postgresql_where=text("NOT is_closed")),
        Index("ix_metric_deal_won", "close_date", sqlite_where=text("is_closed AND is_won"),
              postgresql_where=text("is_closed AND is_won"), postgresql_include=[
                  "cycle_days", "lead_days", "amount", "sourced", "mql_version"]))

    opportunity_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    source: str | None = Field(default=None, max_length=20)
    account_key: str | None = Field(default=None, max_length=200)
    owner_key: str | None = Field(default=None, max_length=200)
    amount: float | None = None
    is_closed: bool = False
    is_won: bool = False
    created_at: datetime | None = utc_field(nullable=True)
    close_date: date | None = None
    cycle_days: int | None = None  # close date - created date (UTC)
    person_id: int | None = None
    lead_days: int | None = None  # close date - the person's created date, with a created date
    customer: str = Field(max_length=220)  # account:, else person:, else opportunity:<key>
    segment: str = Field(max_length=20)  # its account's
    team: str = Field(max_length=100)  # its owner's
    sourced: bool = False  # the person was an MQL before the deal was created
    mql_version: int | None = None  # that earliest MQL's version (when every version counts)


class DealDay(SQLModel, table=True):
    """Live closed deals per close date, outcome, segment and team: counts and amounts."""

    __tablename__ = "metric_deal_day"
    __table_args__ = (Index("ix_metric_deal_day_close_date", "close_date"),)

    id: int | None = Field(default=None, primary_key=True)
    close_date: date
    is_won: bool = False
    segment: str = Field(max_length=20)
    team: str = Field(max_length=100)
    n: int
    amount: float


class WonCycleMonth(SQLModel, table=True):
    """Live won deals per close month and cycle length, from creation (``cycle``) or from
    their person's creation (``lead``): a window's whole months read a few hundred rows
    for their cycle histograms instead of every won deal (cycle lengths are whole days, so
    a month holds at most as many rows as there are distinct lengths)."""

    __tablename__ = "metric_won_cycle_month"
    __table_args__ = (Index("ix_metric_won_cycle_month_month", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    month: date  # the close date's first of the month
    measure: str = Field(max_length=5)  # cycle | lead
    days: int
    n: int


class Customer(SQLModel, table=True):
    """A customer (see ``DealFact.customer``) and the close date of their first live win."""

    __tablename__ = "metric_customer"
    __table_args__ = (Index("ix_metric_customer_first_won", "first_won"),)

    customer: str = Field(primary_key=True, max_length=220)
    first_won: date


class MqlFact(SQLModel, table=True):
    """An MQL event with its day, its person's segment and how far the person got after."""

    __tablename__ = "metric_mql"
    __table_args__ = (Index("ix_metric_mql_at", "at"),)

    event_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    person_id: int
    at: datetime = utc_field()
    day: date
    definition_version: int | None = None
    segment: str = Field(max_length=20)
    reached_sal: bool = False  # a later SAL, SQL or win, or its handoff accepted
    reached_sql: bool = False
    won: bool = False


class MqlDay(SQLModel, table=True):
    """MQL events per UTC day, version, segment and funnel path: whole-day windows' counts."""

    __tablename__ = "metric_mql_day"
    __table_args__ = (Index("ix_metric_mql_day_day", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    definition_version: int | None = None
    segment: str = Field(max_length=20)
    reached_sal: bool = False
    reached_sql: bool = False
    won: bool = False
    n: int


class ClockFact(SQLModel, table=True):
    """An SLA clock with its handoff's definition version (kept by triggers on sla_clock).

    ``state`` is the clock's as of its creation or stop: the SLA scan's moves of a running
    clock to warning or breached are not mirrored (see migration 0008), since a running
    clock's outcome follows from its due instant and the time asked about anyway.
    """

    __tablename__ = "metric_clock"
    __table_args__ = (
        Index("ix_metric_clock_kind_stopped_at", "kind", "stopped_at", postgresql_include=[
            "definition_version", "business_minutes", "calendar_minutes", "handoff_id"]),
        # no state in any index: the SLA scan's state changes stay heap-only updates
        Index("ix_metric_clock_due_at", "due_at"),
        {"postgresql_with": {"fillfactor": 80}})

    clock_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    handoff_id: int
    kind: str = Field(max_length=20)
    definition_version: int | None = None
    state: str = Field(max_length=20)
    due_at: datetime = utc_field()
    stopped_at: datetime | None = utc_field(nullable=True)
    business_minutes: int | None = None
    calendar_minutes: int | None = None


def clock_outcome_sql(now: datetime) -> Any:
    """SQL for ``metrics.repository.clock_outcome`` over ``metric_clock``: met or breached,
    a clock still running past its due instant breached, otherwise pending.

    Readers ask the mirror rather than ``sla_clock`` so that ``sla_clock`` keeps only the
    indexes its writers need: the SLA scan moves a million clocks in one statement, and each
    index on the table costs every moved row an insertion.
    """
    state, stopped = col(ClockFact.state), col(ClockFact.stopped_at)
    due = col(ClockFact.due_at)
    return case((state.in_(("met", "breached")), state),
                (stopped.is_not(None), case((stopped <= due, "met"), else_="breached")),
                (due <= now, "breached"), else_="pending")


def _delta_id() -> Any:
    """A counter table's key: deltas are appended for ever (and folded by ``compact``)."""
    return Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True))


class HandoffDay(SQLModel, table=True):
    """Handoffs per UTC day opened and decided, state, reason and version, as signed deltas
    (migration 0011's triggers append them on every write to ``handoff``): a key's count is
    the sum of its rows."""

    __tablename__ = "metric_handoff_day"
    __table_args__ = (Index("ix_metric_handoff_day_decided_day", "decided_day"),
                      Index("ix_metric_handoff_day_opened_day", "opened_day"))

    id: int | None = _delta_id()
    opened_day: date
    decided_day: date | None = None
    state: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=200)
    definition_version: int
    n: int


class ClockDay(SQLModel, table=True):
    """Clock facts per UTC due day, kind, version and settled outcome ("running" while the
    outcome depends on the time asked about), as signed deltas kept by triggers."""

    __tablename__ = "metric_clock_day"
    __table_args__ = (Index("ix_metric_clock_day_due_day", "due_day"),)

    id: int | None = _delta_id()
    due_day: date
    kind: str = Field(max_length=20)
    definition_version: int | None = None
    outcome: str = Field(max_length=20)
    n: int


class FactChange(SQLModel, table=True):
    """A family whose inputs changed since it was built (at most one per writing transaction)."""

    __tablename__ = "metric_change"
    __table_args__ = (Index("ix_metric_change_family", "family"),)

    id: int | None = Field(default=None, primary_key=True)
    family: str = Field(max_length=20)


class FactState(SQLModel, table=True):
    """A built family; deals are built for one definition version (None: every version)."""

    __tablename__ = "metric_fact_state"

    family: str = Field(primary_key=True, max_length=20)
    version: int | None = None


class ClockMonth(SQLModel, table=True):
    """Stopped clocks with both durations per UTC month stopped, kind and version: how many
    took each whole number of business (``measure`` "business") and calendar minutes, as
    signed deltas kept by migration 0015's triggers. A window's whole months read these
    rows (at most one per distinct duration a month) instead of every clock."""

    __tablename__ = "metric_clock_month"
    __table_args__ = (Index("ix_metric_clock_month_kind_month", "kind", "month"),)

    id: int | None = _delta_id()
    month: date  # the first day of the UTC month the clock stopped in
    kind: str = Field(max_length=20)
    definition_version: int | None = None
    measure: str = Field(max_length=10)  # business | calendar
    minutes: int
    n: int


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_ACTIVE_VERSION = select(LeadDefinition.version).where(LeadDefinition.state == "active")


def active_version(session: Session) -> int | None:
    """The active definition's version; None means MQL events of every version count.

    One statement object, so it is keyed once: metric requests ask it on every poll."""
    return session.execute(_ACTIVE_VERSION).scalars().first()


@cache
def _freshness_query(active: bool) -> Select[Any]:
    """Built once per shape, with the family and version bound at run time: building and
    keying the statement cost more than running it."""
    family = bindparam("family", type_=String)
    wanted = (_ACTIVE_VERSION.limit(1).scalar_subquery() if active
              else bindparam("version", type_=Integer))
    built = select(FactState.version).where(FactState.family == family)
    return select(built.exists(), built.scalar_subquery(), wanted,
                  select(FactChange.id).where(FactChange.family == family).exists())


def _is_fresh(session: Session, family: Family,
              version: int | None | Literal["active"]) -> bool:
    """Built (for ``version``'s sourcing, for deals) with no marker left: one round trip,
    since every metric request asks."""
    active = version == "active"
    params = {"family": family} if active else {"family": family, "version": version}
    row = session.execute(_freshness_query(active), params).one()
    is_built, basis, version_wanted, marked = row
    if not is_built or marked:
        return False
    return family != "deals" or basis == version_wanted


def ensure_fresh(session: Session, family: Family,
                 version: int | None | Literal["active"] = "active") -> None:
    """Rebuild ``family`` when a write marked it, or when deals were built for another
    definition version than ``version`` (by default the active one's).

    Cheap when nothing changed: one query over the state row and the markers; none when
    the same answer (see :func:`one_answer`) already asked.
    """
    checked: set[tuple[str, object]] | None = session.info.get(_CHECKED)
    if checked is not None and (family, version) in checked:
        return
    stale = not _is_fresh(session, family, version)
    if stale and _postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        stale = not _is_fresh(session, family, version)  # rebuilt by another meanwhile?
    if stale:
        refresh(session, families=(family,), version=version)
    if checked is not None:
        checked.add((family, version))


@contextmanager
def one_answer(session: Session) -> Iterator[None]:
    """Within the block, each family's freshness is asked once: a metric that reads the deal
    facts three times answers from one check, as of one moment."""
    session.info[_CHECKED] = set()
    try:
        yield
    finally:
        session.info.pop(_CHECKED, None)


def warm(engine: Engine) -> None:
    """Rebuild whatever writes marked and fold the daily counters, in a transaction of its
    own: called after a sync run, the first metric request afterwards need not wait."""
    from service.db import unit_of_work

    with unit_of_work(engine) as session:
        for family in FAMILIES:
            ensure_fresh(session, family)
        compact(session)


def compact(session: Session) -> None:
    """Fold the counters' deltas into one row per key (and drop keys that sum to
    nothing), so a window reads a few rows per day however many writes there were.

    On PostgreSQL one statement deletes and re-inserts what it saw, so a delta committed
    meanwhile is neither lost nor counted twice; SQLite has a single writer, and folds the
    rows up to the highest id it saw.
    """
    for model in (HandoffDay, ClockDay, ClockMonth):
        table = model.__table__  # type: ignore[attr-defined]
        keys = ", ".join(c.name for c in table.columns if c.name not in ("id", "n"))
        name = table.name
        if _postgres(session):
            session.execute(text(
                f"WITH gone AS (DELETE FROM {name} RETURNING {keys}, n) "
                f"INSERT INTO {name} ({keys}, n) SELECT {keys}, sum(n) FROM gone "
                f"GROUP BY {keys} HAVING sum(n) <> 0"))
            continue
        top = session.execute(select(func.max(table.c.id))).scalar()
        if top is None:
            continue
        session.execute(text(
            f"INSERT INTO {name} ({keys}, n) SELECT {keys}, sum(n) FROM {name} "
            f"WHERE id <= :top GROUP BY {keys} HAVING sum(n) <> 0"), {"top": top})
        session.execute(delete(table).where(table.c.id <= top))


def refresh(session: Session, *, families: tuple[Family, ...] = FAMILIES,
            version: int | None | Literal["active"] = "active") -> None:
    """Rebuild the families from their tables, consuming their markers first (so a change
    committed during the rebuild leaves a marker for the next one). The bench calls this
    after loading; requests call it through ``ensure_fresh``."""
    basis = active_version(session) if version == "active" else version
    for family in families:
        session.execute(delete(FactChange).where(FactChange.family == family))
        if _postgres(session):  # later writes in this transaction must mark the family again
            session.execute(text("SELECT set_config(:name, '', true)"),
                            {"name": f"truce.metric_stale_{family}"})
        if family == "deals":
            _build_deals(session, basis)
        else:
            _build_mqls(session)
        session.execute(delete(FactState).where(FactState.family == family))
        session.execute(insert(FactState).values(family=family, version=basis))


def _build_deals(session: Session, version: int | None) -> None:
    # imported here: aggregates reads these tables, and both share the SQL helpers
    from metrics.aggregates import _days, _month, _or, _segment

    mql = aliased(StageEvent, name="mql")
    counted = and_(mql.stage == "mql",
                   literal(True) if version is None else mql.definition_version == version)
    # a person was an MQL before the deal exactly when their first counted MQL was: one
    # grouped pass over the MQLs, joined by hash, instead of a look-up per deal
    firsts = (select(mql.person_id.label("person_id"), func.min(mql.at).label("at"))
              .where(counted).group_by(mql.person_id).subquery("first_mql"))
    sourced = func.coalesce(firsts.c.at < Opportunity.created_at, False)
    first_version: Any = null()
    if version is None:  # that first MQL's version, looked up for sourced deals only
        first_version = case((sourced, select(mql.definition_version).where(
            counted, mql.person_id == CrmRow.person_id, mql.at < Opportunity.created_at)
            .order_by(mql.at, mql.id).limit(1)
            .correlate(Opportunity, CrmRow).scalar_subquery()))
    customer = case(
        (func.nullif(Opportunity.account_key, "").is_not(None),
         literal("account:") + Opportunity.account_key),
        (col(CrmRow.person_id).is_not(None),
         literal("person:") + cast(CrmRow.person_id, String)),
        else_=literal("opportunity:") + Opportunity.key)
    rows = (select(
        Opportunity.id, Opportunity.source, Opportunity.account_key, Opportunity.owner_key,
        Opportunity.amount, Opportunity.is_closed, Opportunity.is_won, Opportunity.created_at,
        Opportunity.close_date, _days(session, Opportunity.close_date, Opportunity.created_at),
        CrmRow.person_id,
        case((col(Opportunity.created_at).is_not(None),
              _days(session, Opportunity.close_date, Person.created_at))),
        customer, sourced, first_version, _segment(Account.employees),
        _or(Owner.team, UNASSIGNED))
        .select_from(Opportunity)
        .join(CrmRow, col(CrmRow.key) == Opportunity.person_record_key, isouter=True)
        .join(Person, col(Person.id) == CrmRow.person_id, isouter=True)
        .join(firsts, firsts.c.person_id == CrmRow.person_id, isouter=True)
        .join(Account, col(Account.key) == Opportunity.account_key, isouter=True)
        .join(Owner, col(Owner.key) == Opportunity.owner_key, isouter=True)
        .where(Opportunity.live)
        # stored in close-date order, so a window's deals lie on few pages
        .order_by(Opportunity.is_closed, Opportunity.close_date))
    table = DealFact.__table__  # type: ignore[attr-defined]
    days = DealDay.__table__  # type: ignore[attr-defined]
    customers = Customer.__table__  # type: ignore[attr-defined]
    cycles = WonCycleMonth.__table__  # type: ignore[attr-defined]
    for each in (days, customers, cycles, table):
        session.execute(delete(each))
    session.execute(insert(table).from_select(
        ["opportunity_id", "source", "account_key", "owner_key", "amount", "is_closed",
         "is_won", "created_at", "close_date", "cycle_days", "person_id", "lead_days",
         "customer", "sourced", "mql_version", "segment", "team"], rows))
    keys = [table.c.close_date, table.c.is_won, table.c.segment, table.c.team]
    session.execute(insert(days).from_select(
        ["close_date", "is_won", "segment", "team", "n", "amount"],
        select(*keys, func.count(), func.coalesce(func.sum(table.c.amount), 0.0))
        .where(table.c.is_closed, table.c.close_date.is_not(None)).group_by(*keys)))
    session.execute(insert(customers).from_select(
        ["customer", "first_won"],
        select(table.c.customer, func.min(table.c.close_date))
        .where(table.c.is_closed, table.c.is_won, table.c.close_date.is_not(None))
        .group_by(table.c.customer)))
    month = _month(session, table.c.close_date)
    for measure, length in (("cycle", table.c.cycle_days), ("lead", table.c.lead_days)):
        session.execute(insert(cycles).from_select(
            ["month", "measure", "days", "n"],
            select(month, literal(measure), length, func.count())
            .where(table.c.is_closed, table.c.is_won, table.c.close_date.is_not(None),
                   length.is_not(None))
            .group_by(month, length)))


def _build_mqls(session: Session) -> None:
    from metrics.aggregates import _person_facet, _utc_day

    event = aliased(StageEvent, name="mql")
    later = aliased(StageEvent, name="later")
    latest = (select(later.person_id.label("person_id"),
                     func.max(later.at).label("sal"),
                     func.max(later.at).filter(col(later.stage).in_(("sql", "won"))).label("sql"),
                     func.max(later.at).filter(later.stage == "won").label("won"))
              .where(col(later.stage).in_(("sal", "sql", "won")))
              .group_by(later.person_id).subquery("latest"))
    accepted = (select(Handoff.mql_event_id.label("mql_event_id"))  # type: ignore[attr-defined]
                .where(Handoff.state == "accepted").subquery("accepted"))
    stmt = (select().select_from(event)
            .join(latest, latest.c.person_id == event.person_id, isouter=True)
            .join(accepted, accepted.c.mql_event_id == event.id, isouter=True)
            .where(event.stage == "mql"))
    stmt, segment = _person_facet(stmt, "segment", event.person_id)

    def reached(stage: str) -> Any:
        return func.coalesce(latest.c[stage] >= event.at, False)

    rows = stmt.add_columns(
        event.id, event.person_id, event.at, _utc_day(session, event.at),
        event.definition_version, segment,
        or_(reached("sal"), accepted.c.mql_event_id.is_not(None)), reached("sql"),
        reached("won"))
    flags = ["reached_sal", "reached_sql", "won"]
    facts = MqlFact.__table__  # type: ignore[attr-defined]
    days = MqlDay.__table__  # type: ignore[attr-defined]
    session.execute(delete(days))
    session.execute(delete(facts))
    session.execute(insert(facts).from_select(
        ["event_id", "person_id", "at", "day", "definition_version", "segment", *flags], rows))
    keys = [facts.c.day, facts.c.definition_version, facts.c.segment,
            *(facts.c[f] for f in flags)]
    session.execute(insert(days).from_select(
        ["day", "definition_version", "segment", *flags, "n"],
        select(*keys, func.count()).group_by(*keys)))
