"""Business-hours calendars: when a handoff clock counts, and how far it has counted.

A calendar is an IANA time zone, weekly open intervals in local wall-clock time, and holidays
(a country's public holidays from the ``holidays`` library, looked up lazily per year, plus
named dates). Both teams must be able to predict the numbers, so the rules are few:

- An instant is open when its local wall-clock time lies inside an open interval of its local
  date, and that date is neither a named nor a public holiday. Intervals are half open
  ``[start, end)``; an end of ``24:00`` (stored as ``time(0)``) runs to the end of the day.
- Daylight saving follows from that rule: a local 09:00-17:00 day is 480 minutes on every date
  whose change happens outside those hours; an interval spanning a skipped hour loses it and
  one spanning a repeated hour counts it twice, because that is the time that really passed.
- Time is counted exactly and reported in whole minutes: the business minutes between two
  instants are the open seconds between them floored to minutes, so
  ``business_minutes_between(s, add_business_minutes(s, n)) == n`` for every ``s``.
- Computations walk day by day over precomputed open pieces, never minute by minute, and
  give up with ``CalendarError`` after three years without open time instead of looping.

Inputs must be timezone-aware; results are in UTC.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_lib

__all__ = [
    "MAX_CLOSED_DAYS",
    "WEEKDAYS",
    "Calendar",
    "CalendarError",
    "add_business_minutes",
    "build_calendar",
    "business_minutes_between",
    "business_time_between",
    "is_holiday",
    "is_open",
    "next_open",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CLOSED_DAYS = 3 * 366
"""Days without open time after which a search gives up: a calendar that never opens."""

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)

Interval = tuple[time, time]
Piece = tuple[datetime, datetime]  # an open stretch as naive UTC instants, half open


class CalendarError(ValueError):
    """A calendar that is malformed, or that cannot answer (it never opens)."""


@dataclass(frozen=True)
class Calendar:
    """A validated calendar; build it with :func:`build_calendar`.

    ``hours`` has every weekday (possibly with no intervals), sorted; an interval end of
    ``time(0)`` means 24:00. ``holidays`` holds named dates (and any country holidays expanded
    eagerly for ``years``); country holidays of other years are looked up when needed.
    """

    timezone: str
    hours: dict[str, tuple[Interval, ...]] = field(hash=False)
    holidays: frozenset[date] = frozenset()
    holiday_country: str | None = None
    holiday_subdivision: str | None = None


def build_calendar(
    *,
    timezone: str,
    hours: Mapping[str, Sequence[Sequence[str]]],
    holiday_country: str | None = None,
    holiday_subdivision: str | None = None,
    holidays: Sequence[str | date] = (),
    years: range | None = None,
) -> Calendar:
    """Validate raw settings (as the API receives them) into a Calendar.

    Errors name the field, e.g. ``hours.mon[0]: start 17:00 is not before end 09:00``, so a
    user can fix the request. A calendar without any open interval is accepted (it may be a
    draft) but every computation on it raises CalendarError.
    """
    _zone_or_error(timezone)
    parsed = _parse_hours(hours)
    country, subdivision = _check_country(holiday_country, holiday_subdivision)
    named = {_parse_date(value, f"holidays[{i}]") for i, value in enumerate(holidays)}
    if country is not None and years is not None:
        for year in years:
            named |= _country_holidays(country, subdivision, year)
    return Calendar(
        timezone=timezone,
        hours=parsed,
        holidays=frozenset(named),
        holiday_country=country,
        holiday_subdivision=subdivision,
    )


def is_holiday(cal: Calendar, day: date) -> bool:
    """Whether a local date is closed as a named or public holiday."""
    if day in cal.holidays:
        return True
    if cal.holiday_country is None:
        return False
    return day in _country_holidays(cal.holiday_country, cal.holiday_subdivision, day.year)


def is_open(cal: Calendar, at: datetime) -> bool:
    """Whether the clock counts at this instant."""
    _require_open_hours(cal)
    local = _aware(at, "at").astimezone(ZoneInfo(cal.timezone))
    day = local.date()
    if is_holiday(cal, day):
        return False
    clock = local.time().replace(tzinfo=None)
    return any(
        start <= clock and (end == time(0) or clock < end)
        for start, end in cal.hours.get(WEEKDAYS[day.weekday()], ())
    )


def next_open(cal: Calendar, at: datetime) -> datetime:
    """The first open instant at or after ``at`` (``at`` itself when open), in UTC."""
    origin = _naive_utc(_aware(at, "at"))
    for start, _end in _open_pieces(cal, origin):
        return _as_utc(max(start, origin))
    raise AssertionError("unreachable: the open-piece search ends only by raising")


def add_business_minutes(cal: Calendar, start: datetime, minutes: int) -> datetime:
    """The instant at which open time counted from ``start`` reaches ``minutes``, in UTC.

    A start outside hours counts from the next opening. With ``minutes == 0`` the answer is
    the next opening (``start`` itself when open): a zero-minute target is due as soon as
    anyone could act. A target that ends exactly at closing is due at closing, not at the
    next opening.
    """
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, got {minutes}")
    if minutes == 0:
        return next_open(cal, start)
    origin = _naive_utc(_aware(start, "start"))
    remaining = timedelta(minutes=minutes)
    for piece_start, piece_end in _open_pieces(cal, origin):
        counted_from = max(piece_start, origin)
        available = piece_end - counted_from
        if available >= remaining:
            return _as_utc(counted_from + remaining)
        remaining -= available
    raise AssertionError("unreachable: the open-piece search ends only by raising")


def business_minutes_between(cal: Calendar, a: datetime, b: datetime) -> int:
    """Whole minutes of open time in ``[a, b)``; 0 when ``b <= a``."""
    return business_time_between(cal, a, b) // _MINUTE


def business_time_between(cal: Calendar, a: datetime, b: datetime) -> timedelta:
    """Exact open time in ``[a, b)``, for callers that must not round (warning thresholds)."""
    lo, hi = _naive_utc(_aware(a, "a")), _naive_utc(_aware(b, "b"))
    _require_open_hours(cal)
    total = timedelta(0)
    if hi <= lo:
        return total
    for piece_start, piece_end in _open_pieces(cal, lo, until=hi):
        overlap = min(piece_end, hi) - max(piece_start, lo)
        if overlap > timedelta(0):
            total += overlap
    return total


# --- open pieces -------------------------------------------------------------------------


def _open_pieces(cal: Calendar, origin: datetime, until: datetime | None = None) -> Iterator[Piece]:
    """Open pieces (naive UTC) ending after ``origin``, in time order.

    Local dates are walked in order, but a fall-back at midnight can make a later date's piece
    precede an earlier one's, so pieces wait in a heap until no later date can start before
    them. Without ``until`` the walk raises after MAX_CLOSED_DAYS days with no open time.
    """
    _require_open_hours(cal)
    zone = ZoneInfo(cal.timezone)
    day = _as_utc(origin).astimezone(zone).date() - _DAY  # a fall-back can revisit yesterday
    pending: list[Piece] = []
    closed_run = 0
    while True:
        pieces = _day_pieces(cal, zone, day)
        for piece in pieces:
            if piece[1] > origin:
                heapq.heappush(pending, piece)
        closed_run = 0 if pieces else closed_run + 1
        day += _DAY
        next_lo = _earliest_instant_of(zone, day)
        if until is not None and next_lo >= until:
            while pending:
                yield heapq.heappop(pending)
            return
        while pending and pending[0][0] <= next_lo:
            yield heapq.heappop(pending)
        if until is None and closed_run > MAX_CLOSED_DAYS and not pending:
            raise CalendarError(
                f"calendar has no open hours in the {MAX_CLOSED_DAYS} days after {origin:%Y-%m-%d}"
            )


def _day_pieces(cal: Calendar, zone: ZoneInfo, day: date) -> list[Piece]:
    """The UTC stretches whose local time falls in the open intervals of local date ``day``."""
    intervals = cal.hours.get(WEEKDAYS[day.weekday()], ())
    if not intervals or is_holiday(cal, day):
        return []
    midnight = datetime.combine(day, time(0))
    lo = _earliest_instant_of(zone, day)
    hi = _latest_instant_of(zone, day + _DAY)
    pieces: list[Piece] = []
    for seg_start, seg_end, offset in _constant_offset_segments(zone, lo, hi):
        for start, end in intervals:
            local_start = midnight + _since_midnight(start)
            local_end = midnight + (_DAY if end == time(0) else _since_midnight(end))
            left = max(seg_start + offset, local_start)
            right = min(seg_end + offset, local_end)
            if left < right:
                pieces.append((left - offset, right - offset))
    return sorted(pieces)


def _constant_offset_segments(
    zone: ZoneInfo, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime, timedelta]]:
    """Split naive-UTC ``[lo, hi)`` where the zone's UTC offset changes.

    Transitions are found by bisection to the second; a pair of transitions that restores the
    same offset within one local day would go unseen (tz data has none in modern times).
    """
    segments = []
    while True:
        first, last = _offset_at(zone, lo), _offset_at(zone, hi - timedelta(seconds=1))
        if first == last:
            segments.append((lo, hi, first))
            return segments
        same, changed = lo, hi - timedelta(seconds=1)
        while changed - same > timedelta(seconds=1):
            middle = same + (changed - same) // 2
            middle -= timedelta(microseconds=middle.microsecond)
            if _offset_at(zone, middle) == first:
                same = middle
            else:
                changed = middle
        segments.append((lo, changed, first))
        lo = changed


def _offset_at(zone: ZoneInfo, naive_utc: datetime) -> timedelta:
    offset = _as_utc(naive_utc).astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _earliest_instant_of(zone: ZoneInfo, day: date) -> datetime:
    """No instant before this has a local date of ``day`` or later (both folds considered)."""
    midnight = datetime.combine(day, time(0))
    return min(_local_to_naive_utc(midnight, zone, fold) for fold in (0, 1))


def _latest_instant_of(zone: ZoneInfo, day: date) -> datetime:
    """No instant at or after this has a local date before ``day``."""
    midnight = datetime.combine(day, time(0))
    return max(_local_to_naive_utc(midnight, zone, fold) for fold in (0, 1))


def _local_to_naive_utc(local: datetime, zone: ZoneInfo, fold: int) -> datetime:
    return local.replace(tzinfo=zone, fold=fold).astimezone(UTC).replace(tzinfo=None)


def _since_midnight(clock: time) -> timedelta:
    return timedelta(hours=clock.hour, minutes=clock.minute)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _as_utc(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=UTC)


def _require_open_hours(cal: Calendar) -> None:
    if not any(cal.hours.get(day) for day in WEEKDAYS):
        raise CalendarError("calendar has no open hours")


# --- validation ----------------------------------------------------------------------------


def _zone_or_error(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise CalendarError("timezone: an IANA time zone name is required")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CalendarError(f"timezone: unknown IANA time zone {name!r}") from exc


def _parse_hours(hours: Mapping[str, Sequence[Sequence[str]]]) -> dict[str, tuple[Interval, ...]]:
    if not isinstance(hours, Mapping):
        raise CalendarError("hours: expected an object keyed by weekday (mon..sun)")
    for key in hours:
        if key not in WEEKDAYS:
            raise CalendarError(f"hours: unknown weekday {key!r}; use {', '.join(WEEKDAYS)}")
    parsed: dict[str, tuple[Interval, ...]] = {}
    for day in WEEKDAYS:
        raw = hours.get(day) or ()
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
            raise CalendarError(f"hours.{day}: expected a list of [start, end] pairs")
        intervals = [_parse_interval(pair, f"hours.{day}[{i}]") for i, pair in enumerate(raw)]
        order = sorted(range(len(intervals)), key=lambda i: intervals[i][0])
        for before, after in zip(order, order[1:], strict=False):
            if _end_minutes(intervals[before]) > _since_midnight(intervals[after][0]) // _MINUTE:
                raise CalendarError(
                    f"hours.{day}[{after}]: {_show(intervals[after])} overlaps "
                    f"{_show(intervals[before])} (hours.{day}[{before}])"
                )
        parsed[day] = tuple(intervals[i] for i in order)
    return parsed


def _parse_interval(pair: object, where: str) -> Interval:
    if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise CalendarError(f'{where}: expected [start, end] such as ["09:00", "17:00"]')
    raw_start, raw_end = pair
    if raw_start == "24:00":
        raise CalendarError(f"{where}: start 24:00 is only allowed as an end")
    start = _parse_clock(raw_start, f"{where}: start")
    end = time(0) if raw_end == "24:00" else _parse_clock(raw_end, f"{where}: end")
    if end != time(0) and start >= end:
        raise CalendarError(f"{where}: start {raw_start} is not before end {raw_end}")
    return start, end


def _parse_clock(value: object, where: str) -> time:
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise CalendarError(f"{where} {value!r} is not a time HH:MM (00:00 to 24:00)")
    return time(int(match.group(1)), int(match.group(2)))


def _end_minutes(interval: Interval) -> int:
    end = interval[1]
    return 24 * 60 if end == time(0) else _since_midnight(end) // _MINUTE


def _show(interval: Interval) -> str:
    end = "24:00" if interval[1] == time(0) else interval[1].strftime("%H:%M")
    return f"{interval[0].strftime('%H:%M')}-{end}"


def _parse_date(value: str | date, where: str) -> date:
    if isinstance(value, datetime):
        raise CalendarError(f"{where}: expected a date, not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise CalendarError(f"{where}: {value!r} is not a date YYYY-MM-DD")


def _check_country(country: str | None, subdivision: str | None) -> tuple[str | None, str | None]:
    if country is None or country == "":
        if subdivision:
            raise CalendarError("holiday_subdivision: requires holiday_country")
        return None, None
    if not isinstance(country, str):
        raise CalendarError("holiday_country: expected a country code such as 'US'")
    country = country.upper()
    try:
        holiday_lib.country_holidays(country, years=())
    except NotImplementedError as exc:
        raise CalendarError(f"holiday_country: no public holidays known for {country!r}") from exc
    if subdivision:
        try:
            holiday_lib.country_holidays(country, subdiv=subdivision, years=())
        except NotImplementedError as exc:
            raise CalendarError(
                f"holiday_subdivision: {country} has no subdivision {subdivision!r}"
            ) from exc
    return country, subdivision or None


@lru_cache(maxsize=1024)
def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """Public holidays (observed days included) of one year; cached, the library is slow."""
    return frozenset(holiday_lib.country_holidays(country, subdiv=subdivision, years=year))
