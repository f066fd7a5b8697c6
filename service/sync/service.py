"""Start syncs for the API, the CLI and the worker."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlmodel import Session

from connectors.base import Connector
from service.db import unit_of_work
from service.settings import Settings
from service.sync.engine import PageHook, Progress, create_run, execute_run
from service.sync.models import SyncRun
from service.sync.sources import build_connector


def page_hooks(settings: Settings) -> list[PageHook]:
    """What runs after each page inside its transaction (qualification and handoffs)."""
    hooks: list[PageHook] = []
    try:
        from service.definitions.qualification import qualification_hook
    except ImportError:  # pragma: no cover - the definition package is optional at this layer
        return hooks
    hooks.append(qualification_hook(settings))
    from service.handoffs.jobs import handoff_hook
    from service.handoffs.large_deals import large_deal_hook

    hooks.append(handoff_hook(settings))
    hooks.append(large_deal_hook(settings))
    return hooks


def sync_source(engine: Engine, settings: Settings, source: str, *, full: bool = False,
                connector: Connector | None = None, progress: Progress | None = None,
                requested_by: str | None = None,
                hooks: Sequence[PageHook] | None = None) -> SyncRun:
    """Queue a run and carry it out now, in this process."""
    connector = connector or build_connector(settings, source)
    with unit_of_work(engine) as session:
        run_id = create_run(session, source=source, full=full, requested_by=requested_by).id
    assert run_id is not None
    return execute_run(engine, run_id, connector,
                       page_hooks=page_hooks(settings) if hooks is None else hooks,
                       progress=progress, mapping=settings.decisions())


def queue_run(session: Session, settings: Settings, source: str, *, full: bool,
              requested_by: str) -> SyncRun:
    build_connector(settings, source)  # a source that is not configured is a 422 now, not later
    return create_run(session, source=source, full=full, requested_by=requested_by)
