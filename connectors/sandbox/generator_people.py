"""Who raises a hand, when, through which source, and what marketing sees them do.

Each human is shaped so the reference lead definition qualifies exactly the planned MQLs:
MQLs get a fitting account, a work address and a score or form; everyone else fails at least
one criterion, for a stated reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.sandbox import generator_catalog as cat
from connectors.sandbox.generator_model import Ctx, Human, pick_weighted, quota
from connectors.sandbox.generator_time import arrival

CAMPAIGN_KIND = {"Partner Referral": "Partner"}
NON_MQL_REASONS = {"country": 0.45, "size": 0.30, "freemail": 0.12, "engagement": 0.13}


def integration_lag(at: datetime) -> datetime:
    """When the CRM integration copies a record: its next 10-minute cycle, plus a few seconds."""
    nxt = at.replace(second=0, microsecond=0) + timedelta(minutes=10 - at.minute % 10)
    return nxt + timedelta(seconds=7)


def plan_humans(ctx: Ctx, people: int, *, offset: int = 0) -> list[Human]:
    """``people`` humans numbered from ``offset``, their funnel shares met by quota."""
    rng = ctx.rng
    crms = quota(rng, people, cat.CRM_SPLIT)
    sources = quota(rng, people, cat.LEAD_SOURCES)
    n_mql = round(people * cat.INQUIRY_TO_MQL)
    mqls = pick_weighted(rng, sources, [cat.MQL_WEIGHT[s] for s in sources], n_mql)
    fails = quota(rng, people - n_mql, NON_MQL_REASONS)
    humans: list[Human] = []
    for i in range(people):
        source = sources[i]
        fail = None if i in mqls else fails.pop()
        if fail == "engagement" and source in cat.FORM_SOURCES:
            fail = "freemail"
        pool = {"country": "foreign", "size": "small"}.get(fail or "", "fit")
        account = rng.choice(ctx.pools[pool])
        h = Human(offset + i, crms[i], source, i in mqls, fail, account)
        _identity(ctx, h)
        _arrival(ctx, h)
        humans.append(h)
    return humans


def _identity(ctx: Ctx, h: Human) -> None:
    rng = ctx.rng
    h.first, h.last = rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES)
    free = h.fail == "freemail" or (h.fail in ("country", "size") and rng.random() < 0.06)
    domain = rng.choice(cat.FREE_MAIL) if free else h.account.domain
    h.email = unique_email(ctx, f"{h.first}.{h.last}".lower(), domain)
    senior = 0.5 if h.mql else 0.2
    h.title = rng.choice(cat.TITLES_SENIOR if rng.random() < senior else cat.TITLES_OTHER)
    if h.mql:
        h.score = rng.randint(20, 99)
    elif h.fail == "engagement":
        h.score = rng.randint(5, 59)
    else:
        h.score = rng.randint(5, 95)
    region_owners = ctx.by_region.get(cat.REGION_OF_COUNTRY[h.country]) or ctx.owners
    if h.mql or h.in_sf or rng.random() < 0.6:
        acct_owner = h.account.owner
        h.owner = acct_owner if rng.random() < 0.7 else rng.choice(region_owners)


def unique_email(ctx: Ctx, local: str, domain: str) -> str:
    """A lower-case address no other human has (a digit is added on a clash)."""
    email = f"{local}@{domain}"
    n = 1
    while email in ctx.used_emails:
        n += 1
        email = f"{local}{n}@{domain}"
    ctx.used_emails.add(email)
    return email


def _arrival(ctx: Ctx, h: Human) -> None:
    """Creation time and campaign, then the marketing activity that follows."""
    rng, anchor = ctx.rng, ctx.anchor
    year_start = anchor - timedelta(days=365)
    kind = CAMPAIGN_KIND.get(h.source, h.source)
    camps = ctx.campaigns[kind]
    hours = cat.REGION_UTC_HOURS[cat.REGION_OF_COUNTRY[h.country]]
    if kind in ("Event", "List Upload"):
        h.campaign = rng.choice(camps)
        h.created = h.campaign.batch_at
    elif kind == "Webinar":
        h.campaign = rng.choice(camps)
        day = datetime(h.campaign.end.year, h.campaign.end.month, h.campaign.end.day,
                       tzinfo=anchor.tzinfo)
        h.created = arrival(rng, max(day - timedelta(days=21), year_start),
                            min(day, anchor - timedelta(hours=1)), hours)
    else:
        h.created = arrival(rng, year_start, anchor - timedelta(minutes=30), hours)
        day = h.created.date()
        h.campaign = next((c for c in camps if c.start <= day <= c.end), camps[-1])
    h.campaign.members += 1
    h.sf_created = integration_lag(h.created) if h.crm == "both" else h.created
    if h.sf_created > anchor:
        h.sf_created = anchor
    _marketing(ctx, h)


def _marketing(ctx: Ctx, h: Human) -> None:
    """Form submissions, email clicks and web visits; the first qualifying one is the MQL."""
    rng, anchor = ctx.rng, ctx.anchor
    assert h.created is not None
    h.mql_at = None
    if h.source in cat.FORM_SOURCES:
        h.forms.append(h.created)
    if h.mql:
        if h.source in cat.FORM_SOURCES or h.score >= 60:
            h.mql_at = h.created
        else:
            form_at = h.created + timedelta(days=rng.uniform(1, 60))
            form_at = form_at.replace(microsecond=0)
            if form_at >= anchor - timedelta(minutes=1):
                h.score = rng.randint(60, 99)
                h.mql_at = h.created
            else:
                h.forms.append(form_at)
                h.mql_at = form_at
    if h.fail == "engagement":
        return
    base = h.mql_at or h.created

    def draws(n: int) -> list[datetime]:
        out = []
        for _ in range(n):
            at = (base + timedelta(hours=rng.uniform(2, 24 * 200))).replace(microsecond=0)
            if at < anchor:
                out.append(at)
        return sorted(out)

    h.forms += draws(rng.choice((0, 0, 0, 1, 1, 2)))
    h.clicks = draws(rng.choice((0, 0, 1, 1, 2, 3)))
    h.visits = draws(rng.choice((0, 1, 1, 2, 3)))
