"""HubSpot webhooks: verify signature v3, then re-read the named rows through the sync path.

A webhook only says *which* rows changed; Truce reads them again with the connector and
applies them exactly as a sync page would (upserts, identities, person refresh, page hooks),
so a webhook and the next incremental sync agree and a replayed event changes nothing.

HubSpot signs the public URL it posted to. Behind a proxy, run uvicorn with
``--proxy-headers`` (and ``--forwarded-allow-ips``) so ``request.url`` is that URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from sqlalchemy import Engine

from connectors.records import AnyRecord, Malformed
from service.db import unit_of_work
from service.errors import Invalid, TruceError, Unauthorized
from service.people.service import refresh_persons
from service.settings import Settings
from service.sync.service import page_hooks
from service.sync.writer import PageResult, apply_page

log = logging.getLogger(__name__)

MAX_SKEW_MS = 5 * 60 * 1000  # HubSpot's own limit, applied both ways
OBJECT_TYPES = {"contact": "contacts", "company": "companies", "deal": "deals"}


class NotConfigured(TruceError):
    """No client secret: the receiver cannot tell HubSpot from anyone else."""

    status = 503


class HubSpotEvent(BaseModel):
    """One element of a webhook batch; unknown fields are kept for the log and ignored."""

    model_config = ConfigDict(extra="allow")

    eventId: int | str  # noqa: N815 - HubSpot's wire names
    subscriptionType: str  # noqa: N815
    objectId: int | str  # noqa: N815
    occurredAt: int = 0  # noqa: N815
    propertyName: str | None = None  # noqa: N815
    propertyValue: str | None = None  # noqa: N815
    primaryObjectId: int | str | None = None  # noqa: N815
    mergedObjectIds: list[int | str] = []  # noqa: N815


_BATCH = TypeAdapter(list[HubSpotEvent])


class Refresher(Protocol):
    """What ``refresh_objects`` needs of a connector: read named rows now."""

    def refresh(self, object_type: str, ids: list[str]) -> list[AnyRecord | Malformed]: ...


def expected_signature(secret: str, *, method: str, uri: str, body: bytes,
                       timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp)): HubSpot's v3."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_signature(settings: Settings, *, method: str, uri: str, body: bytes,
                     signature: str | None, timestamp: str | None,
                     now_ms: int | None = None) -> None:
    """Raise 503 when no secret is set, 401 for a bad, missing or out-of-window signature."""
    secret = settings.hubspot.client_secret
    if secret is None or not secret.get_secret_value():
        raise NotConfigured("webhooks not configured: set TRUCE_HUBSPOT_CLIENT_SECRET")
    if not signature or not timestamp:
        raise Unauthorized("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    try:
        sent_ms = int(timestamp)
    except ValueError:
        raise Unauthorized("X-HubSpot-Request-Timestamp is not milliseconds since 1970") from None
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if now_ms - sent_ms > MAX_SKEW_MS:
        raise Unauthorized("the request is older than 5 minutes: refusing a possible replay")
    if sent_ms - now_ms > MAX_SKEW_MS:
        raise Unauthorized("the request timestamp is more than 5 minutes in the future")
    wanted = expected_signature(secret.get_secret_value(), method=method, uri=uri, body=body,
                                timestamp=timestamp)
    if not hmac.compare_digest(wanted.encode(), signature.encode()):
        raise Unauthorized("the HubSpot signature does not match the request")


def parse_events(body: bytes) -> list[HubSpotEvent]:
    """The batch without repeated ``eventId``s, in ``occurredAt`` order."""
    try:
        events = _BATCH.validate_python(json.loads(body or b"null"))
    except (ValueError, ValidationError) as exc:
        raise Invalid(f"expected a JSON array of HubSpot events: {str(exc)[:300]}",
                      field="body") from None
    unique: dict[str, HubSpotEvent] = {}
    for event in events:
        unique.setdefault(str(event.eventId), event)
    return sorted(unique.values(), key=lambda e: e.occurredAt)


def group_ids(events: Iterable[HubSpotEvent]) -> dict[str, list[str]]:
    """Object ids to re-read per object type, first mention first; unknown types dropped."""
    groups: dict[str, dict[str, None]] = {}
    for event in events:
        object_type = OBJECT_TYPES.get(event.subscriptionType.split(".", 1)[0])
        if object_type is None:
            continue
        ids = groups.setdefault(object_type, {})
        for oid in (event.objectId, event.primaryObjectId, *event.mergedObjectIds):
            if oid is not None and str(oid):
                ids[str(oid)] = None
    return {t: list(ids) for t, ids in groups.items()}


def build_connector(settings: Settings) -> Refresher:
    from connectors.hubspot import HubSpotConnector

    return HubSpotConnector(settings.hubspot)


def refresh_objects(engine: Engine, settings: Settings, object_type: str, ids: list[str], *,
                    connector: Refresher | None = None) -> PageResult:
    """Re-read named rows and apply them like one sync page, in one transaction."""
    connector = connector or build_connector(settings)
    records = connector.refresh(object_type, ids)
    with unit_of_work(engine) as session:
        result = apply_page(session, records)
        refresh_persons(session, result.touched_persons, settings.decisions())
        for hook in page_hooks(settings):
            hook(session, set(result.touched_persons))
    return result


def refresh_groups(engine: Engine, settings: Settings, groups: dict[str, list[str]], *,
                   connector_factory: Callable[[Settings], Refresher] | None = None) -> None:
    """The background half of a webhook: one refresh per object type, failures logged.

    A failure here is not lost: the next incremental sync reads the same rows.
    """
    connector = (connector_factory or build_connector)(settings)
    for object_type, ids in groups.items():
        try:
            result = refresh_objects(engine, settings, object_type, ids, connector=connector)
            log.info("webhook refresh of %d %s: %s", len(ids), object_type, result.as_counts())
        except Exception:
            log.exception("webhook refresh of %s %s failed; the next sync will catch up",
                          object_type, ids[:10])
