"""`truce bench [--quick]`: the command body, kept apart so the CLI imports nothing heavy."""

from __future__ import annotations

import typer


def run_bench(quick: bool, only: list[str] | None = None) -> None:
    """Run the benchmarks in ``bench/`` (all, or ``only``); exit 1 if one was not measured."""
    try:
        from bench.runner import run_all
    except ImportError as exc:  # the benchmark extra (dlt, duckdb) is not installed
        typer.echo(f"truce bench needs the benchmark extra: pip install -e '.[bench]' ({exc})",
                   err=True)
        raise typer.Exit(2) from None
    if only:
        from bench.runner import BENCHMARKS

        unknown = sorted(set(only) - set(BENCHMARKS))
        if unknown:
            typer.echo(f"unknown benchmark {', '.join(unknown)}; known: "
                       f"{', '.join(BENCHMARKS)}", err=True)
            raise typer.Exit(2)
    rows = run_all(quick=quick, only=only)
    failed = [r.name for r in rows if r.value is None]
    if failed:
        typer.echo(f"not measured: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
