"""The observed evidence: what the data Truce holds says about how the teams actually work.

Each function reads one fact for :class:`EvidenceFacts`; the placement rules themselves are
plain code in ``placement.py``. ``now`` is injected so a test can pin the windows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, func
from sqlmodel import Session, col, select

from metrics.facts import ClockFact, clock_outcome_sql
from metrics.formulas import forecast_accuracy as forecast_accuracy_formula
from metrics.models import Forecast
from metrics.query import segment_of
from service.alignment.placement import EvidenceFacts
from service.alignment.repository import distinct_metrics_read
from service.crm.models import Account, Opportunity, Owner
from service.definitions.models import DefinitionApproval, LeadDefinition
from service.handoffs.models import Handoff, SlaPolicy
from service.people.decisions import DEFAULT_MAPPING, StatusMapping
from service.people.models import StageEvent
from service.sync.models import CrmRow

DECISIONS_WINDOW = timedelta(days=180)
SLA_WINDOW = timedelta(days=90)
METRICS_WINDOW = timedelta(days=30)
FORECAST_WINDOW = timedelta(days=365)
DISPUTE_WINDOW = timedelta(days=180)
APPROVING_TEAMS = frozenset({"marketing", "sales"})
# Statuses the contract names as undecided: known vocabulary, just not a decision yet.
UNDECIDED_STATUSES: dict[str, frozenset[str]] = {
    "salesforce": frozenset({"Open - Not Contacted", "Closed - Converted"}),
    "hubspot": frozenset({"NEW", "OPEN"}),
}
DISPUTING_STAGES = ("sal", "sql")


def gather_facts(session: Session, *, now: datetime) -> EvidenceFacts:
    """Every indicator's raw number, read in one go."""
    return EvidenceFacts(
        active_definition_jointly_approved=definition_jointly_approved(session),
        sla_policies_in_force=sla_policies_in_force(session),
        decisions_with_reason_share=decisions_with_reason_share(session, now=now),
        sla_compliance=sla_compliance(session, now=now),
        crm_status_vocabulary_mapped_share=status_vocabulary_mapped_share(session),
        shared_metrics_queried_30d=distinct_metrics_read(session, since=now - METRICS_WINDOW),
        forecast_accuracy=forecast_accuracy(session, today=now.date()),
        rejection_dispute_rate=rejection_dispute_rate(session, now=now),
        marketing_sourced_share_measured=marketing_sourced_share_measured(session),
    )


def definition_jointly_approved(session: Session) -> bool:
    """An active definition signed off by both Marketing and Sales: a shared 'what is a lead'."""
    teams = set(session.exec(
        select(DefinitionApproval.team)
        .join(LeadDefinition, col(LeadDefinition.id) == DefinitionApproval.definition_id)
        .where(LeadDefinition.state == "active")))
    return teams >= APPROVING_TEAMS


def sla_policies_in_force(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(SlaPolicy)
                            .where(col(SlaPolicy.active).is_(True))).one())


def decisions_with_reason_share(session: Session, *, now: datetime) -> float | None:
    """Rejected or recycled handoffs that say why, over all of them, in the last 180 days."""
    decided = (col(Handoff.state).in_(("rejected", "recycled")),
               col(Handoff.decided_at) >= now - DECISIONS_WINDOW,
               col(Handoff.decided_at) <= now)
    total = int(session.exec(select(func.count()).select_from(Handoff).where(*decided)).one())
    if not total:
        return None
    with_reason = int(session.exec(select(func.count()).select_from(Handoff).where(
        *decided, col(Handoff.reason).is_not(None), func.trim(Handoff.reason) != "")).one())
    return with_reason / total


def sla_compliance(session: Session, *, now: datetime) -> float | None:
    """Met over met-or-breached, for clocks that fell due in the last 90 days."""
    outcome = clock_outcome_sql(now).label("outcome")
    rows = session.exec(select(outcome, func.count()).where(
        col(ClockFact.due_at) >= now - SLA_WINDOW, col(ClockFact.due_at) < now)
        .group_by(outcome))
    counts = {state: int(count) for state, count in rows}
    met, breached = counts.get("met", 0), counts.get("breached", 0)
    return met / (met + breached) if met + breached else None


def status_vocabulary_mapped_share(session: Session, *,
                                   mapping: StatusMapping = DEFAULT_MAPPING) -> float | None:
    """Live CRM person rows whose status Truce understands (or that have none), over all."""
    status = CrmRow.payload["status"].as_string()  # type: ignore[index]
    rows = session.exec(select(CrmRow.source, status, func.count()).where(
        CrmRow.kind == "person", col(CrmRow.deleted).is_(False),
        col(CrmRow.merged_into).is_(None)).group_by(col(CrmRow.source), status))
    total = known = 0
    for source, value, count in rows:
        total += int(count)
        if (not value or mapping.decision(source, value) is not None
                or value in UNDECIDED_STATUSES.get(source, frozenset())):
            known += int(count)
    return known / total if total else None


def forecast_accuracy(session: Session, *, today: date) -> float | None:
    """Mean accuracy of forecasts for periods that ended in the last year, against won revenue.

    A forecast for one team or segment is compared with that team's or segment's deals only,
    as the ``forecast-accuracy`` metric does.
    """
    forecasts = list(session.exec(select(Forecast).where(
        col(Forecast.period_end) >= today - FORECAST_WINDOW, col(Forecast.period_end) < today)))
    if not forecasts:
        return None
    won = session.exec(
        select(Opportunity.amount, Opportunity.close_date, Owner.team, Account.employees)
        .join(Owner, col(Owner.key) == Opportunity.owner_key, isouter=True)
        .join(Account, col(Account.key) == Opportunity.account_key, isouter=True)
        .where(col(Opportunity.live).is_(True), col(Opportunity.is_won).is_(True),
               col(Opportunity.close_date) >= min(f.period_start for f in forecasts),
               col(Opportunity.close_date) <= max(f.period_end for f in forecasts)))
    deals = [(float(amount or 0), closed, team, segment_of(employees))
             for amount, closed, team, employees in won]
    pairs = []
    for forecast in forecasts:
        actual = sum(amount for amount, closed, team, segment in deals
                     if forecast.period_start <= closed <= forecast.period_end
                     and (forecast.team is None or team == forecast.team)
                     and (forecast.segment is None or segment == forecast.segment))
        pairs.append((forecast.amount, actual))
    return forecast_accuracy_formula(pairs).value


def rejection_dispute_rate(session: Session, *, now: datetime) -> float | None:
    """Rejections of the last 180 days that the person later proved wrong, over all of them.

    A rejection is disputed when the same person was later accepted (``sal``) or became an
    opportunity (``sql``) after all: the rejection did not hold.
    """
    rejected = (Handoff.state == "rejected", col(Handoff.decided_at).is_not(None),
                col(Handoff.decided_at) >= now - DISPUTE_WINDOW, col(Handoff.decided_at) <= now)
    total = int(session.exec(select(func.count()).select_from(Handoff).where(*rejected)).one())
    if not total:
        return None
    later = exists().where(StageEvent.person_id == Handoff.person_id,
                           col(StageEvent.stage).in_(DISPUTING_STAGES),
                           col(StageEvent.at) > Handoff.decided_at)
    disputed = int(session.exec(select(func.count()).select_from(Handoff)
                                .where(*rejected, later)).one())
    return disputed / total


def marketing_sourced_share_measured(session: Session) -> bool:
    """True once a won deal can be traced to a person Marketing qualified (an MQL event)."""
    sourced = (select(Opportunity.id)
               .join(CrmRow, col(CrmRow.key) == Opportunity.person_record_key)
               .join(StageEvent, and_(col(StageEvent.person_id) == CrmRow.person_id,
                                      col(StageEvent.stage) == "mql"))
               .where(col(Opportunity.live).is_(True), col(Opportunity.is_won).is_(True))
               .limit(1))
    return session.exec(sourced).first() is not None

