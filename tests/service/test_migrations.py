"""The schema comes from Alembic, and models and migrations never drift apart."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import service.models  # noqa: F401
from service.migrate import current_revision, head_revision


def test_upgrade_head_builds_every_table(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert current_revision(engine) == head_revision()


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_sla_clocks_carry_only_the_indexes_their_writers_use(engine: Engine) -> None:
    """An index holding a clock's state would cost each clock the SLA scan moves an insertion
    into every index; the metric windows read the clock mirror, which has its own."""
    names = {
        ix["name"]
        for ix in inspect(engine).get_indexes("sla_clock")
        if "duplicates_constraint" not in ix  # PostgreSQL lists the unique key's own index
    }
    assert names == {"ix_sla_clock_open_due"}
    (open_due,) = [ix for ix in inspect(engine).get_indexes("sla_clock")
                   if ix["name"] == "ix_sla_clock_open_due"]
    assert open_due["column_names"] == ["due_at"]  # no state: the scan's moves stay in place
    mirror = {ix["name"] for ix in inspect(engine).get_indexes("metric_clock")}
    assert {"ix_metric_clock_due_at", "ix_metric_clock_kind_stopped_at"} <= mirror
