"""Keyset pagination by id with an opaque cursor: ``{"items": [...], "next_cursor": ...}``."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlmodel import Session, col
from sqlmodel.sql.expression import SelectOfScalar

from service.errors import Invalid

T = TypeVar("T")


class Paginated(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
CursorParam = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "id":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("not a cursor from this API", field="query.cursor") from None


def paginate(session: Session, stmt: SelectOfScalar[Any], id_column: Any, *, limit: int,
             cursor: str | None, descending: bool = False) -> tuple[list[Any], str | None]:
    """Rows after the cursor, ordered by id, and the cursor for the next page."""
    after = decode(cursor)
    if after is not None:
        stmt = stmt.where(id_column < after if descending else id_column > after)
    order = col(id_column).desc() if descending else col(id_column).asc()
    rows = list(session.exec(stmt.order_by(order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode(rows[-1].id) if more and rows else None
