"""Sync throughput: Truce's full sync beside fetch-only and dlt, incremental beside full, memory.

One object per CRM (HubSpot contacts, Salesforce leads) is read from the sandbox three ways
in the same run: (a) the connector's ``read()`` with no database writes, the ceiling for any
sync through these APIs; (b) ``sync_source`` full, the real path with its page hooks; (c) dlt's
generic ``rest_api`` source against the same sandbox endpoints, into the same database server.
Each runs in its own spawned process, so its peak RSS is its own and the sandbox (which lives
in this process, as a remote CRM would) competes for the CPU as it would in production.

A full read goes through HubSpot's list endpoint (as dlt's does), so the search limit
touches only the incremental runs. The sandbox's enforcement of it is switched off here, but
the connector still keeps to four searches in any rolling second (under HubSpot's published
five), so a HubSpot incremental run of more than four searches waits for the window.

The incremental run follows 1% of the rows edited each at its own millisecond (reps between
two syncs); with ``--one-instant``, all at one instant instead (a bulk update, which
HubSpot's reader walks by id).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bench import CpuMeter, CpuSpent, Row, Size, Versus, own_cpu_seconds, peak_rss_mb, ratio

if TYPE_CHECKING:
    from bench.runner import Context
    from connectors.base import Cursor, Page
    from connectors.sandbox.world import World

CHILD_TIMEOUT_SECONDS = 1800
CHANGED_SHARE = 0.01


@dataclass(frozen=True)
class Target:
    """One object of one CRM, named as Truce's connector and dlt's resource know it."""

    source: str  # salesforce | hubspot
    stream: str  # the connector's stream
    label: str  # for row names


TARGETS = (Target("hubspot", "contacts", "hubspot.contacts"),
           Target("salesforce", "leads", "salesforce.leads"))


# -- children: each task runs in a fresh interpreter -------------------------------------------


class OneStream:
    """A connector limited to one stream, so every contender reads the same object."""

    def __init__(self, inner: Any, stream: str) -> None:
        self.inner, self.stream, self.source = inner, stream, inner.source

    @property
    def api_calls(self) -> int:
        return int(self.inner.api_calls)

    def check(self) -> None:
        self.inner.check()

    def streams(self) -> list[str]:
        return [self.stream]

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        return self.inner.read(stream, cursor)


def _settings(env: dict[str, str], url: str | None) -> Any:
    from pydantic import SecretStr

    from service.settings import HubSpotSettings, SalesforceSettings, get_settings

    return get_settings(
        database_url=url or "sqlite://", _env_file=None,
        salesforce=SalesforceSettings(
            instance_url=env["TRUCE_SALESFORCE_INSTANCE_URL"],
            access_token=SecretStr(env["TRUCE_SALESFORCE_ACCESS_TOKEN"]),
            ca_bundle=env["TRUCE_SALESFORCE_CA_BUNDLE"] or None),
        hubspot=HubSpotSettings(base_url=env["TRUCE_HUBSPOT_BASE_URL"],
                                access_token=SecretStr(env["TRUCE_HUBSPOT_ACCESS_TOKEN"])))


def _connector(settings: Any, target: Target) -> OneStream:
    if target.source == "hubspot":
        from connectors.hubspot import HubSpotConnector

        return OneStream(HubSpotConnector(settings.hubspot), target.stream)
    from connectors.salesforce import SalesforceConnector

    return OneStream(SalesforceConnector(settings.salesforce, batch_size=2000), target.stream)


def task_fetch(target: Target, env: dict[str, str]) -> dict[str, Any]:
    """Pages as the sync reads them, mapped to records, then dropped."""
    connector = _connector(_settings(env, None), target)
    start, cpu = time.perf_counter(), own_cpu_seconds()
    connector.check()
    records = sum(len(page.records) for page in connector.read(target.stream, None))
    return {"seconds": time.perf_counter() - start, "records": records,
            "api_calls": connector.api_calls, "cpu_seconds": own_cpu_seconds() - cpu}


def task_sync(target: Target, env: dict[str, str], url: str, full: bool) -> dict[str, Any]:
    """One real sync run of the stream (page hooks included), as `truce sync` does."""
    from service.db import create_db_engine

    settings = _settings(env, url)
    engine = create_db_engine(url)
    try:
        return _sync_once(engine, settings, target, full=full)
    finally:
        engine.dispose()


def task_worker(target: Target, env: dict[str, str], url: str, progress: Any, go: Any
                ) -> dict[str, Any]:
    """A full run, then, once the parent has changed rows in the sandbox (``go``), an
    incremental run in the same process with the same engine, as `truce worker` runs one
    interval after another. The full run's result goes to ``progress`` first."""
    from service.db import create_db_engine

    settings = _settings(env, url)
    engine = create_db_engine(url)
    try:
        full = _sync_once(engine, settings, target, full=True)
        full["rss_mb"] = peak_rss_mb()
        progress.put(full)
        go.get(timeout=CHILD_TIMEOUT_SECONDS)
        return _sync_once(engine, settings, target, full=False)
    finally:
        engine.dispose()


def _sync_once(engine: Any, settings: Any, target: Target, *, full: bool) -> dict[str, Any]:
    from service.sync.service import sync_source

    connector = _connector(settings, target)
    start, cpu = time.perf_counter(), own_cpu_seconds()
    run = sync_source(engine, settings, target.source, full=full, connector=connector)
    seconds = time.perf_counter() - start
    counts = (run.counts or {}).get(target.stream, {})
    return {"seconds": seconds, "status": run.status, "error": run.error,
            "fetched": counts.get("fetched", 0), "api_calls": connector.api_calls,
            "cpu_seconds": own_cpu_seconds() - cpu}


def task_dlt(target: Target, env: dict[str, str], url: str, workdir: str) -> dict[str, Any]:
    """dlt's generic REST API source configured for the same endpoint and fields."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")  # not a warning per empty history table
    os.environ["DLT_DATA_DIR"] = workdir
    os.environ["DLT_PROJECT_DIR"] = workdir
    if env["TRUCE_SALESFORCE_CA_BUNDLE"]:
        os.environ["REQUESTS_CA_BUNDLE"] = env["TRUCE_SALESFORCE_CA_BUNDLE"]
    import dlt
    from dlt.sources.rest_api import rest_api_source

    config = _dlt_config(target, env)
    destination, where = _dlt_destination(url, workdir)
    pipeline = dlt.pipeline(pipeline_name=f"bench_{target.source}", destination=destination,
                            dataset_name=f"dlt_{target.source}", pipelines_dir=workdir,
                            progress=None)
    start, cpu = time.perf_counter(), own_cpu_seconds()
    pipeline.run(rest_api_source(config))  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    trace = pipeline.last_trace
    counts = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    return {"seconds": seconds, "records": int(counts.get(target.stream, 0)),
            "destination": where, "cpu_seconds": own_cpu_seconds() - cpu}


def _dlt_config(target: Target, env: dict[str, str]) -> dict[str, Any]:
    if target.source == "hubspot":
        from connectors.hubspot.connector import HISTORY_BATCH_SIZE
        from connectors.hubspot.history import HISTORY_PROPERTIES
        from connectors.hubspot.mapping import properties_for

        # the same list calls the connector makes: the same properties, the history of the
        # tracked ones and the company links, 50 rows a call (HubSpot's cap with history)
        return {
            "client": {
                "base_url": env["TRUCE_HUBSPOT_BASE_URL"].rstrip("/") + "/",
                "auth": {"type": "bearer", "token": env["TRUCE_HUBSPOT_ACCESS_TOKEN"]},
                "paginator": {"type": "cursor", "cursor_path": "paging.next.after",
                              "cursor_param": "after"},
            },
            "resource_defaults": {"write_disposition": "replace"},
            "resources": [{
                "name": target.stream,
                "endpoint": {"path": f"crm/v3/objects/{target.stream}", "data_selector": "results",
                             "params": {
                                 "limit": HISTORY_BATCH_SIZE,
                                 "properties": ",".join(properties_for(target.stream)),
                                 "propertiesWithHistory": ",".join(HISTORY_PROPERTIES),
                                 "associations": "companies"}},
            }],
        }
    from connectors.salesforce.streams import BY_NAME, SYSTEM_FIELDS, build_soql, plan

    spec = BY_NAME[target.stream]
    soql = build_soql(plan(spec, (*SYSTEM_FIELDS, *spec.wanted)), None)
    return {
        "client": {
            "base_url": env["TRUCE_SALESFORCE_INSTANCE_URL"].rstrip("/") + "/",
            "auth": {"type": "bearer", "token": env["TRUCE_SALESFORCE_ACCESS_TOKEN"]},
            "paginator": {"type": "json_link", "next_url_path": "nextRecordsUrl"},
            "headers": {"Sforce-Query-Options": "batchSize=2000"},
        },
        "resource_defaults": {"write_disposition": "replace"},
        "resources": [{
            "name": target.stream,
            "endpoint": {"path": "services/data/v62.0/queryAll", "params": {"q": soql},
                         "data_selector": "records"},
        }],
    }


def _dlt_destination(url: str, workdir: str) -> tuple[Any, str]:
    """The same PostgreSQL server Truce writes to; DuckDB when the benchmark runs on SQLite."""
    import dlt
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # dlt insists on a password; a server trusting local connections never asks for it
        parsed = parsed.set(drivername="postgresql", password=parsed.password or "unused")
        dsn = parsed.render_as_string(hide_password=False)
        return dlt.destinations.postgres(credentials=dsn), "postgresql"
    return dlt.destinations.duckdb(os.path.join(workdir, "dlt.duckdb")), "duckdb"


TASKS = {"fetch": task_fetch, "sync": task_sync, "worker": task_worker, "dlt": task_dlt}


def _child_main(task: str, kwargs: dict[str, Any], out: Any) -> None:
    try:
        # the baseline includes what every task imports, the page hooks' modules too: a worker
        # imports them once, not once per run, and at 1% changes they were a tenth of a run
        import service.definitions.qualification  # noqa: F401
        import service.handoffs.jobs  # noqa: F401
        import service.handoffs.large_deals  # noqa: F401
        import service.sync.service  # noqa: F401

        start_rss = peak_rss_mb()
        result = TASKS[task](**kwargs)
        result["rss_mb"] = peak_rss_mb()
        result["start_rss_mb"] = start_rss
        out.put(("ok", result))
    except BaseException:  # noqa: BLE001 - report any failure to the parent, then exit
        out.put(("error", traceback.format_exc()))


def in_child(task: str, *, between: Any = None, **kwargs: Any) -> dict[str, Any]:
    """Run a task in a spawned interpreter; answer its result with its own peak RSS.

    With ``between``, the task is the worker's: its first result (the full run's) is given
    to ``between``, which changes the sandbox, and the task then goes on."""
    mp = multiprocessing.get_context("spawn")
    out = mp.Queue()
    if between is not None:
        kwargs.update(progress=mp.Queue(), go=mp.Queue())
    proc = mp.Process(target=_child_main, args=(task, kwargs, out), daemon=True)
    proc.start()
    try:
        if between is not None:
            between(_first(kwargs["progress"], out))
            kwargs["go"].put("go")
        status, result = out.get(timeout=CHILD_TIMEOUT_SECONDS)
    except queue.Empty:
        proc.terminate()
        raise TimeoutError(f"{task} did not finish in {CHILD_TIMEOUT_SECONDS} s") from None
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    if status != "ok":
        raise RuntimeError(f"{task} failed in its process:\n{result}")
    return result


def _first(progress: Any, out: Any) -> dict[str, Any]:
    """The worker's interim result, or its failure if it ended before giving one."""
    deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            return progress.get(timeout=1)  # type: ignore[no-any-return]
        except queue.Empty:
            try:
                status, result = out.get_nowait()
            except queue.Empty:
                continue
            raise RuntimeError(f"the worker ended early ({status}):\n{result}") from None
    raise TimeoutError(f"the worker gave no full run in {CHILD_TIMEOUT_SECONDS} s")


# -- the benchmark ------------------------------------------------------------------------------


def object_rows(world: World, target: Target) -> int:
    """Rows of the object the sandbox serves: what every contender must read."""
    if target.source == "hubspot":
        return sum(1 for r in world.hubspot.table(target.stream).values() if not r["archived"])
    return len(world.salesforce.table("Lead"))  # queryAll serves the recycle bin too


def change_some(world: World, target: Target, share: float, seed: int = 11, *,
                one_instant: bool = False) -> int:
    """Edit ``share`` of the object's live rows, as reps would between two syncs: each edit
    at its own millisecond, the last one now. ``one_instant`` stamps them all now, as one
    bulk update would (HubSpot's reader must then walk that instant by id)."""
    rng = random.Random(seed)
    now = world.clock()
    with world.lock:
        if target.source == "hubspot":
            ids = [k for k, r in world.hubspot.table(target.stream).items() if not r["archived"]]
            picked = rng.sample(ids, max(1, int(len(ids) * share)))
        else:
            ids = [k for k, r in world.salesforce.table("Lead").items() if not r["IsDeleted"]]
            picked = rng.sample(ids, max(1, int(len(ids) * share)))
        for i, rec_id in enumerate(picked):
            at = now if one_instant else now - timedelta(milliseconds=len(picked) - 1 - i)
            if target.source == "hubspot":
                world.hubspot.update(target.stream, rec_id,
                                     {"jobtitle": f"Changed {rng.random()}"}, at=at)
            else:
                world.salesforce.update("Lead", rec_id, {"Title": f"Changed {rng.random()}"},
                                        at=at)
    return len(picked)


def run(size: Size, ctx: Context) -> list[Row]:
    from connectors.sandbox.faults import Faults
    from connectors.sandbox.generator import generate_world
    from connectors.sandbox.run import start_sandboxes

    wanted = size.extra.get("sync_targets")
    targets = [t for t in TARGETS if not wanted or t.label in wanted]
    if not targets:
        raise ValueError(f"no sync target among {wanted}; known: "
                         f"{', '.join(t.label for t in TARGETS)}")
    rows: list[Row] = []
    small_rss: dict[str, tuple[float, int]] = {}
    ctx.log(f"sync: generating {size.sync_people_small:,} people (memory baseline)")
    boxes = start_sandboxes(world=generate_world(seed=5, people=size.sync_people_small),
                            faults=Faults(search_per_second=0))
    try:
        env = boxes.settings_env()
        for target in targets:
            with ctx.database() as url:
                done = in_child("sync", target=target, env=env, url=url, full=True)
                _check_run(done, target)
            small_rss[target.label] = (done["rss_mb"], object_rows(boxes.world, target))
    finally:
        boxes.stop()
    ctx.log(f"sync: generating {size.sync_people:,} people")
    boxes = start_sandboxes(world=generate_world(seed=7, people=size.sync_people),
                            faults=Faults(search_per_second=0))
    try:
        env = boxes.settings_env()
        for target in targets:
            rows.extend(_measure(target, boxes.world, env, ctx, small_rss[target.label],
                                 one_instant=bool(size.extra.get("one_instant"))))
    finally:
        boxes.stop()
    return rows


def _measure(target: Target, world: World, env: dict[str, str], ctx: Context,
             small: tuple[float, int], *, one_instant: bool = False) -> list[Row]:
    n = object_rows(world, target)
    name = f"sync.{target.label}"
    ctx.log(f"sync: {target.label}, {n:,} rows: fetch-only")
    meter = _meter(ctx)
    fetch = in_child("fetch", target=target, env=env)
    fetch["cpu"] = meter.lap()
    full, changed, inc = _full_then_incremental(target, world, env, ctx, one_instant=one_instant)
    with ctx.database() as url:
        ctx.log(f"sync: {target.label}: dlt rest_api")
        workdir = ctx.tmp / f"dlt-{target.source}"
        workdir.mkdir(exist_ok=True)
        meter = _meter(ctx)
        dlt = in_child("dlt", target=target, env=env, url=url, workdir=str(workdir))
        dlt["cpu"] = meter.lap()
    rate = n / full["seconds"]
    fetch_rate, dlt_rate = n / fetch["seconds"], n / dlt["seconds"]
    on = f"{n:,} rows, {ctx.database_kind}"
    small_mb, small_n = small
    return [
        Row(f"{name}.full_rate", rate, "rows/s",
            Versus("dlt rest_api", dlt_rate, ratio(rate, dlt_rate)),
            aim="≥ 3× dlt", met=rate >= 3 * dlt_rate,
            note=f"{on}; dlt into {dlt['destination']}, loaded {dlt['records']:,}"),
        Row(f"{name}.full_vs_fetch", rate, "rows/s",
            Versus("fetch-only", fetch_rate, ratio(rate, fetch_rate)),
            aim="≥ 0.5× fetch-only", met=rate >= 0.5 * fetch_rate,
            note=f"{on}; {full['api_calls']} API calls (fetch-only {fetch['api_calls']})"),
        Row(f"{name}.incremental", inc["seconds"], "s",
            Versus("full sync", full["seconds"], ratio(inc["seconds"], full["seconds"])),
            aim="≤ 0.03× full", met=inc["seconds"] <= 0.03 * full["seconds"],
            note=f"{changed:,} rows changed (1%), "
                 f"{'by one bulk update' if one_instant else 'each at its own instant'}, "
                 f"{inc['fetched']:,} fetched"),
        Row(f"{name}.peak_rss", full["rss_mb"], "MB",
            Versus(f"at {small_n:,} rows", small_mb, ratio(full["rss_mb"], small_mb)),
            aim="flat (≤ 1.5×)", met=full["rss_mb"] <= 1.5 * small_mb,
            note=f"{n / small_n:.1f}× the rows; after imports "
                 f"{inc['start_rss_mb']:.0f} MB; dlt peak {dlt['rss_mb']:.0f} MB"),
        cpu_ceiling(name, n, full, fetch, dlt, dlt_rate),
    ]


def _meter(ctx: Context) -> CpuMeter:
    """A CPU meter from now: the database server is read when it is PostgreSQL (SQLite and
    DuckDB run inside the measured processes)."""
    return CpuMeter(server=ctx.database_kind == "postgresql")


def cpu_ceiling(name: str, n: int, full: dict[str, Any], fetch: dict[str, Any],
                dlt: dict[str, Any], dlt_rate: float) -> Row:
    """The fastest any sync doing this run's work could go on this machine's cores: every
    CPU second the full run cost (Truce's process, the sandbox serving it, the database
    server) spread perfectly over all cores. Beside it, 3× dlt's rate: the aim is in reach
    only where the ceiling is above it."""
    cores = os.cpu_count() or 1

    def per_row(own: float, spent: CpuSpent) -> list[float]:
        return [1e6 * x / n for x in (own, spent.here, spent.server) if x is not None]

    truce = per_row(full["cpu_seconds"], full["cpu"])
    ceiling = cores / (sum(truce) / 1e6)

    def show(label: str, parts: list[float]) -> str:
        return f"{label} " + " + ".join(f"{p:,.0f}" for p in parts)

    server = "" if full["cpu"].server is not None else " (database server not measured)"
    return Row(f"{name}.cpu_ceiling", ceiling, "rows/s",
               Versus("3× dlt", 3 * dlt_rate, ratio(ceiling, 3 * dlt_rate)),
               note=f"{cores} CPUs; µs of CPU a row (own + sandbox + database){server}: "
                    f"{show('Truce', truce)}; "
                    f"{show('fetch-only', per_row(fetch['cpu_seconds'], fetch['cpu']))}; "
                    f"{show('dlt', per_row(dlt['cpu_seconds'], dlt['cpu']))}")


def _full_then_incremental(target: Target, world: World, env: dict[str, str], ctx: Context,
                           *, one_instant: bool) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """A full sync into a fresh database, 1% of the rows edited, then the incremental run in
    the same process, as the worker's next interval: (full run, rows edited, incremental)."""
    how = "at one instant" if one_instant else "each at its own instant"
    with ctx.database() as url:
        ctx.log(f"sync: {target.label}: Truce full sync into {ctx.database_kind}")
        runs: dict[str, Any] = {}

        meter = _meter(ctx)

        def between(full: dict[str, Any]) -> None:
            full["cpu"] = meter.lap()
            _check_run(full, target)
            runs["full"] = full
            runs["changed"] = change_some(world, target, CHANGED_SHARE,
                                          one_instant=one_instant)
            ctx.log(f"sync: {target.label}: incremental after {runs['changed']:,} changes "
                    f"{how}")

        inc = in_child("worker", between=between, target=target, env=env, url=url)
        _check_run(inc, target)
    return runs["full"], runs["changed"], inc


def _check_run(result: dict[str, Any], target: Target) -> None:
    if result.get("status") != "succeeded":
        raise RuntimeError(f"{target.label} sync ended {result.get('status')}: "
                           f"{result.get('error')}")
