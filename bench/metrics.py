"""Metric endpoints: p95 latency of every ``GET /api/v1/metrics/{name}``, beside DuckDB.

The data is N persons and M opportunities over a year. Every metric endpoint is called
through the app (in process, so the figure is the endpoint's own time, not the network's).
For the two opportunity metrics, DuckDB computes the same numbers over the same rows,
generated there by the same SQL, and the values are checked to agree. Metrics over handoffs,
clocks, spend and forecasts answer over empty populations here, so their latency is a floor.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

from bench import Row, Size, Versus, ratio
from bench.fixtures import analyze, fix_sequences, insert_series, is_postgres, persons

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from bench.runner import Context

WINDOW = {"start": "2025-04-01", "end": "2026-01-01"}
DUCKDB = {
    "win-rate": ("SELECT count(*) FILTER (WHERE is_won)::DOUBLE / count(*) FROM opportunity "
                 "WHERE live AND is_closed AND close_date >= DATE '2025-04-01' "
                 "AND close_date < DATE '2026-01-01'"),
    "sales-cycle-length": ("SELECT median(close_date - CAST(created_at AS DATE)) "
                           "FROM opportunity WHERE live AND is_closed AND is_won "
                           "AND close_date >= DATE '2025-04-01' "
                           "AND close_date < DATE '2026-01-01'"),
}


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
    fix_sequences(conn, "person", "account", "crm_record", "opportunity")
    analyze(conn)


def duckdb_figures(n: int, m: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Per metric: (value, p95 seconds) computed by DuckDB over the same generated rows."""
    import duckdb

    db = duckdb.connect()
    db.execute("CREATE TABLE opportunity (id BIGINT, key VARCHAR, source VARCHAR, name VARCHAR, "
               "account_key VARCHAR, person_record_key VARCHAR, amount DOUBLE, stage VARCHAR, "
               "is_closed BOOLEAN, is_won BOOLEAN, created_at TIMESTAMPTZ, close_date DATE, "
               "owner_key VARCHAR, lead_source VARCHAR, live BOOLEAN)")
    db.execute("SET TimeZone = 'UTC'")
    cols = opportunity_columns(n, max(10, n // 10), postgres_style=True)
    db.execute(f"INSERT INTO opportunity ({', '.join(cols)}) SELECT {', '.join(cols.values())} "
               f"FROM generate_series(1, {m}) AS s(i)")
    out: dict[str, tuple[float, float]] = {}
    for name, sql in DUCKDB.items():
        times, value = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            value = db.execute(sql).fetchone()[0]  # type: ignore[index]
            times.append(time.perf_counter() - start)
        out[name] = (float(value), _p95(times))
    db.close()
    return out


def run(size: Size, ctx: Context) -> list[Row]:
    from fastapi.testclient import TestClient

    from metrics.definitions import METRICS
    from service.app import create_app
    from service.db import create_db_engine
    from service.settings import get_settings

    n, m, repeats = size.metric_persons, size.metric_opportunities, size.metric_requests
    key = "bench-admin-key-0123456789abcdef"
    rows: list[Row] = []
    with ctx.database() as url:
        engine = create_db_engine(url)
        ctx.log(f"metrics: {n:,} persons, {m:,} opportunities")
        with engine.begin() as conn:
            fill(conn, n, m)
        settings = get_settings(database_url=url, admin_api_key=key, _env_file=None)
        answers: dict[str, Any] = {}
        latency: dict[str, float] = {}
        with TestClient(create_app(settings, engine=engine)) as client:
            headers = {"Authorization": f"Bearer {key}"}
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
        engine.dispose()
    ctx.log("metrics: DuckDB over the same rows")
    duck = duckdb_figures(n, m, repeats)
    worst = max(latency, key=latency.__getitem__)
    rows.append(Row("metrics.p95_worst", latency[worst] * 1000, "ms", None,
                    aim="< 200 ms", met=latency[worst] < 0.2,
                    note=f"{worst}; {len(latency)} endpoints, {repeats} calls each, "
                         f"{n:,} persons, {m:,} opportunities, {ctx.database_kind}"))
    for name in METRICS:
        mine = latency[name] * 1000
        if name in duck:
            value, p95 = duck[name]
            got = answers[name]["value"]
            agree = got is not None and abs(float(got) - value) <= 1e-6 * max(1.0, abs(value))
            rows.append(Row(f"metrics.{name}.p95", mine, "ms",
                            Versus("DuckDB, same rows", p95 * 1000, ratio(mine, p95 * 1000)),
                            aim="< 200 ms, ≤ 2× DuckDB", met=mine < 200 and mine <= 2 * p95 * 1000,
                            note=f"value {_num(got)} (DuckDB {value:.6g}: "
                                 f"{'agree' if agree else 'DIFFER'}); "
                                 f"count {answers[name]['count']:,}"))
        else:
            rows.append(Row(f"metrics.{name}.p95", mine, "ms", None, aim="< 200 ms",
                            met=mine < 200,
                            note=f"count {answers[name]['count']:,}; no DuckDB twin"))
    return rows


def _num(value: Any) -> str:
    return "null" if value is None else f"{float(value):.6g}"


def _p95(times: list[float]) -> float:
    if len(times) < 2:
        return times[0]
    return statistics.quantiles(times, n=20, method="inclusive")[18]
