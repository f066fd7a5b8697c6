"""The FastAPI application factory."""

from __future__ import annotations

import gc
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException

from metrics.prometheus import register_gauges
from metrics.routes import router as metrics_router
from service import observability
from service.alignment.routes import router as alignment_router
from service.alignment.service import ReadLedger
from service.auth.routes import router as keys_router
from service.dashboard import router as dashboard_router
from service.db import create_db_engine
from service.definitions.routes import router as definitions_router
from service.errors import ErrorBody, TruceError
from service.handoffs.commitment_routes import router as commitments_router
from service.handoffs.directory_routes import router as directory_router
from service.handoffs.routes import router as handoffs_router
from service.handoffs.webhook_routes import router as hubspot_webhooks_router
from service.migrate import current_revision, head_revision
from service.people.routes import router as persons_router
from service.settings import Settings, get_settings
from service.sync.routes import router as sync_router


def create_served_app() -> FastAPI:
    """The factory ``truce serve`` gives uvicorn: the app, then its start-up heap frozen."""
    app = create_app()
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Move what start-up allocated (modules, routes, schemas, models) out of the cyclic
    collector's sight: otherwise each full collection walks all of it, a pause of tens of
    milliseconds that lands on whichever request happens to trigger it."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app; nothing is read or connected until this is called."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Truce",
        version="0.1.0",
        description="One lead definition, one handoff clock and one set of revenue metrics "
        "for Sales and Marketing.",
    )
    app.state.settings = settings
    app.state.engine = engine or create_db_engine(settings.database_url)
    app.state.metrics = observability.Metrics()
    app.state.metric_reads = ReadLedger()
    observability.install(app, app.state.metrics)
    register_gauges(app.state.metrics.registry, app.state.engine)
    _install_error_handlers(app)
    _document_error_responses(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "not ready"}})
    def readyz() -> JSONResponse:
        """Ready when the database answers and its schema is at the latest migration."""
        try:
            with app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            current = current_revision(app.state.engine)
        except Exception as exc:  # noqa: BLE001 - any database failure means "not ready"
            return JSONResponse({"status": "unavailable", "detail": str(exc)[:200]}, 503)
        head = head_revision()
        body = {"status": "ok" if current == head else "migrations pending",
                "schema": current, "latest": head}
        return JSONResponse(body, 200 if current == head else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics() -> Any:
        return app.state.metrics.render()

    # the routers dashboards poll come first: a request's path is tried against each
    # router's routes in turn (no two routers share a path)
    for router in (metrics_router, handoffs_router, alignment_router, keys_router,
                   sync_router, persons_router, definitions_router, commitments_router,
                   directory_router, hubspot_webhooks_router, dashboard_router):
        app.include_router(router)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TruceError)
    async def _truce_error(_: Request, exc: TruceError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail()}, status_code=exc.status,
                            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    # FastAPI answers 400 to a body it cannot decode (bytes that are not UTF-8 JSON) but 422
    # to one that is not JSON; both are invalid input, answered like every other: a 422.
    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Any:
        if exc.status_code == 400:
            problem = {"loc": ["body"], "msg": f"{exc.detail}: send UTF-8 JSON",
                       "type": "json_invalid"}
            return JSONResponse({"detail": [problem]}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse({"detail": "conflicts with existing data"}, status_code=409)

    # Input the validators let through but the database cannot take, to store or to compare
    # with: a NUL character in text (PostgreSQL), an integer beyond the column's range, a
    # string longer than its column. Invalid input, so a 422; the transaction rolled back.
    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONResponse:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        return JSONResponse({"detail": f"a value the database cannot take: {reason}"},
                            status_code=422)

    @app.exception_handler(OverflowError)  # SQLite's form of "integer out of range"
    async def _overflow_error(_: Request, exc: OverflowError) -> JSONResponse:
        return JSONResponse({"detail": f"a value the database cannot take: {exc}"},
                            status_code=422)


ERROR_RESPONSES = {
    401: "no API key, or an unknown or revoked one",
    403: "the key's role or team may not do this",
    404: "nothing with that id",
    409: "conflicts with the current state or existing data",
    422: "invalid input; `detail` names the field when it can",
}


def _document_error_responses(app: FastAPI) -> None:
    """Declare the errors every operation can answer, with their one body shape.

    Done when the schema is first built, so routers mounted after the factory are covered.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        schema = build()
        if not first:
            return schema
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(error.pop("$defs", {}))
        schemas["ErrorBody"] = error
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                codes = []
                if operation.get("security"):
                    codes += [401, 403]
                if "{" in path:
                    codes.append(404)
                if method != "get" and operation.get("security"):
                    codes.append(409)
                if operation.get("parameters") or operation.get("requestBody"):
                    codes.append(422)
                responses = operation.setdefault("responses", {})
                for code in codes:
                    entry = responses.setdefault(str(code), {"description": ERROR_RESPONSES[code]})
                    entry["content"] = content
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
