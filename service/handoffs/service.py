"""Handoffs: opened at each MQL instant, measured on the policy's calendar, stopped by decisions.

Decisions and first touches come from the CRMs (with their own timestamps) or from the API;
either way a clock stops once, and a clock that stops or runs past its due time is a breach.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlmodel import Session, col, select

from service.crm.models import Activity
from service.db import utcnow
from service.definitions.facts import load_facts
from service.definitions.models import LeadDefinition
from service.definitions.rules import evaluate
from service.definitions.service import active_definition
from service.errors import Conflict, Invalid, NotFound
from service.handoffs.calendar import (
    Calendar,
    CalendarError,
    add_business_minutes,
    build_calendar,
    business_minutes_between,
)
from service.handoffs.clocks import ClockView, clock_view
from service.handoffs.models import BusinessCalendar, Handoff, SlaClock, SlaPolicy
from service.handoffs.outbox import enqueue
from service.people.models import Person, StageEvent
from service.people.service import restage
from service.sync.models import CrmRow

TOUCH_KINDS = ("call", "email", "meeting")
KINDS = ("accept", "first_touch")


def calendar_of(row: BusinessCalendar) -> Calendar:
    return _cached_calendar(row.id or 0, row.timezone, _freeze(row.hours), row.holiday_country,
                            row.holiday_subdivision, tuple(row.holidays))


@lru_cache(maxsize=256)
def _cached_calendar(_id: int, timezone: str, hours: tuple, country: str | None,
                     subdivision: str | None, holidays: tuple[str, ...]) -> Calendar:
    return build_calendar(timezone=timezone, hours={d: [list(p) for p in v] for d, v in hours},
                          holiday_country=country, holiday_subdivision=subdivision,
                          holidays=list(holidays))


def _freeze(hours: dict[str, Any]) -> tuple:
    return tuple(sorted((d, tuple(tuple(p) for p in v)) for d, v in hours.items()))


def check_calendar(**fields: Any) -> Calendar:
    """Build a calendar or answer 422 naming the field the message starts with."""
    try:
        cal = build_calendar(**fields)
        # a calendar that never opens is refused now, not at its first handoff
        add_business_minutes(cal, utcnow(), 1)
    except CalendarError as exc:
        message = str(exc)
        where = message.split(":", 1)[0] if ":" in message else ""
        field = where if where and " " not in where else "hours"
        raise Invalid(message, field=f"body.{field}") from None
    return cal



# --- opening ------------------------------------------------------------------------------


def open_missing_handoffs(session: Session, *, person_ids: Iterable[int] | None = None,
                          now: datetime | None = None) -> list[Handoff]:
    """A handoff for every MQL event of the active version that has none yet."""
    definition = active_definition(session)
    if definition is None:
        return []
    now = now or utcnow()
    stmt = (select(StageEvent).outerjoin(Handoff, col(Handoff.mql_event_id) == StageEvent.id)
            .where(StageEvent.stage == "mql",
                   StageEvent.definition_version == definition.version,
                   col(Handoff.id).is_(None)))
    if person_ids is not None:
        ids = list(person_ids)
        if not ids:
            return []
        stmt = stmt.where(col(StageEvent.person_id).in_(ids))
    events = list(session.exec(stmt.order_by(StageEvent.at)))
    if not events:
        return []
    policies = list(session.exec(select(SlaPolicy).where(SlaPolicy.active)
                                 .order_by(SlaPolicy.priority, SlaPolicy.id)))
    calendars = {c.id: c for c in session.exec(select(BusinessCalendar))}
    persons = {p.id: p for p in session.exec(
        select(Person).where(col(Person.id).in_({e.person_id for e in events})))}
    facts = load_facts(session, persons.values())
    opened = []
    for event in events:
        person = persons.get(event.person_id)
        if person is None:
            continue
        policy = _choose_policy(policies, facts.get(event.person_id), event.at)
        handoff = Handoff(person_id=event.person_id, mql_event_id=event.id,
                          policy_id=policy.id if policy else None,
                          definition_version=definition.version, owner_key=person.owner_key,
                          opened_at=event.at, created_at=now,
                          system_delay_minutes=_minutes(person.created_at, event.at))
        session.add(handoff)
        session.flush()
        if policy is not None:
            _open_clocks(session, handoff, policy, calendars[policy.calendar_id], definition)
        opened.append(handoff)
    session.flush()
    apply_crm_outcomes(session, opened, now=now)
    return opened


def _choose_policy(policies: list[SlaPolicy], facts: Any, at: datetime) -> SlaPolicy | None:
    """First match wins, in priority order (lower number first)."""
    for policy in policies:
        if policy.match is None:
            return policy
        if facts is not None and evaluate(policy.match, facts, at=at).passed:
            return policy
    return None


def _open_clocks(session: Session, handoff: Handoff, policy: SlaPolicy,
                 calendar_row: BusinessCalendar, definition: LeadDefinition) -> None:
    cal = calendar_of(calendar_row)
    activated = definition.activated_at or handoff.opened_at
    for kind, target in (("accept", policy.accept_within_minutes),
                         ("first_touch", policy.first_touch_within_minutes)):
        due = add_business_minutes(cal, handoff.opened_at, target)
        warn = add_business_minutes(cal, handoff.opened_at, math.ceil(target * policy.warn_at))
        session.add(SlaClock(handoff_id=handoff.id, kind=kind, target_minutes=target,
                             started_at=handoff.opened_at, warn_due_at=warn, due_at=due,
                             announce=due > activated))


def _minutes(a: datetime | None, b: datetime | None) -> int | None:
    if a is None or b is None:
        return None
    return max(0, int((b - a).total_seconds() // 60))


# --- stopping clocks ----------------------------------------------------------------------


def clocks_of(session: Session, handoff_ids: Iterable[int]) -> dict[int, dict[str, SlaClock]]:
    out: dict[int, dict[str, SlaClock]] = {}
    ids = list(handoff_ids)
    if not ids:
        return out
    for clock in session.exec(select(SlaClock).where(col(SlaClock.handoff_id).in_(ids))):
        out.setdefault(clock.handoff_id, {})[clock.kind] = clock
    return out


def stop_clock(session: Session, handoff: Handoff, clock: SlaClock, at: datetime) -> None:
    """Stop once: met at or before due, breached after; a late stop is announced as a breach."""
    if clock.stopped_at is not None:
        return
    cal = _calendar_for(session, handoff)
    at = max(at, clock.started_at)
    was = clock.state
    clock.stopped_at = at
    clock.state = "met" if at <= clock.due_at else "breached"
    clock.business_minutes = business_minutes_between(cal, clock.started_at, at) if cal else None
    clock.calendar_minutes = _minutes(clock.started_at, at)
    clock.changed_at = utcnow()
    session.add(clock)
    if clock.state == "breached" and was != "breached" and clock.announce:
        announce(session, handoff, clock, "breached")


def _calendar_for(session: Session, handoff: Handoff) -> Calendar | None:
    if handoff.policy_id is None:
        return None
    policy = session.get(SlaPolicy, handoff.policy_id)
    row = session.get(BusinessCalendar, policy.calendar_id) if policy else None
    return calendar_of(row) if row else None


def apply_crm_outcomes(session: Session, handoffs: Iterable[Handoff], *,
                       now: datetime | None = None) -> None:
    """Stop clocks with the CRMs' decisions and first touches logged after the handoff opened."""
    handoffs = [h for h in handoffs if h.id is not None]
    if not handoffs:
        return
    person_ids = {h.person_id for h in handoffs}
    decisions: dict[int, list[StageEvent]] = {}
    for ev in session.exec(select(StageEvent).where(col(StageEvent.person_id).in_(person_ids),
                                                    col(StageEvent.stage).in_(("sal", "rejected")),
                                                    StageEvent.origin == "crm")
                           .order_by(StageEvent.at)):
        decisions.setdefault(ev.person_id, []).append(ev)
    keys: dict[str, int] = {}
    for key, pid in session.exec(select(CrmRow.key, CrmRow.person_id).where(
            col(CrmRow.person_id).in_(person_ids), CrmRow.kind == "person")):
        keys[key] = pid  # type: ignore[assignment]
    touches: dict[int, list[datetime]] = {}
    if keys:
        for record_key, at in session.exec(select(Activity.record_key, Activity.at).where(
                col(Activity.record_key).in_(keys), col(Activity.kind).in_(TOUCH_KINDS),
                Activity.live)):
            touches.setdefault(keys[record_key], []).append(at)  # type: ignore[index]
    clocks = clocks_of(session, [h.id for h in handoffs])  # type: ignore[misc]
    for handoff in handoffs:
        own = clocks.get(handoff.id, {})  # type: ignore[arg-type]
        if handoff.state == "open":
            later = [e for e in decisions.get(handoff.person_id, []) if e.at >= handoff.opened_at]
            if later:
                first = later[0]
                _decide(session, handoff, own, accepted=first.stage == "sal", at=first.at,
                        reason=first.reason, by=first.source_ref)
        touch = own.get("first_touch")
        if touch is not None and touch.stopped_at is None:
            after = sorted(t for t in touches.get(handoff.person_id, []) if t >= handoff.opened_at)
            if after:
                stop_clock(session, handoff, touch, after[0])
    session.flush()


def _decide(session: Session, handoff: Handoff, clocks: dict[str, SlaClock], *, accepted: bool,
            at: datetime, reason: str | None, by: str) -> None:
    handoff.state = "accepted" if accepted else "rejected"
    handoff.reason = None if accepted else reason
    handoff.decided_at, handoff.decided_by = at, by[:200]
    session.add(handoff)
    if "accept" in clocks:
        stop_clock(session, handoff, clocks["accept"], at)


# --- decisions through the API ------------------------------------------------------------


def get_handoff(session: Session, handoff_id: int) -> Handoff:
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise NotFound(f"no handoff {handoff_id}")
    return handoff


def decide(session: Session, handoff: Handoff, *, accepted: bool, reason: str | None,
           recycle: bool, by: str, reasons: tuple[str, ...], now: datetime | None = None
           ) -> Handoff:
    now = now or utcnow()
    if handoff.state != "open":
        raise Conflict(f"handoff {handoff.id} is already {handoff.state}")
    if not accepted:
        if not reason:
            raise Invalid("a rejection needs a reason", field="body.reason")
        if reason not in reasons:
            raise Invalid(f"unknown reason {reason!r}; use one of: {', '.join(reasons)}",
                          field="body.reason")
    clocks = clocks_of(session, [handoff.id]).get(handoff.id, {})  # type: ignore[list-item]
    _decide(session, handoff, clocks, accepted=accepted, at=now, reason=reason, by=f"api:{by}")
    stage = "sal" if accepted else "rejected"
    session.add(StageEvent(person_id=handoff.person_id, stage=stage, at=now, origin="api",
                           reason=reason, source_ref=f"api:handoff:{handoff.id}:{stage}"))
    if recycle and not accepted:
        handoff.state = "recycled"
        session.add(StageEvent(person_id=handoff.person_id, stage="recycled", at=now,
                               origin="api", source_ref=f"api:handoff:{handoff.id}:recycled"))
    session.flush()
    restage(session, [handoff.person_id])
    return handoff


def touch(session: Session, handoff: Handoff, *, now: datetime | None = None) -> Handoff:
    clocks = clocks_of(session, [handoff.id]).get(handoff.id, {})  # type: ignore[list-item]
    clock = clocks.get("first_touch")
    if clock is None:
        raise Conflict(f"handoff {handoff.id} has no first-touch clock (no SLA policy matched)")
    if clock.stopped_at is not None:
        raise Conflict(f"handoff {handoff.id} was already touched at {clock.stopped_at}")
    stop_clock(session, handoff, clock, now or utcnow())
    return handoff


# --- views ----------------------------------------------------------------------------------


def view_clock(session: Session, handoff: Handoff, clock: SlaClock, *,
               now: datetime, policy_warn_at: float) -> dict[str, Any]:
    if clock.stopped_at is not None:
        return {"started_at": clock.started_at, "due_at": clock.due_at,
                "stopped_at": clock.stopped_at, "state": clock.state,
                "business_minutes": clock.business_minutes,
                "calendar_minutes": clock.calendar_minutes, "target_minutes": clock.target_minutes}
    cal = _calendar_for(session, handoff)
    assert cal is not None
    live: ClockView = clock_view(cal, started_at=clock.started_at,
                                 target_minutes=clock.target_minutes, warn_at=policy_warn_at,
                                 stopped_at=None, now=max(now, clock.started_at))
    return {"started_at": clock.started_at, "due_at": clock.due_at, "stopped_at": None,
            "state": live.state.value, "business_minutes": live.business_minutes,
            "calendar_minutes": live.calendar_minutes, "target_minutes": clock.target_minutes}


def announce(session: Session, handoff: Handoff, clock: SlaClock, state: str) -> bool:
    """Record a warning or breach for delivery, once per clock and state."""
    return enqueue(session, kind=f"sla.{state}", dedupe_key=f"clock:{clock.id}:{state}",
                   payload={"handoff_id": handoff.id, "person_id": handoff.person_id,
                            "owner_key": handoff.owner_key, "clock": clock.kind,
                            "state": state, "started_at": clock.started_at.isoformat(),
                            "due_at": clock.due_at.isoformat(),
                            "definition_version": handoff.definition_version})


def recycle_unanswered(session: Session, *, after: timedelta, now: datetime | None = None
                       ) -> int:
    """Handoffs never answered long past their accept due time go back to marketing."""
    now = now or utcnow()
    stale = session.exec(select(Handoff).join(SlaClock, col(SlaClock.handoff_id) == Handoff.id)
                         .where(Handoff.state == "open", SlaClock.kind == "accept",
                                col(SlaClock.stopped_at).is_(None),
                                col(SlaClock.due_at) <= now - after)).all()
    for handoff in stale:
        handoff.state, handoff.reason = "recycled", "unanswered"
        handoff.decided_at, handoff.decided_by = now, "truce:expired"
        session.add(handoff)
        session.add(StageEvent(person_id=handoff.person_id, stage="recycled", at=now,
                               origin="api", reason="unanswered",
                               source_ref=f"truce:handoff:{handoff.id}:expired"))
    session.flush()
    if stale:
        restage(session, [h.person_id for h in stale])
    return len(stale)
