"""API keys and the audit trail of writes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from service.db import utc_field


class Team(StrEnum):
    marketing = "marketing"
    sales = "sales"
    ops = "ops"


class Role(StrEnum):
    viewer = "viewer"
    editor = "editor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "editor": 1, "admin": 2}[self.value]


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    team: str = Field(max_length=20)
    role: str = Field(max_length=20)
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = utc_field(now=True)
    revoked_at: datetime | None = utc_field(nullable=True)
    created_by: str | None = Field(default=None, max_length=100)


class AuditEvent(SQLModel, table=True):
    """Which key made which write: recorded in the same transaction as the write itself."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field(now=True)
    key_name: str = Field(max_length=100, index=True)
    team: str = Field(max_length=20)
    method: str = Field(max_length=10)
    path: str = Field(max_length=500)


class ApiKeyPublic(SQLModel):
    id: int
    name: str
    team: Team
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    created_by: str | None


class ApiKeyCreate(SQLModel):
    name: str = Field(min_length=1, max_length=100, regex=r"^[A-Za-z0-9_.@-]+$")
    team: Team
    role: Role = Role.viewer


class ApiKeyCreated(ApiKeyPublic):
    key: str
