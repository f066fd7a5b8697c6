"""Sync state: CRM rows as last seen, cursors, runs and quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db import JSONType, utc_field


class CrmRow(SQLModel, table=True):
    """The latest normalised state of one CRM row, and the person it belongs to."""

    __tablename__ = "crm_record"
    __table_args__ = (
        Index("ix_crm_record_person_id", "person_id"),
        Index("ix_crm_record_source_kind", "source", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)  # source:object:external_id
    source: str = Field(max_length=20)
    object: str = Field(max_length=40)
    external_id: str = Field(max_length=100)
    kind: str = Field(max_length=20)  # person, account, opportunity, activity, owner, ...
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    payload_hash: str = Field(max_length=64)
    modstamp: datetime = utc_field()
    created_at: datetime | None = utc_field(nullable=True)
    deleted: bool = False
    merged_into: str | None = Field(default=None, max_length=200)  # the winner's key
    # no foreign key: only identity resolution writes it, with ids of stored persons or of
    # persons it inserts in the same transaction, and persons are never deleted (see 0013)
    person_id: int | None = None
    first_seen: datetime = utc_field(now=True)
    last_changed: datetime = utc_field(now=True)


class SyncCursor(SQLModel, table=True):
    __tablename__ = "sync_cursor"
    __table_args__ = (UniqueConstraint("source", "stream", name="uq_sync_cursor_source_stream"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=20)
    stream: str = Field(max_length=40)
    value: str | None = Field(default=None, max_length=64)
    tie_break: str | None = Field(default=None, max_length=100)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    updated_at: datetime = utc_field(now=True)


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=20, index=True)
    status: str = Field(max_length=20)  # queued, running, succeeded, partial, failed
    full: bool = False
    started_at: datetime | None = utc_field(nullable=True)
    finished_at: datetime | None = utc_field(nullable=True)
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    current_stream: str | None = Field(default=None, max_length=40)
    api_calls: int = 0
    error: str | None = Field(default=None, max_length=2000)
    requested_by: str | None = Field(default=None, max_length=100)


class Quarantined(SQLModel, table=True):
    """A CRM row that failed validation: kept with its reason until a sync sees it fixed."""

    __tablename__ = "quarantined_record"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    source: str = Field(max_length=20)
    object: str = Field(max_length=40)
    external_id: str = Field(max_length=100)
    reason: str = Field(max_length=1000)
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    first_seen: datetime = utc_field(now=True)
    last_seen: datetime = utc_field(now=True)
