"""``/api/v1/directory``: who to call per segment and topic."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import AfterValidator, BaseModel, Field
from sqlmodel import select

from service.deps import Editor, SessionDep, Viewer
from service.handoffs import directory
from service.handoffs.models import DirectoryEntry
from service.pagination import CursorParam, Limit, Paginated, paginate

router = APIRouter(prefix="/api/v1", tags=["directory"])
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value.lower()


Name = Annotated[str, Field(min_length=1, max_length=200)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]


class DirectoryCreate(BaseModel):
    segment: str = Field(min_length=1, max_length=100,
                         description="SMB, Mid-Market, Enterprise, Unknown, or * for any")
    topic: str = Field(min_length=1, max_length=100, description="e.g. large-deal")
    marketing_name: Name
    marketing_email: Email
    sales_name: Name
    sales_email: Email


class DirectoryPublic(DirectoryCreate):
    id: int


@router.post("/directory", status_code=status.HTTP_201_CREATED, response_model=DirectoryPublic)
def create_entry(body: DirectoryCreate, session: SessionDep, _: Editor) -> DirectoryEntry:
    """Name the marketing and sales contacts for a segment and topic (409 if taken)."""
    return directory.add_entry(session, **body.model_dump())


@router.get("/directory", response_model=Paginated[DirectoryPublic])
def list_entries(session: SessionDep, _: Viewer,
                 segment: Annotated[str | None, Query(max_length=100)] = None,
                 topic: Annotated[str | None, Query(max_length=100)] = None,
                 limit: Limit = 50, cursor: CursorParam = None) -> dict[str, Any]:
    """Entries, optionally for one segment or topic."""
    stmt = select(DirectoryEntry)
    if segment is not None:
        stmt = stmt.where(DirectoryEntry.segment == segment)
    if topic is not None:
        stmt = stmt.where(DirectoryEntry.topic == topic)
    items, next_cursor = paginate(session, stmt, DirectoryEntry.id, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}
