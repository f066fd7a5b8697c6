"""The sandbox's record store: worlds larger than its cache still page, write and generate as
the dict-held worlds did."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest, SimplePublicObjectInput
from simple_salesforce import Salesforce

from connectors.sandbox import generator
from connectors.sandbox.faults import Faults
from connectors.sandbox.hubspot_app import start_hubspot
from connectors.sandbox.salesforce_app import start_salesforce
from connectors.sandbox.server import RunningServer
from connectors.sandbox.store import Store
from connectors.sandbox.world import HubSpotPortal, SalesforceOrg, World

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BASE = NOW - timedelta(days=2)
CACHE = 40  # records per table held in memory: far fewer than the tables hold
LEADS = 700


def bounded_world() -> World:
    store = Store(cache_limit=CACHE)
    return World(salesforce=SalesforceOrg(store=store), hubspot=HubSpotPortal(store=store),
                 clock=lambda: NOW)


def fill(world: World) -> None:
    """Leads seven to a second (ties across every page), inserted out of stamp order."""
    rng = random.Random(3)
    order = list(range(LEADS))
    rng.shuffle(order)
    for i in order:
        world.salesforce.insert("Lead", {"LastName": f"Lead{i:03d}", "Email": f"l{i}@x.com",
                                         "Status": "Open"}, at=BASE + timedelta(seconds=i // 7))
    for i in range(300):
        world.hubspot.insert("contacts", {"email": f"c{i}@x.com", "firstname": f"C{i}"},
                             at=BASE + timedelta(seconds=(299 - i) // 9))


@pytest.fixture()
def servers() -> Iterator[tuple[World, RunningServer, RunningServer, requests.Session]]:
    world = bounded_world()
    fill(world)
    sf = start_salesforce(world, Faults())
    hs = start_hubspot(world, Faults(search_per_second=0))
    http = requests.Session()
    http.verify, http.trust_env = sf.ca_path, False
    try:
        yield world, sf, hs, http
    finally:
        http.close()
        sf.stop()
        hs.stop()


def salesforce(server: RunningServer, http: requests.Session) -> Salesforce:
    return Salesforce(instance_url=server.url, session=http, session_id=server.access_token,
                      version="62.0")


def test_a_world_larger_than_the_cache_pages_every_lead_once_in_stamp_order(servers) -> None:
    world, sf_server, _, http = servers
    table = world.salesforce.table("Lead")
    assert len(table) == LEADS and len(table.cache) <= CACHE
    sf = salesforce(sf_server, http)
    rows = list(sf.query_all_iter("SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp "
                                  f">= {BASE.strftime('%Y-%m-%dT%H:%M:%SZ')} ORDER BY "
                                  "SystemModstamp, Id",
                                  headers={"Sforce-Query-Options": "batchSize=200"}))
    keys = [(r["SystemModstamp"], r["Id"]) for r in rows]
    assert keys == sorted(keys) and len({r["Id"] for r in rows}) == LEADS == len(rows)
    assert keys[199][0] == keys[200][0]  # a tie straddles the first page boundary
    # no ORDER BY: insertion order, as the dict-held org answered
    plain = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Lead")]
    assert plain == list(table)


def test_a_patch_is_visible_to_the_next_query_after_eviction(servers) -> None:
    world, sf_server, _, http = servers
    sf = salesforce(sf_server, http)
    lead_id = next(iter(world.salesforce.table("Lead")))
    sf.Lead.update(lead_id, {"Status": "Working"})
    for rec in world.salesforce.table("Lead").values():  # read everything: the lead is evicted
        assert rec["Id"]
    since = (NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = sf.query(f"SELECT Id, Status FROM Lead WHERE SystemModstamp >= {since}")
    assert [(r["Id"], r["Status"]) for r in found["records"]] == [(lead_id, "Working")]
    world.salesforce.delete("Lead", lead_id, at=NOW)
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == LEADS - 1
    assert sf.query("SELECT COUNT() FROM Lead", include_deleted=True)["totalSize"] == LEADS


def test_hubspot_list_and_search_page_a_bounded_world_and_see_updates(servers) -> None:
    world, _, hs_server, _ = servers
    api = HubSpot(access_token=hs_server.access_token, host=hs_server.url).crm.contacts
    listed, after = [], None
    while True:
        page = api.basic_api.get_page(limit=37, after=after)
        listed += [r.id for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert listed == sorted(world.hubspot.table("contacts"), key=int) and len(listed) == 300

    def search(after: int, gte: str = "0") -> object:
        return api.search_api.do_search(PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                         "value": gte}]}],
            sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            properties=["lastmodifieddate"], limit=100, after=str(after)))

    pages = [search(a) for a in (0, 100, 200)]
    found = [(r.properties["lastmodifieddate"], int(r.id)) for p in pages for r in p.results]
    assert pages[0].total == 300 and found == sorted(found) and len(set(found)) == 300
    api.basic_api.update("1001", SimplePublicObjectInput(properties={"firstname": "New"}))
    fresh = search(0, gte=str(int((NOW - timedelta(minutes=1)).timestamp() * 1000)))
    assert fresh.total == 1 and fresh.results[0].id == "1001"


def test_the_table_behaves_as_the_dict_it_replaced() -> None:
    org = SalesforceOrg(store=Store(cache_limit=4))
    ids = [org.insert("Task", {"Subject": f"t{i}"}, at=BASE)["Id"] for i in range(10)]
    table = org.table("Task")
    assert list(table) == ids and len(table) == 10 and ids[3] in table
    moved = table.pop(ids[3])
    table[ids[3]] = moved  # popped and stored again: last, as a dict puts it
    assert list(table)[-1] == ids[3] and len(table) == 10
    org.update("Task", ids[0], {"Subject": "changed"}, at=NOW)
    assert len(table.cache) <= 4 and table[ids[0]]["Subject"] == "changed"
    assert "missing" not in table and table.get("missing") is None


def test_an_on_disk_world_generates_the_same_company_as_an_in_memory_one(monkeypatch) -> None:
    anchor = datetime(2026, 3, 1, tzinfo=UTC)
    in_memory = generator.generate_world(seed=11, people=800, anchor=anchor)
    monkeypatch.setattr(generator, "ON_DISK_PEOPLE", 0)
    on_disk = generator.generate_world(seed=11, people=800, anchor=anchor)
    assert on_disk.salesforce.store.path != ":memory:"
    assert on_disk.truth == in_memory.truth
    for obj in ("Lead", "Contact", "LeadHistory", "Opportunity"):
        assert on_disk.salesforce.table(obj) == in_memory.salesforce.table(obj)
    assert on_disk.hubspot.table("contacts") == in_memory.hubspot.table("contacts")


def test_describe_sees_a_new_record_s_picklist_value(servers) -> None:
    """Describe answers from what it read last until the object's records change."""
    world, sf_server, _, http = servers
    sf = salesforce(sf_server, http)

    def statuses() -> set[str]:
        fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
        return {p["value"] for p in fields["Status"]["picklistValues"]}

    assert "Open" in statuses() and "Nurture - Revisit" not in statuses()
    world.salesforce.insert("Lead", {"LastName": "Late", "Email": "late@x.com",
                                     "Status": "Nurture - Revisit"}, at=NOW)
    assert "Nurture - Revisit" in statuses()


def test_reverse_links_follow_links_added_after_the_index_was_built_and_merges() -> None:
    """The sandbox answers a link from both ends; its reverse index is cached and must see
    every later link and merge (it once checked by counting every stored link per object,
    which made listing quadratic)."""
    from connectors.sandbox.hubspot_assoc import AssociationIndex

    portal = HubSpotPortal(store=Store())
    one, two = (portal.insert("contacts", {"email": f"{n}@x.com"}, at=NOW)["id"]
                for n in ("one", "two"))
    company = portal.insert("companies", {"name": "Acme"}, at=NOW)["id"]
    index = AssociationIndex(portal)

    def contacts_of_company() -> list[str]:
        return [to_id for to_id, _ in index.links("companies", company, "contacts")]

    assert contacts_of_company() == []
    portal.associate("contacts", one, "companies", company, 279)
    assert contacts_of_company() == [one]
    portal.associate("contacts", two, "companies", company, 279)
    assert contacts_of_company() == [one, two]
    portal.merge("contacts", one, two, at=NOW)
    portal.move_links("contacts", two, one)
    assert contacts_of_company() == [one]
