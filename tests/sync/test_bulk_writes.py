"""The page path's bulk statements and what a page writes, on whichever database tests use.

On PostgreSQL enough rows take the COPY paths (``COPY_FROM``), so these run both the COPY
and the statement-by-statement paths there, and the plain ones on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import col, select

from connectors.records import (
    HUBSPOT_ACTIVITY_OBJECT,
    HUBSPOT_HISTORY_OBJECT,
    ActivityRecord,
    FieldChangeRecord,
    PersonRecord,
)
from service.crm.models import Activity, FieldChange
from service.db import unit_of_work
from service.people.models import Person, PersonLink, StageEvent
from service.people.service import refresh_persons
from service.sync.bulk import (
    COPY_FROM,
    Serialized,
    among,
    array_literal,
    insert_many,
    update_many,
    upsert,
)
from service.sync.models import CrmRow, Quarantined
from service.sync.writer import apply_page, legacy_digest, payload_of, prepare

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
ODD_KEYS = ["plain", 'with "quotes"', "back\\slash", "a,b", "{braces}", " spaced ", "NULL", "é"]


def _quarantined(key: str, reason: str = "bad", payload: Any = None) -> dict[str, Any]:
    return {"key": key, "source": "hubspot", "object": "contacts", "external_id": key,
            "reason": reason, "payload": {"n": key} if payload is None else payload,
            "first_seen": T0, "last_seen": T0}


def _update_reason(excluded: Any) -> dict[str, Any]:
    return {"reason": excluded.reason, "last_seen": excluded.last_seen}


def test_array_literal_quotes_what_postgresql_would_misread() -> None:
    assert array_literal(["a", 'b"c', "d\\e", None, 7]) == '{"a","b\\"c","d\\\\e",NULL,"7"}'
    assert array_literal([]) == "{}"
    assert array_literal(["a", "b,c", "{d}"]) == '{"a","b,c","{d}"}'
    assert array_literal(["a", 'b"c']) == '{"a","b\\"c"}'
    assert array_literal([3, 1, 20]) == "{3,1,20}"


def test_among_finds_keys_whatever_characters_they_hold(engine: Engine) -> None:
    filler = [f"filler-{i}" for i in range(COPY_FROM)]
    with unit_of_work(engine) as s:
        upsert(s, Quarantined.__table__, [_quarantined(k) for k in [*ODD_KEYS, *filler]],
               update=_update_reason)
    with unit_of_work(engine) as s:
        found = set(s.exec(select(Quarantined.key).where(
            among(s, Quarantined.key, [*ODD_KEYS, "absent"]))))
        ids = list(s.exec(select(Quarantined.id)))
        by_id = set(s.exec(select(Quarantined.id).where(among(s, Quarantined.id, ids[:3]))))
    assert found == set(ODD_KEYS)
    assert by_id == set(ids[:3])


def test_upsert_many_rows_keeps_the_last_copy_of_a_key_and_updates_in_place(
        engine: Engine) -> None:
    keys = [f"k{i}" for i in range(COPY_FROM + 5)]
    first = [_quarantined(k, payload=Serialized('{"doc": 1}')) for k in keys]
    with unit_of_work(engine) as s:
        upsert(s, Quarantined.__table__, [*first, _quarantined("k0", reason="later copy")],
               update=_update_reason)
    later = T0 + timedelta(hours=1)
    again = [{**_quarantined(k, reason="again", payload={"doc": 2}), "last_seen": later}
             for k in keys]
    with unit_of_work(engine) as s:
        stored = {q.key: (q.reason, q.payload) for q in s.exec(select(Quarantined))}
        upsert(s, Quarantined.__table__, again, update=_update_reason)
    assert stored["k0"][0] == "later copy"
    assert stored["k1"] == ("bad", {"doc": 1})  # serialised text is stored as the document
    with unit_of_work(engine) as s:
        rows = list(s.exec(select(Quarantined)))
    assert len(rows) == len(keys)
    assert {(q.reason, q.last_seen, q.first_seen) for q in rows} == {("again", later, T0)}
    assert {q.payload["doc"] for q in rows if q.key != "k0"} == {1}  # not an updated column


def test_insert_and_update_many_rows(engine: Engine) -> None:
    n = COPY_FROM + 3
    with unit_of_work(engine) as s:
        insert_many(s, Person.__table__, [
            {"email": f"p{i}@x.io", "created_at": T0, "stage": "inquiry", "live": True,
             "dirty": True, "updated_at": T0} for i in range(n)])
    with unit_of_work(engine) as s:
        ids = sorted(s.exec(select(Person.id)))
        update_many(s, Person.__table__, [{"pid": pid, "first_name": f"F{pid}", "stage": "mql"}
                                          for pid in ids], by="pid")
    with unit_of_work(engine) as s:
        people = list(s.exec(select(Person)))
    assert len(people) == n
    assert all(p.first_name == f"F{p.id}" and p.stage == "mql" for p in people)
    assert {(p.created_at, p.live, p.merged_into) for p in people} == {(T0, True, None)}


def _contact(title: str = "CEO") -> PersonRecord:
    return PersonRecord(source="hubspot", object="contacts", external_id="51", kind="contact",
                        modstamp=T0, created_at=T0, email="ann@example.com", title=title)


def _history(old_value: str | None = None) -> list[FieldChangeRecord | ActivityRecord]:
    key = "hubspot:contacts:51"
    return [
        FieldChangeRecord(source="hubspot", object=HUBSPOT_HISTORY_OBJECT,
                          external_id="51:status:1", modstamp=T0, record_key=key,
                          field="status", old_value=old_value, new_value="OPEN", at=T0),
        ActivityRecord(source="hubspot", object=HUBSPOT_ACTIVITY_OBJECT,
                       external_id="51:recent_conversion_date:1", modstamp=T0,
                       kind="form_submission", at=T0, person_key=key),
    ]


def _apply(engine: Engine, records: list[Any]) -> dict[str, int]:
    with unit_of_work(engine) as s:
        return apply_page(s, records).as_counts()


def test_hubspot_history_is_kept_in_its_tables_only_and_counted_as_rows_were(
        engine: Engine) -> None:
    first = _apply(engine, [_contact(), *_history()])
    assert first["created"] == 3
    with unit_of_work(engine) as s:
        assert list(s.exec(select(CrmRow.object))) == ["contacts"]
        assert s.exec(select(func.count()).select_from(FieldChange)).one() == 1
        assert s.exec(select(col(Activity.live))).all() == [True]
    again = _apply(engine, [_contact(), *_history()])
    assert again["created"] == again["updated"] == 0
    changed = _apply(engine, [_contact(), *_history(old_value="NEW")])
    assert (changed["created"], changed["updated"]) == (0, 1)
    with unit_of_work(engine) as s:
        assert s.exec(select(FieldChange.old_value)).all() == ["NEW"]
    # history without its contact in the page is looked up like any other
    alone = _apply(engine, _history(old_value="LATER"))
    assert (alone["created"], alone["updated"]) == (0, 1)


def test_a_row_hashed_the_former_way_is_unchanged_by_the_same_record(engine: Engine) -> None:
    rec = _contact()
    assert _apply(engine, [rec])["created"] == 1
    with unit_of_work(engine) as s:
        row = s.exec(select(CrmRow)).one()
        assert row.payload_hash == payload_of(rec)[1]
        row.payload_hash = legacy_digest(rec)
        s.add(row)
    assert _apply(engine, [rec])["updated"] == 0
    assert _apply(engine, [_contact(title="CTO")])["updated"] == 1


def test_a_row_hashed_the_former_way_and_stamped_since_is_rewritten_once(engine: Engine
                                                                           ) -> None:
    """The CRM stamped the record again: the row is stored in today's form, counted once,
    and a further read of it changes nothing."""
    rec = _contact()
    _apply(engine, [rec])
    with unit_of_work(engine) as s:
        row = s.exec(select(CrmRow)).one()
        row.payload_hash = legacy_digest(rec)
        s.add(row)
    stamped = rec.model_copy(update={"modstamp": T0 + timedelta(minutes=5)})
    assert _apply(engine, [stamped])["updated"] == 1
    with unit_of_work(engine) as s:
        row = s.exec(select(CrmRow)).one()
        assert (row.payload_hash, row.modstamp) == (payload_of(stamped)[1], stamped.modstamp)
    assert _apply(engine, [stamped])["updated"] == 0


def _persons_and_events(engine: Engine) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    with unit_of_work(engine) as s:
        persons = {(p.id, p.email, p.first_name, p.last_name, p.title, p.country, p.lead_source,
                    p.score, p.owner_key, p.account_key, p.stage, p.created_at, p.live,
                    p.merged_into, p.dirty) for p in s.exec(select(Person))}
        events = {(e.person_id, e.stage, e.at, e.source_ref, e.reason, e.origin)
                  for e in s.exec(select(StageEvent))}
    return persons, events


@pytest.mark.parametrize("ahead", [None, True, False],
                         ids=["in-page", "prepared-ahead", "prepared-incremental"])
def test_new_persons_are_stored_as_their_refresh_would_leave_them(engine: Engine,
                                                                  ahead: bool | None) -> None:
    """Whether the page works new persons out itself or takes what ``prepare`` made ahead
    (the sync's way; not for the contact, whose history the page brings), or ``prepare``
    left them to the page, as for an incremental read."""
    leads = [PersonRecord(source="salesforce", object="Lead", external_id=f"00Q{i}", kind="lead",
                          modstamp=T0 + timedelta(minutes=i), created_at=T0 - timedelta(days=i),
                          email=f"p{i // 2}@example.com", first_name=f"F{i}", score=i * 1.5,
                          title=None if i % 3 else f"T{i}", owner_id=f"005{i % 4}",
                          account_key=f"salesforce:Account:001{i}" if i % 2 else None,
                          status="Working" if i % 5 else "Disqualified",
                          status_reason="No budget" if i % 5 == 0 else None,
                          converted_at=T0 + timedelta(days=1) if i % 7 == 0 else None)
             for i in range(COPY_FROM + 10)]
    solos = [PersonRecord(source="salesforce", object="Lead", external_id=f"00Qs{i}", kind="lead",
                          modstamp=T0, created_at=T0 - timedelta(days=i),
                          email=f"solo{i}@example.com", first_name=f"S{i}",
                          owner_id="0051" if i % 2 else None,
                          status="Working - Contacted" if i % 3 else "Closed - Not Converted",
                          status_reason="No budget" if i % 3 == 0 else None,
                          converted_at=T0 + timedelta(days=1) if i % 4 == 0 else None)
             for i in range(12)]  # a person each: what ``prepare`` works out ahead
    history = [_contact(), *_history()]  # a contact whose status history is in the same page
    records = [*leads, *solos, *history]
    with unit_of_work(engine) as s:
        prepared = None if ahead is None else prepare(records, new_persons=ahead)
        result = apply_page(s, records, prepared)
        assert result.settled and result.settled <= result.touched_persons
        settled = result.settled
    before = _persons_and_events(engine)
    assert len(before[0]) == (COPY_FROM + 10 + 1) // 2 + 12 + 1  # two leads share each email
    with unit_of_work(engine) as s:
        refresh_persons(s, settled)
    assert _persons_and_events(engine) == before


def _lead(n: int, *, at: datetime = T0, deleted: bool = False) -> PersonRecord:
    return PersonRecord(source="salesforce", object="Lead", external_id=f"00Q{n}", kind="lead",
                        modstamp=at, created_at=T0, email=f"lead{n}@example.com",
                        deleted=deleted)


def _links(engine: Engine) -> set[tuple[str, bool]]:
    """(record key, still open) for every link in the history."""
    with unit_of_work(engine) as s:
        return {(link.record_key, link.valid_to is None) for link in s.exec(select(PersonLink))}


def test_a_deleted_row_closes_its_link_and_one_that_arrives_deleted_links_nothing(
        engine: Engine) -> None:
    later = T0 + timedelta(hours=1)
    with unit_of_work(engine) as s:
        apply_page(s, [_lead(1), _lead(2)])
    with unit_of_work(engine) as s:  # one known row is deleted, one row arrives deleted
        result = apply_page(s, [_lead(1, at=later, deleted=True),
                                _lead(3, at=later, deleted=True)])
        refresh_persons(s, result.touched_persons - result.settled)  # as the sync does
        assert (result.created, result.deleted) == (0, 2)
    assert _links(engine) == {("salesforce:Lead:00Q1", False), ("salesforce:Lead:00Q2", True)}
    with unit_of_work(engine) as s:
        live = {p.email: p.live for p in s.exec(select(Person))}
    assert live == {"lead1@example.com": False, "lead2@example.com": True}
    with unit_of_work(engine) as s:  # a row created and deleted within one page
        apply_page(s, [_lead(4), _lead(4, at=later, deleted=True), _lead(5)])
    assert ("salesforce:Lead:00Q4", True) not in _links(engine)
    assert ("salesforce:Lead:00Q5", True) in _links(engine)


def test_a_refresh_rewrites_only_the_events_that_changed(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        apply_page(s, [_lead(1), _lead(2)])

    def events() -> dict[tuple[str, str], int]:
        with unit_of_work(engine) as s:
            return {(e.stage, e.source_ref): e.id for e in s.exec(select(StageEvent))
                    if e.id is not None}

    before = events()
    assert set(before) == {("inquiry", "salesforce:Lead:00Q1"), ("inquiry", "salesforce:Lead:00Q2")}
    with unit_of_work(engine) as s:
        refresh_persons(s, s.exec(select(Person.id)).all())
    assert events() == before  # derived the same: kept, not deleted and inserted again
    converted = _lead(1, at=T0 + timedelta(hours=1)).model_copy(
        update={"converted_at": T0 + timedelta(days=1)})
    with unit_of_work(engine) as s:
        result = apply_page(s, [converted])
        refresh_persons(s, result.touched_persons - result.settled)
    after = events()
    assert after.items() >= before.items()
    assert set(after) - set(before) == {("sal", "salesforce:Lead:00Q1#converted")}
