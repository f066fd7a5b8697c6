"""The HubSpot sandbox: CRM v3 objects, v4 associations, owners, properties and OAuth refresh.

It answers the unmodified hubspot-api-client over plain http on 127.0.0.1 with HubSpot's
shapes, limits and failures, serving a ``World`` that generators and live mode fill.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.sandbox import hubspot_objects as objects
from connectors.sandbox.faults import Faults
from connectors.sandbox.hubspot_assoc import labels
from connectors.sandbox.hubspot_guard import TOKEN_PATH, Guard, TokenStore
from connectors.sandbox.hubspot_meta import (
    deal_pipelines,
    get_owner,
    list_owners,
    property_definitions,
)
from connectors.sandbox.hubspot_objects import HubSpotState, read_json
from connectors.sandbox.hubspot_wire import (
    WireError,
    correlation_id,
    error_response,
    iso,
    json_response,
    query_bool,
    query_int,
    resolve_type,
)
from connectors.sandbox.server import RunningServer, serve_in_thread
from connectors.sandbox.world import World

Handler = Callable[[HubSpotState, Request], Response | Awaitable[Response]]
DEFAULT_TOKEN = "pat-sandbox-token"
DEFAULT_REFRESH_TOKEN = "sandbox-refresh-token"
MAX_V4_PAGE = 500
MAX_V4_BATCH = 1000


def _assoc_page(state: HubSpotState, request: Request) -> Response:
    """``GET /crm/v4/objects/{from}/{id}/associations/{to}``."""
    from_type = resolve_type(request.path_params["from_type"])
    to_type = resolve_type(request.path_params["to_type"])
    params = request.query_params
    limit = max(1, min(query_int(params, "limit", MAX_V4_PAGE), MAX_V4_PAGE))
    after = params.get("after")
    with state.world.lock:
        rec = state.resolve(from_type, request.path_params["object_id"])
        rows = state.assoc.v4(from_type, rec["id"], to_type)
    start = 0
    if after:
        start = next((i + 1 for i, r in enumerate(rows) if str(r["toObjectId"]) == after), 0)
    body: dict[str, Any] = {"results": rows[start:start + limit]}
    if start + limit < len(rows):
        body["paging"] = {"next": {"after": str(rows[start + limit - 1]["toObjectId"])}}
    return json_response(body)


async def _assoc_batch(state: HubSpotState, request: Request) -> Response:
    """``POST /crm/v4/associations/{from}/{to}/batch/read``."""
    from_type = resolve_type(request.path_params["from_type"])
    to_type = resolve_type(request.path_params["to_type"])
    inputs = (await read_json(request)).get("inputs") or []
    if len(inputs) > MAX_V4_BATCH:
        raise WireError(400, f"Batch input is limited to {MAX_V4_BATCH} inputs; got "
                        f"{len(inputs)}.", "VALIDATION_ERROR")
    started = state.now()
    results, empty = [], []
    with state.world.lock:
        for item in inputs:
            from_id = str((item or {}).get("id") or "")
            rows = state.assoc.v4(from_type, from_id, to_type)
            if rows:
                results.append({"from": {"id": from_id}, "to": rows})
            else:
                empty.append(from_id)
    body: dict[str, Any] = {"status": "COMPLETE", "results": results,
                            "startedAt": iso(started), "completedAt": iso(state.now())}
    if not empty:
        return json_response(body)
    body["numErrors"] = len(empty)
    body["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                       "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                       "message": f"No {to_type} is associated with {from_type} {i}.",
                       "context": {"fromObjectId": [i]}} for i in empty]
    return json_response(body, 207)


def _assoc_labels(state: HubSpotState, request: Request) -> Response:
    from_type = resolve_type(request.path_params["from_type"])
    to_type = resolve_type(request.path_params["to_type"])
    return json_response({"results": labels(from_type, to_type)})


def _owners(state: HubSpotState, request: Request) -> Response:
    params = request.query_params
    with state.world.lock:
        body = list_owners(state.world.hubspot, limit=query_int(params, "limit", 100),
                           after=params.get("after"), email=params.get("email"),
                           archived=query_bool(params, "archived"))
    return json_response(body)


def _owner(state: HubSpotState, request: Request) -> Response:
    params = request.query_params
    with state.world.lock:
        body = get_owner(state.world.hubspot, request.path_params["owner_id"],
                         id_property=params.get("idProperty") or "id",
                         archived=query_bool(params, "archived"))
    return json_response(body)


def _properties(state: HubSpotState, request: Request) -> Response:
    object_type = resolve_type(request.path_params["object_type"])
    with state.world.lock:
        found = property_definitions(state.world.hubspot, object_type)
    name = request.path_params.get("name")
    if name is None:
        return json_response({"results": found})
    for prop in found:
        if prop["name"] == name:
            return json_response(prop)
    raise WireError(404, f"Unable to find property {name} for object type {object_type}",
                    "OBJECT_NOT_FOUND")


def _pipelines(state: HubSpotState, request: Request) -> Response:
    if resolve_type(request.path_params["object_type"]) != "deals":
        return json_response({"results": []})
    return json_response({"results": deal_pipelines()})


def _token_route(tokens: TokenStore, faults: Faults) -> Callable[[Request], Awaitable[Response]]:
    """``POST /oauth/v1/token``: the refresh grant, answering a fresh access token."""

    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return json_response({"status": "BAD_GRANT_TYPE", "message": "unsupported grant "
                                  "type; this sandbox only refreshes tokens",
                                  "correlationId": correlation_id()}, 400)
        refresh = form.get("refresh_token")
        if not tokens.knows_refresh(refresh):
            return json_response({"status": "BAD_REFRESH_TOKEN", "message": "missing or "
                                  "unknown refresh token", "correlationId": correlation_id()},
                                 400)
        ttl = int(faults.token_ttl_seconds) if faults.token_ttl_seconds > 0 else 1800
        return json_response({"token_type": "bearer", "refresh_token": refresh,
                              "access_token": tokens.issue(), "expires_in": ttl})

    return token


def _bind(state: HubSpotState, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        result = handler(state, request)
        if isinstance(result, Response):
            return result
        return await result

    return endpoint


async def _wire_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WireError)
    return error_response(exc.status, exc.message, exc.category, **exc.extra)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(405, f"{request.method} is not supported on {request.url.path}",
                              "METHOD_NOT_ALLOWED")
    return error_response(exc.status_code, f"Unknown route {request.url.path}",
                          "OBJECT_NOT_FOUND" if exc.status_code == 404 else "VALIDATION_ERROR")


def create_hubspot_app(world: World, faults: Faults, *, access_token: str = DEFAULT_TOKEN,
                       search_result_cap: int = 10_000, search_lag_seconds: float = 0,
                       refresh_token: str = DEFAULT_REFRESH_TOKEN, webhooks: Any = None,
                       timer: Callable[[], float] = time.monotonic) -> Starlette:
    """A Starlette app serving ``world.hubspot``; ``app.state.hubspot`` holds the tunables.

    ``timer`` drives token expiry and the rate-limit windows, so tests can step it by hand.
    """
    state = HubSpotState(world, search_result_cap=search_result_cap,
                         search_lag_seconds=search_lag_seconds, webhooks=webhooks)
    tokens = TokenStore(access_token, refresh_token, timer)
    base = "/crm/v3/objects/{object_type}"
    v4 = "/crm/v4/associations/{from_type}/{to_type}"
    routes = [
        Route(base, _bind(state, objects.list_objects), methods=["GET"]),
        Route(base, _bind(state, objects.create_object), methods=["POST"]),
        Route(base + "/search", _bind(state, objects.search_objects), methods=["POST"]),
        Route(base + "/batch/read", _bind(state, objects.batch_read), methods=["POST"]),
        Route(base + "/merge", _bind(state, objects.merge_objects), methods=["POST"]),
        Route(base + "/{object_id}", _bind(state, objects.get_object), methods=["GET"]),
        Route(base + "/{object_id}", _bind(state, objects.update_object), methods=["PATCH"]),
        Route(base + "/{object_id}", _bind(state, objects.archive_object), methods=["DELETE"]),
        Route("/crm/v4/objects/{from_type}/{object_id}/associations/{to_type}",
              _bind(state, _assoc_page), methods=["GET"]),
        Route(v4 + "/batch/read", _bind(state, _assoc_batch), methods=["POST"]),
        Route(v4 + "/labels", _bind(state, _assoc_labels), methods=["GET"]),
        Route("/crm/v3/owners", _bind(state, _owners), methods=["GET"]),
        Route("/crm/v3/owners/{owner_id}", _bind(state, _owner), methods=["GET"]),
        Route("/crm/v3/properties/{object_type}", _bind(state, _properties), methods=["GET"]),
        Route("/crm/v3/properties/{object_type}/{name}", _bind(state, _properties),
              methods=["GET"]),
        Route("/crm/v3/pipelines/{object_type}", _bind(state, _pipelines), methods=["GET"]),
        Route(TOKEN_PATH, _token_route(tokens, faults), methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={WireError: _wire_error,
                                                       HTTPException: _http_error})
    app.router.redirect_slashes = False
    app.state.hubspot = state
    app.state.tokens = tokens
    app.add_middleware(_GuardMiddleware, faults=faults, tokens=tokens, timer=timer)
    return app


class _GuardMiddleware:
    """Adapter so ``Guard`` sits outermost, in front of Starlette's own error handling."""

    def __init__(self, app: Any, faults: Faults, tokens: TokenStore,
                 timer: Callable[[], float]) -> None:
        self.guard = Guard(app, faults, tokens, timer)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.guard(scope, receive, send)


def start_hubspot(world: World, faults: Faults | None = None, *, port: int = 0,
                  **kwargs: Any) -> RunningServer:
    """Serve the sandbox on http://127.0.0.1:PORT in a background thread."""
    app = create_hubspot_app(world, faults or Faults(), **kwargs)
    server, thread, bound = serve_in_thread(app, port=port)
    return RunningServer(url=f"http://127.0.0.1:{bound}",
                         access_token=kwargs.get("access_token", DEFAULT_TOKEN),
                         extra={"app": app, "state": app.state.hubspot,
                                "refresh_token": kwargs.get("refresh_token",
                                                            DEFAULT_REFRESH_TOKEN)},
                         _server=server, _thread=thread)


__all__ = ["create_hubspot_app", "start_hubspot"]
