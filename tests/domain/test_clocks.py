"""SLA clocks as the two teams see them: running, warning, met and breached."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.handoffs.calendar import WEEKDAYS, CalendarError, build_calendar
from service.handoffs.clocks import ClockState, ClockView, clock_view

NY = ZoneInfo("America/New_York")
US_SALES = build_calendar(
    timezone="America/New_York",
    hours={day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]},
    holiday_country="US",
)
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=NY)  # accept within 4 business hours: due 13:00


def ny(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY)


def accept_clock(*, now: datetime, stopped_at: datetime | None = None) -> ClockView:
    return clock_view(
        US_SALES,
        started_at=MONDAY_9,
        target_minutes=240,
        warn_at=0.75,
        stopped_at=stopped_at,
        now=now,
    )


def test_due_is_the_target_in_business_time() -> None:
    view = accept_clock(now=ny(2, 10))
    assert view.due_at == ny(2, 13)
    assert (view.state, view.business_minutes, view.calendar_minutes) == ("running", 60, 60)


def test_warning_starts_when_the_remaining_time_reaches_the_threshold() -> None:
    assert accept_clock(now=ny(2, 11, 59)).state is ClockState.RUNNING
    assert accept_clock(now=ny(2, 12, 0)).state is ClockState.WARNING  # 60 of 240 minutes left
    assert accept_clock(now=ny(2, 12, 59)).state is ClockState.WARNING


def test_stopped_exactly_at_due_is_met() -> None:
    view = accept_clock(now=ny(4, 10), stopped_at=ny(2, 13))
    assert view.state is ClockState.MET
    assert (view.business_minutes, view.calendar_minutes) == (240, 240)


def test_stopped_one_minute_after_due_is_breached() -> None:
    assert accept_clock(now=ny(2, 13, 1), stopped_at=ny(2, 13, 1)).state is ClockState.BREACHED


def test_an_open_clock_is_breached_from_the_due_instant() -> None:
    assert accept_clock(now=ny(2, 12, 59)).state is ClockState.WARNING
    assert accept_clock(now=ny(2, 13)).state is ClockState.BREACHED
    assert accept_clock(now=ny(2, 13, 1)).state is ClockState.BREACHED


def test_stopped_before_due_stays_met_however_late_it_is_read() -> None:
    view = accept_clock(now=ny(20, 16), stopped_at=ny(2, 10, 30))
    assert view.state is ClockState.MET
    assert view.stopped_at == ny(2, 10, 30)
    assert (view.business_minutes, view.calendar_minutes) == (90, 90)


def test_a_clock_started_after_hours_counts_from_the_opening() -> None:
    friday_evening = ny(6, 18)
    view = clock_view(
        US_SALES,
        started_at=friday_evening,
        target_minutes=60,
        warn_at=0.5,
        stopped_at=None,
        now=ny(9, 9, 30),
    )
    assert view.due_at == ny(9, 10)
    assert view.state is ClockState.WARNING  # 30 of 60 minutes left
    assert view.business_minutes == 30
    assert view.calendar_minutes == 62 * 60 + 30  # the buyer waited a weekend (and lost an hour)


def test_a_holiday_moves_the_due_time() -> None:
    view = clock_view(
        US_SALES,
        started_at=ny(25, 16, month=11),
        target_minutes=120,
        warn_at=0.75,
        stopped_at=None,
        now=ny(26, 12, month=11),  # Thanksgiving: nothing counts
    )
    assert view.due_at == ny(27, 10, month=11)
    assert (view.state, view.business_minutes) == (ClockState.RUNNING, 60)


def test_float_noise_does_not_delay_the_warning() -> None:
    def state(now: datetime) -> ClockState:
        return clock_view(
            US_SALES,
            started_at=MONDAY_9,
            target_minutes=100,
            warn_at=0.9,
            stopped_at=None,
            now=now,
        ).state

    assert state(ny(2, 10, 29)) is ClockState.RUNNING
    assert state(ny(2, 10, 30)) is ClockState.WARNING  # exactly 10 minutes left


def test_zero_target_is_due_at_the_next_opening() -> None:
    view = clock_view(
        US_SALES,
        started_at=ny(7, 10),
        target_minutes=0,
        warn_at=0.5,
        stopped_at=ny(9, 9),
        now=ny(9, 9),
    )
    assert view.due_at == ny(9, 9)
    assert view.state is ClockState.MET


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="warn_at"):
        clock_view(
            US_SALES,
            started_at=MONDAY_9,
            target_minutes=60,
            warn_at=1.5,
            stopped_at=None,
            now=MONDAY_9,
        )
    with pytest.raises(ValueError, match="target_minutes"):
        clock_view(
            US_SALES,
            started_at=MONDAY_9,
            target_minutes=-1,
            warn_at=0.5,
            stopped_at=None,
            now=MONDAY_9,
        )
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        clock_view(
            US_SALES,
            started_at=MONDAY_9,
            target_minutes=60,
            warn_at=0.5,
            stopped_at=None,
            now=datetime(2026, 3, 2, 10, 0),
        )
    never = build_calendar(timezone="UTC", hours={})
    with pytest.raises(CalendarError, match="no open hours"):
        clock_view(
            never,
            started_at=MONDAY_9,
            target_minutes=60,
            warn_at=0.5,
            stopped_at=None,
            now=MONDAY_9,
        )


ORDER = {ClockState.RUNNING: 0, ClockState.WARNING: 1, ClockState.BREACHED: 2}


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 14 * 1440).map(lambda m: MONDAY_9 + timedelta(minutes=m)),
    target=st.integers(1, 3 * 480),
    warn_at=st.floats(0.0, 1.0),
    reads=st.lists(st.integers(0, 20 * 1440), min_size=2, max_size=6),
)
def test_an_open_clock_only_moves_forward(
    start: datetime, target: int, warn_at: float, reads: list[int]
) -> None:
    """Reading later never turns warning back to running, or breached back to anything."""
    views = [
        clock_view(
            US_SALES,
            started_at=start,
            target_minutes=target,
            warn_at=warn_at,
            stopped_at=None,
            now=start + timedelta(minutes=m),
        )
        for m in sorted(reads)
    ]
    states = [ORDER[view.state] for view in views]
    assert states == sorted(states)
    assert all(v.business_minutes <= v.calendar_minutes for v in views)
    assert all((v.state is ClockState.BREACHED) == (v.business_minutes >= target) for v in views)
