"""Indexes the metric windows read by, declared beside the queries that need them.

The metrics filter handoffs by when they were decided or opened, SLA clocks by when they fall
due, and look up a person's later stage events from each MQL (``EXISTS ... at >= mql.at``);
without these, each of those is a scan of the whole table. Migration 0007 creates them.
"""

from __future__ import annotations

from sqlalchemy import Index

from service.handoffs.models import Handoff, SlaClock
from service.people.models import StageEvent

METRIC_INDEXES = (
    Index("ix_handoff_decided_at", Handoff.decided_at),  # type: ignore[arg-type]
    Index("ix_handoff_opened_at", Handoff.opened_at),  # type: ignore[arg-type]
    Index("ix_sla_clock_due_at", SlaClock.due_at),  # type: ignore[arg-type]
    Index("ix_stage_event_person_stage_at", StageEvent.person_id,  # type: ignore[arg-type]
          StageEvent.stage, StageEvent.at),  # type: ignore[arg-type]
)
