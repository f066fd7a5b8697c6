"""The Salesforce sandbox as the unmodified simple-salesforce client sees it, over real TLS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.sandbox.faults import Faults
from connectors.sandbox.salesforce_app import start_salesforce
from connectors.sandbox.server import RunningServer
from connectors.sandbox.world import World

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BASE = NOW - timedelta(days=2)
LEADS = 600
TIE = 7  # leads per SystemModstamp second, so ties straddle every 200-row page
SF_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


@dataclass
class FakeTimer:
    """Monotonic time the test moves by hand, for token and locator expiry."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sandbox:
    world: World
    faults: Faults
    server: RunningServer
    timer: FakeTimer
    lead_ids: list[str] = field(default_factory=list)
    owner_ids: list[str] = field(default_factory=list)
    sessions: list[requests.Session] = field(default_factory=list)

    def session(self) -> requests.Session:
        s = requests.Session()
        s.verify = self.server.ca_path
        s.trust_env = False
        self.sessions.append(s)  # closed at teardown so the server can stop at once
        return s

    def client(self, token: str | None = None) -> Salesforce:
        return Salesforce(instance_url=self.server.url, session=self.session(),
                          session_id=token or self.server.access_token, version="62.0")


def build_world() -> tuple[World, list[str], list[str]]:
    world = World(clock=lambda: NOW)
    org = world.salesforce
    owners = [org.insert("User", {"Email": f"rep{i}@example.com", "Name": f"Rep {i}",
                                  "IsActive": True}, at=BASE - timedelta(days=30))["Id"]
              for i in range(5)]
    accounts = [org.insert("Account", {"Name": f"Acme {i}", "Industry": "Retail",
                                       "OwnerId": owners[i % 5]}, at=BASE)["Id"]
                for i in range(20)]
    for i in range(20):
        org.insert("Contact", {"LastName": f"Contact {i}", "Email": f"c{i}@example.com",
                               "AccountId": accounts[i]}, at=BASE)
    leads = []
    for i in range(LEADS):
        rec = org.insert("Lead", {
            "FirstName": "Pat", "LastName": f"Lead{i:03d}", "Email": f"lead{i:03d}@example.com",
            "Company": "Globex" if i % 3 == 0 else "Initech",
            "Status": "Working - Contacted" if i % 4 == 0 else "Open - Not Contacted",
            "LeadSource": ["Web", "Event", "Partner"][i % 3],
            "OwnerId": None if i % 50 == 0 else owners[i % 5],
            "IsConverted": i % 100 == 1,
            "ConvertedDate": date(2026, 2, 1) if i % 100 == 1 else None,
            "NumberOfEmployees": i,
        }, at=BASE + timedelta(seconds=i // TIE))
        leads.append(rec["Id"])
    return world, leads, owners


@pytest.fixture()
def sandbox() -> Iterator[Sandbox]:
    world, leads, owners = build_world()
    faults, timer = Faults(), FakeTimer()
    server = start_salesforce(world, faults, timer=timer)
    box = Sandbox(world, faults, server, timer, leads, owners)
    try:
        yield box
    finally:
        for s in box.sessions:
            s.close()
        server.stop()


BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}


def test_query_all_iter_pages_to_the_end_in_batches_of_200(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    first = sf.query("SELECT Id FROM Lead", headers=BATCH_200)
    assert (first["totalSize"], first["done"], len(first["records"])) == (LEADS, False, 200)
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/")

    ids = [r["Id"] for r in sf.query_all_iter("SELECT Id, Email FROM Lead", headers=BATCH_200)]
    assert len(ids) == LEADS and set(ids) == set(sandbox.lead_ids)


def test_batch_size_is_clamped_to_salesforce_bounds(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    small = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(small["records"]) == 200
    default = sf.query("SELECT Id FROM Lead")
    assert default["done"] and len(default["records"]) == LEADS


def test_keyset_paging_over_modstamp_ties_loses_nothing(sandbox: Sandbox) -> None:
    sf = sandbox.client()

    def pages(keyset: bool) -> list[str]:
        seen: list[str] = []
        stamp, last_id = "2000-01-01T00:00:00Z", ""
        while True:
            if keyset:
                where = (f"(SystemModstamp = {stamp} AND Id > '{last_id}') "
                         f"OR SystemModstamp > {stamp}")
            else:
                where = f"SystemModstamp > {stamp}"
            page = sf.query(f"SELECT Id, SystemModstamp FROM Lead WHERE {where} "
                            "ORDER BY SystemModstamp, Id LIMIT 200")["records"]
            if not page:
                return seen
            seen += [r["Id"] for r in page]
            stamp, last_id = page[-1]["SystemModstamp"], page[-1]["Id"]

    keyset = pages(keyset=True)
    assert len(keyset) == len(set(keyset)) == LEADS
    assert len(pages(keyset=False)) < LEADS  # a bare ">" cursor drops the tied rows


def test_relationship_field_is_nested_or_null(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    rows = sf.query("SELECT Id, Owner.Email, Owner.Name FROM Lead ORDER BY Id LIMIT 2")["records"]
    assert rows[0]["Owner"] is None  # lead 0 has no owner
    owner = rows[1]["Owner"]
    assert owner["attributes"]["type"] == "User"
    assert owner["Email"] == "rep1@example.com" and owner["Name"] == "Rep 1"
    by_owner = sf.query("SELECT COUNT() FROM Lead WHERE Owner.Email = 'REP1@example.com'")
    assert by_owner["totalSize"] == sum(1 for i in range(LEADS) if i % 50 and i % 5 == 1)


def test_count_like_in_not_and_order(sandbox: Sandbox) -> None:
    sf = sandbox.client()

    def count(where: str) -> int:
        return sf.query(f"SELECT COUNT() FROM Lead WHERE {where}")["totalSize"]

    assert count("Email LIKE 'lead00%'") == 10
    assert count("LeadSource IN ('Web', 'Event')") == 400
    assert count("LeadSource NOT IN ('Web')") == 400
    assert count("NOT (Company = 'Globex' OR Status = 'Working - Contacted')") == sum(
        1 for i in range(LEADS) if i % 3 and i % 4)
    assert count("OwnerId = null") == 12
    assert count("IsConverted = true AND ConvertedDate = 2026-02-01") == 6
    assert count("NumberOfEmployees >= 590") == 10
    top = sf.query("SELECT LastName FROM Lead ORDER BY NumberOfEmployees DESC LIMIT 2")
    assert [r["LastName"] for r in top["records"]] == ["Lead599", "Lead598"]


def test_wire_formats_of_datetimes_and_dates(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    rec = sf.query("SELECT SystemModstamp, ConvertedDate, IsConverted FROM Lead "
                   "WHERE IsConverted = true LIMIT 1")["records"][0]
    assert SF_DATETIME.match(rec["SystemModstamp"])
    assert rec["ConvertedDate"] == "2026-02-01" and rec["IsConverted"] is True


def test_deleted_and_merged_rows_only_via_query_all_and_get_deleted(sandbox: Sandbox) -> None:
    org, ids = sandbox.world.salesforce, sandbox.lead_ids
    with sandbox.world.lock:
        org.delete("Lead", ids[10], at=NOW - timedelta(days=1))
        org.merge("Lead", ids[20], ids[21], at=NOW - timedelta(hours=2))
    sf = sandbox.client()
    live = {r["Id"] for r in sf.query_all("SELECT Id FROM Lead")["records"]}
    assert ids[10] not in live and ids[21] not in live and len(live) == LEADS - 2

    gone = sf.query_all("SELECT Id, MasterRecordId FROM Lead WHERE IsDeleted = true",
                        include_deleted=True)["records"]
    assert {r["Id"]: r["MasterRecordId"] for r in gone} == {ids[10]: None, ids[21]: ids[20]}

    deleted = sf.Lead.deleted(NOW - timedelta(days=3), NOW)
    assert {d["id"] for d in deleted["deletedRecords"]} == {ids[10], ids[21]}
    assert all(SF_DATETIME.match(d["deletedDate"]) for d in deleted["deletedRecords"])
    assert deleted["earliestDateAvailable"].startswith("2026-02-15")


def test_replication_window_rules(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    with pytest.raises(SalesforceMalformedRequest) as too_old:
        sf.Lead.deleted(NOW - timedelta(days=16), NOW)
    assert too_old.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    with pytest.raises(SalesforceMalformedRequest) as backwards:
        sf.Lead.updated(NOW, NOW - timedelta(hours=1))
    assert backwards.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"

    updated = sf.Lead.updated(NOW - timedelta(days=20), NOW)
    assert len(updated["ids"]) == LEADS
    assert updated["latestDateCovered"] == "2026-03-02T12:00:00.000+0000"


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Id FROM", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead WHERE Email = 'unterminated", "MALFORMED_QUERY"),
    ("SELECT Id, Shoe_Size FROM Lead", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE SystemModstamp > '2026-01-01T00:00:00Z'", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE SystemModstamp > 2026-01-01", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE Owner.Shoe = 'x'", "INVALID_FIELD"),
    ("SELECT Id FROM Unicorn", "INVALID_TYPE"),
])
def test_bad_queries_are_refused_with_salesforce_codes(sandbox: Sandbox, soql: str,
                                                       code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sandbox.client().query(soql)
    assert err.value.content[0]["errorCode"] == code


def test_expired_locator_is_refused(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    first = sf.query("SELECT Id FROM Lead", headers=BATCH_200)
    sandbox.timer.now += 16 * 60
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=BATCH_200)
    assert err.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_token_expiry_gives_invalid_session(sandbox: Sandbox) -> None:
    sandbox.faults.token_ttl_seconds = 60
    sf = sandbox.client()
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 5
    sandbox.timer.now += 61
    with pytest.raises(SalesforceExpiredSession) as err:
        sf.query("SELECT COUNT() FROM User")
    assert err.value.content == [{"message": "Session expired or invalid",
                                  "errorCode": "INVALID_SESSION_ID", "fields": []}]
    with pytest.raises(SalesforceExpiredSession):
        sandbox.client(token="not-a-token").query("SELECT COUNT() FROM User")


def test_server_unavailable_and_dropped_connections(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    sandbox.faults.fail_every = 1
    with pytest.raises(SalesforceGeneralError) as err:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert err.value.status == 503
    sandbox.faults.fail_every = 0
    sandbox.faults.drop_every = 1
    with pytest.raises(requests.exceptions.RequestException):
        sf.query("SELECT Id FROM Lead LIMIT 5")
    sandbox.faults.drop_every = 0
    assert sf.query("SELECT Id FROM Lead LIMIT 5")["totalSize"] == 5


def test_task_create_and_lead_update_reach_the_world(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    lead = sandbox.lead_ids[3]
    made = sf.Task.create({"Subject": "SLA breach: call back", "WhoId": lead,
                           "OwnerId": sandbox.owner_ids[0], "ActivityDate": "2026-03-03",
                           "Status": "Not Started", "Priority": "High"})
    assert made["success"] is True and made["id"].startswith("00T")
    task = sandbox.world.salesforce.objects["Task"][made["id"]]
    assert task["WhoId"] == lead and task["ActivityDate"] == date(2026, 3, 3)

    assert sf.Lead.update(lead, {"Status": "Working - Contacted"}) == 204
    rec = sandbox.world.salesforce.objects["Lead"][lead]
    assert rec["Status"] == "Working - Contacted" and rec["SystemModstamp"] == NOW
    fresh = sf.query("SELECT Id FROM Lead WHERE SystemModstamp >= 2026-03-02T12:00:00Z")
    assert [r["Id"] for r in fresh["records"]] == [lead]
    assert sf.Lead.get(lead)["Status"] == "Working - Contacted"
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.update(lead, {"Shoe_Size": 9})
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get("00Q5g0000009999AAA")


def test_composite_collection_creates_tasks(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Task"}, "Subject": f"Follow up {i}",
         "WhoId": sandbox.lead_ids[i]} for i in range(3)]}
    results = sf.restful("composite/sobjects", method="POST", json=body)
    assert [r["success"] for r in results] == [True, True, True]
    assert len(sandbox.world.salesforce.objects["Task"]) == 3


def test_describe_exposes_types_and_picklists(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    assert "Lead" in {o["name"] for o in sf.describe()["sobjects"]}
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    statuses = [p["value"] for p in fields["Status"]["picklistValues"]]
    assert statuses[:4] == ["Open - Not Contacted", "Working - Contacted",
                            "Closed - Converted", "Closed - Not Converted"]
    assert {p["value"] for p in fields["LeadSource"]["picklistValues"]} == {
        "Web", "Event", "Partner"}
    assert fields["SystemModstamp"]["type"] == "datetime"
    assert fields["ConvertedDate"]["type"] == "date"
    assert fields["OwnerId"]["referenceTo"] == ["User"]
    assert fields["OwnerId"]["relationshipName"] == "Owner"


def test_limits_usage_header_and_daily_cap(sandbox: Sandbox) -> None:
    sf = sandbox.client()
    sf.query("SELECT COUNT() FROM Lead")
    assert sf.api_usage["api-usage"].used == 1
    assert sf.api_usage["api-usage"].total == 5_000_000
    daily = sf.limits()["DailyApiRequests"]
    assert daily == {"Max": 5_000_000, "Remaining": 5_000_000 - 2}

    sandbox.faults.daily_limit = 3
    sf.query("SELECT COUNT() FROM Lead")
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT COUNT() FROM Lead")
    assert err.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_oauth_token_endpoint_issues_working_sessions(sandbox: Sandbox) -> None:
    extra, url = sandbox.server.extra, sandbox.server.url + "/services/oauth2/token"
    s = sandbox.session()
    sandbox.faults.token_ttl_seconds = 60
    sandbox.timer.now += 120  # the initial token is stale; freshly issued ones are not
    with pytest.raises(SalesforceExpiredSession):
        sandbox.client().query("SELECT COUNT() FROM Account")
    password = s.post(url, data={"grant_type": "password", "client_id": extra["client_id"],
                                 "client_secret": extra["client_secret"],
                                 "username": extra["username"], "password": extra["password"]})
    assert password.status_code == 200 and password.json()["token_type"] == "Bearer"
    assert password.json()["instance_url"] == sandbox.server.url
    creds = s.post(url, data={"grant_type": "client_credentials"},
                   auth=(extra["client_id"], extra["client_secret"]))
    assert creds.status_code == 200
    bad = s.post(url, data={"grant_type": "password", "client_id": extra["client_id"],
                            "client_secret": extra["client_secret"],
                            "username": extra["username"], "password": "wrong"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_grant", "error_description": "authentication failure"}

    for token in (password.json()["access_token"], creds.json()["access_token"]):
        sf = sandbox.client(token=token)
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 20


def test_soap_login_answers_session_and_faults(sandbox: Sandbox) -> None:
    extra, s = sandbox.server.extra, sandbox.session()
    envelope = (
        '<?xml version="1.0" encoding="utf-8" ?><env:Envelope '
        'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
        '<n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>{u}</n1:username>'
        "<n1:password>{p}</n1:password></n1:login></env:Body></env:Envelope>")
    headers = {"content-type": "text/xml", "SOAPAction": "login"}
    url = sandbox.server.url + "/services/Soap/u/62.0"
    ok = s.post(url, envelope.format(u=extra["username"], p=extra["password"] + "TOKEN"),
                headers=headers)
    assert ok.status_code == 200 and "<sessionId>" in ok.text
    assert sandbox.server.url in ok.text
    bad = s.post(url, envelope.format(u=extra["username"], p="nope"), headers=headers)
    assert bad.status_code == 500
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in bad.text
