"""The generator's plan objects: who works at the firm, which companies and campaigns exist,
and, per human, what happens to them over the year.

Planning first and writing records second keeps funnel shares exact (quotas, not coin flips)
and lets every record of one human be written in time order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from connectors.sandbox.world import World


@dataclass(slots=True)
class Owner:
    sf_id: str
    hs_id: str
    email: str
    first: str
    last: str
    zone: str
    region: str


@dataclass(slots=True)
class Account:
    name: str
    domain: str
    industry: str
    employees: int
    revenue: int
    country: str
    owner: Owner
    pool: str  # fit | small | foreign
    sf_id: str = ""
    hs_id: str | None = None


@dataclass(slots=True)
class Campaign:
    sf_id: str
    name: str
    type: str
    start: date
    end: date
    batch_at: datetime | None = None  # one import instant for events and list uploads
    members: int = 0


@dataclass(slots=True)
class Opp:
    amount: int
    created: datetime
    close_at: datetime
    closed: bool
    won: bool = False
    sf_id: str | None = None
    hs_id: str | None = None


@dataclass(slots=True)
class Human:
    """One person of the generated company's market, with their year planned out."""

    idx: int
    crm: str  # sf | hs | both
    source: str
    mql: bool
    fail: str | None
    account: Account
    first: str = ""
    last: str = ""
    email: str = ""
    title: str = ""
    score: int = 0
    owner: Owner | None = None
    created: datetime | None = None
    sf_created: datetime | None = None
    campaign: Campaign | None = None
    forms: list[datetime] = field(default_factory=list)
    clicks: list[datetime] = field(default_factory=list)
    visits: list[datetime] = field(default_factory=list)
    mql_at: datetime | None = None
    outcome: str | None = None  # accepted | rejected | pending
    reason: str | None = None
    decided_at: datetime | None = None
    touches: list[tuple[datetime, str]] = field(default_factory=list)
    converting: bool = False
    with_opp: bool = False
    converted_at: datetime | None = None
    opp: Opp | None = None
    closed_later_at: datetime | None = None
    recycled_at: datetime | None = None
    malformed: str | None = None
    dup: str | None = None  # lead | contact | hs
    dup_at: datetime | None = None
    merge_at: datetime | None = None
    delete_at: datetime | None = None
    archive_at: datetime | None = None
    lead_id: str | None = None
    contact_id: str | None = None
    hs_id: str | None = None
    dup_id: str | None = None

    @property
    def country(self) -> str:
        return self.account.country

    @property
    def in_sf(self) -> bool:
        return self.crm in ("sf", "both")

    @property
    def in_hs(self) -> bool:
        return self.crm in ("hs", "both")


@dataclass
class Ctx:
    """What every writer needs: the world, the seeded stream, the clock's bounds, the cast."""

    world: World
    rng: random.Random
    anchor: datetime
    start: datetime
    owners: list[Owner] = field(default_factory=list)
    by_region: dict[str, list[Owner]] = field(default_factory=dict)
    integration: Owner | None = None
    marketer: Owner | None = None
    accounts: list[Account] = field(default_factory=list)
    pools: dict[str, list[Account]] = field(default_factory=dict)
    campaigns: dict[str, list[Campaign]] = field(default_factory=dict)
    wins: list[tuple[datetime, Account]] = field(default_factory=list)
    malformed: list[tuple[str, str, str, str]] = field(default_factory=list)
    merged: list[tuple[str, str, str, str]] = field(default_factory=list)
    deleted: list[tuple[str, str, str]] = field(default_factory=list)
    used_emails: set[str] = field(default_factory=set)


Event = tuple[datetime, int, Callable[[], Any]]


def quota(rng: random.Random, n: int, shares: dict[str, float]) -> list[str]:
    """Exactly ``round(n * share)`` labels of each kind, in a seeded random order."""
    keys = list(shares)
    total = sum(shares.values())
    raw = [n * shares[k] / total for k in keys]
    counts = [int(x) for x in raw]
    by_fraction = sorted(range(len(keys)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_fraction[: n - sum(counts)]:
        counts[i] += 1
    labels = [k for k, c in zip(keys, counts, strict=True) for _ in range(c)]
    rng.shuffle(labels)
    return labels


def pick_weighted(rng: random.Random, items: list[Any], weights: list[float], k: int) -> set[int]:
    """Indices of ``k`` items drawn without replacement, likelier with weight (exact count)."""
    keyed = sorted(range(len(items)), key=lambda i: rng.random() ** (1.0 / weights[i]),
                   reverse=True)
    return set(keyed[:k])
