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

from service.app import create_app
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
    from service.jobs import sync_all
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
    console.print("first full sync of both sandbox CRMs")
    run_with_progress(engine, settings, settings.enabled_sources(), full=True, console=console)
    from service.handoffs.jobs import scan_job

    scan_job(engine, settings)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(sync_all, "interval", args=[engine, settings],
                      seconds=DEMO_INTERVAL_SECONDS, max_instances=1, coalesce=True)
    scheduler.add_job(scan_job, "interval", args=[engine, settings],
                      seconds=DEMO_INTERVAL_SECONDS, max_instances=1, coalesce=True)
    scheduler.start()
    app = create_app(settings, engine=engine)
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
