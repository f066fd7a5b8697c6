import gc

import pytest
from fastapi.testclient import TestClient

from service.app import create_served_app
from service.settings import Settings


def test_healthz_answers_without_a_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_the_schema_at_the_latest_migration(client: TestClient) -> None:
    body = client.get("/readyz")
    assert body.status_code == 200
    assert body.json()["status"] == "ok"
    assert body.json()["schema"] == body.json()["latest"]


def test_openapi_documents_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/v1/keys" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_prometheus_counts_requests_by_route(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/api/v1/keys/7/revoke")  # 405: still counted under its route template
    text = client.get("/metrics").text
    assert 'truce_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert "truce_http_request_duration_seconds_bucket" in text


def test_the_served_app_answers_with_its_start_up_heap_frozen(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """`truce serve` builds the app from the environment, then freezes what start-up made, so
    the collector's full passes skip it; the app still answers."""
    monkeypatch.setenv("TRUCE_DATABASE_URL", settings.database_url)
    gc.unfreeze()
    try:
        app = create_served_app()
        assert gc.get_freeze_count() > 0
        with TestClient(app) as client:
            assert client.get("/readyz").json()["status"] == "ok"
    finally:
        gc.unfreeze()
