"""Contact property history (``propertiesWithHistory``) as field changes and marketing touches.

Decision times come from when ``hs_lead_status`` changed, not from when Truce noticed, and
HubSpot keeps only the latest form, click and visit dates as properties, so every earlier
value lives in their history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.hubspot.mapping import SOURCE, Row, parse_datetime, to_ms
from connectors.records import (
    HUBSPOT_ACTIVITY_OBJECT,
    HUBSPOT_HISTORY_OBJECT,
    ActivityRecord,
    FieldChangeRecord,
    Malformed,
    record_key,
)

TRACKED_FIELDS = {
    "hs_lead_status": "status",
    "lifecyclestage": "lifecycle_stage",
    "hubspotscore": "score",
}
MARKETING_KINDS = {
    "recent_conversion_date": "form_submission",
    "hs_email_last_click_date": "email_click",
    "hs_analytics_last_visit_timestamp": "web_visit",
}
HISTORY_PROPERTIES = [*TRACKED_FIELDS, *MARKETING_KINDS]
HISTORY_OBJECT = HUBSPOT_HISTORY_OBJECT
ACTIVITY_OBJECT = HUBSPOT_ACTIVITY_OBJECT


def _entries(row: Row, prop: str) -> list[tuple[datetime, str | None]]:
    """A property's values oldest first; HubSpot lists them newest first."""
    raw: list[dict[str, Any]] = (row.get("propertiesWithHistory") or {}).get(prop) or []
    out = []
    for entry in raw:
        at = parse_datetime(entry.get("timestamp"))
        if at is not None:
            value = entry.get("value")
            out.append((at, None if value in (None, "") else str(value)))
    out.sort(key=lambda e: e[0])
    return out


def history_records(row: Row) -> list[FieldChangeRecord | ActivityRecord | Malformed]:
    """Field changes of status, lifecycle stage and score, then the marketing touches.

    Built with ``model_construct``: every value is made here already typed (times aware and
    checked by ``parse_datetime``, kinds from ``MARKETING_KINDS``), and validating them again
    was 8% of the reading thread's time in a full sync."""
    contact_id = str(row["id"])
    person = record_key(SOURCE, "contacts", contact_id)
    out: list[FieldChangeRecord | ActivityRecord | Malformed] = []
    for prop, field in TRACKED_FIELDS.items():
        try:
            entries = _entries(row, prop)
        except ValueError as exc:
            out.append(_bad(contact_id, prop, exc))
            continue
        previous: str | None = None
        for at, value in entries:
            if value == previous:
                continue
            out.append(FieldChangeRecord.model_construct(
                source=SOURCE, object=HISTORY_OBJECT,
                external_id=f"{contact_id}:{field}:{to_ms(at)}", modstamp=at,
                record_key=person, field=field, old_value=previous, new_value=value, at=at,
            ))
            previous = value
    for prop, kind in MARKETING_KINDS.items():
        try:
            entries = _entries(row, prop)
        except ValueError as exc:
            out.append(_bad(contact_id, prop, exc))
            continue
        for at, value in entries:
            if value is None:
                continue
            out.append(ActivityRecord.model_construct(
                source=SOURCE, object=ACTIVITY_OBJECT,
                external_id=f"{contact_id}:{prop}:{to_ms(at)}", modstamp=at,
                kind=kind, at=at, person_key=person,
            ))
    return out


def _bad(contact_id: str, prop: str, exc: Exception) -> Malformed:
    return Malformed(
        source=SOURCE, object=HISTORY_OBJECT, external_id=f"{contact_id}:{prop}",
        reason=f"unreadable history of {prop}: {exc}", payload={"property": prop},
    )
