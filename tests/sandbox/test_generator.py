"""The generated company: reproducible, believable, and honest about what a sync must find."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.sandbox import generator
from connectors.sandbox import generator_catalog as cat
from connectors.sandbox.generator import generate_world
from connectors.sandbox.live import live_step
from connectors.sandbox.world import World

ANCHOR = datetime(2026, 3, 2, 12, tzinfo=UTC)
ACCEPTED_HS = {"IN_PROGRESS", "ATTEMPTED_TO_CONTACT", "CONNECTED", "OPEN_DEAL"}


@pytest.fixture(scope="module", params=["whole", "chunked"])
def world(request: pytest.FixtureRequest) -> World:
    """The company planned at once, and planned and written 1,700 people at a time (as a
    company larger than ``CHUNK_PEOPLE`` is): both must be believable."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "chunked":
            patch.setattr(generator, "CHUNK_PEOPLE", 1700)
        return generate_world(seed=7, people=5000, anchor=ANCHOR)


def _norm(email: str | None) -> str:
    return (email or "").strip().lower()


def _bad_ids(world: World) -> set[str]:
    return {rid for _, _, rid, _ in world.truth["malformed"]}


def _people(world: World) -> dict[str, dict]:
    """Live person records grouped by normalised email, as a sync would link them."""
    sf, hs, bad = world.salesforce, world.hubspot, _bad_ids(world)
    people: dict[str, dict] = {}
    forms = {t["WhoId"] for t in sf.table("Task").values() if t["Type"] == "Form Submission"}
    accepted = {h["LeadId"] for h in sf.table("LeadHistory").values()
                if h["NewValue"] in ("Working - Contacted", "Closed - Converted")}
    opps = sf.table("Opportunity")
    for lead in sf.table("Lead").values():
        if lead["IsDeleted"] or lead["Id"] in bad:
            continue
        p = people.setdefault(_norm(lead["Email"]), {"crms": set()})
        p["crms"].add("sf")
        p.update(country=lead["Country"], employees=lead["NumberOfEmployees"],
                 score=lead["Lead_Score__c"], form=lead["Id"] in forms,
                 sal=lead["Id"] in accepted)
        opp = opps.get(lead["ConvertedOpportunityId"] or "")
        if opp:
            p["opp"] = (opp["IsClosed"], opp["IsWon"], opp["CreatedDate"])
    companies = hs.table("companies")
    links = hs.associations.get(("contacts", "companies"), {})
    deal_links = hs.associations.get(("contacts", "deals"), {})
    for c in hs.table("contacts").values():
        if c["archived"] or c["id"] in bad:
            continue
        props = c["properties"]
        p = people.setdefault(_norm(props["email"]), {"crms": set()})
        p["crms"].add("hs")
        if "sf" in p["crms"]:  # a shared person: marketing activity lives in HubSpot
            p["form"] = p["form"] or "recent_conversion_date" in c["history"]
            continue
        company = companies[links[c["id"]][0][0]] if c["id"] in links else None
        statuses = {v for v, _ in c["history"].get("hs_lead_status", [])}
        p.update(country=props["country"], score=int(props["hubspotscore"]),
                 employees=int(company["properties"]["numberofemployees"]) if company else 0,
                 form="recent_conversion_date" in c["history"], sal=bool(statuses & ACCEPTED_HS))
        for deal_id, _ in deal_links.get(c["id"], []):
            d = hs.table("deals")[deal_id]
            p["opp"] = (d["properties"]["hs_is_closed"] == "true",
                        d["properties"]["hs_is_closed_won"] == "true", d["createdAt"])
    return people


def _is_mql(email: str, p: dict) -> bool:
    """The reference definition (contract.md's example), evaluated on one linked person."""
    return (p["country"] in cat.FIT_COUNTRIES and (p["employees"] or 0) >= 50
            and email.split("@")[1] not in cat.FREE_MAIL and (p["score"] >= 60 or p["form"]))


def test_same_seed_same_company_and_another_seed_another() -> None:
    a = generate_world(seed=11, people=400, anchor=ANCHOR)
    b = generate_world(seed=11, people=400, anchor=ANCHOR)
    c = generate_world(seed=12, people=400, anchor=ANCHOR)
    assert a.salesforce.objects == b.salesforce.objects
    assert a.hubspot.objects == b.hubspot.objects
    assert a.hubspot.associations == b.hubspot.associations
    assert a.hubspot.owners == b.hubspot.owners
    assert a.truth == b.truth
    assert a.salesforce.table("Lead") != c.salesforce.table("Lead")


def test_every_timestamp_falls_in_the_year_before_the_anchor(world: World) -> None:
    low = ANCHOR - timedelta(days=400)
    for rows in world.salesforce.objects.values():
        for rec in rows.values():
            assert low <= rec["CreatedDate"] <= rec["SystemModstamp"] <= ANCHOR
    for rows in world.hubspot.objects.values():
        for rec in rows.values():
            assert low <= rec["createdAt"] <= rec["updatedAt"] <= ANCHOR
            for hist in rec["history"].values():
                stamps = [t for _, t in hist]
                assert stamps == sorted(stamps) and stamps[-1] <= ANCHOR


def test_default_anchor_is_the_current_hour() -> None:
    w = generate_world(seed=3, people=60)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert max(r["SystemModstamp"] for r in w.salesforce.table("Lead").values()) <= hour


def test_funnel_converts_within_the_reference_ranges(world: World) -> None:
    people = _people(world)
    mqls = {e: p for e, p in people.items() if _is_mql(e, p)}
    sals = [p for p in mqls.values() if p["sal"]]
    sqls = [p for p in sals if "opp" in p]
    closed = [p["opp"] for p in sqls if p["opp"][0]]
    matured = [p["opp"] for p in sqls if p["opp"][2] < ANCHOR - timedelta(days=181)]
    assert 0.10 <= len(mqls) / len(people) <= 0.25
    assert 0.40 <= len(sals) / len(mqls) <= 0.60
    assert 0.50 <= len(sqls) / len(sals) <= 0.70
    assert 0.20 <= sum(won for _, won, _ in closed) / len(closed) <= 0.30
    assert matured and all(is_closed for is_closed, _, _ in matured)
    assert 0.20 <= sum(won for _, won, _ in matured) / len(matured) <= 0.30
    assert world.truth["funnel"]["mqls"] == len(mqls)


def test_decisions_come_mostly_within_hours_and_some_never(world: World) -> None:
    sf = world.salesforce
    leads = sf.table("Lead")
    first_change: dict[str, datetime] = {}
    for h in sorted(sf.table("LeadHistory").values(), key=lambda h: h["CreatedDate"]):
        first_change.setdefault(h["LeadId"], h["CreatedDate"])
    waits = [first_change[lid] - leads[lid]["CreatedDate"] for lid in first_change
             if leads[lid]["LeadSource"] == "Demo Request"]
    within_day = sum(w <= timedelta(days=1) for w in waits) / len(waits)
    assert within_day > 0.5
    assert any(w > timedelta(days=5) for w in waits)
    reasons = Counter(r["Rejection_Reason__c"] for r in leads.values()
                      if r["Status"] == "Closed - Not Converted")
    assert set(reasons) == set(cat.REJECTION_REASONS)


def test_truth_counts_match_the_records(world: World) -> None:
    truth = world.truth
    for obj, rows in world.salesforce.objects.items():
        assert truth["salesforce_live"][obj] == sum(not r["IsDeleted"] for r in rows.values())
    for typ, rows in world.hubspot.objects.items():
        assert truth["hubspot_live"][typ] == sum(not r["archived"] for r in rows.values())
    people = _people(world)
    assert truth["persons"] == len(people)
    assert truth["shared_persons"] == sum(p["crms"] == {"sf", "hs"} for p in people.values())
    assert truth["generated_people"] == 5000


def test_a_third_are_in_both_crms_linked_by_cross_reference(world: World) -> None:
    leads, contacts = world.salesforce.table("Lead"), world.salesforce.table("Contact")
    shared = [c for c in world.hubspot.table("contacts").values()
              if c["properties"].get("salesforceleadid")]
    assert 0.28 <= len(shared) / 5000 <= 0.38
    written_differently = 0
    for c in shared:
        props = c["properties"]
        lead = leads[props["salesforceleadid"]]
        assert _norm(lead["Email"]) == _norm(props["email"])
        written_differently += lead["Email"] != props["email"]
        if props.get("salesforcecontactid"):
            assert contacts[props["salesforcecontactid"]]["Email"] == lead["Email"]
    assert written_differently == len(shared)


def test_merges_deletions_and_archives_are_recorded(world: World) -> None:
    sf, hs, truth = world.salesforce, world.hubspot, world.truth
    merged = truth["merged"]
    assert {obj for src, obj, _, _ in merged} >= {"Lead", "Contact", "contacts"}
    for src, obj, loser, winner in merged:
        if src == "salesforce":
            rec = sf.table(obj)[loser]
            assert rec["IsDeleted"] and rec["MasterRecordId"] == winner
        else:
            assert loser not in hs.table(obj) and hs.merged_into[loser] == winner
            assert loser in hs.table(obj)[winner]["properties"]["hs_merged_object_ids"]
    deleted_at = {rid: at for _, rid, at in sf.deleted_log}
    sf_deleted = [rid for src, _, rid in truth["deleted"] if src == "salesforce"]
    assert any(deleted_at[r] > ANCHOR - timedelta(days=15) for r in sf_deleted)
    assert any(deleted_at[r] < ANCHOR - timedelta(days=15) for r in sf_deleted)
    assert all(hs.table("contacts")[rid]["archived"]
               for src, _, rid in truth["deleted"] if src == "hubspot")


def test_malformed_records_are_present_for_quarantine(world: World) -> None:
    sf, hs = world.salesforce, world.hubspot
    reasons = {reason for _, _, _, reason in world.truth["malformed"]}
    assert {"invalid email", "missing LastName", "impossible CloseDate"} <= reasons
    for src, obj, rid, reason in world.truth["malformed"]:
        rec = sf.table(obj)[rid] if src == "salesforce" else hs.table(obj)[rid]["properties"]
        if reason == "invalid email":
            assert (rec.get("Email") or rec.get("email")) == "not-an-email"
        elif reason == "impossible CloseDate":
            assert rec["CloseDate"] == date(1900, 1, 1)
        elif reason == "ConvertedDate before CreatedDate":
            assert rec["ConvertedDate"] < rec["CreatedDate"].date()
    small = generate_world(seed=5, people=300, anchor=ANCHOR)
    assert len(small.truth["malformed"]) >= 3


def test_batches_of_records_share_a_modstamp(world: World) -> None:
    leads = Counter(r["SystemModstamp"] for r in world.salesforce.table("Lead").values())
    contacts = Counter(r["properties"]["lastmodifieddate"]
                       for r in world.hubspot.table("contacts").values())
    assert max(leads.values()) >= 5 and max(contacts.values()) >= 5


def test_owners_match_across_crms_and_work_in_several_zones(world: World) -> None:
    users = [u for u in world.salesforce.table("User").values() if u["Department"] == "Sales"]
    assert 8 <= len(users) <= 20
    assert len({u["TimeZoneSidKey"] for u in users}) == 5
    owner_emails = {o["email"] for o in world.hubspot.owners}
    assert {u["Email"] for u in world.salesforce.table("User").values()} == owner_emails


def test_live_step_adds_people_decisions_and_history_at_its_time() -> None:
    w = generate_world(seed=9, people=600, anchor=ANCHOR)
    before = dict(w.truth["salesforce_live"])
    persons = w.truth["persons"]
    rng = random.Random(1)
    at = ANCHOR + timedelta(minutes=5)
    totals: Counter[str] = Counter()
    for step in range(4):
        totals.update(live_step(w, rng, at=at + timedelta(minutes=step), new_people=3))
    assert totals["people"] == 12 and totals["form_submissions"] == 12
    assert totals["decisions"] >= 1
    assert w.truth["persons"] == persons + 12
    assert w.truth["salesforce_live"]["Lead"] == before["Lead"] + totals["leads"]
    new_history = [h for h in w.salesforce.table("LeadHistory").values()
                   if h["CreatedDate"] >= at]
    assert new_history and all(h["CreatedDate"] - at < timedelta(minutes=4)
                               for h in new_history)
    fresh = [c for c in w.hubspot.table("contacts").values() if c["createdAt"] >= at]
    assert fresh and all(c["history"]["recent_conversion_date"][0][1] == c["createdAt"]
                         for c in fresh)
