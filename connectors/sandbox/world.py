"""The sandbox's data: one Salesforce org and one HubSpot portal, held as plain records.

Both sandbox servers read and write these containers; the generator fills them and the live
mode mutates them. Each object type is a ``Table`` (``store.py``): a dict-like view of records
kept in SQLite, so a million-person world does not have to fit in memory. Values are Python
values (aware UTC datetimes, dates, bools, numbers, strings, None); each server turns them
into its own wire format, so a record looks exactly like the real API's answer only once it
crosses the socket.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.sandbox.store import Keys, Store, Table, stamp_key

Record = dict[str, Any]

SALESFORCE_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "OpportunityContactRole": "00K",
    "Campaign": "701",
    "CampaignMember": "00v",
    "LeadHistory": "017",
    "BusinessHours": "01m",
    "Holiday": "0C0",
}
MERGEABLE = ("Lead", "Contact", "Account")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sf_keys(rec: Record) -> tuple[Any, str | None, int]:
    return rec["Id"], stamp_key(rec.get("SystemModstamp")), int(bool(rec.get("IsDeleted")))


def _hs_keys(object_type: str) -> Keys:
    modified = modified_name(object_type)

    def keys(rec: Record) -> tuple[Any, str | None, int]:
        rid = rec["id"]
        return (int(rid) if rid.isdigit() else rid, rec["properties"].get(modified),
                int(bool(rec["archived"])))

    return keys


def modified_name(object_type: str) -> str:
    """The property HubSpot stamps on every change of an object of this type."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


@dataclass
class SalesforceOrg:
    """Records per sObject, keyed by 18-character Id, with Salesforce field names."""

    store: Store = field(default_factory=Store)
    objects: dict[str, Table] = field(default_factory=dict)
    # (sobject, id, deletedDate) for getDeleted; the recycle bin keeps the row with IsDeleted.
    deleted_log: list[tuple[str, str, datetime]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def new_id(self, sobject: str) -> str:
        """A 18-character id with the object's real key prefix."""
        n = self.counters.get(sobject, 0) + 1
        self.counters[sobject] = n
        prefix = SALESFORCE_PREFIXES.get(sobject, "a00")
        return f"{prefix}5g{n:010d}AAA"

    def table(self, sobject: str) -> Table:
        found = self.objects.get(sobject)
        if found is None:
            found = self.objects[sobject] = self.store.table(f"sf_{sobject}", _sf_keys)
        return found

    def insert(self, sobject: str, fields: Record, *, at: datetime) -> Record:
        """Create a record with its system fields stamped at ``at``."""
        rec_id = fields.get("Id") or self.new_id(sobject)
        rec: Record = {
            "Id": rec_id,
            "CreatedDate": at,
            "LastModifiedDate": at,
            "SystemModstamp": at,
            "IsDeleted": False,
        }
        if sobject in MERGEABLE:
            rec["MasterRecordId"] = None
        rec.update(fields)
        rec["Id"] = rec_id
        self.table(sobject)[rec_id] = rec
        return rec

    def update(self, sobject: str, rec_id: str, fields: Record, *, at: datetime) -> Record:
        table = self.table(sobject)
        rec = table[rec_id]
        rec.update(fields)
        rec["LastModifiedDate"] = at
        rec["SystemModstamp"] = at
        table[rec_id] = rec
        return rec

    def delete(self, sobject: str, rec_id: str, *, at: datetime) -> None:
        """Move a record to the recycle bin: hidden from query, visible to queryAll."""
        self.update(sobject, rec_id, {"IsDeleted": True}, at=at)
        self.deleted_log.append((sobject, rec_id, at))

    def merge(self, sobject: str, master_id: str, loser_id: str, *, at: datetime) -> None:
        """Salesforce merge: the loser is deleted and points at its master."""
        self.update(sobject, loser_id, {"MasterRecordId": master_id}, at=at)
        self.delete(sobject, loser_id, at=at)
        self.update(sobject, master_id, {}, at=at)


@dataclass
class HubSpotPortal:
    """CRM v3 objects per type, keyed by string id.

    A record is ``{"id", "properties": {name: str | None}, "history": {name: [(value, ts)]},
    "createdAt", "updatedAt", "archived", "archivedAt"}`` with datetimes as aware UTC values.
    Property values are strings, as HubSpot stores them.
    """

    store: Store = field(default_factory=Store)
    objects: dict[str, Table] = field(default_factory=dict)
    # (from_type, to_type) -> from_id -> [(to_id, association_type_id)]
    associations: dict[tuple[str, str], dict[str, list[tuple[str, int]]]] = field(
        default_factory=dict
    )
    # counts every change to ``associations``: the reverse index is rebuilt only when it moves
    links_version: int = 0
    owners: list[Record] = field(default_factory=list)
    # merged-away id -> surviving id (a GET on a loser answers the survivor)
    merged_into: dict[str, str] = field(default_factory=dict)
    next_id: int = 1000

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def table(self, object_type: str) -> Table:
        found = self.objects.get(object_type)
        if found is None:
            found = self.objects[object_type] = self.store.table(f"hs_{object_type}",
                                                                 _hs_keys(object_type))
        return found

    def insert(self, object_type: str, properties: dict[str, Any], *, at: datetime) -> Record:
        rec_id = str(properties.pop("hs_object_id", None) or self.new_id())
        props = {k: _hs_str(v) for k, v in properties.items()}
        props["hs_object_id"] = rec_id
        props.setdefault("createdate", _hs_str(at))
        props[modified_name(object_type)] = _hs_str(at)
        rec: Record = {
            "id": rec_id,
            "properties": props,
            "history": {k: [(v, at)] for k, v in props.items() if v is not None},
            "createdAt": at,
            "updatedAt": at,
            "archived": False,
            "archivedAt": None,
        }
        self.table(object_type)[rec_id] = rec
        return rec

    def update(
        self, object_type: str, rec_id: str, properties: dict[str, Any], *, at: datetime
    ) -> Record:
        table = self.table(object_type)
        rec = table[rec_id]
        for k, v in properties.items():
            value = _hs_str(v)
            if rec["properties"].get(k) != value:
                rec["history"].setdefault(k, []).append((value, at))
            rec["properties"][k] = value
        rec["properties"][modified_name(object_type)] = _hs_str(at)
        rec["updatedAt"] = at
        table[rec_id] = rec
        return rec

    def archive(self, object_type: str, rec_id: str, *, at: datetime) -> None:
        table = self.table(object_type)
        rec = table[rec_id]
        rec["archived"] = True
        rec["archivedAt"] = at
        rec["updatedAt"] = at
        table[rec_id] = rec

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str,
                  type_id: int) -> None:
        self.associations.setdefault((from_type, to_type), {}).setdefault(from_id, []).append(
            (to_id, type_id)
        )
        self.links_version += 1

    def move_links(self, object_type: str, loser_id: str, primary_id: str) -> None:
        """A merge: the loser's stored links become the survivor's (each kept once)."""
        for (from_type, _), links in self.associations.items():
            if from_type == object_type and loser_id in links:
                moved = links.pop(loser_id)
                kept = links.setdefault(primary_id, [])
                kept.extend(x for x in moved if x not in kept)
        self.links_version += 1

    def merge(self, object_type: str, primary_id: str, loser_id: str, *, at: datetime) -> None:
        """HubSpot merge: the loser disappears, the survivor lists it in hs_merged_object_ids."""
        primary = self.table(object_type)[primary_id]
        listed = primary["properties"].get("hs_merged_object_ids") or ""
        merged = [x for x in listed.split(";") if x]
        merged.append(loser_id)
        self.update(object_type, primary_id, {"hs_merged_object_ids": ";".join(merged)}, at=at)
        self.table(object_type).pop(loser_id)
        self.merged_into[loser_id] = primary_id


def hs_stamp(at: datetime) -> str:
    """An instant as HubSpot stores it, which is also how its tables order stamps."""
    return _hs_str(at) or ""


def _hs_str(value: Any) -> str | None:
    """HubSpot stores every property as a string; datetimes as ISO 8601 with milliseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return str(value)


@dataclass
class World:
    """Everything both sandboxes serve, guarded by one lock for live-mode writers."""

    salesforce: SalesforceOrg = field(default_factory=SalesforceOrg)
    hubspot: HubSpotPortal = field(default_factory=HubSpotPortal)
    clock: Callable[[], datetime] = utcnow
    lock: threading.RLock = field(default_factory=threading.RLock)
    # what the generator intended, for tests that compare a sync with the truth
    truth: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def on_disk(cls, *, cache_limit: int = 1024, **kwargs: Any) -> World:
        """A world whose records live in a temporary SQLite file behind a bounded cache."""
        store = Store.on_disk(cache_limit=cache_limit)
        return cls(salesforce=SalesforceOrg(store=store), hubspot=HubSpotPortal(store=store),
                   **kwargs)
