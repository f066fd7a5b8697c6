"""Apply one page of typed records inside the page's transaction: idempotent upserts.

A replayed page (after a crash or a lookback) finds every row unchanged and counts nothing,
which is what makes "nothing counted twice" hold across restarts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import func
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, select

from connectors.records import (
    ROWLESS_OBJECTS,
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
from service.people.decisions import DEFAULT_MAPPING, StatusMapping
from service.people.identity import IdentityResolver, owner_key
from service.people.models import StageEvent
from service.people.service import Alone, LiveRow, alone_values, live_row, new_person_values
from service.sync.bulk import Serialized, among, insert_many, upsert
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
_IDENTITY = frozenset({"source", "object", "external_id"})
# facts that are no CRM row (HubSpot's property history): kept in their own table only; a
# crm_record row each, with its document, was most of a contact page's writes
ROWLESS = ROWLESS_OBJECTS


@dataclass
class PageResult:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    merged: int = 0
    quarantined: int = 0
    touched_persons: set[int] = field(default_factory=set)
    settled: set[int] = field(default_factory=set)  # new persons stored complete already

    def count(self, change: str) -> None:
        """One more record under ``change`` (created, updated, deleted, merged)."""
        setattr(self, change, getattr(self, change) + 1)

    def as_counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in
                ("fetched", "created", "updated", "deleted", "merged", "quarantined")}


Documents = dict[int, tuple[Serialized, str]]
Columns = dict[int, tuple[Any, dict[str, Any]]]  # a record's model and column values
Changed = tuple[str, AnyRecord, Serialized, str]  # key, record, document, its hash


def payload_of(rec: AnyRecord) -> tuple[Serialized, str]:
    """The record's stored document and its hash, from one serialisation (pydantic's own,
    a third of the cost of ``json.dumps``): the text hashed is the text stored."""
    document = Serialized(rec.model_dump_json(exclude=_IDENTITY))
    return document, hashlib.sha256(document.encode()).hexdigest()


def legacy_digest(rec: AnyRecord) -> str:
    """The hash rows stored before ``payload_of`` hashed pydantic's serialisation."""
    payload = rec.model_dump(mode="json", exclude=_IDENTITY)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class Prepared:
    """A page's work that needs no database, done ahead (the sync does it in its reading
    thread), by the record's identity: each stored record's document and hash, and what a
    new person of a person record alone would be (see ``alone_values``)."""

    documents: Documents
    alone: dict[int, Alone]


def documents(records: Sequence[AnyRecord | Malformed]) -> Documents:
    """What ``payload_of`` makes of each record stored as a row, by the record's identity."""
    return {id(rec): payload_of(rec) for rec in records
            if not isinstance(rec, Malformed) and (rec.source, rec.object) not in ROWLESS}


def prepare(records: Sequence[AnyRecord | Malformed],
            mapping: StatusMapping = DEFAULT_MAPPING, *, new_persons: bool = True) -> Prepared:
    """``Prepared`` for a page; ``mapping`` must be the one the page is applied with. Without
    ``new_persons`` (an incremental read, whose records mostly update persons already
    stored) no person is worked out ahead: the few new ones are worked out in the page."""
    return Prepared(documents(records), {
        id(rec): alone_values(rec, mapping) for rec in records
        if new_persons and isinstance(rec, PersonRecord) and not rec.deleted
        and not rec.merged_into})


def apply_page(session: Session, records: Sequence[AnyRecord | Malformed],
               prepared: Prepared | None = None,
               mapping: StatusMapping = DEFAULT_MAPPING) -> PageResult:
    """Upsert a page's records, resolve identities and quarantine what failed validation.

    Set-based: one query loads what is stored for the page's keys, changes are decided in
    Python, and each table gets one upsert; nothing is flushed row by row. ``prepared`` holds
    the work ``prepare`` did ahead, when it did. Persons the page creates
    are stored complete (by ``mapping``) and listed in ``settled``: ``refresh_persons`` with
    the same mapping has nothing to add for them.
    """
    lock_persons(session)
    result = PageResult(fetched=len(records))
    now = utcnow()
    latest: dict[str, AnyRecord] = {}  # a later copy of a key in the same page wins
    malformed: dict[str, Malformed] = {}
    for rec in records:  # a record's key is made once here: it is looked up a dozen times
        key = rec.key
        if isinstance(rec, Malformed):
            result.quarantined += 1
            malformed[key] = rec
            latest.pop(key, None)
        else:
            latest[key] = rec
            malformed.pop(key, None)
    _quarantine(session, list(malformed.values()), list(latest), now)
    rows = [(key, rec) for key, rec in latest.items() if (rec.source, rec.object) not in ROWLESS]
    stored = {r.key: r for r in session.execute(
        select(CrmRow.key, CrmRow.payload_hash, CrmRow.deleted, CrmRow.merged_into,
               CrmRow.person_id, CrmRow.modstamp)
        .where(among(session, CrmRow.key, [key for key, _ in rows])))}
    unstored = {key for key, _ in rows if key not in stored}
    facts, fresh, fact_columns = _changed_facts(
        session, [rec for rec in latest.values() if (rec.source, rec.object) in ROWLESS],
        result, unstored)
    changed: list[Changed] = []
    for key, rec in rows:
        payload, digest = (prepared.documents.get(id(rec)) if prepared else None
                           ) or payload_of(rec)
        change = _change(rec, stored.get(key), digest)
        if change is not None:
            result.count(change)
            changed.append((key, rec, payload, digest))
    identity = IdentityResolver(session, now=now)
    persons = [(key, rec) for key, rec, _, _ in changed if isinstance(rec, PersonRecord)]
    identity.prefetch(rec for _, rec in persons)
    for key, rec in persons:
        row = stored.get(key)
        if rec.merged_into:
            winner = record_key(rec.source, rec.object, rec.merged_into)
            identity.fold_merge(key, row.person_id if row else None, winner)
        elif rec.deleted:
            identity.detach(key, row.person_id if row else None)
        else:
            identity.resolve(rec)
    # facts first: a new person's events are read from them (a HubSpot contact's history)
    _upsert_entities(session, [*(rec for _, rec, _, _ in changed), *facts], fresh,
                     fact_columns)
    events: list[dict[str, Any]] = []

    def settle(assigned: dict[str, int], new: set[int]) -> dict[int, dict[str, Any]]:
        live: dict[int, list[LiveRow]] = {}
        mixed: set[int] = set()  # a new person with a row stored before: refreshed as ever
        alone: dict[str, Alone] = {}
        for key, rec in persons:
            pid = assigned.get(key)
            if pid in new:
                if key in stored:
                    mixed.add(pid)
                elif not rec.deleted:
                    live.setdefault(pid, []).append(live_row(rec))
                    ready = prepared.alone.get(id(rec)) if prepared else None
                    if ready is not None:
                        alone[key] = ready
        values, found = new_person_values(
            session, {pid: rows for pid, rows in live.items() if pid not in mixed}, mapping,
            alone)
        events.extend(found)
        result.settled.update(values)
        return values

    assigned, touched = identity.finish(settle)
    _upsert_rows(session, changed, stored, assigned, now)
    insert_many(session, StageEvent.__table__, events)  # type: ignore[attr-defined]
    result.touched_persons = touched | _referenced_persons(session, records)
    return result


def _changed_facts(session: Session, facts: list[AnyRecord], result: PageResult,
                   unstored: set[str] | frozenset[str] = frozenset()
                   ) -> tuple[list[AnyRecord], frozenset[str], Columns]:
    """The facts (see ``ROWLESS``) whose stored columns differ, counted as rows would be,
    the keys of those not stored at all, and each fact's columns (by the record's identity),
    which ``_upsert_entities`` writes without working them out again.

    ``unstored`` are keys of the page's rows that are not stored: a fact of such a row (a
    contact's property history) cannot be stored either, since a row and its facts are only
    ever written together, so it is not looked up (on a first sync, none is)."""
    by_model: dict[Any, list[tuple[AnyRecord, dict[str, Any]]]] = {}
    columns: Columns = {}
    out: list[AnyRecord] = []
    fresh: set[str] = set()
    for rec in facts:
        model, values = columns[id(rec)] = _entity_values(rec)
        if _has_live(model):
            values["live"] = not rec.deleted
        if _owner_key(rec) in unstored:
            result.count("deleted" if rec.deleted else "created")
            fresh.add(rec.key)
            out.append(rec)
            continue
        by_model.setdefault(model, []).append((rec, values))
    for model, pairs in by_model.items():
        table = model.__table__
        names = list(pairs[0][1])
        stored = {row[0]: row[1:] for row in session.execute(
            select(table.c.key, *(table.c[n] for n in names))
            .where(among(session, table.c.key, [rec.key for rec, _ in pairs])))}
        for rec, values in pairs:
            row = stored.get(rec.key)
            if row is None:
                change: str | None = "deleted" if rec.deleted else "created"
                fresh.add(rec.key)
            elif tuple(values[n] for n in names) == tuple(row):
                change = None
            else:
                change = "deleted" if rec.deleted else "updated"
            if change is not None:
                result.count(change)
                out.append(rec)
    return out, frozenset(fresh), columns


def _owner_key(fact: AnyRecord | Malformed) -> str | None:
    """The row a fact belongs to: the person whose status change or activity it is."""
    if isinstance(fact, FieldChangeRecord):
        return fact.record_key
    if isinstance(fact, ActivityRecord):
        return fact.person_key
    return None


def _change(rec: AnyRecord, row: Any, digest: str) -> str | None:
    """Which count the record adds to, or None when the stored row already says the same."""
    merged_key = record_key(rec.source, rec.object, rec.merged_into) if rec.merged_into else None
    if row is None:
        return "merged" if rec.merged_into else "deleted" if rec.deleted else "created"
    if rec.deleted and row.deleted and row.merged_into == merged_key:
        return None
    if row.payload_hash == digest:
        return None
    # the former hash covers the modstamp too, so it can only match a record the CRM has not
    # stamped since: an incremental's changed rows skip a second serialisation each
    if row.modstamp == rec.modstamp and row.payload_hash == legacy_digest(rec):
        return None
    if rec.merged_into and not row.deleted:
        return "merged"
    if rec.deleted and not row.deleted:
        return "deleted"
    return "updated"


def _upsert_rows(session: Session, changed: list[Changed], stored: dict[str, Any],
                 assigned: dict[str, int], now: datetime) -> None:
    """The page's new and changed CRM rows in one upsert."""
    tombstones = [key for key, rec, _, _ in changed if rec.deleted and key in stored]
    kept: dict[str, dict[str, Any]] = {}
    if tombstones:  # a tombstone carries no fields: keep the last known ones
        kept = dict(session.execute(select(CrmRow.key, CrmRow.payload).where(
            among(session, CrmRow.key, tombstones))).tuples().all())
    rows = []
    for key, rec, document, digest in changed:
        payload: dict[str, Any] | Serialized = document
        if key in kept:
            payload = {**kept[key], "deleted": True, "merged_into": rec.merged_into}
        merged = record_key(rec.source, rec.object, rec.merged_into) if rec.merged_into else None
        rows.append({"key": key, "source": rec.source, "object": rec.object,
                     "external_id": rec.external_id, "kind": KINDS[type(rec)],
                     "payload": payload, "payload_hash": digest, "modstamp": rec.modstamp,
                     "created_at": rec.created_at, "deleted": rec.deleted,
                     "merged_into": merged, "person_id": assigned.get(key),
                     "first_seen": now, "last_changed": now})
    table = CrmRow.__table__  # type: ignore[attr-defined]

    def changes(excluded: Any) -> dict[str, Any]:
        kept_or_new = {name: getattr(excluded, name) for name in (
            "payload", "payload_hash", "modstamp", "deleted", "merged_into", "last_changed")}
        kept_or_new["created_at"] = func.coalesce(excluded.created_at, table.c.created_at)
        kept_or_new["person_id"] = func.coalesce(excluded.person_id, table.c.person_id)
        return kept_or_new

    # rows the page's lookup found no trace of are inserted as they are: under the persons
    # lock no other writer can have stored one of these keys since
    insert_many(session, table, [row for row in rows if row["key"] not in stored])
    upsert(session, table, [row for row in rows if row["key"] in stored], update=changes)


def _upsert_entities(session: Session, records: list[AnyRecord],
                     fresh: frozenset[str] = frozenset(), known: Columns | None = None
                     ) -> None:
    """Keep the column tables in step with the rows (persons are handled by identity);
    ``fresh`` keys are known not to be stored yet, so they are inserted without a conflict
    check; ``known`` holds columns already worked out, by the record's identity."""
    live: dict[Any, dict[str, dict[str, Any]]] = {}
    gone: dict[Any, list[str]] = {}
    known = known or {}
    for rec in records:
        if isinstance(rec, PersonRecord):
            continue
        model, values = known.get(id(rec)) or _entity_values(rec)
        if rec.deleted:
            gone.setdefault(model, []).append(rec.key)
            continue
        values = {"key": rec.key, **values}
        if _has_live(model):
            values["live"] = True
        live.setdefault(model, {})[rec.key] = values
    for model, by_key in live.items():
        table = model.__table__
        rows = list(by_key.values())
        names = [n for n in rows[0] if n != "key"]
        insert_many(session, table, [row for row in rows if row["key"] in fresh])
        upsert(session, table, [row for row in rows if row["key"] not in fresh],
               update=lambda excluded, names=names: {n: getattr(excluded, n) for n in names})
    for model, keys in gone.items():
        if _has_live(model):
            table = model.__table__
            session.execute(sa_update(table).where(among(session, table.c.key, keys))
                            .values(live=False))


def _referenced_persons(session: Session, records: Sequence[AnyRecord | Malformed]) -> set[int]:
    """Persons whose history a page adds to (a status change, a deal, an activity)."""
    refs: set[str] = set()
    for rec in records:
        if isinstance(rec, OpportunityRecord):
            refs.update(rec.person_keys)
        elif (owner := _owner_key(rec)) is not None:
            refs.add(owner)
    if not refs:
        return set()
    found = session.exec(select(CrmRow.person_id).where(among(session, CrmRow.key, refs),
                                                        col(CrmRow.person_id).is_not(None)))
    return {pid for pid in found if pid is not None}


def _quarantine(session: Session, bad: list[Malformed], good: list[str], now: datetime
                ) -> None:
    """Store what failed validation with its reason; what is valid again leaves quarantine."""
    if good:
        session.execute(sa_delete(Quarantined.__table__).where(  # type: ignore[attr-defined]
            among(session, Quarantined.__table__.c.key, good)))  # type: ignore[attr-defined]
    rows = [{"key": rec.key, "source": rec.source, "object": rec.object,
             "external_id": rec.external_id, "reason": rec.reason[:1000],
             "payload": json.loads(json.dumps(rec.payload, default=str)),
             "first_seen": now, "last_seen": now} for rec in bad]
    upsert(session, Quarantined.__table__, rows,  # type: ignore[attr-defined]
            update=lambda excluded: {"reason": excluded.reason, "last_seen": excluded.last_seen})


@cache
def _has_live(model: Any) -> bool:
    """Whether the table marks rows gone instead of deleting them (asked once per model: a
    model class answers ``hasattr`` slowly, through its metaclass)."""
    return hasattr(model, "live")


def _entity_values(rec: AnyRecord) -> tuple[Any, dict[str, Any]]:
    """The column table a record goes to, and its columns there (not for persons)."""
    return _COLUMNS[type(rec)](rec)


def _account(rec: AccountRecord) -> tuple[Any, dict[str, Any]]:
    return Account, dict(source=rec.source, name=rec.name, domain=rec.domain,
                         industry=rec.industry, employees=rec.employees,
                         annual_revenue=rec.annual_revenue, country=rec.country,
                         is_customer=rec.is_customer)


def _opportunity(rec: OpportunityRecord) -> tuple[Any, dict[str, Any]]:
    return Opportunity, dict(
        source=rec.source, name=rec.name, account_key=rec.account_key,
        person_record_key=rec.person_keys[0] if rec.person_keys else None,
        amount=rec.amount, stage=rec.stage, is_closed=rec.is_closed, is_won=rec.is_won,
        created_at=rec.created_at, close_date=rec.close_date,
        owner_key=owner_key(rec.source, rec.owner_id), lead_source=rec.lead_source)


def _activity(rec: ActivityRecord) -> tuple[Any, dict[str, Any]]:
    return Activity, dict(source=rec.source, kind=rec.kind, at=rec.at,
                          record_key=rec.person_key,
                          owner_key=owner_key(rec.source, rec.owner_id),
                          subject=(rec.subject or "")[:300] or None)


def _owner(rec: OwnerRecord) -> tuple[Any, dict[str, Any]]:
    return Owner, dict(source=rec.source, email=rec.email, name=rec.name,
                       timezone=rec.timezone, team=rec.team, active=rec.active)


def _campaign(rec: CampaignRecord) -> tuple[Any, dict[str, Any]]:
    return Campaign, dict(source=rec.source, name=rec.name, type=rec.type,
                          start_date=rec.start_date, end_date=rec.end_date,
                          actual_cost=rec.actual_cost)


def _field_change(rec: FieldChangeRecord) -> tuple[Any, dict[str, Any]]:
    return FieldChange, dict(record_key=rec.record_key, field=rec.field,
                             old_value=_cut(rec.old_value), new_value=_cut(rec.new_value),
                             at=rec.at)


# by the record's exact type: a page's history records (most of a HubSpot page) went through
# five isinstance checks each before reaching theirs
_COLUMNS: dict[type, Callable[[Any], tuple[Any, dict[str, Any]]]] = {
    AccountRecord: _account, OpportunityRecord: _opportunity, ActivityRecord: _activity,
    OwnerRecord: _owner, CampaignRecord: _campaign, FieldChangeRecord: _field_change}


def _cut(value: str | None) -> str | None:
    return value[:300] if value is not None else None
