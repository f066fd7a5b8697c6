"""Time helpers for the generator: business hours of an owner's zone and realistic delays.

Sales reps answer during their own working day, so decision and touch times are drawn in
business minutes of the owner's zone and then placed on the calendar.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

OPEN_HOUR, CLOSE_HOUR, CLOSE_MINUTE = 9, 17, 30


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def after_business_minutes(start: datetime, minutes: int, tz_name: str) -> datetime:
    """The instant ``minutes`` of Mon-Fri 09:00-17:30 local time after ``start`` (UTC out)."""
    tz = zone(tz_name)
    local = start.astimezone(tz)
    remaining = float(minutes)
    while True:
        opening = local.replace(hour=OPEN_HOUR, minute=0, second=0, microsecond=0)
        closing = local.replace(hour=CLOSE_HOUR, minute=CLOSE_MINUTE, second=0, microsecond=0)
        if local.weekday() >= 5 or local >= closing:
            nxt = (local + timedelta(days=1)).replace(hour=OPEN_HOUR, minute=0, second=0,
                                                      microsecond=0)
            local = nxt
            continue
        if local < opening:
            local = opening
        available = (closing - local).total_seconds() / 60
        if remaining <= available:
            return (local + timedelta(minutes=remaining)).astimezone(UTC).replace(microsecond=0)
        remaining -= available
        local = closing


def response_minutes(rng: random.Random) -> int:
    """Business minutes until a rep reacts: most within hours, a tail of days and weeks."""
    r = rng.random()
    if r < 0.42:
        return rng.randint(3, 60)
    if r < 0.67:
        return rng.randint(60, 240)
    if r < 0.82:
        return rng.randint(240, 1020)
    if r < 0.93:
        return rng.randint(1020, 2550)
    return rng.randint(2550, 7650)


def react(start: datetime, tz_name: str, rng: random.Random) -> datetime:
    """When an owner in ``tz_name`` reacts to something that happened at ``start``.

    One reaction in ten happens off hours (a rep on a phone at night), on calendar time.
    """
    if rng.random() < 0.1:
        return start + timedelta(minutes=rng.randint(5, 300), seconds=rng.randint(0, 59))
    at = after_business_minutes(start, response_minutes(rng), tz_name)
    return at + timedelta(seconds=rng.randint(0, 59))


def arrival(rng: random.Random, start: datetime, end: datetime, utc_hours: tuple[int, int]
            ) -> datetime:
    """A time a person raises a hand: mostly weekdays during their region's working hours."""
    days = max(1, (end - start).days)
    for _ in range(8):
        day = start + timedelta(days=rng.randrange(days))
        if day.weekday() < 5 or rng.random() < 0.15:
            break
    lo, hi = utc_hours
    hour = rng.randrange(24) if rng.random() < 0.15 else rng.randrange(lo, hi) % 24
    at = day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60),
                     microsecond=0)
    return min(max(at, start), end)


def later(rng: random.Random, at: datetime, *, min_h: float, max_h: float) -> datetime:
    """A whole-second instant between ``min_h`` and ``max_h`` hours after ``at``."""
    return at + timedelta(seconds=rng.randint(int(min_h * 3600), int(max_h * 3600)))
