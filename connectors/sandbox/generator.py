"""A believable software company's Salesforce org and HubSpot portal, a year deep.

The generator plans every human first (which CRM, which source, whether they qualify, what
sales does) with exact quotas, then writes each one's records in time order, so modstamps,
LeadHistory and HubSpot property history read like a real year. A company larger than
``CHUNK_PEOPLE`` is planned and written a chunk of people at a time, each chunk with its own
quotas, so generating a million people needs the memory of one chunk, not of a million plans.
Everything derives from ``random.Random(seed)`` and the anchor, so a seed is a reproducible
test fixture.
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.sandbox import generator_catalog as cat
from connectors.sandbox.generator_cast import (
    make_accounts,
    make_campaigns,
    make_hubspot_companies,
    make_owners,
    write_campaigns,
)
from connectors.sandbox.generator_funnel import plan_sales, plan_trouble
from connectors.sandbox.generator_hubspot import hubspot_events
from connectors.sandbox.generator_model import Ctx, Event, Human
from connectors.sandbox.generator_people import plan_humans
from connectors.sandbox.generator_salesforce import (
    account_wins,
    salesforce_events,
    stray_opportunity,
)
from connectors.sandbox.store import Bounds, stamp_key
from connectors.sandbox.world import World, hs_stamp

__all__ = ["REFERENCE_DEFINITION", "default_anchor", "generate_world"]

REFERENCE_DEFINITION = cat.REFERENCE_DEFINITION
HISTORY_DAYS = 400
# above this many people the records go to a temporary SQLite file behind a bounded cache
ON_DISK_PEOPLE = 20_000
# larger companies are planned and written this many people at a time, so the plan's memory
# stays flat; each chunk meets the funnel's quotas on its own
CHUNK_PEOPLE = 50_000
FUNNEL = ("inquiries", "mqls", "sals", "rejected", "sqls", "won", "lost")


def default_anchor() -> datetime:
    """Now, truncated to the hour, so worlds generated within one hour are identical."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def generate_world(*, seed: int = 7, people: int = 3000, anchor: datetime | None = None) -> World:
    """Generate both CRMs for ``people`` humans; all timestamps fall in the 400 days to anchor."""
    anchor = (anchor or default_anchor()).astimezone(UTC).replace(microsecond=0)
    collecting = gc.isenabled()
    gc.disable()  # millions of small dicts and no cycles: the collector only slows us down
    try:
        world = _generate(seed, people, anchor)
    finally:
        if collecting:
            gc.enable()
    return world


def _generate(seed: int, people: int, anchor: datetime) -> World:
    world = World.on_disk() if people > ON_DISK_PEOPLE else World()
    ctx = Ctx(world, random.Random(seed), anchor, anchor - timedelta(days=HISTORY_DAYS))
    make_owners(ctx, people)
    make_accounts(ctx, max(9, people // 4))
    make_campaigns(ctx)
    counts: Counter[str] = Counter()
    if people <= CHUNK_PEOPLE:
        humans, strays = _plan(ctx, people, 0)
        write_campaigns(ctx)
        _write(ctx, humans, strays)
        counts.update(_count(ctx, humans))
    else:
        for offset in range(0, people, CHUNK_PEOPLE):
            humans, strays = _plan(ctx, min(CHUNK_PEOPLE, people - offset), offset)
            _write(ctx, humans, strays)
            counts.update(_count(ctx, humans))
            del humans
        write_campaigns(ctx)  # once every chunk has counted its campaign members
    account_wins(ctx)
    _bulk_touch(ctx)
    world.truth = _truth(ctx, counts, people)
    return world


def _plan(ctx: Ctx, people: int, offset: int) -> tuple[list[Human], list[str]]:
    """Plan a chunk of humans with exact quotas, and HubSpot's companies for their accounts."""
    humans = plan_humans(ctx, people, offset=offset)
    plan_sales(ctx, humans)
    strays = plan_trouble(ctx, humans)
    in_hubspot = {id(h.account) for h in humans if h.in_hs}
    make_hubspot_companies(ctx, [a for a in ctx.accounts
                                 if id(a) in in_hubspot and a.hs_id is None])
    return humans, strays


def _write(ctx: Ctx, humans: list[Human], strays: list[str]) -> None:
    for reason in strays:
        ctx.malformed.append(("salesforce", "Opportunity", stray_opportunity(ctx, reason), reason))
    for h in sorted(humans, key=lambda x: (x.created, x.idx)):
        for _, _, action in _story(ctx, h):
            action()


def _story(ctx: Ctx, h: Human) -> list[Event]:
    """One human's writes in time order, cut at a deletion (activity of a deleted lead goes)."""
    events: list[Event] = []
    if h.in_sf:
        sf = salesforce_events(ctx, h)
        if h.delete_at:
            sf = [e for e in sf if e[0] <= h.delete_at]
        events += sf
    if h.in_hs:
        hs = hubspot_events(ctx, h)
        if h.archive_at:
            hs = [e for e in hs if e[0] <= h.archive_at]
        events += hs
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def _bulk_touch(ctx: Ctx) -> None:
    """System jobs that stamp many rows in one second: the ties a `>` cursor would lose."""
    rng, sf, hs = ctx.rng, ctx.world.salesforce, ctx.world.hubspot
    sf_at = (ctx.anchor - timedelta(days=2)).replace(hour=3, minute=0, second=0)
    leads = sf.table("Lead").ids(Bounds(hi=stamp_key(sf_at), hi_open=True, gone=0))
    for rec_id in rng.sample(leads, min(len(leads), max(5, len(leads) // 100))):
        sf.update("Lead", rec_id, {}, at=sf_at)
    hs_at = (ctx.anchor - timedelta(days=1)).replace(hour=4, minute=0, second=0)
    contacts = hs.table("contacts").ids(Bounds(hi=hs_stamp(hs_at), hi_open=True, gone=0))
    for rec_id in rng.sample(contacts, min(len(contacts), max(5, len(contacts) // 100))):
        hs.update("contacts", rec_id, {}, at=hs_at)


def _count(ctx: Ctx, humans: list[Human]) -> Counter[str]:
    """Persons and funnel stages among written humans whose records a sync must find."""
    sf, hs = ctx.world.salesforce, ctx.world.hubspot
    bad = {(src, obj, rid) for src, obj, rid, _ in ctx.malformed}

    def sf_live(obj: str, rid: str | None) -> bool:
        return sf.table(obj).gone(rid or "") is False and ("salesforce", obj, rid) not in bad

    def hs_live(rid: str | None) -> bool:
        return hs.table("contacts").gone(rid or "") is False and \
            ("hubspot", "contacts", rid) not in bad

    counts: Counter[str] = Counter()
    for h in humans:
        in_sf = sf_live("Lead", h.lead_id) or sf_live("Contact", h.contact_id)
        in_hs = hs_live(h.hs_id)
        if not (in_sf or in_hs):
            continue
        counts["persons"] += 1
        counts["shared_persons"] += in_sf and in_hs
        counts["inquiries"] += 1
        counts["mqls"] += h.mql
        counts["sals"] += h.outcome == "accepted" and h.decided_at is not None
        counts["rejected"] += h.outcome == "rejected" and h.decided_at is not None
        counts["sqls"] += h.opp is not None
        counts["won"] += bool(h.opp and h.opp.closed and h.opp.won)
        counts["lost"] += bool(h.opp and h.opp.closed and not h.opp.won)
    return counts


def _truth(ctx: Ctx, counts: Counter[str], people: int) -> dict[str, Any]:
    """What a correct sync must find, counted from the records as written."""
    sf, hs = ctx.world.salesforce, ctx.world.hubspot
    persons, shared = counts["persons"], counts["shared_persons"]
    funnel = {k: counts[k] for k in FUNNEL if k in counts}
    return {
        "persons": persons,
        "shared_persons": shared,
        "generated_people": people,
        "salesforce_live": {obj: rows.count_within(Bounds(gone=0))
                            for obj, rows in sorted(sf.objects.items())},
        "hubspot_live": {typ: rows.count_within(Bounds(gone=0))
                         for typ, rows in sorted(hs.objects.items())},
        "malformed": list(ctx.malformed),
        "merged": list(ctx.merged),
        "deleted": list(ctx.deleted),
        "funnel": funnel,
        "reference_definition": REFERENCE_DEFINITION,
        "anchor": ctx.anchor,
    }
