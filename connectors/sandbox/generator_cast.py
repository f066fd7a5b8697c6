"""The firm and its market: sales owners, target accounts and the campaign calendar.

Accounts arrive as one initial import (a CRM migration), in batches that share a second, so
the sync sees the timestamp ties real imports produce.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from connectors.sandbox import generator_catalog as cat
from connectors.sandbox.generator_model import Account, Campaign, Ctx, Owner

OUR_DOMAIN = "lumenaut.example"
TLD = {"GB": "co.uk", "DE": "de", "FR": "fr", "AU": "com.au", "SG": "sg", "IN": "in",
       "BR": "com.br", "NL": "nl", "ES": "es", "JP": "jp"}


def make_owners(ctx: Ctx, people: int) -> None:
    """Sales reps in several zones, plus the marketing integration user and a marketer."""
    rng, sf, hs = ctx.rng, ctx.world.salesforce, ctx.world.hubspot
    n = min(20, max(8, round(people / 300)))
    regions = ["AMER"] * math.ceil(n * 0.45) + ["EMEA"] * math.ceil(n * 0.35)
    regions += ["APAC"] * max(1, n - len(regions))
    regions = regions[:n]
    teams = {"AMER": ("2001", "Sales Americas"), "EMEA": ("2002", "Sales EMEA"),
             "APAC": ("2003", "Sales APAC"), "MKT": ("2004", "Marketing")}
    joined = ctx.start
    used: set[str] = set()
    people_rows = [(r, f"Account Executive {r}") for r in regions]
    people_rows += [("MKT", "Marketing Automation"), ("MKT", "Marketing Manager")]
    for i, (region, title) in enumerate(people_rows):
        while True:
            first, last = rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES)
            if (first, last) not in used:
                used.add((first, last))
                break
        if title == "Marketing Automation":
            first, last = "Marketing", "Integration"
        zones = cat.ZONES_OF_REGION.get(region, ("America/New_York",))
        tz = zones[i % len(zones)]
        email = f"{first}.{last}@{OUR_DOMAIN}".lower()
        dept = "Marketing" if region == "MKT" else "Sales"
        job = title if region == "MKT" else rng.choice(
            ("Account Executive", "Account Executive", "Sales Development Representative",
             "Senior Account Executive"))
        rec = sf.insert("User", {
            "Email": email, "Username": email, "Name": f"{first} {last}", "FirstName": first,
            "LastName": last, "IsActive": True, "TimeZoneSidKey": tz, "Title": job,
            "Department": dept,
        }, at=joined)
        hs_id = str(61_000_000 + 17 * i)
        team_id, team_name = teams[region]
        hs.owners.append({
            "id": hs_id, "email": email, "firstName": first, "lastName": last,
            "userId": 9_100_000 + i, "type": "PERSON",
            "teams": [{"id": team_id, "name": team_name, "primary": True}],
            "createdAt": joined, "updatedAt": joined, "archived": False,
        })
        owner = Owner(rec["Id"], hs_id, email, first, last, tz, region)
        if title == "Marketing Automation":
            ctx.integration = owner
        elif title == "Marketing Manager":
            ctx.marketer = owner
        else:
            ctx.owners.append(owner)
            ctx.by_region.setdefault(region, []).append(owner)


def _company_name(ctx: Ctx, taken: set[str]) -> str:
    rng = ctx.rng
    for extra in range(50):
        words = [rng.choice(cat.COMPANY_WORDS)]
        if extra >= 3:
            words.append(rng.choice(cat.COMPANY_WORDS))
        name = " ".join([*words, rng.choice(cat.COMPANY_NOUNS)])
        if extra >= 20:
            name = f"{name} {extra}"
        if name not in taken:
            taken.add(name)
            return name
    raise RuntimeError("ran out of company names")


def make_accounts(ctx: Ctx, count: int) -> None:
    """Target accounts in three pools: fit (definition's countries, 50+ staff), small, foreign."""
    rng, sf = ctx.rng, ctx.world.salesforce
    taken: set[str] = set()
    pools = {"fit": [], "small": [], "foreign": []}
    import_at = ctx.start + timedelta(hours=2)
    labels = ["fit", "small", "foreign"] * 3  # guarantees every pool in tiny worlds
    labels += [rng.choices(("fit", "small", "foreign"), (38, 27, 35))[0]
               for _ in range(max(0, count - len(labels)))]
    for i, pool in enumerate(labels[:max(count, 9)]):
        if pool == "foreign":
            country = rng.choices(cat.OTHER_COUNTRIES, cat.OTHER_COUNTRY_WEIGHTS)[0]
        else:
            country = rng.choices(cat.FIT_COUNTRIES, cat.FIT_COUNTRY_WEIGHTS)[0]
        if pool == "small":
            employees = int(math.exp(rng.uniform(math.log(3), math.log(49))))
        elif pool == "fit":
            employees = int(math.exp(rng.uniform(math.log(50), math.log(25_000))))
        else:
            employees = int(math.exp(rng.uniform(math.log(5), math.log(25_000))))
        name = _company_name(ctx, taken)
        domain = name.lower().replace(" ", "") + "." + TLD.get(country, "com")
        industry = rng.choice(list(cat.INDUSTRIES))
        revenue = employees * rng.randrange(90_000, 260_000, 1000)
        region = cat.REGION_OF_COUNTRY[country]
        owner = rng.choice(ctx.by_region.get(region) or ctx.owners)
        acct = Account(name, domain, industry, employees, revenue, country, owner, pool)
        suffix = rng.choice(cat.COMPANY_SUFFIXES)
        rec = sf.insert("Account", {
            "Name": f"{name} {suffix}", "Website": f"https://www.{domain}",
            "Industry": industry, "NumberOfEmployees": employees, "AnnualRevenue": revenue,
            "BillingCountry": country, "Type": "Prospect", "OwnerId": owner.sf_id,
        }, at=import_at + timedelta(seconds=i // 100))
        acct.name = rec["Name"]
        acct.sf_id = rec["Id"]
        ctx.accounts.append(acct)
        pools[pool].append(acct)
    ctx.pools = pools


def make_hubspot_companies(ctx: Ctx, accounts: list[Account]) -> None:
    """Companies for the accounts HubSpot knows, imported once, 50 to a second."""
    hs = ctx.world.hubspot
    at = ctx.start + timedelta(days=5, hours=3)
    for i, acct in enumerate(accounts):
        rec = hs.insert("companies", {
            "name": acct.name, "domain": acct.domain,
            "industry": cat.INDUSTRIES[acct.industry],
            "numberofemployees": acct.employees, "annualrevenue": acct.revenue,
            "country": acct.country, "hubspot_owner_id": acct.owner.hs_id,
        }, at=at + timedelta(seconds=i // 50))
        acct.hs_id = rec["id"]


def make_campaigns(ctx: Ctx) -> None:
    """A year of campaigns: quarterly always-on programmes, monthly webinars and newsletters,
    events every six weeks and list purchases every two months."""
    rng, anchor = ctx.rng, ctx.anchor
    first = anchor - timedelta(days=372)
    out: dict[str, list[Campaign]] = {}
    sf = ctx.world.salesforce

    def add(kind: str, name: str, start: datetime, end: datetime,
            batch: datetime | None = None) -> None:
        out.setdefault(kind, []).append(Campaign(
            sf.new_id("Campaign"), name, kind, start.date(), min(end, anchor).date(), batch))

    for q in range(5):
        s = first + timedelta(days=91 * q)
        label = f"{s:%Y} Q{(s.month - 1) // 3 + 1}"
        add("Web Form", f"Website - Contact Us {label}", s, s + timedelta(days=90))
        add("Demo Request", f"Paid Search - Demo Request {label}", s, s + timedelta(days=90))
        add("Partner", f"Partner Program {label}", s, s + timedelta(days=90))
    for m in range(13):
        day = first + timedelta(days=30 * m + 25)
        if day < anchor:
            add("Webinar", f"Webinar: Revenue Operations {day:%b %Y}", day - timedelta(days=21),
                day)
        add("Email", f"Newsletter {day:%b %Y}", day - timedelta(days=25), day + timedelta(days=5))
    for e in range(9):
        day = first + timedelta(days=42 * e + 20)
        batch = day.replace(hour=15, minute=0, second=0) + timedelta(days=rng.randint(1, 4))
        if batch < anchor:
            city = ("Boston", "London", "San Francisco", "Berlin", "Chicago", "Singapore",
                    "New York", "Austin", "Paris")[e]
            add("Event", f"Trade Show {city} {day:%Y}", day - timedelta(days=2), day, batch)
    for li in range(6):
        batch = (first + timedelta(days=60 * li + 10)).replace(hour=10, minute=30, second=0)
        if batch < anchor:
            add("List Upload", f"Purchased List {batch:%b %Y}", batch, batch, batch)
    ctx.campaigns = out


def write_campaigns(ctx: Ctx) -> None:
    """Insert the campaigns once their member counts (and so their spend) are known."""
    rng, sf = ctx.rng, ctx.world.salesforce
    owner = ctx.marketer.sf_id if ctx.marketer else None
    for kind, camps in ctx.campaigns.items():
        for c in camps:
            actual = round(max(c.members, 3) * cat.COST_PER_MEMBER[kind] * rng.uniform(0.7, 1.3))
            created = datetime(c.start.year, c.start.month, c.start.day, 14, tzinfo=UTC)
            created = max(created - timedelta(days=14), ctx.start)
            ended = c.end < ctx.anchor.date()
            sf.insert("Campaign", {
                "Id": c.sf_id, "Name": c.name, "Type": kind,
                "Status": "Completed" if ended else "In Progress", "IsActive": not ended,
                "StartDate": c.start, "EndDate": c.end,
                "BudgetedCost": round(actual * rng.uniform(0.85, 1.2), -2), "ActualCost": actual,
                "OwnerId": owner,
            }, at=created)
