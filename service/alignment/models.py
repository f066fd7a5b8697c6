"""Surveys, their responses, the placements computed over time, and reads of shared metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from service.db import JSONType, utc_field


class Survey(SQLModel, table=True):
    """One round of the diagnostic survey; closed rounds keep their answers but take no more."""

    __tablename__ = "survey"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    opened_at: datetime = utc_field(now=True)
    closed_at: datetime | None = utc_field(nullable=True)
    created_by: str = Field(max_length=100)


class SurveyResponse(SQLModel, table=True):
    """One person's twenty ratings; the total is stored so summaries need not re-add them."""

    __tablename__ = "survey_response"

    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id", index=True)
    team: str = Field(max_length=20)  # sales, marketing
    answers: list[int] = Field(sa_column=Column(JSONType, nullable=False))
    score: int
    respondent: str = Field(max_length=100)  # the API key's name
    created_at: datetime = utc_field(now=True)


class Placement(SQLModel, table=True):
    """A placement as it stood when it changed, with both readings, so drift can be shown."""

    __tablename__ = "placement"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field(now=True)
    stage: str = Field(max_length=20)
    survey_stage: str | None = Field(default=None, max_length=20)
    evidence_stage: str = Field(max_length=20)
    survey: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    evidence: list[dict[str, Any]] = Field(sa_column=Column(JSONType, nullable=False))


class MetricRead(SQLModel, table=True):
    """Someone read a shared metric: the evidence that the metrics are actually in use."""

    __tablename__ = "metric_read"

    id: int | None = Field(default=None, primary_key=True)
    metric: str = Field(max_length=100)
    at: datetime = utc_field(now=True, index=True)
    key_name: str = Field(max_length=100)
