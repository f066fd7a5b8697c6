"""Derive a person's stage events from CRM facts: pure, so history can always be replayed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from service.people.decisions import ACCEPTED, REJECTED, StatusMapping

FUNNEL_ORDER = ("inquiry", "mql", "sal", "rejected", "recycled", "sql", "won", "lost")


@dataclass(frozen=True)
class PersonRow:
    key: str
    source: str
    created_at: datetime | None
    status: str | None
    status_reason: str | None
    converted_at: datetime | None


@dataclass(frozen=True)
class StatusChange:
    key: str  # the field_change row
    record_key: str
    source: str
    value: str | None
    at: datetime


@dataclass(frozen=True)
class OppFacts:
    key: str
    created_at: datetime | None
    is_closed: bool
    is_won: bool
    close_date: date | None


@dataclass(frozen=True)
class Derived:
    stage: str
    at: datetime
    source_ref: str
    reason: str | None = None


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def derive_events(rows: list[PersonRow], changes: list[StatusChange], opps: list[OppFacts],
                  mapping: StatusMapping) -> list[Derived]:
    """Inquiry, decisions with the CRM's own timestamps, opportunity created, won and lost."""
    events: dict[tuple[str, str], Derived] = {}

    def add(ev: Derived) -> None:
        events.setdefault((ev.stage, ev.source_ref), ev)

    created = [r for r in rows if r.created_at is not None]
    if created:
        first = min(created, key=lambda r: (r.created_at, r.key))
        assert first.created_at is not None
        add(Derived("inquiry", first.created_at, first.key))
    by_key = {r.key: r for r in rows}
    with_history = set()
    for ch in sorted(changes, key=lambda c: (c.at, c.key)):
        decision = mapping.decision(ch.source, ch.value)
        if decision is None:
            continue
        with_history.add(ch.record_key)
        row = by_key.get(ch.record_key)
        if decision == ACCEPTED:
            add(Derived("sal", ch.at, ch.key))
        elif decision == REJECTED:
            reason = ch.value
            if row is not None and row.status == ch.value and row.status_reason:
                reason = row.status_reason
            add(Derived("rejected", ch.at, ch.key, reason))
    for row in rows:
        if row.converted_at is not None:
            add(Derived("sal", row.converted_at, f"{row.key}#converted"))
    for opp in opps:
        if opp.created_at is not None:
            add(Derived("sql", opp.created_at, opp.key))
        if opp.is_closed and opp.close_date is not None:
            add(Derived("won" if opp.is_won else "lost", _midnight(opp.close_date), opp.key))
    return sorted(events.values(), key=lambda e: (e.at, FUNNEL_ORDER.index(e.stage)))

