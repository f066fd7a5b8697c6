"""Property-based fuzzing of the whole OpenAPI schema (schemathesis, in process over ASGI).

Every operation gets schema-valid and schema-invalid requests with an admin key, against a
database seeded by a real sync of a small sandbox company (so ids in paths hit real rows).
Each answer must not be a 5xx, must match the documented schema and must use a documented
status code.

``TRUCE_FUZZ_EXAMPLES`` sets the fuzzing examples per operation (default 5, about a minute for
the file); ``TRUCE_FUZZ_EXAMPLES=120`` is the full run (well over 5,000 cases).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from service.app import create_app
from service.handoffs.webhooks import expected_signature
from service.settings import HubSpotSettings, SalesforceSettings, Settings
from tests.conftest import ADMIN_KEY

EXAMPLES = int(os.environ.get("TRUCE_FUZZ_EXAMPLES", "5"))
WEBHOOK_SECRET = "fuzz-hubspot-client-secret"
WEBHOOK_URL = "http://testserver/webhooks/hubspot"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))

CASES: Counter[str] = Counter()


def _seed_with_a_sync(engine: Engine, settings_: Settings) -> None:
    """A small sandbox company synced for real: persons, handoffs, runs, a quarantined row."""
    from connectors.sandbox.generator import REFERENCE_DEFINITION
    from connectors.sandbox.run import start_sandboxes
    from service.demo import seed_agreement
    from service.handoffs.jobs import scan_job
    from service.sync.service import sync_source

    boxes = start_sandboxes(seed=11, people=60)
    try:
        env = boxes.settings_env()
        synced = settings_.model_copy(update={
            "salesforce": SalesforceSettings(
                instance_url=env["TRUCE_SALESFORCE_INSTANCE_URL"],
                access_token=SecretStr(env["TRUCE_SALESFORCE_ACCESS_TOKEN"]),
                ca_bundle=env["TRUCE_SALESFORCE_CA_BUNDLE"]),
            "hubspot": HubSpotSettings(
                base_url=env["TRUCE_HUBSPOT_BASE_URL"],
                access_token=SecretStr(env["TRUCE_HUBSPOT_ACCESS_TOKEN"])),
        })
        seed_agreement(engine, synced, REFERENCE_DEFINITION)
        for source in synced.enabled_sources():
            sync_source(engine, synced, source, requested_by="fuzz-seed")
        scan_job(engine, synced)
    finally:
        boxes.stop()


def _fuzz_app(settings_: Settings, engine: Engine) -> FastAPI:
    """The app as served, with no CRM configured (so no request starts a real sync) and a
    HubSpot client secret (so the webhook answers 401 to unsigned bodies, not 503)."""
    configured = settings_.model_copy(update={
        "hubspot": HubSpotSettings(client_secret=SecretStr(WEBHOOK_SECRET))})
    return create_app(configured, engine=engine)


@pytest.fixture()
def seeded_app(settings: Settings, engine: Engine) -> FastAPI:
    _seed_with_a_sync(engine, settings)
    return _fuzz_app(settings, engine)


@pytest.fixture()
def api_schema(seeded_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", seeded_app)


@pytest.fixture(scope="module", autouse=True)
def _report_case_count(request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    total = sum(CASES.values())
    if reporter is not None and capture is not None and total:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nfuzz: {total} cases over {len(CASES)} operations in "
                f"{time.monotonic() - started:.0f}s (TRUCE_FUZZ_EXAMPLES={EXAMPLES})")


def _fuzz_operation(operation: APIOperation, mode: GenerationMode) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        CASES[label] += 1
        case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, checks=CHECKS)

    run()


def _describe(exc: BaseException) -> str:
    """One failure, short: each check that failed and how to reproduce it."""
    found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    lines = [f"  {getattr(e, 'title', type(e).__name__)}: "
             f"{' '.join(str(getattr(e, 'message', e)).split())[:400]}" for e in found]
    notes = [n.strip() for n in getattr(exc, "__notes__", []) if "Reproduce" in n]
    return "\n".join(lines + [f"  {n.splitlines()[-1].strip()}" for n in notes])


def test_api(api_schema: Any) -> None:
    """No 5xx, documented status codes and bodies, for valid and invalid input alike.

    The operations run in one test over one seeded database (seeding costs seconds); every
    operation is fuzzed even after another failed, and the failures are reported together.
    """
    failures: dict[str, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation, mode)
            except Unsatisfiable:  # nothing to make invalid: no parameters and no body
                continue
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported together
                failures[f"{operation.method.upper()} {operation.path} ({mode.value})"] = (
                    _describe(exc))
    assert operations >= 40, f"only {operations} operations in the schema"
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())


# The webhook's body is not in the schema (the signature covers the raw bytes), so above it
# only sees unsigned requests (401). Here it gets fuzzed bodies that are correctly signed.

_ids = st.one_of(st.integers(), st.text(max_size=20))
_event = st.fixed_dictionaries(
    {"eventId": _ids, "subscriptionType": st.sampled_from(
        ["contact.propertyChange", "contact.deletion", "contact.merge", "company.creation",
         "deal.propertyChange", "ticket.creation"]) | st.text(max_size=30),
     "objectId": _ids},
    optional={"occurredAt": st.integers(), "propertyName": st.none() | st.text(max_size=20),
              "propertyValue": st.none() | st.text(max_size=20), "primaryObjectId": _ids,
              "mergedObjectIds": st.lists(_ids, max_size=3)},
)
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)
_bodies = st.one_of(st.lists(_event, max_size=4).map(json.dumps), _json.map(json.dumps),
                    st.binary(max_size=64).map(lambda b: b.decode("latin-1")))


@pytest.fixture()
def webhook_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(_fuzz_app(settings, engine)) as client:
        yield client


@FUZZ_SETTINGS
@given(body=_bodies)
def test_signed_hubspot_webhook(webhook_client: TestClient, body: str) -> None:
    """Signed batches of any shape: 200 for a list of events, 422 for anything else."""
    CASES["POST /webhooks/hubspot (signed)"] += 1
    raw = body.encode("utf-8", "surrogatepass")
    timestamp = str(int(time.time() * 1000))
    signature = expected_signature(WEBHOOK_SECRET, method="POST", uri=WEBHOOK_URL, body=raw,
                                   timestamp=timestamp)
    response = webhook_client.post("/webhooks/hubspot", content=raw, headers={
        "X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp,
        "Content-Type": "application/json"})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert set(response.json()) == {"accepted"}
    else:
        assert response.json()["detail"][0]["loc"] == ["body"]


# What the fuzzer found, pinned down: each was a 500 (or an undocumented 400) before.

BIG = 2**64
NUL_INPUTS = [
    ("post", "/api/v1/directory", {"segment": "a\x00b", "topic": "t", "marketing_name": "m",
                                   "marketing_email": "m@example.com", "sales_name": "s",
                                   "sales_email": "s@example.com"}),
    ("post", "/api/v1/calendars", {"name": "c\x00", "timezone": "UTC",
                                   "hours": {"mon": [["09:00", "17:00"]]}}),
    ("post", "/api/v1/lead-definitions",
     {"name": "d", "rules": {"field": "person.title", "op": "eq", "value": "a\x00"}}),
    ("get", "/api/v1/persons?email=a%00b", None),
    ("get", "/api/v1/handoffs?owner=a%00", None),
    ("get", "/api/v1/syncs?source=a%00", None),
]
HUGE_INTEGERS = [
    ("get", f"/api/v1/persons/{BIG}", None),
    ("get", f"/api/v1/handoffs/{BIG}", None),
    ("post", f"/api/v1/handoffs/{BIG}/accept", {}),
    ("get", f"/api/v1/syncs/{BIG}", None),
    ("post", "/api/v1/commitments",
     {"mqls_promised": 2**63, "period_start": "2026-01-01", "period_end": "2026-02-01"}),
]


@pytest.fixture()
def admin_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(_fuzz_app(settings, engine), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "body"), NUL_INPUTS)
def test_nul_characters_are_invalid_input_where_the_database_refuses_them(
    admin_client: TestClient, engine: Engine, method: str, path: str, body: Any
) -> None:
    answer = admin_client.request(method.upper(), path, json=body,
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    if engine.dialect.name == "postgresql":  # SQLite stores and compares NUL like any other
        assert answer.status_code == 422, answer.text
        assert "NUL" in answer.json()["detail"] or "Unicode" in answer.json()["detail"]
    else:
        assert answer.status_code < 500, answer.text


@pytest.mark.parametrize(("method", "path", "body"), HUGE_INTEGERS)
def test_integers_beyond_64_bits_are_not_found_or_invalid(
    admin_client: TestClient, method: str, path: str, body: Any
) -> None:
    answer = admin_client.request(method.upper(), path, json=body,
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert answer.status_code in (404, 422), answer.text


def test_an_undecodable_body_is_a_422_like_any_invalid_body(admin_client: TestClient) -> None:
    answer = admin_client.post("/api/v1/directory", content=b"\x00" * 9,
                               headers={"Authorization": f"Bearer {ADMIN_KEY}",
                                        "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body"]


def test_every_error_an_operation_can_answer_is_documented(settings: Settings,
                                                          engine: Engine) -> None:
    schema = _fuzz_app(settings, engine).openapi()
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            expected = set()
            if operation.get("security"):
                expected |= {"401", "403"} | ({"409"} if method != "get" else set())
            if "{" in path:
                expected.add("404")
            if operation.get("parameters") or operation.get("requestBody"):
                expected.add("422")
            responses = operation["responses"]
            assert expected <= set(responses), (method, path)
            for code in expected:
                assert responses[code]["content"]["application/json"]["schema"] == error
    webhook = schema["paths"]["/webhooks/hubspot"]["post"]["responses"]
    assert {"200", "401", "422", "503"} <= set(webhook)
