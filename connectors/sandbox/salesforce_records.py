"""Write and single-record endpoints of the Salesforce sandbox, applied to the world.

Writes go through ``SalesforceOrg`` stamped with the world's clock, so a PATCH bumps
SystemModstamp and shows up in the next incremental query, and a created Task (SLA write-back)
is a real record tests and the sync can read back.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

from connectors.sandbox.salesforce_schema import (
    PICKLISTS,
    READ_ONLY,
    READ_ONLY_OBJECTS,
    wire_value,
)
from connectors.sandbox.salesforce_state import Call, SalesforceError, SalesforceState, not_found
from connectors.sandbox.world import Record

REQUIRED = {
    "Lead": ["LastName", "Company"],
    "Contact": ["LastName"],
    "Account": ["Name"],
    "Opportunity": ["Name", "StageName", "CloseDate"],
}
NUMERIC = {"int", "double", "currency", "percent"}
COLLECTION_LIMIT = 200


def json_body(call: Call) -> Any:
    try:
        return json.loads(call.body or b"null")
    except ValueError as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected JSON: {exc}") from exc


def _from_wire(name: str, ftype: str, value: Any) -> Any:
    """A JSON value as the world stores it; wrong types fail as Salesforce's parser does."""
    if value is None:
        return None
    try:
        if ftype == "datetime":
            dt = datetime.fromisoformat(value)
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
        if ftype == "date":
            return date.fromisoformat(value)
        if ftype == "time":
            return time.fromisoformat(value.rstrip("Z"))
        if ftype == "boolean" and not isinstance(value, bool):
            raise TypeError
        if ftype in NUMERIC and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise TypeError
        if ftype in ("reference", "id") and (not isinstance(value, str)
                                             or len(value) not in (15, 18)):
            raise SalesforceError(400, "MALFORMED_ID",
                                  f"{name}: id value of incorrect type: {value}", [name])
    except (TypeError, ValueError, AttributeError) as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Cannot deserialize value of field "
                              f"{name} as {ftype}: {value!r}", [name]) from exc
    return int(value) if ftype == "int" else value


def _fields(state: SalesforceState, sobject: str, body: Any) -> Record:
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a JSON object of fields")
    out: Record = {}
    for key, value in body.items():
        if key == "attributes":
            continue
        found = state.schema.field(sobject, key)
        if found is None:
            raise SalesforceError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of "
                                  f"type {sobject}", [key])
        name, ftype = found
        if name in READ_ONLY or sobject in READ_ONLY_OBJECTS:
            raise SalesforceError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/"
                                  f"update fields: {name}. Please check the security settings "
                                  "of this field and verify that it is read/write.", [name])
        out[name] = _from_wire(name, ftype, value)
    return out


def _sobject(state: SalesforceState, call: Call) -> str:
    sobject = state.schema.object_name(call.path["sobject"])
    if sobject is None:
        raise not_found()
    return sobject


def _live(state: SalesforceState, sobject: str, rec_id: str) -> Record:
    rec = state.world.salesforce.objects.get(sobject, {}).get(rec_id)
    if rec is None:
        raise not_found()
    if rec.get("IsDeleted"):
        raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted")
    return rec


def get_record(state: SalesforceState, call: Call) -> dict[str, Any]:
    """``GET sobjects/{T}/{id}``: every field, or those named in ``?fields=``."""
    with state.world.lock:
        sobject = _sobject(state, call)
        rec = _live(state, sobject, call.path["record_id"])
        wanted = [f.strip() for f in call.query.get("fields", "").split(",") if f.strip()]
        names = [state.schema.field(sobject, f) for f in wanted]
        if any(n is None for n in names):
            raise SalesforceError(400, "INVALID_FIELD", "No such column on entity", wanted)
        keys = [n[0] for n in names if n] or list(rec)
        url = f"/services/data/v{call.version}/sobjects/{sobject}/{rec['Id']}"
        return {"attributes": {"type": sobject, "url": url},
                **{k: wire_value(rec.get(k)) for k in keys}}


def update_record(state: SalesforceState, call: Call) -> None:
    """``PATCH sobjects/{T}/{id}``: apply the fields and stamp SystemModstamp."""
    body = json_body(call)
    with state.world.lock:
        sobject = _sobject(state, call)
        _live(state, sobject, call.path["record_id"])
        fields = _fields(state, sobject, body)
        state.world.salesforce.update(sobject, call.path["record_id"], fields,
                                      at=state.world.clock())


def delete_record(state: SalesforceState, call: Call) -> None:
    with state.world.lock:
        sobject = _sobject(state, call)
        _live(state, sobject, call.path["record_id"])
        state.world.salesforce.delete(sobject, call.path["record_id"], at=state.world.clock())


def _prepare_create(state: SalesforceState, sobject: str, body: Any) -> Record:
    """Validated fields of a new record, with the defaults a new org fills in."""
    fields = _fields(state, sobject, body)
    missing = [f for f in REQUIRED.get(sobject, []) if fields.get(f) in (None, "")]
    if missing:
        raise SalesforceError(400, "REQUIRED_FIELD_MISSING",
                              f"Required fields are missing: [{', '.join(missing)}]", missing)
    for (obj, name), (_, default) in PICKLISTS.items():
        if obj == sobject and default is not None:
            fields.setdefault(name, default)
    if sobject == "Lead":
        fields.setdefault("IsConverted", False)
    return fields


def _create(state: SalesforceState, sobject: str, body: Any) -> str:
    fields = _prepare_create(state, sobject, body)
    return state.world.salesforce.insert(sobject, fields, at=state.world.clock())["Id"]


def create_record(state: SalesforceState, call: Call) -> dict[str, Any]:
    """``POST sobjects/{T}/``: 201 with the new id."""
    body = json_body(call)
    with state.world.lock:
        sobject = _sobject(state, call)
        return {"id": _create(state, sobject, body), "success": True, "errors": []}


def _result(rec_id: str | None, err: SalesforceError | None = None) -> dict[str, Any]:
    if err is None:
        return {"id": rec_id, "success": True, "errors": []}
    return {"id": rec_id, "success": False,
            "errors": [{"statusCode": err.code, "message": err.message, "fields": err.fields}]}


def collection(state: SalesforceState, call: Call, method: str) -> list[dict[str, Any]]:
    """``composite/sobjects``: create (POST) or update (PATCH) up to 200 records."""
    body = json_body(call)
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected {\"records\": [...]}")
    if len(records) > COLLECTION_LIMIT:
        raise SalesforceError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit "
                              f"more than {COLLECTION_LIMIT} records into this call")
    all_or_none = bool(body.get("allOrNone"))
    results: list[dict[str, Any]] = []
    with state.world.lock:
        org = state.world.salesforce
        # validate everything first, so allOrNone never has to undo a write
        planned: list[tuple[str, str | None, Record] | SalesforceError] = []
        for rec in records:
            try:
                planned.append(_plan(state, rec, method))
            except SalesforceError as err:
                planned.append(err)
        failed = any(isinstance(p, SalesforceError) for p in planned)
        rolled = SalesforceError(400, "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                 "Record rolled back because not all records were valid and "
                                 "the request was using AllOrNone header")
        for rec, plan in zip(records, planned, strict=True):
            rec_id = rec.get("Id") if isinstance(rec, dict) else None
            if isinstance(plan, SalesforceError):
                results.append(_result(rec_id if method == "PATCH" else None, plan))
            elif all_or_none and failed:
                results.append(_result(rec_id if method == "PATCH" else None, rolled))
            elif method == "POST":
                sobject, _, fields = plan
                results.append(_result(org.insert(sobject, fields, at=state.world.clock())["Id"]))
            else:
                sobject, target, fields = plan
                org.update(sobject, target or "", fields, at=state.world.clock())
                results.append(_result(target))
    return results


def _plan(state: SalesforceState, rec: Any, method: str) -> tuple[str, str | None, Record]:
    """(sobject, id, fields) of one collection record, or a SalesforceError."""
    if not isinstance(rec, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a record object")
    kind = (rec.get("attributes") or {}).get("type")
    sobject = state.schema.object_name(kind or "")
    if sobject is None:
        raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{kind}' is not supported.")
    if method == "POST":
        return sobject, None, _prepare_create(state, sobject, rec)
    rec_id = rec.get("Id")
    if not isinstance(rec_id, str):
        raise SalesforceError(400, "MISSING_ARGUMENT", "Id not specified in an update call",
                              ["Id"])
    _live(state, sobject, rec_id)
    return sobject, rec_id, _fields(state, sobject, {k: v for k, v in rec.items() if k != "Id"})
