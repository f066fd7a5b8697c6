"""Outbox delivery: the signed breach webhook, retries, and the owner's task in the CRM."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import select

from service.db import unit_of_work, utcnow
from service.handoffs.delivery import ConnectorCrmWriter, backoff, deliver_pending
from service.handoffs.models import OutboxEvent
from service.handoffs.outbox import enqueue
from service.people.models import Person
from service.settings import Settings
from service.sync.models import CrmRow

SECRET = "whsec_test_0123456789"
DUE = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """A local webhook endpoint: records every POST and answers the queued statuses."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/truce"
    yield state
    server.shutdown()
    server.server_close()


def hooked(settings: Settings, receiver: Receiver, secret: str | None = SECRET) -> Settings:
    return settings.model_copy(update={
        "breach_webhook_url": receiver.url,
        "breach_webhook_secret": SecretStr(secret) if secret else None,
    })


def breach(engine: Engine, *, person_id: int = 1, owner_key: str | None = None,
           kind: str = "sla.breached", key: str = "clock:1:breached") -> int:
    with unit_of_work(engine) as session:
        assert enqueue(session, kind=kind, dedupe_key=key, payload={
            "person_id": person_id, "owner_key": owner_key, "clock": "first_touch",
            "due_at": DUE.isoformat(), "handoff_id": 7,
        })
        return session.exec(select(OutboxEvent.id).where(OutboxEvent.dedupe_key == key)).one()


def person_with_rows(engine: Engine, rows: list[tuple[str, str, str]]) -> int:
    """A person and its CRM rows, each (source, object, external id)."""
    with unit_of_work(engine) as session:
        person = Person(email="ada@example.com")
        session.add(person)
        session.flush()
        for source, obj, external_id in rows:
            session.add(CrmRow(key=f"{source}:{obj}:{external_id}", source=source, object=obj,
                               external_id=external_id, kind="person", payload={},
                               payload_hash="x", modstamp=utcnow(), person_id=person.id))
        assert person.id is not None
        return person.id


def outbox_row(engine: Engine, event_id: int) -> OutboxEvent:
    with unit_of_work(engine) as session:
        row = session.get(OutboxEvent, event_id)
        assert row is not None
        return row


class RecordingCrm:
    """A CrmWriter that remembers its calls instead of calling a CRM."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def create_task(self, **kwargs: Any) -> str:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("CRM said no")
        self.calls.append(kwargs)
        return f"task-{len(self.calls)}"


def test_the_webhook_is_signed_and_sent_once(engine: Engine, settings: Settings,
                                             receiver: Receiver) -> None:
    event_id = breach(engine)
    settings = hooked(settings, receiver)
    report = deliver_pending(engine, settings, crm=None)
    again = deliver_pending(engine, settings, crm=None)
    assert (report.delivered, again.claimed) == (1, 0)
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert headers["content-type"] == "application/json"
    assert headers["x-truce-event-id"] == str(event_id)
    expected = hmac.new(SECRET.encode(), f"{headers['x-truce-timestamp']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-truce-signature"], f"sha256={expected}")
    document = json.loads(body)
    assert document["id"] == event_id and document["kind"] == "sla.breached"
    assert document["handoff_id"] == 7 and document["clock"] == "first_touch"
    assert "created_at" in document
    row = outbox_row(engine, event_id)
    assert row.delivered_at is not None and row.webhook_done and row.attempts == 0


def test_without_a_secret_no_signature_is_sent(engine: Engine, settings: Settings,
                                               receiver: Receiver) -> None:
    breach(engine)
    deliver_pending(engine, hooked(settings, receiver, secret=None), crm=None)
    headers, _ = receiver.received[0]
    assert "x-truce-signature" not in headers and "x-truce-event-id" in headers


def test_a_failing_receiver_leaves_the_row_pending_until_a_retry(
        engine: Engine, settings: Settings, receiver: Receiver) -> None:
    event_id = breach(engine)
    settings = hooked(settings, receiver)
    receiver.statuses = [500, 500, 500]
    now = utcnow()
    report = deliver_pending(engine, settings, crm=None, now=now)
    assert (report.delivered, report.failed) == (0, 1)
    assert len(receiver.received) == 3  # quick retries inside the one delivery
    row = outbox_row(engine, event_id)
    assert row.delivered_at is None and not row.webhook_done and row.attempts == 1
    assert "500" in (row.last_error or "")
    assert row.next_attempt_at == now + timedelta(seconds=30)
    assert deliver_pending(engine, settings, crm=None, now=now).claimed == 0  # not due yet
    later = deliver_pending(engine, settings, crm=None, now=row.next_attempt_at)
    assert later.delivered == 1
    assert len(receiver.received) == 4
    assert {h["x-truce-event-id"] for h, _ in receiver.received} == {str(event_id)}
    assert outbox_row(engine, event_id).delivered_at is not None


def test_a_client_error_is_not_retried_at_once(engine: Engine, settings: Settings,
                                               receiver: Receiver) -> None:
    event_id = breach(engine)
    receiver.statuses = [410]
    report = deliver_pending(engine, hooked(settings, receiver), crm=None)
    assert report.failed == 1 and len(receiver.received) == 1
    assert outbox_row(engine, event_id).attempts == 1


def test_backoff_doubles_from_thirty_seconds_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(20) == timedelta(hours=1)


def test_the_task_goes_to_the_owners_crm(engine: Engine, settings: Settings) -> None:
    pid = person_with_rows(engine, [("salesforce", "Lead", "00Q1"), ("hubspot", "contacts", "51")])
    event_id = breach(engine, person_id=pid, owner_key="hubspot:owners:123")
    crm = RecordingCrm()
    report = deliver_pending(engine, settings, crm=crm)
    assert report.tasks_created == 1 and report.delivered == 1
    [call] = crm.calls
    assert (call["source"], call["record_object"], call["record_external_id"]) == (
        "hubspot", "contacts", "51")
    assert call["owner_id"] == "123" and call["due"] == DUE
    assert call["subject"].startswith("SLA breached")
    row = outbox_row(engine, event_id)
    assert row.crm_done and row.webhook_done and row.delivered_at is not None
    deliver_pending(engine, settings, crm=crm)
    assert len(crm.calls) == 1


def test_a_converted_leads_contact_gets_the_task(engine: Engine, settings: Settings) -> None:
    pid = person_with_rows(engine, [("salesforce", "Lead", "00Q1"),
                                    ("salesforce", "Contact", "0031")])
    breach(engine, person_id=pid, owner_key="salesforce:User:0051", kind="sla.warning",
           key="clock:1:warning")
    crm = RecordingCrm()
    deliver_pending(engine, settings, crm=crm)
    [call] = crm.calls
    assert (call["record_object"], call["owner_id"]) == ("Contact", "0051")
    assert call["subject"].startswith("SLA warning")


def test_a_failed_task_is_retried_without_posting_the_webhook_again(
        engine: Engine, settings: Settings, receiver: Receiver) -> None:
    pid = person_with_rows(engine, [("salesforce", "Lead", "00Q1")])
    event_id = breach(engine, person_id=pid, owner_key="salesforce:User:0051")
    settings = hooked(settings, receiver)
    crm = RecordingCrm(fail=1)
    now = utcnow()
    first = deliver_pending(engine, settings, crm=crm, now=now)
    row = outbox_row(engine, event_id)
    assert first.failed == 1 and row.webhook_done and not row.crm_done
    assert "CRM said no" in (row.last_error or "")
    second = deliver_pending(engine, settings, crm=crm, now=row.next_attempt_at)
    assert second.delivered == 1 and len(crm.calls) == 1
    assert len(receiver.received) == 1


def test_other_kinds_get_no_task(engine: Engine, settings: Settings) -> None:
    pid = person_with_rows(engine, [("salesforce", "Lead", "00Q1")])
    breach(engine, person_id=pid, kind="opportunity.large", key="opportunity:x:large")
    crm = RecordingCrm()
    assert deliver_pending(engine, settings, crm=crm).delivered == 1
    assert crm.calls == []


def test_a_real_salesforce_task_lands_in_the_sandbox_org(engine: Engine,
                                                          settings: Settings) -> None:
    sandbox = pytest.importorskip("connectors.sandbox.salesforce_app")
    from connectors.sandbox.generator import generate_world

    world = generate_world(seed=7, people=40)
    leads = sorted(i for i, r in world.salesforce.table("Lead").items() if not r["IsDeleted"])
    owner = next(iter(world.salesforce.table("User")))
    server = sandbox.start_salesforce(world)
    try:
        settings = settings.model_copy(update={"salesforce": settings.salesforce.model_copy(
            update={"instance_url": server.url, "access_token": SecretStr(server.access_token),
                    "ca_bundle": server.ca_path})})
        pid = person_with_rows(engine, [("salesforce", "Lead", leads[0])])
        event_id = breach(engine, person_id=pid, owner_key=f"salesforce:User:{owner}")
        before = set(world.salesforce.table("Task"))
        report = deliver_pending(engine, settings, crm=ConnectorCrmWriter(settings))
    finally:
        server.stop()
    assert report.tasks_created == 1, report.errors
    [task_id] = set(world.salesforce.table("Task")) - before
    task = world.salesforce.table("Task")[task_id]
    assert (task["WhoId"], task["OwnerId"]) == (leads[0], owner)
    assert task["Subject"] == "SLA breached: first touch"
    assert task["ActivityDate"] == date(2026, 3, 2)
    assert outbox_row(engine, event_id).delivered_at is not None


def test_a_row_another_worker_holds_is_skipped(engine: Engine, settings: Settings) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite has one writer")
    held = breach(engine, key="clock:1:breached")
    free = breach(engine, key="clock:2:breached")
    with unit_of_work(engine) as other_worker:
        other_worker.exec(select(OutboxEvent).where(OutboxEvent.id == held).with_for_update())
        report = deliver_pending(engine, settings, crm=None)
        assert report.claimed == 1
    assert outbox_row(engine, held).delivered_at is None
    assert outbox_row(engine, free).delivered_at is not None


def test_a_crm_that_is_not_configured_gets_no_task(engine: Engine, settings: Settings) -> None:
    pid = person_with_rows(engine, [("salesforce", "Lead", "00Q1")])
    event_id = breach(engine, person_id=pid, owner_key="salesforce:User:0051")
    report = deliver_pending(engine, settings, crm=ConnectorCrmWriter(settings))
    assert (report.delivered, report.tasks_created) == (1, 0)
    assert outbox_row(engine, event_id).crm_done
