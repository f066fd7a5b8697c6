"""Deliver the outbox: the breach webhook and the CRM task for the owner.

Each outbox row is created exactly once (its ``dedupe_key`` is unique), but delivery is
at-least-once per row: a worker that crashes after the receiver answered and before its
commit will send that row again. Receivers dedupe by ``X-Truce-Event-Id`` (the row's id).
The two parts of a row are tracked apart (``webhook_done``, ``crm_done``), so a row whose
CRM task failed is retried without posting the webhook again.

The webhook body is ``{"id", "kind", "created_at", **payload}``; when
``TRUCE_BREACH_WEBHOOK_SECRET`` is set it is signed as
``X-Truce-Signature: sha256=<hex HMAC-SHA256(secret, f"{X-Truce-Timestamp}.{body}")>``;
without a secret the signature header is omitted (never signed with an empty key). With no
``TRUCE_BREACH_WEBHOOK_URL`` the webhook part counts as done, and with no CRM writer (no CRM
configured) so does the task; only ``sla.warning`` and ``sla.breached`` get a task.

On PostgreSQL rows are claimed one at a time with ``FOR UPDATE SKIP LOCKED`` and each is
committed on its own, so several workers share the queue and never deliver the same row at
once. SQLite has one writer, so a plain select is enough there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import requests
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from service.db import unit_of_work, utcnow
from service.errors import ConfigurationError
from service.handoffs.models import OutboxEvent
from service.settings import Settings
from service.sync.models import CrmRow

log = logging.getLogger(__name__)

CRM_KINDS = frozenset({"sla.warning", "sla.breached"})
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_ATTEMPTS = 3  # quick retries inside one delivery; the backoff handles the rest
PERSON_OBJECTS = {"salesforce": ("Lead", "Contact"), "hubspot": ("contacts",)}


class CrmWriter(Protocol):
    """Whatever creates a follow-up task on a person's CRM record; answers the task id."""

    def create_task(self, *, source: str, record_external_id: str, record_object: str,
                    owner_id: str | None, subject: str, body: str, due: datetime) -> str: ...


class ConnectorCrmWriter:
    """The real CRMs, through their connectors, built on first use (no I/O until needed)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connectors: dict[str, Any] = {}

    def _connector(self, source: str) -> Any:
        if source not in self._connectors:
            if source == "salesforce" and self.settings.salesforce.enabled:
                from connectors.salesforce import SalesforceConnector

                self._connectors[source] = SalesforceConnector(self.settings.salesforce)
            elif source == "hubspot" and self.settings.hubspot.enabled:
                from connectors.hubspot import HubSpotConnector

                self._connectors[source] = HubSpotConnector(self.settings.hubspot)
            else:
                raise ConfigurationError(f"{source} is not configured: no task can be written")
        return self._connectors[source]

    def create_task(self, *, source: str, record_external_id: str, record_object: str,
                    owner_id: str | None, subject: str, body: str, due: datetime) -> str:
        connector = self._connector(source)
        if source == "salesforce":
            return str(connector.create_task(who_id=record_external_id, owner_id=owner_id,
                                             subject=subject, description=body, due=due.date()))
        return str(connector.create_task(contact_id=record_external_id, owner_id=owner_id,
                                         subject=subject, body=body, due=due))


@dataclass
class DeliveryReport:
    """What one pass did: rows looked at, fully delivered, and failed (retried later)."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    webhooks_sent: int = 0
    tasks_created: int = 0
    errors: list[str] = field(default_factory=list)


class WebhookFailed(Exception):  # noqa: N818 - reads as the outcome in last_error
    """The receiver refused or could not be reached; ``transient`` ones are retried now."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def backoff(attempts: int) -> timedelta:
    """Exponential from 30 s after the first failure, capped at an hour."""
    return min(FIRST_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``f"{timestamp}.{body}"``: what a receiver recomputes."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def webhook_request(event: OutboxEvent, secret: str | None, *, timestamp: int
                    ) -> tuple[bytes, dict[str, str]]:
    """The body and headers for one event; the body is signed byte for byte as sent."""
    document = {"id": event.id, "kind": event.kind,
                "created_at": event.created_at.isoformat(), **event.payload}
    body = json.dumps(document, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", "X-Truce-Event-Id": str(event.id),
               "X-Truce-Timestamp": str(timestamp)}
    if secret:
        headers["X-Truce-Signature"] = sign(secret, timestamp, body)
    return body, headers


@retry(retry=retry_if_exception(lambda e: isinstance(e, WebhookFailed) and e.transient),
       stop=stop_after_attempt(WEBHOOK_ATTEMPTS), wait=wait_exponential(multiplier=0.1, max=1),
       reraise=True)
def post_webhook(url: str, event: OutboxEvent, secret: str | None) -> None:
    """POST one event; a connection error or 5xx is retried a couple of times at once."""
    body, headers = webhook_request(event, secret, timestamp=int(time.time()))
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except requests.RequestException as exc:
        raise WebhookFailed(f"webhook unreachable: {exc}", transient=True) from exc
    if not 200 <= answer.status_code < 300:
        raise WebhookFailed(f"webhook answered {answer.status_code}: {answer.text[:200]}",
                            transient=answer.status_code >= 500)


def deliver_pending(engine: Engine, settings: Settings, *, crm: CrmWriter | None,
                    now: datetime | None = None, batch: int = 100) -> DeliveryReport:
    """Deliver up to ``batch`` due rows, each in its own transaction."""
    now = now or utcnow()
    report = DeliveryReport()
    seen: set[int] = set()
    while report.claimed < batch:
        with unit_of_work(engine) as session:
            event = _claim(session, now, seen)
            if event is None:
                break
            assert event.id is not None
            seen.add(event.id)
            report.claimed += 1
            _deliver_one(session, settings, event, crm=crm, now=now, report=report)
    return report


def deliver_job(engine: Engine, settings: Settings) -> DeliveryReport:
    """The worker's entry point: deliver what is due with the configured CRMs."""
    crm = ConnectorCrmWriter(settings) if settings.enabled_sources() else None
    report = deliver_pending(engine, settings, crm=crm)
    if report.claimed:
        log.info("outbox: %d delivered, %d failed of %d", report.delivered, report.failed,
                 report.claimed)
    return report


def _claim(session: Session, now: datetime, seen: set[int]) -> OutboxEvent | None:
    stmt = (select(OutboxEvent)
            .where(col(OutboxEvent.delivered_at).is_(None), OutboxEvent.next_attempt_at <= now)
            .order_by(col(OutboxEvent.next_attempt_at), col(OutboxEvent.id)).limit(1))
    if seen:
        stmt = stmt.where(col(OutboxEvent.id).not_in(seen))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.exec(stmt).first()


def _deliver_one(session: Session, settings: Settings, event: OutboxEvent, *,
                 crm: CrmWriter | None, now: datetime, report: DeliveryReport) -> None:
    errors: list[str] = []
    url = getattr(settings, "breach_webhook_url", None)
    if not event.webhook_done:
        if not url:
            event.webhook_done = True  # nothing to send to
        else:
            secret = getattr(settings, "breach_webhook_secret", None)
            try:
                post_webhook(url, event, secret.get_secret_value() if secret else None)
                event.webhook_done = True
                report.webhooks_sent += 1
            except WebhookFailed as exc:
                errors.append(str(exc))
    if not event.crm_done:
        try:
            created = _write_back(session, event, crm)
            event.crm_done = True
            report.tasks_created += created
        except Exception as exc:  # noqa: BLE001 - any CRM failure is recorded and retried
            errors.append(f"CRM task: {exc}")
    if errors:
        event.attempts += 1
        event.last_error = "; ".join(errors)[:2000]
        event.next_attempt_at = now + backoff(event.attempts)
        report.failed += 1
        report.errors.append(f"outbox {event.id}: {event.last_error}")
        log.warning("outbox %s (%s) failed, attempt %d: %s", event.id, event.kind,
                    event.attempts, event.last_error)
    else:
        event.delivered_at = now
        event.last_error = None
        report.delivered += 1
    session.add(event)
    session.flush()


def _write_back(session: Session, event: OutboxEvent, crm: CrmWriter | None) -> int:
    """Create the owner's task; 0 when the event needs none or no CRM can take it."""
    if event.kind not in CRM_KINDS or crm is None:
        return 0
    payload = event.payload
    rows = _person_rows(session, payload.get("person_id"), payload.get("owner_key"))
    owner_source, owner_id = _split_owner(payload.get("owner_key"))
    subject, body, due = _task_text(event)
    unconfigured: list[str] = []
    for row in rows:
        try:
            crm.create_task(source=row.source, record_external_id=row.external_id,
                            record_object=row.object,
                            owner_id=owner_id if row.source == owner_source else None,
                            subject=subject, body=body, due=due)
            return 1
        except ConfigurationError as exc:  # this CRM is not set up here: try the other one
            unconfigured.append(exc.message)
    if unconfigured:
        log.info("outbox %s: no task written (%s)", event.id, "; ".join(unconfigured))
    return 0


def _person_rows(session: Session, person_id: Any, owner_key: Any) -> list[CrmRow]:
    """The person's live CRM rows, the owner's CRM first, then oldest first."""
    if person_id is None:
        return []
    rows = list(session.exec(select(CrmRow).where(
        CrmRow.person_id == int(person_id), CrmRow.kind == "person",
        col(CrmRow.deleted).is_(False)).order_by(col(CrmRow.id))))
    owner_source, _ = _split_owner(owner_key)
    rows = [r for r in rows if r.object in PERSON_OBJECTS.get(r.source, (r.object,))]
    has_contact = any(r.object == "Contact" for r in rows)  # a converted lead is history
    return sorted(rows, key=lambda r: (r.source != owner_source,
                                       has_contact and r.object == "Lead"))


def _split_owner(owner_key: Any) -> tuple[str | None, str | None]:
    """``salesforce:User:005...`` -> ("salesforce", "005...")."""
    if not isinstance(owner_key, str) or owner_key.count(":") < 2:
        return None, None
    source, _, external_id = owner_key.split(":", 2)
    return source, external_id or None


def _task_text(event: OutboxEvent) -> tuple[str, str, datetime]:
    payload = event.payload
    clock = str(payload.get("clock") or "SLA").replace("_", " ")
    due = _parse_time(payload.get("due_at")) or event.created_at
    if event.kind == "sla.breached":
        subject = f"SLA breached: {clock}"
        body = f"The {clock} SLA for this lead fell due at {due.isoformat()} and was missed."
    else:
        subject = f"SLA warning: {clock} due soon"
        body = f"The {clock} SLA for this lead falls due at {due.isoformat()}."
    if payload.get("handoff_id") is not None:
        body += f" Truce handoff {payload['handoff_id']}."
    return subject, body, due


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
