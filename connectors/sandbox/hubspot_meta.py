"""Owners, property definitions and deal pipelines, built from the portal's data.

Picklists are served rather than hard-coded in connectors, so the options answered here are
the documented values plus any value the data actually holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from typing import Any

from connectors.sandbox.hubspot_search import is_datetime, is_number
from connectors.sandbox.hubspot_wire import (
    KNOWN_PROPERTIES,
    WireError,
    decode_cursor,
    default_properties,
    encode_cursor,
    iso,
)
from connectors.sandbox.store import SCHEMA_SAMPLE
from connectors.sandbox.world import HubSpotPortal, Record

EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
DEAL_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)
ENUMERATIONS: dict[str, tuple[str, ...]] = {
    "lifecyclestage": ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                       "opportunity", "customer", "evangelist", "other"),
    "hs_lead_status": ("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED",
                       "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING"),
    "dealstage": tuple(s[0] for s in DEAL_STAGES),
    "pipeline": ("default",),
    "hs_call_direction": ("INBOUND", "OUTBOUND"),
    "hs_call_status": ("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING",
                       "FAILED", "IN_PROGRESS", "NO_ANSWER", "QUEUED", "RINGING"),
    "hs_email_direction": ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
    "hs_meeting_outcome": ("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
    "hs_task_status": ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
    "hs_task_type": ("CALL", "EMAIL", "TODO"),
    "hs_task_priority": ("NONE", "LOW", "MEDIUM", "HIGH"),
}
BOOLEANS = frozenset({"hs_is_closed", "hs_is_closed_won"})
STAGE_LABELS = {s[0]: s[1] for s in DEAL_STAGES}


def _owner(raw: Record) -> dict[str, Any]:
    return {k: (iso(v) if isinstance(v, datetime) else v) for k, v in raw.items()} | {
        "id": str(raw.get("id"))}


def list_owners(portal: HubSpotPortal, *, limit: int, after: str | None, email: str | None,
                archived: bool) -> dict[str, Any]:
    """``GET /crm/v3/owners/``: owners in id order, filtered by email and archived."""
    rows = [o for o in portal.owners if bool(o.get("archived")) == archived]
    if email:
        rows = [o for o in rows if str(o.get("email") or "").lower() == email.lower()]
    rows.sort(key=lambda o: int(o["id"]) if str(o.get("id")).isdigit() else 0)
    try:
        start = int(decode_cursor(after)) if after else 0
    except ValueError:
        raise WireError(400, f"Invalid paging cursor: {after}", "VALIDATION_ERROR") from None
    limit = max(1, min(limit, 500))
    page = rows[start:start + limit]
    body: dict[str, Any] = {"results": [_owner(o) for o in page]}
    if start + limit < len(rows):
        body["paging"] = {"next": {"after": encode_cursor(str(start + limit))}}
    return body


def get_owner(portal: HubSpotPortal, owner_id: str, *, id_property: str, archived: bool
              ) -> dict[str, Any]:
    key = "userId" if id_property == "userId" else "id"
    for o in portal.owners:
        if str(o.get(key)) == owner_id and bool(o.get("archived")) == archived:
            return _owner(o)
    raise WireError(404, f"Owner with {key} {owner_id} not found", "OBJECT_NOT_FOUND")


def _label(name: str) -> str:
    return STAGE_LABELS.get(name) or name.replace("hs_", "").replace("_", " ").title()


def _definition(object_type: str, name: str, seen: set[str]) -> dict[str, Any]:
    options: list[str] = []
    if name in BOOLEANS or (seen and seen <= {"true", "false"}):
        kind, field, options = "bool", "booleancheckbox", ["true", "false"]
    elif is_datetime(name):
        kind, field = "datetime", "date"
    elif name in ENUMERATIONS:
        kind, field = "enumeration", "select"
        options = list(ENUMERATIONS[name]) + sorted(seen - set(ENUMERATIONS[name]))
    elif is_number(name) or (seen and all(_numeric(v) for v in seen) and name != "phone"):
        kind, field = "number", "number"
    else:
        kind, field = "string", "textarea" if name.endswith("_body") else "text"
    group = {"contacts": "contactinformation", "companies": "companyinformation",
             "deals": "dealinformation"}.get(object_type, "engagement")
    return {
        "name": name, "label": _label(name), "type": kind, "fieldType": field,
        "description": "", "groupName": group, "displayOrder": -1, "hidden": False,
        "formField": kind != "datetime", "calculated": False, "externalOptions": False,
        "hasUniqueValue": name == "hs_object_id",
        "hubspotDefined": True, "createdAt": iso(EPOCH), "updatedAt": iso(EPOCH),
        "archived": False,
        "options": [{"label": _label(v) if kind == "enumeration" else v.title(), "value": v,
                     "displayOrder": i, "hidden": False} for i, v in enumerate(options)],
    }


def _numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def property_definitions(portal: HubSpotPortal, object_type: str) -> list[dict[str, Any]]:
    """Every property the type defines or the data holds, with its type and options."""
    values: dict[str, set[str]] = {n: set() for n in KNOWN_PROPERTIES.get(object_type, ())}
    for n in default_properties(object_type):
        values.setdefault(n, set())
    # a large table is read from its first records: generated records share their properties
    for rec in islice(portal.objects.get(object_type, {}).values(), SCHEMA_SAMPLE):
        for name, value in rec["properties"].items():
            bucket = values.setdefault(name, set())
            if value is not None and value != "" and len(bucket) < 200:
                bucket.add(value)
    return [_definition(object_type, n, values[n]) for n in sorted(values)]


def deal_pipelines() -> list[dict[str, Any]]:
    """``GET /crm/v3/pipelines/deals``: the default pipeline and its stages."""
    stages = [{"id": sid, "label": label, "displayOrder": i,
               "metadata": {"isClosed": "true" if closed else "false",
                            "probability": prob},
               "createdAt": iso(EPOCH), "updatedAt": iso(EPOCH), "archived": False,
               "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}
              for i, (sid, label, prob, closed) in enumerate(DEAL_STAGES)]
    return [{"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "stages": stages,
             "createdAt": iso(EPOCH), "updatedAt": iso(EPOCH), "archived": False}]
