"""The Salesforce streams: which object each reads, the fields it wants, and its SOQL.

Fields are wished for, not demanded: the query selects the ones ``describe`` lists, so a
custom field (``Lead_Score__c``) or an edition-specific one (``Opportunity.ContactId``) may be
missing without breaking the sync. Only ``Id`` and a timestamp to order by are required.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.base import ConnectorError
from connectors.salesforce import mapping as m

SYSTEM_FIELDS = ("Id", "CreatedDate", "SystemModstamp", "IsDeleted", "MasterRecordId")
# History objects have no SystemModstamp; they are append-only, so CreatedDate orders them.
STAMP_FIELDS = ("SystemModstamp", "CreatedDate")


@dataclass(frozen=True)
class Stream:
    """One stream: an sObject, the fields it would like, and how its rows become records."""

    name: str
    sobject: str
    wanted: tuple[str, ...]
    mapper: m.Mapper
    where: str | None = None
    tombstones: bool = False  # also ask getDeleted (Lead, Contact, Account)


STREAMS: tuple[Stream, ...] = (
    Stream("users", "User", ("Email", "Name", "IsActive", "TimeZoneSidKey", "Department"),
           m.map_user),
    Stream("accounts", "Account",
           ("Name", "Website", "Industry", "NumberOfEmployees", "AnnualRevenue",
            "BillingCountry", "Type", "OwnerId"), m.map_account, tombstones=True),
    Stream("campaigns", "Campaign",
           ("Name", "Type", "Status", "StartDate", "EndDate", "BudgetedCost", "ActualCost"),
           m.map_campaign),
    Stream("leads", "Lead",
           ("Email", "FirstName", "LastName", "Title", "Country", "LeadSource",
            "Lead_Score__c", "OwnerId", "Status", "Rejection_Reason__c", "IsConverted",
            "ConvertedContactId", "ConvertedDate", "Company", "NumberOfEmployees", "Industry",
            "AnnualRevenue"), m.map_lead, tombstones=True),
    Stream("contacts", "Contact",
           ("Email", "FirstName", "LastName", "Title", "MailingCountry", "LeadSource",
            "OwnerId", "AccountId"), m.map_contact, tombstones=True),
    Stream("opportunities", "Opportunity",
           ("Name", "AccountId", "ContactId", "Amount", "StageName", "IsClosed", "IsWon",
            "CloseDate", "OwnerId", "LeadSource", "CampaignId"), m.map_opportunity),
    Stream("tasks", "Task", ("WhoId", "OwnerId", "Subject", "Type", "TaskSubtype"),
           m.map_task),
    Stream("events", "Event",
           ("WhoId", "OwnerId", "Subject", "StartDateTime", "ActivityDateTime"), m.map_event),
    Stream("lead_history", "LeadHistory", ("LeadId", "Field", "OldValue", "NewValue"),
           m.map_lead_history, where="Field = 'Status'"),
)
BY_NAME = {s.name: s for s in STREAMS}


@dataclass(frozen=True)
class Plan:
    """A stream resolved against the org's describe: the fields to select, the cursor field."""

    stream: Stream
    fields: tuple[str, ...]
    stamp_field: str


def plan(stream: Stream, described: Iterable[str]) -> Plan:
    """Select the wanted fields the org has; fail with advice when it lacks the essentials."""
    have = set(described)
    stamp = next((f for f in STAMP_FIELDS if f in have), None)
    if "Id" not in have or stamp is None:
        raise ConnectorError(
            f"Salesforce {stream.sobject} has no Id or SystemModstamp/CreatedDate visible to "
            "this user: grant field access to it"
        )
    fields = tuple(dict.fromkeys(f for f in (*SYSTEM_FIELDS, *stream.wanted) if f in have))
    return Plan(stream, fields, stamp)


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC), floored to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_soql(p: Plan, since: datetime | None) -> str:
    """``SELECT ... WHERE stamp >= since ORDER BY stamp, Id``: ``>=`` keeps rows sharing a stamp."""
    conditions = [p.stream.where] if p.stream.where else []
    if since is not None:
        conditions.append(f"{p.stamp_field} >= {soql_datetime(since)}")
    text = f"SELECT {', '.join(p.fields)} FROM {p.stream.sobject}"
    if conditions:
        text += " WHERE " + " AND ".join(conditions)
    return text + f" ORDER BY {p.stamp_field}, Id"


def id_list(ids: Iterable[str]) -> str:
    """A SOQL ``IN`` list of ids (Salesforce ids hold only letters and digits)."""
    return ", ".join(f"'{i}'" for i in ids if i.isalnum())
