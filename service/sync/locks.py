"""One sync per source at a time across processes: PostgreSQL advisory lock, or a file lock."""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text
from sqlmodel import Session


def lock_id(source: str) -> int:
    return zlib.crc32(f"truce-sync:{source}".encode())


@contextmanager
def source_lock(engine: Engine, source: str) -> Iterator[bool]:
    """Yield True when this process holds the source's lock, False when another one does."""
    if engine.dialect.name == "postgresql":
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": lock_id(source)}).scalar())
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id(source)})
        finally:
            conn.close()
        return
    database = engine.url.database or ""
    base = Path(database) if database not in ("", ":memory:") else Path(tempfile.gettempdir()) / (
        f"truce-memory-{id(engine)}")
    lock = FileLock(str(base) + f".sync-{source}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def lock_persons(session: Session) -> None:
    """Hold the persons until this transaction ends: one page applied at a time everywhere.

    A Salesforce and a HubSpot sync (or a sync and a webhook) applying pages at once would
    each look for the same human, find no person and create one, or both rebuild one
    person's events; on PostgreSQL a page waits here, at the start of its transaction, for
    the others to commit, then sees what they wrote. (SQLite has one writer at a time.)
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id("persons")})
