"""What a metric is asked (window, grouping) and what it answers, plus grouping helpers.

Every metric fetches its population as records that carry their ``Facets``; grouping then
applies the metric's own reducer to each subset, so a group is computed by the same formula
as the headline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, Protocol, TypeVar

from sqlmodel import Session

from metrics.formulas import MetricValue

GroupBy = Literal["source", "segment", "owner", "team"]
GROUPINGS: tuple[GroupBy, ...] = ("source", "segment", "owner", "team")
UNKNOWN = "unknown"
UNASSIGNED = "unassigned"


def segment_of(employees: int | None) -> str:
    """Company size band: SMB under 100 employees, Mid-Market under 1,000, else Enterprise."""
    if employees is None:
        return UNKNOWN
    if employees < 100:
        return "SMB"
    if employees < 1000:
        return "Mid-Market"
    return "Enterprise"


@dataclass(frozen=True)
class Facets:
    """The attributes a record can be grouped by."""

    source: str = UNKNOWN
    segment: str = UNKNOWN
    owner: str = UNASSIGNED
    team: str = UNASSIGNED

    def key(self, group_by: GroupBy) -> str:
        value: str = getattr(self, group_by)
        return value


class Record(Protocol):
    """A member of a population: groupable, and listable on the population endpoint."""

    @property
    def facets(self) -> Facets: ...

    def ref(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class MetricQuery:
    """A window ``[start, end)`` in UTC, an optional grouping, and the clock to judge by."""

    session: Session
    start: datetime
    end: datetime
    group_by: GroupBy | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def first_day(self) -> date:
        """The first date whose 00:00 UTC lies in the window."""
        return _ceil_day(self.start)

    @property
    def end_day(self) -> date:
        """The first date whose 00:00 UTC lies at or after the window's end (excluded)."""
        return _ceil_day(self.end)


def _ceil_day(instant: datetime) -> date:
    instant = instant.astimezone(UTC)
    day = instant.date()
    return day if instant.time() == time(0) else day + timedelta(days=1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class MetricAnswer:
    """The headline with its groups, the versions involved and the records counted."""

    result: MetricValue
    groups: list[dict[str, Any]] = field(default_factory=list)
    definition_versions: list[int] = field(default_factory=list)
    records: Sequence[Record] = ()


def answer(query: MetricQuery, records: Sequence[R],
                      reduce: Callable[[Sequence[R]], MetricValue], *,
                      versions: Sequence[int | None] = (),
                      default_groups: Callable[[MetricValue], list[dict[str, Any]]] | None = None
                      ) -> MetricAnswer:
    """Reduce the whole population, and each group of it with the same reducer."""
    result = reduce(records)
    if query.group_by is not None:
        groups = group(records, reduce, query.group_by)
    else:
        groups = default_groups(result) if default_groups else []
    return MetricAnswer(result=result, groups=groups, records=records,
                        definition_versions=sorted({v for v in versions if v is not None}))


def group(records: Sequence[R], reduce: Callable[[Sequence[R]], MetricValue],
                     group_by: GroupBy) -> list[dict[str, Any]]:
    """``[{"key", "value", "count", "stats"}]`` by group key, largest population first."""
    buckets: dict[str, list[R]] = {}
    for record in records:
        buckets.setdefault(record.facets.key(group_by), []).append(record)
    rows = []
    for key, members in buckets.items():
        result = reduce(members)
        rows.append({"key": key, "value": result.value, "count": result.count,
                     "stats": result.stats})
    return sorted(rows, key=lambda row: (-row["count"], row["key"]))
