"""The Salesforce connector against the sandbox org: real simple-salesforce, real HTTPS socket."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
import trustme
from simple_salesforce import Salesforce

from connectors.base import ConnectorError, Cursor, StopEarly
from connectors.records import AnyRecord, Malformed, PersonRecord
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.salesforce_app import start_salesforce
from connectors.sandbox.world import World
from service.settings import SalesforceSettings

Record = AnyRecord | Malformed
Make = Callable[..., SalesforceConnector]
STREAM_OBJECTS = {
    "users": "User", "accounts": "Account", "campaigns": "Campaign", "leads": "Lead",
    "contacts": "Contact", "opportunities": "Opportunity", "tasks": "Task", "events": "Event",
    "lead_history": "LeadHistory",
}


def read_all(connector: SalesforceConnector, stream: str,
             cursor: Cursor | None = None) -> tuple[list[Record], Cursor]:
    pages = list(connector.read(stream, cursor))
    return [r for p in pages for r in p.records], pages[-1].cursor


def by_id(records: list[Record]) -> dict[str, Record]:
    return {r.external_id: r for r in records}


def live_lead_ids(world: World) -> list[str]:
    return sorted(i for i, r in world.salesforce.table("Lead").items()
                  if not r["IsDeleted"] and r.get("LastName") and "@" in (r.get("Email") or "@"))


def test_answers_parse_as_the_library_parses_them(sf_connector: Make) -> None:
    """Query answers are parsed by orjson; they must equal simple-salesforce's own parse
    (amounts as numbers, nulls, nested attributes), as plain dicts."""
    sf = sf_connector().client.sf
    soql = "SELECT Id, Name, Amount, CloseDate, StageName, AccountId FROM Opportunity"
    answer = sf._call_salesforce("GET", sf.base_url + "queryAll/", params={"q": soql})
    ours = sf.parse_result_to_json(answer)
    theirs = Salesforce.parse_result_to_json(sf, answer)
    assert ours["records"] and ours == theirs
    assert type(ours) is dict and type(ours["records"][0]["attributes"]) is dict
    assert any(isinstance(r["Amount"], float | int) for r in ours["records"])


def test_streams_are_in_dependency_order(sf_connector: Make) -> None:
    assert sf_connector().streams() == list(STREAM_OBJECTS)


def test_a_full_read_matches_the_worlds_live_counts(sf_world: World, sf_connector: Make) -> None:
    connector = sf_connector()
    connector.check()
    truth = sf_world.truth
    bad = {(obj, rid) for src, obj, rid, _ in truth["malformed"] if src == "salesforce"}
    read: dict[str, dict[str, Record]] = {}
    for stream, sobject in STREAM_OBJECTS.items():
        records, _ = read_all(connector, stream)
        malformed = {(r.object, r.external_id) for r in records if isinstance(r, Malformed)}
        live = {r.key for r in records if not isinstance(r, Malformed) and not r.deleted}
        assert malformed == {b for b in bad if b[0] == sobject}, stream
        assert len(live) + len(malformed) == truth["salesforce_live"].get(sobject, 0), stream
        read[sobject] = by_id(records)
    merged = [m for m in truth["merged"] if m[0] == "salesforce"]
    deleted = [d for d in truth["deleted"] if d[0] == "salesforce"]
    assert merged and deleted
    for _, sobject, loser, master in merged:
        rec = read[sobject][loser]
        assert rec.deleted and rec.merged_into == master
    for _, sobject, rid in deleted:
        assert read[sobject][rid].deleted
    assert all(isinstance(r, PersonRecord) and r.kind == "lead"
               for r in read["Lead"].values() if not isinstance(r, Malformed))
    converted = [r for r in read["Lead"].values() if getattr(r, "converted_contact_key", None)]
    assert converted and all(r.converted_at and r.converted_at.hour == 0 for r in converted)
    assert any(r.person_keys for r in read["Opportunity"].values() if hasattr(r, "person_keys"))
    assert any(getattr(r, "is_customer", False) for r in read["Account"].values())
    assert {r.field for r in read["LeadHistory"].values()} == {"status"}
    assert connector.api_calls > 0 and connector.api_usage is not None


def test_a_second_read_from_the_saved_cursors_only_rereads_the_lookback(
        sf_connector: Make) -> None:
    connector = sf_connector()
    for stream in connector.streams():
        first, cursor = read_all(connector, stream)
        again, cursor2 = read_all(connector, stream, cursor)
        assert cursor.value is not None
        since = (datetime.fromisoformat(cursor.value) - connector.lookback).replace(microsecond=0)
        in_lookback = {r.key for r in first if r.modstamp and r.modstamp >= since}
        assert {r.key for r in again} == in_lookback, stream
        assert (cursor2.value, cursor2.tie_break) == (cursor.value, cursor.tie_break)


def test_a_change_and_a_new_lead_appear_on_the_next_read(sf_world: World,
                                                          sf_connector: Make) -> None:
    connector = sf_connector()
    _, cursor = read_all(connector, "leads")
    org, lead_id = sf_world.salesforce, live_lead_ids(sf_world)[0]
    with sf_world.lock:
        org.update("Lead", lead_id, {"Title": "Chief Truce Officer"}, at=sf_world.clock())
        new = org.insert("Lead", {"LastName": "Newman", "Company": "Newco",
                                  "Email": "n@newco.example"}, at=sf_world.clock())
    again, cursor2 = read_all(connector, "leads", cursor)
    got = by_id(again)
    assert got[lead_id].title == "Chief Truce Officer"
    assert got[new["Id"]].email == "n@newco.example"
    assert datetime.fromisoformat(cursor2.value or "") > datetime.fromisoformat(cursor.value or "")


def test_a_deletion_and_a_merge_arrive_as_deleted_and_merged_into(sf_world: World,
                                                                  sf_connector: Make) -> None:
    connector = sf_connector()
    _, cursor = read_all(connector, "leads")
    gone, master, loser = live_lead_ids(sf_world)[:3]
    with sf_world.lock:
        sf_world.salesforce.delete("Lead", gone, at=sf_world.clock())
        sf_world.salesforce.merge("Lead", master, loser, at=sf_world.clock())
    got = by_id(read_all(connector, "leads", cursor)[0])
    assert got[gone].deleted and got[gone].merged_into is None
    assert got[loser].deleted and got[loser].merged_into == master
    assert not got[master].deleted


def test_ties_on_one_modstamp_across_a_page_boundary_lose_nothing(
        sf_world: World, sf_connector: Make) -> None:
    leads = sorted(sf_world.salesforce.table("Lead").values(),
                   key=lambda r: (r["SystemModstamp"], r["Id"]))
    assert len(leads) > 210
    with sf_world.lock:
        for rec in leads[195:206]:  # 11 rows share one stamp around row 200
            rec["SystemModstamp"] = leads[195]["SystemModstamp"]
            sf_world.salesforce.table("Lead")[rec["Id"]] = rec  # stored again: re-indexed
    everything = set(sf_world.salesforce.table("Lead"))
    tied = {r["Id"] for r in leads[195:206]}
    pages = list(sf_connector(batch_size=200).read("leads", None))
    first = {r.external_id for r in pages[0].records}
    assert len(pages[0].records) == 200 and tied & first and tied - first
    assert {r.external_id for p in pages for r in p.records} == everything
    # a run that stopped after the first page resumes mid-tie without a gap
    resumed, _ = read_all(sf_connector(batch_size=200), "leads", pages[0].cursor)
    assert first | {r.external_id for r in resumed} == everything


def test_503s_and_dropped_connections_still_give_the_same_records(sf_faults: Faults,
                                                                  sf_connector: Make) -> None:
    clean = {s: read_all(sf_connector(batch_size=200), s)[0] for s in STREAM_OBJECTS}
    sf_faults.fail_every, sf_faults.drop_every = 3, 7
    calls_before = sf_faults.calls
    faulty_connector = sf_connector("password", batch_size=200)
    for stream, records in clean.items():
        faulty, _ = read_all(faulty_connector, stream)
        assert [r.model_dump() for r in faulty] == [r.model_dump() for r in records], stream
    assert sf_faults.calls - calls_before > 20


@pytest.mark.parametrize("mode", ["password", "soap", "client"])
def test_an_expired_session_logs_in_again_mid_read(mode: str, sf_world: World, sf_faults: Faults,
                                                   sf_timer, sf_connector: Make) -> None:
    sf_faults.token_ttl_seconds = 60
    connector = sf_connector(mode, batch_size=200)
    pages = connector.read("leads", None)
    seen = {r.external_id for r in next(pages).records}
    sf_timer.now += 120
    seen |= {r.external_id for p in pages for r in p.records}
    assert seen == set(sf_world.salesforce.table("Lead"))


def test_an_expired_bare_token_says_what_to_set(sf_faults: Faults, sf_timer,
                                                sf_connector: Make) -> None:
    sf_faults.token_ttl_seconds = 60
    sf_timer.now += 120
    with pytest.raises(ConnectorError, match="TRUCE_SALESFORCE_ACCESS_TOKEN"):
        list(sf_connector("token").read("leads", None))


def test_the_budget_reserve_stops_after_a_page_and_a_resumed_read_finishes(
        sf_world: World, sf_faults: Faults, sf_connector: Make) -> None:
    sf_faults.daily_limit = 10_000
    connector = sf_connector(batch_size=200)
    connector.check()
    assert connector.api_usage is not None
    used, total = connector.api_usage
    connector.api_reserve = total - used - 1  # the describe fits, the query does not
    pages = []
    with pytest.raises(StopEarly, match="below reserve: used"):
        for page in connector.read("tasks", None):
            pages.append(page)
    assert len(pages) == 1 and len(pages[0].records) == 200
    rest, _ = read_all(sf_connector(batch_size=200), "tasks", pages[0].cursor)
    seen = {r.external_id for r in pages[0].records} | {r.external_id for r in rest}
    assert seen == set(sf_world.salesforce.table("Task"))


def test_an_expired_query_locator_reruns_the_query_from_the_last_row(
        sf_world: World, sf_timer, sf_connector: Make) -> None:
    pages = sf_connector(batch_size=200).read("leads", None)
    seen = {r.external_id for r in next(pages).records}
    sf_timer.now += 16 * 60  # the sandbox forgets idle locators after 15 minutes
    seen |= {r.external_id for p in pages for r in p.records}
    assert seen == set(sf_world.salesforce.table("Lead"))


def test_deletions_purged_from_the_recycle_bin_come_from_get_deleted(
        sf_world: World, sf_connector: Make) -> None:
    now = [sf_world.clock() - timedelta(minutes=10)]
    connector = sf_connector(clock=lambda: now[0])
    _, cursor = read_all(connector, "leads")
    lead_id = live_lead_ids(sf_world)[0]
    with sf_world.lock:
        sf_world.salesforce.delete("Lead", lead_id, at=sf_world.clock() - timedelta(minutes=3))
        sf_world.salesforce.table("Lead").pop(lead_id)  # the recycle bin was emptied
    now[0] = sf_world.clock()
    again, cursor2 = read_all(connector, "leads", cursor)
    tomb = by_id(again)[lead_id]
    assert isinstance(tomb, PersonRecord) and tomb.deleted and tomb.kind == "lead"
    assert cursor2.state.get("deleted_until")


def test_a_deletion_still_in_the_recycle_bin_arrives_once(
        sf_world: World, sf_connector: Make) -> None:
    """queryAll returns the deleted lead and getDeleted lists it too: the incremental read
    reports it once, not again as a tombstone."""
    now = [sf_world.clock() - timedelta(minutes=10)]
    connector = sf_connector(clock=lambda: now[0])
    _, cursor = read_all(connector, "leads")
    lead_id = live_lead_ids(sf_world)[0]
    with sf_world.lock:
        sf_world.salesforce.delete("Lead", lead_id, at=sf_world.clock() - timedelta(minutes=3))
    now[0] = sf_world.clock()
    again, _ = read_all(connector, "leads", cursor)
    mine = [r for r in again if r.external_id == lead_id]
    assert len(mine) == 1 and mine[0].deleted


def _describes(connector: SalesforceConnector) -> list[str]:
    """What the connector asks of the org's describe from now on."""
    asked: list[str] = []
    call = connector.client.call

    def counting(fn: Callable[..., object], *args: object, what: str = "", **kw: object) -> object:
        if what.startswith("object "):
            asked.append(what.removeprefix("object "))
        return call(fn, *args, what=what, **kw)

    connector.client.call = counting  # type: ignore[method-assign]
    return asked


def test_an_incremental_read_reuses_the_fields_the_full_read_described(
        sf_world: World, sf_connector: Make) -> None:
    _, cursor = read_all(sf_connector(), "leads")
    lead_id = live_lead_ids(sf_world)[0]
    with sf_world.lock:
        sf_world.salesforce.update("Lead", lead_id, {"Title": "CTO"}, at=sf_world.clock())
    connector = sf_connector()  # a later run, in a new process
    asked = _describes(connector)
    again, _ = read_all(connector, "leads", cursor)
    assert asked == []
    changed = by_id(again)[lead_id]
    assert isinstance(changed, PersonRecord) and changed.title == "CTO"


def test_a_remembered_field_the_org_no_longer_has_is_described_again(
        sf_connector: Make) -> None:
    records, cursor = read_all(sf_connector(), "leads")
    plan = dict(cursor.state["plan"], fields=[*cursor.state["plan"]["fields"], "Gone__c"])
    stale = Cursor(cursor.value, cursor.tie_break, {**cursor.state, "plan": plan})
    connector = sf_connector()
    asked = _describes(connector)
    again, after = read_all(connector, "leads", stale)
    assert asked == ["Lead"] and "Gone__c" not in after.state["plan"]["fields"]
    assert {r.external_id for r in again} <= {r.external_id for r in records}


def test_a_day_old_description_is_asked_again(sf_world: World, sf_connector: Make) -> None:
    _, cursor = read_all(sf_connector(), "leads")
    later = sf_world.clock() + timedelta(days=1, minutes=1)
    connector = sf_connector(clock=lambda: later)
    asked = _describes(connector)
    read_all(connector, "leads", cursor)
    assert asked == ["Lead"]


def test_create_task_writes_a_task_into_the_org(sf_world: World, sf_connector: Make) -> None:
    lead_id = live_lead_ids(sf_world)[0]
    owner_id = next(iter(sf_world.salesforce.table("User")))
    task_id = sf_connector().create_task(who_id=lead_id, owner_id=owner_id,
                                         subject="SLA breached: follow up",
                                         description="No touch within 4 business hours",
                                         due=date(2026, 3, 2))
    task = sf_world.salesforce.table("Task")[task_id]
    assert (task["WhoId"], task["OwnerId"], task["Subject"]) == (
        lead_id, owner_id, "SLA breached: follow up")
    assert task["ActivityDate"] == date(2026, 3, 2) and task["Status"] == "Not Started"


@pytest.mark.parametrize(("mode", "override", "hint"), [
    ("client", {"client_secret": "wrong"}, "TRUCE_SALESFORCE_CLIENT_SECRET"),
    ("password", {"password": "wrong"}, "TRUCE_SALESFORCE_PASSWORD"),
    ("soap", {"password": "wrong"}, "TRUCE_SALESFORCE_PASSWORD"),
])
def test_refused_credentials_fail_fast_naming_the_settings(
        mode: str, override: dict, hint: str, sf_settings, sf_faults: Faults,
        sf_connector: Make) -> None:
    connector = sf_connector(settings=sf_settings(mode, **override))
    with pytest.raises(ConnectorError, match=hint):
        connector.check()
    assert sf_faults.calls == 1  # no retries for a refusal


def test_configuration_errors_say_what_to_fix(sf_settings, sf_connector: Make,
                                              tmp_path) -> None:
    with pytest.raises(ConnectorError, match="not configured"):
        SalesforceConnector(SalesforceSettings()).check()
    connector = sf_connector()
    with pytest.raises(ConnectorError, match="INVALID_TYPE"):
        connector.client.call(lambda sf: sf.query("SELECT Id FROM Nope__c"), what="a query")
    with pytest.raises(ConnectorError, match="unknown Salesforce stream"):
        list(connector.read("widgets", None))
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    stranger = sf_connector(settings=sf_settings(ca_bundle=str(other_ca)))
    with pytest.raises(ConnectorError, match="TRUCE_SALESFORCE_CA_BUNDLE"):
        stranger.check()


def test_a_hand_built_org_without_custom_fields_maps_every_object() -> None:
    """Describe drives the fields: no Lead_Score__c in this org, and nothing breaks."""
    world = World()
    org, t0 = world.salesforce, datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    user = org.insert("User", {"Email": "rep@us.example", "Name": "Rep", "IsActive": True,
                               "TimeZoneSidKey": "Europe/Paris"}, at=t0)["Id"]
    acct = org.insert("Account", {"Name": "Acme", "Website": "https://www.acme.example/x",
                                  "Type": "Customer", "OwnerId": user}, at=t0)["Id"]
    camp = org.insert("Campaign", {"Name": "Webinar", "ActualCost": 1234.5}, at=t0)["Id"]
    contact = org.insert("Contact", {"LastName": "Ng", "AccountId": acct,
                                     "MailingCountry": "FR"}, at=t0)["Id"]
    lead = org.insert("Lead", {"LastName": "Ng", "Company": "Acme", "Email": "ng@acme.example",
                               "IsConverted": True, "ConvertedContactId": contact,
                               "ConvertedDate": date(2026, 1, 6), "Status": "Closed - Converted"},
                      at=t0)["Id"]
    early = org.insert("Lead", {"LastName": "Early", "Company": "X", "IsConverted": True,
                                "ConvertedDate": date(2025, 12, 1)}, at=t0)["Id"]
    bad_gone = org.insert("Lead", {"LastName": "Gone", "Email": "not-an-email"}, at=t0)["Id"]
    org.delete("Lead", bad_gone, at=t0 + timedelta(hours=1))
    opp = org.insert("Opportunity", {"Name": "Deal", "AccountId": acct, "CampaignId": camp,
                                     "CloseDate": date(2026, 2, 1), "StageName": "Prospecting"},
                     at=t0)["Id"]
    org.insert("OpportunityContactRole", {"OpportunityId": opp, "ContactId": contact}, at=t0)
    for kind, subtype in (("Call", None), ("Form Submission", None), (None, "Email"),
                          (None, None)):
        org.insert("Task", {"WhoId": lead, "Type": kind, "TaskSubtype": subtype}, at=t0)
    org.insert("Event", {"WhoId": contact, "StartDateTime": t0 + timedelta(days=1)}, at=t0)
    org.insert("LeadHistory", {"LeadId": lead, "Field": "Status", "OldValue": "Open - Not "
                               "Contacted", "NewValue": "Closed - Converted"}, at=t0)
    org.insert("LeadHistory", {"LeadId": lead, "Field": "Title", "NewValue": "CEO"}, at=t0)
    server = start_salesforce(world)
    connector = SalesforceConnector(SalesforceSettings(
        instance_url=server.url, access_token=server.access_token, ca_bundle=server.ca_path))
    try:
        got = {s: read_all(connector, s)[0] for s in STREAM_OBJECTS}
    finally:
        connector.close()
        server.stop()
    (owner,) = got["users"]
    assert owner.timezone == "Europe/Paris" and owner.active  # type: ignore[union-attr]
    (account,) = got["accounts"]
    assert account.domain == "acme.example" and account.is_customer  # type: ignore[union-attr]
    assert got["campaigns"][0].actual_cost == 1234.5  # type: ignore[union-attr]
    leads = by_id(got["leads"])
    assert isinstance(leads[early], Malformed) and "before CreatedDate" in leads[early].reason
    assert leads[bad_gone].deleted  # a deletion still arrives when its row would not map
    converted = leads[lead]
    assert isinstance(converted, PersonRecord) and converted.score is None
    assert converted.converted_contact_key == f"salesforce:Contact:{contact}"
    assert converted.converted_at == datetime(2026, 1, 6, tzinfo=UTC)
    assert got["contacts"][0].account_key == f"salesforce:Account:{acct}"  # type: ignore[union-attr]
    (deal,) = got["opportunities"]
    assert deal.person_keys == (f"salesforce:Contact:{contact}",)  # type: ignore[union-attr]
    assert deal.campaign_key == f"salesforce:Campaign:{camp}"  # type: ignore[union-attr]
    assert sorted(r.kind for r in got["tasks"]) == ["call", "email", "form_submission"]  # type: ignore[union-attr]
    (meeting,) = got["events"]
    assert meeting.kind == "meeting" and meeting.at == t0 + timedelta(days=1)  # type: ignore[union-attr]
    assert meeting.person_key == f"salesforce:Contact:{contact}"  # type: ignore[union-attr]
    (change,) = got["lead_history"]
    assert change.record_key == f"salesforce:Lead:{lead}"  # type: ignore[union-attr]
    assert change.new_value == "Closed - Converted"  # type: ignore[union-attr]
