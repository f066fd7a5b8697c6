"""`truce sandbox --seed 7` prints settings; with them, the plain client libraries page through
every object, and faults can be changed while it runs."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from hubspot import HubSpot
from simple_salesforce import Salesforce

SF_OBJECTS = ("User", "Account", "Lead", "Contact", "Opportunity", "OpportunityContactRole",
              "Task", "Event", "Campaign", "CampaignMember", "LeadHistory")
HS_OBJECTS = ("contacts", "companies", "deals", "calls", "emails", "meetings")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[dict[str, str], str]]:
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "sandbox", "--seed", "7",
                             "--people", "300", "--no-live"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    settings: dict[str, str] = {}
    assert proc.stdout is not None and proc.stderr is not None
    while len(settings) < 6:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        key, _, value = line.strip().partition("=")
        settings[key] = value
    control = ""
    while not control:
        found = re.search(r"http://127\.0\.0\.1:\d+/faults", proc.stderr.readline())
        control = found.group(0) if found else ""
    yield settings, control
    proc.terminate()
    proc.wait(timeout=20)


def test_plain_clients_page_through_every_object(sandbox: tuple[dict[str, str], str]) -> None:
    env, _ = sandbox
    assert set(env) >= {"TRUCE_SALESFORCE_INSTANCE_URL", "TRUCE_SALESFORCE_ACCESS_TOKEN",
                        "TRUCE_SALESFORCE_CA_BUNDLE", "TRUCE_HUBSPOT_BASE_URL",
                        "TRUCE_HUBSPOT_ACCESS_TOKEN"}
    http = requests.Session()
    http.verify, http.trust_env = env["TRUCE_SALESFORCE_CA_BUNDLE"], False
    sf = Salesforce(instance_url=env["TRUCE_SALESFORCE_INSTANCE_URL"],
                    session_id=env["TRUCE_SALESFORCE_ACCESS_TOKEN"], session=http,
                    version="62.0")
    for obj in SF_OBJECTS:
        count = sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"]
        rows = list(sf.query_all_iter(f"SELECT Id FROM {obj}",
                                      headers={"Sforce-Query-Options": "batchSize=200"}))
        assert len(rows) == count > 0, obj
    hs = HubSpot(access_token=env["TRUCE_HUBSPOT_ACCESS_TOKEN"],
                 host=env["TRUCE_HUBSPOT_BASE_URL"])
    for obj in HS_OBJECTS:
        rows = hs.crm.objects.get_all(obj)
        assert rows, obj
        assert len({r.id for r in rows}) == len(rows)


def test_faults_change_while_it_runs(sandbox: tuple[dict[str, str], str]) -> None:
    env, control = sandbox
    assert requests.put(control, json={"fail_every": 1}, timeout=5).json()["fail_every"] == 1
    url = env["TRUCE_HUBSPOT_BASE_URL"] + "/crm/v3/objects/contacts"
    headers = {"Authorization": f"Bearer {env['TRUCE_HUBSPOT_ACCESS_TOKEN']}"}
    assert requests.get(url, headers=headers, timeout=5).status_code >= 500
    requests.put(control, json={"fail_every": 0}, timeout=5)
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    bad = requests.put(control, json={"gremlins": 3}, timeout=5)
    assert bad.status_code == 422 and "gremlins" in bad.text
