"""Qualification: persons meeting the active definition get an MQL event at their MQL instant."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from service.db import utcnow
from service.definitions.facts import load_facts
from service.definitions.models import LeadDefinition
from service.definitions.rules import evaluate, first_met_at
from service.definitions.service import activate_due, active_definition
from service.people.models import Person, StageEvent
from service.people.service import restage
from service.settings import Settings

BATCH = 1000


def qualify(session: Session, definition: LeadDefinition, persons: Iterable[Person], *,
            now: datetime, cooldown: timedelta) -> list[StageEvent]:
    """Add an MQL event for each person who meets ``definition`` and has none open."""
    persons = [p for p in persons if p.live and p.merged_into is None]
    if not persons:
        return []
    ids = [p.id for p in persons]
    history: dict[int, list[StageEvent]] = {}
    for ev in session.exec(select(StageEvent).where(col(StageEvent.person_id).in_(ids),
                                                    col(StageEvent.stage).in_(("mql", "recycled")))
                           .order_by(StageEvent.at)):
        history.setdefault(ev.person_id, []).append(ev)
    facts = load_facts(session, persons)
    created: list[StageEvent] = []
    for person in persons:
        assert person.id is not None
        person.dirty = False
        session.add(person)
        fact = facts.get(person.id)
        if fact is None:
            continue
        events = history.get(person.id, [])
        mqls = [e for e in events
                if e.stage == "mql" and e.definition_version == definition.version]
        recycled = [e for e in events if e.stage == "recycled"]
        floor = None
        if mqls:
            last_recycle = recycled[-1].at if recycled else None
            if last_recycle is None or last_recycle < mqls[-1].at:
                continue  # already an MQL under this version
            floor = last_recycle + cooldown
            if floor > now or not evaluate(definition.rules, fact, at=now).passed:
                continue
        at = first_met_at(definition.rules, fact, now=now)
        if at is None:
            continue
        if floor is not None:
            at = max(at, floor)
        event = StageEvent(person_id=person.id, stage="mql", at=at, origin="definition",
                           definition_version=definition.version,
                           source_ref=f"definition:v{definition.version}:{at.isoformat()}")
        session.add(event)
        created.append(event)
    session.flush()
    restage(session, [p.id for p in persons if p.id is not None])
    return created


def replay(session: Session, definition: LeadDefinition, *, now: datetime, cooldown: timedelta,
           progress: Callable[[int, int], None] | None = None) -> int:
    """Judge every live person by ``definition`` (history included); answer new MQLs."""
    total = 0
    last_id = 0
    while True:
        batch = list(session.exec(select(Person).where(Person.live, col(Person.id) > last_id,
                                                       col(Person.merged_into).is_(None))
                                  .order_by(Person.id).limit(BATCH)))
        if not batch:
            return total
        total += len(qualify(session, definition, batch, now=now, cooldown=cooldown))
        last_id = batch[-1].id or last_id
        if progress is not None:
            progress(last_id, total)


def activate_and_replay(session: Session, settings: Settings, *, now: datetime | None = None
                        ) -> LeadDefinition | None:
    """Activate a due version and replay it over history in the same transaction."""
    now = now or utcnow()
    activated = activate_due(session, now=now)
    if activated is not None:
        replay(session, activated, now=now, cooldown=timedelta(days=settings.mql_cooldown_days))
    return activated


def qualification_hook(settings: Settings) -> Callable[[Session, set[int]], None]:
    """After each sync page: judge the persons whose data changed by the active version."""

    def hook(session: Session, touched: set[int]) -> None:
        activate_and_replay(session, settings)
        definition = active_definition(session)
        if definition is None or not touched:
            return
        persons = list(session.exec(select(Person).where(col(Person.id).in_(touched))))
        qualify(session, definition, persons, now=utcnow(),
                cooldown=timedelta(days=settings.mql_cooldown_days))

    return hook
