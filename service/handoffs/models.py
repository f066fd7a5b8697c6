"""Calendars, SLA policies, handoffs with their clocks, the outbox, commitments, directory."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from service.db import JSONType, utc_field


class BusinessCalendar(SQLModel, table=True):
    __tablename__ = "calendar"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    timezone: str = Field(max_length=64)
    hours: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    holiday_country: str | None = Field(default=None, max_length=10)
    holiday_subdivision: str | None = Field(default=None, max_length=20)
    holidays: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = utc_field(now=True)


class SlaPolicy(SQLModel, table=True):
    __tablename__ = "sla_policy"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    calendar_id: int = Field(foreign_key="calendar.id")
    priority: int = Field(default=100, index=True)
    match: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    accept_within_minutes: int
    first_touch_within_minutes: int
    warn_at: float = 0.75
    active: bool = True
    created_at: datetime = utc_field(now=True)


class Handoff(SQLModel, table=True):
    __tablename__ = "handoff"
    __table_args__ = (Index("ix_handoff_state_owner", "state", "owner_key"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    mql_event_id: int = Field(foreign_key="stage_event.id", unique=True)
    policy_id: int | None = Field(default=None, foreign_key="sla_policy.id")
    definition_version: int
    owner_key: str | None = Field(default=None, max_length=200)
    opened_at: datetime = utc_field()
    state: str = Field(default="open", max_length=20)  # open, accepted, rejected, recycled
    reason: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = utc_field(nullable=True)
    decided_by: str | None = Field(default=None, max_length=200)
    system_delay_minutes: int | None = None  # person created -> handoff opened (ops' clock)
    created_at: datetime = utc_field(now=True)


class SlaClock(SQLModel, table=True):
    """One SLA clock of a handoff; due and warning instants are fixed when it opens."""

    __tablename__ = "sla_clock"
    # No index holds ``state`` and pages keep half their room (migration 0016): the SLA
    # scan's moves (running to warning to breached) then stay heap-only updates, with no
    # index insertion per moved clock; open clocks are found by due instant alone.
    __table_args__ = (
        UniqueConstraint("handoff_id", "kind", name="uq_sla_clock_handoff_kind"),
        Index("ix_sla_clock_open_due", "due_at", postgresql_where=text("stopped_at IS NULL"),
              sqlite_where=text("stopped_at IS NULL")),
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: int | None = Field(default=None, primary_key=True)
    handoff_id: int = Field(foreign_key="handoff.id")
    kind: str = Field(max_length=20)  # accept, first_touch
    target_minutes: int
    started_at: datetime = utc_field()
    warn_due_at: datetime = utc_field()
    due_at: datetime = utc_field()
    stopped_at: datetime | None = utc_field(nullable=True)
    state: str = Field(default="running", max_length=20)
    business_minutes: int | None = None  # fixed when the clock stops
    calendar_minutes: int | None = None
    announce: bool = True  # falls due after the definition became active
    changed_at: datetime = utc_field(now=True)


class OutboxEvent(SQLModel, table=True):
    """A notification recorded in the same transaction as its cause; delivered later, once."""

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_pending", "delivered_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)  # sla.warning, sla.breached, opportunity.large
    dedupe_key: str = Field(max_length=200, unique=True)
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    created_at: datetime = utc_field(now=True)
    next_attempt_at: datetime = utc_field(now=True)
    attempts: int = 0
    webhook_done: bool = False
    crm_done: bool = False
    delivered_at: datetime | None = utc_field(nullable=True)
    last_error: str | None = Field(default=None, max_length=2000)


class Commitment(SQLModel, table=True):
    """Marketing's side of the SLA: MQLs promised for a period, and a minimum acceptance."""

    __tablename__ = "commitment"

    id: int | None = Field(default=None, primary_key=True)
    period_start: date
    period_end: date
    mqls_promised: int
    min_acceptance_rate: float | None = None
    segment: str | None = Field(default=None, max_length=100)
    created_by: str = Field(max_length=100)
    created_at: datetime = utc_field(now=True)


class DirectoryEntry(SQLModel, table=True):
    """Who to call: per segment and topic, a marketing and a sales contact."""

    __tablename__ = "directory_entry"
    __table_args__ = (UniqueConstraint("segment", "topic", name="uq_directory_entry_segment"),)

    id: int | None = Field(default=None, primary_key=True)
    segment: str = Field(max_length=100)
    topic: str = Field(max_length=100)
    marketing_name: str = Field(max_length=200)
    marketing_email: str = Field(max_length=320)
    sales_name: str = Field(max_length=200)
    sales_email: str = Field(max_length=320)
