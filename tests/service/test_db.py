"""How the service's database connections behave."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text


def test_postgres_statements_are_planned_for_their_values(engine: Engine) -> None:
    """psycopg prepares a statement on its fifth run and PostgreSQL may then keep one generic
    plan for it: for a metric's window or a first sync's tables, a plan that reads a whole
    table. Every connection the service opens asks for custom plans instead."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans every statement anyway")
    with engine.connect() as conn:
        assert conn.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"
