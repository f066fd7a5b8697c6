"""Lead definitions: versions, two-team approval, back-tests, and a person's qualification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Engine
from sqlmodel import Session, select

from service.db import unit_of_work, utcnow
from service.definitions import service
from service.definitions.backtest import run_backtest
from service.definitions.facts import load_facts
from service.definitions.models import BacktestJob, LeadDefinition
from service.definitions.qualification import activate_and_replay
from service.definitions.rules import evaluate, explain, first_met_at
from service.deps import Editor, SessionDep, SettingsDep, Viewer
from service.errors import NotFound
from service.pagination import CursorParam, Limit, Paginated, paginate
from service.people.repository import get_person

router = APIRouter(prefix="/api/v1", tags=["lead definitions"])
INLINE_BACKTEST_LIMIT = 20_000


class DefinitionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    rules: dict[str, Any]
    notes: str | None = Field(default=None, max_length=4000)


class DefinitionEdit(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    rules: dict[str, Any] | None = None
    notes: str | None = Field(default=None, max_length=4000)


class ProposeBody(BaseModel):
    effective_from: datetime | None = Field(
        default=None, description="When the version becomes active once approved (default: "
        "at approval).")


class ApprovalPublic(BaseModel):
    team: str
    key_name: str
    at: datetime


class DefinitionPublic(BaseModel):
    id: int
    version: int
    name: str
    notes: str | None
    rules: dict[str, Any]
    state: str
    created_by: str
    created_at: datetime
    proposed_at: datetime | None
    approved_at: datetime | None
    effective_from: datetime | None
    activated_at: datetime | None
    superseded_at: datetime | None
    approvals: list[ApprovalPublic]


class BacktestBody(BaseModel):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> BacktestBody:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone offset (e.g. 2026-01-01T00:00:00Z)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class BacktestPublic(BaseModel):
    id: int
    definition_id: int
    start: datetime
    end: datetime
    status: str
    progress: float
    result: dict[str, Any] | None
    error: str | None


def _public(session: Session, definition: LeadDefinition) -> dict[str, Any]:
    assert definition.id is not None
    return {**definition.model_dump(), "approvals": service.approvals(session, definition.id)}


@router.post("/lead-definitions", status_code=status.HTTP_201_CREATED,
             response_model=DefinitionPublic)
def create_definition(body: DefinitionCreate, session: SessionDep, principal: Editor
                      ) -> dict[str, Any]:
    """A new draft version; rules are validated and a bad path is a 422 naming it."""
    draft = service.create_draft(session, name=body.name, rules=body.rules, notes=body.notes,
                                 principal=principal)
    return _public(session, draft)


@router.get("/lead-definitions", response_model=Paginated[DefinitionPublic])
def list_definitions(session: SessionDep, _: Viewer, limit: Limit = 50,
                     cursor: CursorParam = None) -> dict[str, Any]:
    items, next_cursor = paginate(session, select(LeadDefinition), LeadDefinition.id,
                                  limit=limit, cursor=cursor, descending=True)
    return {"items": [_public(session, d) for d in items], "next_cursor": next_cursor}


@router.get("/lead-definitions/active", response_model=DefinitionPublic)
def get_active(session: SessionDep, _: Viewer) -> dict[str, Any]:
    active = service.active_definition(session)
    if active is None:
        raise NotFound("no lead definition is active yet")
    return _public(session, active)


@router.get("/lead-definitions/{definition_id}", response_model=DefinitionPublic)
def get_definition(definition_id: int, session: SessionDep, _: Viewer) -> dict[str, Any]:
    return _public(session, service.get_definition(session, definition_id))


@router.patch("/lead-definitions/{definition_id}", response_model=DefinitionPublic)
def edit_definition(definition_id: int, body: DefinitionEdit, session: SessionDep, _: Editor
                    ) -> dict[str, Any]:
    """Drafts only: a proposed version is frozen (409)."""
    definition = service.get_definition(session, definition_id)
    service.edit_draft(session, definition, name=body.name, rules=body.rules, notes=body.notes)
    return _public(session, definition)


@router.post("/lead-definitions/{definition_id}/propose", response_model=DefinitionPublic)
def propose(definition_id: int, session: SessionDep, _: Editor,
            body: ProposeBody | None = None) -> dict[str, Any]:
    definition = service.get_definition(session, definition_id)
    service.propose(session, definition, effective_from=body.effective_from if body else None)
    return _public(session, definition)


@router.post("/lead-definitions/{definition_id}/approve", response_model=DefinitionPublic)
def approve(definition_id: int, session: SessionDep, settings: SettingsDep, principal: Editor
            ) -> dict[str, Any]:
    """Record the caller's team; with both teams in, the version activates on its date."""
    definition = service.get_definition(session, definition_id)
    service.approve(session, definition, principal)
    if definition.state == "approved" and activate_and_replay(session, settings) is not None:
        from service.handoffs.service import open_missing_handoffs

        open_missing_handoffs(session)
    return _public(session, definition)


@router.post("/lead-definitions/{definition_id}/backtest", response_model=BacktestPublic,
             responses={202: {"model": BacktestPublic, "description": "running as a job"}})
def backtest(definition_id: int, body: BacktestBody, request: Request, response: Response,
             background: BackgroundTasks, session: SessionDep, principal: Viewer) -> BacktestJob:
    """Replay the version over `[start, end)` beside the active one; large ones run as a job."""
    from sqlalchemy import func

    from service.people.models import Person

    definition = service.get_definition(session, definition_id)
    job = BacktestJob(definition_id=definition_id, start=body.start, end=body.end,
                      requested_by=principal.name)
    session.add(job)
    session.flush()
    persons = session.exec(select(func.count()).select_from(Person)).one()
    if persons <= INLINE_BACKTEST_LIMIT:
        _compute(session, job, definition)
        return job
    engine: Engine = request.app.state.engine
    job_id = job.id
    background.add_task(_run_job, engine, job_id)
    response.status_code = status.HTTP_202_ACCEPTED
    return job


def _compute(session: Session, job: BacktestJob, definition: LeadDefinition) -> None:
    job.status = "running"

    def progress(fraction: float) -> None:
        job.progress = round(fraction, 3)

    job.result = run_backtest(session, definition, service.active_definition(session),
                              start=job.start, end=job.end, now=utcnow(), progress=progress)
    job.status, job.progress, job.finished_at = "done", 1.0, utcnow()
    session.add(job)


def _run_job(engine: Engine, job_id: int) -> None:
    try:
        with unit_of_work(engine) as session:
            job = session.get(BacktestJob, job_id)
            assert job is not None
            _compute(session, job, service.get_definition(session, job.definition_id))
    except Exception as exc:  # noqa: BLE001 - recorded on the job for the caller to read
        with unit_of_work(engine) as session:
            job = session.get(BacktestJob, job_id)
            if job is not None:
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]


@router.get("/backtests/{job_id}", response_model=BacktestPublic)
def get_backtest(job_id: int, session: SessionDep, _: Viewer) -> BacktestJob:
    job = session.get(BacktestJob, job_id)
    if job is None:
        raise NotFound(f"no back-test {job_id}")
    return job


@router.get("/backtests/{job_id}/persons", response_model=Paginated[int])
def backtest_persons(job_id: int, session: SessionDep, _: Viewer, which: str = "added",
                     limit: Limit = 100, cursor: CursorParam = None) -> dict[str, Any]:
    """Who the candidate would add (or drop, with `which=dropped`), as person ids."""
    from service.errors import Invalid
    from service.pagination import decode, encode

    job = get_backtest(job_id, session, _)
    if which not in ("added", "dropped"):
        raise Invalid("must be added or dropped", field="query.which")
    ids: list[int] = (job.result or {}).get(which, [])
    after = decode(cursor)
    rest = [i for i in ids if after is None or i > after]
    page = rest[:limit]
    return {"items": page, "next_cursor": encode(page[-1]) if len(rest) > limit else None}


@router.get("/persons/{person_id}/qualification")
def qualification(person_id: int, session: SessionDep, _: Viewer
                  ) -> dict[str, Any]:
    """The active definition evaluated for this person, criterion by criterion."""
    person = get_person(session, person_id)
    active = service.active_definition(session)
    if active is None:
        raise NotFound("no lead definition is active yet")
    facts = load_facts(session, [person]).get(person.id)  # type: ignore[arg-type]
    now = utcnow()
    if facts is None:
        return {"person_id": person.id, "definition_version": active.version, "met": False,
                "mql_at": None, "criteria": [], "detail": "no CRM data with a creation date"}
    outcome = evaluate(active.rules, facts, at=now)
    mql_at = first_met_at(active.rules, facts, now=now)
    return {"person_id": person.id, "definition_version": active.version,
            "met": outcome.passed, "mql_at": mql_at, "evaluated_at": now,
            "criteria": explain(outcome)}
