"""Set-based statements the sync's page path shares, written once for both databases."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Integer,
    SmallInteger,
    String,
    any_,
    bindparam,
    cast,
    column,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import table as sa_table
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.types import NullType, TypeDecorator
from sqlmodel import Session

CHUNK = 1000  # rows per statement: well under both databases' bound-parameter limits
COPY_FROM = 50  # rows from which PostgreSQL writes stream through COPY instead of executemany


def among(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL one array parameter (``= ANY``).

    A page's IN list holds up to a few thousand keys, and PostgreSQL's driver parses a
    statement with that many placeholders afresh each time (its length varies): the array
    form is one constant statement whatever the page holds. The array goes as its text form,
    cast by the server: psycopg's list adaptation costs ten times as much per element.
    """
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        # untyped, so the server reads the text as the array itself: a constant the planner
        # sees through, where a cast from text at run time hides the values from it
        literal = bindparam(None, array_literal(values), type_=NullType())
        return column == any_(cast(literal, ARRAY(column.type)))
    return column.in_(values)


def array_literal(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of a one-dimensional array: ``{"a","b"}``, NULL for None."""
    values = list(values)
    if all(type(v) is str for v in values):  # a page's keys: quoted in one join when plain
        plain = "".join(values)  # (the joined form always holds quotes: its separators)
        if '"' not in plain and "\\" not in plain:
            return '{"' + '","'.join(values) + '"}' if values else "{}"
    elif all(type(v) is int for v in values):  # ids: nothing to quote
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(
        "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for v in values) + "}"


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
    if dialect == "postgresql" and len(rows) >= COPY_FROM:
        _upsert_copy(session, table, rows, update)
        return
    if dialect == "postgresql":
        _executemany_pg(session, stmt, table, rows)
        return
    rows = _decoded(table, rows)
    for i in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[i:i + CHUNK])


def insert_many(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """A plain INSERT of many rows: COPY on PostgreSQL (executemany when few), else executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        if len(rows) >= COPY_FROM:
            names, values = _copy_values(session, table, rows)
            _copy(session, table, table.name, names, values)
        else:
            _executemany_pg(session, insert(table), table, rows)
    else:
        session.execute(insert(table), _decoded(table, rows))


def update_many(session: Session, table: Any, rows: list[dict[str, Any]], *, by: str,
                column: str = "id") -> None:
    """``UPDATE table SET ... WHERE column = row[by]`` for rows of one shape.

    On PostgreSQL many rows go through COPY into a scratch table and one ``UPDATE ... FROM``;
    a row-by-row executemany costs a statement execution (and, with custom plans, a
    planning) per row.
    """
    if not rows:
        return
    names = [n for n in rows[0] if n != by]
    if session.get_bind().dialect.name != "postgresql" or len(rows) < COPY_FROM:
        session.execute(update(table).where(table.c[column] == bindparam(by))
                        .values({n: bindparam(n) for n in names}), rows)
        return
    scratch = _scratch(session, table, [column, *names])
    _copy(session, table, scratch, [column, *names],
          ([row[by], *(_copyable(table, n, row[n]) for n in names)] for row in rows))
    assignments = ", ".join(f'"{n}" = s."{n}"' for n in names)
    session.execute(text(f'UPDATE "{table.name}" AS t SET {assignments} FROM "{scratch}" AS s '
                         f'WHERE t."{column}" = s."{column}"'))
    session.execute(text(f'TRUNCATE "{scratch}"'))


def _upsert_copy(session: Session, table: Any, rows: list[dict[str, Any]],
                 update: Callable[[Any], dict[str, Any]] | None) -> None:
    """COPY the rows into a scratch table, then one INSERT ... SELECT ... ON CONFLICT.

    A later row of the same key wins, as it would have one statement after another (a single
    INSERT may not touch a row twice).
    """
    rows = list({row["key"]: row for row in rows}.values())
    names, values = _copy_values(session, table, rows)
    scratch = _scratch(session, table, names)
    _copy(session, table, scratch, names, values)
    source = sa_table(scratch, *(column(n, table.c[n].type) for n in names))
    stmt = pg_insert(table).from_select(names, select(*(source.c[n] for n in names)))
    columns = update(stmt.excluded) if update is not None else None
    if columns:
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_=columns)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["key"])
    session.execute(stmt)
    session.execute(text(f'TRUNCATE "{scratch}"'))


def _scratch(session: Session, table: Any, names: list[str]) -> str:
    """A temporary table shaped like ``table``'s ``names`` columns, emptied at commit.

    Made once per connection (``IF NOT EXISTS``: a rolled-back transaction may have taken it
    away); one per column set, so any rows of the table fit.
    """
    name = f"_bulk_{table.name}_{zlib.crc32(','.join(names).encode()):08x}"
    cols = ", ".join(f'"{n}"' for n in names)
    session.execute(text(f'CREATE TEMP TABLE IF NOT EXISTS "{name}" ON COMMIT DELETE ROWS AS '
                         f'SELECT {cols} FROM "{table.name}" WITH NO DATA'))
    return name


def _copy_values(session: Session, table: Any, rows: list[dict[str, Any]]
                 ) -> tuple[list[str], Iterable[Sequence[Any]]]:
    """The columns to COPY (the rows' own and those left to a scalar default) and the values."""
    names = list(rows[0])
    defaults = _defaults(session, table, names)
    all_names = [*names, *defaults]
    fill = list(defaults.values())
    json_at = [i for i, n in enumerate(names) if isinstance(table.c[n].type, JSON)]
    pick = itemgetter(*names)  # one C call per row instead of a lookup per column

    def values() -> Iterator[Sequence[Any]]:
        for row in rows:
            out = pick(row)
            if len(names) == 1:
                out = (out,)
            if json_at:
                out = list(out)
                for i in json_at:
                    out[i] = _json(out[i])
            yield (*out, *fill) if fill else out

    return all_names, values()


def _copyable(table: Any, name: str, value: Any) -> Any:
    return _json(value) if isinstance(table.c[name].type, JSON) else value


def _json(value: Any) -> Any:
    """A value for a JSON column: already serialised text passes as it is, not dumped again."""
    if value is None:
        return None
    if isinstance(value, Serialized):
        return Jsonb(value, dumps=str)
    return Jsonb(value)


class Serialized(str):
    """A JSON document already serialised (to hash it): stored as it is, not dumped again."""


def _defaults(session: Session, table: Any, names: list[str]) -> dict[str, Any]:
    compiled = insert(table).compile(dialect=session.get_bind().dialect, column_keys=names)
    defaults = {}
    for col in compiled.insert_prefetch:  # columns the rows leave to their default
        if col.key not in names:
            if not (col.default is not None and col.default.is_scalar):
                raise ValueError(f"{table.name}.{col.key} needs a value in every row")
            defaults[col.key] = col.default.arg
    return defaults


def _copy(session: Session, table: Any, target: str, names: list[str],
          values: Iterable[Sequence[Any]]) -> None:
    """``COPY target (names) FROM STDIN`` on the session's connection and transaction, the
    values typed as ``table``'s columns of those names.

    Binary when every column's type is one of ``_BINARY``: psycopg then packs each value in
    C instead of writing it as text, and the server takes it as it is instead of parsing it
    (timestamps above all), which cut a page's COPY time by a fifth to a third.
    """
    cols = ", ".join(f'"{n}"' for n in names)
    types = [_binary_type(table.c[n].type) for n in names]
    raw = session.connection().connection.driver_connection
    if None in types:
        with raw.cursor() as cursor, cursor.copy(f'COPY "{target}" ({cols}) FROM STDIN') as copy:
            for row in values:
                copy.write_row(row)
        return
    with raw.cursor() as cursor, cursor.copy(
            f'COPY "{target}" ({cols}) FROM STDIN (FORMAT BINARY)') as copy:
        copy.set_types(types)
        for row in values:
            copy.write_row(row)


# SQLAlchemy types the page path writes, and the PostgreSQL type each is sent as in a binary
# COPY (most specific first: a subclass is listed before its base)
_BINARY: tuple[tuple[type, str], ...] = (
    (JSON, "jsonb"), (Boolean, "bool"), (BigInteger, "int8"), (SmallInteger, "int2"),
    (Integer, "int4"), (Float, "float8"), (DateTime, "timestamptz"), (Date, "date"),
    (String, "text"),
)


def _binary_type(sa_type: Any) -> str | None:
    """The type name to COPY a column as in binary, None when there is none (text COPY)."""
    if isinstance(sa_type, TypeDecorator):
        sa_type = sa_type.impl
    for kind, name in _BINARY:
        if isinstance(sa_type, kind):
            if kind is DateTime and not sa_type.timezone:
                return None  # naive timestamps: left to the server's text parsing
            if kind is Float and getattr(sa_type, "asdecimal", False):
                return None
            return name
    return None


def _executemany_pg(session: Session, stmt: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """psycopg's own pipelined executemany on the session's connection and transaction.

    SQLAlchemy's per-row parameter processing costs about a third of a bulk write here, and
    the values need none: datetimes are aware (psycopg sends the offset) and JSON columns are
    wrapped for psycopg as SQLAlchemy would.
    """
    names = list(rows[0])
    compiled = stmt.compile(dialect=session.get_bind().dialect, column_keys=names,
                            for_executemany=True)
    defaults = _defaults(session, table, names)
    json_columns = [n for n in names if isinstance(table.c[n].type, JSON)]
    rows = [{**defaults, **row, **{n: _json(row[n]) for n in json_columns}} for row in rows]
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        cursor.executemany(str(compiled), rows)


def _decoded(table: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for SQLAlchemy's own JSON handling: serialised documents back to values."""
    names = [n for n in rows[0] if isinstance(table.c[n].type, JSON)]
    if not any(isinstance(row[n], Serialized) for row in rows for n in names):
        return rows
    return [{**row, **{n: json.loads(row[n]) for n in names
                       if isinstance(row[n], Serialized)}} for row in rows]
