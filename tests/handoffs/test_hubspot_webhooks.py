"""The HubSpot webhook receiver: signature v3, replay window, and the targeted refresh."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from hubspot.utils.signature import Signature
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import select

from connectors.records import PersonRecord
from service.app import create_app
from service.db import unit_of_work
from service.handoffs.webhook_routes import router
from service.handoffs.webhooks import group_ids, parse_events, refresh_objects
from service.settings import Settings
from service.sync.models import CrmRow

SECRET = "hubspot-app-client-secret"
URL = "http://testserver/webhooks/hubspot"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def mounted(settings: Settings, engine: Engine, *routers: APIRouter) -> FastAPI:
    """The app with these routers, unless the app already mounts their paths."""
    app = create_app(settings, engine=engine)
    paths = {getattr(r, "path", None) for r in app.routes}
    for extra in routers:
        if not {getattr(r, "path", None) for r in extra.routes} <= paths:
            app.include_router(extra)
    return app


def with_hubspot(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(update={"hubspot": settings.hubspot.model_copy(update=values)})


def signed(body: bytes, *, secret: str = SECRET, at_ms: int | None = None,
           uri: str = URL) -> dict[str, str]:
    timestamp = str(at_ms if at_ms is not None else int(time.time() * 1000))
    signature = Signature.get_signature(secret, body.decode(), "v3", http_uri=uri,
                                        http_method="POST", timestamp=timestamp)
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp,
            "Content-Type": "application/json"}


def events(*items: tuple[int, str, int], prop: str | None = "hs_lead_status") -> bytes:
    """Events as (eventId, objectId, occurredAt ms), for contact.propertyChange."""
    return json.dumps([{"eventId": e, "subscriptionId": 1, "portalId": 1, "appId": 1,
                        "occurredAt": at, "subscriptionType": "contact.propertyChange",
                        "attemptNumber": 0, "objectId": int(oid), "propertyName": prop,
                        "propertyValue": "IN_PROGRESS", "changeSource": "CRM"}
                       for e, oid, at in items]).encode()


@pytest.fixture()
def secured(settings: Settings) -> Settings:
    return with_hubspot(settings, client_secret=SecretStr(SECRET))


@pytest.fixture()
def hs_client(secured: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(mounted(secured, engine, router)) as c:
        yield c


class FakeHubSpot:
    """A connector that answers a refresh with one contact and remembers the question."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.asked: list[tuple[str, list[str]]] = []

    def refresh(self, object_type: str, ids: list[str]) -> list[Any]:
        self.asked.append((object_type, ids))
        return [PersonRecord(source="hubspot", object="contacts", external_id=i, kind="contact",
                             modstamp=T0, created_at=T0, email=f"p{i}@example.com",
                             status=self.status) for i in ids]


def row_status(engine: Engine, contact_id: str) -> str | None:
    with unit_of_work(engine) as session:
        row = session.exec(select(CrmRow).where(
            CrmRow.key == f"hubspot:contacts:{contact_id}")).first()
        return None if row is None else row.payload.get("status")


def test_a_signed_batch_is_accepted_and_refreshes_the_named_contacts(
        secured: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeHubSpot("IN_PROGRESS")
    monkeypatch.setattr("service.handoffs.webhooks.build_connector", lambda _s: fake)
    settings = with_hubspot(secured, access_token=SecretStr("pat-test"))
    body = events((1, "101", 2000), (2, "102", 1000), (1, "101", 2000))
    with TestClient(mounted(settings, engine, router)) as client:
        answer = client.post("/webhooks/hubspot", content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 2}
    assert fake.asked == [("contacts", ["102", "101"])]  # deduped, in occurredAt order
    assert row_status(engine, "101") == "IN_PROGRESS"


def test_a_tampered_body_is_refused(hs_client: TestClient) -> None:
    body = events((1, "101", 1000))
    headers = signed(body)
    answer = hs_client.post("/webhooks/hubspot", content=body.replace(b"101", b"999"),
                            headers=headers)
    assert answer.status_code == 401
    assert "signature" in answer.json()["detail"]


def test_a_signature_for_another_url_is_refused(hs_client: TestClient) -> None:
    body = events((1, "101", 1000))
    headers = signed(body, uri="http://testserver/elsewhere")
    assert hs_client.post("/webhooks/hubspot", content=body, headers=headers).status_code == 401


def test_a_stale_timestamp_is_refused(hs_client: TestClient) -> None:
    body = events((1, "101", 1000))
    stale = int((time.time() - 6 * 60) * 1000)
    answer = hs_client.post("/webhooks/hubspot", content=body, headers=signed(body, at_ms=stale))
    assert answer.status_code == 401
    assert "older than 5 minutes" in answer.json()["detail"]


def test_a_timestamp_from_the_future_is_refused(hs_client: TestClient) -> None:
    body = events((1, "101", 1000))
    ahead = int((time.time() + 6 * 60) * 1000)
    answer = hs_client.post("/webhooks/hubspot", content=body, headers=signed(body, at_ms=ahead))
    assert answer.status_code == 401


def test_missing_headers_are_refused(hs_client: TestClient) -> None:
    assert hs_client.post("/webhooks/hubspot", content=events((1, "1", 1))).status_code == 401


def test_without_a_client_secret_webhooks_are_unavailable(settings: Settings,
                                                         engine: Engine) -> None:
    body = events((1, "101", 1000))
    with TestClient(mounted(settings, engine, router)) as client:
        answer = client.post("/webhooks/hubspot", content=body, headers=signed(body))
    assert answer.status_code == 503
    assert answer.json()["detail"] == "webhooks not configured: set TRUCE_HUBSPOT_CLIENT_SECRET"


def test_a_body_that_is_not_an_event_array_is_a_422(hs_client: TestClient) -> None:
    body = b'{"eventId": 1}'
    assert hs_client.post("/webhooks/hubspot", content=body,
                          headers=signed(body)).status_code == 422


def test_merges_and_other_objects_are_grouped_by_type() -> None:
    body = json.dumps([
        {"eventId": 1, "occurredAt": 3, "subscriptionType": "contact.merge", "objectId": 5,
         "primaryObjectId": 5, "mergedObjectIds": [6]},
        {"eventId": 2, "occurredAt": 1, "subscriptionType": "deal.creation", "objectId": 9},
        {"eventId": 3, "occurredAt": 2, "subscriptionType": "company.deletion", "objectId": 8},
        {"eventId": 4, "occurredAt": 2, "subscriptionType": "ticket.creation", "objectId": 7},
    ]).encode()
    assert group_ids(parse_events(body)) == {"deals": ["9"], "companies": ["8"],
                                             "contacts": ["5", "6"]}


def test_the_sandbox_portal_change_reaches_the_database(secured: Settings,
                                                        engine: Engine) -> None:
    hubspot_app = pytest.importorskip("connectors.sandbox.hubspot_app")
    from connectors.hubspot import HubSpotConnector
    from connectors.sandbox.world import World

    world = World(clock=lambda: T0 + timedelta(days=1))
    contact = world.hubspot.insert("contacts", {
        "email": "grace@example.com", "firstname": "Grace", "lastname": "Hopper",
        "hs_lead_status": "NEW"}, at=T0)
    server = hubspot_app.start_hubspot(world, port=0)
    try:
        settings = with_hubspot(secured, access_token=SecretStr(server.access_token),
                                base_url=server.url)
        connector = HubSpotConnector(settings.hubspot, retry_wait_seconds=0.01)
        refresh_objects(engine, settings, "contacts", [contact["id"]], connector=connector)
        assert row_status(engine, contact["id"]) == "NEW"
        world.hubspot.update("contacts", contact["id"], {"hs_lead_status": "IN_PROGRESS"},
                             at=T0 + timedelta(hours=2))
        body = events((42, contact["id"], int((T0 + timedelta(hours=2)).timestamp() * 1000)))
        with TestClient(mounted(settings, engine, router)) as client:
            answer = client.post("/webhooks/hubspot", content=body, headers=signed(body))
    finally:
        server.stop()
    assert answer.status_code == 200 and answer.json() == {"accepted": 1}
    assert row_status(engine, contact["id"]) == "IN_PROGRESS"
