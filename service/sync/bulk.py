"""Set-based statements the sync's page path shares, written once for both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import JSON, ColumnElement, any_, bindparam, insert, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

CHUNK = 1000  # rows per statement: well under both databases' bound-parameter limits


def among(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL one array parameter (``= ANY``).

    A page's IN list holds up to a few thousand keys, and PostgreSQL's driver parses a
    statement with that many placeholders afresh each time (its length varies): the array
    form is one constant statement whatever the page holds.
    """
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def custom_plans(session: Session) -> None:
    """Plan this transaction's statements for their actual values (PostgreSQL).

    The page's statements are the same text every page, so the driver prepares them and the
    server may settle on one generic plan, made while a first sync's tables were still
    empty: a sequential scan that grows with every page. Planning each time costs far less.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def upsert(session: Session, table: Any, rows: list[dict[str, Any]], *,
           update: Callable[[Any], dict[str, Any]] | None = None) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE with what ``update`` makes of ``excluded``
    (DO NOTHING without it), in executemany batches."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    columns = update(stmt.excluded) if update is not None else None
    if columns:
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_=columns)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["key"])
    if dialect == "postgresql":
        _executemany_pg(session, stmt, table, rows)
        return
    for i in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[i:i + CHUNK])


def insert_many(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """A plain executemany INSERT, by psycopg itself on PostgreSQL (see ``_executemany_pg``)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _executemany_pg(session, insert(table), table, rows)
    else:
        session.execute(insert(table), rows)


def _executemany_pg(session: Session, stmt: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """psycopg's own pipelined executemany on the session's connection and transaction.

    SQLAlchemy's per-row parameter processing costs about a third of a bulk write here, and
    the values need none: datetimes are aware (psycopg sends the offset) and JSON columns are
    wrapped for psycopg as SQLAlchemy would.
    """
    names = list(rows[0])
    compiled = stmt.compile(dialect=session.get_bind().dialect, column_keys=names,
                            for_executemany=True)
    defaults = {}
    for column in compiled.insert_prefetch:  # columns the rows leave to their default
        if column.key not in names:
            if not (column.default is not None and column.default.is_scalar):
                raise ValueError(f"{table.name}.{column.key} needs a value in every row")
            defaults[column.key] = column.default.arg
    json_columns = [n for n in names if isinstance(table.c[n].type, JSON)]
    rows = [{**defaults, **row, **{n: Jsonb(row[n]) for n in json_columns if row[n] is not None}}
            for row in rows]
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        cursor.executemany(str(compiled), rows)
