"""A small world for the dashboard to show, and contract-shaped stand-ins for missing endpoints.

The world, relative to now: eight MQLs (four accepted, two of them opportunities, one won),
three open handoffs whose accept clocks are running, warning and breached, and one lead
rejected after its clock ran out. Some endpoints the dashboard reads may not be mounted yet
in a given build; ``stand_ins`` answers those in the contract's shapes so the page is always
driven end to end, and the real endpoint takes over as soon as it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from service.db import unit_of_work
from service.deps import Viewer
from service.handoffs.models import BusinessCalendar, Handoff, SlaClock, SlaPolicy
from service.people.models import Person, StageEvent

ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in
               ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
ACCEPT_MINUTES = 240
TOUCH_MINUTES = 480
BREACHED_OWNER = "olivia.owens"
LATE_OWNER = "marcus.reed"
FUNNEL = {"mqls": 8, "sals": 4, "sqls": 2, "won": 1}
STAND_IN_STAGE = "Defined"


@dataclass(frozen=True)
class Lead:
    """One person of the world: when they became an MQL and how far they went."""

    email: str
    owner: str
    mql_minutes_ago: int
    later: tuple[str, ...] = ()  # stages reached after the MQL: sal, sql, won
    handoff: str = "open"  # accepted, rejected or open
    breached_late: bool = False  # decided after the accept clock ran out


LEADS = (
    Lead("ava@northwind.example", "james.cole", 14 * 1440, ("sal", "sql", "won"), "accepted"),
    Lead("ben@contoso.example", "james.cole", 13 * 1440, ("sal", "sql"), "accepted"),
    Lead("chloe@fabrikam.example", "priya.shah", 12 * 1440, ("sal",), "accepted"),
    Lead("dev@tailspin.example", "priya.shah", 11 * 1440, ("sal",), "accepted"),
    Lead("eli@adatum.example", LATE_OWNER, 20 * 1440, (), "rejected", breached_late=True),
    Lead("fay@litware.example", "james.cole", 60),  # accept clock running
    Lead("gus@proseware.example", "priya.shah", 200),  # accept clock in warning
    Lead("hana@wingtip.example", BREACHED_OWNER, 300),  # accept clock breached, still open
)


def seed(engine: Engine, *, now: datetime | None = None) -> None:
    """Insert the world directly, as sync and the definition would have left it."""
    now = now or datetime.now(UTC)
    with unit_of_work(engine) as session:
        calendar = BusinessCalendar(name="Always open", timezone="UTC", hours=ALWAYS_OPEN)
        session.add(calendar)
        session.flush()
        policy = SlaPolicy(name="All leads", calendar_id=calendar.id or 0, priority=10,
                           accept_within_minutes=ACCEPT_MINUTES,
                           first_touch_within_minutes=TOUCH_MINUTES)
        session.add(policy)
        session.flush()
        for n, lead in enumerate(LEADS, start=1):
            mql_at = now - timedelta(minutes=lead.mql_minutes_ago)
            person = Person(email=lead.email, owner_key=lead.owner, lead_source="Web",
                            created_at=mql_at - timedelta(days=2),
                            stage=(lead.later[-1] if lead.later else
                                   "rejected" if lead.handoff == "rejected" else "mql"))
            session.add(person)
            session.flush()
            pid = person.id or 0
            mql = StageEvent(person_id=pid, stage="mql", at=mql_at, source_ref=f"def:1:{n}",
                             definition_version=1, origin="definition")
            session.add(mql)
            for step, stage in enumerate(lead.later, start=1):
                session.add(StageEvent(person_id=pid, stage=stage,
                                       at=mql_at + timedelta(hours=step),
                                       source_ref=f"crm:{stage}:{n}"))
            session.flush()
            decided_at = None
            if lead.handoff != "open":
                late = ACCEPT_MINUTES + 90 if lead.breached_late else 45
                decided_at = mql_at + timedelta(minutes=late)
            handoff = Handoff(person_id=pid, mql_event_id=mql.id or 0, policy_id=policy.id,
                              definition_version=1, owner_key=lead.owner, opened_at=mql_at,
                              state=lead.handoff, decided_at=decided_at,
                              reason="no budget" if lead.handoff == "rejected" else None)
            session.add(handoff)
            session.flush()
            session.add_all(_clocks(handoff.id or 0, mql_at, decided_at, now=now))


def _clocks(handoff_id: int, started: datetime, decided: datetime | None, *,
            now: datetime) -> list[SlaClock]:
    clocks = []
    for kind, target in (("accept", ACCEPT_MINUTES), ("first_touch", TOUCH_MINUTES)):
        due = started + timedelta(minutes=target)
        stopped = decided if kind == "accept" else None
        clock = SlaClock(handoff_id=handoff_id, kind=kind, target_minutes=target,
                         started_at=started, warn_due_at=started + timedelta(minutes=target * 0.75),
                         due_at=due, stopped_at=stopped, announce=False)
        if stopped is not None:
            minutes = int((stopped - started).total_seconds() // 60)
            clock.state = "met" if stopped <= due else "breached"
            clock.business_minutes = clock.calendar_minutes = minutes
        elif decided is not None:
            # first touch logged an hour after the decision, as the CRM would report it
            clock.stopped_at = decided + timedelta(hours=1)
            minutes = int((clock.stopped_at - started).total_seconds() // 60)
            clock.state = "met" if clock.stopped_at <= due else "breached"
            clock.business_minutes = clock.calendar_minutes = minutes
        else:
            clock.state = "breached" if due <= now else "running"  # as the last scan left it
        clocks.append(clock)
    return clocks


# ---------- stand-ins for endpoints this build may not mount yet ----------

HEADLINE_VALUES: dict[str, tuple[str, float | None, float | None]] = {
    # name: (unit, last 30 days, the 30 days before)
    "lead-acceptance-rate": ("ratio", 0.8, 0.6),
    "sla-compliance": ("ratio", 0.75, 0.9),
    "time-to-accept": ("business minutes", 95.0, 140.0),
    "time-to-first-touch": ("business minutes", 310.0, 260.0),
    "sales-cycle-length": ("days", 38.0, 41.5),
    "win-rate": ("ratio", 0.25, 0.2),
    "cost-of-sales": ("ratio", 0.18, 0.21),
    "marketing-sourced-share": ("ratio", 0.42, 0.35),
    "mql-commitment-attainment": ("ratio", None, None),
}


def _metric(name: str, start: str, end: str) -> dict[str, Any]:
    base: dict[str, Any] = {"metric": name, "start": f"{start}T00:00:00Z",
                            "end": f"{end}T00:00:00Z", "groups": [],
                            "definition_versions": [1], "computed_at": datetime.now(UTC)}
    if name == "funnel-conversion":
        stats = {**FUNNEL, "mql_to_sal": 0.5, "sal_to_sql": 0.5, "sql_to_won": 0.5}
        return {**base, "unit": "ratio", "count": FUNNEL["mqls"], "value": 0.125,
                "stats": stats}
    if name == "rejection-reasons":
        return {**base, "unit": "count", "count": 1, "value": 1,
                "stats": {"by_reason": [{"reason": "no budget", "count": 1, "share": 1.0}]}}
    unit, current, previous = HEADLINE_VALUES.get(name, ("ratio", None, None))
    recent = date.fromisoformat(end) > datetime.now(UTC).date() - timedelta(days=2)
    value = current if recent else previous
    return {**base, "unit": unit, "count": 0 if value is None else 12, "value": value,
            "stats": {}}


ALIGNMENT = {
    "stage": STAND_IN_STAGE,
    "survey": {"sales": {"score": 52, "stage": "Defined", "responses": 3},
               "marketing": {"score": 64, "stage": "Aligned", "responses": 2}, "gap": 12},
    "evidence": [
        {"indicator": "jointly approved lead definition active", "value": True,
         "threshold": True, "supports": "Defined", "met": True},
        {"indicator": "SLA compliance", "value": 0.75, "threshold": 0.8,
         "supports": "Aligned", "met": False},
    ],
    "next_steps": ["Hold a weekly pipeline meeting with action items.",
                   "Give sellers a one-click way to send feedback on leads."],
    "reasons_to_stay": ["Offerings are simple and the roles work."],
}


def stand_ins(app: FastAPI) -> list[str]:
    """Mount contract-shaped answers for the dashboard's endpoints the app lacks."""
    paths = {getattr(route, "path", "") for route in app.routes}
    router = APIRouter(prefix="/api/v1")
    mounted = []
    if "/api/v1/metrics/{name}" not in paths:
        @router.get("/metrics/{name}")
        def metric(name: str, _: Viewer, start: str, end: str) -> dict[str, Any]:
            return _metric(name, start, end)
        mounted.append("metrics")
    if "/api/v1/alignment" not in paths:
        @router.get("/alignment")
        def alignment(_: Viewer) -> dict[str, Any]:
            return ALIGNMENT
        mounted.append("alignment")
    app.include_router(router)
    return mounted
