"""Set-based statements the sync's page path shares, written once for both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
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
    for i in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[i:i + CHUNK])
