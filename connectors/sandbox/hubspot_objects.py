"""CRM v3 object routes: list, read, batch read, search, create, update, archive, merge.

Every handler takes ``world.lock`` while it touches the portal, so live-mode writers in other
threads never change a table mid-iteration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from connectors.sandbox.hubspot_assoc import AssociationIndex, plan_links
from connectors.sandbox.hubspot_meta import ENUMERATIONS
from connectors.sandbox.hubspot_search import search
from connectors.sandbox.hubspot_wire import (
    OBJECT_TYPES,
    SINGULAR,
    WireError,
    body_list,
    decode_cursor,
    encode_cursor,
    iso,
    json_response,
    query_bool,
    query_int,
    query_list,
    render_object,
    resolve_type,
)
from connectors.sandbox.store import Bounds
from connectors.sandbox.world import Record, World

MAX_PAGE = 100
MAX_HISTORY_PAGE = 50
MAX_BATCH = 100


def id_key(rec_id: str) -> int | str:
    """How the store orders ids: numbers as numbers, before any non-numeric id."""
    return int(rec_id) if rec_id.isdigit() else rec_id


@dataclass
class HubSpotState:
    """What the routes share: the world, the sender to notify, and a few tunables."""

    world: World
    search_result_cap: int = 10_000
    search_lag_seconds: float = 0
    webhooks: Any = None  # a WebhookSender, told about every write made through the API
    assoc: AssociationIndex = field(init=False)

    def __post_init__(self) -> None:
        self.assoc = AssociationIndex(self.world.hubspot)

    def resolve(self, object_type: str, rec_id: str, *, archived: bool = False,
                id_property: str | None = None) -> Record:
        """The live record for an id, following merges to the survivor; 404 otherwise."""
        table = self.world.hubspot.table(object_type)
        rec: Record | None = None
        if id_property and id_property != "hs_object_id":
            wanted = rec_id.lower()
            rec = next((r for r in table.values()
                        if (r["properties"].get(id_property) or "").lower() == wanted), None)
        else:
            seen = set()
            while rec_id in self.world.hubspot.merged_into and rec_id not in seen:
                seen.add(rec_id)
                rec_id = self.world.hubspot.merged_into[rec_id]
            rec = table.get(rec_id)
        if rec is None or bool(rec["archived"]) != archived:
            raise WireError(404, "Object not found.  objectId are usually numeric.",
                            "OBJECT_NOT_FOUND", context={"id": [rec_id]})
        return rec

    def now(self) -> datetime:
        return self.world.clock()


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        raise WireError(400, f"Invalid input JSON on line {line}, column {col}: {exc}",
                        "VALIDATION_ERROR") from None


def _associations(state: HubSpotState, object_type: str, rec_id: str, names: list[str]
                  ) -> dict[str, list[dict[str, str]]]:
    out = {}
    for name in names:
        to_type = resolve_type(name)
        links = state.assoc.v3(object_type, rec_id, to_type)
        if links:
            out[to_type] = links
    return out


def list_objects(state: HubSpotState, request: Request) -> Response:
    """``GET /crm/v3/objects/{type}``: id order, an opaque cursor, archived rows on request."""
    object_type = resolve_type(request.path_params["object_type"])
    params = request.query_params
    props = query_list(params, "properties")
    history = query_list(params, "propertiesWithHistory")
    assoc_names = query_list(params, "associations")
    archived = query_bool(params, "archived")
    cap = MAX_HISTORY_PAGE if history else MAX_PAGE
    limit = max(1, min(query_int(params, "limit", 10), cap))
    after = params.get("after")
    with state.world.lock:
        table = state.world.hubspot.table(object_type)
        bounds = Bounds(gone=int(archived), ik_lo=id_key(decode_cursor(after)) if after else None,
                        ik_lo_open=True)
        page = list(islice(table.ordered("ik", bounds), limit + 1))
        more = len(page) > limit
        del page[limit:]
        results = [render_object(object_type, r, props, history,
                                 _associations(state, object_type, r["id"], assoc_names))
                   for r in page]
    body: dict[str, Any] = {"results": results}
    if more:
        token = encode_cursor(page[-1]["id"])
        query = [(k, v) for k, v in params.multi_items() if k != "after"] + [("after", token)]
        link = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(query)}"
        body["paging"] = {"next": {"after": token, "link": link}}
    return json_response(body)


def get_object(state: HubSpotState, request: Request) -> Response:
    object_type = resolve_type(request.path_params["object_type"])
    params = request.query_params
    with state.world.lock:
        rec = state.resolve(object_type, request.path_params["object_id"],
                            archived=query_bool(params, "archived"),
                            id_property=params.get("idProperty"))
        body = render_object(object_type, rec, query_list(params, "properties"),
                             query_list(params, "propertiesWithHistory"),
                             _associations(state, object_type, rec["id"],
                                           query_list(params, "associations")))
    return json_response(body)


async def batch_read(state: HubSpotState, request: Request) -> Response:
    """Found records in input order; missing ids come back as errors with a 207."""
    object_type = resolve_type(request.path_params["object_type"])
    body = await read_json(request)
    inputs = body.get("inputs") or []
    if len(inputs) > MAX_BATCH:
        raise WireError(400, f"Batch input is limited to {MAX_BATCH} inputs; got "
                        f"{len(inputs)}.", "VALIDATION_ERROR")
    started = state.now()
    props = body_list(body.get("properties"))
    history = body_list(body.get("propertiesWithHistory"))
    archived = query_bool(request.query_params, "archived")
    results, missing = [], []
    with state.world.lock:
        for item in inputs:
            rec_id = str((item or {}).get("id") or "")
            try:
                rec = state.resolve(object_type, rec_id, archived=archived,
                                    id_property=body.get("idProperty"))
            except WireError:
                missing.append(rec_id)
                continue
            results.append(render_object(object_type, rec, props, history))
    answer: dict[str, Any] = {"status": "COMPLETE", "results": results,
                              "startedAt": iso(started), "completedAt": iso(state.now())}
    if not missing:
        return json_response(answer)
    label = SINGULAR[object_type].upper()
    answer["numErrors"] = 1
    answer["errors"] = [{
        "status": "error", "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {label} objects, they may be deleted or not exist. "
                   "Check that ids are valid.",
        "context": {"ids": missing}}]
    return json_response(answer, 207)


async def search_objects(state: HubSpotState, request: Request) -> Response:
    object_type = resolve_type(request.path_params["object_type"])
    body = await read_json(request)
    props = body_list(body.get("properties"))
    with state.world.lock:
        page, total, following = search(
            state.world.hubspot.table(object_type), object_type, body, now=state.now(),
            lag_seconds=state.search_lag_seconds, cap=state.search_result_cap)
        results = [render_object(object_type, r, props) for r in page]
    answer: dict[str, Any] = {"total": total, "results": results}
    if following is not None:
        answer["paging"] = {"next": {"after": str(following)}}
    return json_response(answer)


def _clean_properties(raw: Any, rec: Record | None = None) -> dict[str, Any]:
    """Reject non-scalar values and picklist values the portal does not define."""
    if not isinstance(raw, dict):
        raise WireError(400, "properties must be an object of name to value",
                        "VALIDATION_ERROR")
    invalid = []
    for name, value in raw.items():
        if isinstance(value, (dict, list)):
            invalid.append((name, f"{value!r} is not a valid property value", "INVALID_VALUE"))
        elif name in ENUMERATIONS and value not in (None, ""):
            allowed = set(ENUMERATIONS[name])
            if rec is not None:
                allowed |= {v for v, _ in rec["history"].get(name, []) if v}
            if str(value) not in allowed:
                invalid.append((name, f'"{value}" was not one of the allowed options: '
                                f"[{', '.join(ENUMERATIONS[name])}]", "INVALID_OPTION"))
    if invalid:
        detail = json.dumps([{"isValid": False, "message": m, "error": e, "name": n}
                             for n, m, e in invalid])
        raise WireError(400, f"Property values were not valid: {detail}", "VALIDATION_ERROR")
    return {k: v for k, v in raw.items() if k != "hs_object_id"}


async def create_object(state: HubSpotState, request: Request) -> Response:
    object_type = resolve_type(request.path_params["object_type"])
    body = await read_json(request)
    props = _clean_properties(body.get("properties") or {})
    with state.world.lock:
        portal = state.world.hubspot
        links = plan_links(portal, object_type, body.get("associations") or [])
        at = state.now()
        rec = portal.insert(object_type, dict(props), at=at)
        for to_type, to_id, type_id in links:
            portal.associate(object_type, rec["id"], to_type, to_id, type_id)
        answer = render_object(object_type, rec, list(props))
    if state.webhooks is not None:
        state.webhooks.record_creation(object_type, rec["id"], at)
    return json_response(answer, 201)


async def update_object(state: HubSpotState, request: Request) -> Response:
    object_type = resolve_type(request.path_params["object_type"])
    body = await read_json(request)
    params = request.query_params
    with state.world.lock:
        rec = state.resolve(object_type, request.path_params["object_id"],
                            id_property=params.get("idProperty"))
        props = _clean_properties(body.get("properties") or {}, rec)
        before = dict(rec["properties"])
        at = state.now()
        rec = state.world.hubspot.update(object_type, rec["id"], props, at=at)
        changed = [(k, rec["properties"].get(k)) for k in props
                   if before.get(k) != rec["properties"].get(k)]
        answer = render_object(object_type, rec, list(props))
    if state.webhooks is not None:
        for name, value in changed:
            state.webhooks.record_change(object_type, rec["id"], name, value, at)
    return json_response(answer)


def archive_object(state: HubSpotState, request: Request) -> Response:
    object_type = resolve_type(request.path_params["object_type"])
    with state.world.lock:
        rec = state.resolve(object_type, request.path_params["object_id"])
        at = state.now()
        state.world.hubspot.archive(object_type, rec["id"], at=at)
    if state.webhooks is not None:
        state.webhooks.record_deletion(object_type, rec["id"], at)
    return Response(status_code=204)


async def merge_objects(state: HubSpotState, request: Request) -> Response:
    """Merge two records; the survivor keeps its id and lists the loser's."""
    object_type = resolve_type(request.path_params["object_type"])
    body = await read_json(request)
    primary_id = str(body.get("primaryObjectId") or "")
    loser_id = str(body.get("objectIdToMerge") or "")
    if not primary_id or not loser_id or primary_id == loser_id:
        raise WireError(400, "primaryObjectId and objectIdToMerge must name two different "
                        "objects", "VALIDATION_ERROR")
    with state.world.lock:
        portal = state.world.hubspot
        primary = state.resolve(object_type, primary_id)
        loser = state.resolve(object_type, loser_id)
        if primary["id"] == loser["id"]:
            raise WireError(400, "Objects are already merged", "VALIDATION_ERROR")
        at = state.now()
        portal.merge(object_type, primary["id"], loser["id"], at=at)
        portal.move_links(object_type, loser["id"], primary["id"])
        answer = render_object(object_type, primary, ["hs_merged_object_ids"])
    if state.webhooks is not None:
        state.webhooks.record_merge(object_type, primary["id"], [loser["id"]], at)
    return json_response(answer)


__all__ = ["OBJECT_TYPES", "HubSpotState", "archive_object", "batch_read", "create_object",
           "get_object", "list_objects", "merge_objects", "search_objects", "update_object"]
