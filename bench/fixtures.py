"""Bulk data for the database benchmarks, written set-based (``INSERT ... SELECT`` over a series).

A million rows through the ORM would take longer than the benchmark itself; one statement per
table over ``generate_series`` (PostgreSQL) or a recursive CTE (SQLite) takes seconds. Ids are
explicit, so rows of different tables line up by number (person i, handoff i, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

T0 = datetime(2025, 1, 1, tzinfo=UTC)
COUNTRIES = ("US", "CA", "GB", "DE", "FR")
KINDS = ("form_submission", "web_visit", "email_click", "meeting")
INDUSTRIES = ("Software", "Retail", "Finance", "Health", "Manufacturing")


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def at_minutes(conn: Connection, minutes: str) -> str:
    """SQL for ``T0 + minutes`` in the column format of the dialect (``minutes``: SQL)."""
    if is_postgres(conn):
        return f"(TIMESTAMPTZ '2025-01-01 00:00:00+00' + ({minutes}) * INTERVAL '1 minute')"
    return f"strftime('%Y-%m-%d %H:%M:%f', '2025-01-01 00:00:00', ({minutes}) || ' minutes')"


def at_time(conn: Connection, when: datetime) -> str:
    """A literal instant for SQL, as the dialect stores it."""
    minutes = int((when - T0) / timedelta(minutes=1))
    return at_minutes(conn, str(minutes))


def choose(values: tuple[str, ...], index: str) -> str:
    """SQL picking ``values[index % len(values)]``."""
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE ({index}) % {len(values)} {whens} END)"


def insert_series(conn: Connection, table: str, n: int, columns: Mapping[str, str]) -> None:
    """``INSERT INTO table (cols) SELECT exprs`` for i in 1..n (``i`` names the counter)."""
    names, exprs = ", ".join(columns), ", ".join(columns.values())
    if is_postgres(conn):
        conn.execute(text(f"INSERT INTO {table} ({names}) SELECT {exprs} "
                          f"FROM generate_series(1, {int(n)}) AS s(i)"))
    else:
        conn.execute(text(f"INSERT INTO {table} ({names}) WITH RECURSIVE s(i) AS "
                          f"(SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(n)}) "
                          f"SELECT {exprs} FROM s"))


def fix_sequences(conn: Connection, *tables: str) -> None:
    """After explicit ids, move PostgreSQL's sequences past them (SQLite needs nothing)."""
    if not is_postgres(conn):
        return
    for table in tables:
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                          f"COALESCE((SELECT max(id) FROM {table}), 1))"))


def analyze(conn: Connection) -> None:
    conn.execute(text("ANALYZE"))


def persons(conn: Connection, n: int, *, accounts: int) -> None:
    """``n`` persons (one HubSpot contact row each) and ``accounts`` companies they work at."""
    created = at_minutes(conn, "i")
    insert_series(conn, "account", accounts, {
        "id": "i", "key": "'hubspot:companies:' || i", "source": "'hubspot'",
        "name": "'Company ' || i", "domain": "'company' || i || '.com'",
        "industry": choose(INDUSTRIES, "i"), "employees": "(i * 37) % 5000",
        "annual_revenue": "(i * 7919) % 100000000", "country": choose(COUNTRIES, "i"),
        "is_customer": "(i % 10 = 0)", "live": "TRUE"})
    insert_series(conn, "person", n, {
        "id": "i",
        "email": "'p' || i || CASE WHEN i % 7 = 0 THEN '@gmail.com' "
                 f"ELSE '@company' || (1 + i % {accounts}) || '.com' END",
        "first_name": "'First'", "last_name": "'Last' || i",
        "title": "CASE WHEN i % 3 = 0 THEN 'VP Marketing' ELSE 'Analyst' END",
        "country": choose(COUNTRIES, "i / 3"), "lead_source": "'Web Form'",
        "score": "(i * 13) % 100", "account_key": f"'hubspot:companies:' || (1 + i % {accounts})",
        "stage": "'inquiry'", "created_at": created, "live": "TRUE", "dirty": "FALSE",
        "updated_at": created})
    insert_series(conn, "crm_record", n, {
        "id": "i", "key": "'hubspot:contacts:' || i", "source": "'hubspot'",
        "object": "'contacts'", "external_id": "CAST(i AS VARCHAR(20))", "kind": "'person'",
        "payload": "'{}'", "payload_hash": "'bench'", "modstamp": created,
        "created_at": created, "deleted": "FALSE", "person_id": "i", "first_seen": created,
        "last_changed": created})


def activities(conn: Connection, n: int, *, now: datetime) -> None:
    """One activity per person, a few days to two months before ``now``."""
    at = at_minutes(conn, f"{int((now - T0) / timedelta(minutes=1))} - (i % 60) * 1440 - 1")
    insert_series(conn, "activity", n, {
        "id": "i", "key": "'hubspot:activity:' || i", "source": "'hubspot'",
        "kind": choose(KINDS, "i"), "at": at, "record_key": "'hubspot:contacts:' || i",
        "live": "TRUE"})
