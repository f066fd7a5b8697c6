"""Lead-definition versions, their approvals, and back-test jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import JSONType, utc_field

STATES = ("draft", "proposed", "approved", "active", "superseded")


class LeadDefinition(SQLModel, table=True):
    __tablename__ = "lead_definition"

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(unique=True)
    name: str = Field(max_length=200)
    notes: str | None = Field(default=None, max_length=4000)
    rules: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    state: str = Field(default="draft", max_length=20, index=True)
    created_by: str = Field(max_length=100)
    created_at: datetime = utc_field(now=True)
    proposed_at: datetime | None = utc_field(nullable=True)
    approved_at: datetime | None = utc_field(nullable=True)
    effective_from: datetime | None = utc_field(nullable=True)
    activated_at: datetime | None = utc_field(nullable=True)
    superseded_at: datetime | None = utc_field(nullable=True)


class DefinitionApproval(SQLModel, table=True):
    """One team's sign-off; two teams, two different keys."""

    __tablename__ = "definition_approval"
    __table_args__ = (
        UniqueConstraint("definition_id", "team", name="uq_definition_approval_team"),
    )

    id: int | None = Field(default=None, primary_key=True)
    definition_id: int = Field(foreign_key="lead_definition.id", index=True)
    team: str = Field(max_length=20)
    key_name: str = Field(max_length=100)
    at: datetime = utc_field(now=True)


class BacktestJob(SQLModel, table=True):
    __tablename__ = "backtest_job"

    id: int | None = Field(default=None, primary_key=True)
    definition_id: int = Field(foreign_key="lead_definition.id", index=True)
    start: datetime = utc_field()
    end: datetime = utc_field()
    status: str = Field(default="queued", max_length=20)  # queued, running, done, failed
    progress: float = 0.0
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    error: str | None = Field(default=None, max_length=2000)
    requested_by: str = Field(max_length=100)
    created_at: datetime = utc_field(now=True)
    finished_at: datetime | None = utc_field(nullable=True)
