"""The diagnostic survey through the API: statements, rounds, responses and their scores."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from service.alignment.statements import STATEMENTS


def open_survey(client: TestClient, headers: dict[str, str], name: str = "Q3 pulse") -> int:
    r = client.post("/api/v1/alignment/surveys", json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def respond(client: TestClient, survey_id: int, team: str, answers: object,
            headers: dict[str, str]) -> dict:
    r = client.post(f"/api/v1/alignment/surveys/{survey_id}/responses",
                    json={"team": team, "answers": answers}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_statements_are_the_twenty_in_survey_order(client: TestClient,
                                                   make_key: Callable) -> None:
    r = client.get("/api/v1/alignment/statements", headers=make_key("sales", "viewer"))
    assert r.status_code == 200
    body = r.json()
    assert [s["number"] for s in body] == list(range(1, 21))
    assert body[0]["topic"] == "forecast accuracy"
    assert body[6]["topic"] == "common vocabulary"
    assert body[19]["topic"] == STATEMENTS[19].topic
    assert all(set(s) == {"number", "topic", "text"} and s["text"] for s in body)


def test_statements_need_a_key(client: TestClient) -> None:
    assert client.get("/api/v1/alignment/statements").status_code == 401


def test_both_teams_answer_and_the_alignment_shows_their_scores_and_gap(
        client: TestClient, make_key: Callable) -> None:
    survey = open_survey(client, make_key("marketing", "editor"))
    seller, marketer = make_key("sales", "viewer"), make_key("marketing", "viewer")
    first = respond(client, survey, "sales", [3] * 20, seller)  # 60
    assert first["score"] == 60 and first["respondent"].startswith("sales-viewer")
    respond(client, survey, "sales", [2] * 20, seller)  # 40 -> mean 50.0, Defined
    respond(client, survey, "marketing", [4] * 20, marketer)  # 80
    respond(client, survey, "marketing", [4] * 19 + [3], marketer)  # 79 -> mean 79.5, Aligned

    r = client.get("/api/v1/alignment", headers=seller)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["survey"] == {
        "sales": {"score": 50.0, "stage": "Defined", "responses": 2},
        "marketing": {"score": 79.5, "stage": "Aligned", "responses": 2},
        "gap": 29.5,
    }
    assert body["survey_id"] == survey
    # Nothing in the data yet: no agreed definition, so Undefined whatever the survey says.
    assert body["stage"] == "Undefined"
    assert set(body) == {"stage", "survey", "evidence", "next_steps", "reasons_to_stay",
                         "rule", "survey_id", "computed_at"}
    assert [e["indicator"] for e in body["evidence"]][:2] == [
        "definition_jointly_approved", "sla_policies_in_force"]
    assert all(set(e) == {"indicator", "value", "threshold", "supports", "met"}
               for e in body["evidence"])
    assert body["next_steps"] and body["reasons_to_stay"]
    assert body["computed_at"].endswith(("Z", "+00:00"))

    listed = client.get("/api/v1/alignment/surveys", headers=seller).json()
    assert listed["items"][0]["responses"] == {"sales": 2, "marketing": 2}


def test_only_one_team_answering_gives_no_gap(client: TestClient, make_key: Callable) -> None:
    survey = open_survey(client, make_key("ops", "editor"))
    respond(client, survey, "sales", [5] * 20, make_key("sales", "viewer"))
    survey_part = client.get("/api/v1/alignment", headers=make_key()).json()["survey"]
    assert survey_part["marketing"] == {"score": None, "stage": None, "responses": 0}
    assert survey_part["sales"]["stage"] == "Integrated" and survey_part["gap"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"team": "sales", "answers": [3] * 19}, "body.answers"),
    ({"team": "sales", "answers": [3, 3, 3, 6] + [3] * 16}, "body.answers.3"),
    ({"team": "sales", "answers": [3] * 5 + ["3"] + [3] * 14}, "body.answers.5"),
    ({"team": "sales", "answers": [True] + [3] * 19}, "body.answers.0"),
    ({"team": "sales", "answers": [3] * 19 + [0]}, "body.answers.19"),
    ({"team": "sales", "answers": "3" * 20}, "body.answers"),
    ({"team": "finance", "answers": [3] * 20}, "body.team"),
    ({"answers": [3] * 20}, "body.team"),
])
def test_bad_responses_are_422_naming_the_field(client: TestClient, make_key: Callable,
                                                body: dict, field: str) -> None:
    survey = open_survey(client, make_key("ops", "editor"))
    r = client.post(f"/api/v1/alignment/surveys/{survey}/responses", json=body,
                    headers=make_key("sales", "viewer"))
    assert r.status_code == 422, r.text
    assert ".".join(str(part) for part in r.json()["detail"][0]["loc"]) == field


def test_a_closed_survey_takes_no_more_responses(client: TestClient,
                                                 make_key: Callable) -> None:
    editor, viewer = make_key("marketing", "editor"), make_key("sales", "viewer")
    survey = open_survey(client, editor)
    respond(client, survey, "sales", [3] * 20, viewer)
    closed = client.post(f"/api/v1/alignment/surveys/{survey}/close", headers=editor)
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    r = client.post(f"/api/v1/alignment/surveys/{survey}/responses",
                    json={"team": "sales", "answers": [3] * 20}, headers=viewer)
    assert r.status_code == 409
    assert client.post(f"/api/v1/alignment/surveys/{survey}/close",
                       headers=editor).status_code == 409
    # A closed survey's answers still count.
    body = client.get("/api/v1/alignment", headers=viewer).json()
    assert body["survey_id"] == survey and body["survey"]["sales"]["score"] == 60.0


def test_unknown_surveys_and_roles(client: TestClient, make_key: Callable) -> None:
    viewer = make_key("sales", "viewer")
    r = client.post("/api/v1/alignment/surveys/999/responses",
                    json={"team": "sales", "answers": [3] * 20}, headers=viewer)
    assert r.status_code == 404
    assert client.post("/api/v1/alignment/surveys/999/close",
                       headers=make_key("ops", "editor")).status_code == 404
    assert client.post("/api/v1/alignment/surveys", json={"name": "x"},
                       headers=viewer).status_code == 403
    assert client.post("/api/v1/alignment/surveys", json={"name": ""},
                       headers=make_key("ops", "editor")).status_code == 422


def test_surveys_are_listed_newest_first_in_pages(client: TestClient,
                                                  make_key: Callable) -> None:
    editor = make_key("ops", "editor")
    ids = [open_survey(client, editor, name=f"round {n}") for n in range(3)]
    first = client.get("/api/v1/alignment/surveys", params={"limit": 2}, headers=editor).json()
    assert [s["id"] for s in first["items"]] == [ids[2], ids[1]]
    rest = client.get("/api/v1/alignment/surveys",
                      params={"limit": 2, "cursor": first["next_cursor"]}, headers=editor).json()
    assert [s["id"] for s in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
