"""The one small interface every CRM connector implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.records import AnyRecord, Malformed


@dataclass(frozen=True)
class Cursor:
    """Where a stream stopped: a cursor value, an id tie-break and connector-specific state.

    Saved by the sync engine in the same transaction as the page it covers, so a crash
    between pages loses nothing and a replayed page changes nothing.
    """

    value: str | None = None
    tie_break: str | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    """A batch of normalised records and the cursor to resume after it."""

    stream: str
    records: list[AnyRecord | Malformed]
    cursor: Cursor
    api_calls: int = 0


class ConnectorError(Exception):
    """A failure that retrying will not fix (bad credentials, unknown object): says what to fix."""


class StopEarly(Exception):  # noqa: N818 - it is a signal, not an error
    """The API budget is below its reserve: the run saves its place and stops, to resume later."""


class Connector(Protocol):
    source: str
    api_calls: int

    def check(self) -> None:
        """Log in and make one cheap call; raise ConnectorError with advice on failure."""

    def streams(self) -> list[str]:
        """Stream names in dependency order (owners and accounts before people, ...)."""

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        """Pages of ``stream`` in cursor order, starting at ``cursor`` (None: from the start)."""
