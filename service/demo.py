"""`truce demo`: sandbox CRMs, an agreed definition and SLA, a first sync, then serve live."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import Engine

from service.app import create_app, freeze_startup_heap
from service.auth.models import Role, Team
from service.auth.service import Principal
from service.db import create_db_engine, unit_of_work
from service.migrate import upgrade
from service.settings import (
    DEFAULT_DATABASE_URL,
    HubSpotSettings,
    SalesforceSettings,
    Settings,
    get_settings,
)

console = Console()
DEMO_INTERVAL_SECONDS = 30
US_WEEK = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def run_demo(*, port: int, people: int, seed: int, keep: bool = False) -> None:
    from connectors.sandbox.generator import REFERENCE_DEFINITION
    from connectors.sandbox.run import start_sandboxes
    from service.jobs import sync_all, warm_metric_facts
    from service.sync.progress import run_with_progress

    db_file = Path(".truce/truce.db")
    db_file.parent.mkdir(exist_ok=True)
    if not keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    admin_key = os.environ.get("TRUCE_ADMIN_API_KEY") or "truce_demo_" + secrets.token_urlsafe(16)
    console.print(f"[bold]Truce demo[/bold]: generating a company of {people} people")
    boxes = start_sandboxes(seed=seed, people=people)
    boxes.start_live()
    env = boxes.settings_env()
    settings = get_settings(
        database_url=DEFAULT_DATABASE_URL, admin_api_key=admin_key,
        sync_interval_seconds=DEMO_INTERVAL_SECONDS,
        sla_scan_interval_seconds=DEMO_INTERVAL_SECONDS,
        recycle_unanswered_after_days=30,
        salesforce=SalesforceSettings(
            instance_url=env["TRUCE_SALESFORCE_INSTANCE_URL"],
            access_token=SecretStr(env["TRUCE_SALESFORCE_ACCESS_TOKEN"]),
            ca_bundle=env["TRUCE_SALESFORCE_CA_BUNDLE"]),
        hubspot=HubSpotSettings(base_url=env["TRUCE_HUBSPOT_BASE_URL"],
                                access_token=SecretStr(env["TRUCE_HUBSPOT_ACCESS_TOKEN"]),
                                client_secret=SecretStr(env["TRUCE_HUBSPOT_CLIENT_SECRET"])),
    )
    console.print("migrating the embedded database (.truce/truce.db)")
    upgrade(settings.database_url)
    engine = create_db_engine(settings.database_url)
    seed_agreement(engine, settings, REFERENCE_DEFINITION)
    seed_inputs(engine, seed=seed)
    console.print("first full sync of both sandbox CRMs")
    run_with_progress(engine, settings, settings.enabled_sources(), full=True, console=console)
    from service.handoffs.jobs import scan_job

    scan_job(engine, settings)
    warm_metric_facts(engine)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(sync_all, "interval", args=[engine, settings],
                      seconds=DEMO_INTERVAL_SECONDS, max_instances=1, coalesce=True)
    scheduler.add_job(scan_job, "interval", args=[engine, settings],
                      seconds=DEMO_INTERVAL_SECONDS, max_instances=1, coalesce=True)
    scheduler.start()
    app = create_app(settings, engine=engine)
    freeze_startup_heap()
    console.print(f"Dashboard:     http://127.0.0.1:{port}/")
    console.print(f"API and docs:  http://127.0.0.1:{port}/docs")
    console.print(f"Prometheus:    http://127.0.0.1:{port}/metrics")
    console.print(f"Admin API key: {admin_key}")
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        scheduler.shutdown(wait=False)
        boxes.stop()


def seed_agreement(engine: Engine, settings: Settings, rules: dict) -> None:
    """What the two teams would have agreed: a definition, a calendar and two SLA policies."""
    from sqlmodel import select

    from service.definitions.models import LeadDefinition
    from service.definitions.qualification import activate_and_replay
    from service.definitions.service import approve, create_draft, propose
    from service.handoffs.models import BusinessCalendar, SlaPolicy

    with unit_of_work(engine) as session:
        if session.exec(select(LeadDefinition)).first() is not None:
            return
        cal = BusinessCalendar(name="US sales", timezone="America/New_York", hours=US_WEEK,
                               holiday_country="US")
        session.add(cal)
        session.flush()
        session.add(SlaPolicy(name="Demo requests", calendar_id=cal.id, priority=10,
                              match={"field": "person.lead_source", "op": "eq",
                                     "value": "Demo Request"},
                              accept_within_minutes=240, first_touch_within_minutes=240))
        session.add(SlaPolicy(name="All other leads", calendar_id=cal.id, priority=100,
                              accept_within_minutes=480, first_touch_within_minutes=1440))
        marketing = Principal(name="demo-marketing", team=Team.marketing, role=Role.editor)
        sales = Principal(name="demo-sales", team=Team.sales, role=Role.editor)
        draft = create_draft(session, name="Fit and engaged", rules=rules,
                             notes="Agreed in the demo's kickoff", principal=marketing)
        propose(session, draft, effective_from=None)
        approve(session, draft, marketing)
        approve(session, draft, sales)
        activate_and_replay(session, settings)


def seed_inputs(engine: Engine, *, seed: int) -> None:
    """What the CRMs do not hold: a diagnostic survey, sales spend, forecasts, a commitment
    and the who-to-call directory, so every panel of the dashboard has something to show."""
    import random
    from datetime import UTC, date, datetime, timedelta

    from sqlmodel import select

    from metrics.models import Forecast, Spend
    from service.alignment.models import Survey, SurveyResponse
    from service.alignment.scoring import score
    from service.handoffs.models import Commitment, DirectoryEntry

    rng = random.Random(seed)
    with unit_of_work(engine) as session:
        if session.exec(select(Survey)).first() is not None:
            return
        survey = Survey(name="Kickoff diagnostic", created_by="demo-ops")
        session.add(survey)
        session.flush()
        for team, centre in (("sales", 2.4), ("marketing", 3.1)):
            for n in range(5):
                answers = [min(5, max(1, round(rng.gauss(centre, 0.8)))) for _ in range(20)]
                session.add(SurveyResponse(survey_id=survey.id, team=team, answers=answers,
                                           score=score(answers), respondent=f"demo-{team}-{n}"))
        today = datetime.now(UTC).date()
        for back in range(12, -1, -1):
            first = (today.replace(day=1) - timedelta(days=31 * back)).replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            session.add(Spend(team="sales", period_start=first, period_end=last,
                              amount=round(rng.uniform(70_000, 90_000), 2),
                              category="salaries and tools", created_by="demo-ops"))
            session.add(Forecast(period_start=first, period_end=last,
                                 amount=round(rng.uniform(60_000, 140_000), 2),
                                 created_by="demo-sales"))
        quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        session.add(Commitment(period_start=quarter,
                               period_end=(quarter + timedelta(days=92)).replace(day=1)
                               - timedelta(days=1),
                               mqls_promised=150, min_acceptance_rate=0.5,
                               created_by="demo-marketing"))
        for segment in ("SMB", "Mid-Market", "Enterprise", "*"):
            session.add(DirectoryEntry(segment=segment, topic="large-deal",
                                       marketing_name="Dana Brand",
                                       marketing_email="dana.brand@truce.example",
                                       sales_name="Sam Closer",
                                       sales_email="sam.closer@truce.example"))
