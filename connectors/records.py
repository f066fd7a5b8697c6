"""The typed records every connector yields: the client libraries' dicts never leave a connector.

A record names the CRM row it came from (``source``, ``object``, ``external_id``) and when that
row last changed (``modstamp``). References to other rows use :func:`record_key` strings, so the
sync engine can resolve them whatever order the streams arrive in.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

Source = Literal["salesforce", "hubspot"]
ActivityKind = Literal["form_submission", "email_click", "web_visit", "meeting", "call", "email"]
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}$")
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1).date()
# HubSpot keeps a contact's property history on the contact: each value it took becomes a
# record (a field change, a marketing touch) but is no CRM row of its own, so the sync keeps
# it in its fact table only, not also as a crm_record row.
HUBSPOT_HISTORY_OBJECT = "contact_history"
HUBSPOT_ACTIVITY_OBJECT = "contact_activity"
ROWLESS_OBJECTS = frozenset({("hubspot", HUBSPOT_HISTORY_OBJECT),
                             ("hubspot", HUBSPOT_ACTIVITY_OBJECT)})


def record_key(source: str, object_name: str, external_id: str) -> str:
    """One string per CRM row, e.g. ``salesforce:Lead:00Q5g0000000001AAA``."""
    return f"{source}:{object_name}:{external_id}"


def normalise_email(email: str | None) -> str | None:
    """Emails match across CRMs case- and whitespace-insensitively."""
    if email is None:
        return None
    cleaned = email.strip().lower()
    return cleaned or None


class CrmRecord(BaseModel):
    """Fields every record shares."""

    model_config = ConfigDict(frozen=True)

    source: Source
    object: str
    external_id: str
    modstamp: datetime
    created_at: datetime | None = None
    deleted: bool = False
    merged_into: str | None = None  # the surviving row's external id (same object)

    @cached_property
    def key(self) -> str:
        """Made once per record (a page's write asks each record for it a dozen times); a
        copy with another source, object or id must not be made with ``model_copy``."""
        return record_key(self.source, self.object, self.external_id)

    @field_validator("modstamp", "created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("datetime without a time zone")
        return value


class PersonRecord(CrmRecord):
    """A Salesforce Lead or Contact, or a HubSpot contact."""

    kind: Literal["lead", "contact"]
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    country: str | None = None
    lead_source: str | None = None
    score: float | None = None
    owner_id: str | None = None  # the owner's external id in the same source
    account_key: str | None = None
    status: str | None = None  # Lead.Status / hs_lead_status, raw
    status_reason: str | None = None
    lifecycle_stage: str | None = None
    converted_contact_key: str | None = None  # a converted lead points at its contact
    converted_at: datetime | None = None
    xrefs: tuple[str, ...] = ()  # record keys of the same human in the other CRM
    # firmographics a lead carries before it has an account (Salesforce Lead fields)
    company: str | None = None
    company_employees: int | None = None
    company_industry: str | None = None
    company_annual_revenue: float | None = None

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not EMAIL_RE.match(value.strip()):
            raise ValueError(f"invalid email {value!r}")
        return value

    @property
    def normalised_email(self) -> str | None:
        return normalise_email(self.email)


class AccountRecord(CrmRecord):
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    is_customer: bool = False
    owner_id: str | None = None


class OpportunityRecord(CrmRecord):
    name: str | None = None
    account_key: str | None = None
    person_keys: tuple[str, ...] = ()  # contacts on the deal
    amount: float | None = None
    stage: str | None = None
    is_closed: bool = False
    is_won: bool = False
    close_date: date | None = None
    owner_id: str | None = None
    lead_source: str | None = None
    campaign_key: str | None = None

    @field_validator("close_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        if value is not None and value < EARLIEST_PLAUSIBLE:
            raise ValueError(f"impossible close date {value.isoformat()}")
        return value


class ActivityRecord(CrmRecord):
    """A call, email or meeting logged by sales, or a marketing touch (form, click, visit)."""

    kind: ActivityKind
    at: datetime
    person_key: str | None = None
    owner_id: str | None = None
    subject: str | None = None


class FieldChangeRecord(CrmRecord):
    """One value a tracked field took, and when (LeadHistory, propertiesWithHistory)."""

    record_key: str
    field: str  # status, score, lifecycle_stage, ...
    old_value: str | None = None
    new_value: str | None = None
    at: datetime


class OwnerRecord(CrmRecord):
    email: str | None = None
    name: str | None = None
    timezone: str | None = None
    team: str | None = None
    active: bool = True


class CampaignRecord(CrmRecord):
    name: str | None = None
    type: str | None = None
    status: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    budgeted_cost: float | None = None
    actual_cost: float | None = None


class Malformed(BaseModel):
    """A CRM row that failed validation: quarantined with its reason, never stopping a sync."""

    model_config = ConfigDict(frozen=True)

    source: Source
    object: str
    external_id: str
    reason: str
    payload: dict[str, Any]
    modstamp: datetime | None = None

    @cached_property
    def key(self) -> str:
        """As ``CrmRecord.key``: made once per record."""
        return record_key(self.source, self.object, self.external_id)


AnyRecord = (
    PersonRecord
    | AccountRecord
    | OpportunityRecord
    | ActivityRecord
    | FieldChangeRecord
    | OwnerRecord
    | CampaignRecord
)
