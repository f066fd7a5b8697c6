"""Queries about persons."""

from __future__ import annotations

from sqlmodel import Session, col, select

from service.errors import NotFound
from service.people.models import Person, PersonLink, StageEvent
from service.sync.models import CrmRow


def get_person(session: Session, person_id: int) -> Person:
    """The person, following merges so an id handed out earlier still answers."""
    seen: set[int] = set()
    person = session.get(Person, person_id)
    while person is not None and person.merged_into is not None and person.id not in seen:
        seen.add(person.id)  # type: ignore[arg-type]
        person = session.get(Person, person.merged_into)
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person


def person_rows(session: Session, person_id: int) -> list[CrmRow]:
    return list(session.exec(select(CrmRow).where(CrmRow.person_id == person_id,
                                                  CrmRow.kind == "person").order_by(CrmRow.key)))


def person_links(session: Session, person_id: int) -> list[PersonLink]:
    return list(session.exec(select(PersonLink).where(PersonLink.person_id == person_id)
                             .order_by(col(PersonLink.valid_from), col(PersonLink.id))))


def stage_events(session: Session, person_id: int) -> list[StageEvent]:
    return list(session.exec(select(StageEvent).where(StageEvent.person_id == person_id)
                             .order_by(col(StageEvent.at), col(StageEvent.id))))


def live_person_count(session: Session) -> int:
    from sqlalchemy import func

    return int(session.exec(select(func.count()).select_from(Person).where(
        Person.live, col(Person.merged_into).is_(None))).one())
