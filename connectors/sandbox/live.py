"""Live mode: a little new activity in both CRMs on each tick, so a running demo shows fresh
MQLs arriving, reps deciding and touching some of them, and SLA clocks breaching on the rest.

Everything a step writes carries the step's own timestamp, so a sync sees it as one batch.
"""

from __future__ import annotations

import random
import weakref
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.sandbox import generator_catalog as cat
from connectors.sandbox.store import Bounds, stamp_key
from connectors.sandbox.world import World, hs_stamp

__all__ = ["live_step"]

OPEN, WORKING, CLOSED = "Open - Not Contacted", "Working - Contacted", "Closed - Not Converted"
RECENT = timedelta(days=30)


@dataclass
class _Cast:
    """Who and what already exists in the world, read back from its records."""

    reps: list[dict[str, Any]] = field(default_factory=list)
    hs_owner: dict[str, str] = field(default_factory=dict)  # email -> HubSpot owner id
    integration: str | None = None
    accounts: list[str] = field(default_factory=list)  # ids: a million-person world has many
    companies: dict[str, str] = field(default_factory=dict)  # domain -> company id
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)  # type -> latest
    emails: set[str] = field(default_factory=set)
    hubspot_of_lead: dict[str, str] = field(default_factory=dict)  # lead id -> contact id


# Read once per world (a scan of a large world takes a while); live mode keeps it current.
_CASTS: dict[int, tuple[weakref.ref[World], _Cast]] = {}


def _cast(world: World) -> _Cast:
    cached = _CASTS.get(id(world))
    if cached and cached[0]() is world:
        return cached[1]
    c = _read_cast(world)
    for key in [k for k, (ref, _) in _CASTS.items() if ref() is None]:
        del _CASTS[key]
    _CASTS[id(world)] = (weakref.ref(world), c)
    return c


def _read_cast(world: World) -> _Cast:
    sf, hs = world.salesforce, world.hubspot
    c = _Cast()
    for user in sf.table("User").values():
        if user["Department"] == "Sales" and user["IsActive"]:
            c.reps.append(user)
        elif user["Department"] == "Marketing" and user["Title"] == "Marketing Automation":
            c.integration = user["Id"]
    c.hs_owner = {o["email"]: o["id"] for o in hs.owners}
    c.accounts = sf.table("Account").ids(Bounds(gone=0))
    c.companies = {r["properties"].get("domain") or "": r["id"]
                   for r in hs.table("companies").values()}
    for camp in sf.table("Campaign").values():
        best = c.campaigns.get(camp["Type"])
        if best is None or camp["StartDate"] > best["StartDate"]:
            c.campaigns[camp["Type"]] = camp
    c.emails = {(r.get("Email") or "").strip().lower() for r in sf.table("Lead").values()}
    for r in hs.table("contacts").values():
        c.emails.add((r["properties"].get("email") or "").strip().lower())
        if r["properties"].get("salesforceleadid"):
            c.hubspot_of_lead[r["properties"]["salesforceleadid"]] = r["id"]
    return c


def live_step(world: World, rng: random.Random, *, at: datetime, new_people: int = 3
              ) -> dict[str, int]:
    """Add ``new_people`` hand-raisers, decide and touch a few open leads; answer the counts."""
    at = at.astimezone(UTC)
    counts: Counter[str] = Counter()
    with world.lock:
        cast = _cast(world)
        if not cast.reps or not cast.accounts:
            return {}
        sizes = _sizes(world)
        for _ in range(new_people):
            _new_person(world, rng, cast, at, counts)
        _decide_salesforce(world, rng, cast, at, counts)
        _decide_hubspot(world, rng, at, counts)
        _refresh_truth(world, counts, sizes)
    return dict(counts)


def _new_person(world: World, rng: random.Random, cast: _Cast, at: datetime,
                counts: Counter[str]) -> None:
    """A form fill from the website: a lead in Salesforce, a contact in HubSpot, or both."""
    sf, hs = world.salesforce, world.hubspot
    crm = rng.choices(("sf", "hs", "both"), (45, 22, 33))[0]
    source = rng.choices(("Web Form", "Demo Request"), (7, 3))[0]
    acct = sf.table("Account")[rng.choice(cast.accounts)]
    domain = acct["Website"].removeprefix("https://www.")
    first, last = rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES)
    email, n = f"{first}.{last}@{domain}".lower(), 1
    while email in cast.emails:
        n += 1
        email = f"{first}.{last}{n}@{domain}".lower()
    cast.emails.add(email)
    owner = next((r for r in cast.reps if r["Id"] == acct["OwnerId"]), rng.choice(cast.reps))
    title = rng.choice(cat.TITLES_SENIOR + cat.TITLES_OTHER)
    score = rng.randint(20, 99)
    counts["people"] += 1
    counts["form_submissions"] += 1
    lead_id = None
    if crm in ("sf", "both"):
        lead = sf.insert("Lead", {
            "Email": email, "FirstName": first, "LastName": last, "Company": acct["Name"],
            "Title": title, "Country": acct["BillingCountry"], "LeadSource": source,
            "Status": OPEN, "IsConverted": False, "ConvertedDate": None,
            "ConvertedContactId": None, "ConvertedAccountId": None,
            "ConvertedOpportunityId": None, "OwnerId": owner["Id"],
            "NumberOfEmployees": acct["NumberOfEmployees"], "Industry": acct["Industry"],
            "AnnualRevenue": acct["AnnualRevenue"], "Lead_Score__c": score,
            "Rejection_Reason__c": None,
        }, at=at)
        lead_id = lead["Id"]
        counts["leads"] += 1
        camp = cast.campaigns.get(source)
        if camp:
            sf.insert("CampaignMember", {
                "CampaignId": camp["Id"], "LeadId": lead_id, "ContactId": None,
                "Status": "Responded", "HasResponded": True, "FirstRespondedDate": at.date(),
            }, at=at)
        if crm == "sf":
            sf.insert("Task", {
                "WhoId": lead_id, "WhatId": None, "OwnerId": cast.integration,
                "Subject": f"Form submitted: {camp['Name'] if camp else source}",
                "Type": "Form Submission", "Status": "Completed", "Priority": "Normal",
                "ActivityDate": at.date(), "TaskSubtype": "Task",
            }, at=at)
            counts["tasks"] += 1
    if crm in ("hs", "both"):
        props: dict[str, Any] = {
            "email": email if crm == "hs" else email.upper(), "firstname": first,
            "lastname": last, "company": acct["Name"], "jobtitle": title,
            "country": acct["BillingCountry"], "lifecyclestage": "lead",
            "hs_lead_status": "NEW", "hubspot_owner_id": cast.hs_owner.get(owner["Email"]),
            "hubspotscore": score, "recent_conversion_date": at,
            "hs_analytics_source": rng.choice(cat.HS_ANALYTICS_SOURCE[source]),
        }
        if lead_id:
            props["salesforceleadid"] = lead_id
        rec = hs.insert("contacts", props, at=at)
        if lead_id:
            cast.hubspot_of_lead[lead_id] = rec["id"]
        counts["hubspot_contacts"] += 1
        company = cast.companies.get(domain)
        if company:
            hs.associate("contacts", rec["id"], "companies", company, 279)
            hs.associate("companies", company, "contacts", rec["id"], 280)
    if crm == "both":
        counts["shared"] += 1


def _decide_salesforce(world: World, rng: random.Random, cast: _Cast, at: datetime,
                       counts: Counter[str]) -> None:
    """Reps accept or reject one or two recent open leads and call or email a few."""
    sf = world.salesforce
    # created in the window implies stamped in it: read the window from the stamp index
    window = Bounds(lo=stamp_key(at - RECENT), gone=0)
    recent = [r for r in sf.table("Lead").ordered("sk", window)
              if r["Status"] in (OPEN, WORKING)
              and at - RECENT <= r["CreatedDate"] < at and r.get("LastName")]
    recent.sort(key=lambda r: r["Id"])
    open_ = [r for r in recent if r["Status"] == OPEN]
    for lead in rng.sample(open_, min(len(open_), rng.randint(1, 2))):
        accept = rng.random() < 0.6
        new = WORKING if accept else CLOSED
        reason = None if accept else rng.choice(list(cat.REJECTION_REASONS))
        sf.insert("LeadHistory", {"LeadId": lead["Id"], "Field": "Status",
                                  "OldValue": lead["Status"], "NewValue": new}, at=at)
        sf.update("Lead", lead["Id"], {"Status": new, "Rejection_Reason__c": reason}, at=at)
        _mirror(world, cast, lead["Id"], "IN_PROGRESS" if accept else
                ("BAD_TIMING" if reason == "Bad Timing" else "UNQUALIFIED"), at)
        counts["decisions"] += 1
    for lead in rng.sample(recent, min(len(recent), rng.randint(0, 3))):
        call = rng.random() < 0.6
        sf.insert("Task", {
            "WhoId": lead["Id"], "WhatId": None, "OwnerId": lead["OwnerId"],
            "Subject": "Call" if call else "Email: following up on your request",
            "Type": "Call" if call else "Email", "Status": "Completed", "Priority": "Normal",
            "ActivityDate": at.date(), "TaskSubtype": "Call" if call else "Email",
        }, at=at)
        counts["tasks"] += 1


def _mirror(world: World, cast: _Cast, lead_id: str, status: str, at: datetime) -> None:
    """The integration copies a Salesforce status to the linked HubSpot contact."""
    rec = world.hubspot.table("contacts").get(cast.hubspot_of_lead.get(lead_id, ""))
    if rec is not None and not rec["archived"]:
        world.hubspot.update("contacts", rec["id"], {"hs_lead_status": status}, at=at)


def _decide_hubspot(world: World, rng: random.Random, at: datetime,
                    counts: Counter[str]) -> None:
    """HubSpot-only reps work a recent NEW contact: a call, then a status."""
    hs = world.hubspot
    window = Bounds(lo=hs_stamp(at - RECENT), gone=0)
    fresh = [r for r in hs.table("contacts").ordered("sk", window)
             if r["properties"].get("hs_lead_status") == "NEW"
             and not r["properties"].get("salesforceleadid")
             and r["properties"].get("hubspot_owner_id") and at - RECENT <= r["createdAt"] < at]
    fresh.sort(key=lambda r: int(r["id"]))
    for rec in rng.sample(fresh, min(len(fresh), rng.randint(0, 2))):
        owner = rec["properties"]["hubspot_owner_id"]
        call = hs.insert("calls", {
            "hs_timestamp": at, "hubspot_owner_id": owner, "hs_call_direction": "OUTBOUND",
            "hs_call_status": "COMPLETED", "hs_call_duration": rng.randint(60_000, 900_000),
            "hs_call_title": f"Call {rec['properties'].get('firstname') or ''}".strip(),
        }, at=at)
        hs.associate("calls", call["id"], "contacts", rec["id"], 194)
        hs.associate("contacts", rec["id"], "calls", call["id"], 193)
        counts["calls"] += 1
        status = rng.choice(("ATTEMPTED_TO_CONTACT", "IN_PROGRESS", "UNQUALIFIED"))
        hs.update("contacts", rec["id"], {"hs_lead_status": status}, at=at)
        counts["decisions"] += 1


def _sizes(world: World) -> dict[tuple[str, str], int]:
    sizes = {("salesforce", k): len(v) for k, v in world.salesforce.objects.items()}
    sizes.update({("hubspot", k): len(v) for k, v in world.hubspot.objects.items()})
    return sizes


def _refresh_truth(world: World, counts: Counter[str], before: dict[tuple[str, str], int]
                   ) -> None:
    """Keep the generator's truth in step with what live mode added (it only inserts)."""
    truth = world.truth
    if not truth:
        return
    truth["persons"] = truth.get("persons", 0) + counts["people"]
    truth["shared_persons"] = truth.get("shared_persons", 0) + counts["shared"]
    for (source, obj), size in _sizes(world).items():
        live = truth.setdefault(f"{source}_live", {})
        live[obj] = live.get(obj, 0) + size - before.get((source, obj), 0)
