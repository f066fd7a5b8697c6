"""Calendars, SLA policies, handoffs with their clocks, decisions and scans."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from service.auth.models import Role, Team
from service.auth.service import Principal
from service.crm.models import Owner
from service.db import utcnow
from service.definitions.service import check_rules
from service.deps import Editor, SessionDep, SettingsDep, Viewer, require
from service.errors import Conflict, Invalid, NotFound
from service.handoffs import service
from service.handoffs.models import BusinessCalendar, Handoff, SlaClock, SlaPolicy
from service.handoffs.scan import scan
from service.pagination import CursorParam, Limit, Paginated, paginate

router = APIRouter(prefix="/api/v1", tags=["handoffs and SLAs"])
SalesDecider = Annotated[Principal, Depends(require(Role.editor, teams=(Team.sales, Team.ops)))]


class CalendarIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(examples=["America/New_York"])
    hours: dict[str, list[list[str]]] = Field(
        examples=[{"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]}])
    holiday_country: str | None = Field(default=None, max_length=10)
    holiday_subdivision: str | None = Field(default=None, max_length=20)
    holidays: list[date] = Field(default_factory=list)


class CalendarOut(CalendarIn):
    id: int
    created_at: datetime


class PolicyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    calendar_id: int
    priority: int = Field(default=100, description="Lower numbers are tried first.")
    match: dict[str, Any] | None = Field(default=None, description="Definition grammar; "
                                         "null matches every handoff.")
    accept_within_minutes: int = Field(gt=0, le=525_600)
    first_touch_within_minutes: int = Field(gt=0, le=525_600)
    warn_at: float = Field(default=0.75, gt=0, lt=1)


class PolicyOut(PolicyIn):
    id: int
    active: bool
    created_at: datetime


class ClockOut(BaseModel):
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    state: Literal["running", "warning", "met", "breached"]
    business_minutes: int | None
    calendar_minutes: int | None
    target_minutes: int


class HandoffOut(BaseModel):
    id: int
    person_id: int
    policy_id: int | None
    owner: str | None
    owner_name: str | None = Field(default=None, description="The owner's name or email, "
                                   "from the CRM's users/owners.")
    opened_at: datetime
    state: Literal["open", "accepted", "rejected", "recycled"]
    reason: str | None
    decided_at: datetime | None
    decided_by: str | None
    definition_version: int
    system_delay_minutes: int | None
    clocks: dict[str, ClockOut]


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=200)
    recycle: bool = Field(default=False, description="Return the person to marketing nurture.")


@router.post("/calendars", status_code=status.HTTP_201_CREATED, response_model=CalendarOut)
def create_calendar(body: CalendarIn, session: SessionDep, _: Editor) -> BusinessCalendar:
    """A business-hours calendar; a calendar with no open time is refused (422)."""
    service.check_calendar(timezone=body.timezone, hours=body.hours,
                           holiday_country=body.holiday_country,
                           holiday_subdivision=body.holiday_subdivision,
                           holidays=[d.isoformat() for d in body.holidays])
    if session.exec(select(BusinessCalendar).where(BusinessCalendar.name == body.name)).first():
        raise Conflict(f"a calendar named {body.name!r} exists", field="body.name")
    row = BusinessCalendar(**body.model_dump(exclude={"holidays"}),
                           holidays=[d.isoformat() for d in body.holidays])
    session.add(row)
    session.flush()
    return row


@router.get("/calendars", response_model=Paginated[CalendarOut])
def list_calendars(session: SessionDep, _: Viewer, limit: Limit = 50,
                   cursor: CursorParam = None) -> dict[str, Any]:
    items, nxt = paginate(session, select(BusinessCalendar), BusinessCalendar.id, limit=limit,
                          cursor=cursor)
    return {"items": items, "next_cursor": nxt}


@router.get("/calendars/{calendar_id}", response_model=CalendarOut)
def get_calendar(calendar_id: int, session: SessionDep, _: Viewer) -> BusinessCalendar:
    row = session.get(BusinessCalendar, calendar_id)
    if row is None:
        raise NotFound(f"no calendar {calendar_id}")
    return row


@router.post("/sla-policies", status_code=status.HTTP_201_CREATED, response_model=PolicyOut)
def create_policy(body: PolicyIn, session: SessionDep, _: Editor) -> SlaPolicy:
    if session.get(BusinessCalendar, body.calendar_id) is None:
        raise Invalid(f"no calendar {body.calendar_id}", field="body.calendar_id")
    if body.match is not None:
        try:
            check_rules(body.match)
        except Invalid as exc:
            raise Invalid(exc.message, field=(exc.field or "").replace("body.rules",
                                                                       "body.match")) from None
    if session.exec(select(SlaPolicy).where(SlaPolicy.name == body.name)).first():
        raise Conflict(f"a policy named {body.name!r} exists", field="body.name")
    row = SlaPolicy(**body.model_dump())
    session.add(row)
    session.flush()
    return row


@router.get("/sla-policies", response_model=Paginated[PolicyOut])
def list_policies(session: SessionDep, _: Viewer, limit: Limit = 50,
                  cursor: CursorParam = None) -> dict[str, Any]:
    items, nxt = paginate(session, select(SlaPolicy), SlaPolicy.id, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": nxt}


def owner_names(session: Session, keys: set[str | None]) -> dict[str, str]:
    wanted = [k for k in keys if k]
    if not wanted:
        return {}
    return {o.key: o.name or o.email or o.key
            for o in session.exec(select(Owner).where(col(Owner.key).in_(wanted)))}


def handoff_out(session: Session, handoff: Handoff, *, now: datetime | None = None,
                names: dict[str, str] | None = None) -> dict[str, Any]:
    now = now or utcnow()
    if names is None:
        names = owner_names(session, {handoff.owner_key})
    policy = session.get(SlaPolicy, handoff.policy_id) if handoff.policy_id else None
    warn_at = policy.warn_at if policy else 0.75
    clocks = service.clocks_of(session, [handoff.id]).get(handoff.id, {})  # type: ignore[list-item]
    return {**handoff.model_dump(), "owner": handoff.owner_key,
            "owner_name": names.get(handoff.owner_key or ""),
            "clocks": {k: service.view_clock(session, handoff, c, now=now, policy_warn_at=warn_at)
                       for k, c in clocks.items()}}


@router.get("/handoffs", response_model=Paginated[HandoffOut])
def list_handoffs(session: SessionDep, _: Viewer, state: str | None = None,
                  sla: str | None = None, owner: str | None = None, policy: int | None = None,
                  limit: Limit = 50, cursor: CursorParam = None) -> dict[str, Any]:
    """An ops queue: filter by handoff state, any clock's SLA state, owner and policy."""
    stmt = select(Handoff)
    if state:
        stmt = stmt.where(Handoff.state == state)
    if owner:
        stmt = stmt.where(Handoff.owner_key == owner)
    if policy is not None:
        stmt = stmt.where(Handoff.policy_id == policy)
    if sla:
        if sla not in ("running", "warning", "met", "breached"):
            raise Invalid("must be running, warning, met or breached", field="query.sla")
        stmt = stmt.where(col(Handoff.id).in_(select(SlaClock.handoff_id)
                                              .where(SlaClock.state == sla)))
    items, nxt = paginate(session, stmt, Handoff.id, limit=limit, cursor=cursor,
                          descending=True)
    now = utcnow()
    names = owner_names(session, {h.owner_key for h in items})
    return {"items": [handoff_out(session, h, now=now, names=names) for h in items],
            "next_cursor": nxt}


@router.get("/handoffs/{handoff_id}", response_model=HandoffOut)
def get_handoff(handoff_id: int, session: SessionDep, _: Viewer) -> dict[str, Any]:
    return handoff_out(session, service.get_handoff(session, handoff_id))


@router.post("/handoffs/{handoff_id}/accept", response_model=HandoffOut)
def accept(handoff_id: int, session: SessionDep, settings: SettingsDep,
           principal: SalesDecider) -> dict[str, Any]:
    """Sales agrees to work the lead: stops the accept clock now."""
    handoff = service.get_handoff(session, handoff_id)
    service.decide(session, handoff, accepted=True, reason=None, recycle=False,
                   by=principal.name, reasons=tuple(settings.rejection_reasons))
    return handoff_out(session, handoff)


@router.post("/handoffs/{handoff_id}/reject", response_model=HandoffOut)
def reject(handoff_id: int, body: RejectBody, session: SessionDep, settings: SettingsDep,
           principal: SalesDecider) -> dict[str, Any]:
    """Sales declines with a reason from the taxonomy (`TRUCE_REJECTION_REASONS`)."""
    handoff = service.get_handoff(session, handoff_id)
    service.decide(session, handoff, accepted=False, reason=body.reason, recycle=body.recycle,
                   by=principal.name, reasons=tuple(settings.rejection_reasons))
    return handoff_out(session, handoff)


@router.post("/handoffs/{handoff_id}/touch", response_model=HandoffOut)
def touch(handoff_id: int, session: SessionDep, _: SalesDecider) -> dict[str, Any]:
    """A first call, email or meeting happened now: stops the first-touch clock."""
    handoff = service.get_handoff(session, handoff_id)
    service.touch(session, handoff)
    return handoff_out(session, handoff)


@router.post("/sla-scans")
def run_scan(session: SessionDep, _: Editor) -> dict[str, int]:
    """Evaluate open clocks now; warnings and breaches are recorded for delivery once."""
    service.open_missing_handoffs(session)
    return scan(session).as_dict()
