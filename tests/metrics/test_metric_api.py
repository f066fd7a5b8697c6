"""The metrics API: shape, windows, errors, populations, spend and forecasts, Prometheus."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine
from sqlmodel import Session, select

from metrics.definitions import METRICS
from metrics.prometheus import TruceCollector, register_gauges
from metrics.routes import router
from service.alignment.models import MetricRead
from service.crm.models import Opportunity
from service.db import unit_of_work
from service.sync.models import SyncRun
from tests.metrics.test_metric_queries import World, build_world

JANUARY = {"start": "2026-01-01", "end": "2026-02-01"}
ANSWER_KEYS = {"metric", "start", "end", "unit", "count", "value", "stats", "groups",
               "definition_versions", "computed_at", "population"}


@pytest.fixture()
def api(app: FastAPI) -> Iterator[TestClient]:
    """The app with the metrics router, whether or not the factory mounts it yet."""
    if not any(getattr(r, "path", "") == "/api/v1/metrics" for r in app.routes):
        app.include_router(router)
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def world(engine: Engine) -> World:
    return build_world(engine)


@pytest.fixture()
def viewer(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_key("sales", "viewer")


@pytest.fixture()
def editor(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_key("marketing", "editor")


def test_list_names_every_metric(api: TestClient, viewer: dict[str, str]) -> None:
    r = api.get("/api/v1/metrics", headers=viewer)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["name"] for i in items] == list(METRICS)
    assert all(i["unit"] and i["population"] and i["headline"] for i in items)


def test_metrics_need_a_key(api: TestClient) -> None:
    assert api.get("/api/v1/metrics/win-rate").status_code == 401


def test_answer_shape(api: TestClient, viewer: dict[str, str], world: World,
                      engine: Engine) -> None:
    r = api.get("/api/v1/metrics/sales-cycle-length", params=JANUARY, headers=viewer)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == ANSWER_KEYS
    assert body["start"] == "2026-01-01T00:00:00Z"
    assert body["end"] == "2026-02-01T00:00:00Z"
    assert (body["unit"], body["count"], body["value"]) == ("days", 3, 30.0)
    assert body["stats"]["p90"] == 46.0
    assert body["groups"] == []
    assert body["population"] == ("/api/v1/metrics/sales-cycle-length/population?"
                                  "start=2026-01-01T00%3A00%3A00Z&end=2026-02-01T00%3A00%3A00Z")
    assert datetime.fromisoformat(body["computed_at"]).tzinfo is not None
    with Session(engine) as session:  # the read counts as evidence the metrics are used
        assert session.exec(select(MetricRead.metric)).all() == ["sales-cycle-length"]


def test_a_polled_metric_is_recorded_once_an_hour(api: TestClient, viewer: dict[str, str],
                                                  world: World, engine: Engine) -> None:
    for name in ("win-rate", "win-rate", "win-rate", "cac"):
        assert api.get(f"/api/v1/metrics/{name}", params=JANUARY,
                       headers=viewer).status_code == 200
    with Session(engine) as session:
        assert sorted(session.exec(select(MetricRead.metric)).all()) == ["cac", "win-rate"]


def test_iso_datetimes_are_accepted(api: TestClient, viewer: dict[str, str],
                                    world: World) -> None:
    # 2026-01-01T05:00+05:00 is midnight UTC: the same window as the dates
    r = api.get("/api/v1/metrics/win-rate", headers=viewer,
                params={"start": "2026-01-01T05:00:00+05:00", "end": "2026-02-01T00:00:00Z"})
    assert r.status_code == 200
    assert (r.json()["value"], r.json()["start"]) == (0.75, "2026-01-01T00:00:00Z")


def test_each_window_gets_its_own_answer(api: TestClient, viewer: dict[str, str],
                                        world: World) -> None:
    """The daily-count statements are built once and reused with each request's dates."""
    def win_rate(params: dict[str, str]) -> tuple[object, object]:
        body = api.get("/api/v1/metrics/win-rate", headers=viewer, params=params).json()
        return body["value"], body["count"]

    assert win_rate(JANUARY) == (0.75, 4)
    assert win_rate({"start": "2026-02-01", "end": "2026-03-01"}) == (1.0, 1)  # O7
    assert win_rate({"start": "2026-03-01", "end": "2026-04-01"}) == (None, 0)
    assert win_rate({"start": "2025-12-01", "end": "2026-02-01"}) == (0.8, 5)  # and O8
    assert win_rate({"start": "2026-01-13", "end": "2026-01-21"}) == (0.5, 2)  # O3, O1


def test_default_window_is_the_last_90_days(api: TestClient, viewer: dict[str, str]) -> None:
    body = api.get("/api/v1/metrics/win-rate", headers=viewer).json()
    start, end = (datetime.fromisoformat(body[k]) for k in ("start", "end"))
    assert end - start == timedelta(days=90)
    assert end.date() == datetime.now(UTC).date() + timedelta(days=1)
    assert (body["value"], body["count"]) == (None, 0)


def test_group_by(api: TestClient, viewer: dict[str, str], world: World) -> None:
    r = api.get("/api/v1/metrics/win-rate", headers=viewer,
                params={**JANUARY, "group_by": "team"})
    assert r.status_code == 200
    assert r.json()["groups"] == [
        {"key": "East", "value": 0.5, "count": 2, "stats": r.json()["groups"][0]["stats"]},
        {"key": "West", "value": 1.0, "count": 2, "stats": r.json()["groups"][1]["stats"]},
    ]
    assert r.json()["groups"][0]["stats"]["lost"] == 1


@pytest.mark.parametrize(("path", "params", "status", "field"), [
    ("/api/v1/metrics/nope", JANUARY, 404, None),
    ("/api/v1/metrics/nope/population", JANUARY, 404, None),
    ("/api/v1/metrics/win-rate", {"start": "2026-02-01", "end": "2026-01-01"}, 422, "end"),
    ("/api/v1/metrics/win-rate", {"start": "2026-01-01", "end": "2026-01-01"}, 422, "end"),
    ("/api/v1/metrics/win-rate", {"start": "January", "end": "2026-01-01"}, 422, "start"),
    ("/api/v1/metrics/win-rate", {**JANUARY, "group_by": "region"}, 422, "group_by"),
    ("/api/v1/metrics/cost-of-sales", {**JANUARY, "group_by": "owner"}, 422, "group_by"),
])
def test_bad_requests(api: TestClient, viewer: dict[str, str], path: str,
                      params: dict[str, str], status: int, field: str | None) -> None:
    r = api.get(path, params=params, headers=viewer)
    assert r.status_code == status, r.text
    if field is not None:
        assert r.json()["detail"][0]["loc"][-1] == field


@pytest.mark.parametrize("name", list(METRICS))
def test_empty_answers_null(api: TestClient, viewer: dict[str, str], name: str) -> None:
    body = api.get(f"/api/v1/metrics/{name}", params=JANUARY, headers=viewer).json()
    assert (body["value"], body["count"]) == (None, 0)


def test_population_pages(api: TestClient, viewer: dict[str, str], world: World) -> None:
    url = "/api/v1/metrics/lead-acceptance-rate/population"
    first = api.get(url, params={**JANUARY, "limit": 3}, headers=viewer).json()
    assert len(first["items"]) == 3 and first["total"] == 4
    assert first["next_cursor"]
    second = api.get(url, params={**JANUARY, "limit": 3, "cursor": first["next_cursor"]},
                     headers=viewer).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    items = first["items"] + second["items"]
    assert {i["id"] for i in items} == {world.handoffs[h] for h in ("h1", "h2", "h3", "h6")}
    assert {i["person_id"] for i in items} == {
        world.persons[p] for p in ("p1", "p2", "p3", "p5")}
    bad = api.get(url, params={**JANUARY, "cursor": "!!"}, headers=viewer)
    assert bad.status_code == 422


def test_population_lists_deals_with_amounts(api: TestClient, viewer: dict[str, str],
                                             world: World) -> None:
    body = api.get("/api/v1/metrics/win-rate/population", params=JANUARY,
                   headers=viewer).json()
    assert {(i["key"], i["amount"], i["role"]) for i in body["items"]} == {
        ("O1", 1000, "won"), ("O2", 3000, "won"), ("O3", 2000, "lost"), ("O4", 500, "won")}


def test_spend_is_entered_by_editors(api: TestClient, editor: dict[str, str],
                                     viewer: dict[str, str]) -> None:
    body = {"team": "sales", "period_start": "2026-01-01", "period_end": "2026-01-31",
            "amount": 3100, "category": "salaries"}
    assert api.post("/api/v1/spend", json=body, headers=viewer).status_code == 403
    r = api.post("/api/v1/spend", json=body, headers=editor)
    assert r.status_code == 201, r.text
    assert (r.json()["currency"], r.json()["amount"]) == ("USD", 3100)
    listed = api.get("/api/v1/spend", headers=viewer).json()
    assert [s["id"] for s in listed["items"]] == [r.json()["id"]]
    # January half-prorated: Jan 16..31 is 16 of 31 days -> 1600
    cost = api.get("/api/v1/metrics/cost-of-sales", headers=viewer,
                   params={"start": "2026-01-16", "end": "2026-02-01"}).json()
    assert cost["stats"]["sales_spend"] == pytest.approx(1600)
    assert (cost["value"], cost["count"]) == (None, 0)  # nothing won: no ratio


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": -1}, "amount"),
    ({"period_end": "2025-12-31"}, "period_end"),
    ({"team": "ops"}, "team"),
])
def test_bad_spend(api: TestClient, editor: dict[str, str], change: dict[str, object],
                   field: str) -> None:
    body = {"team": "marketing", "period_start": "2026-01-01", "period_end": "2026-01-31",
            "amount": 10, "category": "events", **change}
    r = api.post("/api/v1/spend", json=body, headers=editor)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", field]


def test_forecasts(api: TestClient, editor: dict[str, str], viewer: dict[str, str],
                   world: World) -> None:
    body = {"period_start": "2026-01-16", "period_end": "2026-01-31", "amount": 2000}
    r = api.post("/api/v1/forecasts", json=body, headers=editor)
    assert r.status_code == 201, r.text
    assert api.get("/api/v1/forecasts", headers=viewer).json()["items"][0]["id"] == r.json()["id"]
    for change, field in (({"amount": -5}, "amount"), ({"period_end": "2026-01-01"},
                                                        "period_end")):
        bad = api.post("/api/v1/forecasts", json={**body, **change}, headers=editor)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", field]
    # Jan 16..31 won: O1 1000 + O4 500 = 1500 -> 1 - 500/1500 = 2/3; with the two world
    # forecasts (8/9 and 1): (8/9 + 1 + 2/3) / 3 = 23/27
    found = api.get("/api/v1/metrics/forecast-accuracy", params=JANUARY, headers=viewer).json()
    assert found["value"] == pytest.approx(23 / 27)
    assert found["count"] == 3


def _recent_world(engine: Engine) -> None:
    today = datetime.now(UTC).date()
    with unit_of_work(engine) as s:
        for key, won in (("R1", True), ("R2", False)):
            s.add(Opportunity(key=key, source="salesforce", amount=100, is_closed=True,
                              is_won=won, created_at=datetime.now(UTC) - timedelta(days=20),
                              close_date=today - timedelta(days=5)))
        s.add_all([SyncRun(source="hubspot", status="succeeded"),
                   SyncRun(source="hubspot", status="succeeded"),
                   SyncRun(source="salesforce", status="failed")])


def test_prometheus_gauges(engine: Engine, world: World) -> None:
    _recent_world(engine)
    registry = CollectorRegistry()
    register_gauges(registry, engine)
    text = generate_latest(registry).decode()
    assert 'truce_metric_value{metric="win-rate"} 0.5' in text
    assert 'metric="lead-acceptance-rate"' not in text  # null over the last 30 days: skipped
    assert 'truce_sla_clocks{state="met"} 4.0' in text
    assert 'truce_sla_clocks{state="breached"} 2.0' in text
    assert 'truce_sync_runs_total{source="hubspot",status="succeeded"} 2.0' in text


def test_prometheus_caches_for_a_minute(engine: Engine) -> None:
    ticks = iter([0.0, 30.0, 61.0])
    collector = TruceCollector(engine, clock=lambda: next(ticks))
    registry = CollectorRegistry()
    registry.register(collector)
    assert "truce_sync_runs_total{" not in generate_latest(registry).decode()
    _recent_world(engine)
    assert "truce_sync_runs_total{" not in generate_latest(registry).decode()  # cached
    assert 'status="failed"} 1.0' in generate_latest(registry).decode()
