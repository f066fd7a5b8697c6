"""Running a metric for a window and shaping its answer; recording spend and forecasts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session, select
from sqlmodel.sql.expression import SelectOfScalar

from metrics.definitions import METRICS, MetricDef
from metrics.facts import one_answer
from metrics.models import Forecast, ForecastCreate, Spend, SpendCreate
from metrics.query import GroupBy, MetricAnswer, MetricQuery, midnight
from service.auth.service import Principal
from service.db import utcnow
from service.errors import Invalid, NotFound

DEFAULT_DAYS = 90


def get_def(name: str) -> MetricDef:
    try:
        return METRICS[name]
    except KeyError:
        raise NotFound(f"no metric {name!r}; GET /api/v1/metrics lists them") from None


def parse_instant(raw: str, *, field: str) -> datetime:
    """A date means 00:00 UTC of that day; a datetime without an offset is taken as UTC."""
    try:
        if len(raw) == 10:
            return midnight(date.fromisoformat(raw))
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("expected YYYY-MM-DD or an ISO 8601 datetime",
                      field=f"query.{field}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def window(start: str | None, end: str | None, *, now: datetime | None = None
           ) -> tuple[datetime, datetime]:
    """``[start, end)``; by default the 90 days up to the end of today (UTC)."""
    today = (now or utcnow()).astimezone(UTC).date()
    end_at = parse_instant(end, field="end") if end else midnight(today + timedelta(days=1))
    start_at = (parse_instant(start, field="start") if start
                else end_at - timedelta(days=DEFAULT_DAYS))
    if end_at <= start_at:
        raise Invalid("end must be after start", field="query.end")
    return start_at, end_at


def run(session: Session, name: str, *, start: datetime, end: datetime,
        group_by: GroupBy | None = None, now: datetime | None = None,
        records: bool = False) -> MetricAnswer:
    """A metric's answer from database aggregates; with ``records``, from every record it
    counts, which the answer then lists (slower: the population endpoint's path)."""
    definition = get_def(name)
    if group_by is not None and group_by not in definition.groupings:
        allowed = ", ".join(definition.groupings) or "nothing"
        raise Invalid(f"{name} cannot be grouped by {group_by}; it groups by {allowed}",
                      field="query.group_by")
    query = MetricQuery(session=session, start=start, end=end, group_by=group_by,
                        now=now or utcnow())
    with one_answer(session):
        return (definition.records if records else definition.compute)(query)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def shaped(name: str, found: MetricAnswer, *, start: datetime, end: datetime) -> dict[str, Any]:
    """The contract's answer, with a link to the records it counted (its provenance)."""
    definition = get_def(name)
    result = found.result
    link = urlencode({"start": _iso(start), "end": _iso(end)})
    return {
        "metric": name, "start": _iso(start), "end": _iso(end), "unit": definition.unit,
        "count": result.count,
        "value": result.value if result.count else None,
        "stats": result.stats, "groups": found.groups,
        "definition_versions": found.definition_versions,
        "computed_at": _iso(utcnow()),
        "population": f"/api/v1/metrics/{name}/population?{link}",
    }


def describe(definition: MetricDef) -> dict[str, Any]:
    return {"name": definition.name, "unit": definition.unit,
            "population": definition.population, "headline": definition.headline,
            "group_by": list(definition.groupings)}


def add_spend(session: Session, body: SpendCreate, principal: Principal) -> Spend:
    spend = Spend(**body.model_dump(), created_by=principal.name)
    session.add(spend)
    session.flush()
    return spend


def add_forecast(session: Session, body: ForecastCreate, principal: Principal) -> Forecast:
    forecast = Forecast(**body.model_dump(), created_by=principal.name)
    session.add(forecast)
    session.flush()
    return forecast


def spend_query() -> SelectOfScalar[Spend]:
    return select(Spend)


def forecast_query() -> SelectOfScalar[Forecast]:
    return select(Forecast)
