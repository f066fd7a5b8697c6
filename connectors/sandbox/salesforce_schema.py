"""What the Salesforce sandbox knows about sObjects: field types, references and picklists.

The world's records carry bare Python values, so the schema is the standard object reference
(crm-wire 1.8) plus whatever fields the data actually holds, typed from their values. Both
SOQL (literal checks, relationship paths) and describe read it, so connectors can discover
picklists instead of hard-coding them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import Any

from connectors.sandbox.store import SCHEMA_SAMPLE
from connectors.sandbox.world import MERGEABLE, SALESFORCE_PREFIXES, Record, SalesforceOrg

PREFIX_TO_OBJECT: dict[str, str] = {v: k for k, v in SALESFORCE_PREFIXES.items()}

COMMON: dict[str, str] = {
    "Id": "id",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
    "SystemModstamp": "datetime",
    "IsDeleted": "boolean",
}
_S, _P, _R, _B, _DT, _D = "string", "picklist", "reference", "boolean", "datetime", "date"
STANDARD: dict[str, dict[str, str]] = {
    "Lead": {
        "Email": "email", "FirstName": _S, "LastName": _S, "Company": _S, "Title": _S,
        "Country": _S, "LeadSource": _P, "Status": _P, "IsConverted": _B, "ConvertedDate": _D,
        "ConvertedContactId": _R, "ConvertedAccountId": _R, "ConvertedOpportunityId": _R,
        "OwnerId": _R, "NumberOfEmployees": "int", "Industry": _P,
        "AnnualRevenue": "currency",
    },
    "Contact": {
        "Email": "email", "FirstName": _S, "LastName": _S, "Title": _S, "AccountId": _R,
        "OwnerId": _R, "LeadSource": _P, "MailingCountry": _S,
    },
    "Account": {
        "Name": _S, "Website": "url", "NumberOfEmployees": "int", "Industry": _P,
        "AnnualRevenue": "currency", "BillingCountry": _S, "Type": _P, "OwnerId": _R,
    },
    "Opportunity": {
        "Name": _S, "AccountId": _R, "Amount": "currency", "StageName": _P,
        "Probability": "percent", "IsClosed": _B, "IsWon": _B, "CloseDate": _D,
        "LeadSource": _P, "CampaignId": _R, "ContactId": _R, "OwnerId": _R,
    },
    "OpportunityContactRole": {
        "OpportunityId": _R, "ContactId": _R, "Role": _P, "IsPrimary": _B,
    },
    "LeadHistory": {"LeadId": _R, "Field": _P, "OldValue": "anyType", "NewValue": "anyType"},
    "Task": {
        "WhoId": _R, "WhatId": _R, "OwnerId": _R, "Subject": _S, "ActivityDate": _D,
        "Type": _P, "Status": _P, "Priority": _P, "TaskSubtype": _P, "Description": "textarea",
    },
    "Event": {
        "WhoId": _R, "WhatId": _R, "OwnerId": _R, "Subject": _S, "ActivityDate": _D,
        "Type": _P, "EventSubtype": _P, "ActivityDateTime": _DT, "StartDateTime": _DT,
        "EndDateTime": _DT,
    },
    "User": {"Email": "email", "Name": _S, "IsActive": _B, "TimeZoneSidKey": _P},
    "Campaign": {
        "Name": _S, "Type": _P, "Status": _P, "StartDate": _D, "EndDate": _D,
        "BudgetedCost": "currency", "ActualCost": "currency",
    },
    "CampaignMember": {
        "CampaignId": _R, "LeadId": _R, "ContactId": _R, "Status": _P, "HasResponded": _B,
        "FirstRespondedDate": _D,
    },
    "BusinessHours": {
        "Name": _S, "IsDefault": _B, "IsActive": _B, "TimeZoneSidKey": _P,
        **{f"{d}{edge}Time": "time" for d in ("Monday", "Tuesday", "Wednesday", "Thursday",
                                              "Friday", "Saturday", "Sunday")
           for edge in ("Start", "End")},
    },
    "Holiday": {
        "Name": _S, "ActivityDate": _D, "IsAllDay": _B, "StartTimeInMinutes": "int",
        "EndTimeInMinutes": "int", "IsRecurrence": _B,
    },
}
# Fields whose target cannot be read from an id prefix alone, or has no records yet.
REFERENCE_TO: dict[str, list[str]] = {
    "OwnerId": ["User"], "AccountId": ["Account"], "ContactId": ["Contact"],
    "LeadId": ["Lead"], "OpportunityId": ["Opportunity"], "CampaignId": ["Campaign"],
    "WhoId": ["Contact", "Lead"], "WhatId": ["Account", "Opportunity", "Campaign"],
    "ConvertedContactId": ["Contact"], "ConvertedAccountId": ["Account"],
    "ConvertedOpportunityId": ["Opportunity"], "CreatedById": ["User"],
    "LastModifiedById": ["User"],
}
READ_ONLY = {
    "Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "MasterRecordId",
    "IsConverted", "ConvertedDate", "ConvertedContactId", "ConvertedAccountId",
    "ConvertedOpportunityId", "IsClosed", "IsWon", "CreatedById", "LastModifiedById",
}
# (values, default) of a new org's picklists; describe adds whatever the data holds.
PICKLISTS: dict[tuple[str, str], tuple[list[str], str | None]] = {
    ("Lead", "Status"): (["Open - Not Contacted", "Working - Contacted",
                          "Closed - Converted", "Closed - Not Converted"], "Open - Not Contacted"),
    ("Opportunity", "StageName"): (["Prospecting", "Qualification", "Needs Analysis",
                                    "Value Proposition", "Id. Decision Makers",
                                    "Perception Analysis", "Proposal/Price Quote",
                                    "Negotiation/Review", "Closed Won", "Closed Lost"], None),
    ("Task", "Status"): (["Not Started", "In Progress", "Completed", "Waiting on someone else",
                          "Deferred"], "Not Started"),
    ("Task", "Priority"): (["High", "Normal", "Low"], "Normal"),
    ("Task", "TaskSubtype"): (["Task", "Email", "Call"], None),
}
READ_ONLY_OBJECTS = {"LeadHistory", "OpportunityFieldHistory", "OpportunityHistory"}


def sf_datetime(value: datetime) -> str:
    """Salesforce's JSON datetime: milliseconds and a ``+0000`` offset."""
    v = value.astimezone(UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}+0000"


def wire_value(value: Any) -> Any:
    """A Python value as Salesforce's JSON writes it."""
    if isinstance(value, datetime):
        return sf_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value


def _infer(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time"
    if isinstance(value, str) and (name.endswith("Id") or name.endswith("__c")) and (
        len(value) in (15, 18) and value[:3] in PREFIX_TO_OBJECT
    ):
        return "reference"
    return "string"


def relationship_name(field: str) -> str | None:
    """``OwnerId`` -> ``Owner``; ``Thing__c`` -> ``Thing__r``."""
    if field.endswith("__c"):
        return field[:-3] + "__r"
    if field.endswith("Id") and field != "Id":
        return field[:-2]
    return None


class SalesforceSchema:
    """Field types per sObject, cached and refreshed when a query names an unseen field."""

    def __init__(self, org: SalesforceOrg) -> None:
        self.org = org
        self._fields: dict[str, dict[str, str]] = {}
        self._lower: dict[str, dict[str, str]] = {}
        # describe bodies by (sobject, version), with the table size they were read at: a
        # large table's sample takes a second to rescan, and a real describe is quick
        self._described: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}

    def _sample(self, sobject: str) -> Iterator[Record]:
        """The records the schema is read from: all of a small table, the first
        ``SCHEMA_SAMPLE`` of a large one (generated records of one type share their fields)."""
        return islice(self.org.objects.get(sobject, {}).values(), SCHEMA_SAMPLE)

    def object_names(self) -> list[str]:
        return sorted(set(STANDARD) | {k for k in self.org.objects})

    def object_name(self, name: str) -> str | None:
        """The canonical spelling of an sObject name (SOQL is case-insensitive)."""
        low = name.lower()
        return next((n for n in self.object_names() if n.lower() == low), None)

    def fields(self, sobject: str) -> dict[str, str]:
        if sobject not in self._fields:
            self.refresh(sobject)
        return self._fields[sobject]

    def refresh(self, sobject: str) -> None:
        """Rescan the records: the standard fields plus every field the data holds."""
        types: dict[str, str] = dict(COMMON)
        if sobject in MERGEABLE:
            types["MasterRecordId"] = "reference"
        types.update(STANDARD.get(sobject, {}))
        untyped: set[str] = set()
        for rec in self._sample(sobject):
            for k, v in rec.items():
                if k in types:
                    continue
                if v is None:
                    untyped.add(k)
                else:
                    types[k] = _infer(k, v)
        for k in untyped - types.keys():
            types[k] = "string"
        self._fields[sobject] = types
        self._lower[sobject] = {k.lower(): k for k in types}
        for key in [k for k in self._described if k[0] == sobject]:
            del self._described[key]

    def field(self, sobject: str, name: str) -> tuple[str, str] | None:
        """(canonical name, type) of a field, or None when the object has no such field."""
        self.fields(sobject)
        canonical = self._lower[sobject].get(name.lower())
        if canonical is None:
            self.refresh(sobject)
            canonical = self._lower[sobject].get(name.lower())
        return None if canonical is None else (canonical, self._fields[sobject][canonical])

    def reference_to(self, sobject: str, field: str) -> list[str]:
        if field == "MasterRecordId":
            return [sobject]
        if field in REFERENCE_TO:
            return REFERENCE_TO[field]
        targets: list[str] = []
        for rec in self._sample(sobject):
            value = rec.get(field)
            target = PREFIX_TO_OBJECT.get(value[:3]) if isinstance(value, str) else None
            if target and target not in targets:
                targets.append(target)
                if len(targets) > 3:
                    break
        return targets

    def describe(self, sobject: str, version: str = "62.0") -> dict[str, Any]:
        """The describe body: every field with its type, flags, picklist values and target;
        read again when the table's size changed or a query found a field it did not know."""
        size = len(self.org.objects.get(sobject, {}))
        cached = self._described.get((sobject, version))
        if cached is not None and cached[0] == size:
            return cached[1]
        body = self._describe(sobject, version)
        self._described[(sobject, version)] = (size, body)
        return body

    def _describe(self, sobject: str, version: str) -> dict[str, Any]:
        self.refresh(sobject)
        out = []
        for name, ftype in self._fields[sobject].items():
            picklist: list[dict[str, Any]] = []
            if ftype == "picklist":
                defaults, default = PICKLISTS.get((sobject, name), ([], None))
                seen = list(defaults)
                extra = {rec.get(name) for rec in self._sample(sobject)} - set(seen) - {None}
                seen.extend(sorted(str(v) for v in extra))
                picklist = [{"value": v, "label": v, "active": True,
                             "defaultValue": v == default, "validFor": None} for v in seen]
            writable = name not in READ_ONLY and sobject not in READ_ONLY_OBJECTS
            out.append({
                "name": name,
                "label": name,
                "type": ftype,
                "length": 255 if ftype in ("string", "email", "picklist", "url") else 0,
                "nillable": name not in COMMON and ftype != "boolean",
                "updateable": writable,
                "createable": writable,
                "picklistValues": picklist,
                "referenceTo": self.reference_to(sobject, name) if ftype == "reference" else [],
                "relationshipName": relationship_name(name) if ftype == "reference" else None,
            })
        return {**self.describe_global_entry(sobject, version), "fields": out}

    def describe_global_entry(self, sobject: str, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{sobject}"
        return {
            "name": sobject,
            "label": sobject,
            "keyPrefix": SALESFORCE_PREFIXES.get(sobject),
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "createable": sobject not in READ_ONLY_OBJECTS,
            "updateable": sobject not in READ_ONLY_OBJECTS,
            "deletable": sobject not in READ_ONLY_OBJECTS,
            "urls": {"sobject": base, "describe": f"{base}/describe",
                     "rowTemplate": f"{base}/{{ID}}"},
        }
