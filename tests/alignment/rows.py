"""Rows inserted straight into the database, to build the evidence a test needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from sqlmodel import Session

from service.definitions.models import DefinitionApproval, LeadDefinition
from service.handoffs.models import BusinessCalendar, Handoff, SlaClock, SlaPolicy
from service.people.models import Person, StageEvent

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WEEK = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
_refs = count(1)


def agreed_definition(session: Session, *, teams: tuple[str, ...] = ("marketing", "sales"),
                      state: str = "active") -> LeadDefinition:
    definition = LeadDefinition(version=next(_refs), name="Agreed", rules={"all": []},
                                state=state, created_by="ops")
    session.add(definition)
    session.flush()
    for team in teams:
        session.add(DefinitionApproval(definition_id=definition.id, team=team,
                                       key_name=f"{team}-lead"))
    session.flush()
    return definition


def sla_policy(session: Session, *, active: bool = True) -> SlaPolicy:
    calendar = BusinessCalendar(name=f"cal-{next(_refs)}", timezone="UTC", hours=WEEK)
    session.add(calendar)
    session.flush()
    policy = SlaPolicy(name=f"policy-{next(_refs)}", calendar_id=calendar.id,
                       accept_within_minutes=240, first_touch_within_minutes=480, active=active)
    session.add(policy)
    session.flush()
    return policy


def person(session: Session) -> Person:
    found = Person(email=f"p{next(_refs)}@example.com")
    session.add(found)
    session.flush()
    return found


def event(session: Session, person_id: int, stage: str, at: datetime) -> StageEvent:
    found = StageEvent(person_id=person_id, stage=stage, at=at, source_ref=f"test:{next(_refs)}")
    session.add(found)
    session.flush()
    return found


def handoff(session: Session, person_id: int, *, state: str, decided_at: datetime | None,
            reason: str | None = None) -> Handoff:
    mql = event(session, person_id, "mql", (decided_at or NOW) - timedelta(days=1))
    found = Handoff(person_id=person_id, mql_event_id=mql.id, definition_version=1,
                    opened_at=mql.at, state=state, reason=reason, decided_at=decided_at)
    session.add(found)
    session.flush()
    return found


def clock(session: Session, handoff_id: int, kind: str, *, state: str, due_at: datetime
          ) -> SlaClock:
    found = SlaClock(handoff_id=handoff_id, kind=kind, target_minutes=240,
                     started_at=due_at - timedelta(hours=4),
                     warn_due_at=due_at - timedelta(hours=1), due_at=due_at, state=state)
    session.add(found)
    session.flush()
    return found
