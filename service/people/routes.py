"""One person across both CRMs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import col, select

from connectors.records import normalise_email
from service.deps import SessionDep, Viewer
from service.pagination import CursorParam, Limit, Paginated, paginate
from service.people import repository
from service.people.models import Person

router = APIRouter(prefix="/api/v1/persons", tags=["persons"])


class PersonSummary(BaseModel):
    id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    title: str | None
    country: str | None
    lead_source: str | None
    score: float | None
    owner_key: str | None
    account_key: str | None
    stage: str
    created_at: datetime | None
    live: bool


class LinkedRecord(BaseModel):
    key: str
    source: str
    object: str
    external_id: str
    deleted: bool
    merged_into: str | None
    modstamp: datetime
    fields: dict[str, Any]


class LinkPublic(BaseModel):
    record_key: str
    reason: str
    valid_from: datetime
    valid_to: datetime | None


class EventPublic(BaseModel):
    stage: str
    at: datetime
    source_ref: str
    reason: str | None
    definition_version: int | None
    origin: str


class PersonDetail(PersonSummary):
    records: list[LinkedRecord]
    links: list[LinkPublic]
    events: list[EventPublic]


@router.get("", response_model=Paginated[PersonSummary])
def list_persons(session: SessionDep, _: Viewer, email: str | None = None,
                 stage: str | None = None, limit: Limit = 50, cursor: CursorParam = None
                 ) -> dict[str, Any]:
    """Live persons; `email` matches however the CRMs wrote it."""
    stmt = select(Person).where(Person.live, col(Person.merged_into).is_(None))
    if email:
        stmt = stmt.where(Person.email == normalise_email(email))
    if stage:
        stmt = stmt.where(Person.stage == stage)
    items, next_cursor = paginate(session, stmt, Person.id, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{person_id}", response_model=PersonDetail)
def get_person(person_id: int, session: SessionDep, _: Viewer) -> dict[str, Any]:
    """The person with its CRM rows, its link history and its stage events."""
    person = repository.get_person(session, person_id)
    assert person.id is not None
    records = [
        LinkedRecord(key=r.key, source=r.source, object=r.object, external_id=r.external_id,
                     deleted=r.deleted, merged_into=r.merged_into, modstamp=r.modstamp,
                     fields=r.payload)
        for r in repository.person_rows(session, person.id)
    ]
    return {**person.model_dump(), "records": records,
            "links": repository.person_links(session, person.id),
            "events": repository.stage_events(session, person.id)}
