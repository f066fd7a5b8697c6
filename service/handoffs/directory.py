"""The directory: per segment and topic, whom marketing and sales should call.

The article's handoff back from sales to marketing (a brand manager joins every large deal)
needs a name to hand to; ``liaison_for`` finds it, falling back to the ``*`` segment.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from service.errors import Conflict
from service.handoffs.models import DirectoryEntry

ANY_SEGMENT = "*"
LARGE_DEAL = "large-deal"


def add_entry(session: Session, *, segment: str, topic: str, marketing_name: str,
              marketing_email: str, sales_name: str, sales_email: str) -> DirectoryEntry:
    """One contact pair per segment and topic; a second one is a conflict, not an update."""
    if find(session, segment, topic) is not None:
        raise Conflict(f"the directory already has an entry for segment {segment!r} and topic "
                       f"{topic!r}")
    entry = DirectoryEntry(segment=segment, topic=topic, marketing_name=marketing_name,
                           marketing_email=marketing_email, sales_name=sales_name,
                           sales_email=sales_email)
    session.add(entry)
    session.flush()
    return entry


def find(session: Session, segment: str, topic: str) -> DirectoryEntry | None:
    return session.exec(select(DirectoryEntry).where(
        DirectoryEntry.segment == segment, DirectoryEntry.topic == topic)).first()


def liaison_for(session: Session, segment: str, topic: str = LARGE_DEAL
                ) -> DirectoryEntry | None:
    """The entry for this segment and topic, else the ``*`` segment's, else None."""
    rows = session.exec(select(DirectoryEntry).where(
        DirectoryEntry.topic == topic,
        col(DirectoryEntry.segment).in_([segment, ANY_SEGMENT]))).all()
    by_segment = {row.segment: row for row in rows}
    return by_segment.get(segment) or by_segment.get(ANY_SEGMENT)
