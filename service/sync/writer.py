"""Apply one page of typed records inside the page's transaction: idempotent upserts.

A replayed page (after a crash or a lookback) finds every row unchanged and counts nothing,
which is what makes "nothing counted twice" hold across restarts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from connectors.records import (
    AccountRecord,
    ActivityRecord,
    AnyRecord,
    CampaignRecord,
    FieldChangeRecord,
    Malformed,
    OpportunityRecord,
    OwnerRecord,
    PersonRecord,
    record_key,
)
from service.crm.models import Account, Activity, Campaign, FieldChange, Opportunity, Owner
from service.db import utcnow
from service.people.identity import IdentityResolver, owner_key
from service.sync.locks import lock_persons
from service.sync.models import CrmRow, Quarantined

KINDS: dict[type, str] = {
    PersonRecord: "person",
    AccountRecord: "account",
    OpportunityRecord: "opportunity",
    ActivityRecord: "activity",
    FieldChangeRecord: "field_change",
    OwnerRecord: "owner",
    CampaignRecord: "campaign",
}
_IDENTITY = ("source", "object", "external_id")


@dataclass
class PageResult:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    merged: int = 0
    quarantined: int = 0
    touched_persons: set[int] = field(default_factory=set)

    def as_counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in
                ("fetched", "created", "updated", "deleted", "merged", "quarantined")}


def payload_of(rec: AnyRecord) -> tuple[dict[str, Any], str]:
    payload = rec.model_dump(mode="json", exclude=set(_IDENTITY))
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return payload, digest


def apply_page(session: Session, records: Sequence[AnyRecord | Malformed]) -> PageResult:
    """Upsert a page's records, resolve identities and quarantine what failed validation."""
    lock_persons(session)
    result = PageResult(fetched=len(records))
    now = utcnow()
    keys = [r.key for r in records]
    rows = session.exec(select(CrmRow).where(col(CrmRow.key).in_(keys)))
    existing = {row.key: row for row in rows}
    quarantined = {q.key: q for q in session.exec(
        select(Quarantined).where(col(Quarantined.key).in_(keys)))}
    identity = IdentityResolver(session)
    identity.prefetch([r for r in records if isinstance(r, PersonRecord) and not r.deleted])
    entities = _prefetch(session, records)
    fresh: dict[str, AnyRecord] = {}  # rows never stored and not persons: one bulk insert
    for rec in records:
        if isinstance(rec, Malformed):
            _quarantine(session, rec, quarantined.get(rec.key), now)
            result.quarantined += 1
            continue
        if rec.key in quarantined:  # fixed at the source: it leaves quarantine
            session.delete(quarantined.pop(rec.key))
        if not isinstance(rec, PersonRecord) and rec.key not in existing:
            fresh[rec.key] = rec  # a later copy in the same page wins
            continue
        row = existing.get(rec.key)
        outcome = _upsert_row(session, rec, row, now)
        if outcome == "unchanged":
            continue
        row = existing[rec.key] = outcome[1]
        change = outcome[0]
        setattr(result, change, getattr(result, change) + 1)
        _apply_entity(session, rec, entities)
        if isinstance(rec, PersonRecord):
            if rec.merged_into:
                winner = record_key(rec.source, rec.object, rec.merged_into)
                identity.fold_merge(row, winner, at=now)
            elif rec.deleted:
                identity.detach(row, at=now)
            else:
                identity.resolve(rec, row)
    _insert_fresh(session, list(fresh.values()), result, now)
    session.flush()
    result.touched_persons = identity.touched | _referenced_persons(session, records)
    return result


def _insert_fresh(session: Session, records: list[AnyRecord], result: PageResult,
                  now: datetime) -> None:
    """New accounts, deals, activities, history...: executemany inserts, no ORM objects.

    Most of a full sync is such rows, and building an ORM object per row costs more than
    writing it.
    """
    if not records:
        return
    rows, by_model = [], {}
    for rec in records:
        payload, digest = payload_of(rec)
        merged = record_key(rec.source, rec.object, rec.merged_into) if rec.merged_into else None
        rows.append({"key": rec.key, "source": rec.source, "object": rec.object,
                     "external_id": rec.external_id, "kind": KINDS[type(rec)],
                     "payload": payload, "payload_hash": digest, "modstamp": rec.modstamp,
                     "created_at": rec.created_at, "deleted": rec.deleted,
                     "merged_into": merged, "person_id": None, "first_seen": now,
                     "last_changed": now})
        change = "merged" if rec.merged_into else "deleted" if rec.deleted else "created"
        setattr(result, change, getattr(result, change) + 1)
        if rec.deleted:
            continue
        model, values = _entity_values(rec)
        values = {"key": rec.key, **values}
        if hasattr(model, "live"):
            values["live"] = True
        by_model.setdefault(model, []).append(values)
    session.execute(insert(CrmRow), rows)
    for model, values in by_model.items():
        session.execute(insert(model), values)


def _referenced_persons(session: Session, records: Sequence[AnyRecord | Malformed]) -> set[int]:
    """Persons whose history a page adds to (a status change, a deal, an activity)."""
    refs: set[str] = set()
    for rec in records:
        if isinstance(rec, FieldChangeRecord):
            refs.add(rec.record_key)
        elif isinstance(rec, OpportunityRecord):
            refs.update(rec.person_keys)
        elif isinstance(rec, ActivityRecord) and rec.person_key:
            refs.add(rec.person_key)
    if not refs:
        return set()
    found = session.exec(select(CrmRow.person_id).where(col(CrmRow.key).in_(refs),
                                                        col(CrmRow.person_id).is_not(None)))
    return {pid for pid in found if pid is not None}


def _quarantine(session: Session, rec: Malformed, row: Quarantined | None, now: datetime) -> None:
    if row is None:
        session.add(Quarantined(key=rec.key, source=rec.source, object=rec.object,
                                external_id=rec.external_id, reason=rec.reason[:1000],
                                payload=json.loads(json.dumps(rec.payload, default=str)),
                                first_seen=now, last_seen=now))
    else:
        row.reason = rec.reason[:1000]
        row.last_seen = now


def _upsert_row(session: Session, rec: AnyRecord, row: CrmRow | None, now: datetime
                ) -> str | tuple[str, CrmRow]:
    """Store the row; answer which count it adds to, or "unchanged"."""
    payload, digest = payload_of(rec)
    merged_key = record_key(rec.source, rec.object, rec.merged_into) if rec.merged_into else None
    if row is None:
        row = CrmRow(key=rec.key, source=rec.source, object=rec.object,
                     external_id=rec.external_id, kind=KINDS[type(rec)], payload=payload,
                     payload_hash=digest, modstamp=rec.modstamp, created_at=rec.created_at,
                     deleted=rec.deleted, merged_into=merged_key, first_seen=now,
                     last_changed=now)
        session.add(row)
        if rec.merged_into:
            return "merged", row
        return ("deleted" if rec.deleted else "created"), row
    if rec.deleted and row.deleted and row.merged_into == merged_key:
        return "unchanged"
    if row.payload_hash == digest:
        return "unchanged"
    was_deleted = row.deleted
    if rec.deleted:
        # a tombstone carries no fields: keep the last known ones
        payload = {**row.payload, "deleted": True, "merged_into": rec.merged_into}
    row.payload, row.payload_hash = payload, digest
    row.modstamp, row.deleted, row.merged_into, row.last_changed = (
        rec.modstamp, rec.deleted, merged_key, now)
    if rec.created_at is not None:
        row.created_at = rec.created_at
    session.add(row)
    if rec.merged_into and not was_deleted:
        return "merged", row
    if rec.deleted and not was_deleted:
        return "deleted", row
    return "updated", row


def _apply_entity(session: Session, rec: AnyRecord, cache: dict[str, Any]) -> None:
    """Keep the column tables in step with the row (persons are handled by identity)."""
    if isinstance(rec, PersonRecord):
        return
    model, values = _entity_values(rec)
    if rec.key in cache:  # prefetched: the row, or None when it is not stored yet
        entity = cache[rec.key]
    else:
        entity = session.exec(select(model).where(model.key == rec.key)).first()
    if rec.deleted:
        if entity is not None and hasattr(entity, "live"):
            entity.live = False
            session.add(entity)
        return
    if entity is None:
        entity = model(key=rec.key, **values)
    else:
        for name, value in values.items():
            setattr(entity, name, value)
    if hasattr(entity, "live"):
        entity.live = True
    session.add(entity)
    cache[rec.key] = entity


def _entity_values(rec: AnyRecord) -> tuple[Any, dict[str, Any]]:
    src = {"source": rec.source}
    if isinstance(rec, AccountRecord):
        return Account, dict(src, name=rec.name, domain=rec.domain, industry=rec.industry,
                             employees=rec.employees, annual_revenue=rec.annual_revenue,
                             country=rec.country, is_customer=rec.is_customer)
    if isinstance(rec, OpportunityRecord):
        return Opportunity, dict(
            src, name=rec.name, account_key=rec.account_key,
            person_record_key=rec.person_keys[0] if rec.person_keys else None,
            amount=rec.amount, stage=rec.stage, is_closed=rec.is_closed, is_won=rec.is_won,
            created_at=rec.created_at, close_date=rec.close_date,
            owner_key=owner_key(rec.source, rec.owner_id), lead_source=rec.lead_source)
    if isinstance(rec, ActivityRecord):
        return Activity, dict(src, kind=rec.kind, at=rec.at, record_key=rec.person_key,
                              owner_key=owner_key(rec.source, rec.owner_id),
                              subject=(rec.subject or "")[:300] or None)
    if isinstance(rec, OwnerRecord):
        return Owner, dict(src, email=rec.email, name=rec.name, timezone=rec.timezone,
                           team=rec.team, active=rec.active)
    if isinstance(rec, CampaignRecord):
        return Campaign, dict(src, name=rec.name, type=rec.type, start_date=rec.start_date,
                              end_date=rec.end_date, actual_cost=rec.actual_cost)
    assert isinstance(rec, FieldChangeRecord)
    return FieldChange, dict(record_key=rec.record_key, field=rec.field,
                             old_value=_cut(rec.old_value), new_value=_cut(rec.new_value),
                             at=rec.at)


def _cut(value: str | None) -> str | None:
    return value[:300] if value is not None else None


def _prefetch(session: Session, records: Sequence[AnyRecord | Malformed]) -> dict[str, Any]:
    """One query per entity table for the page, instead of one per record."""
    by_model: dict[Any, list[str]] = {}
    for rec in records:
        if isinstance(rec, Malformed | PersonRecord):
            continue
        model, _ = _entity_values(rec)
        by_model.setdefault(model, []).append(rec.key)
    cache: dict[str, Any] = {key: None for keys in by_model.values() for key in keys}
    for model, keys in by_model.items():
        for entity in session.exec(select(model).where(col(model.key).in_(keys))):
            cache[entity.key] = entity
    return cache
