"""Daily handoff and clock counts answer whole-day windows exactly as the rows themselves do.

Whole-day windows without a grouping (the dashboard's, and the API's default) read the
counters that migration 0011's triggers keep; a window starting a second later reads the
handoffs and clocks themselves. After every kind of write both must agree with the counts
worked out by hand here, before and after the counters are compacted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from metrics.facts import ClockDay, ClockMonth, HandoffDay, compact, warm
from metrics.service import run as run_metric
from service.db import unit_of_work
from service.handoffs.models import Handoff, SlaClock
from service.people.models import StageEvent
from service.settings import Settings
from tests.factories import T0
from tests.metrics.test_facts import definition, lead, person_of, sync  # noqa: F401

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)


def stats(engine: Engine, name: str, *, now: datetime = END) -> dict[str, Any]:
    """The metric over March from the daily counts, checked against the same window read
    from the rows (it starts a second later; nothing happens in that second)."""
    answers = []
    for start in (START, START + timedelta(seconds=1)):
        with Session(engine) as session:
            found = run_metric(session, name, start=start, end=END, now=now)
            session.commit()
        answers.append((found.result.value, found.result.count, found.result.stats))
    assert answers[0] == answers[1], name
    value, count, out = answers[0]
    return {"value": value, "count": count, **out}


def open_handoffs(engine: Engine, settings: Settings, opened: list[datetime]) -> list[int]:
    """A synced lead, an MQL and an open handoff per instant in ``opened``."""
    sync(engine, settings, {"leads": [[lead(i, 30) for i in range(1, len(opened) + 1)]]})
    ids = []
    with unit_of_work(engine) as s:
        for i, at in enumerate(opened, start=1):
            pid = person_of(engine, f"salesforce:Lead:00Q{i}")
            event = StageEvent(person_id=pid, stage="mql", at=at, source_ref=f"test:{i}",
                               definition_version=1, origin="definition")
            s.add(event)
            s.flush()
            handoff = Handoff(person_id=pid, mql_event_id=event.id, definition_version=1,  # type: ignore[arg-type]
                              opened_at=at)
            s.add(handoff)
            s.flush()
            ids.append(handoff.id)
    return ids  # type: ignore[return-value]


def decide(engine: Engine, handoff_id: int, state: str, at: datetime,
           reason: str | None = None) -> None:
    with unit_of_work(engine) as s:
        handoff = s.get(Handoff, handoff_id)
        assert handoff is not None
        handoff.state, handoff.decided_at, handoff.reason = state, at, reason


def counter_rows(engine: Engine,
                 model: type[HandoffDay] | type[ClockDay] | type[ClockMonth]) -> int:
    with unit_of_work(engine) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_handoff_counts_follow_decisions_changes_and_deletions(
        engine: Engine, settings: Settings, definition: None) -> None:  # noqa: F811
    one, two, three, four = open_handoffs(
        engine, settings, [T0 + timedelta(hours=h) for h in (1, 2, 3, 4)])
    assert stats(engine, "lead-acceptance-rate") == {
        "value": None, "count": 0, "accepted": 0, "rejected": 0, "pending": 4}
    decide(engine, one, "accepted", T0 + timedelta(hours=5))
    decide(engine, two, "rejected", T0 + timedelta(hours=6), "No Budget")
    # decided at the window's end, which the window leaves out: still pending then
    decide(engine, three, "rejected", END, "Bad Timing")
    assert stats(engine, "lead-acceptance-rate") == {
        "value": 0.5, "count": 2, "accepted": 1, "rejected": 1, "pending": 2}
    reasons = stats(engine, "rejection-reasons")
    assert (reasons["count"], reasons["by_reason"]) == (
        1, [{"reason": "No Budget", "count": 1, "share": 1.0}])
    decide(engine, two, "accepted", T0 + timedelta(hours=7))  # Sales changed its mind
    with unit_of_work(engine) as s:
        s.delete(s.get(Handoff, four))
    expected = {"value": 1.0, "count": 2, "accepted": 2, "rejected": 0, "pending": 1}
    assert stats(engine, "lead-acceptance-rate") == expected
    assert stats(engine, "rejection-reasons")["count"] == 0
    before = counter_rows(engine, HandoffDay)
    with unit_of_work(engine) as s:
        compact(s)
    # folded: one row per day pair, state and reason still counted (accepted on March 2,
    # rejected on April 1), and none for the keys whose deltas cancelled out
    assert counter_rows(engine, HandoffDay) == 2 < before
    assert stats(engine, "lead-acceptance-rate") == expected


def add_clocks(engine: Engine, handoff_id: int, opened: datetime, *, accept: timedelta,
               first_touch: timedelta) -> None:
    with unit_of_work(engine) as s:
        for kind, due in (("accept", accept), ("first_touch", first_touch)):
            s.add(SlaClock(handoff_id=handoff_id, kind=kind,
                           target_minutes=int(due.total_seconds() // 60), started_at=opened,
                           warn_due_at=opened + due / 2, due_at=opened + due))


def test_clock_outcomes_read_the_day_of_now_from_the_clocks(
        engine: Engine, settings: Settings, definition: None) -> None:  # noqa: F811
    yesterday = datetime(2026, 3, 1, 10, tzinfo=UTC)
    old, new = open_handoffs(engine, settings, [yesterday, T0])
    add_clocks(engine, old, yesterday, accept=timedelta(hours=1),
               first_touch=timedelta(hours=2))
    add_clocks(engine, new, T0, accept=timedelta(hours=1), first_touch=timedelta(hours=48))
    now = T0 + timedelta(minutes=30)
    # yesterday's clocks ran past due; today's are still within their time
    assert stats(engine, "sla-compliance", now=now) | {"by_clock": None} == {
        "value": 0.0, "count": 2, "met": 0, "breached": 2, "pending": 2, "by_clock": None}
    with unit_of_work(engine) as s:
        clock = s.exec(select(SlaClock).where(SlaClock.handoff_id == new,
                                              SlaClock.kind == "accept")).one()
        clock.state, clock.stopped_at = "met", T0 + timedelta(minutes=20)
        clock.business_minutes = clock.calendar_minutes = 20
    found = stats(engine, "sla-compliance", now=now)
    assert (found["met"], found["breached"], found["pending"]) == (1, 2, 1)
    assert found["by_clock"] == {"accept": 0.5, "first_touch": 0.0}
    # asked at the end of March, the running first touch has fallen due too
    found = stats(engine, "sla-compliance", now=END)
    assert (found["met"], found["breached"], found["pending"]) == (1, 3, 0)
    with unit_of_work(engine) as s:
        s.delete(s.exec(select(SlaClock).where(SlaClock.handoff_id == old,
                                               SlaClock.kind == "accept")).one())
    found = stats(engine, "sla-compliance", now=END)
    assert (found["met"], found["breached"], found["pending"]) == (1, 2, 0)
    warm(engine)  # what the worker does after a sync: the counters are folded
    assert counter_rows(engine, ClockDay) == 3  # met today; two running, one per due day
    assert stats(engine, "sla-compliance", now=END) == found


def stop(engine: Engine, handoff_id: int, at: datetime, business: int, calendar: int) -> None:
    """Stop (or correct) the handoff's accept clock."""
    with unit_of_work(engine) as s:
        clock = s.exec(select(SlaClock).where(SlaClock.handoff_id == handoff_id,
                                              SlaClock.kind == "accept")).one()
        clock.state, clock.stopped_at = "met", at
        clock.business_minutes, clock.calendar_minutes = business, calendar


def test_clock_durations_follow_stops_corrections_and_deletions(
        engine: Engine, settings: Settings, definition: None) -> None:  # noqa: F811
    """Time to accept over March reads March's monthly duration counts (the same window a
    second later reads the clocks, and ``stats`` holds both to one answer)."""
    march_2, march_3, march_31 = (datetime(2026, 3, d, 9, tzinfo=UTC) for d in (2, 3, 31))
    a, b, c = open_handoffs(engine, settings, [march_2, march_3, march_31])
    for handoff, opened in ((a, march_2), (b, march_3), (c, march_31)):
        add_clocks(engine, handoff, opened, accept=timedelta(hours=1),
                   first_touch=timedelta(hours=2))
    assert stats(engine, "time-to-accept")["count"] == 0  # nothing stopped yet
    stop(engine, a, march_2 + timedelta(minutes=30), 30, 30)
    stop(engine, b, march_3 + timedelta(hours=10), 90, 600)
    stop(engine, c, END + timedelta(minutes=30), 10, 930)  # stopped in April: not counted
    found = stats(engine, "time-to-accept")
    assert (found["count"], found["median"], found["mean"]) == (2, 60, 60)
    assert (found["calendar_median"], found["calendar_mean"]) == (315, 315)
    stop(engine, b, march_3 + timedelta(hours=10), 120, 600)  # a corrected duration
    found = stats(engine, "time-to-accept")
    assert (found["count"], found["mean"], found["calendar_mean"]) == (2, 75, 315)
    with unit_of_work(engine) as s:
        s.delete(s.exec(select(SlaClock).where(SlaClock.handoff_id == a,
                                               SlaClock.kind == "accept")).one())
    found = stats(engine, "time-to-accept")
    assert (found["count"], found["median"], found["calendar_median"]) == (1, 120, 600)
    warm(engine)  # folded: b's two minutes rows in March, c's two in April
    assert counter_rows(engine, ClockMonth) == 4
    assert stats(engine, "time-to-accept") == found


def test_a_count_committed_during_compaction_is_kept(
        engine: Engine, settings: Settings, definition: None) -> None:  # noqa: F811
    """A handoff written in a transaction still open while the counters are compacted is
    counted once, after it commits (PostgreSQL; SQLite has one writer at a time)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("one writer at a time on SQLite")
    (first,) = open_handoffs(engine, settings, [T0])
    with Session(engine) as writer:
        handoff = writer.get(Handoff, first)
        assert handoff is not None
        handoff.state, handoff.decided_at = "accepted", T0 + timedelta(hours=1)
        writer.flush()  # its deltas are written, not yet committed
        with unit_of_work(engine) as s:
            compact(s)
        writer.commit()
    assert stats(engine, "lead-acceptance-rate") == {
        "value": 1.0, "count": 1, "accepted": 1, "rejected": 0, "pending": 0}
    with unit_of_work(engine) as s:
        compact(s)
    assert counter_rows(engine, HandoffDay) == 1
