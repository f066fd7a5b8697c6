"""End to end on the sandbox CRMs: a lead qualifies, its handoff opens, and the CRM's own
status change and first touch stop the clocks at the CRM's timestamps, by sync and by webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import col, select

from connectors.hubspot import HubSpotConnector
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.generator import REFERENCE_DEFINITION, generate_world
from connectors.sandbox.run import WEBHOOK_SECRET, Sandboxes, start_sandboxes
from service.app import create_app
from service.db import unit_of_work
from service.demo import seed_agreement
from service.handoffs.models import Handoff, SlaClock
from service.settings import Settings
from service.sync.models import CrmRow
from service.sync.service import sync_source
from tests.conftest import ADMIN_KEY
from tests.factories import pointed_at


@pytest.fixture()
def boxes() -> Iterator[Sandboxes]:
    sandboxes = start_sandboxes(world=generate_world(seed=5, people=400))
    yield sandboxes
    sandboxes.stop()


@pytest.fixture()
def crm_settings(settings: Settings, boxes: Sandboxes) -> Settings:
    return pointed_at(settings, boxes)


def sync(engine: Engine, settings: Settings, source: str) -> None:
    connector = (SalesforceConnector(settings.salesforce, retry_wait_seconds=0.01)
                 if source == "salesforce"
                 else HubSpotConnector(settings.hubspot, retry_wait_seconds=0.01))
    run = sync_source(engine, settings, source, connector=connector)
    assert run.status == "succeeded", run.error


def open_handoff_on(engine: Engine, source: str, obj: str) -> tuple[Handoff, str]:
    """An open handoff with no clock stopped yet (the generated history may already hold a
    first touch) whose person has a live row of ``obj`` in ``source`` (and only there)."""
    with unit_of_work(engine) as s:
        stopped = select(SlaClock.handoff_id).where(col(SlaClock.stopped_at).is_not(None))
        rows = s.exec(select(Handoff, CrmRow).join(CrmRow, CrmRow.person_id == Handoff.person_id)
                      .where(Handoff.state == "open", CrmRow.kind == "person",
                             col(CrmRow.deleted).is_(False),
                             col(Handoff.id).not_in(stopped))).all()
        by_person: dict[int, list[CrmRow]] = {}
        for handoff, row in rows:
            by_person.setdefault(handoff.person_id, []).append(row)
        for handoff, _ in rows:
            mine = by_person[handoff.person_id]
            if [(r.source, r.object) for r in mine] == [(source, obj)]:
                return handoff, mine[0].external_id
    raise AssertionError(f"no open handoff on a {source} {obj} only")


def clocks(engine: Engine, handoff_id: int) -> dict[str, SlaClock]:
    with unit_of_work(engine) as s:
        found = s.exec(select(SlaClock).where(SlaClock.handoff_id == handoff_id))
        return {c.kind: c for c in found}


def test_salesforce_status_change_and_first_call_stop_the_clocks_by_sync(
    engine: Engine, crm_settings: Settings, boxes: Sandboxes
) -> None:
    seed_agreement(engine, crm_settings, REFERENCE_DEFINITION)
    sync(engine, crm_settings, "salesforce")
    handoff, lead_id = open_handoff_on(engine, "salesforce", "Lead")
    world = boxes.world
    accepted_at = world.clock().replace(microsecond=0) - timedelta(minutes=5)
    called_at = accepted_at + timedelta(minutes=2)
    with world.lock:
        lead = world.salesforce.table("Lead")[lead_id]
        world.salesforce.insert("LeadHistory", {"LeadId": lead_id, "Field": "Status",
                                                "OldValue": lead["Status"],
                                                "NewValue": "Working - Contacted"},
                                at=accepted_at)
        world.salesforce.update("Lead", lead_id, {"Status": "Working - Contacted"},
                                at=accepted_at)
        world.salesforce.insert("Task", {"WhoId": lead_id, "OwnerId": lead["OwnerId"],
                                         "Subject": "Call", "Type": "Call",
                                         "Status": "Completed", "TaskSubtype": "Call",
                                         "ActivityDate": called_at.date()}, at=called_at)
    sync(engine, crm_settings, "salesforce")
    with unit_of_work(engine) as s:
        after = s.get(Handoff, handoff.id)
        assert after is not None
        assert (after.state, after.decided_at) == ("accepted", accepted_at)
    mine = clocks(engine, handoff.id)  # type: ignore[arg-type]
    assert mine["accept"].stopped_at == accepted_at
    assert mine["first_touch"].stopped_at == called_at


def test_hubspot_status_change_stops_the_clock_within_a_webhook(
    engine: Engine, crm_settings: Settings, boxes: Sandboxes
) -> None:
    seed_agreement(engine, crm_settings, REFERENCE_DEFINITION)
    sync(engine, crm_settings, "hubspot")
    handoff, contact_id = open_handoff_on(engine, "hubspot", "contacts")
    world = boxes.world
    decided_at = world.clock().replace(microsecond=0) - timedelta(minutes=1)
    with world.lock:
        world.hubspot.update("contacts", contact_id, {"hs_lead_status": "UNQUALIFIED"},
                             at=decided_at)
    body = json.dumps([{"eventId": 1, "subscriptionType": "contact.propertyChange",
                        "objectId": int(contact_id), "propertyName": "hs_lead_status",
                        "propertyValue": "UNQUALIFIED", "occurredAt": int(time.time() * 1000),
                        "attemptNumber": 0, "portalId": 1, "appId": 1}]).encode()
    with TestClient(create_app(crm_settings, engine=engine)) as client:
        url = "http://testserver/webhooks/hubspot"
        ts = str(int(time.time() * 1000))
        signature = _sign(body, url, ts)
        answer = client.post("/webhooks/hubspot", content=body, headers={
            "Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": ts, "Authorization": f"Bearer {ADMIN_KEY}"})
        assert answer.status_code == 200, answer.text
    with unit_of_work(engine) as s:
        after = s.get(Handoff, handoff.id)
        assert after is not None
        assert (after.state, after.reason, after.decided_at) == ("rejected", "UNQUALIFIED",
                                                                 decided_at)
    assert clocks(engine, handoff.id)["accept"].stopped_at == decided_at  # type: ignore[arg-type]


def _sign(body: bytes, url: str, ts: str) -> str:
    """HubSpot's documented v3 signature: base64(HMAC-SHA256(secret, method+uri+body+ts))."""
    import base64
    import hashlib
    import hmac

    message = f"POST{url}{body.decode()}{ts}".encode()
    return base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), message,
                                     hashlib.sha256).digest()).decode()
