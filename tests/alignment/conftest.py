"""The app with the alignment routes, whether or not the factory mounts them yet."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from service.alignment.routes import router
from service.app import create_app
from service.settings import Settings


@pytest.fixture()
def app(settings: Settings, engine: Engine) -> FastAPI:
    app = create_app(settings, engine=engine)
    if not any(getattr(route, "path", "") == "/api/v1/alignment" for route in app.routes):
        app.include_router(router)
    return app
