"""The API's answers come from database aggregates; the population endpoint's from records.

Both paths share the formulas, so over the same world they must give the same headline,
stats, groups and definition versions, for every metric and every grouping it allows, on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from metrics.definitions import METRICS
from service.db import unit_of_work
from service.definitions.models import LeadDefinition
from tests.metrics.test_metric_queries import END, START, World, at, build_world, metric


@pytest.fixture()
def world(engine: Engine) -> World:
    return build_world(engine)


CASES = [(name, group_by) for name, d in METRICS.items() for group_by in (None, *d.groupings)]


def same(a: Any, b: Any) -> bool:
    """Equal, floats up to rounding (sums run in another order in the database)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return bool(a == b)


def assert_paths_agree(engine: Engine, name: str, group_by: str | None, *,
                       start: datetime = START, end: datetime = END,
                       now: datetime | None = None) -> None:
    options: dict[str, Any] = {"start": start, "end": end, "group_by": group_by}
    if now is not None:
        options["now"] = now
    fast = metric(engine, name, **options)
    slow = metric(engine, name, records=True, **options)
    assert (fast.result.value, fast.result.count) == pytest.approx(
        (slow.result.value, slow.result.count)), name
    assert same(fast.result.stats, slow.result.stats), (fast.result.stats, slow.result.stats)
    assert same(fast.groups, slow.groups), (fast.groups, slow.groups)
    assert fast.definition_versions == slow.definition_versions
    assert fast.records == ()


@pytest.mark.parametrize(("name", "group_by"), CASES)
def test_aggregates_agree_with_records(engine: Engine, world: World, name: str,
                                       group_by: str | None) -> None:
    assert_paths_agree(engine, name, group_by)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_aggregates_agree_over_other_windows(engine: Engine, world: World, name: str) -> None:
    # a wider window catches the December deals, MQLs and the v1 handoff's neighbours;
    # an early "now" leaves a clock pending; an empty window leaves nothing; a window of
    # whole months between partial ones reads deals' monthly counts beside the deals
    assert_paths_agree(engine, name, None, start=at(11, 1, 0, 2025), end=at(3, 1, 0))
    assert_paths_agree(engine, name, None, start=at(12, 10, 0, 2025), end=at(2, 7, 0))
    assert_paths_agree(engine, name, None, now=at(1, 20))
    assert_paths_agree(engine, name, None, start=at(1, 1, 0, 2030), end=at(2, 1, 0, 2030))


@pytest.mark.parametrize(("name", "group_by"), CASES)
def test_aggregates_agree_without_an_active_definition(engine: Engine, name: str,
                                                       group_by: str | None) -> None:
    build_world(engine)
    with unit_of_work(engine) as s:
        for d in s.query(LeadDefinition).all():
            d.state = "superseded"
            s.add(d)
    assert_paths_agree(engine, name, group_by, start=at(11, 1, 0, 2025), end=at(3, 1, 0))
