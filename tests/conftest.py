"""Fixtures for both databases: TRUCE_TEST_DATABASE_URL picks PostgreSQL, else SQLite.

The schema is built once per run with ``alembic upgrade head`` (the production path); each
test starts from empty tables, so tests may commit freely and may use several processes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from service.app import create_app
from service.auth.models import Role, Team
from service.auth.service import create_key
from service.db import create_db_engine, unit_of_work
from service.migrate import upgrade
from service.settings import Settings, get_settings

ADMIN_KEY = "truce_test_admin_key_0123456789"


def _fresh_postgres(base_url: str) -> tuple[str, Callable[[], None]]:
    url = make_url(base_url)
    name = f"truce_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TRUCE_TEST_DATABASE_URL")
    if base and base.startswith("postgresql"):
        url, drop = _fresh_postgres(base)
        yield url
        drop()
        return
    path: Path = tmp_path_factory.mktemp("db") / "truce-test.db"
    yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    """The migrated database, emptied after each test."""
    yield migrated_engine
    tables = [t for t in reversed(SQLModel.metadata.sorted_tables)]
    with migrated_engine.begin() as conn:
        if migrated_engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # twice: deleting a table's rows fires triggers that append to others (the
            # metric counters), which may have been emptied already
            for t in tables + tables:
                conn.execute(t.delete())


@pytest.fixture()
def settings(database_url: str) -> Settings:
    return get_settings(database_url=database_url, admin_api_key=ADMIN_KEY,
                        _env_file=None)


@pytest.fixture()
def app(settings: Settings, engine: Engine):  # noqa: ANN201
    return create_app(settings, engine=engine)


@pytest.fixture()
def client(app) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture()
def make_key(engine: Engine) -> Callable[..., dict[str, str]]:
    """Create a key of a team and role; answer the headers that present it."""

    def _make(team: str = "ops", role: str = "viewer", name: str | None = None) -> dict[str, str]:
        with unit_of_work(engine) as session:
            _, key = create_key(session, name=name or f"{team}-{role}-{uuid.uuid4().hex[:6]}",
                                team=Team(team), role=Role(role))
        return {"Authorization": f"Bearer {key}"}

    return _make
