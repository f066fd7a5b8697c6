"""The placement rule on evidence read from the database, and the history it leaves."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.alignment.placement import PLACEMENT_RULE
from service.db import unit_of_work
from tests.alignment.rows import agreed_definition, sla_policy
from tests.alignment.test_survey import open_survey, respond


def alignment(client: TestClient, headers: dict[str, str]) -> dict:
    r = client.get("/api/v1/alignment", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def indicator(body: dict, name: str) -> dict:
    return next(e for e in body["evidence"] if e["indicator"] == name)


def defined_in_data(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        agreed_definition(session)
        sla_policy(session)


def test_without_an_agreed_definition_the_survey_cannot_lift_you(
        client: TestClient, make_key: Callable, engine: Engine) -> None:
    with unit_of_work(engine) as session:
        agreed_definition(session, teams=("marketing",))  # Sales never signed
        sla_policy(session)
    survey = open_survey(client, make_key("ops", "editor"))
    respond(client, survey, "sales", [5] * 20, make_key("sales", "viewer"))
    respond(client, survey, "marketing", [5] * 20, make_key("marketing", "viewer"))
    body = alignment(client, make_key())
    assert body["survey"]["sales"]["stage"] == "Integrated"
    assert body["stage"] == "Undefined"
    assert indicator(body, "definition_jointly_approved")["met"] is False
    assert indicator(body, "sla_policies_in_force") == {
        "indicator": "sla_policies_in_force", "value": 1, "threshold": 1,
        "supports": "Defined", "met": True}
    assert body["rule"] == PLACEMENT_RULE
    assert any("lead" in step for step in body["next_steps"])


def test_an_agreed_definition_and_an_sla_let_the_survey_lift_you_one_stage(
        client: TestClient, make_key: Callable, engine: Engine) -> None:
    defined_in_data(engine)
    viewer = make_key()
    # No survey yet: the evidence alone places you.
    body = alignment(client, viewer)
    assert body["stage"] == "Defined" and body["survey_id"] is None
    assert indicator(body, "definition_jointly_approved")["met"] is True

    survey = open_survey(client, make_key("ops", "editor"))
    respond(client, survey, "sales", [5] * 20, make_key("sales", "viewer"))
    respond(client, survey, "marketing", [5] * 20, make_key("marketing", "viewer"))
    body = alignment(client, viewer)
    assert body["survey"]["sales"]["stage"] == body["survey"]["marketing"]["stage"] == "Integrated"
    assert body["stage"] == "Aligned"  # Defined evidence + at most one stage


def test_a_gloomy_survey_places_you_below_the_evidence(
        client: TestClient, make_key: Callable, engine: Engine) -> None:
    defined_in_data(engine)
    survey = open_survey(client, make_key("ops", "editor"))
    respond(client, survey, "sales", [1] * 20, make_key("sales", "viewer"))
    respond(client, survey, "marketing", [4] * 20, make_key("marketing", "viewer"))
    body = alignment(client, make_key())
    assert body["survey"]["gap"] == 60.0
    assert body["stage"] == "Undefined"  # the side that feels it least sets the survey stage


@pytest.mark.parametrize("state", ["approved", "superseded"])
def test_only_the_active_definition_counts(client: TestClient, make_key: Callable,
                                           engine: Engine, state: str) -> None:
    with unit_of_work(engine) as session:
        agreed_definition(session, state=state)
        sla_policy(session)
    assert alignment(client, make_key())["stage"] == "Undefined"


def test_history_records_a_change_once(client: TestClient, make_key: Callable,
                                       engine: Engine) -> None:
    viewer = make_key()

    def history() -> list[dict]:
        r = client.get("/api/v1/alignment/history", headers=viewer)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    assert history() == []
    alignment(client, viewer)
    alignment(client, viewer)
    assert [h["stage"] for h in history()] == ["Undefined"]

    defined_in_data(engine)
    alignment(client, viewer)
    alignment(client, viewer)
    moved = history()
    assert [(h["stage"], h["evidence_stage"]) for h in moved] == [
        ("Defined", "Defined"), ("Undefined", "Undefined")]

    survey = open_survey(client, make_key("ops", "editor"))
    respond(client, survey, "sales", [3] * 20, make_key("sales", "viewer"))
    alignment(client, viewer)
    respond(client, survey, "sales", [3] * 20, make_key("sales", "viewer"))  # same mean
    alignment(client, viewer)
    latest = history()
    assert len(latest) == 3
    assert latest[0]["survey_stage"] == "Aligned" and latest[0]["stage"] == "Aligned"
    assert latest[0]["survey"]["survey_id"] == survey
    assert latest[0]["survey"]["sales"]["score"] == 60.0
    assert latest[0]["evidence"][0]["indicator"] == "definition_jointly_approved"
    page = client.get("/api/v1/alignment/history", params={"limit": 2},
                      headers=viewer).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
