"""The worker's sync job leaves the metric facts rebuilt, so a dashboard's first poll after a
sync answers from them at once instead of rebuilding them inside the request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func
from sqlmodel import select

from connectors.sandbox.generator import generate_world
from connectors.sandbox.run import Sandboxes, start_sandboxes
from metrics.facts import DealFact, FactChange
from service.crm.models import Opportunity
from service.db import unit_of_work
from service.jobs import sync_all
from service.settings import Settings
from tests.factories import pointed_at


@pytest.fixture()
def boxes() -> Iterator[Sandboxes]:
    sandboxes = start_sandboxes(world=generate_world(seed=5, people=200))
    yield sandboxes
    sandboxes.stop()


def test_a_worker_sync_leaves_the_metric_facts_fresh(
        engine: Engine, settings: Settings, boxes: Sandboxes) -> None:
    outcome = sync_all(engine, pointed_at(settings, boxes))

    assert outcome == {"salesforce": "succeeded", "hubspot": "succeeded"}
    with unit_of_work(engine) as s:
        assert s.exec(select(func.count()).select_from(FactChange)).one() == 0
        live_deals = s.exec(select(func.count()).select_from(Opportunity)
                            .where(Opportunity.live)).one()
        assert live_deals > 0
        assert s.exec(select(func.count()).select_from(DealFact)).one() == live_deals
