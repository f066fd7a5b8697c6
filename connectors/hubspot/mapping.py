"""HubSpot rows (parsed JSON) to Truce's typed records; a bad row becomes ``Malformed``.

Every HubSpot property arrives as a string (or null), datetimes as ISO 8601 or epoch
milliseconds, so parsing lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from connectors.records import (
    EARLIEST_PLAUSIBLE,
    AccountRecord,
    ActivityRecord,
    AnyRecord,
    Malformed,
    OpportunityRecord,
    OwnerRecord,
    PersonRecord,
    record_key,
)

SOURCE = "hubspot"
Row = dict[str, Any]
REJECTED_STATUSES = frozenset({"UNQUALIFIED", "BAD_TIMING"})
MODIFIED_PROPERTY = {"contacts": "lastmodifieddate"}  # every other object: hs_lastmodifieddate

CONTACT_PROPERTIES = [
    "email", "firstname", "lastname", "jobtitle", "country", "hs_analytics_source",
    "hubspotscore", "hubspot_owner_id", "hs_lead_status", "lifecyclestage", "createdate",
    "lastmodifieddate", "salesforceleadid", "salesforcecontactid", "hs_merged_object_ids",
]
COMPANY_PROPERTIES = [
    "name", "domain", "industry", "numberofemployees", "annualrevenue", "country",
    "lifecyclestage", "hubspot_owner_id", "createdate", "hs_lastmodifieddate",
]
DEAL_PROPERTIES = [
    "dealname", "amount", "dealstage", "pipeline", "hs_is_closed", "hs_is_closed_won",
    "closedate", "createdate", "hubspot_owner_id", "hs_analytics_source", "hs_lastmodifieddate",
]
ENGAGEMENT_SUBJECT = {
    "calls": "hs_call_title", "emails": "hs_email_subject", "meetings": "hs_meeting_title",
}
ENGAGEMENT_KIND = {"calls": "call", "emails": "email", "meetings": "meeting"}
ENGAGEMENT_PROPERTIES = ["hs_timestamp", "hubspot_owner_id", "createdate", "hs_lastmodifieddate"]


def modified_property(object_type: str) -> str:
    return MODIFIED_PROPERTY.get(object_type, "hs_lastmodifieddate")


def properties_for(object_type: str) -> list[str]:
    if object_type == "contacts":
        return CONTACT_PROPERTIES
    if object_type == "companies":
        return COMPANY_PROPERTIES
    if object_type == "deals":
        return DEAL_PROPERTIES
    return [*ENGAGEMENT_PROPERTIES, ENGAGEMENT_SUBJECT[object_type]]


# -- value parsing ---------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 or epoch-ms string to an aware UTC datetime; ValueError if impossible."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        parsed = datetime.fromtimestamp(int(text) / 1000, UTC)
    else:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if parsed.date() < EARLIEST_PLAUSIBLE:
        raise ValueError(f"impossible date {text!r}")
    return parsed


def parse_date(value: Any) -> date | None:
    """A HubSpot date property (midnight UTC datetime, date or epoch ms) to a date."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if len(text) == 10 and text[4] == "-":
        return date.fromisoformat(text)
    parsed = parse_datetime(text)
    return parsed.date() if parsed else None


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _text(props: Row, name: str) -> str | None:
    value = props.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _float(props: Row, name: str) -> float | None:
    value = _text(props, name)
    return float(value) if value is not None else None


def _int(props: Row, name: str) -> int | None:
    value = _float(props, name)
    return int(value) if value is not None else None


def _bool(props: Row, name: str) -> bool | None:
    value = _text(props, name)
    return None if value is None else value.lower() == "true"


def row_modstamp(row: Row, object_type: str) -> datetime:
    """When the row last changed: the modified property, else ``updatedAt``."""
    props = row.get("properties") or {}
    stamp = parse_datetime(props.get(modified_property(object_type)) or row.get("updatedAt"))
    if stamp is None:
        raise ValueError("row without a last-modified time")
    return stamp


def row_created(row: Row) -> datetime | None:
    props = row.get("properties") or {}
    return parse_datetime(props.get("createdate") or row.get("createdAt"))


def guarded(object_type: str, row: Row, build: Callable[[], AnyRecord]) -> AnyRecord | Malformed:
    """Build a record, or quarantine the row with the reason it failed."""
    try:
        return build()
    except (ValidationError, ValueError, TypeError) as exc:
        reason = _reason(exc)
        modstamp: datetime | None
        try:
            modstamp = row_modstamp(row, object_type)
        except (ValueError, TypeError):
            modstamp = None
        return Malformed(
            source=SOURCE, object=object_type, external_id=str(row.get("id")), reason=reason,
            payload={"properties": row.get("properties") or {}}, modstamp=modstamp,
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
    return str(exc)


# -- objects ----------------------------------------------------------------------------


def owner(row: Row) -> OwnerRecord | Malformed:
    def build() -> OwnerRecord:
        teams = row.get("teams") or []
        primary = next((t for t in teams if t.get("primary")), teams[0] if teams else None)
        name = " ".join(p for p in (row.get("firstName"), row.get("lastName")) if p) or None
        updated = parse_datetime(row.get("updatedAt") or row.get("createdAt"))
        if updated is None:
            raise ValueError("owner without updatedAt")
        return OwnerRecord(
            source=SOURCE, object="owners", external_id=str(row["id"]), modstamp=updated,
            created_at=parse_datetime(row.get("createdAt")), email=row.get("email"), name=name,
            team=primary.get("name") if primary else None, active=not row.get("archived"),
        )

    return guarded("owners", row, build)  # type: ignore[return-value]


def company(row: Row) -> AccountRecord | Malformed:
    props = row.get("properties") or {}
    return guarded("companies", row, lambda: AccountRecord(
        source=SOURCE, object="companies", external_id=str(row["id"]),
        modstamp=row_modstamp(row, "companies"), created_at=row_created(row),
        name=_text(props, "name"), domain=_text(props, "domain"),
        industry=_text(props, "industry"), employees=_int(props, "numberofemployees"),
        annual_revenue=_float(props, "annualrevenue"), country=_text(props, "country"),
        is_customer=_text(props, "lifecyclestage") == "customer",
        owner_id=_text(props, "hubspot_owner_id"),
    ))  # type: ignore[return-value]


def contact(row: Row, account_id: str | None) -> PersonRecord | Malformed:
    props = row.get("properties") or {}

    def build() -> PersonRecord:
        email = _text(props, "email")
        first, last = _text(props, "firstname"), _text(props, "lastname")
        if not (email or first or last):
            raise ValueError("contact with neither email nor name")
        status = _text(props, "hs_lead_status")
        xrefs = []
        if lead := _text(props, "salesforceleadid"):
            xrefs.append(record_key("salesforce", "Lead", lead))
        if sf_contact := _text(props, "salesforcecontactid"):
            xrefs.append(record_key("salesforce", "Contact", sf_contact))
        return PersonRecord(
            source=SOURCE, object="contacts", external_id=str(row["id"]), kind="contact",
            modstamp=row_modstamp(row, "contacts"), created_at=row_created(row),
            email=email, first_name=first, last_name=last, title=_text(props, "jobtitle"),
            country=_text(props, "country"), lead_source=_text(props, "hs_analytics_source"),
            score=_float(props, "hubspotscore"), owner_id=_text(props, "hubspot_owner_id"),
            account_key=record_key(SOURCE, "companies", account_id) if account_id else None,
            status=status, status_reason=status if status in REJECTED_STATUSES else None,
            lifecycle_stage=_text(props, "lifecyclestage"), xrefs=tuple(xrefs),
        )

    return guarded("contacts", row, build)  # type: ignore[return-value]


def merged_losers(row: Row, modstamp: datetime) -> list[PersonRecord]:
    """A survivor's ``hs_merged_object_ids``: each loser becomes a deleted, merged record."""
    props = row.get("properties") or {}
    survivor = str(row["id"])
    ids = [x.strip() for x in (props.get("hs_merged_object_ids") or "").split(";")]
    return [
        PersonRecord(
            source=SOURCE, object="contacts", external_id=loser, kind="contact",
            modstamp=modstamp, deleted=True, merged_into=survivor,
        )
        for loser in ids
        if loser and loser != survivor
    ]


def deal(row: Row, contact_ids: list[str], company_id: str | None) -> OpportunityRecord | Malformed:
    props = row.get("properties") or {}

    def build() -> OpportunityRecord:
        stage = _text(props, "dealstage")
        closed = _bool(props, "hs_is_closed")
        won = _bool(props, "hs_is_closed_won")
        if closed is None:
            closed = stage in ("closedwon", "closedlost")
        if won is None:
            won = stage == "closedwon"
        return OpportunityRecord(
            source=SOURCE, object="deals", external_id=str(row["id"]),
            modstamp=row_modstamp(row, "deals"), created_at=row_created(row),
            name=_text(props, "dealname"), amount=_float(props, "amount"), stage=stage,
            is_closed=closed, is_won=won, close_date=parse_date(props.get("closedate")),
            owner_id=_text(props, "hubspot_owner_id"),
            lead_source=_text(props, "hs_analytics_source"),
            person_keys=tuple(record_key(SOURCE, "contacts", c) for c in contact_ids),
            account_key=record_key(SOURCE, "companies", company_id) if company_id else None,
        )

    return guarded("deals", row, build)  # type: ignore[return-value]


def engagement(object_type: str, row: Row, contact_id: str | None) -> ActivityRecord | Malformed:
    props = row.get("properties") or {}

    def build() -> ActivityRecord:
        at = parse_datetime(props.get("hs_timestamp")) or row_created(row)
        if at is None:
            raise ValueError("engagement without hs_timestamp")
        return ActivityRecord(
            source=SOURCE, object=object_type, external_id=str(row["id"]),
            modstamp=row_modstamp(row, object_type), created_at=row_created(row),
            kind=ENGAGEMENT_KIND[object_type], at=at,  # type: ignore[arg-type]
            person_key=record_key(SOURCE, "contacts", contact_id) if contact_id else None,
            owner_id=_text(props, "hubspot_owner_id"),
            subject=_text(props, ENGAGEMENT_SUBJECT[object_type]),
        )

    return guarded(object_type, row, build)  # type: ignore[return-value]


def archived(object_type: str, row: Row) -> AnyRecord | Malformed:
    """An archived row, as a deleted record that carries only its identity and time."""

    def build() -> AnyRecord:
        stamp = parse_datetime(row.get("archivedAt") or row.get("updatedAt"))
        if stamp is None:
            raise ValueError("archived row without archivedAt")
        common: dict[str, Any] = {
            "source": SOURCE, "object": object_type, "external_id": str(row["id"]),
            "modstamp": stamp, "deleted": True,
        }
        if object_type == "contacts":
            return PersonRecord(kind="contact", **common)
        if object_type == "companies":
            return AccountRecord(**common)
        return OpportunityRecord(**common)

    return guarded(object_type, row, build)
