"""The worker's schedule (APScheduler): syncs of every configured source, then SLA scans."""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Engine

from service.db import utcnow
from service.settings import Settings
from service.sync.service import sync_source

log = logging.getLogger(__name__)


def sync_all(engine: Engine, settings: Settings) -> dict[str, str]:
    """One incremental run per enabled source; a source another worker holds is skipped.

    The metric facts the runs invalidated are rebuilt here, in the worker, so that the
    dashboard's first poll after a sync does not wait for the rebuild."""
    outcome = {}
    for source in settings.enabled_sources():
        run = sync_source(engine, settings, source, requested_by="worker")
        outcome[source] = run.status
        log.info("sync of %s: %s %s", source, run.status, run.error or "")
    warm_metric_facts(engine)
    return outcome


def warm_metric_facts(engine: Engine) -> None:
    """Rebuild the metric facts that writes marked; a failure only delays it to the next
    metric request, which rebuilds them itself."""
    from metrics.facts import warm

    try:
        warm(engine)
    except Exception:  # the facts stay marked, so nothing is lost by skipping this
        log.exception("rebuilding the metric facts failed; the next metric request will")


def extra_jobs() -> list[tuple[str, Callable[[Engine, Settings], object], str]]:
    """Jobs other packages add to the schedule: (name, function, interval setting)."""
    jobs: list[tuple[str, Callable[[Engine, Settings], object], str]] = []
    try:
        from service.handoffs.jobs import scan_job
    except ImportError:
        return jobs
    from service.handoffs.delivery import deliver_job

    jobs.append(("sla-scan", scan_job, "sla_scan_interval_seconds"))
    jobs.append(("outbox", deliver_job, "sla_scan_interval_seconds"))
    return jobs


def build_scheduler(engine: Engine, settings: Settings) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(sync_all, "interval", args=[engine, settings], id="sync",
                      seconds=settings.sync_interval_seconds, max_instances=1, coalesce=True,
                      next_run_time=utcnow())
    for name, func, interval in extra_jobs():
        scheduler.add_job(func, "interval", args=[engine, settings], id=name,
                          seconds=getattr(settings, interval), max_instances=1, coalesce=True,
                          next_run_time=utcnow())
    return scheduler

