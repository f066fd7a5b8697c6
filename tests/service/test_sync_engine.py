"""The sync engine and identity resolution, fed by an in-process connector.

The connectors themselves are tested against the sandbox CRMs through the real client
libraries; here the records are typed by hand so every identity rule is visible in the test.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from connectors.records import (
    FieldChangeRecord,
    Malformed,
    OpportunityRecord,
    PersonRecord,
    record_key,
)
from service.db import unit_of_work
from service.people.models import Person, StageEvent
from service.people.repository import live_person_count
from service.settings import Settings
from service.sync.locks import source_lock
from service.sync.models import Quarantined, SyncRun
from service.sync.service import sync_source
from tests.factories import T0, ListConnector, hs_contact, sf_lead


def run(engine: Engine, settings: Settings, connector: ListConnector, **kw) -> SyncRun:
    return sync_source(engine, settings, connector.source, connector=connector, hooks=[], **kw)


def persons(engine: Engine) -> list[Person]:
    with unit_of_work(engine) as s:
        return list(s.exec(select(Person).where(Person.live, Person.merged_into == None)  # noqa: E711
                           .order_by(Person.id)))


def test_same_email_written_differently_in_both_crms_is_one_person(
    engine: Engine, settings: Settings
) -> None:
    run(engine, settings, ListConnector("salesforce", {"leads": [[sf_lead(1, "Ann@Acme.com")]]}))
    hubspot = ListConnector("hubspot", {"contacts": [[hs_contact(7, " ann@acme.com ")]]})
    run(engine, settings, hubspot)
    [ann] = persons(engine)
    assert ann.email == "ann@acme.com"


def test_cross_reference_links_different_emails_whichever_arrives_first(
    engine: Engine, settings: Settings
) -> None:
    xref = record_key("salesforce", "Lead", "00Q2")
    run(engine, settings, ListConnector("hubspot", {"contacts": [[
        hs_contact(8, "bob.personal@example.org", xrefs=(xref,))]]}))
    run(engine, settings, ListConnector("salesforce", {"leads": [[sf_lead(2, "bob@acme.com")]]}))
    assert len(persons(engine)) == 1


def test_converted_lead_and_its_contact_are_one_person(engine: Engine, settings: Settings) -> None:
    contact = PersonRecord(source="salesforce", object="Contact", external_id="0031",
                           kind="contact", modstamp=T0, created_at=T0, email="cy@corp.io")
    lead = sf_lead(3, "cy.old@corp.io", converted_contact_key=contact.key,
                   converted_at=T0 + timedelta(days=2))
    run(engine, settings, ListConnector("salesforce", {"leads": [[lead]], "contacts": [[contact]]}))
    [cy] = persons(engine)
    with unit_of_work(engine) as s:
        stages = [e.stage for e in s.exec(select(StageEvent).where(StageEvent.person_id == cy.id))]
    assert stages == ["inquiry", "sal"]  # conversion counts as acceptance


def test_merge_folds_two_people_and_deletion_removes_one(engine: Engine, settings: Settings
                                                         ) -> None:
    first = ListConnector("salesforce", {"leads": [[sf_lead(4, "d1@x.com"), sf_lead(5, "d2@x.com"),
                                                    sf_lead(6, "gone@x.com")]]})
    run(engine, settings, first)
    assert len(persons(engine)) == 3
    later = T0 + timedelta(hours=1)
    second = ListConnector("salesforce", {"leads": [[
        sf_lead(5, "d2@x.com", deleted=True, merged_into="00Q4", modstamp=later),
        sf_lead(6, "gone@x.com", deleted=True, modstamp=later),
    ]]})
    result = run(engine, settings, second, full=True)
    assert result.counts["leads"]["merged"] == 1
    assert result.counts["leads"]["deleted"] == 1
    assert [p.email for p in persons(engine)] == ["d1@x.com"]


def test_a_second_run_over_the_same_pages_counts_nothing(engine: Engine, settings: Settings
                                                         ) -> None:
    pages = {"leads": [[sf_lead(i, f"p{i}@x.com") for i in range(10)]]}
    first = run(engine, settings, ListConnector("salesforce", pages))
    again = run(engine, settings, ListConnector("salesforce", pages), full=True)
    assert first.counts["leads"]["created"] == 10
    assert again.counts["leads"] == {"fetched": 10, "created": 0, "updated": 0, "deleted": 0,
                                     "merged": 0, "quarantined": 0}
    with unit_of_work(engine) as s:
        assert live_person_count(s) == 10


def test_malformed_rows_are_quarantined_and_leave_once_fixed(
    engine: Engine, settings: Settings, client: TestClient, admin_headers: dict
) -> None:
    bad = Malformed(source="salesforce", object="Lead", external_id="00Q9",
                    reason="invalid email 'not-an-email'", payload={"Email": "not-an-email"})
    pages = {"leads": [[bad, sf_lead(1, "a@b.co")]]}
    result = run(engine, settings, ListConnector("salesforce", pages))
    assert result.status == "succeeded"
    assert result.counts["leads"]["quarantined"] == 1
    listed = client.get("/api/v1/quarantine", headers=admin_headers).json()["items"]
    assert [(q["external_id"], q["reason"]) for q in listed] == [
        ("00Q9", "invalid email 'not-an-email'")]
    run(engine, settings, ListConnector("salesforce", {"leads": [[sf_lead(9, "fixed@b.co")]]}),
        full=True)
    with unit_of_work(engine) as s:
        assert s.exec(select(Quarantined)).all() == []


def test_status_history_gives_decisions_at_the_crms_timestamps(engine: Engine, settings: Settings
                                                               ) -> None:
    lead = sf_lead(1, "e@x.com", status="Closed - Not Converted", status_reason="No Budget")
    accepted_at, rejected_at = T0 + timedelta(hours=3), T0 + timedelta(days=9)
    history = [
        FieldChangeRecord(source="salesforce", object="LeadHistory", external_id=f"017{i}",
                          modstamp=at, record_key=lead.key, field="status", new_value=value, at=at)
        for i, (value, at) in enumerate([("Working - Contacted", accepted_at),
                                         ("Closed - Not Converted", rejected_at)])
    ]
    opp = OpportunityRecord(source="salesforce", object="Opportunity", external_id="0061",
                            modstamp=T0, created_at=T0 + timedelta(days=4), person_keys=(lead.key,),
                            amount=5000, is_closed=True, is_won=False,
                            close_date=(T0 + timedelta(days=30)).date())
    run(engine, settings, ListConnector("salesforce", {"leads": [[lead]], "opportunities": [[opp]],
                                                       "lead_history": [history]}))
    [person] = persons(engine)
    with unit_of_work(engine) as s:
        events = [(e.stage, e.at, e.reason) for e in s.exec(
            select(StageEvent).where(StageEvent.person_id == person.id).order_by(StageEvent.at))]
    assert events == [
        ("inquiry", T0, None),
        ("sal", accepted_at, None),
        ("sql", T0 + timedelta(days=4), None),
        ("rejected", rejected_at, "No Budget"),
        ("lost", datetime(2026, 4, 1, tzinfo=UTC), None),
    ]
    assert person.stage == "lost"


def test_budget_stop_saves_the_place_and_the_next_run_resumes(engine: Engine, settings: Settings
                                                              ) -> None:
    pages = {"leads": [[sf_lead(i, f"q{i}@x.com")] for i in range(5)]}
    first = run(engine, settings, ListConnector("salesforce", pages, stop_after=2))
    assert first.status == "partial" and "budget" in (first.error or "")
    assert first.counts["leads"]["created"] == 2
    second = run(engine, settings, ListConnector("salesforce", pages))
    assert second.status == "succeeded"
    assert second.counts["leads"]["fetched"] == 3
    assert len(persons(engine)) == 5


def test_a_configuration_error_fails_the_run_with_its_message(engine: Engine, settings: Settings
                                                              ) -> None:
    result = run(engine, settings, ListConnector("hubspot", {"contacts": [[]]}, fail_on="contacts"))
    assert result.status == "failed"
    assert result.error == "HubSpot rejected the access token"
    assert result.finished_at is not None


def test_a_source_already_syncing_elsewhere_is_skipped(engine: Engine, settings: Settings) -> None:
    with source_lock(engine, "salesforce") as held:
        assert held
        pages = {"leads": [[sf_lead(1, "z@x.io")]]}
        result = run(engine, settings, ListConnector("salesforce", pages))
    assert result.status == "skipped"
    assert persons(engine) == []


def test_sync_api_rejects_an_unconfigured_source_naming_the_field(
    client: TestClient, make_key
) -> None:
    r = client.post("/api/v1/syncs", json={"source": "salesforce"},
                    headers=make_key("ops", "editor"))
    assert r.status_code == 422
    assert "TRUCE_SALESFORCE_" in r.text
    r = client.post("/api/v1/syncs", json={"source": "pipedrive"},
                    headers=make_key("ops", "editor"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "source"]


@pytest.mark.parametrize("path", ["/api/v1/persons/424242", "/api/v1/syncs/424242"])
def test_unknown_ids_are_404(client: TestClient, admin_headers: dict, path: str) -> None:
    assert client.get(path, headers=admin_headers).status_code == 404


def test_small_pages_are_written_together_and_resume_where_the_last_ended() -> None:
    """Pages join until a write holds enough records; the joined page resumes after its
    last part, counts every API call, and what was joined before a failure is still handed
    over (the failure then surfaces)."""
    from connectors.base import Cursor, Page, StopEarly
    from service.sync.engine import coalesce

    def page(n: int) -> Page:
        return Page("contacts", [sf_lead(n * 10 + i, None) for i in range(3)],
                    Cursor(value=str(n)), api_calls=1)

    joined = list(coalesce(iter([page(n) for n in range(1, 6)]), at_least=6))
    assert [len(p.records) for p in joined] == [6, 6, 3]
    assert [p.cursor.value for p in joined] == ["2", "4", "5"]
    assert [p.api_calls for p in joined] == [2, 2, 1]
    assert [r.key for p in joined for r in p.records] == [
        r.key for n in range(1, 6) for r in page(n).records]

    def stopping() -> Iterator[Page]:
        yield page(1)
        raise StopEarly("API budget below its reserve")

    seen: list[Page] = []
    with pytest.raises(StopEarly):
        for p in coalesce(stopping(), at_least=6):
            seen.append(p)
    assert [p.cursor.value for p in seen] == ["1"]
