"""The SLA scan: move clocks to warning and breached in two set-based UPDATEs.

Each UPDATE only matches clocks still in the earlier state, so two scans racing (two workers,
or a scan restarted after a crash) cannot both move the same clock; the outbox rows are
written in the same transaction, keyed by clock and state, so each is announced once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text, update
from sqlmodel import Session, col, select

from service.db import utcnow
from service.handoffs.models import Handoff, SlaClock
from service.handoffs.service import announce


@dataclass
class ScanResult:
    warnings: int = 0
    breaches: int = 0
    announced: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"warnings": self.warnings, "breaches": self.breaches, "announced": self.announced}


def scan(session: Session, *, now: datetime | None = None) -> ScanResult:
    now = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        return _scan_postgresql(session, now)
    result = ScanResult()
    open_clock = col(SlaClock.stopped_at).is_(None)
    warned = session.execute(
        update(SlaClock)
        .where(open_clock, SlaClock.state == "running", col(SlaClock.warn_due_at) <= now,
               col(SlaClock.due_at) > now)
        .values(state="warning", changed_at=now)
        .returning(SlaClock.id)
    ).scalars().all()
    breached = session.execute(
        update(SlaClock)
        .where(open_clock, col(SlaClock.state).in_(("running", "warning")),
               col(SlaClock.due_at) <= now)
        .values(state="breached", changed_at=now)
        .returning(SlaClock.id)
    ).scalars().all()
    result.warnings, result.breaches = len(warned), len(breached)
    for state, ids in (("warning", warned), ("breached", breached)):
        if not ids:
            continue
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            rows = session.exec(select(SlaClock, Handoff)
                                .join(Handoff, col(Handoff.id) == SlaClock.handoff_id)
                                .where(col(SlaClock.id).in_(chunk), SlaClock.announce))
            for clock, handoff in rows:
                result.announced += int(announce(session, handoff, clock, state))
    session.flush()
    return result


# On PostgreSQL each move and its announcements are one statement: the UPDATE's RETURNING feeds
# the outbox INSERT directly, so a million clocks never travel to Python and back.
_MOVE_AND_ANNOUNCE = text("""
WITH moved AS (
    UPDATE sla_clock SET state = :state, changed_at = :now
    WHERE stopped_at IS NULL AND state = ANY(:from_states) AND {condition}
    RETURNING id, handoff_id, kind, started_at, due_at, announce
), announced AS (
    INSERT INTO outbox_event (kind, dedupe_key, payload, created_at, next_attempt_at, attempts,
                              webhook_done, crm_done)
    SELECT 'sla.' || :state, 'clock:' || moved.id || ':' || :state,
           jsonb_build_object(
               'handoff_id', h.id, 'person_id', h.person_id, 'owner_key', h.owner_key,
               'clock', moved.kind, 'state', :state,
               'started_at', to_char(moved.started_at AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
               'due_at', to_char(moved.due_at AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
               'definition_version', h.definition_version),
           :now, :now, 0, false, false
    FROM moved JOIN handoff h ON h.id = moved.handoff_id
    WHERE moved.announce
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM announced)
""")


def _scan_postgresql(session: Session, now: datetime) -> ScanResult:
    result = ScanResult()
    for state, from_states, condition in (
        ("warning", ["running"], "warn_due_at <= :now AND due_at > :now"),
        ("breached", ["running", "warning"], "due_at <= :now"),
    ):
        stmt = text(_MOVE_AND_ANNOUNCE.text.replace("{condition}", condition))
        moved, announced = session.execute(
            stmt, {"state": state, "from_states": from_states, "now": now}).one()
        result.announced += announced
        if state == "warning":
            result.warnings = moved
        else:
            result.breaches = moved
    return result
