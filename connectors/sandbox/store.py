"""Where the sandbox keeps its records: SQLite tables behind a dict-like face.

A million-person world is several million records, about 10 GB as Python dicts, so records
live pickled in SQLite (in memory for small worlds, in a temporary file for large ones) and
only a bounded cache of them stays in Python. Each table indexes the keys the servers page
by: an id order key and a sort stamp (``SystemModstamp`` in Salesforce, the last-modified
property in HubSpot), so a page is an index range read, never a scan of the whole table.

Writes are write-back: a changed record stays in the cache marked dirty and reaches SQLite
in batches, and always before a read that goes to SQLite. A small world's cache is unbounded,
so it holds every record and SQLite serves only the ordered reads. Code that changes a record
in place must store it again (``table[id] = rec``), as the world's writers do.
"""

from __future__ import annotations

import pickle
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]
# (id order key, sort stamp, gone): gone is IsDeleted in Salesforce, archived in HubSpot
Keys = Callable[[Record], tuple[Any, str | None, int]]
CHUNK = 512
FLUSH_AT = 4096
# records a schema (describe, property definitions) is inferred from: a large table's first
SCHEMA_SAMPLE = 50_000


def stamp_key(value: Any) -> str | None:
    """A datetime as fixed-width UTC text, so text order is time order."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return None if value is None else str(value)


class Store:
    """One SQLite database holding every table of a world, shared by its server threads."""

    def __init__(self, path: str | None = None, *, cache_limit: int | None = None) -> None:
        self.path = path or ":memory:"
        self.cache_limit = cache_limit
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=MEMORY",
                       "cache_size=-32768"):
            self.db.execute(f"PRAGMA {pragma}")
        self.lock = threading.RLock()

    @classmethod
    def on_disk(cls, *, cache_limit: int = 1024) -> Store:
        """A store in a fresh temporary directory, removed when the store is collected."""
        folder = tempfile.mkdtemp(prefix="truce-sandbox-")
        store = cls(str(Path(folder) / "world.db"), cache_limit=cache_limit)
        weakref.finalize(store, _drop, store.db, folder)
        return store

    def table(self, name: str, keys: Keys) -> Table:
        return Table(self, name, keys, self.cache_limit)


def _drop(db: sqlite3.Connection, folder: str) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)


class Table(MutableMapping[str, Record]):
    """Records of one object type by id, in insertion order, like the dict it replaces."""

    def __init__(self, store: Store, name: str, keys: Keys, limit: int | None) -> None:
        self.store, self.keys, self.limit = store, keys, limit
        self.name = '"t_' + "".join(c for c in name if c.isalnum() or c == "_") + '"'
        self.cache: dict[str, Record] = {}
        self.dirty: dict[str, None] = {}  # insertion order: new rows get their seq in it
        self.count = 0
        n = self.name
        with store.lock:
            store.db.execute(f"CREATE TABLE {n} (seq INTEGER PRIMARY KEY, id TEXT UNIQUE "
                             "NOT NULL, ik, sk TEXT, gone INTEGER, data BLOB)")
            # gone rides along so a count (a search's total) never reads the table itself
            store.db.execute(f'CREATE INDEX "{n[1:-1]}_ik" ON {n} (ik, gone)')
            store.db.execute(f'CREATE INDEX "{n[1:-1]}_sk" ON {n} (sk, ik, gone)')

    # -- the mapping ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.count

    def __contains__(self, rec_id: object) -> bool:
        if rec_id in self.cache:
            return True
        if self.limit is None:  # an unbounded cache holds every record
            return False
        with self.store.lock:
            return self.store.db.execute(f"SELECT 1 FROM {self.name} WHERE id = ?",
                                         (rec_id,)).fetchone() is not None

    def __getitem__(self, rec_id: str) -> Record:
        rec = self.cache.get(rec_id)
        if rec is not None:
            return rec
        if self.limit is None or not isinstance(rec_id, str):
            raise KeyError(rec_id)
        with self.store.lock:
            row = self.store.db.execute(f"SELECT data FROM {self.name} WHERE id = ?",
                                        (rec_id,)).fetchone()
        if row is None:
            raise KeyError(rec_id)
        rec = pickle.loads(row[0])
        self._remember(rec_id, rec)
        return rec

    def get(self, rec_id: Any, default: Any = None) -> Any:
        try:
            return self[rec_id]
        except KeyError:
            return default

    def __setitem__(self, rec_id: str, rec: Record) -> None:
        if rec_id not in self:
            self.count += 1
        self.cache[rec_id] = rec
        self.dirty[rec_id] = None
        if self.limit and (len(self.dirty) >= FLUSH_AT or len(self.cache) > self.limit):
            self.flush()

    def __delitem__(self, rec_id: str) -> None:
        if rec_id not in self:
            raise KeyError(rec_id)
        self.cache.pop(rec_id, None)
        self.dirty.pop(rec_id, None)
        with self.store.lock:
            self.store.db.execute(f"DELETE FROM {self.name} WHERE id = ?", (rec_id,))
        self.count -= 1

    def __iter__(self) -> Iterator[str]:
        for rec_id, _, _ in self._rows("seq", want_data=False):
            yield rec_id

    def values(self) -> Iterator[Record]:  # type: ignore[override]
        for _, rec, _ in self._rows("seq"):
            yield rec

    def items(self) -> Iterator[tuple[str, Record]]:  # type: ignore[override]
        for rec_id, rec, _ in self._rows("seq"):
            yield rec_id, rec

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table | dict):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Table {self.name} of {self.count} records>"

    # -- cache and batching -----------------------------------------------------------------

    def _remember(self, rec_id: str, rec: Record) -> None:
        self.cache[rec_id] = rec
        if self.limit and len(self.cache) > self.limit:
            self.flush()

    def flush(self) -> None:
        """Write the dirty records in one transaction; trim the cache to half its limit."""
        if self.dirty:
            keys, rows = self.keys, []
            for rec_id in self.dirty:
                rec = self.cache[rec_id]
                ik, sk, gone = keys(rec)
                rows.append((rec_id, ik, sk, gone, pickle.dumps(rec, pickle.HIGHEST_PROTOCOL)))
            with self.store.lock:
                db = self.store.db
                db.execute("BEGIN")
                db.executemany(
                    f"INSERT INTO {self.name} (id, ik, sk, gone, data) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET ik = excluded.ik, sk = excluded.sk, "
                    "gone = excluded.gone, data = excluded.data", rows)
                db.execute("COMMIT")
            self.dirty.clear()
        if self.limit and len(self.cache) > self.limit:
            keep = self.limit // 2
            for rec_id in list(self.cache)[: len(self.cache) - keep]:
                del self.cache[rec_id]

    # -- ordered reads ----------------------------------------------------------------------

    def _rows(self, order: str, *, want_data: bool = True, where: str = "",
              args: tuple[Any, ...] = (), after: Any = None
              ) -> Iterator[tuple[str, Any, Any]]:
        """Rows in ``seq``, ``ik`` or ``(sk, ik)`` order, fetched a chunk at a time by keyset."""
        self.flush()
        cols = "seq, id, sk, ik" + (", data" if want_data else "")
        position = {"seq": "seq > ?", "ik": "ik > ?", "sk": "(sk, ik) > (?, ?)"}[order]
        by = {"seq": "seq", "ik": "ik", "sk": "sk, ik"}[order]
        base = f"SELECT {cols} FROM {self.name} WHERE " + (f"{where} AND " if where else "")
        while True:
            if after is None:
                sql, params = base + f"1 ORDER BY {by} LIMIT {CHUNK}", args
            else:
                sql = base + f"{position} ORDER BY {by} LIMIT {CHUNK}"
                params = args + (after if isinstance(after, tuple) else (after,))
            with self.store.lock:
                rows = self.store.db.execute(sql, params).fetchall()
            for row in rows:
                rec_id = row[1]
                cached = self.cache.get(rec_id)
                pos = row[0] if order == "seq" else row[3] if order == "ik" else (row[2], row[3])
                if cached is not None or not want_data:
                    yield rec_id, cached, pos
                else:
                    yield rec_id, pickle.loads(row[4]), pos
            if len(rows) < CHUNK:
                return
            after = pos

    def ordered(self, order: str, bounds: Bounds | None = None, *, after: Any = None
                ) -> Iterator[Record]:
        """Records within ``bounds`` in id order (``"ik"``, numeric ids as numbers) or in
        (stamp, id) order (``"sk"``), resuming after a position: an index range read."""
        for _, rec in self.positioned(order, bounds, after=after):
            yield rec

    def positioned(self, order: str, bounds: Bounds | None = None, *, after: Any = None
                   ) -> Iterator[tuple[Any, Record]]:
        """Like ``ordered``, with each record's position to resume after."""
        where, args = (bounds or Bounds()).sql()
        for _, rec, pos in self._rows(order, where=where, args=args, after=after):
            yield pos, rec

    def ids(self, bounds: Bounds | None = None) -> list[str]:
        """Ids within ``bounds`` in insertion order, without loading their records."""
        where, args = (bounds or Bounds()).sql()
        return [rec_id for rec_id, _, _ in self._rows("seq", want_data=False, where=where,
                                                       args=args)]

    def gone(self, rec_id: str) -> bool | None:
        """Whether the record is deleted (archived); None when there is no such record."""
        rec = self.cache.get(rec_id)
        if rec is not None or self.limit is None:
            return None if rec is None else bool(self.keys(rec)[2])
        with self.store.lock:
            row = self.store.db.execute(f"SELECT gone FROM {self.name} WHERE id = ?",
                                        (rec_id,)).fetchone()
        return None if row is None else bool(row[0])

    def count_within(self, bounds: Bounds) -> int:
        where, args = bounds.sql()
        self.flush()
        with self.store.lock:
            return self.store.db.execute(
                f"SELECT COUNT(*) FROM {self.name} WHERE {where or '1'}", args).fetchone()[0]


@dataclass
class Bounds:
    """A range on the sort stamp and on the id key, and whether gone rows are wanted."""

    lo: str | None = None
    lo_open: bool = False
    hi: str | None = None
    hi_open: bool = False
    gone: int | None = None
    ik_lo: Any = None
    ik_lo_open: bool = False
    stamped: bool = False  # only rows that have a stamp

    def sql(self) -> tuple[str, tuple[Any, ...]]:
        parts: list[str] = []
        args: list[Any] = []
        if self.stamped or self.lo is not None or self.hi is not None:
            parts.append("sk IS NOT NULL")
        if self.lo is not None:
            parts.append("sk > ?" if self.lo_open else "sk >= ?")
            args.append(self.lo)
        if self.hi is not None:
            parts.append("sk < ?" if self.hi_open else "sk <= ?")
            args.append(self.hi)
        if self.ik_lo is not None:
            parts.append("ik > ?" if self.ik_lo_open else "ik >= ?")
            args.append(self.ik_lo)
        if self.gone is not None:
            parts.append("gone = ?")
            args.append(self.gone)
        return " AND ".join(parts), tuple(args)
