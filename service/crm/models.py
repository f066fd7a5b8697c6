"""CRM facts in columns: accounts, opportunities, activities, field history, owners, campaigns.

Rows point at people through the CRM row they concern (``record_key``), and a join through
``crm_record.person_id`` finds the person, so merges and links never rewrite these tables.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from service.db import utc_field


class Account(SQLModel, table=True):
    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    source: str = Field(max_length=20)
    name: str | None = Field(default=None, max_length=300)
    domain: str | None = Field(default=None, max_length=300)
    industry: str | None = Field(default=None, max_length=100)
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = Field(default=None, max_length=100)
    is_customer: bool = False
    live: bool = True


class Opportunity(SQLModel, table=True):
    __tablename__ = "opportunity"
    __table_args__ = (Index("ix_opportunity_close", "is_closed", "close_date"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    source: str = Field(max_length=20)
    name: str | None = Field(default=None, max_length=300)
    account_key: str | None = Field(default=None, max_length=200)
    person_record_key: str | None = Field(default=None, max_length=200, index=True)
    amount: float | None = None
    stage: str | None = Field(default=None, max_length=100)
    is_closed: bool = False
    is_won: bool = False
    created_at: datetime | None = utc_field(nullable=True)
    close_date: date | None = None
    owner_key: str | None = Field(default=None, max_length=200)
    lead_source: str | None = Field(default=None, max_length=100)
    live: bool = True


class Activity(SQLModel, table=True):
    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_record_kind_at", "record_key", "kind", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    source: str = Field(max_length=20)
    kind: str = Field(max_length=20)
    at: datetime = utc_field()
    record_key: str | None = Field(default=None, max_length=200)
    owner_key: str | None = Field(default=None, max_length=200)
    subject: str | None = Field(default=None, max_length=300)
    live: bool = True


class FieldChange(SQLModel, table=True):
    __tablename__ = "field_change"
    __table_args__ = (Index("ix_field_change_record_field_at", "record_key", "field", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=250, unique=True)
    record_key: str = Field(max_length=200)
    field: str = Field(max_length=40)
    old_value: str | None = Field(default=None, max_length=300)
    new_value: str | None = Field(default=None, max_length=300)
    at: datetime = utc_field()


class Owner(SQLModel, table=True):
    __tablename__ = "owner"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    source: str = Field(max_length=20)
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    team: str | None = Field(default=None, max_length=100)
    active: bool = True


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    source: str = Field(max_length=20)
    name: str | None = Field(default=None, max_length=300)
    type: str | None = Field(default=None, max_length=100)
    start_date: date | None = None
    end_date: date | None = None
    actual_cost: float | None = None
    live: bool = True
