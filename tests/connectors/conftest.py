"""Fixtures for the connector tests: each CRM's sandbox on a real loopback socket.

Fixtures are prefixed by CRM (``sf_``, ``hs_``) so both connectors' tests share this file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.salesforce import SalesforceConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate_world
from connectors.sandbox.salesforce_app import start_salesforce
from connectors.sandbox.server import RunningServer
from connectors.sandbox.world import World
from service.settings import SalesforceSettings

# ---- Salesforce -------------------------------------------------------------------------


@dataclass
class SfTimer:
    """The sandbox's monotonic timer, moved by hand to expire sessions and query locators."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def sf_world() -> World:
    """A small generated org (seeded, so counts and ids repeat run to run)."""
    return generate_world(seed=7, people=300)


@pytest.fixture()
def sf_faults() -> Faults:
    return Faults()


@pytest.fixture()
def sf_timer() -> SfTimer:
    return SfTimer()


@pytest.fixture()
def sf_server(sf_world: World, sf_faults: Faults, sf_timer: SfTimer) -> Iterator[RunningServer]:
    server = start_salesforce(sf_world, sf_faults, timer=sf_timer)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def sf_settings(sf_server: RunningServer) -> Callable[..., SalesforceSettings]:
    """Settings for one login style: ``token`` (default), ``password``, ``soap`` or ``client``."""

    def make(mode: str = "token", **overrides: Any) -> SalesforceSettings:
        extra = sf_server.extra
        values: dict[str, Any] = {"ca_bundle": sf_server.ca_path, "login_url": sf_server.url}
        if mode == "token":
            values |= {"instance_url": sf_server.url, "access_token": sf_server.access_token}
        elif mode in ("password", "soap"):
            values |= {"username": extra["username"], "password": extra["password"]}
            if mode == "password":
                values |= {"client_id": extra["client_id"],
                           "client_secret": extra["client_secret"]}
        elif mode == "client":
            values |= {"client_id": extra["client_id"], "client_secret": extra["client_secret"]}
        else:
            raise ValueError(mode)
        return SalesforceSettings(**(values | overrides))

    return make


@pytest.fixture()
def sf_connector(
    sf_settings: Callable[..., SalesforceSettings],
) -> Iterator[Callable[..., SalesforceConnector]]:
    """Connectors against the sandbox, closed before it stops; no backoff waits."""
    made: list[SalesforceConnector] = []

    def make(mode: str = "token", *, settings: SalesforceSettings | None = None,
             **kwargs: Any) -> SalesforceConnector:
        kwargs.setdefault("retry_wait_seconds", 0.0)
        made.append(SalesforceConnector(settings or sf_settings(mode), **kwargs))
        return made[-1]

    yield make
    for connector in made:
        connector.close()
