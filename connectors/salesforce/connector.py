"""The Salesforce connector: incremental pages of typed records, and the SLA write-back.

Each stream is one ``queryAll`` ordered by ``(SystemModstamp, Id)`` from the saved cursor minus
a lookback, so deleted and merged rows arrive in the same pass and rows sharing a timestamp
at a page or run boundary are re-read rather than lost (the sync engine upserts). Lead,
Contact and Account also ask getDeleted inside its 15-day window, for rows already purged
from the recycle bin. After every page the API budget is checked against a reserve.

The fields a stream selects come from ``describe``, which a full read asks and the cursor then
remembers for a day: an object's describe is as dear as the whole incremental query on a
large org, and a field removed meanwhile fails the query with ``INVALID_FIELD``, which asks
again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests

from connectors.base import ConnectorError, Cursor, Page, StopEarly
from connectors.records import AnyRecord, Malformed
from connectors.salesforce.client import RequestRefused, SalesforceClient
from connectors.salesforce.mapping import MappingContext, parse_datetime, to_record, tombstone
from connectors.salesforce.streams import BY_NAME, STREAMS, Plan, Stream, build_soql, id_list, plan
from service.settings import SalesforceSettings

DELETED_WINDOW = timedelta(days=15) - timedelta(minutes=5)  # margin for clock skew
ROLE_CHUNK = 200  # opportunity ids per OpportunityContactRole query (URL length)
MAX_LOCATOR_RESTARTS = 3
DESCRIBE_MAX_AGE = timedelta(days=1)  # a field added to the org is selected within a day


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: Any) -> str | None:
    parsed = parse_datetime(value)
    return parsed.isoformat() if parsed else None


class SalesforceConnector:
    """Reads users, accounts, campaigns, leads, contacts, opportunities, activities, history."""

    source = "salesforce"

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        batch_size: int = 2000,
        lookback: timedelta = timedelta(minutes=2),
        api_reserve: int = 200,
        retry_wait_seconds: float = 1.0,
        max_attempts: int = 5,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self.batch_size = max(200, min(2000, batch_size))
        self.lookback = lookback
        self.api_reserve = api_reserve
        self.clock = clock
        self.client = SalesforceClient(settings, retry_wait_seconds=retry_wait_seconds,
                                       max_attempts=max_attempts)
        self._describes: dict[str, dict[str, dict[str, Any]]] = {}
        self._objects: set[str] | None = None

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, max) of the org's daily API requests, as of the last answer."""
        return self.client.api_usage

    def close(self) -> None:
        """Release the HTTP connections; the connector logs in again if used afterwards."""
        self.client.close()

    def streams(self) -> list[str]:
        return [s.name for s in STREAMS]

    def check(self) -> None:
        """Log in, list the org's objects, and name any this user cannot see."""
        try:
            names = self._object_names()
        except requests.exceptions.ConnectionError as exc:
            raise ConnectorError(
                f"cannot reach Salesforce ({exc.__class__.__name__}): check "
                "TRUCE_SALESFORCE_INSTANCE_URL / TRUCE_SALESFORCE_LOGIN_URL and the network"
            ) from exc
        missing = [s.sobject for s in STREAMS if s.sobject not in names]
        if missing:
            raise ConnectorError(
                f"Salesforce objects not visible to this user: {', '.join(missing)}: grant "
                "read access to them"
            )

    # -- describe ---------------------------------------------------------------------------

    def _object_names(self) -> set[str]:
        if self._objects is None:
            body = self.client.call(lambda sf: sf.describe(), what="the list of objects")
            self._objects = {o["name"] for o in (body or {}).get("sobjects", [])}
        return self._objects

    def _fields(self, sobject: str) -> dict[str, dict[str, Any]]:
        """The object's fields by name, from describe (once per connector)."""
        if sobject not in self._describes:
            body = self.client.call(lambda sf: getattr(sf, sobject).describe(),
                                    what=f"object {sobject}")
            self._describes[sobject] = {f["name"]: f for f in body.get("fields", [])}
        return self._describes[sobject]

    def _plan(self, stream: Stream) -> Plan:
        return plan(stream, self._fields(stream.sobject))

    def _described_plan(self, stream: Stream, state: dict[str, Any], *, again: bool = False
                        ) -> Plan:
        """The plan from describe, remembered in ``state`` (saved with each page's cursor)."""
        if again:
            self._describes.pop(stream.sobject, None)
        p = self._plan(stream)
        state["plan"] = {"wanted": list(stream.wanted), "fields": list(p.fields),
                         "stamp_field": p.stamp_field, "described_at": self.clock().isoformat()}
        return p

    def _remembered_plan(self, stream: Stream, state: dict[str, Any]) -> Plan | None:
        """The plan a recent read described, unless it is stale or the stream now wants more."""
        saved = state.get("plan")
        if not isinstance(saved, dict) or saved.get("wanted") != list(stream.wanted):
            return None
        at = parse_datetime(saved.get("described_at"))
        fields, stamp = tuple(saved.get("fields") or ()), saved.get("stamp_field")
        if at is None or self.clock() - at >= DESCRIBE_MAX_AGE or stamp not in fields \
                or "Id" not in fields:
            return None
        return Plan(stream, fields, stamp)

    # -- reading ----------------------------------------------------------------------------

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        """Pages of ``stream`` from ``cursor`` (None: everything), one per API batch."""
        spec = BY_NAME.get(stream)
        if spec is None:
            raise ConnectorError(
                f"unknown Salesforce stream {stream!r}; known: {', '.join(self.streams())}"
            )
        self._check_budget()
        start = parse_datetime(cursor.value) if cursor and cursor.value else None
        state = dict(cursor.state) if cursor else {}
        p = self._remembered_plan(spec, state) if start is not None else None
        remembered = p is not None
        if p is None:
            p = self._described_plan(spec, state)
        last = (cursor.value, cursor.tie_break) if cursor else (None, None)
        if start is None and spec.tombstones:
            # a full queryAll pass sees the whole recycle bin: getDeleted starts from here
            state["deleted_until"] = (self.clock() - self.lookback).isoformat()
        # ids this read returned, so getDeleted's list adds only purged ones; a full read asks
        # no getDeleted, and keeping every id of a million-row object grew memory with it
        watch = bool(spec.tombstones and start is not None)
        seen: set[str] = set()
        calls = self.api_calls
        since = start - self.lookback if start else None
        try:
            result = self._query(p, since)
        except RequestRefused as exc:
            if not remembered or exc.code != "INVALID_FIELD":
                raise
            p = self._described_plan(spec, state, again=True)  # a remembered field is gone
            result = self._query(p, since)
        restarts = 0
        while True:
            rows: list[dict[str, Any]] = result.get("records") or []
            records = self._map_page(p, rows)
            if watch:
                seen.update(row["Id"] for row in rows)
            if rows:
                last = (_iso(rows[-1].get(p.stamp_field)), rows[-1]["Id"])
            done = bool(result.get("done", True)) or not result.get("nextRecordsUrl")
            if done and watch:
                records.extend(self._tombstones(spec, start, state, seen))
            yield Page(stream, records, Cursor(last[0], last[1], dict(state)),
                       api_calls=self.api_calls - calls)
            calls = self.api_calls
            if done:
                return  # a finished stream keeps its place; the next read checks the budget
            self._check_budget()
            try:
                result = self._query_more(result["nextRecordsUrl"])
            except RequestRefused as exc:
                # an expired locator: run the query again from the last row read
                if exc.code != "INVALID_QUERY_LOCATOR" or restarts >= MAX_LOCATOR_RESTARTS:
                    raise
                restarts += 1
                result = self._query(p, parse_datetime(last[0]) if last[0] else None)

    def _headers(self) -> dict[str, str]:
        return {"Sforce-Query-Options": f"batchSize={self.batch_size}"}

    def _query(self, p: Plan, since: datetime | None) -> dict[str, Any]:
        soql = build_soql(p, since)
        return self.client.call(
            lambda sf: sf.query(soql, include_deleted=True, headers=self._headers()),
            what=f"the {p.stream.sobject} query",
        )

    def _query_more(self, next_url: str) -> dict[str, Any]:
        """The next batch; a retry asks for the same ``nextRecordsUrl`` again."""
        return self.client.call(
            lambda sf: sf.query_more(next_url, identifier_is_url=True, include_deleted=True,
                                     headers=self._headers()),
            what="the next query batch",
        )

    def _map_page(self, p: Plan, rows: list[dict[str, Any]]) -> list[AnyRecord | Malformed]:
        roles = self._contact_roles([r["Id"] for r in rows]) if p.stream.name == \
            "opportunities" else {}
        ctx = MappingContext(p.stamp_field, roles)
        out: list[AnyRecord | Malformed] = []
        for row in rows:
            record = to_record(p.stream.mapper, row, p.stream.sobject, ctx)
            if record is not None:
                out.append(record)
        return out

    def _contact_roles(self, opportunity_ids: list[str]) -> dict[str, list[str]]:
        """ContactIds on each opportunity's OpportunityContactRole rows (none if not offered)."""
        if not opportunity_ids or "OpportunityContactRole" not in self._object_names():
            return {}
        roles: dict[str, list[str]] = {}
        for i in range(0, len(opportunity_ids), ROLE_CHUNK):
            ids = id_list(opportunity_ids[i:i + ROLE_CHUNK])
            soql = ("SELECT OpportunityId, ContactId FROM OpportunityContactRole "
                    f"WHERE OpportunityId IN ({ids}) ORDER BY OpportunityId, Id")
            result = self.client.call(lambda sf, q=soql: sf.query(q),
                                      what="the OpportunityContactRole query")
            while True:
                for row in result.get("records") or []:
                    if row.get("ContactId"):
                        roles.setdefault(row["OpportunityId"], []).append(row["ContactId"])
                if result.get("done", True) or not result.get("nextRecordsUrl"):
                    break
                next_url = result["nextRecordsUrl"]
                result = self.client.call(
                    lambda sf, u=next_url: sf.query_more(u, identifier_is_url=True),
                    what="the next OpportunityContactRole batch",
                )
        return roles

    def _tombstones(self, spec: Stream, start: datetime, state: dict[str, Any],
                    seen: set[str]) -> list[AnyRecord | Malformed]:
        """Ids getDeleted lists that the query pass did not return (purged from the bin)."""
        now = self.clock()
        since = parse_datetime(state.get("deleted_until"))
        if since is None or now - since >= DELETED_WINDOW:
            since = start - self.lookback
        if now - since >= DELETED_WINDOW or since >= now:
            return []
        try:
            body = self.client.call(
                lambda sf: getattr(sf, spec.sobject).deleted(since, now),
                what=f"deleted {spec.sobject} ids",
            )
        except RequestRefused as exc:
            if exc.code in ("INVALID_REPLICATION_DATE", "EXCEEDED_ID_LIMIT"):
                return []  # the queryAll pass alone covers it
            raise
        state["deleted_until"] = _iso(body.get("latestDateCovered")) or now.isoformat()
        out: list[AnyRecord | Malformed] = []
        for rec in body.get("deletedRecords") or []:
            if rec.get("id") and rec["id"] not in seen:
                at = parse_datetime(rec.get("deletedDate")) or now
                out.append(tombstone(spec.sobject, rec["id"], at))
        return out

    def _check_budget(self) -> None:
        usage = self.client.api_usage
        if usage is not None and usage[1] - usage[0] < self.api_reserve:
            raise StopEarly(
                f"Salesforce API budget below reserve: used {usage[0]} of {usage[1]}; "
                "will resume"
            )

    # -- writing ----------------------------------------------------------------------------

    def create_task(self, *, who_id: str, owner_id: str | None, subject: str,
                    description: str, due: date) -> str:
        """Create a follow-up Task on the lead or contact (SLA breach write-back); its id."""
        fields = self._fields("Task")
        body: dict[str, Any] = {"WhoId": who_id, "Subject": subject,
                                "ActivityDate": due.isoformat()}
        if owner_id:
            body["OwnerId"] = owner_id
        optional = {"Description": description, "Status": _default(fields.get("Status")),
                    "Priority": "High"}
        body.update({k: v for k, v in optional.items() if k in fields and v is not None})
        result = self.client.call(lambda sf: sf.Task.create(body), what="creating a Task",
                                  idempotent=False)
        return str(result["id"])


def _default(field: dict[str, Any] | None) -> str | None:
    """The picklist's default value (an org's open Task status), else the standard one."""
    values = (field or {}).get("picklistValues") or []
    default = next((v["value"] for v in values if v.get("defaultValue")), None)
    return default or ("Not Started" if field else None)
