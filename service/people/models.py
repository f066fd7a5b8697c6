"""Persons, their links to CRM rows, and the stage-event log every metric reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import utc_field


class Person(SQLModel, table=True):
    """One human, however many CRM rows describe them."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    email: str | None = Field(default=None, max_length=320, index=True)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=300)
    country: str | None = Field(default=None, max_length=100)
    lead_source: str | None = Field(default=None, max_length=100)
    score: float | None = None
    owner_key: str | None = Field(default=None, max_length=200)
    account_key: str | None = Field(default=None, max_length=200)
    stage: str = Field(default="inquiry", max_length=20)
    created_at: datetime | None = utc_field(nullable=True)
    live: bool = True  # false once every linked row is deleted
    merged_into: int | None = Field(default=None, foreign_key="person.id")
    dirty: bool = True  # data changed since the definition last looked
    updated_at: datetime = utc_field(now=True)


class PersonLink(SQLModel, table=True):
    """Which CRM row belonged to which person, and when: the link history."""

    __tablename__ = "person_link"
    __table_args__ = (Index("ix_person_link_person_id", "person_id"),
                      Index("ix_person_link_record_key", "record_key"))

    id: int | None = Field(default=None, primary_key=True)
    person_id: int  # no foreign key, as crm_record.person_id (see migration 0013)
    record_key: str = Field(max_length=200)
    reason: str = Field(max_length=40)  # email, xref, conversion, merge, new
    valid_from: datetime = utc_field(now=True)
    valid_to: datetime | None = utc_field(nullable=True)


class StageEvent(SQLModel, table=True):
    """A stage change with the CRM's own timestamp; the funnel is computed from these."""

    __tablename__ = "stage_event"
    __table_args__ = (
        UniqueConstraint("person_id", "stage", "source_ref", name="uq_stage_event_identity"),
        Index("ix_stage_event_stage_at", "stage", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")  # indexed first in the unique key
    stage: str = Field(max_length=20)  # inquiry, mql, sal, sql, won, lost, rejected, recycled
    at: datetime = utc_field()
    source_ref: str = Field(max_length=200)  # the CRM row, or api:<key name>
    definition_version: int | None = None
    reason: str | None = Field(default=None, max_length=200)
    origin: str = Field(default="crm", max_length=20)  # crm, definition, api
