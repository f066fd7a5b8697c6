"""Keep persons in step with their CRM rows: fields, liveness and CRM-derived stage events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, delete, select

from connectors.records import normalise_email
from service.crm.models import FieldChange, Opportunity
from service.db import utcnow
from service.people.decisions import DEFAULT_MAPPING, StatusMapping
from service.people.events import OppFacts, PersonRow, StatusChange, derive_events
from service.people.identity import owner_key
from service.people.models import Person, StageEvent
from service.sync.models import CrmRow

PERSON_FIELDS = ("first_name", "last_name", "title", "country", "lead_source", "score")


def refresh_persons(session: Session, person_ids: Iterable[int],
                    mapping: StatusMapping = DEFAULT_MAPPING) -> None:
    """Recompute each person from its live rows, in a few queries for the whole batch."""
    ids = sorted(set(person_ids))
    if not ids:
        return
    now = utcnow()
    persons = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(ids)))}
    rows_by_person: dict[int, list[CrmRow]] = defaultdict(list)
    for row in session.exec(select(CrmRow).where(col(CrmRow.person_id).in_(ids),
                                                 CrmRow.kind == "person")):
        assert row.person_id is not None
        rows_by_person[row.person_id].append(row)
    keys = [r.key for rows in rows_by_person.values() for r in rows]
    changes: dict[str, list[FieldChange]] = defaultdict(list)
    opps: dict[str, list[Opportunity]] = defaultdict(list)
    if keys:
        for ch in session.exec(select(FieldChange).where(col(FieldChange.record_key).in_(keys),
                                                         FieldChange.field == "status")):
            changes[ch.record_key].append(ch)
        for opp in session.exec(select(Opportunity).where(
                col(Opportunity.person_record_key).in_(keys), Opportunity.live)):
            assert opp.person_record_key is not None
            opps[opp.person_record_key].append(opp)
    session.exec(delete(StageEvent).where(col(StageEvent.person_id).in_(ids),
                                          StageEvent.origin == "crm"))
    events: list[dict[str, Any]] = []
    for pid in ids:
        person = persons.get(pid)
        if person is None or person.merged_into is not None:
            continue
        live_rows = [r for r in rows_by_person.get(pid, []) if not r.deleted]
        _apply_fields(person, live_rows)
        facts = [_row_facts(r) for r in live_rows]
        status_changes = [
            StatusChange(key=ch.key, record_key=ch.record_key, source=r.source,
                         value=ch.new_value, at=ch.at)
            for r in live_rows for ch in changes.get(r.key, [])
        ]
        opp_facts = [OppFacts(o.key, o.created_at, o.is_closed, o.is_won, o.close_date)
                     for r in live_rows for o in opps.get(r.key, [])]
        derived = derive_events(facts, status_changes, opp_facts, mapping)
        events.extend({"person_id": pid, "stage": ev.stage, "at": ev.at,
                       "source_ref": ev.source_ref[:200], "reason": ev.reason,
                       "origin": "crm", "definition_version": None} for ev in derived)
        person.updated_at = now
        person.dirty = True
        session.add(person)
    if events:
        session.execute(insert(StageEvent), events)
    session.flush()
    restage(session, ids)


def restage(session: Session, ids: list[int]) -> None:
    """A person's stage is the last event it reached, whatever produced it."""
    latest: dict[int, tuple[Any, str]] = {}
    for ev in session.exec(select(StageEvent).where(col(StageEvent.person_id).in_(ids))
                           .order_by(StageEvent.at, StageEvent.id)):
        latest[ev.person_id] = (ev.at, ev.stage)
    for pid in ids:
        person = session.get(Person, pid)
        if person is not None and person.merged_into is None:
            person.stage = latest.get(pid, (None, "inquiry"))[1]


def _row_facts(row: CrmRow) -> PersonRow:
    from datetime import datetime

    p = row.payload
    converted = p.get("converted_at")
    return PersonRow(key=row.key, source=row.source, created_at=row.created_at,
                     status=p.get("status"), status_reason=p.get("status_reason"),
                     converted_at=datetime.fromisoformat(converted) if converted else None)


def _apply_fields(person: Person, rows: list[CrmRow]) -> None:
    """Newest non-empty value wins per field; the earliest creation is the person's."""
    person.live = bool(rows)
    if not rows:
        return
    newest_first = sorted(rows, key=lambda r: (r.modstamp, r.key), reverse=True)

    def pick(name: str) -> Any:
        for r in newest_first:
            value = r.payload.get(name)
            if value not in (None, ""):
                return value
        return None

    for name in PERSON_FIELDS:
        setattr(person, name, pick(name))
    person.email = normalise_email(pick("email"))
    for r in newest_first:
        if r.payload.get("owner_id"):
            person.owner_key = owner_key(r.source, r.payload["owner_id"])
            break
    person.account_key = pick("account_key")
    created = [r.created_at for r in rows if r.created_at is not None]
    person.created_at = min(created) if created else person.created_at
