"""CRM search: filter groups, sorts, offset paging and the 10,000-result cap.

One request filters the table once and sorts its matches once. Datetime values are compared
as canonical ISO strings (``2025-01-01T00:00:00.000Z`` sorts like the instant it names), so
the scan never parses a stored timestamp twice; epoch-ms filter values are converted to the
same form up front.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import Any

from connectors.sandbox.hubspot_wire import WireError, modified_property
from connectors.sandbox.store import Bounds, Table
from connectors.sandbox.world import Record

Props = dict[str, str | None]
Predicate = Callable[[Props], bool]

MAX_LIMIT = 200
MAX_GROUPS = 5
MAX_FILTERS = 25
OPERATORS = frozenset({
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
    "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
})
DATETIME_PROPERTIES = frozenset({
    "createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate", "hs_timestamp",
    "hs_meeting_start_time", "hs_meeting_end_time", "notes_last_updated",
    "hs_lastactivitydate", "hs_createdate", "hs_task_completion_date", "archivedAt",
})
NUMBER_PROPERTIES = frozenset({
    "hs_object_id", "amount", "numberofemployees", "annualrevenue", "hubspotscore",
    "hs_call_duration", "hubspot_owner_id", "num_associated_contacts",
})
QUERY_PROPERTIES = ("firstname", "lastname", "email", "phone", "company", "name", "domain",
                    "website", "dealname", "hs_task_subject", "hs_note_body")
_TOKEN_SPLIT = re.compile(r"[\s,;:/()\[\]]+")


def is_datetime(name: str) -> bool:
    return (name in DATETIME_PROPERTIES or name.endswith("_date") or name.endswith("date")
            or name.startswith("hs_v2_date_") or name.endswith("_timestamp"))


def is_number(name: str) -> bool:
    return name in NUMBER_PROPERTIES


@lru_cache(maxsize=262_144)
def dt_key(value: str) -> str | None:
    """Canonical ISO-ms form of a datetime given as ISO text, a date or epoch milliseconds."""
    if len(value) == 24 and value[10] == "T" and value[-1] == "Z" and value[19] == ".":
        return value
    try:
        if value.lstrip("-").isdigit():
            at = datetime.fromtimestamp(int(value) / 1000, UTC)
        elif len(value) == 10:
            d = date.fromisoformat(value)
            at = datetime(d.year, d.month, d.day, tzinfo=UTC)
        else:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def num_key(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def key_function(name: str) -> Callable[[str], Any]:
    """How values of one property compare: as instants, numbers or case-folded text."""
    if is_datetime(name):
        return dt_key
    if is_number(name):
        return num_key
    return str.lower


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tokens(text: str) -> set[str]:
    return {t for t in _TOKEN_SPLIT.split(text.lower()) if t}


def _token_match(text: str, pattern: str) -> bool:
    pattern = pattern.lower()
    if "*" in pattern:
        return fnmatch.fnmatchcase(text.lower(), pattern) or any(
            fnmatch.fnmatchcase(t, pattern) for t in _tokens(text))
    return pattern == text.lower() or pattern in _tokens(text)


def _need(f: dict[str, Any], field: str) -> str:
    if f.get(field) is None:
        raise WireError(400, f"Filter on {f.get('propertyName')} with operator "
                        f"{f.get('operator')} requires '{field}'", "VALIDATION_ERROR")
    return _scalar(f[field])


def compile_filter(f: dict[str, Any]) -> Predicate:
    """One filter as a predicate over a record's properties."""
    name = f.get("propertyName")
    op = str(f.get("operator") or "EQ").upper()
    if not name:
        raise WireError(400, "Each filter requires a propertyName", "VALIDATION_ERROR")
    if op not in OPERATORS:
        raise WireError(400, f"Unknown filter operator: {op}", "VALIDATION_ERROR")
    key = key_function(name)

    def value_of(props: Props) -> Any:
        raw = props.get(name)
        return None if raw is None or raw == "" else key(raw)

    if op == "HAS_PROPERTY":
        return lambda p: p.get(name) not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return lambda p: p.get(name) in (None, "")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = _need(f, "value")
        want = op == "CONTAINS_TOKEN"
        return lambda p: (p.get(name) is not None and _token_match(p[name] or "", pattern)) == want
    if op in ("IN", "NOT_IN"):
        raw_values = f.get("values")
        if raw_values is None:
            raise WireError(400, f"Filter on {name} with operator {op} requires 'values'",
                            "VALIDATION_ERROR")
        keys = {key(_scalar(v)) for v in raw_values}
        if op == "IN":
            return lambda p: value_of(p) in keys
        return lambda p: value_of(p) not in keys
    target = key(_need(f, "value"))
    if target is None:
        raise WireError(400, f"Unable to parse filter value {f.get('value')!r} for {name}",
                        "VALIDATION_ERROR")
    if op == "EQ":
        return lambda p: value_of(p) == target
    if op == "NEQ":
        return lambda p: value_of(p) != target
    if op == "BETWEEN":
        high = key(_need(f, "highValue"))
        if high is None:
            raise WireError(400, f"Unable to parse highValue {f.get('highValue')!r} for {name}",
                            "VALIDATION_ERROR")
        return lambda p: (v := value_of(p)) is not None and target <= v <= high
    check = {"LT": operator.lt, "LTE": operator.le, "GT": operator.gt, "GTE": operator.ge}[op]
    return lambda p: ((raw := p.get(name)) is not None and raw != ""
                      and (v := key(raw)) is not None and check(v, target))


def compile_groups(groups: list[dict[str, Any]] | None) -> Predicate | None:
    """filterGroups are ORed; the filters inside a group are ANDed."""
    groups = groups or []
    if len(groups) > MAX_GROUPS:
        raise WireError(400, f"Too many filter groups ({len(groups)}); the maximum is "
                        f"{MAX_GROUPS}.", "VALIDATION_ERROR")
    total = sum(len(g.get("filters") or []) for g in groups)
    if total > MAX_FILTERS:
        raise WireError(400, f"Too many filters ({total}); the maximum is {MAX_FILTERS}.",
                        "VALIDATION_ERROR")
    compiled = [[compile_filter(f) for f in g.get("filters") or []] for g in groups]
    compiled = [g for g in compiled if g]
    if not compiled:
        return None
    if len(compiled) == 1:
        group = compiled[0]
        if len(group) == 1:
            return group[0]
        return lambda p: all(pred(p) for pred in group)
    return lambda p: any(all(pred(p) for pred in group) for group in compiled)


def parse_sorts(sorts: Any) -> list[tuple[str, bool]]:
    """``"prop"``/``"-prop"`` strings or ``{"propertyName", "direction"}`` objects."""
    out: list[tuple[str, bool]] = []
    for s in sorts or []:
        if isinstance(s, str):
            desc = s.startswith("-")
            name = s.lstrip("-+").strip()
        elif isinstance(s, dict):
            name = str(s.get("propertyName") or "")
            desc = str(s.get("direction") or "ASCENDING").upper() == "DESCENDING"
        else:
            raise WireError(400, f"Unable to parse sort {s!r}", "VALIDATION_ERROR")
        if not name:
            raise WireError(400, "Each sort requires a propertyName", "VALIDATION_ERROR")
        out.append((name, desc))
    return out


def _id_key(rec: Record) -> tuple[int, int | str]:
    rid = rec["id"]
    return (0, int(rid)) if rid.isdigit() else (1, rid)


def sort_records(records: list[Record], sorts: list[tuple[str, bool]], *,
                 in_id_order: bool = False) -> None:
    """Sort in place by the sorts, missing values last, ties broken by id ascending."""
    if not in_id_order:
        records.sort(key=_id_key)
    for name, desc in reversed(sorts):
        key = key_function(name)

        def value(rec: Record, name: str = name, key: Callable[[str], Any] = key) -> Any:
            raw = rec["properties"].get(name)
            return None if raw is None or raw == "" else key(raw)

        if desc:
            records.sort(key=lambda r: ((v := value(r)) is not None, v), reverse=True)
        else:
            records.sort(key=lambda r: ((v := value(r)) is None, v))


def lagged_view(rec: Record, object_type: str, cutoff: datetime) -> Record | None:
    """The record as search's index saw it at ``cutoff``: None if it did not exist yet."""
    if rec["updatedAt"] <= cutoff:
        return rec
    if rec["createdAt"] > cutoff:
        return None
    props: Props = {}
    latest = rec["createdAt"]
    for name, entries in rec["history"].items():
        seen = [(v, at) for v, at in entries if at <= cutoff]
        if seen:
            props[name] = seen[-1][0]
            latest = max(latest, seen[-1][1])
    for name, value in rec["properties"].items():
        if name not in rec["history"]:
            props[name] = value
    modified = modified_property(object_type)
    props[modified] = dt_key(latest.isoformat()) if modified in rec["properties"] else None
    archived = bool(rec["archived"]) and rec["archivedAt"] is not None and \
        rec["archivedAt"] <= cutoff
    return {**rec, "properties": props, "updatedAt": latest, "archived": archived,
            "archivedAt": rec["archivedAt"] if archived else None}


def _query_predicate(query: str | None) -> Predicate | None:
    words = [w for w in (query or "").lower().split() if w]
    if not words:
        return None

    def match(p: Props) -> bool:
        texts = [(p.get(n) or "").lower() for n in QUERY_PROPERTIES]
        return all(any(w in t for t in texts) for w in words)

    return match


def index_plan(groups: Any, sorts: list[tuple[str, bool]], object_type: str
               ) -> tuple[str, Bounds, bool] | None:
    """How the store's indexes can answer a search: (order, bounds, bounds say it all).

    The incremental-read shape (a range on the last-modified property, perhaps an id floor,
    sorted by that property or by id) becomes an index range read; other filters of a single
    group are still checked on each row. None: scan the table.
    """
    modified = modified_property(object_type)
    if sorts == [] or sorts == [("hs_object_id", False)]:
        order = "ik"
    elif sorts == [(modified, False)]:
        order = "sk"
    else:
        return None
    live = [g for g in groups or [] if g.get("filters")]
    if len(live) > 1:
        return None
    bounds, exact = Bounds(gone=0, stamped=order == "sk"), True
    for f in live[0]["filters"] if live else []:
        name, op = f.get("propertyName"), str(f.get("operator") or "EQ").upper()
        if name == modified and op in ("GT", "GTE", "EQ", "BETWEEN") and bounds.lo is None:
            bounds.lo, bounds.lo_open = dt_key(_scalar(f["value"])), op == "GT"
            if op in ("EQ", "BETWEEN"):
                bounds.hi = dt_key(_scalar(f["value" if op == "EQ" else "highValue"]))
        elif name == modified and op in ("LT", "LTE") and bounds.hi is None:
            bounds.hi, bounds.hi_open = dt_key(_scalar(f["value"])), op == "LT"
        elif name == "hs_object_id" and op in ("GT", "GTE") and bounds.ik_lo is None:
            floor = num_key(_scalar(f["value"]))
            bounds.ik_lo, bounds.ik_lo_open = floor, op == "GT"
            exact = exact and floor is not None
        else:
            exact = False
    return order, bounds, exact


def search(table: Table, object_type: str, body: dict[str, Any], *,
           now: datetime, lag_seconds: float = 0, cap: int = 10_000,
           ) -> tuple[list[Record], int, int | None]:
    """Answer (page of records, honest total, next offset or None)."""
    limit = body.get("limit", 10)
    try:
        limit = int(limit)
        offset = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise WireError(400, "limit and after must be integers", "VALIDATION_ERROR") from None
    if limit < 0 or limit > MAX_LIMIT:
        raise WireError(400, f"limit must be between 0 and {MAX_LIMIT}; got {limit}",
                        "VALIDATION_ERROR")
    if offset < 0:
        raise WireError(400, f"after must not be negative; got {offset}", "VALIDATION_ERROR")
    if offset + limit > cap:
        raise WireError(
            400, f"There was a problem with the request. Search results are limited to {cap} "
            f"records; after={offset} with limit={limit} pages past that limit.",
            "VALIDATION_ERROR")
    predicate = compile_groups(body.get("filterGroups"))
    text = _query_predicate(body.get("query"))
    sorts = parse_sorts(body.get("sorts"))
    cutoff = now - timedelta(seconds=lag_seconds) if lag_seconds > 0 else None
    plan = None if cutoff is not None or text is not None else index_plan(
        body.get("filterGroups"), sorts, object_type)
    if plan is not None:
        order, bounds, exact = plan
        matched = [0]

        def rows() -> Iterator[Record]:
            for r in table.ordered(order, bounds):
                if predicate is None or predicate(r["properties"]):
                    matched[0] += 1
                    yield r

        stream = rows()
        page = list(islice(stream, offset, offset + limit))
        if exact:
            total = table.count_within(bounds)
        else:  # other filters too: count the rest of the range through them
            for _ in stream:
                pass
            total = matched[0]
    else:
        page, total = _scan(table, object_type, sorts, predicate, text, cutoff, offset, limit)
    following = offset + limit if offset + limit < total and limit > 0 else None
    return page, total, following


def _scan(table: Table, object_type: str, sorts: list[tuple[str, bool]],
          predicate: Predicate | None, text: Predicate | None, cutoff: datetime | None,
          offset: int, limit: int) -> tuple[list[Record], int]:
    """Any other search: every row in id order through the filters, matches sorted once."""
    matched: list[Record] = []
    for rec in table.ordered("ik"):
        if cutoff is not None:
            view = lagged_view(rec, object_type, cutoff)
            if view is None:
                continue
            rec = view
        if rec["archived"]:
            continue
        props = rec["properties"]
        if predicate is not None and not predicate(props):
            continue
        if text is not None and not text(props):
            continue
        matched.append(rec)
    sort_records(matched, sorts, in_id_order=True)
    return matched[offset:offset + limit], len(matched)
