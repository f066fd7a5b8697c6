"""Handoffs end to end: MQL -> handoff -> clocks stopped by CRM history, scans announce once."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, text
from sqlmodel import select

from connectors.records import ActivityRecord, FieldChangeRecord, PersonRecord
from service.db import unit_of_work
from service.handoffs.models import OutboxEvent, SlaClock
from service.handoffs.scan import scan
from service.settings import Settings
from service.sync.service import sync_source
from tests.definitions.test_qualification import SCORE_60, activate
from tests.factories import T0, ListConnector, sf_lead

NY_WEEK = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
# T0 is Monday 2026-03-02 09:00 in New York


@pytest.fixture()
def policy(client: TestClient, make_key: Callable) -> int:
    ops = make_key("ops", "editor")
    cal = client.post("/api/v1/calendars", json={"name": "US sales", "timezone":
                      "America/New_York", "hours": NY_WEEK, "holiday_country": "US"},
                      headers=ops)
    assert cal.status_code == 201, cal.text
    pol = client.post("/api/v1/sla-policies", json={
        "name": "All leads", "calendar_id": cal.json()["id"], "priority": 10,
        "accept_within_minutes": 240, "first_touch_within_minutes": 480, "warn_at": 0.75},
        headers=ops)
    assert pol.status_code == 201, pol.text
    return pol.json()["id"]


def history(lead: PersonRecord, n: int, value: str, at: datetime) -> FieldChangeRecord:
    return FieldChangeRecord(source="salesforce", object="LeadHistory", external_id=f"017{n}",
                             modstamp=at, record_key=lead.key, field="status", new_value=value,
                             at=at)


def past_world() -> ListConnector:
    fast = sf_lead(1, "fast@a.com", score=80, owner_id="005A")
    slow = sf_lead(2, "slow@b.com", score=70, owner_id="005B",
                   status="Closed - Not Converted", status_reason="No Budget")
    call = ActivityRecord(source="salesforce", object="Task", external_id="00T1", modstamp=T0,
                          kind="call", at=T0 + timedelta(hours=3), person_key=fast.key)
    return ListConnector("salesforce", {
        "leads": [[fast, slow]], "tasks": [[call]],
        "lead_history": [[history(fast, 1, "Working - Contacted", T0 + timedelta(hours=2)),
                          history(slow, 2, "Closed - Not Converted", T0 + timedelta(hours=6))]],
    })


def handoffs(client: TestClient, headers: dict, **params: str) -> list[dict]:
    r = client.get("/api/v1/handoffs", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def outbox(engine: Engine) -> list[tuple[str, str]]:
    with unit_of_work(engine) as s:
        rows = s.exec(select(OutboxEvent).order_by(OutboxEvent.id))
        return [(o.kind, o.dedupe_key) for o in rows]


def test_history_rebuilds_handoffs_stopped_at_the_crms_timestamps_without_announcing(
    client: TestClient, make_key: Callable, engine: Engine, settings: Settings, policy: int
) -> None:
    activate(client, make_key, SCORE_60)
    sync_source(engine, settings, "salesforce", connector=past_world())
    viewer = make_key("sales", "viewer")
    by_owner = {h["owner"]: h for h in handoffs(client, viewer)}
    fast, slow = by_owner["salesforce:User:005A"], by_owner["salesforce:User:005B"]
    assert fast["opened_at"].startswith("2026-03-02T14:00")
    assert fast["state"] == "accepted" and fast["policy_id"] == policy
    assert fast["clocks"]["accept"]["state"] == "met"
    assert fast["clocks"]["accept"]["business_minutes"] == 120
    assert fast["clocks"]["first_touch"]["business_minutes"] == 180
    assert (slow["state"], slow["reason"]) == ("rejected", "No Budget")
    assert slow["clocks"]["accept"]["state"] == "breached"  # 6 h against 4 h
    assert slow["clocks"]["accept"]["due_at"].startswith("2026-03-02T18:00")  # 13:00 NY
    assert [h["id"] for h in handoffs(client, viewer, sla="breached")] == [slow["id"]]
    assert outbox(engine) == []  # due before the definition became active: counted, not announced


def live_lead(now: datetime) -> ListConnector:
    return ListConnector("salesforce", {"leads": [[sf_lead(7, "new@c.com", score=90,
                                                           owner_id="005C", created_at=now,
                                                           modstamp=now)]]})


@pytest.fixture()
def live(client: TestClient, make_key: Callable, engine: Engine, settings: Settings,
         policy: int) -> datetime:
    """An active definition and one lead that qualified just now; answers that instant."""
    activate(client, make_key, SCORE_60)
    now = datetime.now(UTC)
    sync_source(engine, settings, "salesforce", connector=live_lead(now))
    return now


def test_a_scan_announces_each_warning_and_breach_exactly_once(
    client: TestClient, make_key: Callable, engine: Engine, live: datetime
) -> None:
    with unit_of_work(engine) as s:
        accept = s.exec(select(SlaClock).where(SlaClock.kind == "accept")).one()
        warn_at, due_at = accept.warn_due_at, accept.due_at
    with unit_of_work(engine) as s:
        assert scan(s, now=warn_at).as_dict() == {"warnings": 1, "breaches": 0, "announced": 1}
    with unit_of_work(engine) as s:
        assert scan(s, now=warn_at + timedelta(seconds=1)).warnings == 0
    later = due_at + timedelta(days=30)
    with unit_of_work(engine) as s:
        first = scan(s, now=later)
    with unit_of_work(engine) as s:
        second = scan(s, now=later + timedelta(minutes=5))
    assert (first.breaches, second.breaches) == (2, 0)  # accept and first-touch, once
    kinds = [k for k, _ in outbox(engine)]
    assert sorted(kinds) == ["sla.breached", "sla.breached", "sla.warning"]


def test_a_scans_moves_touch_no_index_on_postgresql(
    client: TestClient, make_key: Callable, engine: Engine, live: datetime
) -> None:
    """A million clocks move in one scan at scale: each move must stay a heap-only update
    (no index insertion), which holds only while no index on the clocks holds their state."""
    if engine.dialect.name != "postgresql":
        pytest.skip("heap-only updates are PostgreSQL's")
    counters = text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                    "WHERE relname = 'sla_clock'")
    with unit_of_work(engine) as s:
        # the counters may still hold the connection's earlier transactions: take the difference
        before = s.execute(counters).one()
        assert scan(s, now=live + timedelta(days=60)).breaches == 2
        after = s.execute(counters).one()
    assert (after[0] - before[0], after[1] - before[1]) == (2, 2)


def test_a_killed_scan_leaves_nothing_and_the_next_one_announces_once(
    client: TestClient, make_key: Callable, engine: Engine, live: datetime
) -> None:
    now = live
    later = now + timedelta(days=60)
    with pytest.raises(RuntimeError), unit_of_work(engine) as s:
        scan(s, now=later)
        raise RuntimeError("killed mid-scan")
    assert outbox(engine) == []
    with unit_of_work(engine) as s:
        assert scan(s, now=later).breaches == 2
    assert len(outbox(engine)) == 2


def test_two_workers_scanning_at_once_announce_once(
    client: TestClient, make_key: Callable, engine: Engine, live: datetime
) -> None:
    now = live
    later = now + timedelta(days=60)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with unit_of_work(engine) as s:
                scan(s, now=later)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [e for e in errors if "locked" not in str(e)]  # SQLite may refuse one writer
    assert len(outbox(engine)) == 2
    with unit_of_work(engine) as s:
        assert s.exec(select(func.count()).select_from(SlaClock)
                      .where(SlaClock.state == "breached")).one() == 2


def test_sales_decides_through_the_api_with_a_reason_from_the_taxonomy(
    client: TestClient, make_key: Callable, engine: Engine, live: datetime
) -> None:
    sales, mkt = make_key("sales", "editor"), make_key("marketing", "editor")
    [h] = handoffs(client, sales)
    base = f"/api/v1/handoffs/{h['id']}"
    assert client.post(f"{base}/accept", headers=mkt).status_code == 403
    assert client.post(f"{base}/reject", json={"reason": "Too busy"},
                       headers=sales).status_code == 422
    assert client.post(f"{base}/reject", json={}, headers=sales).status_code == 422
    r = client.post(f"{base}/reject", json={"reason": "Bad Timing", "recycle": True},
                    headers=sales)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["reason"]) == ("recycled", "Bad Timing")
    assert r.json()["clocks"]["accept"]["stopped_at"] is not None
    assert client.post(f"{base}/accept", headers=sales).status_code == 409
    touched = client.post(f"{base}/touch", headers=sales).json()
    assert touched["clocks"]["first_touch"]["state"] == "met"
    assert client.post(f"{base}/touch", headers=sales).status_code == 409
    person = client.get(f"/api/v1/persons/{h['person_id']}", headers=sales).json()
    assert person["stage"] == "recycled"


def test_calendars_and_policies_are_validated(client: TestClient, make_key: Callable) -> None:
    ops = make_key("ops", "editor")
    closed = client.post("/api/v1/calendars", json={"name": "never", "timezone": "UTC",
                                                    "hours": {}}, headers=ops)
    assert closed.status_code == 422 and "no open hours" in closed.text
    bad = client.post("/api/v1/calendars", json={"name": "x", "timezone": "UTC",
                                                 "hours": {"mon": [["17:00", "09:00"]]}},
                      headers=ops)
    assert bad.status_code == 422 and "hours.mon[0]" in bad.text
    zone = client.post("/api/v1/calendars", json={"name": "y", "timezone": "Mars/Olympus",
                                                  "hours": NY_WEEK}, headers=ops)
    assert zone.status_code == 422 and zone.json()["detail"][0]["loc"] == ["body", "timezone"]
    pol = client.post("/api/v1/sla-policies", json={
        "name": "p", "calendar_id": 999, "accept_within_minutes": 60,
        "first_touch_within_minutes": 60}, headers=ops)
    assert pol.status_code == 422 and pol.json()["detail"][0]["loc"] == ["body", "calendar_id"]


def test_an_unanswered_handoff_returns_to_marketing(
    client: TestClient, make_key: Callable, engine: Engine, live: datetime
) -> None:
    from service.handoffs.service import recycle_unanswered

    with unit_of_work(engine) as s:
        due = s.exec(select(SlaClock).where(SlaClock.kind == "accept")).one().due_at
        assert recycle_unanswered(s, after=timedelta(days=3), now=due + timedelta(days=1)) == 0
        assert recycle_unanswered(s, after=timedelta(days=3), now=due + timedelta(days=4)) == 1
    [h] = handoffs(client, make_key("sales", "viewer"))
    assert (h["state"], h["reason"]) == ("recycled", "unanswered")


def test_the_status_mapping_is_configurable(
    client: TestClient, make_key: Callable, engine: Engine, settings: Settings, policy: int
) -> None:
    custom = settings.model_copy(update={"status_mapping": {
        "salesforce": {"accepted": ["Qualified"], "rejected": ["Disqualified"]}}})
    activate(client, make_key, SCORE_60)
    lead = sf_lead(1, "q@x.com", score=80, owner_id="005A")
    world = ListConnector("salesforce", {"leads": [[lead]], "lead_history": [[
        history(lead, 1, "Qualified", T0 + timedelta(hours=1))]]})
    sync_source(engine, custom, "salesforce", connector=world)
    [h] = handoffs(client, make_key("sales", "viewer"))
    assert h["state"] == "accepted"
    assert h["clocks"]["accept"]["business_minutes"] == 60
