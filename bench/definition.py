"""Evaluating the active lead definition over N persons: set-based SQL beside the Python judge.

``rules.to_sqlalchemy`` turns the definition into one SQL condition; the Python path
(``load_facts`` then ``evaluate``, in batches of 1,000 as qualification does) is what judges
persons after each sync page and explains a verdict. The Python path runs over a sample
and is scaled to N; both verdicts are compared on that sample, so a fast but wrong SQL
translation would show up here as a disagreement.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bench import Row, Size, Versus, ratio, stopwatch
from bench.fixtures import T0, activities, analyze, fix_sequences, persons

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Engine

    from bench.runner import Context

# the contract's example definition
RULES: dict[str, Any] = {"all": [
    {"field": "person.country", "op": "in", "value": ["US", "CA", "GB"]},
    {"field": "account.employees", "op": "gte", "value": 50},
    {"not": {"field": "person.email_domain", "op": "in", "value": ["gmail.com", "yahoo.com"]}},
    {"any": [
        {"field": "person.score", "op": "gte", "value": 60},
        {"activity": "form_submission", "within_days": 30, "at_least": 1},
    ]},
]}
BATCH = 1000


def sql_condition(engine: Engine, now: Any) -> tuple[Any, ColumnElement[bool]]:
    """The FROM clause (persons with their accounts) and the rules as a WHERE condition."""
    from sqlalchemy import func, select

    from service.crm.models import Account, Activity
    from service.definitions.rules import to_sqlalchemy
    from service.people.models import Person
    from service.sync.models import CrmRow

    p, a = Person.__table__.c, Account.__table__.c  # type: ignore[attr-defined]
    act, rec = Activity.__table__, CrmRow.__table__  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        domain = func.split_part(p.email, "@", 2)
    else:
        domain = func.substr(p.email, func.instr(p.email, "@") + 1)
    columns = {
        "person.email": p.email, "person.email_domain": domain, "person.title": p.title,
        "person.country": p.country, "person.lead_source": p.lead_source,
        "person.score": p.score, "account.name": a.name, "account.industry": a.industry,
        "account.employees": a.employees, "account.annual_revenue": a.annual_revenue,
        "account.country": a.country, "account.is_customer": a.is_customer,
    }

    def activity_count(kind: str, days: int) -> ColumnElement[Any]:
        return (select(func.count()).select_from(act.join(rec, rec.c.key == act.c.record_key))
                .where(rec.c.person_id == p.id, act.c.kind == kind, act.c.live,
                       act.c.at > now - timedelta(days=days), act.c.at <= now)
                .scalar_subquery())

    condition = to_sqlalchemy(RULES, columns, activity_count)
    assert condition is not None
    joined = Person.__table__.outerjoin(  # type: ignore[attr-defined]
        Account.__table__, a.key == p.account_key)  # type: ignore[attr-defined]
    return joined, condition


def run(size: Size, ctx: Context) -> list[Row]:
    from sqlalchemy import func, select
    from sqlmodel import col
    from sqlmodel import select as select_model

    from service.db import create_db_engine, unit_of_work
    from service.definitions.backtest import run_backtest
    from service.definitions.facts import load_facts
    from service.definitions.models import LeadDefinition
    from service.definitions.rules import evaluate
    from service.people.models import Person

    n, sample = size.persons, min(size.python_sample, size.persons)
    now = T0 + timedelta(days=400)
    with ctx.database() as url:
        engine = create_db_engine(url)
        ctx.log(f"definition: {n:,} persons")
        with engine.begin() as conn:
            persons(conn, n, accounts=max(10, n // 10))
            activities(conn, n, now=now)
            fix_sequences(conn, "person", "account", "crm_record", "activity")
            analyze(conn)
        joined, condition = sql_condition(engine, now)
        person = Person.__table__.c  # type: ignore[attr-defined]
        live = (person.live, person.merged_into.is_(None))
        with engine.connect() as conn, stopwatch() as sql_time:
            qualified = conn.execute(select(func.count()).select_from(joined)
                                     .where(*live, condition)).scalar_one()
        step = max(1, n // sample)  # spread the sample over the whole table
        sample_ids = list(range(1, n + 1, step))[:sample]
        with engine.connect() as conn:
            sql_sample = set(conn.execute(select(person.id).select_from(joined).where(
                *live, condition, person.id.in_(sample_ids))).scalars())
        passed: set[int] = set()
        with unit_of_work(engine) as session, stopwatch() as py_time:
            for i in range(0, len(sample_ids), BATCH):
                batch = list(session.exec(select_model(Person).where(
                    col(Person.id).in_(sample_ids[i:i + BATCH]))))
                facts = load_facts(session, batch)
                passed.update(pid for pid, fact in facts.items()
                              if evaluate(RULES, fact, at=now).passed)
        with unit_of_work(engine) as session, stopwatch() as backtest_time:
            candidate = LeadDefinition(version=2, name="candidate", rules=RULES,
                                       created_by="bench")
            backtest = run_backtest(session, candidate, None, start=now - timedelta(days=365),
                                    end=now, now=now)
        engine.dispose()
    sql_rate = n / sql_time[0]
    py_rate = len(sample_ids) / py_time[0]
    py_scaled = n / py_rate
    agree = "agree" if passed == sql_sample else (
        f"DISAGREE on {len(passed ^ sql_sample)} of {len(sample_ids)}")
    label = f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"
    note = (f"{ctx.database_kind}; {qualified:,} of {n:,} qualify; SQL and Python {agree} "
            f"on a {len(sample_ids):,}-person sample")
    return [
        Row(f"definition.evaluate_{label}", sql_time[0], "s",
            Versus("Python evaluate (scaled)", py_scaled, ratio(sql_time[0], py_scaled)),
            note=note),
        Row("definition.persons_per_second", sql_rate, "persons/s",
            Versus("Python evaluate", py_rate, ratio(sql_rate, py_rate)),
            note=f"Python: load_facts + evaluate over {len(sample_ids):,} persons"),
        Row(f"definition.backtest_year_{label}", backtest_time[0], "s",
            Versus("Python evaluate (scaled)", py_scaled, ratio(backtest_time[0], py_scaled)),
            note=f"a year replayed over every person (MQL instants): "
                 f"{backtest['candidate']['mqls']:,} MQLs"),
    ]
