"""Full and incremental syncs from both sandbox CRMs through the real client libraries.

The sandbox knows what it generated (``world.truth``), so each test compares the database
with the truth, or a faulty run's database with a clean run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import col, select

from connectors.hubspot import HubSpotConnector
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.generator import generate_world
from connectors.sandbox.run import Sandboxes, start_sandboxes
from service.db import unit_of_work
from service.people.models import Person, PersonLink
from service.people.repository import live_person_count
from service.settings import SalesforceSettings, Settings
from service.sync.models import CrmRow, Quarantined, SyncRun
from service.sync.service import sync_source
from tests.factories import pointed_at

SF_OBJECTS = ("Account", "Campaign", "Contact", "Event", "Lead", "Opportunity", "Task", "User")
HS_OBJECTS = ("calls", "companies", "contacts", "deals", "emails", "meetings")


@pytest.fixture()
def boxes() -> Iterator[Sandboxes]:
    sandboxes = start_sandboxes(world=generate_world(seed=3, people=400))
    yield sandboxes
    sandboxes.stop()


@pytest.fixture()
def crm_settings(settings: Settings, boxes: Sandboxes) -> Settings:
    return pointed_at(settings, boxes)


def connectors(settings: Settings) -> dict[str, object]:
    """Connectors with short retry waits, so fault tests stay quick."""
    return {"salesforce": SalesforceConnector(settings.salesforce, batch_size=200,
                                              retry_wait_seconds=0.01),
            "hubspot": HubSpotConnector(settings.hubspot, page_size=100,
                                        retry_wait_seconds=0.01)}


def sync_both(engine: Engine, settings: Settings, **kw: object) -> dict[str, SyncRun]:
    made = connectors(settings)
    return {src: sync_source(engine, settings, src, connector=made[src], hooks=[], **kw)
            for src in ("salesforce", "hubspot")}


def snapshot(engine: Engine) -> tuple[frozenset, int, int]:
    """What a clean run leaves: every row's state, the person count and the quarantine."""
    with unit_of_work(engine) as s:
        rows = frozenset(s.exec(select(CrmRow.key, CrmRow.payload_hash, CrmRow.deleted,
                                       CrmRow.merged_into)).all())
        quarantined = s.exec(select(func.count()).select_from(Quarantined)).one()
        return rows, live_person_count(s), quarantined


def live_counts(engine: Engine) -> Counter:
    with unit_of_work(engine) as s:
        return Counter((src, obj) for src, obj in s.exec(
            select(CrmRow.source, CrmRow.object).where(CrmRow.deleted == False)))  # noqa: E712


def dangling_person_ids(engine: Engine) -> dict[str, int]:
    """Rows pointing at a person that does not exist, by table: the database no longer
    checks crm_record's and person_link's (migration 0013), so the sync must never make one."""
    with unit_of_work(engine) as s:
        known = select(Person.id).where(Person.id == CrmRow.person_id).exists()
        rows = s.exec(select(func.count()).select_from(CrmRow).where(
            col(CrmRow.person_id).is_not(None), ~known)).one()
        known = select(Person.id).where(Person.id == PersonLink.person_id).exists()
        links = s.exec(select(func.count()).select_from(PersonLink).where(~known)).one()
    return {"crm_record": rows, "person_link": links}


def wipe(engine: Engine) -> None:
    from sqlalchemy import text
    from sqlmodel import SQLModel

    with engine.begin() as conn:
        tables = list(reversed(SQLModel.metadata.sorted_tables))
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(t.delete())


def test_full_sync_matches_what_the_sandbox_generated(
    engine: Engine, crm_settings: Settings, boxes: Sandboxes
) -> None:
    runs = sync_both(engine, crm_settings)
    assert {r.status for r in runs.values()} == {"succeeded"}
    truth = boxes.world.truth
    malformed = Counter((src, obj) for src, obj, _id, _why in truth["malformed"])
    counts = live_counts(engine)
    for obj in SF_OBJECTS:
        expected = truth["salesforce_live"][obj] - malformed[("salesforce", obj)]
        assert counts[("salesforce", obj)] == expected, obj
    for obj in HS_OBJECTS:
        expected = truth["hubspot_live"][obj] - malformed[("hubspot", obj)]
        assert counts[("hubspot", obj)] == expected, obj
    with unit_of_work(engine) as s:
        assert live_person_count(s) == truth["persons"]
        assert s.exec(select(func.count()).select_from(Quarantined)).one() == len(
            truth["malformed"])
    assert dangling_person_ids(engine) == {"crm_record": 0, "person_link": 0}
    again = sync_both(engine, crm_settings)
    for run in again.values():
        for stream, c in run.counts.items():
            assert c["created"] == c["updated"] == c["deleted"] == c["merged"] == 0, stream


def test_a_first_load_leaves_the_planner_the_real_row_counts(
    engine: Engine, crm_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that created enough rows analyses the lookup tables (PostgreSQL), so the next
    run's key lookups are planned for the table's real size; a small run does not."""
    if engine.dialect.name != "postgresql":
        pytest.skip("ANALYZE after a load is for PostgreSQL's planner")
    from service.sync import engine as sync_engine

    created = 200  # well under what this sandbox creates
    monkeypatch.setattr(sync_engine, "ANALYZE_AFTER_CREATED", created)
    runs = sync_both(engine, crm_settings)
    with engine.connect() as conn:
        for table in sync_engine.ANALYZED:
            rows = conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar_one()
            planned = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)).scalar_one()
            assert rows > created and planned == rows, table
    again = sync_both(engine, crm_settings)  # creates nothing: nothing to analyse
    assert not sync_engine.analyze_after_load(engine, again["salesforce"].id or 0)
    assert sync_engine.analyze_after_load(engine, runs["salesforce"].id or 0)


def test_a_load_analyses_its_lookup_tables_while_it_runs(
    engine: Engine, crm_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without statistics the planner reads the whole person table for each page's lookup
    by email, growing with the load: a load analyses once early, not only at its end."""
    if engine.dialect.name != "postgresql":
        pytest.skip("ANALYZE is for PostgreSQL's planner")
    from service.sync import engine as sync_engine

    monkeypatch.setattr(sync_engine, "ANALYZE_AFTER_CREATED", 200)
    monkeypatch.setattr(sync_engine, "analyze_after_load", lambda *_: False)  # not at the end
    with engine.connect() as conn:
        began = conn.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
    sync_both(engine, crm_settings)
    with engine.connect() as conn:
        analysed = conn.exec_driver_sql(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze > %s", (began,)).scalars()
        assert set(sync_engine.ANALYZED) <= set(analysed)


def test_a_failed_analyze_leaves_the_run_succeeded(
    engine: Engine, crm_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post-load ANALYZE is upkeep: when it fails, the synced rows stand and the run
    still reports success."""
    if engine.dialect.name != "postgresql":
        pytest.skip("ANALYZE after a load is for PostgreSQL's planner")
    from service.sync import engine as sync_engine

    monkeypatch.setattr(sync_engine, "ANALYZE_AFTER_CREATED", 1)
    monkeypatch.setattr(sync_engine, "ANALYZED", {"no_such_table": ("id",)})
    run = sync_both(engine, crm_settings)["salesforce"]
    assert run.status == "succeeded" and run.error is None
    assert run.counts["leads"]["created"] > 0


def test_changes_deletions_and_merges_arrive_on_the_next_run(
    engine: Engine, crm_settings: Settings, boxes: Sandboxes
) -> None:
    sync_both(engine, crm_settings)
    world = boxes.world
    with unit_of_work(engine) as s:
        before = live_person_count(s)
    now = world.clock()
    with world.lock:
        leads = [r for r in world.salesforce.table("Lead").values()
                 if not r["IsDeleted"] and r.get("LastName") and "@" in (r.get("Email") or "")]
        changed, gone = leads[0], leads[1]
        world.salesforce.update("Lead", changed["Id"], {"Title": "Chief Revenue Officer"}, at=now)
        world.salesforce.delete("Lead", gone["Id"], at=now)
        contacts = [r for r in world.hubspot.table("contacts").values()
                    if not r["archived"] and not r["properties"].get("salesforceleadid")
                    and not r["properties"].get("salesforcecontactid")]
        winner, loser = contacts[0], contacts[1]
        world.hubspot.merge("contacts", winner["id"], loser["id"], at=now)
    runs = sync_both(engine, crm_settings)
    assert runs["salesforce"].counts["leads"]["updated"] >= 1
    assert runs["salesforce"].counts["leads"]["deleted"] >= 1
    assert runs["hubspot"].counts["contacts"]["merged"] == 1
    with unit_of_work(engine) as s:
        titles = s.exec(select(Person.title).where(Person.title == "Chief Revenue Officer")).all()
        assert titles
        assert live_person_count(s) <= before - 1
    assert dangling_person_ids(engine) == {"crm_record": 0, "person_link": 0}


def test_faults_end_in_the_same_database_as_a_clean_run(
    engine: Engine, crm_settings: Settings, boxes: Sandboxes
) -> None:
    sync_both(engine, crm_settings)
    clean = snapshot(engine)
    wipe(engine)
    boxes.faults.fail_every = 4
    boxes.faults.drop_every = 7
    runs = sync_both(engine, crm_settings)
    boxes.faults.fail_every = boxes.faults.drop_every = 0
    assert {r.status for r in runs.values()} == {"succeeded"}, [r.error for r in runs.values()]
    assert snapshot(engine) == clean


def test_a_sync_killed_mid_run_resumes_to_the_same_database(
    engine: Engine, crm_settings: Settings, boxes: Sandboxes, database_url: str
) -> None:
    sync_both(engine, crm_settings)
    clean = snapshot(engine)
    wipe(engine)
    env = {**os.environ, **boxes.settings_env(), "TRUCE_DATABASE_URL": database_url}
    boxes.faults.latency_ms = 20  # slow enough to be killed mid-run
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "sync", "--source", "salesforce"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        with unit_of_work(engine) as s:
            runs = s.exec(select(SyncRun)).all()
            fetched = sum(c.get("fetched", 0) for r in runs for c in r.counts.values())
        if fetched >= 400:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    boxes.faults.latency_ms = 0
    assert killed, "the sync finished before it could be killed"
    with unit_of_work(engine) as s:
        assert s.exec(select(SyncRun)).one().status == "running"  # a killed run stays visible
    resumed = sync_both(engine, crm_settings)
    assert {r.status for r in resumed.values()} == {"succeeded"}
    assert snapshot(engine) == clean


def test_two_workers_racing_for_one_source_sync_it_once(
    engine: Engine, crm_settings: Settings, boxes: Sandboxes
) -> None:
    boxes.faults.latency_ms = 5
    results: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        run = sync_source(engine, crm_settings, "hubspot", connector=connectors(crm_settings)[
            "hubspot"], hooks=[])
        results.append(run.status)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == ["skipped", "succeeded"]


def test_expired_salesforce_token_logs_in_again_with_credentials(
    engine: Engine, crm_settings: Settings, boxes: Sandboxes
) -> None:
    extra = boxes.salesforce.extra
    settings = crm_settings.model_copy(update={"salesforce": SalesforceSettings(
        username=extra["username"], password=SecretStr(extra["password"]),
        client_id=extra["client_id"], client_secret=SecretStr(extra["client_secret"]),
        login_url=boxes.salesforce.url, ca_bundle=boxes.salesforce.ca_path)})
    boxes.faults.token_ttl_seconds = 0.3
    connector = SalesforceConnector(settings.salesforce, batch_size=200, retry_wait_seconds=0.01)
    boxes.faults.latency_ms = 30
    run = sync_source(engine, settings, "salesforce", connector=connector, hooks=[])
    boxes.faults.token_ttl_seconds = 0
    boxes.faults.latency_ms = 0
    assert run.status == "succeeded", run.error
    assert live_counts(engine)[("salesforce", "Lead")] > 0


