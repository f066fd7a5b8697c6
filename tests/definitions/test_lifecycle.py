"""Versions and their life cycle through the API: every transition and its forbidden variants."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

RULES = {"all": [{"field": "person.score", "op": "gte", "value": 60}]}


@pytest.fixture()
def keys(make_key: Callable) -> dict[str, dict]:
    return {"mkt": make_key("marketing", "editor", "mkt"), "mkt2": make_key("marketing", "editor"),
            "sales": make_key("sales", "editor", "sales"), "ops": make_key("ops", "editor"),
            "viewer": make_key("sales", "viewer")}


def draft(client: TestClient, headers: dict, rules: dict = RULES) -> dict:
    r = client.post("/api/v1/lead-definitions", json={"name": "Score 60", "rules": rules},
                    headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_version_becomes_active_only_with_a_marketing_and_a_sales_approval(
    client: TestClient, keys: dict
) -> None:
    d = draft(client, keys["mkt"])
    assert (d["state"], d["version"]) == ("draft", 1)
    base = f"/api/v1/lead-definitions/{d['id']}"
    assert client.post(f"{base}/approve", headers=keys["sales"]).status_code == 409  # a draft
    assert client.post(f"{base}/propose", headers=keys["mkt"]).json()["state"] == "proposed"
    assert client.post(f"{base}/approve", headers=keys["ops"]).status_code == 403
    first = client.post(f"{base}/approve", headers=keys["mkt"])
    assert first.json()["state"] == "proposed"
    again = client.post(f"{base}/approve", headers=keys["mkt2"])
    assert again.status_code == 409 and "marketing has already approved" in again.text
    assert client.get("/api/v1/lead-definitions/active", headers=keys["viewer"]).status_code == 404
    done = client.post(f"{base}/approve", headers=keys["sales"]).json()
    assert done["state"] == "active"
    assert [(a["team"], a["key_name"]) for a in done["approvals"]] == [
        ("marketing", "mkt"), ("sales", "sales")]
    assert client.post(f"{base}/approve", headers=keys["sales"]).status_code == 409


def test_a_proposed_version_is_frozen_and_a_change_needs_a_new_version(
    client: TestClient, keys: dict
) -> None:
    d = draft(client, keys["mkt"])
    base = f"/api/v1/lead-definitions/{d['id']}"
    edited = client.patch(base, json={"notes": "agreed in the Monday meeting"}, headers=keys["mkt"])
    assert edited.status_code == 200 and edited.json()["notes"] == "agreed in the Monday meeting"
    client.post(f"{base}/propose", headers=keys["mkt"])
    frozen = client.patch(base, json={"rules": RULES}, headers=keys["mkt"])
    assert frozen.status_code == 409 and "new version" in frozen.text
    assert client.post(f"{base}/propose", headers=keys["mkt"]).status_code == 409


def test_the_next_active_version_supersedes_the_previous_one(client: TestClient, keys: dict
                                                             ) -> None:
    ids = []
    for _ in range(2):
        d = draft(client, keys["sales"])
        base = f"/api/v1/lead-definitions/{d['id']}"
        client.post(f"{base}/propose", headers=keys["sales"])
        client.post(f"{base}/approve", headers=keys["mkt"])
        client.post(f"{base}/approve", headers=keys["sales"])
        ids.append(d["id"])
    old = client.get(f"/api/v1/lead-definitions/{ids[0]}", headers=keys["viewer"]).json()
    assert old["state"] == "superseded" and old["superseded_at"] is not None
    assert len(old["approvals"]) == 2  # who approved what stays readable
    active = client.get("/api/v1/lead-definitions/active", headers=keys["viewer"]).json()
    assert (active["id"], active["version"]) == (ids[1], 2)
    listed = client.get("/api/v1/lead-definitions", headers=keys["viewer"]).json()["items"]
    assert [x["state"] for x in listed] == ["active", "superseded"]


def test_an_effective_date_in_the_future_leaves_the_version_approved(client: TestClient,
                                                                     keys: dict) -> None:
    d = draft(client, keys["mkt"])
    base = f"/api/v1/lead-definitions/{d['id']}"
    client.post(f"{base}/propose", json={"effective_from": "2099-01-01T00:00:00Z"},
                headers=keys["mkt"])
    client.post(f"{base}/approve", headers=keys["mkt"])
    assert client.post(f"{base}/approve", headers=keys["sales"]).json()["state"] == "approved"


@pytest.mark.parametrize(("rules", "path"), [
    ({"all": [{"field": "person.country", "op": "in", "value": ["US"]},
              {"field": "person.score", "op": "gte", "value": 1},
              {"any": [{"field": "person.title", "op": "like", "value": "VP"}]}]},
     "rules.all[2].any[0].op"),
    ({"all": [{"field": "person.shoe_size", "op": "eq", "value": 9}]}, "rules.all[0].field"),
    ({"field": "person.title", "op": "matches", "value": "(VP"}, "rules.value"),
    ({"field": "account.employees", "op": "gte", "value": "fifty"}, "rules.value"),
])
def test_bad_rules_are_a_422_naming_the_path(client: TestClient, keys: dict, rules: dict,
                                             path: str) -> None:
    r = client.post("/api/v1/lead-definitions", json={"name": "x", "rules": rules},
                    headers=keys["mkt"])
    assert r.status_code == 422
    assert ".".join(r.json()["detail"][0]["loc"]) == f"body.{path}"


def test_viewers_cannot_write_and_unknown_versions_are_404(client: TestClient, keys: dict) -> None:
    r = client.post("/api/v1/lead-definitions", json={"name": "x", "rules": RULES},
                    headers=keys["viewer"])
    assert r.status_code == 403
    assert client.post("/api/v1/lead-definitions/99/propose",
                       headers=keys["mkt"]).status_code == 404
