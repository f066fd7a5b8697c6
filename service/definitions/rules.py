"""The lead-definition rule language: validation, explained evaluation, history and SQL.

A rule is JSON: groups ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": node}``, field
criteria ``{"field": "person.country", "op": "in", "value": ["US"]}`` and activity criteria
``{"activity": "form_submission", "within_days": 30, "at_least": 1}``.

Semantics both teams can predict:
- A missing value (no key, ``None``, ``""``, no account, or a value of the wrong type) fails
  every comparison, ``ne`` and ``not_in`` included; only ``exists: false`` passes on it. So
  ``{"not": {"field": "person.email_domain", "op": "in", ...}}`` passes for a person
  without a domain, while ``{"field": ..., "op": "not_in", ...}`` does not.
- String comparisons (eq ne in not_in contains matches) ignore case: country codes and domains
  arrive in any case from the CRMs.
- An activity criterion counts activities of its kind in the window ``(at - within_days, at]``;
  ``at_least`` defaults to 1.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_


class FieldType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"


FIELDS: dict[str, FieldType] = {
    "person.email": FieldType.STRING,
    "person.email_domain": FieldType.STRING,
    "person.title": FieldType.STRING,
    "person.country": FieldType.STRING,
    "person.lead_source": FieldType.STRING,
    "person.score": FieldType.NUMBER,
    "account.name": FieldType.STRING,
    "account.industry": FieldType.STRING,
    "account.employees": FieldType.NUMBER,
    "account.annual_revenue": FieldType.NUMBER,
    "account.country": FieldType.STRING,
    "account.is_customer": FieldType.BOOL,
}
OPERATORS: frozenset[str] = frozenset(
    {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "matches", "exists"}
)
ACTIVITY_KINDS: frozenset[str] = frozenset(
    {"form_submission", "email_click", "web_visit", "meeting", "call", "email"}
)
GROUPS = ("all", "any", "not")
MAX_DEPTH = 20
MAX_WINDOW_DAYS = 36_500
MAX_PATTERN_LENGTH = 500
_ORDERING = {"gt", "gte", "lt", "lte"}
_TEXT_ONLY = {"contains", "matches"}
_KEYS = {
    "field": {"field", "op", "value"},
    "activity": {"activity", "within_days", "at_least"},
}


class RuleError(ValueError):
    """One problem in a rule set, located by a path such as ``rules.all[2].any[0].op``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Activity:
    kind: str
    at: datetime


@dataclass
class Facts:
    """What is known of one person: current values, field history and activities."""

    person: dict[str, Any]
    account: dict[str, Any] | None
    activities: list[Activity]
    created_at: datetime
    field_history: dict[str, list[tuple[Any, datetime]]] = field(default_factory=dict)


@dataclass
class Outcome:
    """One node of the explanation tree: what was asked, what was found, and the verdict."""

    path: str
    passed: bool
    criterion: dict[str, Any]
    actual: Any
    detail: str
    children: list[Outcome] = field(default_factory=list)


# --- validation ------------------------------------------------------------------------------


def validate(rules: object, *, path: str = "rules") -> list[RuleError]:
    """Every problem in a rule set, so an author can fix them all in one round trip."""
    errors: list[RuleError] = []
    _check_node(rules, path, 1, errors)
    return errors


def _ensure_valid(rules: object) -> None:
    errors = validate(rules)
    if errors:
        raise errors[0]


def _check_node(node: object, path: str, depth: int, errors: list[RuleError]) -> None:
    if depth > MAX_DEPTH:
        errors.append(RuleError(path, f"nested deeper than {MAX_DEPTH} levels"))
        return
    if not isinstance(node, dict):
        errors.append(RuleError(path, "expected an object: a group or a criterion"))
        return
    kinds = [k for k in (*GROUPS, "field", "activity") if k in node]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else ", ".join(map(str, node)) or "nothing"
        errors.append(
            RuleError(path, f"expected exactly one of all, any, not, field, activity; got {found}")
        )
        return
    kind = kinds[0]
    for key in node:
        if key not in _KEYS.get(kind, {kind}):
            errors.append(RuleError(f"{path}.{key}", f"unknown key '{key}'"))
    if kind == "not":
        _check_node(node["not"], f"{path}.not", depth + 1, errors)
    elif kind in GROUPS:
        children = node[kind]
        if not isinstance(children, list):
            errors.append(RuleError(f"{path}.{kind}", "expected a list of criteria"))
        elif not children:
            errors.append(RuleError(f"{path}.{kind}", "empty group: add at least one criterion"))
        else:
            for i, child in enumerate(children):
                _check_node(child, f"{path}.{kind}[{i}]", depth + 1, errors)
    elif kind == "field":
        _check_field(node, path, errors)
    else:
        _check_activity(node, path, errors)


def _check_field(node: dict[str, Any], path: str, errors: list[RuleError]) -> None:
    name, op = node["field"], node.get("op")
    ftype = FIELDS.get(name) if isinstance(name, str) else None
    if ftype is None:
        hint = difflib.get_close_matches(str(name), FIELDS, n=1)
        also = f"; did you mean '{hint[0]}'?" if hint else ""
        errors.append(RuleError(f"{path}.field", f"unknown field '{name}'{also}"))
    if "op" not in node:
        errors.append(RuleError(f"{path}.op", "missing operator"))
        return
    if not isinstance(op, str) or op not in OPERATORS:
        errors.append(RuleError(f"{path}.op", f"unknown operator '{op}'"))
        return
    if op != "exists" and "value" not in node:
        errors.append(RuleError(f"{path}.value", f"'{op}' needs a value"))
        return
    if ftype is None:
        return
    if (op in _ORDERING and ftype != FieldType.NUMBER) or (
        op in _TEXT_ONLY and ftype != FieldType.STRING
    ):
        errors.append(RuleError(f"{path}.op", f"'{op}' does not apply to {ftype} field {name}"))
        return
    value, vpath = node.get("value"), f"{path}.value"
    if op == "exists":
        if value is not None and not isinstance(value, bool):
            errors.append(RuleError(vpath, "exists takes true, false or no value"))
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            errors.append(RuleError(vpath, f"'{op}' needs a non-empty list of {ftype} values"))
            return
        for i, item in enumerate(value):
            if not _is_of_type(ftype, item):
                errors.append(RuleError(f"{vpath}[{i}]", _type_message(ftype, name, item)))
    elif not _is_of_type(ftype, value):
        errors.append(RuleError(vpath, _type_message(ftype, name, value)))
    elif op == "matches":
        if len(value) > MAX_PATTERN_LENGTH:
            errors.append(RuleError(vpath, f"pattern longer than {MAX_PATTERN_LENGTH} chars"))
            return
        try:
            re.compile(value)
        except re.error as exc:
            errors.append(RuleError(vpath, f"invalid regular expression: {exc}"))


def _check_activity(node: dict[str, Any], path: str, errors: list[RuleError]) -> None:
    kind = node["activity"]
    if not isinstance(kind, str) or kind not in ACTIVITY_KINDS:
        known = ", ".join(sorted(ACTIVITY_KINDS))
        errors.append(RuleError(f"{path}.activity", f"unknown activity '{kind}'; known: {known}"))
    if "within_days" not in node:
        errors.append(RuleError(f"{path}.within_days", "missing window in days"))
    for key, upper in (("within_days", MAX_WINDOW_DAYS), ("at_least", None)):
        if key not in node:
            continue
        value = node[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(RuleError(f"{path}.{key}", f"{key} must be a positive whole number"))
        elif upper is not None and value > upper:
            errors.append(RuleError(f"{path}.{key}", f"{key} must be at most {upper}"))


def _is_of_type(ftype: FieldType, value: object) -> bool:
    if ftype == FieldType.STRING:
        return isinstance(value, str) and value != ""
    if ftype == FieldType.NUMBER:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    return isinstance(value, bool)


def _type_message(ftype: FieldType, name: str, value: object) -> str:
    kind = "a non-empty string" if ftype == FieldType.STRING else f"a {ftype}"
    return f"{name} takes {kind}, not {value!r}"


# --- evaluation ------------------------------------------------------------------------------


def evaluate(rules: dict[str, Any], facts: Facts, *, at: datetime) -> Outcome:
    """Judge a person on the data as it stood at ``at``, explaining every criterion."""
    _ensure_valid(rules)
    return _explain_node(rules, facts, at, "rules")


def first_met_at(rules: dict[str, Any], facts: Facts, *, now: datetime) -> datetime | None:
    """The MQL instant: the earliest moment in ``[created_at, now]`` the rules were met.

    The verdict can only change when a field changes, an activity happens, or an activity
    leaves its window, so only those instants (and creation) are checked.
    """
    _ensure_valid(rules)
    for instant in _candidates(rules, facts, now):
        if _passes(rules, facts, instant):
            return instant
    return None


def explain(outcome: Outcome) -> list[dict[str, Any]]:
    """The explanation tree flattened in reading order, for the API."""
    rows = [
        {
            "path": outcome.path,
            "criterion": outcome.criterion,
            "passed": outcome.passed,
            "actual": outcome.actual,
            "detail": outcome.detail,
        }
    ]
    for child in outcome.children:
        rows.extend(explain(child))
    return rows


def referenced_fields(rules: object) -> set[str]:
    """Fields a rule set reads: what a sync must fetch (and keep history of)."""
    return {n["field"] for n in _leaves(rules) if isinstance(n.get("field"), str)}


def referenced_activities(rules: object) -> set[str]:
    """Activity kinds a rule set counts."""
    return {n["activity"] for n in _leaves(rules) if isinstance(n.get("activity"), str)}


def _leaves(node: object) -> list[dict[str, Any]]:
    if not isinstance(node, dict):
        return []
    for kind in ("all", "any"):
        if isinstance(node.get(kind), list):
            return [leaf for child in node[kind] for leaf in _leaves(child)]
    if "not" in node:
        return _leaves(node["not"])
    return [node]


def _candidates(rules: dict[str, Any], facts: Facts, now: datetime) -> list[datetime]:
    instants = {facts.created_at}
    for name in referenced_fields(rules):
        instants.update(since for _, since in facts.field_history.get(name, []))
    windows: dict[str, set[int]] = {}
    for leaf in _leaves(rules):
        if "activity" in leaf:
            windows.setdefault(leaf["activity"], set()).add(leaf["within_days"])
    for act in facts.activities:
        for days in windows.get(act.kind, ()):
            instants.add(act.at)
            instants.add(act.at + timedelta(days=days))
    return sorted(t for t in instants if facts.created_at <= t <= now)


def _value_at(facts: Facts, name: str, at: datetime) -> Any:
    history = facts.field_history.get(name)
    if history:
        current = None
        for value, since in history:
            if since > at:
                break
            current = value
        return current
    entity, key = name.split(".", 1)
    record = facts.person if entity == "person" else facts.account
    return None if record is None else record.get(key)


def _present(ftype: FieldType, value: Any) -> bool:
    return value is not None and _is_of_type(ftype, value)


def _test_field(node: dict[str, Any], facts: Facts, at: datetime) -> tuple[bool, Any]:
    name, op, expected = node["field"], node["op"], node.get("value")
    ftype = FIELDS[name]
    actual = _value_at(facts, name, at)
    if op == "exists":
        return _present(ftype, actual) == (expected is None or expected), actual
    if not _present(ftype, actual):
        return False, actual
    if op == "matches":
        return re.search(expected, actual, re.IGNORECASE) is not None, actual
    left, right = actual, expected
    if ftype == FieldType.STRING:
        left = actual.lower()
        right = [v.lower() for v in expected] if isinstance(expected, list) else expected.lower()
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "eq": lambda a, b: a == b,
        "ne": lambda a, b: a != b,
        "in": lambda a, b: a in b,
        "not_in": lambda a, b: a not in b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "contains": lambda a, b: b in a,
    }
    return tests[op](left, right), actual


def _count_activities(node: dict[str, Any], facts: Facts, at: datetime) -> int:
    start = at - timedelta(days=node["within_days"])
    kind = node["activity"]
    return sum(1 for a in facts.activities if a.kind == kind and start < a.at <= at)


def _passes(node: dict[str, Any], facts: Facts, at: datetime) -> bool:
    if "all" in node:
        return all(_passes(c, facts, at) for c in node["all"])
    if "any" in node:
        return any(_passes(c, facts, at) for c in node["any"])
    if "not" in node:
        return not _passes(node["not"], facts, at)
    if "field" in node:
        return _test_field(node, facts, at)[0]
    return _count_activities(node, facts, at) >= node.get("at_least", 1)


def _explain_node(node: dict[str, Any], facts: Facts, at: datetime, path: str) -> Outcome:
    if "not" in node:
        inner = _explain_node(node["not"], facts, at, f"{path}.not")
        verdict = "failed, so this passes" if not inner.passed else "passed, so this fails"
        return Outcome(
            path, not inner.passed, {"group": "not"}, None, f"inner criterion {verdict}", [inner]
        )
    for kind in ("all", "any"):
        if kind in node:
            kids = [
                _explain_node(c, facts, at, f"{path}.{kind}[{i}]") for i, c in enumerate(node[kind])
            ]
            met = sum(k.passed for k in kids)
            passed = met == len(kids) if kind == "all" else met > 0
            need = "all required" if kind == "all" else "at least one required"
            return Outcome(
                path, passed, {"group": kind}, met, f"{met} of {len(kids)} passed; {need}", kids
            )
    if "field" in node:
        passed, actual = _test_field(node, facts, at)
        name, op = node["field"], node["op"]
        shown = "no value" if not _present(FIELDS[name], actual) else repr(actual)
        wanted = "no value" if node.get("value") is False else "a value"
        rule = wanted if op == "exists" else f"{op} {node['value']!r}"
        return Outcome(path, passed, node, actual, f"{name} is {shown}; required {rule}")
    count = _count_activities(node, facts, at)
    need, days = node.get("at_least", 1), node["within_days"]
    detail = f"{count} {node['activity']} in the {days} days up to {at.isoformat()}; need {need}"
    return Outcome(path, count >= need, node, count, detail)


# --- SQL -------------------------------------------------------------------------------------


def to_sqlalchemy(
    rules: dict[str, Any],
    columns: Mapping[str, ColumnElement[Any]],
    activity_count: Callable[[str, int], ColumnElement[Any]],
) -> ColumnElement[bool] | None:
    """The rules as a SQL condition on current values, for judging many persons at once.

    ``columns`` maps each field to a column expression; ``activity_count(kind, days)`` must
    count that kind in the trailing window ending now. Returns ``None`` for rules using
    ``matches``: those are judged in Python. Case folding is the database's ``lower()``, which
    on SQLite folds ASCII letters only.
    """
    _ensure_valid(rules)
    if any(leaf.get("op") == "matches" for leaf in _leaves(rules)):
        return None
    return _sql(rules, columns, activity_count)


def _sql(
    node: dict[str, Any],
    columns: Mapping[str, ColumnElement[Any]],
    activity_count: Callable[[str, int], ColumnElement[Any]],
) -> ColumnElement[bool]:
    if "all" in node:
        return and_(*(_sql(c, columns, activity_count) for c in node["all"]))
    if "any" in node:
        return or_(*(_sql(c, columns, activity_count) for c in node["any"]))
    if "not" in node:
        return not_(_sql(node["not"], columns, activity_count))
    if "activity" in node:
        count = activity_count(node["activity"], node["within_days"])
        return count >= node.get("at_least", 1)
    name, op, value = node["field"], node["op"], node.get("value")
    if name not in columns:
        raise ValueError(f"no column given for field {name}")
    col, ftype = columns[name], FIELDS[name]
    present = col.is_not(None)
    if ftype == FieldType.STRING:
        present = and_(present, col != "")
    if op == "exists":
        return present if value is None or value else not_(present)
    left: ColumnElement[Any] = col
    if ftype == FieldType.STRING:
        left = func.lower(col)
        value = [v.lower() for v in value] if isinstance(value, list) else value.lower()
    comparisons: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: left == value,
        "ne": lambda: left != value,
        "in": lambda: left.in_(value),
        "not_in": lambda: left.not_in(value),
        "gt": lambda: left > value,
        "gte": lambda: left >= value,
        "lt": lambda: left < value,
        "lte": lambda: left <= value,
        "contains": lambda: left.contains(value, autoescape=True),
    }
    return and_(present, comparisons[op]())
