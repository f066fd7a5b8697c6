"""Keep persons in step with their CRM rows: fields, liveness and CRM-derived stage events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, delete, select

from connectors.records import PersonRecord, normalise_email
from service.crm.models import FieldChange, Opportunity
from service.db import utcnow
from service.people.decisions import DEFAULT_MAPPING, StatusMapping
from service.people.events import OppFacts, PersonRow, StatusChange, derive_events
from service.people.identity import owner_key
from service.people.models import Person, StageEvent
from service.sync.bulk import among, insert_many, update_many
from service.sync.models import CrmRow

PERSON_FIELDS = ("first_name", "last_name", "title", "country", "lead_source", "score")


def refresh_persons(session: Session, person_ids: Iterable[int],
                    mapping: StatusMapping = DEFAULT_MAPPING) -> None:
    """Recompute each person from its live rows, in a few set-based statements per batch.

    Plain rows are read (no ORM objects), every person is written by one executemany
    UPDATE, and the stage is worked out from the events in memory rather than read back.
    CRM events are rewritten only where they differ from what is derived now.
    """
    ids = sorted(set(person_ids))
    if not ids:
        return
    now = utcnow()
    persons = {pid: (merged, created) for pid, merged, created in session.execute(
        select(Person.id, Person.merged_into, Person.created_at)
        .where(among(session, Person.id, ids)))}
    rows_by_person: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(select(CrmRow.key, CrmRow.source, CrmRow.payload,
                                      CrmRow.modstamp, CrmRow.created_at, CrmRow.person_id)
                               .where(among(session, CrmRow.person_id, ids),
                                      CrmRow.kind == "person", col(CrmRow.deleted).is_(False))):
        rows_by_person[row.person_id].append(row)
    keys = [r.key for rows in rows_by_person.values() for r in rows]
    changes, opps = _history(session, keys)
    # the persons' events: CRM ones by identity, to be kept where derived the same again
    stored: dict[tuple[int, str, str], tuple[int, Any, str | None]] = {}
    others: dict[int, list[tuple[Any, int, str]]] = defaultdict(list)
    for ev in session.execute(
            select(StageEvent.person_id, StageEvent.at, StageEvent.id, StageEvent.stage,
                   StageEvent.source_ref, StageEvent.reason, StageEvent.origin)
            .where(among(session, StageEvent.person_id, ids))):
        if ev.origin == "crm":
            stored[(ev.person_id, ev.stage, ev.source_ref)] = (ev.id, ev.at, ev.reason)
        else:
            others[ev.person_id].append((ev.at, ev.id, ev.stage))
    events: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for pid in ids:
        if pid not in persons or persons[pid][0] is not None:
            continue
        values, derived = _derive(pid, rows_by_person.get(pid, []), persons[pid][1], changes,
                                  opps, others.get(pid, []), mapping, now)
        events.extend(derived)
        updates.append({"pid": pid, **values})
    # an event derived as it is stored stays (a changed title rewrites no event); the rest
    # of the stored CRM events go, the new ones come
    fresh: list[dict[str, Any]] = []
    for event in events:
        old = stored.get((event["person_id"], event["stage"], event["source_ref"]))
        if old is not None and old[1:] == (event["at"], event["reason"]):
            del stored[(event["person_id"], event["stage"], event["source_ref"])]
        else:
            fresh.append(event)
    if stored:
        session.execute(delete(StageEvent)
                        .where(among(session, StageEvent.id, [v[0] for v in stored.values()]))
                        .execution_options(synchronize_session=False))
    if fresh:
        insert_many(session, StageEvent.__table__, fresh)  # type: ignore[attr-defined]
    _update_persons(session, updates)


# a person made of one row with no history: its values and its events without a person id
Alone = tuple[dict[str, Any], list[dict[str, Any]]]


def new_person_values(session: Session, rows: dict[int, list[LiveRow]],
                      mapping: StatusMapping = DEFAULT_MAPPING,
                      alone: dict[str, Alone] | None = None
                      ) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """What ``refresh_persons`` would make of persons a page creates, from their rows in memory.

    Each of these persons has only the page's rows and no events yet, so it can be inserted
    with its final values (and its events after it): inserting a placeholder and updating it
    in the same transaction wrote every new person twice, each time with its index entries.
    ``alone`` holds what ``alone_values`` made ahead of a row, by its key: used for a person
    of that row alone when the row has no status history and no opportunity.
    """
    now = utcnow()
    changes, opps = _history(session, [r.key for live in rows.values() for r in live])
    values: dict[int, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    alone = alone or {}
    for pid, live in rows.items():
        ready = alone.get(live[0].key) if len(live) == 1 else None
        if ready is not None and live[0].key not in changes and live[0].key not in opps:
            values[pid] = {**ready[0], "updated_at": now}
            events.extend({**event, "person_id": pid} for event in ready[1])
            continue
        values[pid], derived = _derive(pid, live, None, changes, opps, [], mapping, now)
        events.extend(derived)
    return values, events


def alone_values(rec: PersonRecord, mapping: StatusMapping = DEFAULT_MAPPING) -> Alone:
    """What ``new_person_values`` makes of a person of ``rec`` alone, before any database
    work: the sync does this in its reading thread, off the writing thread's path."""
    values, events = _derive(0, [live_row(rec)], None, {}, {}, [], mapping, utcnow())
    return values, [{k: v for k, v in event.items() if k != "person_id"} for event in events]


@dataclass(frozen=True)
class LiveRow:
    """A live person row as ``refresh_persons`` reads it from crm_record (``payload`` holds
    the document's values the person is made of)."""

    key: str
    source: str
    payload: dict[str, Any]
    modstamp: datetime
    created_at: datetime | None


def live_row(rec: PersonRecord) -> LiveRow:
    """The row ``rec`` is stored as. Its payload is the record's own field values (pydantic
    keeps them in ``__dict__``): what the stored document holds, as Python values, without
    copying them."""
    return LiveRow(rec.key, rec.source, rec.__dict__, rec.modstamp, rec.created_at)


def _history(session: Session, keys: list[str]
             ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Status changes and live opportunities of the rows ``keys``, by row key."""
    changes: dict[str, list[Any]] = defaultdict(list)
    opps: dict[str, list[Any]] = defaultdict(list)
    if keys:
        for ch in session.execute(select(FieldChange.key, FieldChange.record_key,
                                         FieldChange.new_value, FieldChange.at)
                                  .where(among(session, FieldChange.record_key, keys),
                                         FieldChange.field == "status")):
            changes[ch.record_key].append(ch)
        for opp in session.execute(select(Opportunity.key, Opportunity.person_record_key,
                                          Opportunity.created_at, Opportunity.is_closed,
                                          Opportunity.is_won, Opportunity.close_date)
                                   .where(among(session, Opportunity.person_record_key, keys),
                                          Opportunity.live)):
            opps[opp.person_record_key].append(opp)
    return changes, opps


def _derive(pid: int, live_rows: list[Any], created_at: datetime | None,
            changes: dict[str, list[Any]], opps: dict[str, list[Any]],
            others: list[tuple[Any, int, str]], mapping: StatusMapping, now: datetime
            ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A person's values and CRM stage events from its live rows and their history."""
    values = _fields(live_rows, created_at)
    facts = [_row_facts(r) for r in live_rows]
    status_changes = [
        StatusChange(key=ch.key, record_key=ch.record_key, source=r.source,
                     value=ch.new_value, at=ch.at)
        for r in live_rows for ch in changes.get(r.key, [])
    ]
    opp_facts = [OppFacts(o.key, o.created_at, o.is_closed, o.is_won, o.close_date)
                 for r in live_rows for o in opps.get(r.key, [])]
    derived = derive_events(facts, status_changes, opp_facts, mapping)
    events = [{"person_id": pid, "stage": ev.stage, "at": ev.at,
               "source_ref": ev.source_ref[:200], "reason": ev.reason,
               "origin": "crm", "definition_version": None} for ev in derived]
    # the last event reached; new events sort after stored ones at the same instant
    timeline = [*others, *((ev.at, (1 << 62) + i, ev.stage) for i, ev in enumerate(derived))]
    last = max(timeline, key=lambda e: (e[0], e[1]), default=None)
    return {**values, "stage": last[2] if last else "inquiry", "updated_at": now,
            "dirty": True}, events


def _update_persons(session: Session, updates: list[dict[str, Any]]) -> None:
    """One bulk UPDATE per shape of values; loaded Person objects are expired."""
    table = Person.__table__  # type: ignore[attr-defined]
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for values in updates:
        shapes[tuple(n for n in values if n != "pid")].append(values)
    for group in shapes.values():
        update_many(session, table, group, by="pid")
    ids = {values["pid"] for values in updates}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Person) and obj.id in ids:
            session.expire(obj)


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


def _row_facts(row: Any) -> PersonRow:
    p = row.payload
    converted = p.get("converted_at")  # text in a stored document, a datetime in a record
    if isinstance(converted, str):
        converted = datetime.fromisoformat(converted) if converted else None
    return PersonRow(key=row.key, source=row.source, created_at=row.created_at,
                     status=p.get("status"), status_reason=p.get("status_reason"),
                     converted_at=converted)


def _fields(rows: list[Any], created_at: datetime | None) -> dict[str, Any]:
    """Newest non-empty value wins per field; the earliest creation is the person's."""
    values: dict[str, Any] = {"live": bool(rows)}
    if not rows:  # every row deleted: the person keeps its last known fields
        return values
    newest_first = sorted(rows, key=lambda r: (r.modstamp, r.key), reverse=True)

    def pick(name: str) -> Any:
        for r in newest_first:
            value = r.payload.get(name)
            if value not in (None, ""):
                return value
        return None

    for name in PERSON_FIELDS:
        values[name] = pick(name)
    values["email"] = normalise_email(pick("email"))
    values["owner_key"] = next((owner_key(r.source, r.payload["owner_id"])
                                for r in newest_first if r.payload.get("owner_id")), None)
    values["account_key"] = pick("account_key")
    created = [r.created_at for r in rows if r.created_at is not None]
    values["created_at"] = min(created) if created else created_at
    return values
