"""A query's rows as pages streamed from the store, so a locator holds a position, not rows.

The connectors' incremental shape, ``WHERE SystemModstamp >= X ORDER BY SystemModstamp, Id``,
and a query with no ORDER BY (insertion order) read the table through an index range, a page
at a time; the rest of the WHERE is still checked on each row in Python. Other orders sort
the matches once and hold them, as small queries always did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.sandbox.soql import BoolOp, Comparison, Literal, Query
from connectors.sandbox.soql_eval import CompiledQuery
from connectors.sandbox.store import Bounds, Table, stamp_key
from connectors.sandbox.world import Record, SalesforceOrg

MARKS_KEPT = 8
_STAMP = ("systemmodstamp",)


def _order_kind(q: Query) -> str | None:
    """``seq`` (no ORDER BY), ``sk`` (by stamp, then Id), ``ik`` (by Id) or None."""
    items = [(tuple(p.lower() for p in i.path), i.desc) for i in q.order]
    if not items:
        return "seq"
    if items in ([(_STAMP, False)], [(_STAMP, False), (("id",), False)]):
        return "sk"
    if items == [(("id",), False)]:
        return "ik"
    return None


def _conjuncts(node: Any) -> list[Any]:
    if isinstance(node, BoolOp) and node.op == "AND":
        return [c for item in node.items for c in _conjuncts(item)]
    return [] if node is None else [node]


def _bounds(q: Query, order: str, include_deleted: bool) -> tuple[Bounds, bool]:
    """The stamp range the WHERE implies, and whether that range is all the WHERE says."""
    bounds, exact = Bounds(gone=None if include_deleted else 0, stamped=order == "sk"), True
    for c in _conjuncts(q.where):
        lit = c.value if isinstance(c, Comparison) else None
        if not (isinstance(lit, Literal) and lit.kind == "datetime"
                and isinstance(lit.value, datetime)
                and tuple(p.lower() for p in c.path) == _STAMP):
            exact = False
            continue
        key = stamp_key(lit.value)
        if c.op in (">", ">=", "=") and bounds.lo is None:
            bounds.lo, bounds.lo_open = key, c.op == ">"
            if c.op == "=":
                bounds.hi = key
        elif c.op in ("<", "<=") and bounds.hi is None:
            bounds.hi, bounds.hi_open = key, c.op == "<"
        else:
            exact = False
    return bounds, exact


@dataclass
class Result:
    """The rows of one query: a held list, or a stream resumable at remembered positions."""

    table: Table | None
    cq: CompiledQuery
    order: str = "seq"
    bounds: Bounds = field(default_factory=Bounds)
    exact: bool = True
    held: list[Record] | None = None
    marks: dict[int, Any] = field(default_factory=lambda: {0: None})
    _total: int | None = None

    @property
    def total(self) -> int:
        """Rows in the result (after OFFSET and LIMIT), counted once."""
        if self.held is not None:
            return len(self.held)
        if self._total is None:
            if self.table is None:
                found = 0
            elif self.exact:
                found = self.table.count_within(self.bounds)
            else:
                found = sum(1 for _ in self._matches(None))
            found = max(0, found - (self.cq.offset or 0))
            self._total = found if self.cq.limit is None else min(found, self.cq.limit)
        return self._total

    def rows(self) -> Iterator[Record]:
        """Every row of the result in order (for COUNT(field))."""
        if self.held is not None:
            yield from self.held
            return
        offset = 0
        while page := self.page(offset, 2000):
            yield from page
            offset += len(page)

    def page(self, offset: int, size: int) -> list[Record]:
        """Rows ``offset`` to ``offset + size``, resumed from the nearest remembered position."""
        if self.held is not None:
            return self.held[offset:offset + size]
        end = offset + size if self.cq.limit is None else min(offset + size, self.cq.limit)
        if self.table is None or end <= offset:
            return []
        start = (self.cq.offset or 0) + offset
        mark = max(m for m in self.marks if m <= start)
        out: list[Record] = []
        skip, last = start - mark, None
        for pos, rec in self._matches(self.marks[mark]):
            if skip:
                skip -= 1
                continue
            out.append(rec)
            last = pos
            if len(out) == end - offset:
                break
        if out:
            self.marks[start + len(out)] = last
            for old in sorted(self.marks)[1:-MARKS_KEPT]:
                del self.marks[old]
        return out

    def _matches(self, after: Any) -> Iterator[tuple[Any, Record]]:
        assert self.table is not None
        pred = self.cq.predicate
        for pos, rec in self.table.positioned(self.order, self.bounds, after=after):
            if pred is None or pred(rec):
                yield pos, rec


def open_result(cq: CompiledQuery, q: Query, org: SalesforceOrg, *,
                include_deleted: bool) -> Result:
    """The query's result: streamed when its order is an index order, else sorted and held."""
    table = org.objects.get(cq.sobject)
    order = _order_kind(q)
    if order is not None:
        bounds, exact = _bounds(q, order, include_deleted)
        return Result(table, cq, order, bounds, exact)
    rows: list[Record] = []
    if table is not None:
        pred = cq.predicate
        for rec in table.values():
            if (include_deleted or not rec.get("IsDeleted")) and (pred is None or pred(rec)):
                rows.append(rec)
    cq.sort(rows)
    start = cq.offset or 0
    end = None if cq.limit is None else start + cq.limit
    return Result(table, cq, held=rows[start:end] if start or end is not None else rows)
