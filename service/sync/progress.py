"""`truce sync`'s progress bars: one per stream, fed by the engine's page callback."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from service.errors import TruceError
from service.settings import Settings
from service.sync.service import sync_source


def run_with_progress(engine: Engine, settings: Settings, sources: list[str], *, full: bool,
                      console: Console) -> bool:
    """Sync each source with live bars; print each run's outcome; True if all succeeded."""
    ok = True
    with Progress(SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(),
                  TextColumn("{task.completed:>8.0f} records"),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                  console=console) as bars:
        for source in sources:
            tasks: dict[str, int] = {}

            def on_page(stream: str, n: int, counts: dict[str, int], _src: str = source,
                        tasks: dict[str, int] = tasks) -> None:
                if stream not in tasks:
                    tasks[stream] = bars.add_task(f"{_src} {stream}", total=None, detail="")
                detail = ", ".join(f"{k} {v}" for k, v in counts.items()
                                   if k != "fetched" and v)
                bars.update(tasks[stream], advance=n, detail=detail)

            try:
                run = sync_source(engine, settings, source, full=full, progress=on_page,
                                  requested_by="cli")
            except TruceError as exc:
                console.print(f"[red]{source}: {exc.message}[/red]")
                ok = False
                continue
            for task in tasks.values():
                bars.update(task, total=bars.tasks[task].completed)
            colour = "green" if run.status == "succeeded" else "yellow"
            console.print(f"[{colour}]{source}: run {run.id} {run.status}[/{colour}]"
                          + (f" ({run.error})" if run.error else ""))
            ok = ok and run.status == "succeeded"
    return ok
