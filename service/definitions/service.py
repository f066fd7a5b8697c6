"""The definition's life cycle: draft, proposed, approved by both teams, active, superseded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.auth.models import Team
from service.auth.service import Principal
from service.db import utcnow
from service.definitions.models import DefinitionApproval, LeadDefinition
from service.definitions.rules import validate
from service.errors import Conflict, Forbidden, Invalid, NotFound

APPROVING_TEAMS = (Team.marketing, Team.sales)


def check_rules(rules: object) -> None:
    """422 naming the first bad path inside the rules (``rules.all[2].any[0].op``)."""
    errors = validate(rules)
    if errors:
        raise Invalid("; ".join(e.message for e in errors[:1]), field=f"body.{errors[0].path}")


def get_definition(session: Session, definition_id: int) -> LeadDefinition:
    found = session.get(LeadDefinition, definition_id)
    if found is None:
        raise NotFound(f"no lead definition {definition_id}")
    return found


def active_definition(session: Session) -> LeadDefinition | None:
    return session.exec(select(LeadDefinition).where(LeadDefinition.state == "active")).first()


def create_draft(session: Session, *, name: str, rules: dict[str, Any], notes: str | None,
                 principal: Principal) -> LeadDefinition:
    check_rules(rules)
    latest = session.exec(select(func.max(LeadDefinition.version))).one()
    draft = LeadDefinition(version=(latest or 0) + 1, name=name, rules=rules, notes=notes,
                           created_by=principal.name)
    session.add(draft)
    session.flush()
    return draft


def edit_draft(session: Session, definition: LeadDefinition, *, name: str | None,
               rules: dict[str, Any] | None, notes: str | None) -> LeadDefinition:
    if definition.state != "draft":
        raise Conflict(f"version {definition.version} is {definition.state} and frozen; "
                       "create a new version to change it")
    if rules is not None:
        check_rules(rules)
        definition.rules = rules
    if name is not None:
        definition.name = name
    if notes is not None:
        definition.notes = notes
    session.add(definition)
    return definition


def propose(session: Session, definition: LeadDefinition, *,
            effective_from: datetime | None) -> LeadDefinition:
    if definition.state != "draft":
        raise Conflict(f"only a draft can be proposed; version {definition.version} is "
                       f"{definition.state}")
    definition.state = "proposed"
    definition.proposed_at = utcnow()
    definition.effective_from = effective_from
    session.add(definition)
    return definition


def approvals(session: Session, definition_id: int) -> list[DefinitionApproval]:
    return list(session.exec(select(DefinitionApproval)
                             .where(DefinitionApproval.definition_id == definition_id)
                             .order_by(col(DefinitionApproval.at))))


def approve(session: Session, definition: LeadDefinition, principal: Principal,
            *, now: datetime | None = None) -> LeadDefinition:
    """Record one team's approval; the second team's (by another key) approves the version."""
    now = now or utcnow()
    if principal.team not in APPROVING_TEAMS:
        raise Forbidden("only a marketing or a sales key can approve a lead definition")
    if definition.state != "proposed":
        raise Conflict(f"only a proposed version can be approved; version {definition.version} "
                       f"is {definition.state}")
    given = approvals(session, definition.id)  # type: ignore[arg-type]
    if any(a.team == principal.team.value for a in given):
        raise Conflict(f"{principal.team.value} has already approved version "
                       f"{definition.version}; the other team must approve")
    if any(a.key_name == principal.name for a in given):
        raise Conflict("the same key cannot approve for both teams")
    session.add(DefinitionApproval(definition_id=definition.id, team=principal.team.value,
                                   key_name=principal.name, at=now))
    if len(given) + 1 == len(APPROVING_TEAMS):
        definition.state = "approved"
        definition.approved_at = now
        if definition.effective_from is None:
            definition.effective_from = now
    session.add(definition)
    session.flush()
    return definition


def activate_due(session: Session, *, now: datetime | None = None) -> LeadDefinition | None:
    """Activate the newest approved version whose effective date has come; answer it if any."""
    now = now or utcnow()
    due = session.exec(
        select(LeadDefinition).where(LeadDefinition.state == "approved",
                                     col(LeadDefinition.effective_from) <= now)
        .order_by(col(LeadDefinition.version).desc())
    ).first()
    if due is None:
        return None
    current = active_definition(session)
    if current is not None:
        if current.version > due.version:
            return None
        current.state = "superseded"
        current.superseded_at = now
        session.add(current)
        session.flush()
    due.state = "active"
    due.activated_at = now
    session.add(due)
    session.flush()
    return due
