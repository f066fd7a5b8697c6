"""Sandbox serving: records per second each sandbox CRM serves, and the sandbox's memory.

The sandbox runs in its own spawned process (generation, then both servers), so its peak RSS
(``VmHWM``) is its own; this process pages through it with the unmodified client libraries,
as a sync would: Salesforce leads and contacts through ``queryAll`` (``query_all_iter``,
``ORDER BY SystemModstamp, Id``, batches of 2,000), HubSpot contacts through the list endpoint
(pages of 100) and through search sorted on ``lastmodifieddate`` (pages of 200, re-anchored
on the last stamp so no search pages towards the 10,000-result cap). Every record must arrive
exactly once. The same runs at a world four times smaller: flat memory keeps the ratio of the
peaks near 1. On demand only: ``truce bench --only sandbox`` (the full size is 1M people).
"""

from __future__ import annotations

import multiprocessing
import time
from typing import TYPE_CHECKING, Any

from bench import Row, Size, Versus, ratio

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from bench.runner import Context

PEOPLE = {"quick": 40_000, "full": 1_000_000}
SMALL_SHARE = 4
SEED = 7
TIMEOUT_SECONDS = 3600
SF_FIELDS = ("Id, FirstName, LastName, Email, Company, Status, LeadSource, OwnerId, "
             "CreatedDate, LastModifiedDate, SystemModstamp, IsDeleted")
SF_CONTACT_FIELDS = ("Id, FirstName, LastName, Email, AccountId, OwnerId, CreatedDate, "
                     "LastModifiedDate, SystemModstamp, IsDeleted")
HS_PROPERTIES = ["email", "firstname", "lastname", "lifecyclestage", "hs_lead_status",
                 "hubspot_owner_id", "salesforceleadid", "lastmodifieddate", "createdate"]


def _status(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def serve(people: int, conn: Connection) -> None:
    """The child: generate, serve, report the settings, then the peak RSS when told to stop."""
    from connectors.sandbox.faults import Faults
    from connectors.sandbox.generator import generate_world
    from connectors.sandbox.run import start_sandboxes
    from connectors.sandbox.store import Bounds

    started = time.perf_counter()
    world = generate_world(seed=SEED, people=people)
    seconds = time.perf_counter() - started
    boxes = start_sandboxes(world=world, faults=Faults(search_per_second=0))
    sf, hs = world.salesforce, world.hubspot
    conn.send({"env": boxes.settings_env(), "generate_seconds": seconds,
               "rss_ready_mb": _status("VmRSS"), "hwm_ready_mb": _status("VmHWM"),
               "leads": len(sf.table("Lead")), "contacts": len(sf.table("Contact")),
               "hs_contacts": hs.table("contacts").count_within(Bounds(gone=0)),
               "records": {"salesforce": sum(len(t) for t in sf.objects.values()),
                           "hubspot": sum(len(t) for t in hs.objects.values())}})
    conn.recv()  # stop
    boxes.stop()
    conn.send({"peak_rss_mb": _status("VmHWM"), "rss_mb": _status("VmRSS")})


def _salesforce(env: dict[str, str], sobject: str, fields: str) -> tuple[int, int, float]:
    """(rows, distinct ids, seconds) of a queryAll through simple-salesforce."""
    import requests
    from simple_salesforce import Salesforce

    http = requests.Session()
    http.verify = env["TRUCE_SALESFORCE_CA_BUNDLE"]
    http.trust_env = False
    sf = Salesforce(instance_url=env["TRUCE_SALESFORCE_INSTANCE_URL"], session=http,
                    session_id=env["TRUCE_SALESFORCE_ACCESS_TOKEN"], version="62.0")
    soql = (f"SELECT {fields} FROM {sobject} WHERE SystemModstamp >= 2000-01-01T00:00:00Z "
            "ORDER BY SystemModstamp, Id")
    ids: set[str] = set()
    n = 0
    started = time.perf_counter()
    for rec in sf.query_all_iter(soql, include_deleted=True,
                                 headers={"Sforce-Query-Options": "batchSize=2000"}):
        ids.add(rec["Id"])
        n += 1
    return n, len(ids), time.perf_counter() - started


def _hubspot(env: dict[str, str]) -> Any:
    from hubspot import HubSpot

    return HubSpot(access_token=env["TRUCE_HUBSPOT_ACCESS_TOKEN"],
                   host=env["TRUCE_HUBSPOT_BASE_URL"]).crm.contacts


def _hubspot_list(env: dict[str, str]) -> tuple[int, int, float]:
    api = _hubspot(env).basic_api
    ids: set[str] = set()
    n, after = 0, None
    started = time.perf_counter()
    while True:
        page = api.get_page(limit=100, after=after, properties=HS_PROPERTIES)
        for rec in page.results:
            ids.add(rec.id)
            n += 1
        if page.paging is None or page.paging.next is None:
            break
        after = page.paging.next.after
    return n, len(ids), time.perf_counter() - started


def _hubspot_search(env: dict[str, str]) -> tuple[int, int, float]:
    """Search by lastmodifieddate from the last stamp seen; a page all at one instant is
    walked by id, as the connector does."""
    from hubspot.crm.contacts import PublicObjectSearchRequest

    api = _hubspot(env).search_api
    seen: dict[str, str] = {}
    n, lower, id_floor = 0, "0", None
    started = time.perf_counter()
    while True:
        if id_floor is None:
            filters = [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": lower}]
            sorts = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
        else:
            filters = [{"propertyName": "lastmodifieddate", "operator": "EQ", "value": lower},
                       {"propertyName": "hs_object_id", "operator": "GT", "value": id_floor}]
            sorts = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        page = api.do_search(PublicObjectSearchRequest(
            filter_groups=[{"filters": filters}], sorts=sorts, properties=HS_PROPERTIES,
            limit=200, after="0"))
        rows = page.results
        for rec in rows:
            stamp = rec.properties["lastmodifieddate"]
            if seen.get(rec.id) != stamp:
                seen[rec.id] = stamp
                n += 1
        if id_floor is not None:
            if len(rows) < 200:  # the instant is walked: carry on strictly after it
                lower, id_floor = str(_ms(lower) + 1), None
            else:
                id_floor = rows[-1].id
            continue
        if len(rows) < 200:
            break
        last = str(_ms(rows[-1].properties["lastmodifieddate"]))
        if last == lower:  # a whole page at one instant
            id_floor = "0"
        lower = last
    return n, len(seen), time.perf_counter() - started


def _ms(value: str) -> int:
    from datetime import datetime

    if value.isdigit():
        return int(value)
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(people: int, ctx: Context, *, paging: bool) -> dict[str, Any]:
    """Start a sandbox of ``people`` in a child, page through it if asked, stop it."""
    mp = multiprocessing.get_context("spawn")
    parent, child = mp.Pipe()
    proc = mp.Process(target=serve, args=(people, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(TIMEOUT_SECONDS):
            raise TimeoutError(f"sandbox of {people:,} people not ready")
        ready = parent.recv()
        ctx.log(f"sandbox: {people:,} people generated in {ready['generate_seconds']:.0f} s "
                f"({ready['records']['salesforce']:,} Salesforce and "
                f"{ready['records']['hubspot']:,} HubSpot records)")
        out = dict(ready)
        if paging:
            env = ready["env"]
            for name, read in (("salesforce.leads", lambda: _salesforce(env, "Lead", SF_FIELDS)),
                               ("salesforce.contacts",
                                lambda: _salesforce(env, "Contact", SF_CONTACT_FIELDS)),
                               ("hubspot.contacts.list", lambda: _hubspot_list(env)),
                               ("hubspot.contacts.search", lambda: _hubspot_search(env))):
                cpu = _cpu_seconds(proc.pid)
                out[name] = read()
                out[name + ".cpu"] = _cpu_seconds(proc.pid) - cpu
                n, distinct, seconds = out[name]
                ctx.log(f"sandbox: {name}: {n:,} rows ({distinct:,} distinct) in {seconds:.1f} s, "
                        f"sandbox CPU {out[name + '.cpu']:.1f} s")
        parent.send("stop")
        out.update(parent.recv())
        return out
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()


def run(size: Size, ctx: Context) -> list[Row]:
    people = PEOPLE.get(size.name, PEOPLE["quick"])
    small = measure(people // SMALL_SHARE, ctx, paging=False)
    big = measure(people, ctx, paging=True)
    expected = {"salesforce.leads": big["leads"], "salesforce.contacts": big["contacts"],
                "hubspot.contacts.list": big["hs_contacts"],
                "hubspot.contacts.search": big["hs_contacts"]}
    rows: list[Row] = []
    for name, want in expected.items():
        n, distinct, seconds = big[name]
        cpu = big[name + ".cpu"]
        ok = n == distinct == want
        rows.append(Row(f"sandbox.{name}.rate", n / seconds, "records/s",
                        Versus("per sandbox CPU-second", n / cpu if cpu else None,
                               ratio(cpu, seconds)),
                        aim="every record once", met=ok,
                        note=f"{n:,} records ({distinct:,} distinct, {want:,} expected) in "
                        f"{seconds:.1f} s; the sandbox was busy {cpu:.0f} s of it (the ratio), "
                        f"the client the rest; {people:,} people"))
    records = big["records"]["salesforce"] + big["records"]["hubspot"]
    rows.append(Row("sandbox.generate", big["generate_seconds"], "s",
                    Versus(f"at {people // SMALL_SHARE:,} people", small["generate_seconds"],
                           ratio(big["generate_seconds"], small["generate_seconds"])),
                    note=f"{records:,} records ({big['records']['salesforce']:,} Salesforce, "
                    f"{big['records']['hubspot']:,} HubSpot)"))
    rows.append(Row("sandbox.peak_rss", big["peak_rss_mb"], "MB",
                    Versus(f"at {people // SMALL_SHARE:,} people", small["peak_rss_mb"],
                           ratio(big["peak_rss_mb"], small["peak_rss_mb"])),
                    note=f"{SMALL_SHARE}× the people; RSS when ready {big['rss_ready_mb']:.0f} MB, "
                    f"after paging {big['rss_mb']:.0f} MB"))
    return rows
