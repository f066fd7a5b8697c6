"""A control endpoint for a running sandbox: read and change its faults at run time."""

from __future__ import annotations

from dataclasses import fields

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.sandbox.faults import Faults

SETTABLE = tuple(f.name for f in fields(Faults) if not f.name.startswith("_") and f.name != "calls")


def create_control_app(faults: Faults) -> Starlette:
    """`GET /faults` shows them; `PUT /faults` with a JSON object changes the named ones."""

    def current() -> dict[str, object]:
        return {name: getattr(faults, name) for name in (*SETTABLE, "calls")}

    async def show(_: Request) -> JSONResponse:
        return JSONResponse(current())

    async def change(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body must be a JSON object"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"detail": "body must be a JSON object"}, status_code=400)
        unknown = sorted(set(body) - set(SETTABLE))
        if unknown:
            return JSONResponse({"detail": f"unknown faults: {', '.join(unknown)}; "
                                 f"known: {', '.join(SETTABLE)}"}, status_code=422)
        for name, value in body.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                return JSONResponse({"detail": f"{name} must be a number >= 0"},
                                    status_code=422)
            setattr(faults, name, type(getattr(faults, name))(value))
        return JSONResponse(current())

    return Starlette(routes=[Route("/faults", show, methods=["GET"]),
                             Route("/faults", change, methods=["PUT"])])
