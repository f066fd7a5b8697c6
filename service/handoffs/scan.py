"""The SLA scan: move clocks to warning and breached in two set-based UPDATEs.

Each UPDATE only matches clocks still in the earlier state, so two scans racing (two workers,
or a scan restarted after a crash) cannot both move the same clock; the outbox rows are
written in the same transaction, keyed by clock and state, so each is announced once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
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
