"""The Salesforce sandbox: a Starlette app that answers simple-salesforce as an org would.

Every call passes one guard that reads ``Faults`` afresh (latency, 503s, dropped connections),
checks the session and the daily API budget, and stamps ``Sforce-Limit-Info``. The endpoints
themselves live in ``salesforce_data`` (reads, paging, replication) and ``salesforce_records``
(writes). ``start_salesforce`` serves it over HTTPS on loopback with a fresh CA.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connectors.sandbox import salesforce_data as data
from connectors.sandbox import salesforce_records as records
from connectors.sandbox.faults import Faults
from connectors.sandbox.salesforce_auth import Credentials, TokenStore, oauth_token, soap_login
from connectors.sandbox.salesforce_schema import SalesforceSchema
from connectors.sandbox.salesforce_state import (
    Call,
    CursorStore,
    SalesforceError,
    SalesforceState,
    error_response,
)
from connectors.sandbox.server import RunningServer, serve_in_thread
from connectors.sandbox.tls import make_tls_files
from connectors.sandbox.world import World

Handler = Callable[[SalesforceState, Call], Any]
logger = logging.getLogger(__name__)
DATA = "/services/data/v{version}"


class DroppedConnection(Exception):
    """Raised on purpose mid-answer so the server closes the socket under the client."""


class _DroppingResponse(Response):
    """Send the status line, headers and half the body, then break the connection."""

    def __init__(self, inner: Response) -> None:
        super().__init__()
        body = bytes(inner.body) or b'[{"message":"'
        self.status_code = inner.status_code if inner.body else 200
        self.raw_headers = [(k, v) for k, v in inner.raw_headers if k != b"content-length"]
        self.raw_headers.append((b"content-length", str(len(body)).encode()))
        self.partial = body[: len(body) // 2]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})
        raise DroppedConnection("connection dropped by the sandbox fault plan")


class _QuietDrops(logging.Filter):
    """Keep the server log free of the tracebacks our own dropped connections cause."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, DroppedConnection):
                return False
            inner = getattr(exc, "exceptions", None)
            if inner and any(isinstance(e, DroppedConnection) for e in inner):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


def _call(request: Request, body: bytes) -> Call:
    return Call(
        version=request.path_params.get("version", ""),
        path={k: str(v) for k, v in request.path_params.items()},
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )


def _guard(state: SalesforceState, handler: Handler, *, status: int = 200,
           auth: bool = True) -> Callable[[Request], Any]:
    """Wrap a sync handler with faults, auth, the daily budget and the usage header."""

    async def endpoint(request: Request) -> Response:
        faults = state.faults
        n = faults.tick()
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        response = await _answer(state, handler, request, n, status, auth)
        response.headers["Sforce-Limit-Info"] = f"api-usage={state.api_used}/{state.daily_max}"
        if faults.should_drop(n):
            return _DroppingResponse(response)
        return response

    return endpoint


async def _answer(state: SalesforceState, handler: Handler, request: Request, n: int,
                  status: int, auth: bool) -> Response:
    if state.faults.should_fail(n):
        return error_response(503, "SERVER_UNAVAILABLE",
                              "Server temporarily unavailable, please retry later")
    if auth:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip() if scheme.lower() in ("bearer", "oauth") else ""
        if not state.tokens.valid(token, state.faults.token_ttl_seconds):
            return error_response(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if "version" in request.path_params and not state.version_ok(
                request.path_params["version"]):
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        used = state.count_call()
        if state.faults.daily_limit > 0 and used > state.faults.daily_limit:
            return error_response(403, "REQUEST_LIMIT_EXCEEDED",
                                  f"TotalRequests Limit exceeded. Used {used - 1} of "
                                  f"{state.faults.daily_limit}.")
    call = _call(request, await request.body())
    try:
        # the loop's default executor: it is shut down with the loop, so stop() is prompt
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, functools.partial(handler, state, call))
    except SalesforceError as err:
        return error_response(err.status, err.code, err.message, err.fields)
    except Exception:  # a sandbox bug still answers in Salesforce's shape
        logger.exception("salesforce sandbox handler failed")
        return error_response(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=204)
    return JSONResponse(result, status_code=status)


def _routes(state: SalesforceState) -> list[Route]:
    def both(path: str, handler: Handler, methods: list[str], **kw: Any) -> list[Route]:
        endpoint = _guard(state, handler, **kw)
        return [Route(path, endpoint, methods=methods),
                Route(path + "/", endpoint, methods=methods)]

    def instance(request_call: Call) -> str:
        host = request_call.headers.get("host", "127.0.0.1")
        return f"https://{host}"

    creds = state.creds
    return [
        *both("/services/data", lambda s, c: data.versions(s), ["GET"], auth=False),
        *both(DATA, lambda s, c: {name: f"/services/data/v{c.version}/{name}"
                                  for name in ("sobjects", "query", "queryAll", "limits")},
              ["GET"]),
        *both(f"{DATA}/limits", lambda s, c: data.limits(s), ["GET"]),
        *both(f"{DATA}/sobjects", data.describe_global, ["GET"]),
        *both(f"{DATA}/sobjects/{{sobject}}", data.sobject_info, ["GET"]),
        *both(f"{DATA}/sobjects/{{sobject}}", records.create_record, ["POST"], status=201),
        *both(f"{DATA}/sobjects/{{sobject}}/describe", data.describe, ["GET"]),
        *both(f"{DATA}/sobjects/{{sobject}}/deleted",
              lambda s, c: data.replication(s, c, "deleted"), ["GET"]),
        *both(f"{DATA}/sobjects/{{sobject}}/updated",
              lambda s, c: data.replication(s, c, "updated"), ["GET"]),
        *both(f"{DATA}/sobjects/{{sobject}}/{{record_id}}", records.get_record, ["GET"]),
        *both(f"{DATA}/sobjects/{{sobject}}/{{record_id}}", records.update_record, ["PATCH"]),
        *both(f"{DATA}/sobjects/{{sobject}}/{{record_id}}", records.delete_record, ["DELETE"]),
        *both(f"{DATA}/composite/sobjects",
              lambda s, c: records.collection(s, c, "POST"), ["POST"]),
        *both(f"{DATA}/composite/sobjects",
              lambda s, c: records.collection(s, c, "PATCH"), ["PATCH"]),
        *[r for kind in ("query", "queryAll") for r in (
            *both(f"{DATA}/{kind}", lambda s, c, k=kind: data.query(s, c, k), ["GET"]),
            *both(f"{DATA}/{kind}/{{locator}}",
                  lambda s, c, k=kind: data.query_more(s, c, k), ["GET"]),
        )],
        *both("/services/oauth2/token",
              lambda s, c: oauth_token(c.body, c.headers.get("authorization"), instance(c),
                                       creds, s.tokens), ["POST"], auth=False),
        *both("/services/Soap/u/{version}",
              lambda s, c: soap_login(c.body, instance(c), c.version, creds, s.tokens),
              ["POST"], auth=False),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        return error_response(405, "METHOD_NOT_ALLOWED",
                              f"HTTP Method '{request.method}' not allowed.")
    return error_response(status, "NOT_FOUND", "The requested resource does not exist")


def create_salesforce_app(
    world: World,
    faults: Faults,
    *,
    api_version: str = "62.0",
    access_token: str = "00DSANDBOX!sandbox-token",
    client_id: str = "sandbox-client",
    client_secret: str = "sandbox-secret",
    username: str = "admin@sandbox.example",
    password: str = "sandbox-pass",
    locator_idle_seconds: float = 15 * 60,
    max_open_cursors: int = 10,
    timer: Callable[[], float] = time.monotonic,
) -> Starlette:
    """Build the app over ``world``; ``timer`` drives token and locator expiry (tests fake it)."""
    state = SalesforceState(
        world=world,
        faults=faults,
        api_version=api_version,
        access_token=access_token,
        creds=Credentials(client_id, client_secret, username, password),
        tokens=TokenStore(access_token, timer),
        cursors=CursorStore(locator_idle_seconds, max_open_cursors, timer),
        schema=SalesforceSchema(world.salesforce),
        timer=timer,
    )
    app = Starlette(routes=_routes(state),
                    exception_handlers={404: _http_error, 405: _http_error})
    app.state.salesforce = state
    return app


@dataclass
class SalesforceServer(RunningServer):
    """A running sandbox whose ``stop()`` does not wait out idle TLS keep-alive sockets."""

    app: Starlette | None = field(default=None, repr=False)
    tls_dir: str | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=1)
            # a TLS close waits for the peer's close_notify, which pooled clients never send
            self._server.force_exit = True
            self._thread.join(timeout=10)
        if self.tls_dir:
            shutil.rmtree(self.tls_dir, ignore_errors=True)


_filter_installed = False


def start_salesforce(world: World, faults: Faults | None = None, *, port: int = 0,
                     **kwargs: Any) -> RunningServer:
    """Serve the sandbox over HTTPS on 127.0.0.1 with a CA generated for this run."""
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
        _filter_installed = True
    faults = faults if faults is not None else Faults()
    app = create_salesforce_app(world, faults, **kwargs)
    tls = make_tls_files()
    server, thread, bound = serve_in_thread(app, port=port, ssl_certfile=tls.cert_path,
                                            ssl_keyfile=tls.key_path)
    state: SalesforceState = app.state.salesforce
    return SalesforceServer(
        url=f"https://127.0.0.1:{bound}",
        access_token=state.access_token,
        ca_path=tls.ca_path,
        extra={"client_id": state.creds.client_id, "client_secret": state.creds.client_secret,
               "username": state.creds.username, "password": state.creds.password},
        _server=server,
        _thread=thread,
        app=app,
        tls_dir=tls.directory,
    )
