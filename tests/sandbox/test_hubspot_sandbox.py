"""The HubSpot sandbox as the unmodified hubspot-api-client sees it over a real socket."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest
from hubspot.crm.objects import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.utils.signature import Signature

from connectors.sandbox.faults import Faults
from connectors.sandbox.hubspot_app import start_hubspot
from connectors.sandbox.hubspot_webhooks import WebhookSender, sign_v3
from connectors.sandbox.server import RunningServer
from connectors.sandbox.world import World

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def ms(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


class FakeTimer:
    """A monotonic clock the test steps by hand, for token expiry and rate windows."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def small_world(contacts: int = 25) -> World:
    """Contacts 1001.. modified five to a minute; one company linked to the first contact."""
    world = World(clock=lambda: T0 + timedelta(days=1))
    for i in range(contacts):
        world.hubspot.insert("contacts", {
            "email": f"person{i}@example.com", "firstname": f"First{i}", "lastname": "Doe",
            "lifecyclestage": "lead", "hs_lead_status": "NEW" if i % 2 else "OPEN",
        }, at=T0 + timedelta(minutes=i // 5))
    company = world.hubspot.insert("companies", {"name": "Acme", "domain": "acme.example"},
                                   at=T0)
    world.hubspot.associate("contacts", "1001", "companies", company["id"], 279)
    world.hubspot.owners.append({
        "id": "77", "email": "owner@example.com", "firstName": "Olive", "lastName": "Owner",
        "userId": 9001, "type": "PERSON", "teams": [], "createdAt": T0, "updatedAt": T0,
        "archived": False})
    return world


@pytest.fixture()
def serve() -> Iterator[Callable[..., RunningServer]]:
    running: list[RunningServer] = []

    def start(world: World, faults: Faults | None = None, **kwargs: Any) -> RunningServer:
        server = start_hubspot(world, faults or Faults(search_per_second=0), **kwargs)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


def client(server: RunningServer, token: str | None = None, **kwargs: Any) -> HubSpot:
    return HubSpot(access_token=token or server.access_token, host=server.url, **kwargs)


def search(api: HubSpot, **body: Any) -> Any:
    return api.crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(**body))


def error(exc: BaseException) -> dict[str, Any]:
    return json.loads(exc.body)  # type: ignore[attr-defined]


def test_list_pages_to_the_end_with_requested_properties(serve: Callable[..., RunningServer]
                                                         ) -> None:
    api = client(serve(small_world()))
    seen, after, pages = [], None, 0
    while True:
        page = api.crm.contacts.basic_api.get_page(limit=10, after=after,
                                                   properties=["email", "hs_lead_status"])
        pages += 1
        seen += [r.id for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link.startswith("http://127.0.0.1")
    assert pages == 3
    assert seen == [str(i) for i in range(1001, 1026)]
    first = api.crm.contacts.basic_api.get_by_id("1001", properties=["email"])
    assert set(first.properties) == {"email", "hs_object_id", "createdate", "lastmodifieddate"}
    default = api.crm.contacts.basic_api.get_by_id("1001")
    assert set(default.properties) == {"createdate", "email", "firstname", "hs_object_id",
                                       "lastmodifieddate", "lastname"}
    assert all(isinstance(v, str) for v in default.properties.values())


def test_comma_lists_lenient_booleans_and_trailing_slash(serve: Callable[..., RunningServer]
                                                         ) -> None:
    server = serve(small_world())
    headers = {"Authorization": f"Bearer {server.access_token}"}
    answer = requests.get(f"{server.url}/crm/v3/objects/contacts/", headers=headers, params={
        "properties": "email,firstname", "archived": "false", "limit": 2,
        "associations": "companies"}, timeout=10).json()
    assert set(answer["results"][0]["properties"]) >= {"email", "firstname"}
    assert answer["results"][0]["associations"]["companies"]["results"][0]["type"] == \
        "contact_to_company"
    owners = requests.get(f"{server.url}/crm/v3/owners/", headers=headers,
                          params={"email": "OWNER@example.com"}, timeout=10).json()
    assert [o["id"] for o in owners["results"]] == ["77"]


def test_search_ties_across_a_page_boundary_are_ordered_by_id(
        serve: Callable[..., RunningServer]) -> None:
    api = client(serve(small_world()))
    since = ms(T0 + timedelta(minutes=1))
    filters = [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                             "value": since}]}]
    got, after = [], None
    while True:
        page = search(api, filter_groups=filters, sorts=["lastmodifieddate"], limit=3,
                      after=after, properties=["email"])
        assert page.total == 20
        got += [(r.properties["lastmodifieddate"], int(r.id)) for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert [i for _, i in got] == list(range(1006, 1026))
    assert got == sorted(got)
    newest = search(api, filter_groups=filters, limit=6,
                    sorts=[{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}])
    assert [r.id for r in newest.results] == ["1021", "1022", "1023", "1024", "1025", "1016"]


def test_search_operators_and_validation(serve: Callable[..., RunningServer]) -> None:
    api = client(serve(small_world()))
    between = search(api, filter_groups=[{"filters": [
        {"propertyName": "createdate", "operator": "BETWEEN",
         "value": (T0 + timedelta(minutes=1)).isoformat(), "highValue": ms(T0 + timedelta(
             minutes=1))},
        {"propertyName": "hs_lead_status", "operator": "IN", "values": ["NEW"]}]}])
    assert [r.id for r in between.results] == ["1006", "1008", "1010"]
    assert between.total == 3
    tokens = search(api, filter_groups=[{"filters": [
        {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@example.com"}]}])
    assert tokens.total == 25
    missing = search(api, filter_groups=[{"filters": [
        {"propertyName": "jobtitle", "operator": "NOT_HAS_PROPERTY"}]}])
    assert missing.total == 25
    with pytest.raises(Exception) as too_big:
        search(api, limit=201)
    assert too_big.value.status == 400
    groups = [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6
    with pytest.raises(Exception) as too_many:
        search(api, filter_groups=groups)
    assert error(too_many.value)["category"] == "VALIDATION_ERROR"


def test_search_past_ten_thousand_is_refused_while_total_stays_honest(
        serve: Callable[..., RunningServer]) -> None:
    world = World()
    for i in range(10_500):
        world.hubspot.insert("contacts", {"email": f"c{i}@example.com"},
                             at=T0 + timedelta(seconds=i))
    api = client(serve(world))
    last_allowed = search(api, limit=200, after="9800", sorts=["lastmodifieddate"])
    assert last_allowed.total == 10_500
    assert len(last_allowed.results) == 200
    with pytest.raises(Exception) as refused:
        search(api, limit=200, after="9900")
    assert refused.value.status == 400
    body = error(refused.value)
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert body["correlationId"]


def test_properties_with_history_newest_first(serve: Callable[..., RunningServer]) -> None:
    world = small_world()
    world.hubspot.update("contacts", "1003", {"lifecyclestage": "marketingqualifiedlead"},
                         at=T0 + timedelta(hours=1))
    world.hubspot.update("contacts", "1003", {"lifecyclestage": "customer"},
                         at=T0 + timedelta(hours=2))
    api = client(serve(world))
    rec = api.crm.contacts.basic_api.get_by_id(
        "1003", properties_with_history=["lifecyclestage"])
    values = [v.value for v in rec.properties_with_history["lifecyclestage"]]
    assert values == ["customer", "marketingqualifiedlead", "lead"]
    assert rec.properties_with_history["lifecyclestage"][0].source_type == "CRM_UI"
    page = api.crm.contacts.basic_api.get_page(limit=100,
                                               properties_with_history=["lifecyclestage"])
    assert len(page.results) <= 50


def test_archived_listing_and_read(serve: Callable[..., RunningServer]) -> None:
    world = small_world()
    world.hubspot.archive("contacts", "1004", at=T0 + timedelta(hours=3))
    api = client(serve(world))
    archived = api.crm.contacts.basic_api.get_page(archived=True)
    assert [r.id for r in archived.results] == ["1004"]
    assert archived.results[0].archived is True
    assert archived.results[0].archived_at == T0 + timedelta(hours=3)
    live = api.crm.contacts.basic_api.get_page(limit=100)
    assert "1004" not in [r.id for r in live.results]
    with pytest.raises(Exception) as gone:
        api.crm.contacts.basic_api.get_by_id("1004")
    assert gone.value.status == 404
    assert error(gone.value)["category"] == "OBJECT_NOT_FOUND"


def test_merged_id_answers_the_survivor(serve: Callable[..., RunningServer]) -> None:
    server = serve(small_world())
    answer = requests.post(f"{server.url}/crm/v3/objects/contacts/merge", json={
        "primaryObjectId": "1002", "objectIdToMerge": "1005"},
        headers={"Authorization": f"Bearer {server.access_token}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["id"] == "1002"
    api = client(server)
    survivor = api.crm.contacts.basic_api.get_by_id("1005",
                                                    properties=["hs_merged_object_ids"])
    assert survivor.id == "1002"
    assert survivor.properties["hs_merged_object_ids"] == "1005"
    batch = api.crm.contacts.batch_api.read(
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            inputs=[{"id": "1005"}, {"id": "1001"}, {"id": "999999"}], properties=["email"],
            properties_with_history=[]))
    assert [r.id for r in batch.results] == ["1002", "1001"]
    assert batch.errors[0].context["ids"] == ["999999"]


def test_bad_and_expired_tokens(serve: Callable[..., RunningServer]) -> None:
    timer = FakeTimer()
    faults = Faults(search_per_second=0, token_ttl_seconds=1800)
    server = serve(small_world(), faults, timer=timer)
    with pytest.raises(Exception) as bad:
        client(server, token="wrong").crm.contacts.basic_api.get_page()
    assert bad.value.status == 401
    assert error(bad.value)["category"] == "INVALID_AUTHENTICATION"
    api = client(server)
    assert api.crm.contacts.basic_api.get_page(limit=1).results
    timer.now += 1805
    with pytest.raises(Exception) as expired:
        api.crm.contacts.basic_api.get_page(limit=1)
    body = error(expired.value)
    assert expired.value.status == 401 and body["category"] == "EXPIRED_AUTHENTICATION"
    assert "expired 5 second(s) ago" in body["message"]
    fresh = requests.post(f"{server.url}/oauth/v1/token", data={
        "grant_type": "refresh_token", "refresh_token": server.extra["refresh_token"],
        "client_id": "id", "client_secret": "secret"}, timeout=10).json()
    assert fresh["expires_in"] == 1800
    assert client(server, token=fresh["access_token"]).crm.contacts.basic_api.get_page(
        limit=1).results


def test_rate_limits_answer_429_with_policy_and_headers(
        serve: Callable[..., RunningServer]) -> None:
    timer = FakeTimer()
    faults = Faults(ten_second_limit=2, search_per_second=1)
    server = serve(small_world(), faults, timer=timer)
    api = client(server)
    _, status, headers = api.crm.contacts.basic_api.get_page_with_http_info(limit=1)
    assert status == 200 and headers["X-HubSpot-RateLimit-Max"] == "2"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert "X-HubSpot-RateLimit-Daily-Remaining" in headers
    api.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(Exception) as burst:
        api.crm.contacts.basic_api.get_page(limit=1)
    assert burst.value.status == 429
    assert error(burst.value)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "Retry-After" not in burst.value.headers
    assert burst.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    timer.now += 11
    search(api, limit=1)
    with pytest.raises(Exception) as secondly:
        search(api, limit=1)
    assert secondly.value.status == 429
    assert error(secondly.value)["policyName"] == "SECONDLY"
    assert secondly.value.headers["Retry-After"] == "1"
    faults.daily_limit = faults.calls
    timer.now += 11
    with pytest.raises(Exception) as daily:
        api.crm.contacts.basic_api.get_page(limit=1)
    assert error(daily.value)["policyName"] == "DAILY"


def test_transient_gateway_errors_alternate(serve: Callable[..., RunningServer]) -> None:
    faults = Faults(search_per_second=0)
    api = client(serve(small_world(), faults), retry=False)
    faults.fail_every = 1
    statuses = []
    for _ in range(2):
        with pytest.raises(Exception) as failed:
            api.crm.contacts.basic_api.get_page(limit=1)
        statuses.append(failed.value.status)
        assert error(failed.value)["status"] == "error"
    assert statuses == [502, 504]
    faults.fail_every = 0
    assert api.crm.contacts.basic_api.get_page(limit=1).results


def test_dropped_connection_after_the_write_landed(serve: Callable[..., RunningServer]) -> None:
    faults = Faults(search_per_second=0)
    world = small_world()
    api = client(serve(world, faults), retry=False)
    faults.drop_every = 1
    with pytest.raises((urllib3.exceptions.ProtocolError, http.client.IncompleteRead)):
        api.crm.contacts.basic_api.update("1002", {"properties": {"hs_lead_status": "OPEN"}})
    faults.drop_every = 0
    again = api.crm.contacts.basic_api.get_by_id("1002", properties=["hs_lead_status"])
    assert again.properties["hs_lead_status"] == "OPEN"


def test_task_create_with_contact_association(serve: Callable[..., RunningServer]) -> None:
    api = client(serve(small_world()))
    task = api.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "2026-01-01T00:00:00Z", "hs_task_subject": "Call back"},
        associations=[PublicAssociationsForObject(to=PublicObjectId(id="1003"), types=[
            AssociationSpec(association_category="HUBSPOT_DEFINED",
                            association_type_id=204)])]))
    assert task.properties["hs_task_subject"] == "Call back"
    linked = api.crm.associations.v4.basic_api.get_page("contacts", "1003", "tasks")
    assert [r.to_object_id for r in linked.results] == [task.id]
    assert linked.results[0].association_types[0].type_id == 203
    batch = api.crm.associations.v4.batch_api.get_page(
        "tasks", "contacts", {"inputs": [{"id": task.id}]})
    assert batch.results[0].to[0].to_object_id == "1003"
    assert batch.results[0].to[0].association_types[0].type_id == 204


def test_owners_and_property_picklists(serve: Callable[..., RunningServer]) -> None:
    api = client(serve(small_world()))
    owners = api.crm.owners.owners_api.get_page(email="owner@example.com")
    assert [(o.id, o.first_name) for o in owners.results] == [("77", "Olive")]
    props = {p.name: p for p in api.crm.properties.core_api.get_all("contacts").results}
    assert props["hs_lead_status"].type == "enumeration"
    assert {"NEW", "OPEN"} <= {o.value for o in props["hs_lead_status"].options}
    assert props["lastmodifieddate"].type == "datetime"


def test_search_lag_hides_fresh_writes_until_the_clock_moves(
        serve: Callable[..., RunningServer]) -> None:
    now = [T0 + timedelta(days=1)]
    world = small_world()
    world.clock = lambda: now[0]
    api = client(serve(world, search_lag_seconds=5))
    created = api.crm.contacts.basic_api.create({"properties": {"email": "new@example.com"}})
    assert api.crm.contacts.basic_api.get_by_id(created.id).id == created.id
    assert search(api, limit=1).total == 25
    now[0] += timedelta(seconds=6)
    assert search(api, limit=1).total == 26


class _Receiver(BaseHTTPRequestHandler):
    """Fails the first delivery with a 500, then accepts; keeps what it was sent."""

    received: list[tuple[dict[str, str], bytes]] = []
    fail_first = True

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        status = 500 if type(self).fail_first else 204
        type(self).fail_first = False
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhooks_are_batched_signed_and_retried() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/hubspot?portal=1"
    try:
        sender = WebhookSender(small_world(), target_url=url, client_secret="s3cret")
        for i in range(150):
            sender.record_change("contacts", str(1001 + i % 25), "lifecyclestage", "customer",
                                 T0 + timedelta(seconds=i))
        assert sender.flush() == 150
    finally:
        httpd.shutdown()
    batches = [(h, json.loads(b), b) for h, b in _Receiver.received]
    assert [len(events) for _, events, _ in batches] == [100, 100, 50]
    assert [events[0]["attemptNumber"] for _, events, _ in batches] == [0, 1, 0]
    for headers, events, raw in batches:
        assert Signature.is_valid(
            signature=headers["X-HubSpot-Signature-v3"], client_secret="s3cret",
            request_body=raw.decode(), http_uri=url, http_method="POST",
            signature_version="v3", timestamp=headers["X-HubSpot-Request-Timestamp"])
        assert events[0]["subscriptionType"] == "contact.propertyChange"
    delivered = {e["eventId"] for _, events, _ in batches[1:] for e in events}
    assert len(delivered) == 150
    assert sign_v3("k", "POST", url, b"[]", 1) != sign_v3("k", "POST", url, b"[]", 2)
