"""``/api/v1/commitments``: marketing's MQL promises and their attainment."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field, ValidationInfo, field_validator
from sqlmodel import select

from service.auth.models import Role, Team
from service.auth.service import Principal
from service.deps import SessionDep, Viewer, require
from service.errors import NotFound
from service.handoffs import commitments
from service.handoffs.models import Commitment
from service.pagination import CursorParam, Limit, Paginated, paginate

router = APIRouter(prefix="/api/v1", tags=["commitments"])
MarketingEditor = Depends(require(Role.editor, teams=(Team.marketing, Team.ops)))
Segment = Literal["SMB", "Mid-Market", "Enterprise", "Unknown"]


class CommitmentCreate(BaseModel):
    period_start: date
    period_end: date = Field(description="Inclusive: the period runs to the end of this day.")
    mqls_promised: int = Field(ge=0)
    min_acceptance_rate: float | None = Field(default=None, ge=0, le=1)
    segment: Segment | None = Field(default=None, description="Accounts by headcount; "
                                    "SMB < 100, Mid-Market < 1000, else Enterprise")

    @field_validator("period_end")
    @classmethod
    def _ordered(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("period_start")
        if start is not None and value < start:
            raise ValueError("period_end is before period_start")
        return value


class CommitmentPublic(BaseModel):
    id: int
    period_start: date
    period_end: date
    mqls_promised: int
    min_acceptance_rate: float | None
    segment: str | None
    created_by: str
    created_at: datetime
    definition_version: int | None = Field(description="the active definition counted")
    mqls_delivered: int | None = Field(description="null while no definition is active")
    attainment: float | None = Field(description="delivered ÷ promised")
    handoffs_accepted: int
    handoffs_rejected: int = Field(description="rejected or recycled")
    acceptance_rate: float | None
    meets_min_acceptance: bool | None
    sla_met: int
    sla_breached: int
    sla_compliance: float | None = Field(description="sales' side: met ÷ (met + breached)")


@router.post("/commitments", status_code=status.HTTP_201_CREATED,
             response_model=CommitmentPublic)
def create_commitment(body: CommitmentCreate, session: SessionDep,
                      principal: Principal = MarketingEditor) -> dict[str, Any]:
    """Marketing (or ops) records the MQLs it promises for a period."""
    created = commitments.create_commitment(session, **body.model_dump(),
                                            created_by=principal.name)
    return commitments.attainments(session, [created])[0]


@router.get("/commitments", response_model=Paginated[CommitmentPublic])
def list_commitments(session: SessionDep, _: Viewer, limit: Limit = 50,
                     cursor: CursorParam = None) -> dict[str, Any]:
    """Commitments, newest first, each with its attainment so far."""
    items, next_cursor = paginate(session, select(Commitment), Commitment.id, limit=limit,
                                  cursor=cursor, descending=True)
    return {"items": commitments.attainments(session, items), "next_cursor": next_cursor}


@router.get("/commitments/{commitment_id}", response_model=CommitmentPublic)
def get_commitment(commitment_id: int, session: SessionDep, _: Viewer) -> dict[str, Any]:
    found = session.get(Commitment, commitment_id)
    if found is None:
        raise NotFound(f"no commitment {commitment_id}")
    return commitments.attainments(session, [found])[0]
