"""The outbox: notifications written in the same transaction as what caused them.

A unique ``dedupe_key`` per cause (``clock:17:breached``) makes a second scan, a restarted
scan or a second worker unable to record the same announcement twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from service.db import utcnow
from service.handoffs.models import OutboxEvent


def enqueue(session: Session, *, kind: str, dedupe_key: str, payload: dict[str, Any]) -> bool:
    """Record a notification unless one with this key exists; True when it was new."""
    bind: Engine = session.get_bind()  # type: ignore[assignment]
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    stmt = insert(OutboxEvent).values(
        kind=kind, dedupe_key=dedupe_key, payload=payload, created_at=now, next_attempt_at=now,
        attempts=0, webhook_done=False, crm_done=False,
    ).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return bool(session.exec(stmt).rowcount)  # type: ignore[call-overload]
