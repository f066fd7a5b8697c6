"""Indexes the metric queries read by, declared beside the queries that need them.

The metrics filter handoffs by when they were decided or opened, SLA clocks by when they
stopped or fell due, look up a person's stage events from each deal, and the person and CRM
row behind a deal. On PostgreSQL each index also carries (``INCLUDE``) the few columns those
queries read, so they are answered from the index alone instead of from the wide table rows
(a CRM row holds its whole payload). Migration 0007 creates them; 0008 covers decided
handoffs' decision instant and every handoff's opened instant. SLA clocks are read from their
mirror, ``metric_clock`` (0008), whose own indexes serve those windows; 0016 dropped 0007's
clock indexes, which made every clock the SLA scan moves cost two more index insertions.
"""

from __future__ import annotations

from sqlalchemy import Index, text

from service.handoffs.models import Handoff
from service.people.models import Person, StageEvent
from service.sync.models import CrmRow

METRIC_INDEXES = (
    Index("ix_handoff_decided_at", Handoff.decided_at),  # type: ignore[arg-type]
    # only decided handoffs: the index serves windows of decisions and nothing else
    Index("ix_handoff_decided_at_cover", Handoff.decided_at,  # type: ignore[arg-type]
          postgresql_include=["state", "definition_version", "reason"],
          postgresql_where=text("decided_at IS NOT NULL"),
          sqlite_where=text("decided_at IS NOT NULL")),
    Index("ix_handoff_opened_at", Handoff.opened_at,  # type: ignore[arg-type]
          postgresql_include=["decided_at", "definition_version"]),
    Index("ix_stage_event_person_stage_at", StageEvent.person_id,  # type: ignore[arg-type]
          StageEvent.stage, StageEvent.at,  # type: ignore[arg-type]
          postgresql_include=["definition_version"]),
    Index("ix_crm_record_key_person_id", CrmRow.key,  # type: ignore[arg-type]
          postgresql_include=["person_id"]),
    Index("ix_person_id_facets", Person.id,  # type: ignore[arg-type]
          postgresql_include=["created_at", "account_key", "owner_key"]),
)
