"""The records a metric's population is made of, as the repository hands them over.

Each carries its grouping ``facets`` and a ``ref()`` listing it on the population endpoint,
so anyone can check which handoffs, clocks, MQLs, deals or spend a number stands on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from metrics.formulas import FunnelPath
from metrics.query import Facets


@dataclass(frozen=True)
class HandoffRecord:
    id: int
    person_id: int
    state: str  # accepted, rejected, or pending (undecided at the window's end)
    reason: str | None
    decided_at: datetime | None
    definition_version: int
    facets: Facets

    def ref(self) -> dict[str, Any]:
        return {"kind": "handoff", "id": self.id, "person_id": self.person_id,
                "state": self.state, "reason": self.reason, "decided_at": self.decided_at}


@dataclass(frozen=True)
class ClockRecord:
    id: int
    handoff_id: int
    person_id: int
    kind: str
    outcome: str  # met, breached, or pending (not yet due)
    due_at: datetime
    stopped_at: datetime | None
    business_minutes: int | None
    calendar_minutes: int | None
    definition_version: int
    facets: Facets

    def ref(self) -> dict[str, Any]:
        return {"kind": "sla_clock", "id": self.id, "handoff_id": self.handoff_id,
                "person_id": self.person_id, "clock": self.kind, "outcome": self.outcome,
                "due_at": self.due_at, "stopped_at": self.stopped_at,
                "business_minutes": self.business_minutes,
                "calendar_minutes": self.calendar_minutes}


@dataclass(frozen=True)
class MqlRecord:
    event_id: int
    person_id: int
    at: datetime
    definition_version: int | None
    path: FunnelPath
    facets: Facets

    def ref(self) -> dict[str, Any]:
        return {"kind": "mql", "event_id": self.event_id, "person_id": self.person_id,
                "at": self.at, "definition_version": self.definition_version,
                "reached_sal": self.path.reached_sal, "reached_sql": self.path.reached_sql,
                "won": self.path.won}


@dataclass(frozen=True)
class DealRecord:
    key: str
    amount: float
    role: str  # won, lost, open
    created_at: datetime | None
    close_date: date | None
    person_id: int | None
    customer: str
    lead_created: date | None
    facets: Facets
    sourced: bool = False  # the person was an MQL before the opportunity was created
    mql_version: int | None = None  # that MQL's definition version

    @property
    def cycle_days(self) -> int | None:
        """Days from the opportunity's created date to its close date, both in UTC."""
        if self.created_at is None or self.close_date is None:
            return None
        return (self.close_date - self.created_at.date()).days

    @property
    def lead_cycle_days(self) -> int | None:
        if self.lead_created is None or self.close_date is None:
            return None
        return (self.close_date - self.lead_created).days

    def ref(self) -> dict[str, Any]:
        return {"kind": "opportunity", "key": self.key, "amount": self.amount,
                "role": self.role, "person_id": self.person_id, "created_at": self.created_at,
                "close_date": self.close_date, "marketing_sourced": self.sourced}


@dataclass(frozen=True)
class CustomerRecord:
    """A customer (account, else person) whose first won deal closed in the window."""

    customer: str
    first_deal: str
    close_date: date
    facets: Facets

    def ref(self) -> dict[str, Any]:
        return {"kind": "new_customer", "customer": self.customer,
                "first_deal": self.first_deal, "close_date": self.close_date}


@dataclass(frozen=True)
class SpendRecord:
    """Spend prorated to the window by the days its period overlaps it."""

    ref_id: str
    team: str
    amount: float
    full_amount: float
    period_start: date
    period_end: date
    facets: Facets = Facets()

    def ref(self) -> dict[str, Any]:
        return {"kind": "spend", "id": self.ref_id, "team": self.team, "amount": self.amount,
                "full_amount": self.full_amount, "period_start": self.period_start,
                "period_end": self.period_end}


@dataclass(frozen=True)
class ForecastRecord:
    id: int
    period_start: date
    period_end: date
    forecast: float
    actual: float
    facets: Facets

    def ref(self) -> dict[str, Any]:
        return {"kind": "forecast", "id": self.id, "period_start": self.period_start,
                "period_end": self.period_end, "forecast": self.forecast, "actual": self.actual,
                "segment": self.facets.segment, "team": self.facets.team}


@dataclass(frozen=True)
class CommitmentRecord:
    id: int
    period_start: date
    period_end: date
    committed: int
    delivered: int
    facets: Facets

    def ref(self) -> dict[str, Any]:
        return {"kind": "commitment", "id": self.id, "period_start": self.period_start,
                "period_end": self.period_end, "committed": self.committed,
                "delivered": self.delivered, "segment": self.facets.segment}
