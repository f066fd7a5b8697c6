"""Marketing's side of the SLA: MQLs promised per period, and how far they were delivered.

Attainment is read from the same records the metrics use: MQL stage events of the active
definition's version, handoffs decided in the period, and SLA clocks that fell due in it,
so marketing's promise is reported beside sales' compliance with its own clocks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func
from sqlmodel import Session, col, select

from metrics.facts import ClockFact, clock_outcome_sql
from service.crm.models import Account
from service.db import utcnow
from service.definitions.service import active_definition
from service.handoffs.models import Commitment, Handoff
from service.people.models import Person, StageEvent

SEGMENTS = ("SMB", "Mid-Market", "Enterprise", "Unknown")
DECIDED = ("accepted", "rejected", "recycled")


def create_commitment(session: Session, *, period_start: date, period_end: date,
                      mqls_promised: int, min_acceptance_rate: float | None,
                      segment: str | None, created_by: str) -> Commitment:
    """Record a promise; the API has already checked the period and the ranges."""
    commitment = Commitment(period_start=period_start, period_end=period_end,
                            mqls_promised=mqls_promised, min_acceptance_rate=min_acceptance_rate,
                            segment=segment, created_by=created_by)
    session.add(commitment)
    session.flush()
    return commitment


def window(commitment: Commitment) -> tuple[datetime, datetime]:
    """The period as ``[start, end + 1 day)`` in UTC: the end date is inclusive."""
    start = datetime.combine(commitment.period_start, time(), tzinfo=UTC)
    end = datetime.combine(commitment.period_end + timedelta(days=1), time(), tzinfo=UTC)
    return start, end


def attainment(session: Session, commitment: Commitment, *,
               definition_version: int | None, now: datetime | None = None) -> dict[str, Any]:
    """The commitment with what was delivered against it, and sales' SLA record beside it."""
    start, end = window(commitment)
    persons = _persons_in(commitment.segment)
    delivered: int | None = None  # no active definition: nothing counts as an MQL yet
    if definition_version is not None:
        stmt = select(func.count(col(StageEvent.id))).where(
            StageEvent.stage == "mql", StageEvent.definition_version == definition_version,
            StageEvent.at >= start, StageEvent.at < end)
        if persons is not None:
            stmt = stmt.where(col(StageEvent.person_id).in_(persons))
        delivered = session.exec(stmt).one()
    decided = _count_by_state(session, select(Handoff.state, func.count()).where(
        col(Handoff.state).in_(DECIDED), col(Handoff.decided_at) >= start,
        col(Handoff.decided_at) < end), persons, Handoff.person_id)
    accepted = decided.get("accepted", 0)
    refused = decided.get("rejected", 0) + decided.get("recycled", 0)
    outcome = clock_outcome_sql(now or utcnow()).label("outcome")
    clocks = _count_by_state(session, select(outcome, func.count())
                             .join(Handoff, col(Handoff.id) == col(ClockFact.handoff_id))
                             .where(col(ClockFact.due_at) >= start, col(ClockFact.due_at) < end),
                             persons, Handoff.person_id)
    met, breached = clocks.get("met", 0), clocks.get("breached", 0)
    rate = _ratio(accepted, accepted + refused)
    minimum = commitment.min_acceptance_rate
    return {
        **commitment.model_dump(),
        "definition_version": definition_version,
        "mqls_delivered": delivered,
        "attainment": None if delivered is None else _ratio(delivered, commitment.mqls_promised),
        "handoffs_accepted": accepted,
        "handoffs_rejected": refused,
        "acceptance_rate": rate,
        "meets_min_acceptance": None if rate is None or minimum is None else rate >= minimum,
        "sla_met": met,
        "sla_breached": breached,
        "sla_compliance": _ratio(met, met + breached),
    }


def attainments(session: Session, commitments: list[Commitment]) -> list[dict[str, Any]]:
    active = active_definition(session)
    version = active.version if active is not None else None
    return [attainment(session, c, definition_version=version) for c in commitments]


def _ratio(part: int, whole: int) -> float | None:
    """Null, not zero, when there is nothing to divide by."""
    return part / whole if whole else None


def _count_by_state(session: Session, stmt: Any, persons: Any, person_column: Any
                    ) -> dict[str, int]:
    if persons is not None:
        stmt = stmt.where(col(person_column).in_(persons))
    state = stmt.selected_columns[0]
    return {s: int(n) for s, n in session.exec(stmt.group_by(state)).all()}


def _persons_in(segment: str | None) -> Any:
    """Person ids in a segment (the bands of ``large_deals.segment_of``); None for all."""
    if segment is None:
        return None
    stmt = select(Person.id).outerjoin(Account, col(Account.key) == col(Person.account_key))
    employees = col(Account.employees)
    bands = {
        "SMB": employees < 100,
        "Mid-Market": and_(employees >= 100, employees < 1000),
        "Enterprise": employees >= 1000,
        "Unknown": employees.is_(None),
    }
    return stmt.where(bands[segment])
