"""The HubSpot connector against the sandbox portal: the real client over a real socket."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import ConnectorError, Cursor
from connectors.hubspot import STREAMS, HubSpotConnector
from connectors.hubspot.connector import SEARCHED
from connectors.records import (
    AccountRecord,
    ActivityRecord,
    FieldChangeRecord,
    Malformed,
    OpportunityRecord,
    OwnerRecord,
    PersonRecord,
)
from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate_world
from connectors.sandbox.hubspot_app import start_hubspot
from connectors.sandbox.server import RunningServer
from connectors.sandbox.world import World
from service.settings import HubSpotSettings

Read = tuple[dict[str, list[Any]], dict[str, Cursor]]
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
EPOCH = Cursor(value="0")  # a saved cursor at the epoch: an incremental read of everything
TYPE_OF = {
    "companies": AccountRecord, "contacts": PersonRecord, "deals": OpportunityRecord,
    "calls": ActivityRecord, "emails": ActivityRecord, "meetings": ActivityRecord,
}


# -- fixtures: worlds, servers, connectors ----------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    """The generated portal plus one row of each malformed kind, shared read-only."""
    world = generate_world(seed=7, people=300)
    at = world.truth["anchor"] - timedelta(days=3)
    hs, truth = world.hubspot, world.truth
    junk = [
        ("contacts", {"email": "not-an-email", "firstname": "Bad"}, "invalid email"),
        ("contacts", {"jobtitle": "Ghost"}, "missing email and name"),
        ("contacts", {"email": "old@example.com", "createdate": "1899-12-31T00:00:00.000Z"},
         "impossible createdate"),
        ("deals", {"dealname": "Ancient", "closedate": "1970-01-01T00:00:00.000Z"},
         "impossible closedate"),
    ]
    for object_type, props, reason in junk:
        rec = hs.insert(object_type, props, at=at)
        truth["malformed"].append(("hubspot", object_type, rec["id"], reason))
        truth["hubspot_live"][object_type] += 1
    return world


@pytest.fixture(scope="module")
def portal(world: World) -> Iterator[tuple[RunningServer, Faults]]:
    faults = Faults()
    server = start_hubspot(world, faults, port=0)
    yield server, faults
    server.stop()


@pytest.fixture(scope="module")
def clean(portal: tuple[RunningServer, Faults]) -> Read:
    """One full read of the generated portal, with no faults."""
    return read_all(connect(portal[0]))


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start a sandbox for a world built in the test; stopped afterwards."""
    started: list[RunningServer] = []

    def start(world: World, faults: Faults | None = None) -> RunningServer:
        server = start_hubspot(world, faults or Faults(), port=0)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def connect(server: RunningServer, token: str | None = None, **kwargs: Any) -> HubSpotConnector:
    settings = HubSpotSettings(access_token=token or server.access_token, base_url=server.url)
    kwargs.setdefault("retry_wait_seconds", 0.01)
    return HubSpotConnector(settings, **kwargs)


def read_all(conn: HubSpotConnector, cursors: dict[str, Cursor] | None = None,
             streams: list[str] | None = None) -> Read:
    """Every stream in order, as a sync run would: records per stream and the last cursors."""
    records: dict[str, list[Any]] = {}
    saved: dict[str, Cursor] = {}
    for stream in streams or conn.streams():
        start = (cursors or {}).get(stream)
        records[stream] = []
        for page in conn.read(stream, start):
            records[stream].extend(page.records)
            saved[stream] = page.cursor
        saved.setdefault(stream, start or Cursor())
    return records, saved


def dumps(records: list[Any]) -> list[str]:
    """Records as comparable text, order-free (fault runs may re-read a page)."""
    return sorted({r.model_dump_json() for r in records})


def contacts_world(n: int, *, stamps: int, start: datetime = T0) -> World:
    """``n`` contacts spread over ``stamps`` distinct modification instants."""
    world = World(clock=lambda: start + timedelta(days=1))
    per = -(-n // stamps)
    for i in range(n):
        world.hubspot.insert("contacts", {
            "email": f"person{i}@example.com", "firstname": "P", "lastname": str(i),
        }, at=start + timedelta(seconds=i // per))
    return world


# -- full and incremental reads ---------------------------------------------------------


def test_streams_in_dependency_order(portal: tuple[RunningServer, Faults]) -> None:
    conn = connect(portal[0])
    assert conn.streams() == STREAMS
    assert conn.streams().index("owners") < conn.streams().index("contacts")
    assert conn.streams().index("companies") < conn.streams().index("contacts")
    conn.check()
    assert conn.api_calls == 1


def test_full_read_matches_live_counts(world: World, clean: Read) -> None:
    records, _ = clean
    live = world.truth["hubspot_live"]
    bad = {(obj, rid) for src, obj, rid, _ in world.truth["malformed"] if src == "hubspot"}
    for stream, record_type in TYPE_OF.items():
        rows = [r for r in records[stream]
                if r.object == stream and not getattr(r, "deleted", False)]
        good = [r for r in rows if isinstance(r, record_type)]
        malformed = [r for r in rows if isinstance(r, Malformed)]
        assert len(good) + len(malformed) == live.get(stream, 0), stream
        assert len({r.external_id for r in rows}) == len(rows), f"{stream} read twice"
    quarantined = {(r.object, r.external_id) for stream in TYPE_OF for r in records[stream]
                   if isinstance(r, Malformed)}
    assert quarantined == bad
    owners = [r for r in records["owners"] if isinstance(r, OwnerRecord)]
    assert len(owners) == len(world.hubspot.owners)


def test_contacts_carry_associations_xrefs_and_history(world: World, clean: Read) -> None:
    records, _ = clean
    people = {r.external_id: r for r in records["contacts"]
              if isinstance(r, PersonRecord) and not r.deleted}
    links = world.hubspot.associations.get(("contacts", "companies"), {})
    for cid, person in people.items():
        expected = links.get(cid)
        if expected:
            assert person.account_key == f"hubspot:companies:{expected[0][0]}"
        props = world.hubspot.table("contacts")[cid]["properties"]
        if props.get("salesforceleadid"):
            assert f"salesforce:Lead:{props['salesforceleadid']}" in person.xrefs
        if props.get("hs_lead_status") in ("UNQUALIFIED", "BAD_TIMING"):
            assert person.status_reason == props["hs_lead_status"]
    changes = [r for r in records["contacts"] if isinstance(r, FieldChangeRecord)]
    assert {c.field for c in changes} == {"status", "lifecycle_stage", "score"}
    assert all(c.record_key.removeprefix("hubspot:contacts:") in people for c in changes)
    touches = Counter(r.kind for r in records["contacts"] if isinstance(r, ActivityRecord))
    assert touches["form_submission"] > 0 and touches["web_visit"] > 0
    # history records are built without validation (their values are typed as made): each
    # must still be one the model would accept, with aware times
    for rec in records["contacts"]:
        if isinstance(rec, FieldChangeRecord | ActivityRecord):
            assert type(rec).model_validate(rec.model_dump()) == rec
            assert rec.at.tzinfo is not None and rec.modstamp == rec.at
    deals = [r for r in records["deals"] if isinstance(r, OpportunityRecord)]
    assert deals and all(d.person_keys for d in deals)
    calls = [r for r in records["calls"] if isinstance(r, ActivityRecord)]
    assert calls and all(c.person_key and c.kind == "call" for c in calls)


def test_second_read_only_rereads_the_overlap(
    portal: tuple[RunningServer, Faults], clean: Read
) -> None:
    _, cursors = clean
    again, after = read_all(connect(portal[0]), cursors)
    overlap = timedelta(minutes=2)
    for stream in STREAMS:
        if not cursors[stream].value:
            continue
        floor = datetime.fromtimestamp(int(cursors[stream].value) / 1000, UTC) - overlap
        for record in again[stream]:
            if isinstance(record, PersonRecord | AccountRecord | OpportunityRecord | OwnerRecord):
                assert record.modstamp >= floor, (stream, record.external_id)
        assert after[stream].value == cursors[stream].value
    # the archive pass lists every archived row and keeps those inside the overlap (the
    # generated world may hold a single one, its latest)
    floor = datetime.fromtimestamp(int(cursors["archived"].value) / 1000, UTC) - overlap
    assert sorted(r.external_id for r in again["archived"]) == sorted(
        r.external_id for r in clean[0]["archived"] if r.modstamp >= floor)
    total = sum(len(v) for v in again.values())
    assert total < sum(len(v) for v in clean[0].values()) // 10


def test_change_in_world_appears_next_read(serve: Any) -> None:
    world = generate_world(seed=11, people=60)
    server = serve(world)
    conn = connect(server)
    _, cursors = read_all(conn)
    cid = next(r["id"] for r in world.hubspot.table("contacts").values()
               if not r["archived"] and r["properties"].get("email") != "not-an-email"
               and r["properties"].get("email"))
    with world.lock:
        world.hubspot.update("contacts", cid, {"jobtitle": "Chief Truce Officer",
                                               "hs_lead_status": "BAD_TIMING"},
                             at=world.clock())
    records, _ = read_all(conn, cursors, ["contacts"])
    person = next(r for r in records["contacts"]
                  if isinstance(r, PersonRecord) and r.external_id == cid)
    assert person.title == "Chief Truce Officer"
    assert person.status_reason == "BAD_TIMING"
    change = [r for r in records["contacts"] if isinstance(r, FieldChangeRecord)
              and r.record_key == f"hubspot:contacts:{cid}" and r.new_value == "BAD_TIMING"]
    assert len(change) == 1


def test_archived_and_merged_contacts(world: World, clean: Read) -> None:
    records, _ = clean
    archived = {r.external_id for r in records["archived"]
                if r.deleted and r.object == "contacts"}
    expected = {rid for src, obj, rid in world.truth["deleted"]
                if src == "hubspot" and obj == "contacts"}
    assert expected and expected <= archived
    merged = {(r.external_id, r.merged_into) for r in records["contacts"]
              if isinstance(r, PersonRecord) and r.deleted}
    expected_merges = {(loser, survivor) for src, obj, loser, survivor in world.truth["merged"]
                       if src == "hubspot"}
    assert expected_merges and expected_merges <= merged


def test_archive_after_cursor_arrives_once(serve: Any) -> None:
    world = contacts_world(12, stamps=12)
    server = serve(world)
    conn = connect(server)
    _, cursors = read_all(conn, streams=["contacts", "archived"])
    world.hubspot.archive("contacts", "1005", at=T0 + timedelta(hours=2))
    records, cursors = read_all(conn, cursors, ["contacts", "archived"])
    assert [(r.external_id, r.deleted) for r in records["archived"]] == [("1005", True)]
    later, _ = read_all(conn, cursors, ["archived"])
    assert [r.external_id for r in later["archived"]] == ["1005"]  # within the overlap
    world.hubspot.archive("contacts", "1006", at=T0 + timedelta(hours=3))
    last, cursors = read_all(conn, cursors, ["archived"])
    assert {r.external_id for r in last["archived"]} == {"1005", "1006"}
    final, _ = read_all(conn, cursors, ["archived"])
    assert [r.external_id for r in final["archived"]] == ["1006"]  # 1005 is an hour older


def test_full_list_read_matches_a_search_from_the_epoch(
    portal: tuple[RunningServer, Faults], clean: Read
) -> None:
    records, cursors = clean
    searched, after = read_all(connect(portal[0]), {s: EPOCH for s in SEARCHED},
                               list(SEARCHED))
    for stream in SEARCHED:
        assert dumps(records[stream]) == dumps(searched[stream]), stream
        if cursors[stream].value is not None:
            assert cursors[stream].value == after[stream].value, stream
        assert not cursors[stream].state, stream


def test_a_listing_stopped_halfway_resumes_from_its_page(serve: Any) -> None:
    world = contacts_world(230, stamps=7)
    server = serve(world)
    conn = connect(server, page_size=40)
    pages = conn.read("contacts", None)
    first = next(pages)
    assert first.cursor.state["list_after"] and first.cursor.value is None
    resumed = [r.external_id for p in conn.read("contacts", first.cursor) for r in p.records]
    seen = [r.external_id for r in first.records] + resumed
    assert sorted(seen) == sorted(world.hubspot.table("contacts"))
    newest = max(r["updatedAt"] for r in world.hubspot.table("contacts").values())
    last = list(conn.read("contacts", first.cursor))[-1].cursor
    assert last.value == str(int(newest.timestamp() * 1000)) and not last.state


# -- slicing past the 10,000-result search cap and timestamp ties -----------------------
# Searches start from a saved cursor (here the epoch): a read with none lists instead.


@pytest.mark.slow
def test_window_over_ten_thousand_changes(serve: Any) -> None:
    world = contacts_world(10_500, stamps=30)
    server = serve(world)
    conn = connect(server)
    seen = Counter(r.external_id for page in conn.read("contacts", EPOCH) for r in page.records
                   if isinstance(r, PersonRecord))
    assert set(seen) == set(world.hubspot.table("contacts"))


def test_whole_slice_at_one_instant(serve: Any) -> None:
    world = contacts_world(2_300, stamps=1)
    server = serve(world)
    conn = connect(server, page_size=100)
    pages = list(conn.read("contacts", EPOCH))
    seen = Counter(r.external_id for p in pages for r in p.records if isinstance(r, PersonRecord))
    assert set(seen) == set(world.hubspot.table("contacts"))
    assert max(seen.values()) == 1
    assert pages[-1].cursor.value == str(int(T0.timestamp() * 1000))


def _counting_searches(conn: HubSpotConnector) -> list[int]:
    """How many rows each search of the connector answered, in order."""
    answered: list[int] = []
    search = conn.client.objects_search.do_search

    def counted(*args: Any, **kwargs: Any) -> Any:
        answer = search(*args, **kwargs)  # the raw response: its body is read once, then kept
        answered.append(len(json.loads(answer.data)["results"]))
        return answer

    conn.client.objects_search.do_search = counted  # type: ignore[method-assign]
    return answered


@pytest.mark.parametrize("later", [0, 10])
def test_an_instant_walked_to_its_end_spends_no_search_on_an_empty_answer(
    serve: Any, later: int
) -> None:
    """Searches are limited to four a second: a walk of one instant that HubSpot's totals
    show nothing follows makes no search for what follows; rows that do follow arrive."""
    world = contacts_world(50, stamps=1)
    for i in range(400 + later):
        at = T0 + timedelta(seconds=1 if i < 400 else 2)
        world.hubspot.insert("contacts", {"email": f"tie{i}@example.com", "firstname": "T",
                                          "lastname": str(i)}, at=at)
    conn = connect(serve(world), page_size=100)
    answered = _counting_searches(conn)
    seen = Counter(r.external_id for p in conn.read("contacts", EPOCH) for r in p.records
                   if isinstance(r, PersonRecord))
    assert set(seen) == set(world.hubspot.table("contacts")) and max(seen.values()) == 1
    assert 0 not in answered
    # the first page is half at the 400-row instant: its walk starts with the next search
    assert len(answered) == (5 if later == 0 else 6)


def test_a_bulk_update_after_the_cursor_is_walked_by_id_at_once(serve: Any) -> None:
    """A page from the cursor all at one later instant: the walk of that instant by id
    starts with the next search, not after a search from the instant answering it again."""
    world = contacts_world(50, stamps=1)
    bulk = T0 + timedelta(minutes=10)
    for i in range(250):
        world.hubspot.insert("contacts", {"email": f"bulk{i}@example.com", "firstname": "B",
                                          "lastname": str(i)}, at=bulk)
    conn = connect(serve(world), page_size=100)
    answered = _counting_searches(conn)
    cursor = Cursor(str(int((T0 + timedelta(minutes=5)).timestamp() * 1000)), "0")
    seen = Counter(r.external_id for p in conn.read("contacts", cursor) for r in p.records
                   if isinstance(r, PersonRecord))
    bulked = {rid for rid, r in world.hubspot.table("contacts").items() if r["updatedAt"] == bulk}
    assert set(seen) == bulked and max(seen.values()) == 1
    # from the cursor (100 at the instant), then the instant by id: 100, 100, 50
    assert answered == [100, 100, 100, 50]


def _bulk_world(older: int, bulk: int, later: int) -> tuple[Any, datetime]:
    """``older`` rows at their own instants after the cursor, ``bulk`` rows at one instant,
    then ``later`` rows at their own instants."""
    world = contacts_world(50, stamps=1)
    at = T0 + timedelta(minutes=10)
    for i in range(older + bulk + later):
        when = at + timedelta(milliseconds=i - older if i < older or i >= older + bulk else 0)
        world.hubspot.insert("contacts", {"email": f"b{i}@example.com", "firstname": "B",
                                          "lastname": str(i)}, at=when)
    return world, at


@pytest.mark.parametrize(("older", "bulk", "later", "searches"), [
    (30, 250, 0, [100, 100, 100, 50]),  # the walk's total shows nothing follows
    (30, 80, 40, [100, 80, 40]),  # an instant of less than a page, then rows after it
    (60, 45, 10, [100, 55]),  # a page mostly before the instant: a window from it
])
def test_a_page_mostly_at_one_instant_walks_it_by_id_at_once(
    serve: Any, older: int, bulk: int, later: int, searches: list[int]
) -> None:
    """A bulk update behind a few older rows: the page from the cursor is mostly at the bulk's
    instant, so the walk of that instant starts with the next search instead of after a
    search from the instant answering a page at it again (five searches were four)."""
    world, _ = _bulk_world(older, bulk, later)
    conn = connect(serve(world), page_size=100)
    answered = _counting_searches(conn)
    cursor = Cursor(str(int((T0 + timedelta(minutes=5)).timestamp() * 1000)), "0")
    seen = Counter(r.external_id for p in conn.read("contacts", cursor) for r in p.records
                   if isinstance(r, PersonRecord))
    after = {rid for rid, r in world.hubspot.table("contacts").items()
             if r["updatedAt"] > T0 + timedelta(minutes=5)}
    assert set(seen) == after and max(seen.values()) == 1
    assert answered == searches


def test_searches_stay_under_hubspots_five_a_second(serve: Any) -> None:
    """The sandbox answers a sixth search within a second with 429, as HubSpot does."""
    conn = connect(serve(contacts_world(10, stamps=10)), page_size=1)
    pages = list(conn.read("contacts", EPOCH))
    assert sum(len(p.records) for p in pages) >= 10  # ten searches at least, one row each
    assert conn.client.rate_limited == 0


def test_ties_across_page_and_slice_boundaries(serve: Any) -> None:
    world = contacts_world(31, stamps=10)
    server = serve(world)
    conn = connect(server, page_size=4)
    seen = [r.external_id for page in conn.read("contacts", EPOCH) for r in page.records
            if isinstance(r, PersonRecord)]
    assert set(seen) == set(world.hubspot.table("contacts"))
    assert len(seen) == len(set(seen))
    # a saved cursor in the middle of a tie: the rest of the tie still arrives
    mid = world.hubspot.table("contacts")["1010"]
    stamp = int(mid["updatedAt"].timestamp() * 1000)
    resumed = [r.external_id for p in conn.read("contacts", Cursor(str(stamp), "1010"))
               for r in p.records if isinstance(r, PersonRecord)]
    same_instant = {rid for rid, r in world.hubspot.table("contacts").items()
                    if r["updatedAt"] == mid["updatedAt"]}
    assert same_instant <= set(resumed)


# -- faults: rate limits, 5xx and dropped connections -----------------------------------


def _faulted_read(world: World, faults: Faults, serve: Any, **kwargs: Any
                  ) -> tuple[Read, HubSpotConnector]:
    conn = connect(serve(world, faults), **kwargs)
    return read_all(conn), conn


def test_server_errors_and_drops_end_in_the_same_records(serve: Any) -> None:
    world = generate_world(seed=5, people=20)
    (clean_records, clean_cursors), clean_conn = _faulted_read(world, Faults(), serve)
    for faults in (Faults(fail_every=3), Faults(drop_every=4)):
        (records, cursors), conn = _faulted_read(world, faults, serve, max_attempts=4)
        for stream in STREAMS:
            assert dumps(records[stream]) == dumps(clean_records[stream]), stream
        assert cursors == clean_cursors
        assert conn.api_calls > clean_conn.api_calls  # the faults did fire and were retried


def test_rate_limits_end_in_the_same_records(serve: Any) -> None:
    """A 10-second budget smaller than one sync, and a tighter search bucket than ours."""
    world = generate_world(seed=5, people=20)
    (clean_records, _), _ = _faulted_read(world, Faults(), serve)
    faults = Faults(ten_second_limit=12, search_per_second=2)
    (records, _), conn = _faulted_read(world, faults, serve, retry_wait_seconds=1.0)
    for stream in STREAMS:
        assert dumps(records[stream]) == dumps(clean_records[stream]), stream
    assert conn.client.rate_limited > 0


def test_connection_refused_says_where(serve: Any) -> None:
    conn = HubSpotConnector(HubSpotSettings(access_token="t", base_url="http://127.0.0.1:9"),
                            retry_wait_seconds=0.001, max_attempts=2)
    with pytest.raises(ConnectorError, match="TRUCE_HUBSPOT_BASE_URL"):
        conn.check()
    assert conn.api_calls == 2


# -- configuration errors, refresh and write-back ---------------------------------------


def test_bad_token_fails_fast_with_advice(portal: tuple[RunningServer, Faults]) -> None:
    conn = connect(portal[0], token="pat-na1-not-a-real-token")
    with pytest.raises(ConnectorError, match="TRUCE_HUBSPOT_ACCESS_TOKEN"):
        conn.check()
    with pytest.raises(ConnectorError, match="TRUCE_HUBSPOT_ACCESS_TOKEN"):
        next(conn.read("contacts", None))
    assert conn.api_calls == 2


def test_missing_token_fails_at_construction() -> None:
    with pytest.raises(ConnectorError, match="TRUCE_HUBSPOT_ACCESS_TOKEN"):
        HubSpotConnector(HubSpotSettings(base_url="http://127.0.0.1:9"))


def test_unknown_object_is_a_configuration_error(portal: tuple[RunningServer, Faults]) -> None:
    conn = connect(portal[0])
    with pytest.raises(ConnectorError, match="unknown HubSpot stream"):
        next(conn.read("leads_and_more", None))
    with pytest.raises(ConnectorError, match="widgets"):
        conn.client.call(conn.client.objects_basic.get_page, "widgets", limit=1, what="widgets")


def test_refresh_reads_named_rows(world: World, portal: tuple[RunningServer, Faults]) -> None:
    conn = connect(portal[0])
    contacts = [r for r in world.hubspot.table("contacts").values() if not r["archived"]]
    ids = [r["id"] for r in contacts[:3]]
    gone = next(r["id"] for r in world.hubspot.table("contacts").values() if r["archived"])
    records = conn.refresh("contacts", [*ids, gone])
    people = {r.external_id: r for r in records if isinstance(r, PersonRecord | Malformed)}
    assert set(ids) <= set(people)
    assert isinstance(people[gone], PersonRecord) and people[gone].deleted
    assert any(isinstance(r, FieldChangeRecord) for r in records)
    # a webhook naming a merged-away contact: HubSpot answers the survivor
    loser, survivor = next((lo, su) for src, _, lo, su in world.truth["merged"]
                           if src == "hubspot")
    merged = [r for r in conn.refresh("contacts", [loser]) if isinstance(r, PersonRecord)]
    assert {(r.external_id, r.merged_into) for r in merged} >= {(survivor, None),
                                                                (loser, survivor)}


def test_create_task_lands_on_the_contact(serve: Any) -> None:
    world = contacts_world(3, stamps=1)
    conn = connect(serve(world))
    due = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
    task_id = conn.create_task(contact_id="1002", owner_id=None, subject="SLA breached",
                               body="Nobody has called this lead in 4 business hours", due=due)
    task = world.hubspot.table("tasks")[task_id]
    assert task["properties"]["hs_task_subject"] == "SLA breached"
    assert task["properties"]["hs_timestamp"].startswith("2026-01-05T17:00:00")
    assert ("1002", 204) in world.hubspot.associations[("tasks", "contacts")][task_id]
