"""Read endpoints of the Salesforce sandbox: query paging, getDeleted/getUpdated, describe.

A query's result (``soql_result``) streams its pages from the store's indexes; a locator holds
the result and the positions it reached, so paging a million rows costs what the pages cost
and holds no more than a page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from connectors.sandbox.salesforce_schema import sf_datetime
from connectors.sandbox.salesforce_state import Call, SalesforceError, SalesforceState, not_found
from connectors.sandbox.soql import SoqlError, parse
from connectors.sandbox.soql_eval import Compiler, Resolved
from connectors.sandbox.soql_result import Result, open_result
from connectors.sandbox.store import Bounds, stamp_key

DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
ID_LIMIT = 600_000
WINDOW_DAYS = {"deleted": 15, "updated": 30}


def batch_size(headers: dict[str, str]) -> int | None:
    """``Sforce-Query-Options: batchSize=N``, clamped to 200..2000; None when absent."""
    raw = headers.get("sforce-query-options", "")
    for part in raw.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                return max(MIN_BATCH, min(MAX_BATCH, int(value.strip())))
            except ValueError:
                return DEFAULT_BATCH
    return None


def _page(state: SalesforceState, call: Call, kind: str, rows: Result, project: Any,
          batch: int, offset: int, locator: str | None) -> dict[str, Any]:
    with state.world.lock:
        found = rows.page(offset, batch)
        records = [project(r) for r in found]
        total = rows.total
    end = offset + len(found)
    body: dict[str, Any] = {"totalSize": total, "done": len(found) < batch or end >= total}
    if not body["done"]:
        locator = locator or state.cursors.open(rows, project, batch)
        body["nextRecordsUrl"] = f"/services/data/v{call.version}/{kind}/{locator}-{end}"
    elif locator:
        state.cursors.release(locator)
    body["records"] = records
    return body


def query(state: SalesforceState, call: Call, kind: str) -> dict[str, Any]:
    """``query``/``queryAll``: run the SOQL and answer its first page."""
    text = call.query.get("q")
    if text is None:
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
    org = state.world.salesforce
    try:
        parsed = parse(text)
        with state.world.lock:
            cq = Compiler(state.schema, org, call.version).compile(parsed)
            rows = open_result(cq, parsed, org, include_deleted=kind == "queryAll")
    except SoqlError as exc:
        raise SalesforceError(400, exc.code, exc.message) from exc
    if cq.count is True:
        with state.world.lock:
            return {"totalSize": rows.total, "done": True, "records": []}
    if isinstance(cq.count, Resolved):
        get = cq.count.getter
        with state.world.lock:
            n = sum(1 for r in rows.rows() if get(r) is not None)
        agg = {"attributes": {"type": "AggregateResult"}, "expr0": n}
        return {"totalSize": 1, "done": True, "records": [agg]}
    batch = batch_size(call.headers) or DEFAULT_BATCH
    return _page(state, call, kind, rows, cq.project, batch, 0, None)


def query_more(state: SalesforceState, call: Call, kind: str) -> dict[str, Any]:
    """``query/{locator}-{offset}``: the next slice of a held result."""
    locator, _, offset = call.path["locator"].rpartition("-")
    cursor = state.cursors.get(locator) if offset.isdigit() else None
    if cursor is None:
        raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    batch = batch_size(call.headers) or cursor.batch
    return _page(state, call, kind, cursor.rows, cursor.project, batch, int(offset), locator)


def _when(call: Call, name: str) -> datetime:
    raw = call.query.get(name)
    if not raw:
        raise SalesforceError(400, "MALFORMED_QUERY", f"Missing required parameter: {name}")
    try:
        value = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError as exc:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE",
                              f"{name}: invalid date format: {raw}") from exc
    if value.tzinfo is None:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", f"{name}: a time zone is required")
    return value.replace(second=0, microsecond=0)


def replication(state: SalesforceState, call: Call, kind: str) -> dict[str, Any]:
    """``sobjects/{T}/deleted`` and ``/updated``: ids changed in a window, with its limits."""
    sobject = state.schema.object_name(call.path["sobject"])
    if sobject is None:
        raise not_found()
    start, end = _when(call, "start"), _when(call, "end")
    if start >= end:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE",
                              "startDate must chronologically precede endDate")
    now = state.world.clock().replace(second=0, microsecond=0)
    days = WINDOW_DAYS[kind]
    earliest = now - timedelta(days=days)
    if start < earliest:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE",
                              f"startDate cannot be more than {days} days ago")
    latest = max(start, min(end, now))
    org = state.world.salesforce
    with state.world.lock:
        if kind == "deleted":
            found: dict[str, datetime] = {}
            for obj, rec_id, at in org.deleted_log:
                if obj == sobject and start <= at < latest:
                    found[rec_id] = at
            ids = list(found)
        else:
            table = org.objects.get(sobject)
            window = Bounds(lo=stamp_key(start), hi=stamp_key(latest), hi_open=True, gone=0)
            ids = [] if table is None else [r["Id"] for r in table.ordered("sk", window)]
    if len(ids) > ID_LIMIT:
        raise SalesforceError(400, "EXCEEDED_ID_LIMIT",
                              f"{kind} ids exceed the limit of {ID_LIMIT}")
    if kind == "updated":
        return {"ids": ids, "latestDateCovered": sf_datetime(latest)}
    return {
        "deletedRecords": [{"id": i, "deletedDate": sf_datetime(found[i])} for i in ids],
        "earliestDateAvailable": sf_datetime(earliest),
        "latestDateCovered": sf_datetime(latest),
    }


def versions(state: SalesforceState) -> list[dict[str, str]]:
    top = int(float(state.api_version))
    return [{"label": f"API {v}.0", "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
            for v in range(top - 5, top + 1)]


def limits(state: SalesforceState) -> dict[str, Any]:
    top = state.daily_max
    return {
        "DailyApiRequests": {"Max": top, "Remaining": max(top - state.api_used, 0)},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024},
        "ConcurrentSyncLongRunningRequests": {"Max": 10, "Remaining": 10},
    }


def describe_global(state: SalesforceState, call: Call) -> dict[str, Any]:
    with state.world.lock:
        names = state.schema.object_names()
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [state.schema.describe_global_entry(n, call.version) for n in names]}


def describe(state: SalesforceState, call: Call) -> dict[str, Any]:
    with state.world.lock:
        sobject = state.schema.object_name(call.path["sobject"])
        if sobject is None:
            raise not_found()
        return state.schema.describe(sobject, call.version)


def sobject_info(state: SalesforceState, call: Call) -> dict[str, Any]:
    sobject = state.schema.object_name(call.path["sobject"])
    if sobject is None:
        raise not_found()
    return {"objectDescribe": state.schema.describe_global_entry(sobject, call.version),
            "recentItems": []}
