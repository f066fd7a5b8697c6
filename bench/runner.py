"""Run every benchmark, print one table, write ``bench/results.json``.

PostgreSQL is used when one answers on 127.0.0.1 (each benchmark gets a fresh database,
dropped afterwards), because that is what production runs; otherwise SQLite in a temporary
directory, and the table says so.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import FULL, QUICK, Row, Size

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results.json"
# module name under bench/, in the order they run
BENCHMARKS: tuple[str, ...] = ("sync", "sla_scan", "definition", "metrics", "api", "sandbox")
# run only when named with --only: the full size generates a million-person sandbox
ON_DEMAND: frozenset[str] = frozenset({"sandbox"})


@dataclass
class Context:
    """What every benchmark shares: where databases come from, a scratch directory, output."""

    console: Console
    tmp: Path
    postgres_admin_url: str | None
    created: list[str] = field(default_factory=list)

    @property
    def database_kind(self) -> str:
        return "postgresql" if self.postgres_admin_url else "sqlite"

    def log(self, message: str) -> None:
        self.console.log(message)

    @contextmanager
    def database(self, *, migrate: bool = True) -> Iterator[str]:
        """A fresh, migrated database URL for one benchmark; removed when the block ends."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        from service.migrate import upgrade

        if self.postgres_admin_url is None:
            path = self.tmp / f"bench-{uuid.uuid4().hex[:8]}.db"
            url = f"sqlite:///{path}"
            if migrate:
                upgrade(url)
            try:
                yield url
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        admin_url = make_url(self.postgres_admin_url)
        name = f"truce_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        try:
            if migrate:
                upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def postgres_reachable(url: str) -> bool:
    """True when the server answers within two seconds."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "use SQLite instead"
        return False
    finally:
        engine.dispose()


def run_all(*, quick: bool, only: Sequence[str] | None = None, size: Size | None = None,
            results_path: Path | None = RESULTS, console: Console | None = None,
            postgres_url: str | None = None, use_postgres: bool = True) -> list[Row]:
    """Run the benchmarks, print the table and write the JSON; answer the rows.

    ``TRUCE_BENCH_DATABASE_URL`` (or ``postgres_url``) names the PostgreSQL server; any
    database on it works, benchmarks create and drop their own next to it.
    """
    console = console or Console(width=max(160, Console().width))
    size = size or (QUICK if quick else FULL)
    base = postgres_url or os.environ.get("TRUCE_BENCH_DATABASE_URL", DEFAULT_POSTGRES)
    admin = (base if use_postgres and base.startswith("postgresql") and postgres_reachable(base)
             else None)
    tmp = Path(tempfile.mkdtemp(prefix="truce-bench-"))
    ctx = Context(console=console, tmp=tmp, postgres_admin_url=admin)
    console.log(f"truce bench ({size.name}) on {ctx.database_kind}, "
                f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        for name in only or [b for b in BENCHMARKS if b not in ON_DEMAND]:
            rows.extend(_run_one(name, size, ctx))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started
    console.print(render_table(rows, title=f"truce bench ({size.name}, {ctx.database_kind}, "
                                           f"{elapsed:.0f} s)"))
    if results_path is not None:
        write_results(rows, results_path)
        console.print(f"wrote {results_path}")
    return rows


def _run_one(name: str, size: Size, ctx: Context) -> list[Row]:
    """One benchmark; a failure becomes a row that says so rather than ending the run."""
    module = importlib.import_module(f"bench.{name}")
    run: Callable[[Size, Context], list[Row]] = module.run
    ctx.log(f"[bold]{name}[/bold]")
    started = time.perf_counter()
    try:
        rows = run(size, ctx)
    except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
        ctx.console.print(traceback.format_exc())
        rows = [Row(name=f"{name}.error", value=None, unit="",
                    note=f"not measured: {type(exc).__name__}: {exc}"[:300])]
    ctx.log(f"{name} took {time.perf_counter() - started:.1f} s")
    return rows


def render_table(rows: Sequence[Row], *, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for header, justify in (("benchmark", "left"), ("value", "right"), ("unit", "left"),
                            ("vs", "left"), ("vs value", "right"), ("ratio", "right"),
                            ("aim", "left"), ("note", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        aim = "" if row.aim is None else (
            f"{row.aim} {'[green]✓[/green]' if row.met else '[red]✗[/red]'}")
        table.add_row(row.name, _fmt(row.value), row.unit,
                      row.vs.name if row.vs else "", _fmt(row.vs.value) if row.vs else "",
                      _fmt(row.vs.ratio) if row.vs else "", aim, row.note or "")
    return table


def write_results(rows: Sequence[Row], path: Path) -> None:
    path.write_text(json.dumps({r.name: r.as_json() for r in rows}, indent=2) + "\n")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """``python -m bench.runner [--quick] [--only metrics ...] [--sqlite] [--results PATH]``:
    a subset of the benchmarks, e.g. one being worked on, without the whole run."""
    parser = argparse.ArgumentParser(prog="python -m bench.runner")
    parser.add_argument("--quick", action="store_true", help="the small sizes")
    parser.add_argument("--only", action="append", choices=BENCHMARKS,
                        help="run this benchmark (repeatable); default: all")
    parser.add_argument("--sqlite", action="store_true", help="never use PostgreSQL")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"where to write the JSON (default {RESULTS.name})")
    parser.add_argument("--sync-people", type=int, metavar="N",
                        help="the sync benchmark's sandbox size (its memory baseline: N/4)")
    parser.add_argument("--one-instant", action="store_true",
                        help="the sync benchmark's 1%% edits all at one instant (a bulk update)")
    parser.add_argument("--sync-target", action="append", metavar="LABEL",
                        help="sync only this object, e.g. salesforce.leads (repeatable)")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    if args.sync_people:
        size = replace(size, name=f"{size.name}, sync {args.sync_people:,} people",
                       sync_people=args.sync_people, sync_people_small=args.sync_people // 4)
    if args.sync_target:
        size = replace(size, extra={**size.extra, "sync_targets": tuple(args.sync_target)})
    if args.one_instant:
        size = replace(size, extra={**size.extra, "one_instant": True})
    return run_all(quick=args.quick, only=args.only, size=size, results_path=args.results,
                   use_postgres=not args.sqlite)


if __name__ == "__main__":
    main()
