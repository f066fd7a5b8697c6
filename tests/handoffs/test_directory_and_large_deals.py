"""The directory of contacts, and the large-deal handoff back to marketing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from service.app import create_app
from service.crm.models import Account, Opportunity
from service.db import unit_of_work
from service.handoffs.directory import liaison_for
from service.handoffs.directory_routes import router
from service.handoffs.large_deals import flag_large_deals, large_deal_hook, segment_of
from service.handoffs.models import DirectoryEntry, OutboxEvent
from service.settings import Settings

Headers = Callable[..., dict[str, str]]
ENTRY = {"segment": "Enterprise", "topic": "large-deal", "marketing_name": "Brand Manager",
         "marketing_email": "brand@example.com", "sales_name": "Key Accounts",
         "sales_email": "keys@example.com"}


@pytest.fixture()
def api(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    if not any(getattr(r, "path", None) == "/api/v1/directory" for r in app.routes):
        app.include_router(router)
    with TestClient(app) as client:
        yield client


def add_deal(engine: Engine, key: str, amount: float, *, employees: int | None = 5000,
             closed: bool = False, live: bool = True) -> None:
    with unit_of_work(engine) as session:
        account_key = f"salesforce:Account:{key}"
        session.add(Account(key=account_key, source="salesforce", name=f"Acme {key}",
                            employees=employees))
        session.add(Opportunity(key=f"salesforce:Opportunity:{key}", source="salesforce",
                                name=f"Deal {key}", account_key=account_key, amount=amount,
                                is_closed=closed, live=live, owner_key="salesforce:User:005A"))


def add_entry(engine: Engine, **overrides: str) -> None:
    with unit_of_work(engine) as session:
        session.add(DirectoryEntry(**(ENTRY | overrides)))


def announcements(engine: Engine) -> list[OutboxEvent]:
    with unit_of_work(engine) as session:
        return list(session.exec(select(OutboxEvent).where(
            OutboxEvent.kind == "opportunity.large").order_by(OutboxEvent.id)))


# -- the directory API ------------------------------------------------------------------


def test_an_editor_adds_an_entry_and_anyone_lists_it(api: TestClient, make_key: Headers) -> None:
    created = api.post("/api/v1/directory", json=ENTRY, headers=make_key("marketing", "editor"))
    assert created.status_code == 201, created.text
    assert created.json() | {"id": 0} == ENTRY | {"id": 0}
    listed = api.get("/api/v1/directory", params={"segment": "Enterprise"},
                     headers=make_key("sales", "viewer"))
    assert listed.status_code == 200
    assert [e["sales_name"] for e in listed.json()["items"]] == ["Key Accounts"]
    other = api.get("/api/v1/directory", params={"topic": "renewals"},
                    headers=make_key("sales", "viewer"))
    assert other.json() == {"items": [], "next_cursor": None}


def test_a_viewer_cannot_add(api: TestClient, make_key: Headers) -> None:
    answer = api.post("/api/v1/directory", json=ENTRY, headers=make_key("sales", "viewer"))
    assert answer.status_code == 403


def test_a_duplicate_segment_and_topic_is_a_conflict(api: TestClient,
                                                     admin_headers: dict[str, str]) -> None:
    assert api.post("/api/v1/directory", json=ENTRY, headers=admin_headers).status_code == 201
    again = api.post("/api/v1/directory", json=ENTRY | {"sales_name": "Someone else"},
                     headers=admin_headers)
    assert again.status_code == 409
    assert "Enterprise" in again.json()["detail"]


def test_bad_fields_are_named(api: TestClient, admin_headers: dict[str, str]) -> None:
    answer = api.post("/api/v1/directory", headers=admin_headers,
                      json=ENTRY | {"sales_email": "not-an-email", "marketing_name": ""})
    assert answer.status_code == 422
    fields = {e["loc"][-1] for e in answer.json()["detail"]}
    assert fields == {"sales_email", "marketing_name"}


def test_the_list_is_paginated(api: TestClient, admin_headers: dict[str, str]) -> None:
    for segment in ("SMB", "Mid-Market", "Enterprise"):
        api.post("/api/v1/directory", json=ENTRY | {"segment": segment}, headers=admin_headers)
    first = api.get("/api/v1/directory", params={"limit": 2}, headers=admin_headers).json()
    rest = api.get("/api/v1/directory", params={"limit": 2, "cursor": first["next_cursor"]},
                   headers=admin_headers).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None


def test_the_liaison_falls_back_to_any_segment(engine: Engine) -> None:
    add_entry(engine, segment="*", sales_name="Anyone")
    add_entry(engine, segment="SMB", sales_name="Small")
    with unit_of_work(engine) as session:
        assert liaison_for(session, "SMB").sales_name == "Small"
        assert liaison_for(session, "Enterprise").sales_name == "Anyone"
        assert liaison_for(session, "Enterprise", "renewals") is None


# -- large deals ------------------------------------------------------------------------


@pytest.mark.parametrize(("employees", "segment"), [
    (None, "Unknown"), (0, "SMB"), (99, "SMB"), (100, "Mid-Market"), (999, "Mid-Market"),
    (1000, "Enterprise")])
def test_segments_by_headcount(employees: int | None, segment: str) -> None:
    assert segment_of(employees) == segment


def test_a_large_deal_is_announced_once_with_its_liaison(engine: Engine) -> None:
    add_entry(engine)
    add_deal(engine, "big", 2_500_000)
    add_deal(engine, "small", 1_900_000)
    add_deal(engine, "closed", 9_000_000, closed=True)
    add_deal(engine, "deleted", 9_000_000, live=False)
    with unit_of_work(engine) as session:
        assert flag_large_deals(session, threshold=2_000_000) == 1
    with unit_of_work(engine) as session:
        assert flag_large_deals(session, threshold=2_000_000) == 0
    [event] = announcements(engine)
    assert event.dedupe_key == "opportunity:salesforce:Opportunity:big:large"
    payload = event.payload
    assert payload["amount"] == 2_500_000 and payload["segment"] == "Enterprise"
    assert payload["liaison"]["marketing_name"] == "Brand Manager"
    assert payload["account_name"] == "Acme big" and payload["note"] is None


def test_without_a_directory_entry_the_event_says_so(engine: Engine) -> None:
    add_deal(engine, "mid", 3_000_000, employees=250)
    with unit_of_work(engine) as session:
        assert flag_large_deals(session, threshold=2_000_000) == 1
    [event] = announcements(engine)
    assert event.payload["segment"] == "Mid-Market" and event.payload["liaison"] is None
    assert "Mid-Market" in event.payload["note"]


def test_the_page_hook_uses_the_threshold_setting(engine: Engine, settings: Settings) -> None:
    add_deal(engine, "a", 2_000_000)
    add_deal(engine, "b", 600_000)
    hook = large_deal_hook(settings)
    with unit_of_work(engine) as session:
        hook(session, set())
    assert [e.payload["name"] for e in announcements(engine)] == ["Deal a"]
