"""The SLA clock: one reading of a handoff's accept or first-touch clock at a given instant.

Pure: the same calendar, start, stop and ``now`` always give the same view, so past handoffs
can be re-judged when a definition or calendar changes. The rules, shared by both teams:

- due is the instant counted business time from ``started_at`` reaches the target;
- stopped at or before due: met; stopped after due: breached;
- not stopped and ``now`` at or past due: breached (no stop can land before due any more,
  so the scan that runs at the due instant already flags it);
- not stopped and the business time left until due is at or below ``(1 - warn_at)`` of the
  target: warning; otherwise running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from service.handoffs.calendar import (
    Calendar,
    add_business_minutes,
    business_minutes_between,
    business_time_between,
)

__all__ = ["ClockState", "ClockView", "clock_view"]


class ClockState(StrEnum):
    RUNNING = "running"
    WARNING = "warning"
    MET = "met"
    BREACHED = "breached"


@dataclass(frozen=True)
class ClockView:
    """What the handoff shows for one clock.

    ``business_minutes`` is what the SLA judges; ``calendar_minutes`` is the wall-clock wait
    the buyer lived through. Both run from the start to the stop, or to ``now`` while running,
    and are never negative. Instants are in UTC.
    """

    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    state: ClockState
    business_minutes: int
    calendar_minutes: int


def clock_view(
    cal: Calendar,
    *,
    started_at: datetime,
    target_minutes: int,
    warn_at: float,
    stopped_at: datetime | None,
    now: datetime,
) -> ClockView:
    """Read the clock at ``now``; raises CalendarError when the calendar never opens."""
    if target_minutes < 0:
        raise ValueError(f"target_minutes must not be negative, got {target_minutes}")
    if not 0.0 <= warn_at <= 1.0:
        raise ValueError(f"warn_at must be between 0 and 1, got {warn_at}")
    # In UTC: Python subtracts datetimes sharing a tzinfo by wall clock, ignoring DST.
    started_at = _utc(started_at, "started_at")
    stopped_at = _utc(stopped_at, "stopped_at") if stopped_at is not None else None
    now = _utc(now, "now")
    due_at = add_business_minutes(cal, started_at, target_minutes)
    end = stopped_at if stopped_at is not None else now
    if stopped_at is not None:
        state = ClockState.MET if stopped_at <= due_at else ClockState.BREACHED
    elif now >= due_at:
        state = ClockState.BREACHED
    elif business_time_between(cal, now, due_at) <= _warning_threshold(target_minutes, warn_at):
        state = ClockState.WARNING
    else:
        state = ClockState.RUNNING
    return ClockView(
        started_at=started_at,
        due_at=due_at,
        stopped_at=stopped_at,
        state=state,
        business_minutes=business_minutes_between(cal, started_at, end),
        calendar_minutes=max(0, (end - started_at) // timedelta(minutes=1)),
    )


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _warning_threshold(target_minutes: int, warn_at: float) -> timedelta:
    """Business time left at which the warning starts, rounded to the second.

    Rounding keeps float noise from moving the threshold: ``(1 - 0.9) * 100`` is a hair
    under 10 minutes, and the warning must still start with exactly 10 minutes left.
    """
    return timedelta(seconds=round((1.0 - warn_at) * target_minutes * 60))
