"""Qualification after a sync, the MQL instant, explanations, and a back-test checked by hand."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from connectors.records import FieldChangeRecord, OpportunityRecord, PersonRecord
from service.db import unit_of_work
from service.people.models import Person, StageEvent
from service.settings import Settings
from service.sync.service import sync_source
from tests.factories import T0, ListConnector, sf_lead

SCORE_60 = {"all": [{"field": "person.score", "op": "gte", "value": 60}]}
US_AND_60 = {"all": [{"field": "person.country", "op": "in", "value": ["us"]},
                     {"field": "person.score", "op": "gte", "value": 60}]}


def activate(client: TestClient, make_key: Callable, rules: dict) -> int:
    mkt, sales = make_key("marketing", "editor"), make_key("sales", "editor")
    d = client.post("/api/v1/lead-definitions", json={"name": "v", "rules": rules},
                    headers=mkt).json()
    base = f"/api/v1/lead-definitions/{d['id']}"
    client.post(f"{base}/propose", headers=mkt)
    client.post(f"{base}/approve", headers=mkt)
    assert client.post(f"{base}/approve", headers=sales).json()["state"] == "active"
    return d["id"]


def status(lead: PersonRecord, n: int, value: str, at: datetime) -> FieldChangeRecord:
    return FieldChangeRecord(source="salesforce", object="LeadHistory", external_id=f"017{n}",
                             modstamp=at, record_key=lead.key, field="status", new_value=value,
                             at=at)


def small_world() -> ListConnector:
    leads = [
        sf_lead(1, "p1@a.com", score=80, country="US", created_at=T0),
        sf_lead(2, "p2@b.com", score=70, country="GB", created_at=T0 + timedelta(days=1)),
        sf_lead(3, "p3@c.com", score=65, country="us", created_at=T0 + timedelta(days=2)),
        sf_lead(4, "p4@d.com", score=30, country="US", created_at=T0 + timedelta(days=3)),
        sf_lead(5, "p5@e.com", score=90, country="US", created_at=T0 + timedelta(days=35)),
    ]
    history = [status(leads[0], 1, "Working - Contacted", T0 + timedelta(hours=2)),
               status(leads[1], 2, "Closed - Not Converted", T0 + timedelta(days=2)),
               status(leads[2], 3, "Working - Contacted", T0 + timedelta(days=3))]
    opps = [
        OpportunityRecord(source="salesforce", object="Opportunity", external_id="0061",
                          modstamp=T0, created_at=T0 + timedelta(days=5),
                          person_keys=(leads[0].key,), amount=10_000, is_closed=True,
                          is_won=True, close_date=(T0 + timedelta(days=40)).date()),
        OpportunityRecord(source="salesforce", object="Opportunity", external_id="0063",
                          modstamp=T0, created_at=T0 + timedelta(days=6),
                          person_keys=(leads[2].key,), amount=4_000),
    ]
    return ListConnector("salesforce", {"leads": [leads], "opportunities": [opps],
                                        "lead_history": [history]})


def ids_by_email(engine: Engine) -> dict[str, int]:
    with unit_of_work(engine) as s:
        return {p.email: p.id for p in s.exec(select(Person))}


def mqls(engine: Engine) -> list[tuple[str, int, datetime]]:
    with unit_of_work(engine) as s:
        rows = s.exec(select(Person.email, StageEvent.definition_version, StageEvent.at)
                      .join(Person, Person.id == StageEvent.person_id)
                      .where(StageEvent.stage == "mql").order_by(Person.email))
        return [tuple(r) for r in rows]


def test_a_sync_qualifies_persons_with_the_active_version_at_their_mql_instant(
    client: TestClient, make_key: Callable, engine: Engine, settings: Settings
) -> None:
    activate(client, make_key, SCORE_60)
    sync_source(engine, settings, "salesforce", connector=small_world())
    assert mqls(engine) == [("p1@a.com", 1, T0), ("p2@b.com", 1, T0 + timedelta(days=1)),
                            ("p3@c.com", 1, T0 + timedelta(days=2)),
                            ("p5@e.com", 1, T0 + timedelta(days=35))]
    again = sync_source(engine, settings, "salesforce", connector=small_world(), full=True)
    assert again.status == "succeeded"
    assert len(mqls(engine)) == 4  # nothing qualifies twice


def test_activating_a_version_replays_it_over_history(
    client: TestClient, make_key: Callable, engine: Engine, settings: Settings
) -> None:
    sync_source(engine, settings, "salesforce", connector=small_world())
    assert mqls(engine) == []
    activate(client, make_key, US_AND_60)
    assert [(e, v) for e, v, _ in mqls(engine)] == [("p1@a.com", 1), ("p3@c.com", 1),
                                                    ("p5@e.com", 1)]


def test_score_history_sets_the_mql_instant_when_the_value_qualified(
    client: TestClient, make_key: Callable, engine: Engine, settings: Settings
) -> None:
    activate(client, make_key, SCORE_60)
    contact = PersonRecord(source="hubspot", object="contacts", external_id="51", kind="contact",
                           modstamp=T0, created_at=T0, email="late@bloomer.io", score=75)
    crossed = T0 + timedelta(days=12)
    history = [FieldChangeRecord(source="hubspot", object="contact_history", external_id=f"51:{i}",
                                 modstamp=at, record_key=contact.key, field="score",
                                 new_value=value, at=at)
               for i, (value, at) in enumerate([("20", T0), ("75", crossed)])]
    sync_source(engine, settings, "hubspot",
                connector=ListConnector("hubspot", {"contacts": [[contact, *history]]}))
    assert mqls(engine) == [("late@bloomer.io", 1, crossed)]


def test_qualification_explains_each_criterion(
    client: TestClient, make_key: Callable, engine: Engine, settings: Settings
) -> None:
    activate(client, make_key, US_AND_60)
    sync_source(engine, settings, "salesforce", connector=small_world())
    p2 = ids_by_email(engine)["p2@b.com"]
    body = client.get(f"/api/v1/persons/{p2}/qualification",
                      headers=make_key("sales", "viewer")).json()
    assert body["met"] is False and body["mql_at"] is None
    leaves = {c["path"]: (c["passed"], c["actual"]) for c in body["criteria"]}
    assert leaves["rules.all[0]"] == (False, "GB")
    assert leaves["rules.all[1]"] == (True, 70)


def test_backtest_figures_match_the_hand_computed_answer(
    client: TestClient, make_key: Callable, engine: Engine, settings: Settings
) -> None:
    activate(client, make_key, SCORE_60)
    sync_source(engine, settings, "salesforce", connector=small_world())
    mkt = make_key("marketing", "editor")
    candidate = client.post("/api/v1/lead-definitions", json={"name": "US", "rules": US_AND_60},
                            headers=mkt).json()
    window = {"start": (T0 - timedelta(days=1)).isoformat(),
              "end": (T0 + timedelta(days=60)).isoformat()}
    r = client.post(f"/api/v1/lead-definitions/{candidate['id']}/backtest", json=window,
                    headers=mkt)
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    # candidate: p1, p3 (March), p5 (April); accepted p1 and p3; opportunities p1, p3; won p1
    assert result["candidate"]["mqls"] == 3
    assert result["candidate"]["mqls_per_month"] == {"2026-03": 2, "2026-04": 1}
    assert result["candidate"]["acceptance_rate"] == pytest.approx(1.0)
    assert (result["candidate"]["to_opportunity"], result["candidate"]["to_won"]) == (2, 1)
    # active: p1, p2, p3, p5; p2 was rejected, so 2 accepted of 3 decided
    assert result["active"]["mqls"] == 4
    assert result["active"]["acceptance_rate"] == pytest.approx(2 / 3)
    ids = ids_by_email(engine)
    assert (result["added_count"], result["dropped_count"]) == (0, 1)
    dropped = client.get(f"/api/v1/backtests/{r.json()['id']}/persons?which=dropped",
                         headers=mkt).json()
    assert dropped == {"items": [ids["p2@b.com"]], "next_cursor": None}


def test_backtest_with_a_reversed_window_is_a_422(client: TestClient, make_key: Callable) -> None:
    mkt = make_key("marketing", "editor")
    d = client.post("/api/v1/lead-definitions", json={"name": "v", "rules": SCORE_60},
                    headers=mkt).json()
    r = client.post(f"/api/v1/lead-definitions/{d['id']}/backtest",
                    json={"start": "2026-05-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                    headers=mkt)
    assert r.status_code == 422
    assert "end must be after start" in r.text


def test_recycled_person_qualifies_again_after_the_cooldown(
    client: TestClient, make_key: Callable, engine: Engine, settings: Settings
) -> None:
    from service.definitions.models import LeadDefinition
    from service.definitions.qualification import qualify

    activate(client, make_key, SCORE_60)
    sync_source(engine, settings, "salesforce", connector=small_world())
    pid = ids_by_email(engine)["p1@a.com"]
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with unit_of_work(engine) as s:
        s.add(StageEvent(person_id=pid, stage="recycled", at=T0 + timedelta(days=50),
                         source_ref="test"))
        definition = s.exec(select(LeadDefinition)).one()
        person = s.get(Person, pid)
        created = qualify(s, definition, [person], now=now, cooldown=timedelta(days=30))
        assert [e.at for e in created] == [T0 + timedelta(days=80)]
        assert qualify(s, definition, [person], now=now, cooldown=timedelta(days=30)) == []
