"""Inputs the CRMs do not hold: spend by team and period, and revenue forecasts.

Periods are calendar dates with both ends included (January is 2026-01-01..2026-01-31), the
way people enter budgets; metrics prorate them by the days that overlap a window.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from service.db import utc_field

SpendTeam = Literal["marketing", "sales"]


class Spend(SQLModel, table=True):
    """Money a team spent in a period (salaries, tools, programmes) entered through the API."""

    __tablename__ = "spend"

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=20, index=True)  # marketing, sales
    period_start: date
    period_end: date = Field(index=True)
    amount: float
    category: str = Field(default="other", max_length=100)
    currency: str = Field(default="USD", max_length=3)
    created_by: str = Field(max_length=100)
    created_at: datetime = utc_field(now=True)


class Forecast(SQLModel, table=True):
    """Forecast won revenue for a period, optionally for one team or segment only."""

    __tablename__ = "forecast"

    id: int | None = Field(default=None, primary_key=True)
    period_start: date
    period_end: date = Field(index=True)
    amount: float
    team: str | None = Field(default=None, max_length=100)
    segment: str | None = Field(default=None, max_length=100)
    created_by: str = Field(max_length=100)
    created_at: datetime = utc_field(now=True)


def _period_end_after_start(value: date, info: ValidationInfo) -> date:
    start = info.data.get("period_start")
    if start is not None and value < start:
        raise ValueError("period_end must be on or after period_start")
    return value


class SpendCreate(BaseModel):
    team: SpendTeam
    period_start: date
    period_end: date = PydanticField(description="Last day of the period, included.")
    amount: float = PydanticField(ge=0, allow_inf_nan=False)
    category: str = PydanticField(default="other", min_length=1, max_length=100)
    currency: Literal["USD"] = "USD"

    _ordered = field_validator("period_end")(_period_end_after_start)


class SpendPublic(BaseModel):
    id: int
    team: str
    period_start: date
    period_end: date
    amount: float
    category: str
    currency: str
    created_by: str
    created_at: datetime


class ForecastCreate(BaseModel):
    period_start: date
    period_end: date = PydanticField(description="Last day of the period, included.")
    amount: float = PydanticField(ge=0, allow_inf_nan=False,
                                  description="Forecast won revenue for the period.")
    team: str | None = PydanticField(default=None, min_length=1, max_length=100,
                                     description="An owner team; the actual counts its deals.")
    segment: Literal["SMB", "Mid-Market", "Enterprise"] | None = None

    _ordered = field_validator("period_end")(_period_end_after_start)


class ForecastPublic(BaseModel):
    id: int
    period_start: date
    period_end: date
    amount: float
    team: str | None
    segment: str | None
    created_by: str
    created_at: datetime
