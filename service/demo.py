"""`truce demo`: migrate the embedded SQLite database, then serve."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import uvicorn
from rich.console import Console

from service.app import create_app
from service.migrate import upgrade
from service.settings import DEFAULT_DATABASE_URL, get_settings

console = Console()


def run_demo(*, port: int, people: int, seed: int) -> None:
    Path(".truce").mkdir(exist_ok=True)
    admin_key = os.environ.get("TRUCE_ADMIN_API_KEY") or "truce_demo_" + secrets.token_urlsafe(16)
    settings = get_settings(database_url=DEFAULT_DATABASE_URL, admin_api_key=admin_key)
    console.print("[bold]Truce demo[/bold]: migrating the embedded database")
    upgrade(settings.database_url)
    app = create_app(settings)
    console.print(f"API and docs:  http://127.0.0.1:{port}/docs")
    console.print(f"Health:        http://127.0.0.1:{port}/healthz")
    console.print(f"Prometheus:    http://127.0.0.1:{port}/metrics")
    console.print(f"Admin API key: {admin_key}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")
