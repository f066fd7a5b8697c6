"""Run a sync: stream by stream, page by page, each page committed with its cursor."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar, cast

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from connectors.base import Connector, ConnectorError, Cursor, Page, StopEarly
from service.db import commit_without_flush, unit_of_work, utcnow
from service.errors import NotFound
from service.people.decisions import DEFAULT_MAPPING, StatusMapping
from service.people.service import refresh_persons
from service.sync.locks import source_lock
from service.sync.models import SyncCursor, SyncRun
from service.sync.writer import apply_page, prepare

log = logging.getLogger(__name__)
T = TypeVar("T")
PageHook = Callable[[Session, set[int]], None]
Progress = Callable[[str, int, dict[str, int]], None]  # stream, records in page, stream counts
COUNT_KEYS = ("fetched", "created", "updated", "deleted", "merged", "quarantined")


def create_run(session: Session, *, source: str, full: bool, requested_by: str | None
               ) -> SyncRun:
    run = SyncRun(source=source, status="queued", full=full, requested_by=requested_by)
    session.add(run)
    session.flush()
    return run


def load_cursor(session: Session, source: str, stream: str) -> Cursor | None:
    row = session.exec(select(SyncCursor).where(SyncCursor.source == source,
                                                SyncCursor.stream == stream)).first()
    if row is None:
        return None
    return Cursor(value=row.value, tie_break=row.tie_break, state=dict(row.state))


def save_cursor(session: Session, source: str, stream: str, cursor: Cursor) -> None:
    row = session.exec(select(SyncCursor).where(SyncCursor.source == source,
                                                SyncCursor.stream == stream)).first()
    if row is None:
        row = SyncCursor(source=source, stream=stream)
    row.value, row.tie_break, row.state, row.updated_at = (
        cursor.value, cursor.tie_break, dict(cursor.state), utcnow())
    session.add(row)


def execute_run(engine: Engine, run_id: int, connector: Connector, *,
                page_hooks: Sequence[PageHook] = (), progress: Progress | None = None,
                mapping: StatusMapping = DEFAULT_MAPPING) -> SyncRun:
    """Carry out a queued run, unless another process is already syncing its source."""
    with unit_of_work(engine) as session:
        run = session.get(SyncRun, run_id)
        if run is None:
            raise NotFound(f"no sync run {run_id}")
        source, full = run.source, run.full
    with source_lock(engine, source) as held:
        if not held:
            return _finish(engine, run_id, "skipped",
                           f"another sync of {source} is running; this one did not start")
        _update(engine, run_id, status="running", started_at=utcnow())
        try:
            _run_streams(engine, run_id, source, full, connector, page_hooks, progress,
                         mapping)
            analyze_after_load(engine, run_id)
        except StopEarly as exc:
            return _finish(engine, run_id, "partial", str(exc))
        except ConnectorError as exc:
            log.error("sync %s of %s failed: %s", run_id, source, exc)
            return _finish(engine, run_id, "failed", str(exc))
        except Exception as exc:
            log.exception("sync %s of %s failed", run_id, source)
            return _finish(engine, run_id, "failed", f"{type(exc).__name__}: {exc}")
        return _finish(engine, run_id, "succeeded", None)


def _run_streams(engine: Engine, run_id: int, source: str, full: bool, connector: Connector,
                 page_hooks: Sequence[PageHook], progress: Progress | None,
                 mapping: StatusMapping) -> None:
    connector.check()
    created, analyzed = 0, False
    for stream in connector.streams():
        with unit_of_work(engine) as session:
            cursor = None if full else load_cursor(session, source, stream)
            run = session.get(SyncRun, run_id)
            assert run is not None
            run.current_stream = stream
            run.counts = {**run.counts, stream: dict.fromkeys(COUNT_KEYS, 0)}
        # the page's work that needs no database is done in the reading thread, while this
        # one waits on the database
        pages = ((page, prepare(page.records, mapping, new_persons=cursor is None))
                 for page in coalesce(connector.read(stream, cursor), WRITE_RECORDS))
        for page, prepared in read_ahead(pages):
            with unit_of_work(engine) as session:
                # the cursor commits with its page, so a crash can only lose whole recent
                # pages with their cursor: the next run reads them again, and upserts being
                # idempotent, ends where a clean run would; the run's final status commits
                # as usual, its flush taking every page before it along
                commit_without_flush(session)
                result = apply_page(session, page.records, prepared, mapping)
                refresh_persons(session, result.touched_persons - result.settled, mapping)
                for hook in page_hooks:
                    hook(session, result.touched_persons)
                save_cursor(session, source, stream, page.cursor)
                run = session.get(SyncRun, run_id)
                assert run is not None
                counts = dict(run.counts.get(stream, {}))
                for key, value in result.as_counts().items():
                    counts[key] = counts.get(key, 0) + value
                run.counts = {**run.counts, stream: counts}
                run.api_calls = connector.api_calls
            if progress is not None:
                progress(stream, len(page.records), counts)
            created += result.created
            if not analyzed and created >= ANALYZE_AFTER_CREATED:
                # once, early in a load: the planner then knows the lookup columns are all
                # but unique, an estimate that scales with the tables as they grow
                analyze_lookups(engine, run_id)  # (a failure only costs plans: once)
                analyzed = True


ANALYZE_AFTER_CREATED = 10_000  # rows a run creates before it refreshes the planner's counts
# the tables every page looks up in, and the columns its lookups filter on: statistics on
# the others (a record's whole payload above all) would cost more than the rest together
ANALYZED = {"crm_record": ("key", "source", "object", "kind", "person_id", "deleted",
                           "merged_into"),
            "person": ("id", "email", "merged_into"),
            "person_link": ("record_key", "person_id", "valid_to"),
            "stage_event": ("person_id", "stage", "source_ref")}


def analyze_after_load(engine: Engine, run_id: int) -> bool:
    """After a run that created many rows (a first load), ``ANALYZE`` the tables each page
    looks up in, as PostgreSQL advises after a bulk load (PostgreSQL only).

    Until a table is analysed the planner guesses its size, and the next run's key lookups
    read whole tables where an index would answer: autovacuum analyses them in time where it
    is on, never where it is off. Sampling costs a fraction of a second whatever the size."""
    if engine.dialect.name != "postgresql":
        return False
    with unit_of_work(engine) as session:
        run = session.get(SyncRun, run_id)
        created = sum(c.get("created", 0) for c in (run.counts or {}).values()) if run else 0
    if created < ANALYZE_AFTER_CREATED:
        return False
    return analyze_lookups(engine, run_id)


def analyze_lookups(engine: Engine, run_id: int) -> bool:
    """``ANALYZE`` the lookup columns of ``ANALYZED`` (PostgreSQL; False elsewhere or when
    it fails, which only costs plans).

    Also done once early in a load: with no statistics the planner takes a page's
    ``key = ANY(2,000 keys)`` to match a share of the table per key, so every page read the
    whole of ``person`` and ``person_link``, growing as they grew (at a million people 150 s
    of a 400 s run)."""
    if engine.dialect.name != "postgresql":
        return False
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table, columns in ANALYZED.items():
                conn.exec_driver_sql(f'ANALYZE "{table}" ({", ".join(columns)})')
    except SQLAlchemyError as exc:  # upkeep: the run's rows are committed and stand
        log.warning("sync %s: could not analyse the tables after the load: %s", run_id, exc)
        return False
    return True


# records a page write gathers before it commits: the API's pages can be small (HubSpot
# contacts with their history come 50 a page), and each write costs a transaction, its
# lookups and its cursor whatever its size
WRITE_RECORDS = 2_000


def coalesce(pages: Iterator[Page], at_least: int) -> Iterator[Page]:
    """The same records, consecutive pages joined until a page holds ``at_least`` of them;
    a joined page resumes where its last part did. A failure while reading (the API budget's
    ``StopEarly`` included) first hands over what was joined so far, then surfaces."""
    held: Page | None = None
    try:
        for page in pages:
            held = page if held is None else Page(
                page.stream, [*held.records, *page.records], page.cursor,
                held.api_calls + page.api_calls)
            if len(held.records) >= at_least:
                yield held
                held = None
    except Exception:
        if held is not None:
            yield held
        raise
    if held is not None:
        yield held


def read_ahead(pages: Iterator[T]) -> Iterator[T]:
    """The same pages, the next one fetched in a thread while this one is written.

    Waiting on the CRM and writing to the database overlap instead of taking turns; one page
    waits at most, so memory stays flat. A failure while reading surfaces here, in order,
    after the pages read before it.
    """
    ready: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not offer(("page", page)):
                    return
            offer(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            offer(("error", exc))

    worker = threading.Thread(target=produce, name="sync-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = ready.get()
            if kind == "done":
                return
            if kind == "error":
                assert isinstance(item, BaseException)
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        worker.join(timeout=5)


def _update(engine: Engine, run_id: int, **values: object) -> None:
    with unit_of_work(engine) as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        for name, value in values.items():
            setattr(run, name, value)


def _finish(engine: Engine, run_id: int, status: str, error: str | None) -> SyncRun:
    with unit_of_work(engine) as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        run.status, run.error, run.finished_at, run.current_stream = (
            status, error[:2000] if error else None, utcnow(), None)
        session.flush()
        return run
