"""The handoff back: marketing joins every large open deal.

After the HBR article's example (a brand manager joins any opportunity above $2 million),
each live, open opportunity at or above the threshold is announced once through the outbox,
naming the directory's liaison for the account's segment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from service.crm.models import Account, Opportunity
from service.handoffs.directory import LARGE_DEAL, liaison_for
from service.handoffs.models import DirectoryEntry, OutboxEvent
from service.handoffs.outbox import enqueue
from service.settings import Settings

DEFAULT_THRESHOLD = 2_000_000.0
KIND = "opportunity.large"


def segment_of(employees: int | None) -> str:
    """The account's size band: SMB under 100 people, Mid-Market under 1,000, else Enterprise."""
    if employees is None:
        return "Unknown"
    if employees < 100:
        return "SMB"
    if employees < 1000:
        return "Mid-Market"
    return "Enterprise"


def dedupe_key(opportunity_key: str) -> str:
    return f"opportunity:{opportunity_key}:large"


def flag_large_deals(session: Session, *, threshold: float) -> int:
    """Enqueue one announcement per large open deal not yet announced; how many are new."""
    opps = list(session.exec(select(Opportunity).where(
        col(Opportunity.live).is_(True), col(Opportunity.is_closed).is_(False),
        col(Opportunity.amount) >= threshold).order_by(col(Opportunity.id))))
    if not opps:
        return 0
    done = set(session.exec(select(OutboxEvent.dedupe_key).where(
        col(OutboxEvent.dedupe_key).in_([dedupe_key(o.key) for o in opps]))))
    opps = [o for o in opps if dedupe_key(o.key) not in done]
    account_keys = {o.account_key for o in opps if o.account_key}
    accounts = {a.key: a for a in session.exec(
        select(Account).where(col(Account.key).in_(account_keys)))} if account_keys else {}
    liaisons: dict[str, DirectoryEntry | None] = {}
    new = 0
    for opp in opps:
        account = accounts.get(opp.account_key or "")
        segment = segment_of(account.employees if account else None)
        if segment not in liaisons:
            liaisons[segment] = liaison_for(session, segment, LARGE_DEAL)
        payload = _payload(opp, account, segment, liaisons[segment], threshold)
        new += enqueue(session, kind=KIND, dedupe_key=dedupe_key(opp.key), payload=payload)
    return new


def _payload(opp: Opportunity, account: Account | None, segment: str,
             liaison: DirectoryEntry | None, threshold: float) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "opportunity_key": opp.key, "name": opp.name, "amount": opp.amount,
        "stage": opp.stage, "owner_key": opp.owner_key, "account_key": opp.account_key,
        "account_name": account.name if account else None, "segment": segment,
        "threshold": threshold, "liaison": None, "note": None,
    }
    if liaison is None:
        payload["note"] = (f"no directory entry for segment {segment!r} (or '*') and topic "
                           f"{LARGE_DEAL!r}: add one with POST /api/v1/directory")
    else:
        payload["liaison"] = {"segment": liaison.segment,
                              "marketing_name": liaison.marketing_name,
                              "marketing_email": liaison.marketing_email,
                              "sales_name": liaison.sales_name,
                              "sales_email": liaison.sales_email}
    return payload


def large_deal_hook(settings: Settings) -> Callable[[Session, set[int]], None]:
    """A sync page hook: after each page, announce deals that became large."""
    threshold = float(getattr(settings, "large_deal_threshold", DEFAULT_THRESHOLD))

    def hook(session: Session, _touched: set[int]) -> None:
        flag_large_deals(session, threshold=threshold)

    return hook
