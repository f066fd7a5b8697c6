"""Sync runs and the quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Request, status
from pydantic import BaseModel
from sqlmodel import select

from service.deps import Editor, SessionDep, SettingsDep, Viewer
from service.errors import NotFound
from service.pagination import CursorParam, Limit, Paginated, paginate
from service.sync.engine import execute_run
from service.sync.models import Quarantined, SyncRun
from service.sync.service import page_hooks, queue_run
from service.sync.sources import build_connector

router = APIRouter(prefix="/api/v1", tags=["sync"])


class SyncRequest(BaseModel):
    source: Literal["salesforce", "hubspot"]
    full: bool = False


class SyncRunPublic(BaseModel):
    id: int
    source: str
    status: str
    full: bool
    started_at: datetime | None
    finished_at: datetime | None
    current_stream: str | None
    counts: dict[str, dict[str, int]]
    api_calls: int
    error: str | None
    requested_by: str | None


class QuarantinedPublic(BaseModel):
    id: int
    source: str
    object: str
    external_id: str
    reason: str
    payload: dict[str, Any]
    first_seen: datetime
    last_seen: datetime


@router.post("/syncs", status_code=status.HTTP_202_ACCEPTED, response_model=SyncRunPublic)
def start_sync(body: SyncRequest, request: Request, background: BackgroundTasks,
               session: SessionDep, settings: SettingsDep, principal: Editor) -> SyncRun:
    """Queue a run and start it after answering; a source already syncing is `skipped`."""
    run = queue_run(session, settings, body.source, full=body.full, requested_by=principal.name)
    engine = request.app.state.engine
    assert run.id is not None
    run_id = run.id
    background.add_task(lambda: execute_run(engine, run_id, build_connector(settings, body.source),
                                            page_hooks=page_hooks(settings),
                                            mapping=settings.decisions()))
    return run


@router.get("/syncs", response_model=Paginated[SyncRunPublic])
def list_syncs(session: SessionDep, _: Viewer, limit: Limit = 50, cursor: CursorParam = None,
               source: str | None = None) -> dict[str, Any]:
    """Runs, newest first."""
    stmt = select(SyncRun)
    if source:
        stmt = stmt.where(SyncRun.source == source)
    items, next_cursor = paginate(session, stmt, SyncRun.id, limit=limit, cursor=cursor,
                                  descending=True)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/syncs/{run_id}", response_model=SyncRunPublic)
def get_sync(run_id: int, session: SessionDep, _: Viewer) -> SyncRun:
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id}")
    return run


@router.get("/quarantine", response_model=Paginated[QuarantinedPublic])
def list_quarantine(session: SessionDep, _: Viewer, limit: Limit = 50, cursor: CursorParam = None,
                    source: str | None = None) -> dict[str, Any]:
    """CRM rows that failed validation, with the reason; fixed rows leave on the next sync."""
    stmt = select(Quarantined)
    if source:
        stmt = stmt.where(Quarantined.source == source)
    items, next_cursor = paginate(session, stmt, Quarantined.id, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}
