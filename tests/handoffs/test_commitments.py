"""Marketing's MQL commitments: validation, who may make them, and attainment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.app import create_app
from service.crm.models import Account
from service.db import unit_of_work
from service.definitions.models import LeadDefinition
from service.handoffs.commitment_routes import router
from service.handoffs.models import Handoff, SlaClock
from service.people.models import Person, StageEvent
from service.settings import Settings

Headers = Callable[..., dict[str, str]]
MARCH = {"period_start": "2026-03-01", "period_end": "2026-03-31", "mqls_promised": 4,
         "min_acceptance_rate": 0.6}


def at(day: str, hhmm: str = "12:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00").astimezone(UTC)


@pytest.fixture()
def api(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    if not any(getattr(r, "path", None) == "/api/v1/commitments" for r in app.routes):
        app.include_router(router)
    with TestClient(app) as client:
        yield client


@pytest.fixture()
def march(engine: Engine) -> None:
    """Five people's MQLs, handoffs and clocks around March 2026 (definition version 3)."""
    with unit_of_work(engine) as session:
        session.add(LeadDefinition(version=2, name="old", rules={}, state="superseded",
                                   created_by="t"))
        session.add(LeadDefinition(version=3, name="now", rules={}, state="active",
                                   created_by="t"))
        session.add(Account(key="a:big", source="salesforce", employees=5000))
        session.add(Account(key="a:small", source="salesforce", employees=20))
        persons = {n: Person(email=f"p{n}@example.com",
                             account_key="a:small" if n == 5 else "a:big") for n in range(1, 6)}
        session.add_all(persons.values())
        session.flush()

        def mql(n: int, when: datetime, version: int = 3) -> int:
            event = StageEvent(person_id=persons[n].id, stage="mql", at=when,
                               source_ref=f"definition:{version}:{n}", definition_version=version,
                               origin="definition")
            session.add(event)
            session.flush()
            assert event.id is not None
            return event.id

        events = {1: mql(1, at("2026-03-01", "00:00")), 2: mql(2, at("2026-03-31", "23:59")),
                  3: mql(3, at("2026-04-01", "00:00")), 4: mql(4, at("2026-02-28", "23:59")),
                  5: mql(5, at("2026-03-05"))}
        mql(5, at("2026-03-06"), version=2)  # another definition's MQL does not count

        def handoff(n: int, state: str, decided: str | None) -> int:
            row = Handoff(person_id=persons[n].id, mql_event_id=events[n], definition_version=3,
                          opened_at=at("2026-03-01"), state=state,
                          decided_at=at(decided) if decided else None)
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id

        h1 = handoff(1, "accepted", "2026-03-10")
        h2 = handoff(2, "rejected", "2026-03-15")
        h3 = handoff(3, "accepted", "2026-04-02")
        handoff(4, "recycled", "2026-03-20")
        h5 = handoff(5, "accepted", "2026-03-05")
        for hid, kind, due, state in [(h1, "accept", "2026-03-10", "met"),
                                      (h1, "first_touch", "2026-03-12", "breached"),
                                      (h2, "accept", "2026-03-14", "met"),
                                      (h3, "accept", "2026-04-02", "met"),
                                      (h5, "accept", "2026-03-06", "running")]:
            session.add(SlaClock(handoff_id=hid, kind=kind, target_minutes=240,
                                 started_at=at("2026-03-01"), warn_due_at=at(due, "09:00"),
                                 due_at=at(due), state=state))


def test_attainment_of_a_period(api: TestClient, make_key: Headers, march: None) -> None:
    created = api.post("/api/v1/commitments", json=MARCH,
                       headers=make_key("marketing", "editor", name="mkt-lead"))
    assert created.status_code == 201, created.text
    listed = api.get("/api/v1/commitments", headers=make_key("sales", "viewer"))
    [item] = listed.json()["items"]
    assert item == created.json()
    assert item["created_by"] == "mkt-lead" and item["definition_version"] == 3
    assert item["mqls_delivered"] == 3  # persons 1, 2 (last minute of the end day) and 5
    assert item["attainment"] == pytest.approx(0.75)
    assert (item["handoffs_accepted"], item["handoffs_rejected"]) == (2, 2)
    assert item["acceptance_rate"] == pytest.approx(0.5)
    assert item["meets_min_acceptance"] is False
    # h5's accept clock still runs, long past its due day: breached, as the metric counts it
    assert (item["sla_met"], item["sla_breached"]) == (2, 2)
    assert item["sla_compliance"] == pytest.approx(2 / 4)


@pytest.mark.parametrize(("segment", "delivered", "rate"), [
    ("Enterprise", 2, 1 / 3), ("SMB", 1, 1.0), ("Unknown", 0, None)])
def test_a_segment_counts_only_its_accounts(api: TestClient, admin_headers: dict[str, str],
                                            march: None, segment: str, delivered: int,
                                            rate: float | None) -> None:
    answer = api.post("/api/v1/commitments", json=MARCH | {"segment": segment},
                      headers=admin_headers).json()
    assert answer["mqls_delivered"] == delivered
    assert answer["acceptance_rate"] == (None if rate is None else pytest.approx(rate))


def test_an_empty_period_answers_nulls_not_zeros(api: TestClient,
                                                 admin_headers: dict[str, str],
                                                 march: None) -> None:
    body = {"period_start": "2025-01-01", "period_end": "2025-01-31", "mqls_promised": 10}
    answer = api.post("/api/v1/commitments", json=body, headers=admin_headers).json()
    assert answer["mqls_delivered"] == 0 and answer["attainment"] == 0
    assert answer["acceptance_rate"] is None and answer["meets_min_acceptance"] is None
    assert answer["sla_compliance"] is None


def test_without_an_active_definition_nothing_is_delivered_yet(
        api: TestClient, admin_headers: dict[str, str]) -> None:
    answer = api.post("/api/v1/commitments", json=MARCH, headers=admin_headers).json()
    assert answer["definition_version"] is None
    assert answer["mqls_delivered"] is None and answer["attainment"] is None


@pytest.mark.parametrize(("change", "field"), [
    ({"period_end": "2026-02-01"}, "period_end"),
    ({"mqls_promised": -1}, "mqls_promised"),
    ({"min_acceptance_rate": 1.5}, "min_acceptance_rate"),
    ({"min_acceptance_rate": -0.1}, "min_acceptance_rate"),
    ({"segment": "Huge"}, "segment"),
])
def test_bad_input_names_the_field(api: TestClient, admin_headers: dict[str, str],
                                   change: dict, field: str) -> None:
    answer = api.post("/api/v1/commitments", json=MARCH | change, headers=admin_headers)
    assert answer.status_code == 422
    assert [e["loc"][-1] for e in answer.json()["detail"]] == [field]


@pytest.mark.parametrize(("team", "role", "code"), [
    ("marketing", "editor", 201), ("ops", "editor", 201), ("sales", "editor", 403),
    ("marketing", "viewer", 403)])
def test_marketing_or_ops_editors_commit(api: TestClient, make_key: Headers, team: str,
                                         role: str, code: int) -> None:
    answer = api.post("/api/v1/commitments", json=MARCH, headers=make_key(team, role))
    assert answer.status_code == code


def test_one_commitment_by_id(api: TestClient, admin_headers: dict[str, str]) -> None:
    created = api.post("/api/v1/commitments", json=MARCH, headers=admin_headers).json()
    one = api.get(f"/api/v1/commitments/{created['id']}", headers=admin_headers)
    assert one.json() == created
    assert api.get("/api/v1/commitments/999", headers=admin_headers).status_code == 404
