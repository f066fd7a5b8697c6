"""Salesforce rows (JSON dicts) into Truce's typed records; a row that fails becomes Malformed.

Only this module knows Salesforce field names. Every mapper reads with ``.get`` because the
fields queried are the ones ``describe`` lists, so an org without an optional field still syncs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from connectors.records import (
    AccountRecord,
    ActivityKind,
    ActivityRecord,
    AnyRecord,
    CampaignRecord,
    FieldChangeRecord,
    Malformed,
    OpportunityRecord,
    OwnerRecord,
    PersonRecord,
    record_key,
)

SOURCE = "salesforce"
Row = dict[str, Any]
# WhoId / WhatId prefixes that say which object an id points at
PREFIX_OBJECT = {"00Q": "Lead", "003": "Contact", "001": "Account", "006": "Opportunity",
                 "005": "User", "701": "Campaign"}
TASK_TYPES: dict[str, ActivityKind] = {
    "call": "call", "email": "email", "meeting": "meeting",
    "form submission": "form_submission", "email click": "email_click",
    "web visit": "web_visit",
}
TASK_SUBTYPES: dict[str, ActivityKind] = {"call": "call", "email": "email"}


class MappingContext:
    """What a mapper may need beyond its row: cursor field, contact roles of opportunities."""

    def __init__(self, stamp_field: str = "SystemModstamp",
                 contact_roles: Mapping[str, Sequence[str]] | None = None) -> None:
        self.stamp_field = stamp_field
        self.contact_roles = contact_roles or {}


Mapper = Callable[[Row, MappingContext], AnyRecord | None]


def parse_datetime(value: Any) -> datetime | None:
    """``2026-01-05T10:00:00.000+0000`` into an aware datetime (UTC)."""
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    return date.fromisoformat(str(value)[:10])


def ref(sobject: str, value: Any) -> str | None:
    """A record key for a reference field, or None when empty."""
    return record_key(SOURCE, sobject, str(value)) if value else None


def who_key(who_id: Any) -> str | None:
    """WhoId points at a Lead or a Contact; its key prefix says which."""
    if not who_id:
        return None
    sobject = PREFIX_OBJECT.get(str(who_id)[:3])
    return ref(sobject, who_id) if sobject in ("Lead", "Contact") else None


def _float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _domain(website: Any) -> str | None:
    if not website:
        return None
    text = str(website).strip()
    host = urlparse(text if "//" in text else f"//{text}").hostname
    return host.removeprefix("www.") if host else None


def common(row: Row, sobject: str, ctx: MappingContext) -> dict[str, Any]:
    """The fields every record shares, from Salesforce's system fields."""
    return {
        "source": SOURCE,
        "object": sobject,
        "external_id": row["Id"],
        "modstamp": parse_datetime(row.get(ctx.stamp_field)),
        "created_at": parse_datetime(row.get("CreatedDate")),
        "deleted": bool(row.get("IsDeleted")),
        "merged_into": row.get("MasterRecordId") or None,
    }


def map_user(row: Row, ctx: MappingContext) -> OwnerRecord:
    return OwnerRecord(
        **common(row, "User", ctx), email=row.get("Email"), name=row.get("Name"),
        timezone=row.get("TimeZoneSidKey"), team=row.get("Department"),
        active=row.get("IsActive") is not False,
    )


def map_account(row: Row, ctx: MappingContext) -> AccountRecord:
    return AccountRecord(
        **common(row, "Account", ctx), name=row.get("Name"), domain=_domain(row.get("Website")),
        industry=row.get("Industry"), employees=_int(row.get("NumberOfEmployees")),
        annual_revenue=_float(row.get("AnnualRevenue")), country=row.get("BillingCountry"),
        is_customer=row.get("Type") == "Customer", owner_id=row.get("OwnerId"),
    )


def map_campaign(row: Row, ctx: MappingContext) -> CampaignRecord:
    return CampaignRecord(
        **common(row, "Campaign", ctx), name=row.get("Name"), type=row.get("Type"),
        status=row.get("Status"), start_date=parse_date(row.get("StartDate")),
        end_date=parse_date(row.get("EndDate")),
        budgeted_cost=_float(row.get("BudgetedCost")),
        actual_cost=_float(row.get("ActualCost")),
    )


def _require_last_name(row: Row) -> None:
    if not row.get("IsDeleted") and not (row.get("LastName") or "").strip():
        raise ValueError("LastName is required")


def map_lead(row: Row, ctx: MappingContext) -> PersonRecord:
    _require_last_name(row)
    base = common(row, "Lead", ctx)
    converted_on = parse_date(row.get("ConvertedDate"))
    created = base["created_at"]
    if converted_on and created and converted_on < created.date():
        raise ValueError(
            f"ConvertedDate {converted_on.isoformat()} is before CreatedDate {created.date()}"
        )
    converted_contact = row.get("ConvertedContactId") if row.get("IsConverted") else None
    return PersonRecord(
        **base, kind="lead", email=row.get("Email"), first_name=row.get("FirstName"),
        last_name=row.get("LastName"), title=row.get("Title"), country=row.get("Country"),
        lead_source=row.get("LeadSource"), score=_float(row.get("Lead_Score__c")),
        owner_id=row.get("OwnerId"), status=row.get("Status"),
        status_reason=row.get("Rejection_Reason__c"),
        converted_contact_key=ref("Contact", converted_contact),
        converted_at=datetime.combine(converted_on, time(), UTC) if converted_on else None,
        company=row.get("Company"), company_employees=_int(row.get("NumberOfEmployees")),
        company_industry=row.get("Industry"),
        company_annual_revenue=_float(row.get("AnnualRevenue")),
    )


def map_contact(row: Row, ctx: MappingContext) -> PersonRecord:
    _require_last_name(row)
    return PersonRecord(
        **common(row, "Contact", ctx), kind="contact", email=row.get("Email"),
        first_name=row.get("FirstName"), last_name=row.get("LastName"), title=row.get("Title"),
        country=row.get("MailingCountry"), lead_source=row.get("LeadSource"),
        owner_id=row.get("OwnerId"), account_key=ref("Account", row.get("AccountId")),
    )


def map_opportunity(row: Row, ctx: MappingContext) -> OpportunityRecord:
    contacts = [row.get("ContactId"), *ctx.contact_roles.get(row["Id"], ())]
    keys = tuple(dict.fromkeys(ref("Contact", c) for c in contacts if c))
    return OpportunityRecord(
        **common(row, "Opportunity", ctx), name=row.get("Name"),
        account_key=ref("Account", row.get("AccountId")), person_keys=keys,  # type: ignore[arg-type]
        amount=_float(row.get("Amount")), stage=row.get("StageName"),
        is_closed=bool(row.get("IsClosed")), is_won=bool(row.get("IsWon")),
        close_date=parse_date(row.get("CloseDate")), owner_id=row.get("OwnerId"),
        lead_source=row.get("LeadSource"), campaign_key=ref("Campaign", row.get("CampaignId")),
    )


def task_kind(row: Row) -> ActivityKind | None:
    """The activity kind of a Task: its Type, else its TaskSubtype; None for plain to-dos."""
    kind = TASK_TYPES.get(str(row.get("Type") or "").strip().lower())
    return kind or TASK_SUBTYPES.get(str(row.get("TaskSubtype") or "").strip().lower())


def map_task(row: Row, ctx: MappingContext) -> ActivityRecord | None:
    kind = task_kind(row)
    if kind is None:
        return None
    base = common(row, "Task", ctx)
    return ActivityRecord(
        **base, kind=kind, at=base["created_at"], person_key=who_key(row.get("WhoId")),
        owner_id=row.get("OwnerId"), subject=row.get("Subject"),
    )


def map_event(row: Row, ctx: MappingContext) -> ActivityRecord:
    base = common(row, "Event", ctx)
    at = (parse_datetime(row.get("StartDateTime")) or parse_datetime(row.get("ActivityDateTime"))
          or base["created_at"])
    return ActivityRecord(
        **base, kind="meeting", at=at, person_key=who_key(row.get("WhoId")),
        owner_id=row.get("OwnerId"), subject=row.get("Subject"),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def map_lead_history(row: Row, ctx: MappingContext) -> FieldChangeRecord:
    base = common(row, "LeadHistory", ctx)
    return FieldChangeRecord(
        **base, record_key=record_key(SOURCE, "Lead", row["LeadId"]), field="status",
        old_value=_text(row.get("OldValue")), new_value=_text(row.get("NewValue")),
        at=base["created_at"],
    )


TOMBSTONE_OBJECTS = ("Lead", "Contact", "Account")


def tombstone(sobject: str, rec_id: str, deleted_at: datetime,
              merged_into: str | None = None) -> AnyRecord:
    """A minimal deleted record: for ids getDeleted lists, or deleted rows that fail to map."""
    base = {"source": SOURCE, "object": sobject, "external_id": rec_id,
            "modstamp": deleted_at, "deleted": True, "merged_into": merged_into}
    if sobject == "Account":
        return AccountRecord(**base)
    return PersonRecord(**base, kind="lead" if sobject == "Lead" else "contact")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "record"
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        return "; ".join(parts)
    return str(exc) or type(exc).__name__


def to_record(mapper: Mapper, row: Row, sobject: str,
              ctx: MappingContext) -> AnyRecord | Malformed | None:
    """Map one row; quarantine it as Malformed instead of raising when it does not fit."""
    payload = {k: v for k, v in row.items() if k != "attributes"}
    try:
        return mapper(row, ctx)
    except (ValueError, TypeError, KeyError) as exc:
        try:
            stamp = parse_datetime(row.get(ctx.stamp_field))
        except ValueError:
            stamp = None
        if row.get("IsDeleted") and row.get("Id") and stamp and sobject in TOMBSTONE_OBJECTS:
            # a bad value must not keep a deletion or merge from reaching the sync
            return tombstone(sobject, row["Id"], stamp, row.get("MasterRecordId") or None)
        return Malformed(source=SOURCE, object=sobject, external_id=str(row.get("Id", "")),
                         reason=_reason(exc), payload=payload, modstamp=stamp)
