"""Type a parsed SOQL query against the org and compile it into Python closures.

The WHERE becomes one predicate, ORDER BY one sort, and SELECT a projector that writes
Salesforce's JSON shape (``attributes``, nested relationship records, wire datetimes), so
paging a large result is only slicing. Text compares case-insensitively, as SOQL does.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connectors.sandbox.salesforce_schema import (
    PREFIX_TO_OBJECT,
    SalesforceSchema,
    relationship_name,
    sf_datetime,
    wire_value,
)
from connectors.sandbox.soql import BoolOp, Comparison, Literal, Not, Query, SoqlError, like_regex
from connectors.sandbox.world import Record, SalesforceOrg

Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]
NUMERIC = {"int", "double", "currency", "percent"}
EXACT_TEXT = {"id", "reference"}
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_SOQL_TYPE = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}


@dataclass
class Resolved:
    """A field path typed against the schema: how to read it and how to write it out."""

    getter: Getter
    ftype: str
    hops: list[tuple[str, str, list[str]]]  # (relationship name, id field, targets)
    leaf: str


@dataclass
class CompiledQuery:
    sobject: str
    predicate: Predicate | None
    sort: Callable[[list[Record]], None]
    project: Callable[[Record], dict[str, Any]]
    count: Resolved | None | bool
    limit: int | None
    offset: int | None


def _deref(org: SalesforceOrg, ref: Any, targets: list[str]) -> tuple[str, Record] | None:
    if not isinstance(ref, str):
        return None
    guess = PREFIX_TO_OBJECT.get(ref[:3])
    for name in ([guess] if guess else []) + targets:
        rec = org.objects.get(name, {}).get(ref)
        if rec is not None:
            return name, rec
    return None


def _fold(v: Any) -> Any:
    return v.casefold() if isinstance(v, str) else v


def _same(v: Any) -> Any:
    return v


def _norm(ftype: str) -> Callable[[Any], Any]:
    """Text compares and sorts case-insensitively; ids, numbers and dates as they are."""
    if ftype in EXACT_TEXT or ftype in NUMERIC or ftype in ("boolean", "datetime", "date"):
        return _same
    return _fold


class Compiler:
    """Resolves names against one org; every method raises ``SoqlError`` on a bad query."""

    def __init__(self, schema: SalesforceSchema, org: SalesforceOrg, version: str) -> None:
        self.schema = schema
        self.org = org
        self.version = version

    def resolve(self, sobject: str, path: tuple[str, ...]) -> Resolved:
        current, hops = sobject, []
        for rel in path[:-1]:
            id_name = rel[:-3] + "__c" if rel.lower().endswith("__r") else rel + "Id"
            found = self.schema.field(current, id_name)
            if found is None or found[1] != "reference":
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{rel}' in "
                                f"field path. No such relation on entity '{current}'.")
            targets = self.schema.reference_to(current, found[0])
            hops.append((relationship_name(found[0]) or rel, found[0], targets))
            current = next((t for t in targets if self.schema.field(t, path[-1])), targets[0]
                           if targets else current)
        leaf = self.schema.field(current, path[-1])
        if leaf is None:
            raise SoqlError("INVALID_FIELD", f"No such column '{path[-1]}' on entity "
                            f"'{current}'. If you are attempting to use a custom field, be sure "
                            "to append the '__c' after the custom field name.")
        name = leaf[0]
        if not hops:
            return Resolved(lambda r: r.get(name), leaf[1], hops, name)
        org, chain = self.org, [(h[1], h[2]) for h in hops]

        def follow(rec: Record) -> Any:
            for id_field, targets in chain:
                found = _deref(org, rec.get(id_field), targets)
                if found is None:
                    return None
                rec = found[1]
            return rec.get(name)

        return Resolved(follow, leaf[1], hops, name)

    def coerce(self, field: Resolved, lit: Literal) -> Any:
        """A literal as the field's Python value, refusing the mismatches Salesforce refuses."""
        t = field.ftype
        if lit.kind == "null" or t == "anyType":
            return lit.value
        ok = {
            "datetime": lit.kind == "datetime",
            "date": lit.kind == "date",
            "boolean": lit.kind == "boolean",
        }.get(t, lit.kind == "number" if t in NUMERIC else lit.kind == "string")
        if not ok:
            wanted = _SOQL_TYPE.get(t, "number" if t in NUMERIC else "string")
            quotes = "should not" if wanted != "string" else "should"
            raise SoqlError("INVALID_FIELD", f"value of filter criterion for field "
                            f"'{field.leaf}' must be of type {wanted} and {quotes} be "
                            "enclosed in quotes")
        return _norm(t)(lit.value)

    def predicate(self, sobject: str, node: Any) -> Predicate:
        if isinstance(node, BoolOp):
            parts = [self.predicate(sobject, n) for n in node.items]
            if len(parts) == 2:  # the common keyset shape, without a generator per row
                a, b = parts
                if node.op == "AND":
                    return lambda r: a(r) and b(r)
                return lambda r: a(r) or b(r)
            if node.op == "AND":
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        if isinstance(node, Not):
            inner = self.predicate(sobject, node.item)
            return lambda r: not inner(r)
        return self.comparison(sobject, node)

    def comparison(self, sobject: str, c: Comparison) -> Predicate:
        f = self.resolve(sobject, c.path)
        get, norm = f.getter, _norm(f.ftype)
        if c.op in ("IN", "NOT IN"):
            assert isinstance(c.value, tuple)
            values = {self.coerce(f, lit) for lit in c.value}
            if c.op == "IN":
                return lambda r: norm(get(r)) in values
            return lambda r: norm(get(r)) not in values
        assert isinstance(c.value, Literal)
        if c.op == "LIKE":
            if c.value.kind != "string" or f.ftype in NUMERIC | {"datetime", "date", "boolean"}:
                raise SoqlError("INVALID_FIELD", f"invalid operator on field '{f.leaf}': LIKE")
            rx = like_regex(c.value.raw)
            return lambda r: isinstance(v := get(r), str) and rx.fullmatch(v) is not None
        want = self.coerce(f, c.value)
        if c.op == "=":
            if want is None:
                return lambda r: get(r) is None
            if norm is _same:
                return lambda r: get(r) == want
            return lambda r: norm(get(r)) == want
        if c.op == "!=":
            if want is None:
                return lambda r: get(r) is not None
            if norm is _same:
                return lambda r: get(r) != want
            return lambda r: norm(get(r)) != want
        cmp = _OPS[c.op]
        if want is None:
            return lambda r: False

        def ordered(r: Record) -> bool:
            v = get(r)
            return v is not None and cmp(norm(v), want)

        return ordered

    def sorter(self, sobject: str, q: Query) -> Callable[[list[Record]], None]:
        keys = []
        for item in q.order:
            f = self.resolve(sobject, item.path)
            null_rank = 0 if item.nulls_first != item.desc else 2
            keys.append((f.getter, _norm(f.ftype), null_rank, item.desc))

        def sort(rows: list[Record]) -> None:
            for get, norm, null_rank, desc in reversed(keys):
                rows.sort(key=lambda r, g=get, n=norm, nr=null_rank: (
                    (nr,) if (v := g(r)) is None else (1, n(v))), reverse=desc)

        return sort

    def projector(self, sobject: str, paths: list[tuple[str, ...]]) -> Callable[[Record], dict]:
        """Build the record shape once: top-level fields and nested relationship objects."""
        tree: dict[str, Any] = {}
        for path in paths:
            f = self.resolve(sobject, path)
            node = tree
            for rel, id_field, targets in f.hops:
                node = node.setdefault(rel, {"__rel__": (id_field, targets), "fields": {}})
                node = node["fields"]
            node[f.leaf] = _writer(f.ftype)
        base = f"/services/data/v{self.version}/sobjects/"
        org = self.org

        def shape(rec: Record, obj: str, fields: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {"attributes": {"type": obj, "url": base + obj + "/"
                                                  + str(rec.get("Id"))}}
            for key, spec in fields.items():
                if isinstance(spec, dict):
                    id_field, targets = spec["__rel__"]
                    found = _deref(org, rec.get(id_field), targets)
                    out[key] = None if found is None else shape(found[1], found[0],
                                                                spec["fields"])
                else:
                    out[key] = spec(rec.get(key))
            return out

        return lambda rec: shape(rec, sobject, tree)

    def compile(self, q: Query) -> CompiledQuery:
        sobject = self.schema.object_name(q.sobject)
        if sobject is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{q.sobject}' is not supported. If "
                            "you are attempting to use a custom object, be sure to append the "
                            "'__c' after the entity name.")
        count: Resolved | bool | None = None
        if q.count is not None:
            count = self.resolve(sobject, tuple(q.count.split("."))) if q.count else True
            if q.order:
                raise SoqlError("MALFORMED_QUERY", "ORDER BY is not allowed with COUNT()")
        predicate = self.predicate(sobject, q.where) if q.where is not None else None
        return CompiledQuery(sobject, predicate, self.sorter(sobject, q),
                             self.projector(sobject, q.fields), count, q.limit, q.offset)


def _writer(ftype: str) -> Callable[[Any], Any]:
    if ftype == "datetime":
        return lambda v: sf_datetime(v) if isinstance(v, datetime) else v
    if ftype in ("date", "time", "anyType"):
        return wire_value
    return lambda v: v.isoformat() if isinstance(v, date) else v
