"""What sales does with each MQL, and which records go wrong (duplicates, deletions, junk).

Outcomes are handed out by quota so the funnel lands inside the reference ranges for any
seed; the timing of each step is drawn per human in the owner's business hours.
"""

from __future__ import annotations

import math
from datetime import timedelta

from connectors.sandbox import generator_catalog as cat
from connectors.sandbox.generator_model import Ctx, Human, Opp, quota
from connectors.sandbox.generator_time import after_business_minutes, later, react

MALFORMED_KINDS = (
    ("sf", "invalid email"), ("sf", "missing LastName"), ("opp", "impossible CloseDate"),
    ("hs", "missing email and name"), ("hs", "invalid email"),
    ("sf", "ConvertedDate before CreatedDate"),
)


def plan_sales(ctx: Ctx, humans: list[Human]) -> None:
    rng = ctx.rng
    mqls = [h for h in humans if h.mql]
    outcomes = quota(rng, len(mqls), cat.MQL_OUTCOMES)
    for h, outcome in zip(mqls, outcomes, strict=True):
        h.outcome = outcome
    accepted = [h for h in mqls if h.outcome == "accepted"]
    for h, c in zip(accepted, quota(rng, len(accepted), {
            "yes": cat.ACCEPTED_CONVERTED, "no": 1 - cat.ACCEPTED_CONVERTED}), strict=True):
        h.converting = c == "yes"
    converting = [h for h in accepted if h.converting]
    for h, c in zip(converting, quota(rng, len(converting), {
            "yes": cat.CONVERTED_WITH_OPPORTUNITY,
            "no": 1 - cat.CONVERTED_WITH_OPPORTUNITY}), strict=True):
        h.with_opp = c == "yes"
    rejected = [h for h in mqls if h.outcome == "rejected"]
    for h, r in zip(rejected, quota(rng, len(rejected), cat.REJECTION_REASONS), strict=True):
        h.reason = r
    for h in mqls:
        _timeline(ctx, h)
    closed = [h.opp for h in mqls if h.opp and h.opp.closed]
    matured = ctx.anchor - timedelta(days=181)  # older than the longest cycle: all closed
    for cohort in ([o for o in closed if o.created < matured],
                   [o for o in closed if o.created >= matured]):
        for opp, w in zip(cohort, quota(rng, len(cohort), {
                "won": cat.CLOSED_WON, "lost": 1 - cat.CLOSED_WON}), strict=True):
            opp.won = w == "won"
    opps = [h.opp for h in mqls if h.opp]
    if len(opps) >= 100:  # a rare enterprise deal or two
        for opp in rng.sample(opps, max(1, len(opps) // 250)):
            opp.amount = rng.randrange(2_100_000, 4_800_000, 10_000)


def _timeline(ctx: Ctx, h: Human) -> None:
    rng, anchor = ctx.rng, ctx.anchor
    assert h.owner and h.mql_at and h.sf_created
    tz = h.owner.zone
    base = max(h.mql_at, h.sf_created) if h.in_sf else h.mql_at
    touched = {"accepted": 0.97, "rejected": 0.7, "pending": 0.5}[h.outcome or "pending"]
    first_touch = react(base, tz, rng) if rng.random() < touched else None
    if h.outcome == "accepted":
        h.decided_at = (later(rng, first_touch, min_h=0.03, max_h=0.6) if first_touch
                        else react(base, tz, rng))
    elif h.outcome == "rejected":
        h.decided_at = react(first_touch or base, tz, rng)
    if first_touch:
        h.touches.append((first_touch, rng.choice(("call", "call", "call", "email", "email"))))
    if h.decided_at and h.decided_at > anchor:
        h.decided_at = None
        h.converting = h.with_opp = False
    if h.outcome == "pending" and first_touch and rng.random() < 0.4:
        h.touches.append((later(rng, first_touch, min_h=20, max_h=120), "email"))
    if not h.decided_at:
        _clip_touches(ctx, h)
        return
    if h.outcome == "rejected":
        if h.reason == "Bad Timing" and rng.random() < 0.3:
            h.recycled_at = later(rng, h.decided_at, min_h=24 * 30, max_h=24 * 90)
        _clip_touches(ctx, h)
        return
    _working(ctx, h)


def _working(ctx: Ctx, h: Human) -> None:
    """An accepted lead: follow-ups, maybe a meeting, then conversion and an opportunity."""
    rng, anchor = ctx.rng, ctx.anchor
    assert h.owner and h.decided_at
    at = h.decided_at
    for _ in range(rng.randint(1, 4)):
        at = after_business_minutes(at, rng.randint(300, 2400), h.owner.zone)
        h.touches.append((at, "meeting" if rng.random() < 0.25 else rng.choice(("call", "email"))))
    if h.converting:
        h.converted_at = after_business_minutes(at, rng.randint(60, 5000), h.owner.zone)
        if h.converted_at > anchor:
            h.converted_at = None
    if not h.converted_at:
        if rng.random() < 0.3:
            h.closed_later_at = later(rng, at, min_h=24 * 5, max_h=24 * 40)
            h.reason = rng.choice(("No Budget", "Not Decision Maker", "Competitor"))
        _clip_touches(ctx, h)
        return
    if h.with_opp:
        cycle = min(180.0, max(20.0, math.exp(rng.gauss(math.log(55), 0.55))))
        close_at = later(rng, h.converted_at, min_h=24 * cycle, max_h=24 * cycle + 8)
        amount = int(min(250_000, max(5_000, math.exp(rng.gauss(math.log(28_000), 0.9)))))
        h.opp = Opp(round(amount, -2), h.converted_at, close_at, close_at <= anchor)
        t, end = h.converted_at, min(close_at, anchor)
        while True:
            t = later(rng, t, min_h=24 * 3, max_h=24 * 21)
            if t >= end:
                break
            h.touches.append((t, rng.choice(("call", "email", "email", "meeting"))))
    _clip_touches(ctx, h)


def _clip_touches(ctx: Ctx, h: Human) -> None:
    h.touches = sorted(t for t in h.touches if t[0] < ctx.anchor)
    for name in ("closed_later_at", "recycled_at"):
        value = getattr(h, name)
        if value is not None and value >= ctx.anchor:
            setattr(h, name, None)


def plan_trouble(ctx: Ctx, humans: list[Human]) -> list[str]:
    """Pick the malformed, duplicated, deleted and archived records (disjoint sets).

    Answers the reasons of malformed records that belong to no human (stray opportunities).
    """
    rng, anchor = ctx.rng, ctx.anchor
    n = len(humans)
    quiet = [h for h in humans if not h.mql]
    rng.shuffle(quiet)
    n_bad = max(3, round(n * 0.003)) if n >= 300 else (1 if n >= 50 else 0)
    kinds = [MALFORMED_KINDS[i % len(MALFORMED_KINDS)] for i in range(n_bad)]
    taken: set[int] = set()
    strays: list[str] = []
    for where, reason in kinds:
        if where == "opp":
            strays.append(reason)
            continue
        h = next((x for x in quiet if x.crm == where and x.idx not in taken), None)
        if h is not None:
            h.malformed = reason
            taken.add(h.idx)
    free = [h for h in quiet if h.idx not in taken]
    sf_people = [h for h in free if h.in_sf]
    for h in sf_people[: round(sum(1 for x in humans if x.in_sf) * 0.01)]:
        taken.add(h.idx)
        if h.created and h.created < anchor - timedelta(days=16) and rng.random() < 0.4:
            h.delete_at = anchor - timedelta(seconds=rng.randint(3600, 14 * 86400))
        else:
            h.delete_at = later(rng, h.sf_created or anchor, min_h=2, max_h=24 * 60)
    hs_people = [h for h in free if h.in_hs and h.idx not in taken]
    for h in hs_people[: round(sum(1 for x in humans if x.in_hs) * 0.01)]:
        taken.add(h.idx)
        h.archive_at = later(rng, h.created or anchor, min_h=2, max_h=24 * 90)
    budget = {
        "lead": round(sum(1 for x in humans if x.in_sf) * 0.01),
        "contact": max(1, round(sum(1 for x in humans if x.converted_at) * 0.01)),
        "hs": round(sum(1 for x in humans if x.in_hs) * 0.01),
    }
    for h in rng.sample(humans, len(humans)):
        if h.idx not in taken and not h.malformed:
            _maybe_duplicate(ctx, h, budget)
    for h in humans:
        for name in ("delete_at", "archive_at"):
            if getattr(h, name) and getattr(h, name) >= anchor:
                setattr(h, name, None)
    return strays


def _maybe_duplicate(ctx: Ctx, h: Human, budget: dict[str, int]) -> None:
    """Give ``h`` a duplicate record, later merged into the original, while budget lasts."""
    rng, anchor = ctx.rng, ctx.anchor
    kinds = []
    if h.in_sf and budget["lead"]:
        kinds.append(("lead", h.sf_created))
    if h.converted_at and budget["contact"]:
        kinds.append(("contact", h.converted_at))
    if h.in_hs and budget["hs"]:
        kinds.append(("hs", h.created))
    if not kinds:
        return
    kind, since = rng.choice(kinds)
    assert since is not None
    dup_at = later(rng, since, min_h=48, max_h=24 * 60)
    merge_at = later(rng, dup_at, min_h=24, max_h=24 * 10)
    if merge_at >= anchor or (kind == "lead" and h.converted_at and merge_at >= h.converted_at):
        return
    budget[kind] -= 1
    h.dup, h.dup_at, h.merge_at = kind, dup_at, merge_at
