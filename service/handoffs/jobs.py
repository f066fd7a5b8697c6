"""Scheduled handoff work: catch up on handoffs, scan clocks, deliver the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.db import unit_of_work
from service.handoffs.models import Handoff
from service.handoffs.scan import scan
from service.handoffs.service import (
    apply_crm_outcomes,
    open_missing_handoffs,
    recycle_unanswered,
)
from service.settings import Settings
from service.sync.bulk import among

log = logging.getLogger(__name__)


def handoff_hook(settings: Settings) -> Callable[[Session, set[int]], None]:
    """After each sync page: open handoffs for the page's new MQLs, stop clocks with CRM
    outcomes. Only the page's persons are looked at (this runs on every page); MQLs that
    appear elsewhere, e.g. when a version activates and replays history, are opened by the
    next SLA scan, which looks at all of them."""

    def hook(session: Session, touched: set[int]) -> None:
        if not touched:
            return
        open_missing_handoffs(session, person_ids=touched)
        # one array parameter, not an IN list of a page's thousands of ids to send and parse
        open_ones = session.exec(select(Handoff).where(
            among(session, col(Handoff.person_id), touched), Handoff.state == "open"))
        apply_crm_outcomes(session, list(open_ones))

    return hook


def scan_job(engine: Engine, settings: Settings) -> dict[str, Any]:
    """What `truce sla scan` and the worker run: scan, then deliver what it announced."""
    with unit_of_work(engine) as session:
        open_missing_handoffs(session)
        result = scan(session).as_dict()
        if settings.recycle_unanswered_after_days:
            after = timedelta(days=settings.recycle_unanswered_after_days)
            result["recycled"] = recycle_unanswered(session, after=after)
    try:
        from service.handoffs.delivery import deliver_job
    except ImportError:
        return result
    result["delivery"] = deliver_job(engine, settings)
    log.info("sla scan: %s", result)
    return result
