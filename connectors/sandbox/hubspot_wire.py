"""HubSpot wire shapes: object types, property sets, error bodies and record rendering.

Kept apart from the routes so the list, read, batch and search answers all render a record
the same way: values as strings or null, datetimes as ``2019-10-30T03:30:17.883Z``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import Response

from connectors.sandbox.world import Record

OBJECT_TYPES = ("contacts", "companies", "deals", "calls", "emails", "meetings", "tasks", "notes")
SINGULAR = {
    "contacts": "contact", "companies": "company", "deals": "deal", "calls": "call",
    "emails": "email", "meetings": "meeting", "tasks": "task", "notes": "note",
}
# HubSpot accepts singular names and object type ids as well as the plural path segment
ALIASES = {
    **{t: t for t in OBJECT_TYPES},
    **{s: t for t, s in SINGULAR.items()},
    "0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-48": "calls", "0-49": "emails",
    "0-47": "meetings", "0-27": "tasks", "0-46": "notes",
}
ENGAGEMENTS = ("calls", "emails", "meetings", "tasks", "notes")

DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                 "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage",
              "hs_lastmodifieddate", "hs_object_id", "pipeline"),
}
# properties every portal defines; requested but unset ones answer null rather than vanish
KNOWN_PROPERTIES: dict[str, frozenset[str]] = {
    "contacts": frozenset({
        "email", "firstname", "lastname", "company", "jobtitle", "country", "lifecyclestage",
        "hs_lead_status", "hubspot_owner_id", "createdate", "lastmodifieddate", "hubspotscore",
        "hs_analytics_source", "salesforceleadid", "salesforcecontactid",
        "hs_merged_object_ids", "phone",
    }),
    "companies": frozenset({
        "name", "domain", "numberofemployees", "industry", "annualrevenue", "country",
        "createdate", "hs_lastmodifieddate", "hubspot_owner_id", "hs_merged_object_ids",
    }),
    "deals": frozenset({
        "dealname", "amount", "dealstage", "pipeline", "closedate", "createdate", "hs_is_closed",
        "hs_is_closed_won", "hubspot_owner_id", "hs_lastmodifieddate", "hs_merged_object_ids",
    }),
    "calls": frozenset({"hs_timestamp", "hs_call_direction", "hs_call_status",
                        "hs_call_duration", "hubspot_owner_id"}),
    "emails": frozenset({"hs_timestamp", "hs_email_direction", "hubspot_owner_id"}),
    "meetings": frozenset({"hs_timestamp", "hs_meeting_start_time", "hs_meeting_outcome",
                           "hubspot_owner_id"}),
    "tasks": frozenset({"hs_timestamp", "hs_task_subject", "hs_task_status", "hs_task_type",
                        "hs_task_priority", "hubspot_owner_id"}),
    "notes": frozenset({"hs_timestamp", "hs_note_body", "hubspot_owner_id"}),
}


class WireError(Exception):
    """An error answer in HubSpot's shape, raised anywhere and rendered by the app."""

    def __init__(self, status: int, message: str, category: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.extra = extra


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def default_properties(object_type: str) -> tuple[str, ...]:
    return DEFAULT_PROPERTIES.get(
        object_type, ("createdate", "hs_lastmodifieddate", "hs_object_id"))


def resolve_type(name: str) -> str:
    """Map a path segment to a stored object type, or fail like HubSpot does."""
    found = ALIASES.get(name.lower())
    if found is None:
        raise WireError(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")
    return found


def correlation_id() -> str:
    return str(uuid.uuid4())


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message,
                            "correlationId": correlation_id(), "category": category}
    body.update(extra)
    return body


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """Compact JSON with HubSpot's content type."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    return Response(raw, status_code=status, headers=headers,
                    media_type="application/json;charset=utf-8")


def error_response(status: int, message: str, category: str, **extra: Any) -> Response:
    return json_response(error_body(message, category, **extra), status)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def query_list(params: QueryParams, name: str) -> list[str]:
    """Repeated (``p=a&p=b``) and comma-separated (``p=a,b``) lists, both as HubSpot allows."""
    out: list[str] = []
    for raw in params.getlist(name):
        out.extend(part.strip() for part in raw.split(",") if part.strip())
    return out


def body_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(v) for v in value if v is not None and str(v)]


def query_bool(params: QueryParams, name: str, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise WireError(400, f"Unable to parse {name}={raw!r} as a boolean", "VALIDATION_ERROR")


def query_int(params: QueryParams, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise WireError(400, f"Unable to parse {name}={raw!r} as an integer",
                        "VALIDATION_ERROR") from None


def encode_cursor(last_id: str) -> str:
    """An opaque ``after`` token; clients must pass it back, not compute it."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id" or not value:
            raise ValueError(raw)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise WireError(400, f"Invalid paging cursor: {token}", "VALIDATION_ERROR") from None


def select_properties(object_type: str, props: dict[str, str | None],
                      requested: Iterable[str]) -> dict[str, str | None]:
    """The requested properties plus the three every answer carries; the defaults if none."""
    wanted = list(requested)
    if not wanted:
        return {k: props.get(k) for k in default_properties(object_type)}
    out: dict[str, str | None] = {}
    known = KNOWN_PROPERTIES.get(object_type, frozenset())
    for name in ("createdate", "hs_object_id", modified_property(object_type), *wanted):
        if name in props:
            out[name] = props[name]
        elif name in known:
            out[name] = None
    return out


def render_history(rec: Record, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """``propertiesWithHistory``: each requested property's values, newest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        entries = rec["history"].get(name)
        if not entries:
            continue
        out[name] = [
            {"value": "" if value is None else value, "timestamp": iso(at),
             "sourceType": "CRM_UI", "sourceId": None}
            for value, at in sorted(entries, key=lambda e: e[1], reverse=True)
        ]
    return out


def render_object(object_type: str, rec: Record, properties: Iterable[str] = (),
                  history: Iterable[str] = (),
                  associations: dict[str, list[dict[str, str]]] | None = None
                  ) -> dict[str, Any]:
    """One ``SimplePublicObject`` as the wire carries it."""
    out: dict[str, Any] = {
        "id": rec["id"],
        "properties": select_properties(object_type, rec["properties"], properties),
        "createdAt": iso(rec["createdAt"]),
        "updatedAt": iso(rec["updatedAt"]),
        "archived": bool(rec["archived"]),
    }
    if rec["archived"]:
        out["archivedAt"] = iso(rec["archivedAt"])
    history = list(history)
    if history:
        out["propertiesWithHistory"] = render_history(rec, history)
    if associations:
        out["associations"] = {k: {"results": v} for k, v in associations.items()}
    return out
