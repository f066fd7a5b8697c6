"""Metric endpoints: p95 latency of every ``GET /api/v1/metrics/{name}``, beside DuckDB.

The data is N persons and M opportunities over a year, with the funnel around them: an MQL
for one person in four (each with a handoff and its two SLA clocks, three in four decided),
later SAL, SQL and won stages for some, monthly spend, campaigns, forecasts and MQL
commitments, twenty owners in two teams and an active lead definition. The metric facts
(``metrics.facts``) are built once after loading, as the first request would, and the time
it took is noted. Every metric endpoint is called through the app (in process, so the
figure is the endpoint's own time, not the network's). DuckDB then computes every headline
value over the same rows (copied out of the database) and the values are checked to agree.
"""

from __future__ import annotations

import csv
import gc
import math
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import Row, Size, Versus, ratio
from bench.fixtures import (
    analyze,
    at_minutes,
    choose,
    fix_sequences,
    insert_series,
    is_postgres,
    persons,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from bench.runner import Context

WINDOW = {"start": "2025-04-01", "end": "2026-01-01"}
W0, W1 = "TIMESTAMPTZ '2025-04-01 00:00:00+00'", "TIMESTAMPTZ '2026-01-01 00:00:00+00'"
D0, D1 = "DATE '2025-04-01'", "DATE '2026-01-01'"
REASONS = ("No Budget", "Bad Timing", "Competitor", "Unqualified")
OWNERS = 20
WON = f"live AND is_closed AND is_won AND close_date >= {D0} AND close_date < {D1}"
SEGMENT = ("CASE WHEN {e} IS NULL THEN 'unknown' WHEN {e} < 100 THEN 'SMB' "
           "WHEN {e} < 1000 THEN 'Mid-Market' ELSE 'Enterprise' END")
SPEND = f"""WITH s AS (
  SELECT team, amount, period_start AS a, period_end AS b FROM spend
  UNION ALL
  SELECT 'marketing', actual_cost, coalesce(start_date, end_date),
         greatest(coalesce(start_date, end_date), coalesce(end_date, start_date))
  FROM campaign WHERE live AND actual_cost IS NOT NULL
    AND (start_date IS NOT NULL OR end_date IS NOT NULL)),
p AS (SELECT team, amount * greatest(0, least(b + 1, {D1}) - greatest(a, {D0}))::DOUBLE
             / (b - a + 1) AS amount FROM s WHERE a < {D1} AND b >= {D0})"""
MQLS = (f"SELECT count(*) FROM stage_event WHERE stage = 'mql' AND definition_version = 1 "
        f'AND "at" >= {W0} AND "at" < {W1}')
CYCLE = "close_date - CAST(created_at AS DATE)"
CLOSED = f"live AND is_closed AND close_date >= {D0} AND close_date < {D1}"


def _duration(kind: str) -> str:
    return (f"SELECT median(c.business_minutes) FROM sla_clock c JOIN handoff h "
            f"ON h.id = c.handoff_id WHERE c.kind = '{kind}' AND c.stopped_at >= {W0} "
            f"AND c.stopped_at < {W1} AND c.business_minutes IS NOT NULL "
            f"AND c.calendar_minutes IS NOT NULL AND h.definition_version = 1")


DUCKDB = {
    "lead-acceptance-rate": (
        f"SELECT count(*) FILTER (WHERE state = 'accepted')::DOUBLE / count(*) FROM handoff "
        f"WHERE state IN ('accepted', 'rejected') AND decided_at >= {W0} "
        f"AND decided_at < {W1} AND definition_version = 1"),
    "rejection-reasons": (
        f"SELECT count(*) FROM handoff WHERE state = 'rejected' AND decided_at >= {W0} "
        f"AND decided_at < {W1} AND definition_version = 1"),
    "funnel-conversion": (
        f"SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM stage_event l "
        f"WHERE l.person_id = m.person_id AND l.stage = 'won' AND l.at >= m.at))::DOUBLE "
        f"/ count(*) FROM stage_event m WHERE m.stage = 'mql' AND m.definition_version = 1 "
        f"AND m.at >= {W0} AND m.at < {W1}"),
    "time-to-accept": _duration("accept"),
    "time-to-first-touch": _duration("first_touch"),
    "sla-compliance": (
        "SELECT count(*) FILTER (WHERE o = 'met')::DOUBLE / count(*) FILTER (WHERE o <> "
        "'pending') FROM (SELECT CASE WHEN c.state IN ('met', 'breached') THEN c.state "
        "WHEN c.stopped_at IS NOT NULL THEN CASE WHEN c.stopped_at <= c.due_at THEN 'met' "
        "ELSE 'breached' END WHEN c.due_at <= $now THEN 'breached' ELSE 'pending' END AS o "
        f"FROM sla_clock c JOIN handoff h ON h.id = c.handoff_id WHERE c.due_at >= {W0} "
        f"AND c.due_at < {W1} AND h.definition_version = 1)"),
    "sales-cycle-length": f"SELECT median({CYCLE}) FROM opportunity WHERE {WON}",
    "win-rate": f"SELECT count(*) FILTER (WHERE is_won)::DOUBLE / count(*) FROM opportunity "
                f"WHERE {CLOSED}",
    "cost-of-sales": (f"{SPEND} SELECT (SELECT sum(amount) FROM p) / "
                      f"(SELECT sum(amount) FROM opportunity WHERE {WON})"),
    "cac": (
        f"{SPEND} SELECT (SELECT sum(amount) FROM p) / (SELECT count(*) FROM ("
        "SELECT CASE WHEN nullif(o.account_key, '') IS NOT NULL THEN 'account:' || "
        "o.account_key WHEN c.person_id IS NOT NULL THEN 'person:' || c.person_id "
        "ELSE 'opportunity:' || o.key END AS customer, min(o.close_date) AS first "
        "FROM opportunity o LEFT JOIN crm_record c ON c.key = o.person_record_key "
        f"WHERE o.live AND o.is_closed AND o.is_won AND o.close_date < {D1} GROUP BY 1) "
        f"WHERE first >= {D0})"),
    "cost-per-mql": (f"{SPEND} SELECT (SELECT sum(amount) FROM p WHERE team = 'marketing') "
                     f"/ ({MQLS})"),
    "pipeline-velocity": (
        f"SELECT (SELECT count(*) FROM opportunity WHERE live AND created_at < {W1} AND "
        f"(NOT is_closed OR (close_date IS NOT NULL AND close_date >= {D1}))) "
        f"* (SELECT count(*) FILTER (WHERE is_won)::DOUBLE / count(*) FROM opportunity "
        f"WHERE {CLOSED}) * (SELECT avg(amount) FROM opportunity WHERE {WON}) "
        f"/ (SELECT median({CYCLE}) FROM opportunity WHERE {WON} "
        f"AND created_at IS NOT NULL)"),
    "marketing-sourced-share": (
        "SELECT sum(o.amount) FILTER (WHERE EXISTS (SELECT 1 FROM stage_event m "
        "WHERE m.person_id = c.person_id AND m.stage = 'mql' AND m.at < o.created_at "
        "AND m.definition_version = 1)) / sum(o.amount) FROM opportunity o LEFT JOIN "
        "crm_record c ON c.key = o.person_record_key WHERE o.live AND o.is_closed "
        f"AND o.is_won AND o.close_date >= {D0} AND o.close_date < {D1}"),
    "forecast-accuracy": (
        "SELECT avg(1 - abs(actual - amount) / abs(actual)) FROM (SELECT f.amount, "
        "(SELECT coalesce(sum(o.amount), 0) FROM opportunity o LEFT JOIN account a "
        "ON a.key = o.account_key LEFT JOIN owner w ON w.key = o.owner_key "
        "WHERE o.live AND o.is_closed AND o.is_won AND o.close_date >= f.period_start "
        "AND o.close_date <= f.period_end AND (f.segment IS NULL OR CASE WHEN "
        f"nullif(o.account_key, '') IS NULL THEN 'unknown' ELSE "
        f"{SEGMENT.format(e='a.employees')} END = f.segment) AND (f.team IS NULL OR "
        "coalesce(nullif(w.team, ''), 'unassigned') = f.team)) AS actual FROM forecast f "
        f"WHERE f.period_end >= {D0} AND f.period_end < {D1}) WHERE actual <> 0"),
    "mql-commitment-attainment": (
        "SELECT sum(delivered)::DOUBLE / sum(committed) FROM (SELECT c.mqls_promised AS "
        "committed, (SELECT count(*) FROM stage_event m JOIN person p ON p.id = m.person_id "
        "LEFT JOIN account a ON a.key = p.account_key WHERE m.stage = 'mql' "
        "AND m.definition_version = 1 AND m.at >= CAST(c.period_start AS TIMESTAMPTZ) "
        "AND m.at < CAST(c.period_end + 1 AS TIMESTAMPTZ) AND (c.segment IS NULL OR "
        f"{SEGMENT.format(e='a.employees')} = c.segment)) AS delivered FROM commitment c "
        f"WHERE c.period_start >= {D0} AND c.period_end < {D1})"),
}
# the columns DuckDB reads, per table, as the metrics above use them
COPIED = {
    "person": "id, account_key, created_at",
    "account": "key, employees",
    "owner": "key, team",
    "crm_record": "key, person_id",
    "opportunity": ("key, account_key, person_record_key, amount, is_closed, is_won, "
                    "created_at, close_date, owner_key, live"),
    "stage_event": "id, person_id, stage, at, definition_version",
    "handoff": "id, person_id, definition_version, state, decided_at",
    "sla_clock": "handoff_id, kind, state, due_at, stopped_at, business_minutes, "
                 "calendar_minutes",
    "spend": "team, period_start, period_end, amount",
    "campaign": "start_date, end_date, actual_cost, live",
    "forecast": "period_start, period_end, amount, team, segment",
    "commitment": "period_start, period_end, mqls_promised, segment",
}
INSTANTS = {"created_at", "at", "decided_at", "due_at", "stopped_at"}
DAYS = {"close_date", "period_start", "period_end", "start_date", "end_date"}
FLAGS = {"is_closed", "is_won", "live"}
NUMBERS = {"amount", "actual_cost"}
INTEGERS = {"id", "person_id", "employees", "definition_version", "handoff_id",
            "business_minutes", "calendar_minutes", "mqls_promised"}


def opportunity_columns(persons_n: int, accounts: int, *, postgres_style: bool
                        ) -> dict[str, str]:
    """Opportunity ``i``: created on day ``i % 300`` of 2025, closed up to 89 days later
    (three in four closed, half of those won), pointing at a person and an account."""
    day, minute = "(i % 300)", "(i % 1440)"
    if postgres_style:
        created = (f"(TIMESTAMPTZ '2025-01-01 00:00:00+00' + ({day} * 1440 + {minute}) "
                   "* INTERVAL '1 minute')")
        closed = f"(DATE '2025-01-01' + CAST({day} + i % 90 AS INTEGER))"
    else:
        created = (f"strftime('%Y-%m-%d %H:%M:%f', '2025-01-01 00:00:00', "
                   f"({day} * 1440 + {minute}) || ' minutes')")
        closed = f"date('2025-01-01', ({day} + i % 90) || ' days')"
    return {
        "id": "i", "key": "'salesforce:Opportunity:' || i", "source": "'salesforce'",
        "name": "'Deal ' || i", "account_key": f"'hubspot:companies:' || (1 + i % {accounts})",
        "person_record_key": f"'hubspot:contacts:' || (1 + (i * 7) % {persons_n})",
        "amount": "1000 + (i * 37) % 90000", "stage": "'Negotiation'",
        "is_closed": "(i % 4 <> 0)", "is_won": "(i % 4 IN (1, 2))", "created_at": created,
        "close_date": closed, "owner_key": "'salesforce:User:' || (i % 20)",
        "lead_source": "'Web Form'", "live": "TRUE"}


def fill(conn: Connection, n: int, m: int) -> None:
    accounts = max(10, n // 10)
    persons(conn, n, accounts=accounts)
    insert_series(conn, "opportunity", m,
                  opportunity_columns(n, accounts, postgres_style=is_postgres(conn)))
    insert_series(conn, "owner", OWNERS, {
        "id": "i", "key": "'salesforce:User:' || (i - 1)", "source": "'salesforce'",
        "team": "CASE WHEN i % 2 = 0 THEN 'East' ELSE 'West' END", "active": "TRUE"})
    funnel(conn, n)
    inputs(conn, n, m)
    fix_sequences(conn, "person", "account", "crm_record", "opportunity", "owner",
                  "stage_event", "handoff", "sla_clock")
    analyze(conn)


def funnel(conn: Connection, n: int) -> None:
    """MQL ``j`` is person ``4j``'s, spread evenly over 600 days from T0, with a handoff
    (open, accepted, accepted, rejected by ``j % 4``), decided ``j % 600`` minutes later, and
    two clocks; every second MQL's person later reaches SAL, every fourth SQL, every eighth a
    win."""
    mqls = n // 4
    spacing = max(1, 600 * 1440 // max(1, mqls))

    def mql_at(j: str) -> str:
        return f"{spacing} * ({j}) + ({j}) % 1000"

    opened = at_minutes(conn, mql_at("i"))
    insert_series(conn, "stage_event", mqls, {
        "id": "i", "person_id": "4 * i", "stage": "'mql'", "at": opened,
        "source_ref": "'bench:mql:' || i", "definition_version": "1",
        "origin": "'definition'"})
    for k, (stage, every, delay) in enumerate((("sal", 2, 1440), ("sql", 4, 2880),
                                               ("won", 8, 43200)), start=1):
        insert_series(conn, "stage_event", mqls // every, {
            "id": f"{k * mqls} + i", "person_id": f"{4 * every} * i", "stage": f"'{stage}'",
            "at": at_minutes(conn, f"{mql_at(f'{every} * i')} + {delay}"),
            "source_ref": f"'bench:{stage}:' || i", "origin": "'crm'"})
    decided = at_minutes(conn, f"{mql_at('i')} + i % 600")
    insert_series(conn, "handoff", mqls, {
        "id": "i", "person_id": "4 * i", "mql_event_id": "i", "definition_version": "1",
        "owner_key": f"'salesforce:User:' || (i % {OWNERS})", "opened_at": opened,
        "state": "CASE i % 4 WHEN 0 THEN 'open' WHEN 3 THEN 'rejected' ELSE 'accepted' END",
        "reason": f"CASE WHEN i % 4 = 3 THEN {choose(REASONS, 'i / 4')} END",
        "decided_at": f"CASE WHEN i % 4 <> 0 THEN {decided} END", "created_at": opened})
    touched = at_minutes(conn, f"{mql_at('i')} + i % 900")
    accepted = "i % 4 IN (1, 2)"
    for offset, kind, due, stop, minutes, decided_when in (
            (1, "accept", 240, decided, "i % 600", "i % 4 <> 0"),
            (0, "first_touch", 480, touched, "i % 900", accepted)):
        insert_series(conn, "sla_clock", mqls, {
            "id": f"2 * i - {offset}", "handoff_id": "i", "kind": f"'{kind}'",
            "target_minutes": str(due), "started_at": opened,
            "warn_due_at": at_minutes(conn, f"{mql_at('i')} + {due * 3 // 4}"),
            "due_at": at_minutes(conn, f"{mql_at('i')} + {due}"),
            "stopped_at": f"CASE WHEN {decided_when} THEN {stop} END",
            "state": f"CASE WHEN NOT ({decided_when}) THEN 'running' WHEN {minutes} <= {due} "
                     "THEN 'met' ELSE 'breached' END",
            "business_minutes": f"CASE WHEN {decided_when} THEN {minutes} END",
            "calendar_minutes": f"CASE WHEN {decided_when} THEN {minutes} + (i % 7) * 60 END",
            "announce": "FALSE", "changed_at": opened})


def inputs(conn: Connection, n: int, m: int) -> None:
    """An active definition (version 1), monthly spend per team for 2025 and 2026, 300
    campaigns with a cost, and 2025's monthly forecasts (all, Enterprise, East) and MQL
    commitments (all, SMB)."""
    from sqlalchemy import insert

    from metrics.models import Forecast, Spend
    from service.crm.models import Campaign
    from service.definitions.models import LeadDefinition
    from service.handoffs.models import Commitment

    now = datetime(2025, 1, 1, tzinfo=UTC)
    months = [(date(2025 + k // 12, k % 12 + 1, 1),
               date(2025 + (k + 1) // 12, (k + 1) % 12 + 1, 1) - timedelta(days=1))
              for k in range(24)]
    conn.execute(insert(LeadDefinition.__table__), [{  # type: ignore[attr-defined]
        "version": 1, "name": "bench", "rules": {"all": []}, "state": "active",
        "created_by": "bench", "created_at": now}])
    conn.execute(insert(Spend.__table__), [{  # type: ignore[attr-defined]
        "team": team, "period_start": a, "period_end": b, "amount": base + 1000 * k,
        "category": "other", "currency": "USD", "created_by": "bench", "created_at": now}
        for k, (a, b) in enumerate(months)
        for team, base in (("marketing", 100_000), ("sales", 150_000))])
    conn.execute(insert(Campaign.__table__), [{  # type: ignore[attr-defined]
        "key": f"salesforce:Campaign:{k}", "source": "salesforce", "live": True,
        "start_date": date(2025, 1, 1) + timedelta(days=k),
        "end_date": date(2025, 1, 1) + timedelta(days=k + 30), "actual_cost": 1000 + 37 * k}
        for k in range(300)])
    conn.execute(insert(Forecast.__table__), [{  # type: ignore[attr-defined]
        "period_start": a, "period_end": b, "amount": amount, "segment": segment,
        "team": team, "created_by": "bench", "created_at": now}
        for a, b in months[:12]
        for amount, segment, team in ((1400 * m, None, None), (1000 * m, "Enterprise", None),
                                      (700 * m, None, "East"))])
    conn.execute(insert(Commitment.__table__), [{  # type: ignore[attr-defined]
        "period_start": a, "period_end": b, "mqls_promised": promised, "segment": segment,
        "created_by": "bench", "created_at": now}
        for a, b in months[:12] for promised, segment in ((n // 70, None), (n // 2000, "SMB"))])


def duckdb_figures(conn: Connection, tmp: Path, repeats: int, *, now: datetime
                   ) -> tuple[dict[str, tuple[float | None, float]], float]:
    """Per metric: (value, p95 seconds) computed by DuckDB over the rows copied out of the
    database; and the seconds the copy took."""
    import duckdb

    started = time.perf_counter()
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    for table, columns in COPIED.items():
        path = tmp / f"{table}.csv"
        _export(conn, table, columns, path)
        names = [c.strip() for c in columns.split(",")]
        types = ", ".join(f"'{c}': '{_duck_type(c)}'" for c in names)
        db.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{path}', header = true, "
                   f"columns = {{{types}}}, nullstr = '')")
        path.unlink()
    copied = time.perf_counter() - started
    out: dict[str, tuple[float | None, float]] = {}
    for name, sql in DUCKDB.items():
        sql = sql.replace("$now", f"TIMESTAMPTZ '{now.isoformat()}'")
        times, value = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            value = db.execute(sql).fetchone()[0]  # type: ignore[index]
            times.append(time.perf_counter() - start)
        finite = value is not None and math.isfinite(float(value))
        out[name] = (float(value) if finite else None, _p95(times))
    db.close()
    return out, copied


def _duck_type(column: str) -> str:
    if column in INSTANTS:
        return "TIMESTAMPTZ"
    if column in DAYS:
        return "DATE"
    if column in FLAGS:
        return "BOOLEAN"
    if column in NUMBERS:
        return "DOUBLE"
    return "BIGINT" if column in INTEGERS else "VARCHAR"


def _export(conn: Connection, table: str, columns: str, path: Path) -> None:
    """The columns of a table as CSV (empty field = NULL), instants in UTC."""
    if is_postgres(conn):
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, path.open("wb") as out:  # type: ignore[union-attr]
            cursor.execute("SET TIME ZONE 'UTC'")
            with cursor.copy(f"COPY (SELECT {columns} FROM {table}) TO STDOUT "
                             "WITH (FORMAT csv, HEADER true)") as copy:
                for chunk in copy:
                    out.write(chunk)
        return
    from sqlalchemy import text

    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([c.strip() for c in columns.split(",")])
        for row in conn.execute(text(f"SELECT {columns} FROM {table}")):
            writer.writerow(["" if v is None else v for v in row])


def run(size: Size, ctx: Context) -> list[Row]:
    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from metrics.definitions import METRICS
    from metrics.facts import refresh
    from service.app import create_app, freeze_startup_heap
    from service.db import create_db_engine
    from service.settings import get_settings

    n, m, repeats = size.metric_persons, size.metric_opportunities, size.metric_requests
    key = "bench-admin-key-0123456789abcdef"
    rows: list[Row] = []
    with ctx.database() as url:
        engine = create_db_engine(url)
        ctx.log(f"metrics: {n:,} persons, {m:,} opportunities, {n // 4:,} MQLs and handoffs")
        with engine.begin() as conn:
            fill(conn, n, m)
        started = time.perf_counter()
        with Session(engine) as session:  # what the first request after a load would do
            refresh(session)
            session.commit()
        built = time.perf_counter() - started
        if ctx.database_kind == "postgresql":
            # what autovacuum does to settled tables: index-only scans need the visibility map
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        settings = get_settings(database_url=url, admin_api_key=key, _env_file=None)
        answers: dict[str, Any] = {}
        latency: dict[str, float] = {}
        app = create_app(settings, engine=engine)
        freeze_startup_heap()  # as `truce serve` does
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {key}"}
            # one untimed request first: the app's first (connections, key check) is not any
            # one metric's time, and would otherwise be the first endpoint's p95
            client.get("/api/v1/metrics", headers=headers).raise_for_status()
            for name in METRICS:
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    answer = client.get(f"/api/v1/metrics/{name}", params=WINDOW,
                                        headers=headers)
                    times.append(time.perf_counter() - start)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:200]}")
                answers[name], latency[name] = answer.json(), _p95(times)
        gc.unfreeze()
        ctx.log("metrics: DuckDB over the same rows")
        with engine.connect() as conn:
            duck, copied = duckdb_figures(conn, ctx.tmp, repeats, now=datetime.now(UTC))
        engine.dispose()
    worst = max(latency, key=latency.__getitem__)
    rows.append(Row("metrics.p95_worst", latency[worst] * 1000, "ms", None,
                    aim="< 200 ms", met=latency[worst] < 0.2,
                    note=f"{worst}; {len(latency)} endpoints, {repeats} calls each, "
                         f"{n:,} persons, {m:,} opportunities, {ctx.database_kind}; "
                         f"metric facts built in {built:.1f} s; "
                         f"rows copied to DuckDB in {copied:.0f} s"))
    for name in METRICS:
        mine = latency[name] * 1000
        got = answers[name]["value"]
        if name not in duck:
            rows.append(Row(f"metrics.{name}.p95", mine, "ms", None, aim="< 200 ms",
                            met=mine < 200,
                            note=f"count {answers[name]['count']:,}; no DuckDB twin"))
            continue
        value, p95 = duck[name]
        agree = (got is None and value is None) or (
            got is not None and value is not None
            and abs(float(got) - value) <= 1e-6 * max(1.0, abs(value)))
        rows.append(Row(f"metrics.{name}.p95", mine, "ms",
                        Versus("DuckDB, same rows", p95 * 1000, ratio(mine, p95 * 1000)),
                        aim="< 200 ms, ≤ 2× DuckDB", met=mine < 200 and mine <= 2 * p95 * 1000,
                        note=f"value {_num(got)} (DuckDB {_num(value)}: "
                             f"{'agree' if agree else 'DIFFER'}); "
                             f"count {answers[name]['count']:,}"))
    return rows


def _num(value: Any) -> str:
    return "null" if value is None else f"{float(value):.6g}"


def _p95(times: list[float]) -> float:
    if len(times) < 2:
        return times[0]
    return statistics.quantiles(times, n=20, method="inclusive")[18]
