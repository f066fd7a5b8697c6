"""Metric endpoints: p95 latency of every ``GET /api/v1/metrics/{name}``, beside DuckDB.

The data is N persons and M opportunities over a year, with the funnel around them: an MQL
for one person in four (each with a handoff and its two SLA clocks, three in four decided),
later SAL, SQL and won stages for some, monthly spend, campaigns, forecasts and MQL
commitments, twenty owners in two teams and an active lead definition. The metric facts
(``metrics.facts``) are built once after loading, as the first request would, and the time
it took is noted. Every metric endpoint is called as a dashboard calls it: over a kept-alive
connection to ``truce serve`` (uvicorn, one worker) on a local socket. DuckDB then computes
each metric's whole answer (``count``, ``value`` and every number of ``stats``) over the same
rows, copied out of the database, in one query per metric; every number is checked against the
endpoint's, and that query's p95 is the comparison. The time of a query for the headline
value alone is noted beside it.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
    import duckdb
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


# each metric's headline value alone (the first DuckDB twin, kept for its time beside the
# full answer's below)
HEADLINE_ONLY = {
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
# Each metric's whole answer as its endpoint gives it, one query each: ``count``, ``value``
# and ``stats`` (a struct, read back as a dict), by the definitions in ``metrics.formulas``
# and ``metrics.aggregates`` applied to the copied rows rather than to Truce's metric facts.
# Percentiles interpolate linearly between closest ranks (``quantile_cont``), as
# ``metrics.stats`` does; an empty population answers a null value with a count of 0.
VERSION = 1  # the active definition's (see ``inputs``)
DECIDED = f"decided_at >= {W0} AND decided_at < {W1} AND definition_version = {VERSION}"
# live deals won and closed in the window, the opportunity being ``o``
WON_O = f"o.live AND o.is_closed AND o.is_won AND o.close_date >= {D0} AND o.close_date < {D1}"
# the window's spend, prorated (``SPEND``), per team
SPENT = (f"{SPEND}, spent AS (SELECT coalesce(sum(amount) FILTER (WHERE team = 'sales'), 0) "
         "AS sales, coalesce(sum(amount) FILTER (WHERE team = 'marketing'), 0) AS marketing "
         "FROM p)")
# a customer: the deal's account, else its person, else the deal itself
CUSTOMER = ("CASE WHEN nullif(o.account_key, '') IS NOT NULL THEN 'account:' || o.account_key "
            "WHEN c.person_id IS NOT NULL THEN 'person:' || c.person_id "
            "ELSE 'opportunity:' || o.key END")


def _mqls_in_window(e: str) -> str:
    """MQL events of the active definition in the window, ``e`` being the stage event."""
    return (f"{e}.stage = 'mql' AND {e}.definition_version = {VERSION} "
            f"AND {e}.at >= {W0} AND {e}.at < {W1}")


def _ratio(part: str, whole: str) -> str:
    """``part / whole``, null for a zero ``whole`` (as ``formulas._ratio``)."""
    return f"({part}) / nullif({whole}, 0)::DOUBLE"


def _summary(e: str, prefix: str = "") -> str:
    """``metrics.stats.summary`` of ``e`` as struct fields: median, mean and p90."""
    return (f"'{prefix}median': median({e}), '{prefix}mean': avg({e}), "
            f"'{prefix}p90': quantile_cont({e}, 0.9)")


def _durations(kind: str) -> str:
    return (f"SELECT count(*) AS count, median(b) AS value, "
            f"{{{_summary('b')}, {_summary('k', 'calendar_')}}} AS stats FROM ("
            "SELECT c.business_minutes AS b, c.calendar_minutes AS k FROM sla_clock c "
            f"JOIN handoff h ON h.id = c.handoff_id WHERE c.kind = '{kind}' "
            f"AND c.stopped_at >= {W0} AND c.stopped_at < {W1} "
            "AND c.business_minutes IS NOT NULL AND c.calendar_minutes IS NOT NULL "
            f"AND h.definition_version = {VERSION})")


DUCKDB = {
    # pending: opened in the window and not decided before its end
    "lead-acceptance-rate": (
        f"SELECT a + r AS count, {_ratio('a', 'a + r')} AS value, "
        "{'accepted': a, 'rejected': r, 'pending': w} AS stats FROM (SELECT "
        f"count(*) FILTER (WHERE state = 'accepted' AND {DECIDED}) AS a, "
        f"count(*) FILTER (WHERE state = 'rejected' AND {DECIDED}) AS r, "
        f"count(*) FILTER (WHERE opened_at >= {W0} AND opened_at < {W1} "
        f"AND (decided_at IS NULL OR decided_at >= {W1})) AS w "
        f"FROM handoff WHERE definition_version = {VERSION})"),
    "rejection-reasons": (
        "WITH r AS (SELECT coalesce(nullif(trim(reason), ''), 'unspecified') AS reason, "
        f"count(*) AS n FROM handoff WHERE state = 'rejected' AND {DECIDED} GROUP BY 1), "
        "t AS (SELECT sum(n) AS n FROM r) "
        "SELECT coalesce(t.n, 0) AS count, nullif(t.n, 0) AS value, {'by_reason': coalesce(("
        "SELECT list({'reason': reason, 'count': r.n, 'share': r.n / t.n} "
        "ORDER BY r.n DESC, reason) FROM r), [])} AS stats FROM t"),
    # an MQL reached SAL when its person had a later SAL, SQL or win, or its handoff was
    # accepted; SQL with a later SQL or win; won with a later win
    "funnel-conversion": (
        "WITH later AS (SELECT e.person_id, max(e.at) AS sal, "
        "max(e.at) FILTER (WHERE e.stage IN ('sql', 'won')) AS sql, "
        "max(e.at) FILTER (WHERE e.stage = 'won') AS won FROM stage_event e "
        "WHERE e.stage IN ('sal', 'sql', 'won') GROUP BY e.person_id), "
        "accepted AS (SELECT DISTINCT mql_event_id FROM handoff WHERE state = 'accepted'), "
        "f AS (SELECT count(*) AS mqls, "
        "count(*) FILTER (WHERE l.sal >= m.at OR a.mql_event_id IS NOT NULL) AS sals, "
        "count(*) FILTER (WHERE l.sql >= m.at) AS sqls, "
        "count(*) FILTER (WHERE l.won >= m.at) AS won FROM stage_event m "
        "LEFT JOIN later l ON l.person_id = m.person_id "
        f"LEFT JOIN accepted a ON a.mql_event_id = m.id WHERE {_mqls_in_window('m')}) "
        f"SELECT mqls AS count, {_ratio('won', 'mqls')} AS value, {{'mqls': mqls, "
        f"'sals': sals, 'sqls': sqls, 'won': won, 'mql_to_sal': {_ratio('sals', 'mqls')}, "
        f"'sal_to_sql': {_ratio('sqls', 'sals')}, 'sql_to_won': {_ratio('won', 'sqls')}}} "
        "AS stats FROM f"),
    "time-to-accept": _durations("accept"),
    "time-to-first-touch": _durations("first_touch"),
    # a clock's outcome: its own when decided, else met or breached by its stop, else
    # breached when due by now, else pending; by_clock is each kind's compliance
    "sla-compliance": (
        "WITH o AS (SELECT c.kind, CASE WHEN c.state IN ('met', 'breached') THEN c.state "
        "WHEN c.stopped_at IS NOT NULL THEN CASE WHEN c.stopped_at <= c.due_at THEN 'met' "
        "ELSE 'breached' END WHEN c.due_at <= $now THEN 'breached' ELSE 'pending' END AS o "
        f"FROM sla_clock c JOIN handoff h ON h.id = c.handoff_id WHERE c.due_at >= {W0} "
        f"AND c.due_at < {W1} AND h.definition_version = {VERSION}), "
        "t AS (SELECT count(*) FILTER (WHERE o = 'met') AS met, "
        "count(*) FILTER (WHERE o = 'breached') AS breached, "
        "count(*) FILTER (WHERE o = 'pending') AS pending, "
        "count(*) FILTER (WHERE o = 'met' AND kind = 'accept') AS am, "
        "count(*) FILTER (WHERE o = 'breached' AND kind = 'accept') AS ab, "
        "count(*) FILTER (WHERE o = 'met' AND kind = 'first_touch') AS fm, "
        "count(*) FILTER (WHERE o = 'breached' AND kind = 'first_touch') AS fb FROM o) "
        f"SELECT met + breached AS count, {_ratio('met', 'met + breached')} AS value, "
        "{'met': met, 'breached': breached, 'pending': pending, 'by_clock': {"
        f"'accept': {_ratio('am', 'am + ab')}, 'first_touch': {_ratio('fm', 'fm + fb')}}}}} "
        "AS stats FROM t"),
    # days from the deal's created date, and from its person's, to its close date (UTC)
    "sales-cycle-length": (
        "SELECT count(*) AS count, median(d) AS value, "
        f"{{{_summary('d')}, 'from_lead_created': CASE WHEN count(l) > 0 THEN "
        f"{{{_summary('l')}}} END}} AS stats FROM (SELECT "
        "o.close_date - CAST(o.created_at AS DATE) AS d, "
        "o.close_date - CAST(p.created_at AS DATE) AS l FROM opportunity o "
        "LEFT JOIN crm_record c ON c.key = o.person_record_key "
        f"LEFT JOIN person p ON p.id = c.person_id WHERE {WON_O} "
        "AND o.created_at IS NOT NULL)"),
    "win-rate": (
        f"SELECT won + lost AS count, {_ratio('won', 'won + lost')} AS value, "
        "{'won': won, 'lost': lost, 'won_amount': wa, 'lost_amount': la, "
        f"'by_amount': {_ratio('wa', 'wa + la')}}} AS stats FROM (SELECT "
        "count(*) FILTER (WHERE is_won) AS won, count(*) FILTER (WHERE NOT is_won) AS lost, "
        "coalesce(sum(amount) FILTER (WHERE is_won), 0) AS wa, "
        "coalesce(sum(amount) FILTER (WHERE NOT is_won), 0) AS la "
        f"FROM opportunity WHERE {CLOSED})"),
    "cost-of-sales": (
        f"{SPENT}, w AS (SELECT count(*) AS n, coalesce(sum(o.amount), 0) AS revenue "
        f"FROM opportunity o WHERE {WON_O}) "
        "SELECT n AS count, CASE WHEN n > 0 AND revenue <> 0 "
        "THEN (sales + marketing) / revenue END AS value, {'sales_spend': sales, "
        "'marketing_spend': marketing, 'spend': sales + marketing, 'won_revenue': revenue} "
        "AS stats FROM spent, w"),
    # new customers: those whose first live win ever closed in the window
    "cac": (
        f"{SPENT}, u AS (SELECT count(*) AS n FROM (SELECT {CUSTOMER}, "
        "min(o.close_date) AS first FROM opportunity o LEFT JOIN crm_record c "
        "ON c.key = o.person_record_key WHERE o.live AND o.is_closed AND o.is_won "
        f"AND o.close_date IS NOT NULL GROUP BY 1) WHERE first >= {D0} AND first < {D1}) "
        f"SELECT n AS count, {_ratio('sales + marketing', 'n')} AS value, "
        "{'spend': sales + marketing, 'units': n} AS stats FROM spent, u"),
    "cost-per-mql": (
        f"{SPENT}, u AS (SELECT count(*) AS n FROM stage_event m "
        f"WHERE {_mqls_in_window('m')}) "
        f"SELECT n AS count, {_ratio('marketing', 'n')} AS value, "
        "{'spend': marketing, 'units': n} AS stats FROM spent, u"),
    # open at the window's end: created before it and not closed before it
    "pipeline-velocity": (
        "WITH v AS (SELECT (SELECT count(*) FROM opportunity WHERE live "
        f"AND created_at < {W1} AND (NOT is_closed OR (close_date IS NOT NULL "
        f"AND close_date >= {D1}))) AS n, {_ratio('won', 'won + lost')} AS rate, "
        f"{_ratio('wa', 'won')} AS mean, cycle FROM (SELECT "
        "count(*) FILTER (WHERE is_won) AS won, count(*) FILTER (WHERE NOT is_won) AS lost, "
        "coalesce(sum(amount) FILTER (WHERE is_won), 0) AS wa, "
        "median(close_date - CAST(created_at AS DATE)) FILTER (WHERE is_won) AS cycle "
        f"FROM opportunity WHERE {CLOSED})) "
        "SELECT n AS count, CASE WHEN n > 0 AND cycle <> 0 THEN n * rate * mean / cycle END "
        "AS value, {'open_opportunities': n, 'win_rate': rate, 'mean_won_amount': mean, "
        "'median_cycle_days': cycle} AS stats FROM v"),
    # sourced: the deal's person was an MQL (of the active definition) before it was created
    "marketing-sourced-share": (
        "WITH first AS (SELECT m.person_id, min(m.at) AS at FROM stage_event m "
        f"WHERE m.stage = 'mql' AND m.definition_version = {VERSION} GROUP BY m.person_id), "
        "d AS (SELECT count(*) AS n, coalesce(sum(o.amount), 0) AS total, "
        "count(*) FILTER (WHERE f.at < o.created_at) AS sn, "
        "coalesce(sum(o.amount) FILTER (WHERE f.at < o.created_at), 0) AS sa "
        "FROM opportunity o LEFT JOIN crm_record c ON c.key = o.person_record_key "
        f"LEFT JOIN first f ON f.person_id = c.person_id WHERE {WON_O}) "
        "SELECT n AS count, CASE WHEN n > 0 THEN sa / nullif(total, 0) END AS value, "
        "{'sourced_amount': sa, 'total_amount': total, 'sourced_deals': sn, "
        f"'by_count': {_ratio('sn', 'n')}}} AS stats FROM d"),
    # actual: live won revenue closed in the forecast's period, in its segment and team
    # (summed per day, segment and team first)
    "forecast-accuracy": (
        "WITH f AS (SELECT amount, period_start, period_end, segment, team FROM forecast "
        f"WHERE period_end >= {D0} AND period_end < {D1}), "
        f"w AS (SELECT o.close_date AS day, {SEGMENT.format(e='a.employees')} AS segment, "
        "coalesce(nullif(t.team, ''), 'unassigned') AS team, sum(o.amount) AS amount "
        "FROM opportunity o LEFT JOIN account a ON a.key = o.account_key "
        "LEFT JOIN owner t ON t.key = o.owner_key WHERE o.live AND o.is_closed AND o.is_won "
        "AND o.close_date >= (SELECT min(period_start) FROM f) "
        "AND o.close_date <= (SELECT max(period_end) FROM f) GROUP BY ALL), "
        "a AS (SELECT f.amount AS forecast, (SELECT coalesce(sum(w.amount), 0) FROM w "
        "WHERE w.day >= f.period_start AND w.day <= f.period_end AND (f.segment IS NULL "
        "OR w.segment = f.segment) AND (f.team IS NULL OR w.team = f.team)) AS actual FROM f) "
        "SELECT count(*) FILTER (WHERE actual <> 0) AS count, "
        "avg(1 - abs(actual - forecast) / abs(actual)) FILTER (WHERE actual <> 0) AS value, "
        "{'pairs': count(*), 'skipped_zero_actual': count(*) FILTER (WHERE actual = 0)} "
        "AS stats FROM a"),
    # delivered: MQLs of the active definition on the period's UTC days, of its segment
    # (counted per day and segment first)
    "mql-commitment-attainment": (
        "WITH c AS (SELECT mqls_promised, period_start, period_end, "
        "nullif(segment, '') AS segment FROM commitment "
        f"WHERE period_start >= {D0} AND period_end < {D1}), "
        f"m AS (SELECT CAST(m.at AS DATE) AS day, {SEGMENT.format(e='a.employees')} AS segment, "
        "count(*) AS n FROM stage_event m LEFT JOIN person p ON p.id = m.person_id "
        "LEFT JOIN account a ON a.key = p.account_key WHERE m.stage = 'mql' "
        f"AND m.definition_version = {VERSION} "
        "AND m.at >= (SELECT CAST(min(period_start) AS TIMESTAMPTZ) FROM c) "
        "AND m.at < (SELECT CAST(max(period_end) + 1 AS TIMESTAMPTZ) FROM c) GROUP BY ALL), "
        "t AS (SELECT coalesce(sum(mqls_promised), 0) AS committed, "
        "coalesce(sum((SELECT coalesce(sum(n), 0) FROM m WHERE m.day >= c.period_start "
        "AND m.day <= c.period_end AND (c.segment IS NULL OR m.segment = c.segment))), 0) "
        "AS delivered FROM c) "
        f"SELECT committed AS count, {_ratio('delivered', 'committed')} AS value, "
        "{'delivered': delivered, 'committed': committed} AS stats FROM t"),
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
    "handoff": ("id, person_id, mql_event_id, definition_version, state, reason, opened_at, "
                "decided_at"),
    "sla_clock": "handoff_id, kind, state, due_at, stopped_at, business_minutes, "
                 "calendar_minutes",
    "spend": "team, period_start, period_end, amount",
    "campaign": "start_date, end_date, actual_cost, live",
    "forecast": "period_start, period_end, amount, team, segment",
    "commitment": "period_start, period_end, mqls_promised, segment",
}
INSTANTS = {"created_at", "at", "opened_at", "decided_at", "due_at", "stopped_at"}
DAYS = {"close_date", "period_start", "period_end", "start_date", "end_date"}
FLAGS = {"is_closed", "is_won", "live"}
NUMBERS = {"amount", "actual_cost"}
INTEGERS = {"id", "person_id", "mql_event_id", "employees", "definition_version", "handoff_id",
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


@dataclass(frozen=True)
class Twin:
    """DuckDB's side of one metric: its whole answer and p95 time, and the headline-only
    query's value and p95 time (seconds)."""

    answer: dict[str, Any]
    seconds: float
    headline: float | None
    headline_seconds: float


def copy_to_duckdb(conn: Connection, tmp: Path) -> tuple[duckdb.DuckDBPyConnection, float]:
    """An in-memory DuckDB holding the ``COPIED`` columns of the database's tables, and the
    seconds the copy took."""
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
    return db, time.perf_counter() - started


def duckdb_twins(db: duckdb.DuckDBPyConnection, repeats: int, *, now: datetime
                 ) -> dict[str, Twin]:
    """Per metric, DuckDB's whole answer (``DUCKDB``) and headline (``HEADLINE_ONLY``), each
    run ``repeats`` times for its p95."""
    moment = f"TIMESTAMPTZ '{now.isoformat()}'"
    out: dict[str, Twin] = {}
    for name, sql in DUCKDB.items():
        times, answer = [], {}
        for _ in range(repeats):
            start = time.perf_counter()
            cursor = db.execute(sql.replace("$now", moment))
            row = cursor.fetchone() or ()
            times.append(time.perf_counter() - start)
            answer = dict(zip([d[0] for d in cursor.description or ()], row, strict=True))
        headline_times, value = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            found = db.execute(HEADLINE_ONLY[name].replace("$now", moment)).fetchone()
            headline_times.append(time.perf_counter() - start)
            value = found[0] if found else None
        finite = value is not None and math.isfinite(float(value))
        out[name] = Twin(answer, _p95(times), float(value) if finite else None,
                         _p95(headline_times))
    return out


MISSING = object()  # a path one answer has and the other lacks


def differences(endpoint: dict[str, Any], duck: dict[str, Any]) -> list[str]:
    """Every number (or label) of the endpoint's ``count``, ``value`` and ``stats`` that
    DuckDB answers otherwise or not at all, as ``path endpoint vs DuckDB``."""
    mine = dict(_leaves({key: endpoint[key] for key in ("count", "value", "stats")}))
    theirs = dict(_leaves(duck))
    paths = [*mine, *(path for path in theirs if path not in mine)]
    return [f"{path} {_show(mine.get(path, MISSING))} vs {_show(theirs.get(path, MISSING))}"
            for path in paths if not _same(mine.get(path, MISSING), theirs.get(path, MISSING))]


def numbers(answer: dict[str, Any]) -> int:
    """How many numbers an answer holds (its count, value and stats)."""
    return sum(1 for _, leaf in _leaves({key: answer[key] for key in ("count", "value", "stats")})
               if not isinstance(leaf, str))


def _leaves(answer: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a nested answer with its path, e.g. ``stats.by_reason[0].share``."""
    if isinstance(answer, dict):
        for key, item in answer.items():
            yield from _leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(answer, list):
        for i, item in enumerate(answer):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, answer


def _same(a: Any, b: Any) -> bool:
    """Counts and labels equal, other numbers equal but for float rounding (DuckDB sums in
    another order), null only beside null."""
    if a is MISSING or b is MISSING or a is None or b is None:
        return a is b
    if isinstance(a, str | bool) or isinstance(b, str | bool):
        return bool(a == b)
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _show(value: Any) -> str:
    if value is MISSING:
        return "missing"
    return value if isinstance(value, str) else _num(value)


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
    import httpx
    from sqlmodel import Session

    from bench.api import free_port, start_server, stop_server
    from metrics.definitions import METRICS
    from metrics.facts import refresh
    from service.db import create_db_engine

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
        answers: dict[str, Any] = {}
        latency: dict[str, float] = {}
        port = free_port()
        serve = [sys.executable, "-c", "from service.cli import main; main()", "serve",
                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        server = start_server(serve, {"TRUCE_DATABASE_URL": url, "TRUCE_ADMIN_API_KEY": key},
                              port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                              headers={"Authorization": f"Bearer {key}"}) as client:
                # one untimed request first: the app's first (connections, key check) is
                # not any one metric's time, and would otherwise be the first one's p95
                client.get("/api/v1/metrics").raise_for_status()
                for name in METRICS:
                    times = []
                    for _ in range(repeats):
                        start = time.perf_counter()
                        answer = client.get(f"/api/v1/metrics/{name}", params=WINDOW)
                        times.append(time.perf_counter() - start)
                        if answer.status_code != 200:
                            raise RuntimeError(
                                f"{name}: {answer.status_code} {answer.text[:200]}")
                    answers[name], latency[name] = answer.json(), _p95(times)
        finally:
            stop_server(server)
        ctx.log("metrics: DuckDB over the same rows")
        with engine.connect() as conn:
            db, copied = copy_to_duckdb(conn, ctx.tmp)
        engine.dispose()
        try:
            duck = duckdb_twins(db, repeats, now=datetime.now(UTC))
        finally:
            db.close()
    worst = max(latency, key=latency.__getitem__)
    rows.append(Row("metrics.p95_worst", latency[worst] * 1000, "ms", None,
                    aim="< 200 ms", met=latency[worst] < 0.2,
                    note=f"{worst}; {len(latency)} endpoints, {repeats} calls each, "
                         f"{n:,} persons, {m:,} opportunities, {ctx.database_kind}; "
                         f"metric facts built in {built:.1f} s; "
                         f"rows copied to DuckDB in {copied:.0f} s"))
    for name in METRICS:
        mine = latency[name] * 1000
        count = f"count {answers[name]['count']:,}"
        if name not in duck:
            rows.append(Row(f"metrics.{name}.p95", mine, "ms", None, aim="< 200 ms",
                            met=mine < 200, note=f"{count}; no DuckDB twin"))
            continue
        twin = duck[name]
        theirs = twin.seconds * 1000
        rows.append(Row(f"metrics.{name}.p95", mine, "ms",
                        Versus("DuckDB, same numbers", theirs, ratio(mine, theirs)),
                        aim="< 200 ms, ≤ 2× DuckDB", met=mine < 200 and mine <= 2 * theirs,
                        note=f"{_agreement(answers[name], twin)}; {count}"))
    return rows


def _agreement(endpoint: dict[str, Any], twin: Twin) -> str:
    """Whether DuckDB's numbers are the endpoint's (which differ if not), and the time of
    DuckDB's headline-only query beside them."""
    differ = differences(endpoint, twin.answer)
    if differ:
        more = f" (+{len(differ) - 4} more)" if len(differ) > 4 else ""
        said = f"DIFFER from DuckDB: {', '.join(differ[:4])}{more}"
    else:
        said = f"all {numbers(endpoint)} numbers agree with DuckDB"
    headline = f"DuckDB headline only: {twin.headline_seconds * 1000:.1f} ms"
    if not _same(endpoint["value"], twin.headline):
        headline += f" (its value {_num(twin.headline)} differs)"
    return f"{said}; {headline}"


def _num(value: Any) -> str:
    return "null" if value is None else f"{float(value):.6g}"


def _p95(times: list[float]) -> float:
    if len(times) < 2:
        return times[0]
    return statistics.quantiles(times, n=20, method="inclusive")[18]
