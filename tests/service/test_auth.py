from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.auth.models import ApiKey, AuditEvent
from service.db import unit_of_work


def test_no_key_is_401(client: TestClient) -> None:
    r = client.get("/api/v1/keys")
    assert r.status_code == 401
    assert "Bearer" in r.json()["detail"]


def test_unknown_key_is_401(client: TestClient) -> None:
    r = client.get("/api/v1/keys", headers={"Authorization": "Bearer truce_nope"})
    assert r.status_code == 401


def test_viewer_cannot_manage_keys(client: TestClient, make_key: Callable) -> None:
    r = client.get("/api/v1/keys", headers=make_key("sales", "viewer"))
    assert r.status_code == 403
    assert "admin" in r.json()["detail"]


def test_admin_creates_a_key_that_works_and_only_its_hash_is_stored(
    client: TestClient, admin_headers: dict, engine: Engine
) -> None:
    r = client.post("/api/v1/keys", json={"name": "mkt-lead", "team": "marketing", "role": "admin"},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert key.startswith("truce_")
    listed = client.get("/api/v1/keys", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200
    assert [k["name"] for k in listed.json()] == ["mkt-lead"]
    assert "key" not in listed.json()[0]
    with unit_of_work(engine) as s:
        stored = s.execute(select(ApiKey)).scalar_one()
        assert key not in (stored.key_hash, stored.prefix)


def test_revoked_key_stops_working(client: TestClient, admin_headers: dict) -> None:
    r = client.post("/api/v1/keys", json={"name": "tmp", "team": "ops", "role": "admin"},
                    headers=admin_headers)
    key, key_id = r.json()["key"], r.json()["id"]
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/keys", headers=auth).status_code == 200
    assert client.post(f"/api/v1/keys/{key_id}/revoke", headers=admin_headers).status_code == 200
    assert client.get("/api/v1/keys", headers=auth).status_code == 401


def test_every_write_records_the_key_that_made_it(
    client: TestClient, admin_headers: dict, engine: Engine
) -> None:
    client.post("/api/v1/keys", json={"name": "s1", "team": "sales"}, headers=admin_headers)
    with unit_of_work(engine) as s:
        events = s.execute(select(AuditEvent)).scalars().all()
        assert [(e.key_name, e.method, e.path) for e in events] == [
            ("bootstrap-admin", "POST", "/api/v1/keys")
        ]


def test_a_refused_write_leaves_no_trace(client: TestClient, admin_headers: dict,
                                        engine: Engine) -> None:
    """The audit row is flushed before the duplicate is found; the 409 rolls it back."""
    body = {"name": "once", "team": "sales"}
    assert client.post("/api/v1/keys", json=body, headers=admin_headers).status_code == 201
    assert client.post("/api/v1/keys", json=body, headers=admin_headers).status_code == 409
    with unit_of_work(engine) as s:
        assert len(s.execute(select(AuditEvent)).scalars().all()) == 1
        assert [k.name for k in s.execute(select(ApiKey)).scalars()] == ["once"]


def test_duplicate_key_name_is_409_and_bad_team_is_422(client: TestClient, admin_headers: dict
                                                       ) -> None:
    body = {"name": "dup", "team": "sales"}
    assert client.post("/api/v1/keys", json=body, headers=admin_headers).status_code == 201
    again = client.post("/api/v1/keys", json=body, headers=admin_headers)
    assert again.status_code == 409
    bad = client.post("/api/v1/keys", json={"name": "x", "team": "finance"}, headers=admin_headers)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "team"]


def test_revoking_an_unknown_key_is_404(client: TestClient, admin_headers: dict) -> None:
    assert client.post("/api/v1/keys/999/revoke", headers=admin_headers).status_code == 404
