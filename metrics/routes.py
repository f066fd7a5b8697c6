"""Shared metrics, their populations, and the spend and forecasts the CRMs do not hold."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from metrics import service
from metrics.definitions import METRICS
from metrics.models import Forecast, ForecastCreate, ForecastPublic, Spend, SpendCreate, SpendPublic
from metrics.query import GroupBy
from service.alignment.service import record_metric_read
from service.deps import Editor, SessionDep, Viewer
from service.pagination import CursorParam, Limit, Paginated, decode, encode, paginate

router = APIRouter(prefix="/api/v1", tags=["metrics"])

Start = Annotated[str | None, Query(description="YYYY-MM-DD (00:00 UTC) or an ISO datetime; "
                                    "default: 90 days before `end`.")]
End = Annotated[str | None, Query(description="Excluded; default: the end of today (UTC).")]
GroupParam = Annotated[GroupBy | None, Query(description="Group by source, segment, owner or "
                                             "team.")]


@router.get("/metrics")
def list_metrics(_: Viewer) -> dict[str, Any]:
    """Every shared metric: its unit, the population it counts and its headline value."""
    return {"items": [service.describe(d) for d in METRICS.values()]}


@router.get("/metrics/{name}", responses={404: {"description": "unknown metric"}})
def get_metric(name: str, request: Request, session: SessionDep, principal: Viewer,
               start: Start = None, end: End = None, group_by: GroupParam = None
               ) -> dict[str, Any]:
    """One metric for the window ``[start, end)``, optionally grouped; the read is recorded
    (once an hour per metric and key) as evidence that the shared metrics are in use."""
    service.get_def(name)
    begin, finish = service.window(start, end)
    found = service.run(session, name, start=begin, end=finish, group_by=group_by)
    record_metric_read(session, name, principal.name,
                       ledger=request.app.state.metric_reads)
    return service.shaped(name, found, start=begin, end=finish)


@router.get("/metrics/{name}/population", responses={404: {"description": "unknown metric"}})
def get_population(name: str, session: SessionDep, _: Viewer, start: Start = None,
                   end: End = None, limit: Limit = 100, cursor: CursorParam = None
                   ) -> dict[str, Any]:
    """The records a metric counted in the window: handoffs, clocks, MQLs, deals, spend."""
    service.get_def(name)
    begin, finish = service.window(start, end)
    records = service.run(session, name, start=begin, end=finish, records=True).records
    offset = decode(cursor) or 0
    page = records[offset:offset + limit]
    more = offset + limit < len(records)
    return {"items": [r.ref() for r in page], "total": len(records),
            "next_cursor": encode(offset + limit) if more else None}


@router.post("/spend", status_code=status.HTTP_201_CREATED, response_model=SpendPublic)
def create_spend(body: SpendCreate, session: SessionDep, principal: Editor) -> Spend:
    """Spend of a team over a period (both dates included); prorated into metric windows."""
    return service.add_spend(session, body, principal)


@router.get("/spend", response_model=Paginated[SpendPublic])
def list_spend(session: SessionDep, _: Viewer, limit: Limit = 50,
               cursor: CursorParam = None) -> dict[str, Any]:
    items, next_cursor = paginate(session, service.spend_query(), Spend.id, limit=limit,
                                  cursor=cursor, descending=True)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/forecasts", status_code=status.HTTP_201_CREATED, response_model=ForecastPublic)
def create_forecast(body: ForecastCreate, session: SessionDep, principal: Editor) -> Forecast:
    """Forecast won revenue for a period, judged by forecast-accuracy once it ends."""
    return service.add_forecast(session, body, principal)


@router.get("/forecasts", response_model=Paginated[ForecastPublic])
def list_forecasts(session: SessionDep, _: Viewer, limit: Limit = 50,
                   cursor: CursorParam = None) -> dict[str, Any]:
    items, next_cursor = paginate(session, service.forecast_query(), Forecast.id, limit=limit,
                                  cursor=cursor, descending=True)
    return {"items": items, "next_cursor": next_cursor}
