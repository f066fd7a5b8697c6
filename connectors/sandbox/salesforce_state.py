"""Shared state of one Salesforce sandbox: config, sessions, query cursors and usage.

Handlers raise ``SalesforceError`` and the app turns it into Salesforce's error list, so every
failure has the ``[{"message", "errorCode", "fields"}]`` shape clients parse.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

from connectors.sandbox.faults import Faults
from connectors.sandbox.salesforce_auth import Credentials, TokenStore
from connectors.sandbox.salesforce_schema import SalesforceSchema
from connectors.sandbox.world import Record, World

UNLIMITED_DAILY = 5_000_000


class SalesforceError(Exception):
    """A refusal with an HTTP status and a Salesforce errorCode."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []


def error_response(status: int, code: str, message: str,
                   fields: list[str] | None = None) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code, "fields": fields or []}],
                        status_code=status)


def not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


@dataclass
class Call:
    """What a handler needs from the request, read before leaving the event loop."""

    version: str
    path: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Cursor:
    """An open query locator: the result it pages through (positions, or held rows)."""

    rows: Any
    project: Callable[[Record], dict[str, Any]]
    batch: int
    last_used: float


class CursorStore:
    """Open query locators; idle ones expire and only the newest few stay open."""

    def __init__(self, idle_seconds: float, max_open: int, timer: Callable[[], float]) -> None:
        self.idle_seconds = idle_seconds
        self.max_open = max_open
        self.timer = timer
        self._open: OrderedDict[str, Cursor] = OrderedDict()
        self._next = 0
        self._lock = threading.Lock()

    def open(self, rows: Any, project: Callable[[Record], dict], batch: int) -> str:
        with self._lock:
            self._next += 1
            locator = f"01gSANDBOX{self._next:08d}"
            self._open[locator] = Cursor(rows, project, batch, self.timer())
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)
            return locator

    def get(self, locator: str) -> Cursor | None:
        """The cursor, touched; None when unknown, released or idle too long."""
        now = self.timer()
        with self._lock:
            cursor = self._open.get(locator)
            if cursor is None:
                return None
            if now - cursor.last_used >= self.idle_seconds:
                del self._open[locator]
                return None
            cursor.last_used = now
            return cursor

    def release(self, locator: str) -> None:
        with self._lock:
            self._open.pop(locator, None)


@dataclass
class SalesforceState:
    """Everything the handlers share; ``faults`` is read afresh on every call."""

    world: World
    faults: Faults
    api_version: str
    access_token: str
    creds: Credentials
    tokens: TokenStore
    cursors: CursorStore
    schema: SalesforceSchema
    timer: Callable[[], float] = time.monotonic
    api_used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_call(self) -> int:
        with self._lock:
            self.api_used += 1
            return self.api_used

    @property
    def daily_max(self) -> int:
        return self.faults.daily_limit if self.faults.daily_limit > 0 else UNLIMITED_DAILY

    def version_ok(self, version: str) -> bool:
        """Versions 20.0 up to the sandbox's own, as an org answers them."""
        try:
            v = float(version)
        except ValueError:
            return False
        return version.count(".") == 1 and 20.0 <= v <= float(self.api_version)
