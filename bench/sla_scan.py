"""SLA scan over N open handoffs (two clocks each) beside one bare UPDATE over a copy of them.

The bare statement is the least any scan must do (flag every overdue open clock); the ratio
shows what Truce's scan adds: the warning pass, the ``RETURNING`` of ids, and the outbox
rows for the clocks that are announced. Clocks are spread one a minute from ``T0`` and the
scan runs at the midpoint, so about half breach, a few warn, and the rest keep running.
One clock in 200 falls due after its definition became active and is announced.
The copy keeps the former open-clock index (``stopped_at, state, due_at``); the clock table
itself indexes no state (migration 0016), so its moves are heap-only updates and the scan
can come in under the bare statement.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from bench import Row, Size, Versus, ratio, stopwatch
from bench.fixtures import T0, analyze, at_minutes, at_time, fix_sequences, insert_series

if TYPE_CHECKING:
    from bench.runner import Context

ANNOUNCED_EVERY = 200


def fill(conn: Connection, n: int) -> None:
    """``n`` persons with an MQL event, an open handoff and its accept and first-touch clocks."""
    opened = at_minutes(conn, "i")
    insert_series(conn, "person", n, {
        "id": "i", "email": "'p' || i || '@example.com'", "stage": "'mql'", "live": "TRUE",
        "dirty": "FALSE", "created_at": opened, "updated_at": opened})
    insert_series(conn, "stage_event", n, {
        "id": "i", "person_id": "i", "stage": "'mql'", "at": opened,
        "source_ref": "'bench:' || i", "definition_version": "1", "origin": "'definition'"})
    insert_series(conn, "handoff", n, {
        "id": "i", "person_id": "i", "mql_event_id": "i", "definition_version": "1",
        "owner_key": "'salesforce:User:' || (i % 20)", "opened_at": opened, "state": "'open'",
        "created_at": opened})
    for offset, kind, due, warn in ((1, "accept", 240, 180), (0, "first_touch", 480, 360)):
        insert_series(conn, "sla_clock", n, {
            "id": f"2 * i - {offset}", "handoff_id": "i", "kind": f"'{kind}'",
            "target_minutes": str(due), "started_at": opened,
            "warn_due_at": at_minutes(conn, f"i + {warn}"),
            "due_at": at_minutes(conn, f"i + {due}"), "state": "'running'",
            "announce": f"(i % {ANNOUNCED_EVERY} = 0)", "changed_at": opened})
    fix_sequences(conn, "person", "stage_event", "handoff", "sla_clock")


def run(size: Size, ctx: Context) -> list[Row]:
    from service.db import create_db_engine, unit_of_work
    from service.handoffs.scan import scan

    n = size.handoffs
    now = T0 + timedelta(minutes=n // 2)
    with ctx.database() as url:
        engine = create_db_engine(url)
        ctx.log(f"sla_scan: {n:,} open handoffs, {2 * n:,} clocks")
        with engine.begin() as conn:
            fill(conn, n)
            conn.execute(text("CREATE TABLE bench_clock AS SELECT * FROM sla_clock"))
            conn.execute(text("CREATE INDEX ix_bench_clock_open_due "
                              "ON bench_clock (stopped_at, state, due_at)"))
            analyze(conn)
            bare_sql = text(f"UPDATE bench_clock SET state = 'breached' "
                            f"WHERE stopped_at IS NULL AND due_at <= {at_time(conn, now)}")
        with engine.begin() as conn, stopwatch() as bare:
            bare_rows = conn.execute(bare_sql).rowcount
        with unit_of_work(engine) as session, stopwatch() as took:
            result = scan(session, now=now)
        engine.dispose()
    seconds, baseline = took[0], bare[0]
    note = (f"{n:,} handoffs, {ctx.database_kind}; {result.breaches:,} breached, "
            f"{result.warnings:,} warned, {result.announced:,} announced; bare updated "
            f"{bare_rows:,}")
    return [Row(f"sla.scan_{_label(n)}", seconds, "s",
                Versus("bare UPDATE", baseline, ratio(seconds, baseline)),
                aim="< 10 s and ≤ 3× bare", met=seconds < 10 and seconds <= 3 * baseline,
                note=note)]


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"
