"""Engines, sessions and the column types every table shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite keeps no zone, so it stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """SQLite gets WAL and foreign keys; PostgreSQL goes through psycopg 3, with custom
    plans."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        memory = database in ("", ":memory:")
        if not memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # Every statement is planned for its values: psycopg prepares a statement on its fifth
    # run, and the server may then settle on one generic plan for it, which for a window's
    # dates or a first sync's empty tables can read a whole table (a metric read went from
    # 0.5 to 12 ms on its eleventh call). Planning each time costs a fraction of a ms.
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10,
                         connect_args={"options": "-c plan_cache_mode=force_custom_plan"})


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One session for a job or a request: commit on success, roll back on any error."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    except BaseException:
        end_unit_of_work(session, failed=True)
        raise
    end_unit_of_work(session, failed=False)


def end_unit_of_work(session: Session, *, failed: bool) -> None:
    """Commit unless the work failed, then close (which rolls back whatever is not committed,
    a failed commit included): the end of a unit of work."""
    try:
        if not failed:
            session.commit()
    finally:
        session.close()


def commit_without_flush(session: Session) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL).

    For writes whose loss in a server crash costs nothing worth the wait: the database stays
    consistent (WAL order is kept), and the transaction is simply as if it had not run.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


def utc_field(*, nullable: bool = False, now: bool = False, index: bool = False) -> Any:
    """A SQLModel field stored as :class:`UTCDateTime` (``now`` defaults it to the present)."""
    from sqlalchemy import Column
    from sqlmodel import Field

    column = Column(UTCDateTime(), nullable=nullable, index=index)
    if now:
        return Field(default_factory=utcnow, sa_column=column)
    return Field(default=None, sa_column=column)
