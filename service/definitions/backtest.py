"""Back-test: replay a candidate definition over history beside the active one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from metrics.formulas import acceptance_rate
from service.definitions.facts import load_facts
from service.definitions.models import LeadDefinition
from service.definitions.rules import first_met_at
from service.people.models import Person, StageEvent

BATCH = 1000


def _outcomes(session: Session, ids: list[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for pid, stage in session.exec(select(StageEvent.person_id, StageEvent.stage).where(
            col(StageEvent.person_id).in_(ids),
            col(StageEvent.stage).in_(("sal", "rejected", "sql", "won")))):
        found.setdefault(pid, set()).add(stage)
    return found


def run_backtest(session: Session, candidate: LeadDefinition, active: LeadDefinition | None, *,
                 start: datetime, end: datetime, now: datetime,
                 progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """MQLs per month, acceptance and conversion of whom each version would qualify.

    Outcomes are what actually happened to those people (accepted, rejected, opportunity,
    won, at any time), so the figures say how good each version's picks turned out to be.
    """
    horizon = min(end, now)
    total = session.exec(select(func.count()).select_from(Person).where(
        Person.live, col(Person.merged_into).is_(None))).one() or 1
    versions = {"candidate": candidate, **({"active": active} if active else {})}
    picked: dict[str, dict[int, datetime]] = {name: {} for name in versions}
    outcomes: dict[int, set[str]] = {}
    last_id, seen = 0, 0
    while True:
        batch = list(session.exec(select(Person).where(
            Person.live, col(Person.id) > last_id, col(Person.merged_into).is_(None))
            .order_by(Person.id).limit(BATCH)))
        if not batch:
            break
        facts = load_facts(session, batch)
        hits: list[int] = []
        for pid, fact in facts.items():
            for name, definition in versions.items():
                at = first_met_at(definition.rules, fact, now=horizon)
                if at is not None and start <= at < end:
                    picked[name][pid] = at
                    hits.append(pid)
        outcomes.update(_outcomes(session, sorted(set(hits))))
        last_id = batch[-1].id or last_id
        seen += len(batch)
        if progress is not None:
            progress(min(seen / total, 1.0))
    result: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat()}
    for name, definition in versions.items():
        result[name] = _summary(definition, picked[name], outcomes)
    if active is None:
        result["active"] = None
    cand, act = set(picked["candidate"]), set(picked.get("active", {}))
    result["added"] = sorted(cand - act)
    result["dropped"] = sorted(act - cand)
    result["added_count"], result["dropped_count"] = len(result["added"]), len(result["dropped"])
    return result


def _summary(definition: LeadDefinition, picked: dict[int, datetime],
             outcomes: dict[int, set[str]]) -> dict[str, Any]:
    months = Counter(at.strftime("%Y-%m") for at in picked.values())
    reached = [outcomes.get(pid, set()) for pid in picked]
    accepted = sum(1 for o in reached if "sal" in o or "sql" in o or "won" in o)
    rejected = sum(1 for o in reached if "rejected" in o and not ({"sal", "sql", "won"} & o))
    n = len(picked)
    to_opp = sum(1 for o in reached if "sql" in o or "won" in o)
    won = sum(1 for o in reached if "won" in o)
    return {
        "version": definition.version,
        "mqls": n,
        "mqls_per_month": dict(sorted(months.items())),
        "accepted": accepted,
        "rejected": rejected,
        "acceptance_rate": acceptance_rate(accepted, rejected, n - accepted - rejected).value,
        "to_opportunity": to_opp,
        "to_won": won,
        "opportunity_rate": round(to_opp / n, 4) if n else None,
        "won_rate": round(won / n, 4) if n else None,
    }
