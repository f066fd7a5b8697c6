"""The `truce` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from service.settings import Settings, describe_error, get_settings

app = typer.Typer(help="Truce: one lead definition, one handoff clock, one set of metrics.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
sla_app = typer.Typer(help="SLA clocks.", no_args_is_help=True)
app.add_typer(sla_app, name="sla")
console = Console(stderr=True)


def load_settings(**overrides: object) -> Settings:
    """Settings, or a clear message and exit status 2 when one is missing or malformed."""
    try:
        return get_settings(**overrides)
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError and .env parse errors
        console.print(f"[red]{describe_error(exc)}[/red]")
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to TRUCE_DATABASE_URL."""
    from service.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    console.print("database at the latest migration")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name for the key.")],
    team: Annotated[str, typer.Option(help="marketing, sales or ops.")],
    role: Annotated[str, typer.Option(help="admin, editor or viewer.")] = "viewer",
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from service.auth.models import Role, Team
    from service.auth.service import create_key
    from service.db import create_db_engine, unit_of_work
    from service.errors import TruceError

    try:
        team_v, role_v = Team(team), Role(role)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red] (teams: marketing, sales, ops; roles: admin, editor, "
                      "viewer)")
        raise typer.Exit(2) from None
    settings = load_settings()
    try:
        with unit_of_work(create_db_engine(settings.database_url)) as session:
            _, key = create_key(session, name=name, team=team_v, role=role_v, created_by="cli")
    except TruceError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    console.print(f"created key {name!r} ({team_v.value}, {role_v.value}); it is shown only once:")
    print(key)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key: it stops working at once."""
    from service.auth.service import revoke_key
    from service.db import create_db_engine, unit_of_work
    from service.errors import TruceError

    settings = load_settings()
    try:
        with unit_of_work(create_db_engine(settings.database_url)) as session:
            revoke_key(session, name=name)
    except TruceError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    console.print(f"revoked {name!r}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API and the dashboard (uvicorn)."""
    import uvicorn

    load_settings()  # fail fast with a clear message before forking workers
    uvicorn.run("service.app:create_served_app", factory=True, host=host, port=port,
                workers=workers, log_level="info")


@app.command()
def sync(
    source: Annotated[str, typer.Option(help="salesforce, hubspot or all.")] = "all",
    full: Annotated[bool, typer.Option("--full", help="Ignore saved cursors.")] = False,
) -> None:
    """One sync run now, with a progress bar per object; exit 0 only if every source succeeded."""
    from service.db import create_db_engine
    from service.sync.progress import run_with_progress

    settings = load_settings()
    sources = settings.enabled_sources() if source == "all" else [source]
    if not sources:
        console.print("[red]no source is configured: set TRUCE_SALESFORCE_* or "
                      "TRUCE_HUBSPOT_* (see README, Configuration)[/red]")
        raise typer.Exit(2)
    engine = create_db_engine(settings.database_url)
    ok = run_with_progress(engine, settings, sources, full=full, console=console)
    from service.jobs import warm_metric_facts

    warm_metric_facts(engine)
    raise typer.Exit(0 if ok else 1)


@sla_app.command("scan")
def sla_scan() -> None:
    """Evaluate every open handoff now and flag warnings and breaches (as the worker does)."""
    from service.db import create_db_engine
    from service.handoffs.jobs import scan_job

    settings = load_settings()
    result = scan_job(create_db_engine(settings.database_url), settings)
    console.print(f"warnings {result['warnings']}, breaches {result['breaches']}, "
                  f"announced {result['announced']}")


@app.command()
def worker() -> None:
    """The scheduler alone: incremental syncs of every source, SLA scans, notifications."""
    import logging
    import signal

    from service.db import create_db_engine
    from service.jobs import build_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    scheduler = build_scheduler(create_db_engine(settings.database_url), settings)

    def stop(signum: int, _frame: object) -> None:
        # SIGTERM (a deploy, `docker stop`) ends the worker cleanly: no new jobs start, and
        # the running ones finish (a sync its run, a delivery its POST and commit) before
        # the process exits, so nothing is left "running" or delivered twice.
        if scheduler.running:
            console.print(f"worker: {signal.Signals(signum).name}, finishing the running jobs")
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    console.print(f"worker: syncing {', '.join(settings.enabled_sources()) or 'no source'} "
                  f"every {settings.sync_interval_seconds}s")
    scheduler.start()  # returns after stop(); exiting waits for the running jobs


@app.command()
def sandbox(
    seed: Annotated[int, typer.Option(help="Seed of the generated company.")] = 7,
    people: Annotated[int, typer.Option(help="People in the generated company.")] = 3000,
    salesforce_port: Annotated[int, typer.Option(help="0 picks a free port.")] = 0,
    hubspot_port: Annotated[int, typer.Option(help="0 picks a free port.")] = 0,
    live: Annotated[bool, typer.Option(help="Keep producing new activity.")] = True,
    fail_every: Annotated[int, typer.Option(help="Answer 503/502 on every Nth call.")] = 0,
    drop_every: Annotated[int, typer.Option(help="Drop the connection on every Nth call.")] = 0,
    latency_ms: Annotated[int, typer.Option(help="Added to every answer.")] = 0,
    token_ttl: Annotated[float, typer.Option(help="Seconds before a token expires.")] = 0,
    daily_limit: Annotated[int, typer.Option(help="Calls per day before 403/429.")] = 0,
    ten_second_limit: Annotated[int, typer.Option(help="Calls per 10 s before 429.")] = 0,
) -> None:
    """Run the sandbox CRMs alone and print the settings that point Truce at them.

    Faults set here can be changed while it runs: `PUT /faults` on the control URL printed.
    """
    import time

    from connectors.sandbox.control import create_control_app
    from connectors.sandbox.faults import Faults
    from connectors.sandbox.run import start_sandboxes
    from connectors.sandbox.server import serve_in_thread

    faults = Faults(fail_every=fail_every, drop_every=drop_every, latency_ms=latency_ms,
                    token_ttl_seconds=token_ttl, daily_limit=daily_limit,
                    ten_second_limit=ten_second_limit)
    console.print(f"generating a company of {people} people (seed {seed})")
    boxes = start_sandboxes(seed=seed, people=people, salesforce_port=salesforce_port,
                            hubspot_port=hubspot_port, faults=faults)
    if live:
        boxes.start_live()
    _, _, control_port = serve_in_thread(create_control_app(faults))
    for key, value in boxes.settings_env().items():
        print(f"{key}={value}", flush=True)
    console.print(f"sandbox running; faults at http://127.0.0.1:{control_port}/faults; "
                  "Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        boxes.stop()


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the API and dashboard.")] = 8000,
    people: Annotated[int, typer.Option(help="People in the generated company.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the generated company.")] = 7,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the previous demo database.")] = False,
) -> None:
    """Everything on the embedded default: sandbox CRMs, SQLite under ./.truce, sync, serve."""
    from service.demo import run_demo

    run_demo(port=port, people=people, seed=seed, keep=keep)


@app.command()
def bench(quick: bool = typer.Option(False, "--quick", help="Small sizes: minutes on 2 cores."),
          only: list[str] = typer.Option(None, "--only", help="Run only this benchmark "
                                         "(a module of bench/, e.g. sync); repeatable."),
          ) -> None:
    """Run the benchmarks in bench/, print a table and write bench/results.json."""
    from service.bench_cli import run_bench

    run_bench(quick, only=only or None)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
