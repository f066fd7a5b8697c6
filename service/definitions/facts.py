"""Load what the rule language needs about persons, a batch at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from service.crm.models import Account, Activity, FieldChange
from service.definitions.rules import Activity as RuleActivity
from service.definitions.rules import Facts
from service.people.models import Person
from service.sync.models import CrmRow

_FIRMOGRAPHICS = {"company": "name", "company_employees": "employees",
                  "company_industry": "industry", "company_annual_revenue": "annual_revenue"}


def person_dict(person: Person) -> dict[str, Any]:
    email = person.email or None
    return {
        "email": email,
        "email_domain": email.rsplit("@", 1)[1] if email and "@" in email else None,
        "title": person.title,
        "country": person.country,
        "lead_source": person.lead_source,
        "score": person.score,
    }


def load_facts(session: Session, persons: Iterable[Person]) -> dict[int, Facts]:
    """Facts per person id, in a handful of queries for the whole batch."""
    persons = [p for p in persons if p.id is not None and p.created_at is not None]
    if not persons:
        return {}
    ids = [p.id for p in persons]
    rows: dict[int, list[CrmRow]] = defaultdict(list)
    for row in session.exec(select(CrmRow).where(col(CrmRow.person_id).in_(ids),
                                                 CrmRow.kind == "person",
                                                 col(CrmRow.deleted).is_(False))):
        rows[row.person_id].append(row)  # type: ignore[index]
    key_owner = {r.key: pid for pid, rs in rows.items() for r in rs}
    activities: dict[int, list[RuleActivity]] = defaultdict(list)
    scores: dict[int, list[tuple[Any, Any]]] = defaultdict(list)
    if key_owner:
        for act in session.exec(select(Activity).where(col(Activity.record_key).in_(key_owner),
                                                       Activity.live)):
            activities[key_owner[act.record_key]].append(RuleActivity(act.kind, act.at))
        for ch in session.exec(select(FieldChange).where(col(FieldChange.record_key).in_(key_owner),
                                                         FieldChange.field == "score")
                               .order_by(FieldChange.at)):
            scores[key_owner[ch.record_key]].append((_number(ch.new_value), ch.at))
    account_keys = {p.account_key for p in persons if p.account_key}
    accounts = {a.key: a for a in session.exec(select(Account).where(
        col(Account.key).in_(account_keys)))} if account_keys else {}
    out: dict[int, Facts] = {}
    for p in persons:
        assert p.id is not None and p.created_at is not None
        history: dict[str, list[tuple[Any, Any]]] = {}
        if scores.get(p.id):
            history["person.score"] = sorted(scores[p.id], key=lambda v: v[1])
        out[p.id] = Facts(person=person_dict(p), account=_account(accounts.get(p.account_key or ""),
                                                                  rows.get(p.id, [])),
                          activities=sorted(activities.get(p.id, []), key=lambda a: a.at),
                          created_at=p.created_at, field_history=history)
    return out


def _account(account: Account | None, rows: list[CrmRow]) -> dict[str, Any] | None:
    if account is not None:
        return {"name": account.name, "industry": account.industry,
                "employees": account.employees, "annual_revenue": account.annual_revenue,
                "country": account.country, "is_customer": account.is_customer}
    # a lead before conversion carries its company's firmographics itself
    for row in sorted(rows, key=lambda r: r.modstamp, reverse=True):
        values = {name: row.payload.get(src) for src, name in _FIRMOGRAPHICS.items()}
        if any(v is not None for v in values.values()):
            return {**values, "country": None, "is_customer": False}
    return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
