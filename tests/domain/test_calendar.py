"""Business-hours calendars, checked against a minute-by-minute reference and named cases."""

from __future__ import annotations

import time as wallclock
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holiday_lib
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.handoffs.calendar import (
    WEEKDAYS,
    Calendar,
    CalendarError,
    add_business_minutes,
    build_calendar,
    business_minutes_between,
    is_holiday,
    is_open,
    next_open,
)

NY = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)
WEEK_9_TO_5 = {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}
ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago",  # changes at midnight: a day without 00:00, and 23:00 twice
    "UTC",
)
# DST changes in the zones above (2025-2026), and year ends.
CRITICAL_DAYS = (
    datetime(2026, 3, 8),
    datetime(2026, 3, 29),
    datetime(2026, 4, 5),
    datetime(2026, 9, 6),
    datetime(2026, 9, 27),
    datetime(2026, 10, 4),
    datetime(2026, 10, 25),
    datetime(2026, 11, 1),
    datetime(2025, 12, 31),
    datetime(2026, 12, 31),
)
# Interval edges near the local change hours (00:00, 01:00, 02:00, 02:45, 03:00, 03:45, 23:00).
CRITICAL_MINUTES = (0, 60, 90, 120, 150, 165, 180, 225, 1380, 1440)


# --- the reference: one minute at a time ----------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A calendar as plain minutes, read by the reference without the code under test."""

    zone: str
    hours: dict[str, list[tuple[int, int]]]
    named: frozenset[date]
    country: str | None

    def calendar(self) -> Calendar:
        raw = {day: [[_hhmm(s), _hhmm(e)] for s, e in spans] for day, spans in self.hours.items()}
        return build_calendar(
            timezone=self.zone, hours=raw, holiday_country=self.country, holidays=sorted(self.named)
        )


_PUBLIC: dict[tuple[str, int], set[date]] = {}


def ref_is_open(spec: Spec, instant: datetime) -> bool:
    local = instant.astimezone(ZoneInfo(spec.zone))
    day = local.date()
    if day in spec.named:
        return False
    if spec.country is not None:
        key = (spec.country, day.year)
        if key not in _PUBLIC:
            _PUBLIC[key] = set(holiday_lib.country_holidays(spec.country, years=day.year))
        if day in _PUBLIC[key]:
            return False
    minute = local.hour * 60 + local.minute
    return any(s <= minute < e for s, e in spec.hours[WEEKDAYS[day.weekday()]])


def ref_open_minutes(spec: Spec, start: datetime, end: datetime) -> list[datetime]:
    """Starts of the open minutes in [start, end), stepping in UTC."""
    found, at = [], start
    while at < end:
        if ref_is_open(spec, at):
            found.append(at)
        at += MINUTE
    return found


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- strategies ------------------------------------------------------------------------------

edges = st.integers(0, 1440) | st.sampled_from(CRITICAL_MINUTES)


@st.composite
def day_hours(draw: st.DrawFn) -> list[tuple[int, int]]:
    count = draw(st.integers(0, 3))
    points = sorted(draw(st.sets(edges, min_size=2 * count, max_size=2 * count)))
    return list(zip(points[::2], points[1::2], strict=True))


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    hours = {day: draw(day_hours()) for day in WEEKDAYS}
    assume(any(hours.values()))
    named = draw(
        st.frozensets(
            st.builds(
                lambda base, shift: (base + timedelta(days=shift)).date(),
                st.sampled_from(CRITICAL_DAYS),
                st.integers(-4, 4),
            ),
            max_size=4,
        )
    )
    country = draw(st.sampled_from((None, None, "US", "GB", "AU", "NZ", "IN")))
    return Spec(draw(st.sampled_from(ZONES)), hours, named, country)


instants = st.builds(
    lambda base, shift: (base + timedelta(minutes=shift)).replace(tzinfo=UTC),
    st.sampled_from(CRITICAL_DAYS),
    st.integers(-3 * 1440, 3 * 1440),
)

spans = st.integers(0, 4 * 1440) | st.integers(2 * 1440, 4 * 1440)  # minutes, often days long

fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- properties --------------------------------------------------------------------------------


@fast
@given(spec=specs(), start=instants, length=spans)
def test_minutes_between_match_the_reference(spec: Spec, start: datetime, length: int) -> None:
    cal = spec.calendar()
    end = start + length * MINUTE
    assert business_minutes_between(cal, start, end) == len(ref_open_minutes(spec, start, end))
    assert business_minutes_between(cal, end, start) == 0 or length == 0


@fast
@given(spec=specs(), start=instants, data=st.data())
def test_adding_minutes_matches_the_reference(spec: Spec, start: datetime, data: st.DataObject):
    cal = spec.calendar()
    open_minutes = ref_open_minutes(spec, start, start + timedelta(days=8))
    assume(open_minutes)
    n = data.draw(st.integers(0, min(len(open_minutes), 3 * 1440)), label="minutes")
    expected = open_minutes[0] if n == 0 else open_minutes[n - 1] + MINUTE
    assert add_business_minutes(cal, start, n) == expected
    assert next_open(cal, start) == open_minutes[0]


@fast
@given(spec=specs(), start=instants)
def test_is_open_matches_the_reference(spec: Spec, start: datetime) -> None:
    cal = spec.calendar()
    for step in range(0, 24 * 60, 7):
        at = start + step * MINUTE
        assert is_open(cal, at) == ref_is_open(spec, at), at


@fast
@given(
    spec=specs(),
    start=instants,
    jitter=st.integers(0, 59_999_999),
    n=st.integers(0, 3 * 1440),
)
def test_round_trip_counts_back_the_minutes_added(
    spec: Spec, start: datetime, jitter: int, n: int
) -> None:
    cal = spec.calendar()
    start = start + timedelta(microseconds=jitter)  # not aligned to the minute
    due = add_business_minutes(cal, start, n)
    assert business_minutes_between(cal, start, due) == n
    assert due.tzinfo == UTC
    opening = next_open(cal, start)
    assert is_open(cal, opening)
    assert business_minutes_between(cal, start, opening) == 0


# --- named cases ---------------------------------------------------------------------------------


def us_sales(**extra: object) -> Calendar:
    return build_calendar(timezone="America/New_York", hours=WEEK_9_TO_5, **extra)


def ny(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=NY)


def test_friday_afternoon_hour_lands_on_monday_morning() -> None:
    due = add_business_minutes(us_sales(), ny(2026, 3, 6, 16, 30), 60)  # DST starts on Sunday
    assert due == ny(2026, 3, 9, 9, 30)
    assert due.tzinfo == UTC


def test_thanksgiving_is_skipped_with_the_us_holidays() -> None:
    wednesday = ny(2026, 11, 25, 16, 30)
    assert add_business_minutes(us_sales(), wednesday, 60) == ny(2026, 11, 26, 9, 30)
    us = us_sales(holiday_country="US")
    assert add_business_minutes(us, wednesday, 60) == ny(2026, 11, 27, 9, 30)
    assert not is_open(us, ny(2026, 11, 26, 12, 0))


def test_christmas_eve_as_a_named_date() -> None:
    cal = us_sales(holiday_country="US", holidays=["2026-12-24"])
    assert add_business_minutes(cal, ny(2026, 12, 23, 16, 30), 60) == ny(2026, 12, 28, 9, 30)
    assert is_holiday(cal, date(2026, 12, 24)) and is_holiday(cal, date(2026, 12, 25))


def test_subdivision_holidays_apply() -> None:
    california = us_sales(holiday_country="US", holiday_subdivision="CA")
    assert is_holiday(california, date(2026, 3, 31))  # Cesar Chavez Day
    assert not is_holiday(us_sales(holiday_country="US"), date(2026, 3, 31))


def test_years_expand_country_holidays_into_the_stored_dates() -> None:
    cal = us_sales(holiday_country="us", years=range(2026, 2027))
    assert cal.holiday_country == "US"
    assert date(2026, 11, 26) in cal.holidays and date(2027, 11, 25) not in cal.holidays
    assert is_holiday(cal, date(2027, 11, 25))  # other years are still looked up


def test_a_nine_to_five_day_is_480_minutes_on_dst_change_days() -> None:
    every_day = build_calendar(
        timezone="America/New_York", hours={day: [["09:00", "17:00"]] for day in WEEKDAYS}
    )
    for day in (8, 9):
        assert business_minutes_between(every_day, ny(2026, 3, day), ny(2026, 3, day + 1)) == 480
    assert business_minutes_between(every_day, ny(2026, 11, 1), ny(2026, 11, 2)) == 480


def test_intervals_over_the_change_hour_count_the_time_that_passed() -> None:
    night = build_calendar(timezone="America/New_York", hours={"sun": [["00:00", "05:00"]]})
    assert business_minutes_between(night, ny(2026, 3, 8), ny(2026, 3, 9)) == 4 * 60
    assert business_minutes_between(night, ny(2026, 11, 1), ny(2026, 11, 2)) == 6 * 60


def test_an_interval_to_24_00_runs_into_the_next_day() -> None:
    late = build_calendar(
        timezone="UTC", hours={"sat": [["22:00", "24:00"]], "sun": [["00:00", "02:00"]]}
    )
    saturday = datetime(2026, 1, 3, 23, 0, tzinfo=UTC)
    assert is_open(late, saturday.replace(hour=23, minute=59, second=59))
    assert add_business_minutes(late, saturday, 120) == datetime(2026, 1, 4, 1, 0, tzinfo=UTC)
    assert add_business_minutes(late, saturday, 180) == datetime(2026, 1, 4, 2, 0, tzinfo=UTC)


def test_a_target_ending_at_closing_is_due_at_closing() -> None:
    assert add_business_minutes(us_sales(), ny(2026, 3, 2, 16, 0), 60) == ny(2026, 3, 2, 17, 0)
    assert add_business_minutes(us_sales(), ny(2026, 3, 2, 17, 0), 0) == ny(2026, 3, 3, 9, 0)


def test_a_calendar_that_never_opens_raises_quickly() -> None:
    closed = build_calendar(timezone="UTC", hours={})
    at = datetime(2026, 1, 1, tzinfo=UTC)
    calls = (
        lambda: is_open(closed, at),
        lambda: next_open(closed, at),
        lambda: add_business_minutes(closed, at, 60),
        lambda: business_minutes_between(closed, at, at + timedelta(days=9)),
    )
    for call in calls:
        with pytest.raises(CalendarError, match="calendar has no open hours"):
            call()


def test_years_of_holidays_over_every_open_day_raise_instead_of_looping() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=i) for i in range(4 * 53)]
    cal = build_calendar(timezone="UTC", hours={"mon": [["09:00", "10:00"]]}, holidays=mondays)
    began = wallclock.perf_counter()
    with pytest.raises(CalendarError, match="no open hours"):
        add_business_minutes(cal, datetime(2026, 1, 1, tzinfo=UTC), 30)
    assert wallclock.perf_counter() - began < 1.0
    four_years = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2029, 12, 31, tzinfo=UTC))
    assert business_minutes_between(cal, *four_years) == 0  # a bounded span just counts nothing


def test_ten_thousand_minutes_are_fast() -> None:
    began = wallclock.perf_counter()
    due = add_business_minutes(us_sales(holiday_country="US"), ny(2026, 12, 20), 10_000)
    assert wallclock.perf_counter() - began < 0.5
    assert business_minutes_between(us_sales(holiday_country="US"), ny(2026, 12, 20), due) == 10_000


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"timezone": "Mars/Olympus"}, r"^timezone: unknown IANA time zone 'Mars/Olympus'"),
        ({"timezone": ""}, r"^timezone:"),
        (
            {"hours": {"mon": [["17:00", "09:00"]]}},
            r"^hours\.mon\[0\]: start 17:00 is not before end 09:00$",
        ),
        ({"hours": {"monday": [["09:00", "17:00"]]}}, r"^hours: unknown weekday 'monday'"),
        ({"hours": {"tue": [["09:00", "25:00"]]}}, r"^hours\.tue\[0\]: end '25:00' is not a time"),
        ({"hours": {"tue": [["9am", "17:00"]]}}, r"^hours\.tue\[0\]: start '9am'"),
        ({"hours": {"wed": [["24:00", "24:00"]]}}, r"^hours\.wed\[0\]: start 24:00"),
        ({"hours": {"thu": [["09:00"]]}}, r"^hours\.thu\[0\]: expected \[start, end\]"),
        ({"hours": {"fri": "09:00-17:00"}}, r"^hours\.fri: expected a list"),
        (
            {"hours": {"fri": [["13:00", "18:00"], ["09:00", "14:00"]]}},
            r"^hours\.fri\[0\]: 13:00-18:00 overlaps 09:00-14:00",
        ),
        ({"holiday_country": "XX"}, r"^holiday_country: no public holidays known for 'XX'"),
        ({"holiday_country": "US", "holiday_subdivision": "ZZ"}, r"^holiday_subdivision:"),
        ({"holiday_subdivision": "CA"}, r"^holiday_subdivision: requires holiday_country"),
        ({"holidays": ["2026-12-24", "2026-13-01"]}, r"^holidays\[1\]: '2026-13-01' is not a date"),
    ],
)
def test_invalid_settings_name_the_field(settings_: dict[str, object], message: str) -> None:
    raw: dict[str, object] = {"timezone": "America/New_York", "hours": WEEK_9_TO_5, **settings_}
    with pytest.raises(CalendarError, match=message):
        build_calendar(**raw)  # type: ignore[arg-type]


def test_adjacent_intervals_and_24_00_are_accepted() -> None:
    cal = build_calendar(
        timezone="Asia/Kolkata", hours={"mon": [["12:00", "24:00"], ["00:00", "12:00"]]}
    )
    assert cal.hours["mon"] == ((time(0), time(12)), (time(12), time(0)))
    monday = datetime(2026, 1, 5, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert business_minutes_between(cal, monday, monday + timedelta(days=7)) == 1440


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(us_sales(), datetime(2026, 3, 2, 10, 0))
