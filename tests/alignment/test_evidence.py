"""Each observed indicator read from rows in the database, checked by hand."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from metrics.models import Forecast
from service.alignment.evidence import gather_facts
from service.alignment.models import MetricRead
from service.alignment.placement import EvidenceFacts
from service.alignment.service import ReadLedger, record_metric_read
from service.crm.models import Opportunity, Owner
from service.db import unit_of_work
from service.sync.models import CrmRow
from tests.alignment.rows import (
    NOW,
    agreed_definition,
    clock,
    event,
    handoff,
    person,
    sla_policy,
)

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def crm_person(session: Session, n: int, source: str, status: str | None, *,
               person_id: int | None = None, kind: str = "person", **extra: Any) -> CrmRow:
    payload = {"status": status} if status is not None else {}
    row = CrmRow(key=f"{source}:Lead:{n}", source=source, object="Lead", external_id=str(n),
                 kind=kind, payload=payload, payload_hash=str(n), modstamp=NOW,
                 person_id=person_id, **extra)
    session.add(row)
    session.flush()
    return row


def won(session: Session, n: int, amount: float, closed: date, *, owner: str | None = None,
        person_key: str | None = None, **extra: Any) -> None:
    session.add(Opportunity(key=f"opp:{n}", source="salesforce", amount=amount,
                            is_closed=True, is_won=extra.pop("is_won", True), close_date=closed,
                            owner_key=owner, person_record_key=person_key, **extra))


def test_an_empty_database_measures_nothing(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        assert gather_facts(session, now=NOW) == EvidenceFacts(
            active_definition_jointly_approved=False, sla_policies_in_force=0,
            decisions_with_reason_share=None, sla_compliance=None,
            crm_status_vocabulary_mapped_share=None, shared_metrics_queried_30d=0,
            forecast_accuracy=None, rejection_dispute_rate=None,
            marketing_sourced_share_measured=False)


@pytest.fixture()
def facts(engine: Engine) -> EvidenceFacts:
    with unit_of_work(engine) as s:
        agreed_definition(s)
        sla_policy(s)
        sla_policy(s)
        sla_policy(s, active=False)
        p1, p2, p3, p4 = (person(s) for _ in range(4))
        assert p1.id and p2.id and p3.id and p4.id

        # Decisions: 3 in the window, 1 with a reason; h4 is too old to count.
        h1 = handoff(s, p1.id, state="rejected", reason="No budget", decided_at=NOW - 10 * DAY)
        h2 = handoff(s, p2.id, state="rejected", reason=None, decided_at=NOW - 20 * DAY)
        h3 = handoff(s, p3.id, state="recycled", reason="   ", decided_at=NOW - 30 * DAY)
        handoff(s, p4.id, state="rejected", reason="Bad timing", decided_at=NOW - 400 * DAY)
        handoff(s, p4.id, state="accepted", decided_at=NOW - 3 * DAY)
        # p1 was accepted after its rejection (disputed); p2's SAL came before it (not).
        event(s, p1.id, "sal", NOW - 5 * DAY)
        event(s, p2.id, "sql", NOW - 21 * DAY)

        # SLA clocks due in the last 90 days: met 2, breached 2 (one of them still running a
        # day past its due instant, not yet flagged by a scan: the metric counts it breached
        # too); the one due 100 days ago and the one not yet due are out of scope.
        clock(s, h1.id, "accept", state="met", due_at=NOW - 10 * DAY)
        clock(s, h1.id, "first_touch", state="breached", due_at=NOW - 9 * DAY)
        clock(s, h2.id, "accept", state="met", due_at=NOW - 100 * DAY)
        clock(s, h2.id, "first_touch", state="running", due_at=NOW - DAY)
        clock(s, h3.id, "accept", state="met", due_at=NOW - 2 * DAY)
        clock(s, h3.id, "first_touch", state="met", due_at=NOW + DAY)

        # Statuses: 4 of 5 live person rows speak the shared vocabulary.
        lead = crm_person(s, 1, "salesforce", "Working - Contacted", person_id=p1.id)
        crm_person(s, 2, "salesforce", "Open - Not Contacted")
        crm_person(s, 3, "hubspot", "NEW")
        crm_person(s, 4, "hubspot", "Nurture")
        crm_person(s, 5, "salesforce", None)
        crm_person(s, 6, "salesforce", "Weird", deleted=True)
        crm_person(s, 7, "salesforce", "Weird", merged_into="salesforce:Lead:1")
        crm_person(s, 8, "hubspot", "Weird", kind="account")

        # Metric reads: two distinct metrics in the last 30 days.
        for metric in ("win-rate", "win-rate", "cac"):
            record_metric_read(s, metric, "sales-lead", at=NOW - DAY)
        s.flush()

        # Forecasts: Q1 forecast 100k vs 80k won (0.75); April West 50k vs 50k (1.0).
        s.add(Owner(key="owner:w", source="salesforce", team="West"))
        s.add(Owner(key="owner:e", source="salesforce", team="East"))
        s.add(Forecast(period_start=date(2026, 1, 1), period_end=date(2026, 3, 31),
                       amount=100_000, created_by="sales-lead"))
        s.add(Forecast(period_start=date(2026, 4, 1), period_end=date(2026, 4, 30),
                       amount=50_000, team="West", created_by="sales-lead"))
        s.add(Forecast(period_start=date(2026, 6, 1), period_end=date(2026, 6, 30),
                       amount=1, created_by="sales-lead"))  # not over yet
        won(s, 1, 60_000, date(2026, 2, 10), person_key=lead.key)
        won(s, 2, 20_000, date(2026, 3, 31))
        won(s, 3, 99_000, date(2026, 3, 1), is_won=False)
        won(s, 4, 99_000, date(2026, 3, 2), live=False)
        won(s, 5, 50_000, date(2026, 4, 15), owner="owner:w")
        won(s, 6, 30_000, date(2026, 4, 20), owner="owner:e")
    with unit_of_work(engine) as session:
        return gather_facts(session, now=NOW)


def test_each_fact_is_read_from_the_rows(facts: EvidenceFacts) -> None:
    assert facts.active_definition_jointly_approved is True
    assert facts.sla_policies_in_force == 2
    assert facts.decisions_with_reason_share == pytest.approx(1 / 3)
    assert facts.sla_compliance == pytest.approx(2 / 4)
    assert facts.crm_status_vocabulary_mapped_share == pytest.approx(4 / 5)
    assert facts.shared_metrics_queried_30d == 2
    assert facts.forecast_accuracy == pytest.approx((0.75 + 1.0) / 2)
    assert facts.rejection_dispute_rate == pytest.approx(1 / 2)
    assert facts.marketing_sourced_share_measured is True


def test_old_metric_reads_do_not_count(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        session.add(MetricRead(metric="cac", key_name="k", at=NOW - 31 * DAY))
        session.add(MetricRead(metric="win-rate", key_name="k", at=NOW - DAY))
    with unit_of_work(engine) as session:
        assert gather_facts(session, now=NOW).shared_metrics_queried_30d == 1


def test_a_win_without_an_mql_is_not_marketing_sourced(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        buyer = person(s)
        row = crm_person(s, 1, "salesforce", None, person_id=buyer.id)
        event(s, buyer.id or 0, "sql", NOW - 9 * DAY)
        won(s, 1, 10_000, date(2026, 5, 1), person_key=row.key)
    with unit_of_work(engine) as session:
        assert gather_facts(session, now=NOW).marketing_sourced_share_measured is False


def test_a_metric_read_is_stored_without_waiting_for_the_disk(engine: Engine) -> None:
    """The evidence row a dashboard poll leaves is stored as given; on PostgreSQL its
    transaction commits without waiting for the WAL flush, and nothing else in that
    transaction had to ask for it."""
    with Session(engine) as s:
        record_metric_read(s, "win-rate", "dashboard", at=NOW - DAY)
        if engine.dialect.name == "postgresql":
            assert s.execute(text("SHOW synchronous_commit")).scalar_one() == "off"
        s.commit()
    with Session(engine) as s:
        stored = s.exec(select(MetricRead)).one()
        assert (stored.metric, stored.key_name, stored.at) == ("win-rate", "dashboard",
                                                                NOW - DAY)
        if engine.dialect.name == "postgresql":  # the setting ended with its transaction
            assert s.execute(text("SHOW synchronous_commit")).scalar_one() == "on"


def test_a_metric_polled_all_hour_leaves_one_row_per_key(engine: Engine) -> None:
    """A dashboard polling every few seconds: the first read of each metric by each key in
    an hour is stored, the rest of the hour's polls write nothing."""
    ledger = ReadLedger()
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    reads = [("win-rate", "dashboard", hour), ("win-rate", "dashboard", hour + 59 * MINUTE),
             ("cac", "dashboard", hour + MINUTE), ("win-rate", "sales-lead", hour + MINUTE),
             ("win-rate", "dashboard", hour + 60 * MINUTE)]
    stored = []
    for metric, key, at in reads:
        with unit_of_work(engine) as s:
            stored.append(record_metric_read(s, metric, key, at=at, ledger=ledger))
    assert stored == [True, False, True, True, True]
    with Session(engine) as s:
        rows = s.exec(select(MetricRead).order_by(MetricRead.id)).all()
        assert [(r.metric, r.key_name, r.at) for r in rows] == [
            (m, k, at) for (m, k, at), kept in zip(reads, stored, strict=True) if kept]


def test_a_read_whose_transaction_rolled_back_is_stored_by_the_next(engine: Engine) -> None:
    ledger = ReadLedger()
    with Session(engine) as s:
        assert record_metric_read(s, "win-rate", "dashboard", at=NOW, ledger=ledger)
        s.rollback()
    with unit_of_work(engine) as s:
        assert record_metric_read(s, "win-rate", "dashboard", at=NOW + MINUTE, ledger=ledger)
    with Session(engine) as s:
        assert [r.at for r in s.exec(select(MetricRead)).all()] == [NOW + MINUTE]
