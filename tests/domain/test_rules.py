"""The lead-definition rule language as authors and both teams experience it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    select,
)

from service.definitions.rules import (
    FIELDS,
    Activity,
    Facts,
    FieldType,
    RuleError,
    evaluate,
    explain,
    first_met_at,
    referenced_activities,
    referenced_fields,
    to_sqlalchemy,
    validate,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def facts(
    person: dict[str, Any] | None = None,
    account: dict[str, Any] | None = None,
    activities: list[Activity] | None = None,
    history: dict[str, list[tuple[Any, datetime]]] | None = None,
) -> Facts:
    return Facts(
        person=person or {},
        account=account,
        activities=activities or [],
        created_at=CREATED,
        field_history=history or {},
    )


def passes(rule: dict[str, Any], f: Facts, at: datetime = NOW) -> bool:
    return evaluate(rule, f, at=at).passed


def crit(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op} | ({} if value is None else {"value": value})


PERSON = {
    "email": "ann@acme.io",
    "email_domain": "acme.io",
    "title": "VP Marketing",
    "country": "US",
    "lead_source": "Demo Request",
    "score": 60,
}
ACCOUNT = {"name": "Acme", "industry": "Software", "employees": 120, "is_customer": False}


# --- operators and groups ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (crit("person.country", "eq", "US"), True),
        (crit("person.country", "eq", "CA"), False),
        (crit("person.country", "ne", "CA"), True),
        (crit("person.country", "in", ["CA", "US"]), True),
        (crit("person.country", "not_in", ["CA", "US"]), False),
        (crit("person.score", "gt", 60), False),
        (crit("person.score", "gte", 60), True),
        (crit("person.score", "lt", 60.5), True),
        (crit("person.score", "lte", 59), False),
        (crit("person.title", "contains", "market"), True),
        (crit("person.title", "matches", r"^(vp|chief)\b"), True),
        (crit("person.title", "matches", r"^director"), False),
        (crit("account.employees", "gte", 50), True),
        (crit("account.is_customer", "eq", False), True),
        (crit("account.is_customer", "in", [True]), False),
        (crit("person.score", "exists"), True),
        (crit("person.score", "exists", False), False),
    ],
)
def test_each_operator(rule: dict[str, Any], expected: bool) -> None:
    assert passes(rule, facts(PERSON, ACCOUNT)) is expected


def test_groups_combine_criteria() -> None:
    f = facts(PERSON, ACCOUNT)
    yes, no = crit("person.country", "eq", "US"), crit("person.country", "eq", "FR")
    assert passes({"all": [yes, yes]}, f)
    assert not passes({"all": [yes, no]}, f)
    assert passes({"any": [no, yes]}, f)
    assert not passes({"any": [no, no]}, f)
    assert passes({"not": no}, f)
    assert not passes({"not": {"any": [no, yes]}}, f)


def test_string_comparisons_ignore_case() -> None:
    f = facts({"country": "us", "email_domain": "Gmail.COM", "title": "Head of GROWTH"})
    assert passes(crit("person.country", "in", ["US", "CA"]), f)
    assert passes(crit("person.email_domain", "eq", "gmail.com"), f)
    assert not passes(crit("person.email_domain", "not_in", ["GMAIL.com"]), f)
    assert passes(crit("person.title", "contains", "growth"), f)
    assert passes(crit("person.title", "matches", "head of"), f)


def test_a_missing_value_fails_every_comparison_but_exists_false() -> None:
    f = facts({"country": "", "score": None}, account=None)
    for field in ("person.country", "person.email", "account.industry"):
        assert not passes(crit(field, "eq", "US"), f)
        assert not passes(crit(field, "ne", "US"), f)
        assert not passes(crit(field, "not_in", ["US"]), f)
        assert not passes(crit(field, "exists"), f)
        assert passes(crit(field, "exists", False), f)
        assert passes({"not": crit(field, "in", ["US"])}, f)
    assert not passes(crit("person.score", "lt", 100), f)
    assert not passes(crit("account.is_customer", "ne", True), f)


def test_a_value_of_the_wrong_type_counts_as_missing() -> None:
    f = facts({"score": "70"})
    assert not passes(crit("person.score", "gte", 60), f)
    assert passes(crit("person.score", "exists", False), f)


def test_activity_window_counts_only_recent_activities_of_the_kind() -> None:
    rule = {"activity": "form_submission", "within_days": 30, "at_least": 2}
    acts = [
        Activity("form_submission", NOW - timedelta(days=30)),  # just outside (at - 30d, at]
        Activity("form_submission", NOW - timedelta(days=29)),
        Activity("web_visit", NOW - timedelta(days=1)),
        Activity("form_submission", NOW + timedelta(days=1)),  # after the moment judged
    ]
    assert not passes(rule, facts(activities=acts))
    acts.append(Activity("form_submission", NOW))
    assert passes(rule, facts(activities=acts))
    assert passes({"activity": "web_visit", "within_days": 2}, facts(activities=acts))


def test_field_history_judges_the_value_as_it_stood() -> None:
    history = {"person.score": [(10, CREATED), (75, datetime(2026, 2, 1, tzinfo=UTC))]}
    f = facts({"score": 75}, history=history)
    rule = crit("person.score", "gte", 60)
    assert not passes(rule, f, at=datetime(2026, 1, 31, tzinfo=UTC))
    assert passes(rule, f, at=datetime(2026, 2, 1, tzinfo=UTC))
    assert not passes(crit("person.score", "exists"), f, at=CREATED - timedelta(days=1))


def test_explain_lists_every_criterion_with_its_verdict() -> None:
    rule = {
        "all": [
            crit("person.country", "in", ["US"]),
            {"not": crit("person.email_domain", "eq", "gmail.com")},
            crit("account.employees", "gte", 500),
        ]
    }
    rows = explain(evaluate(rule, facts(PERSON, ACCOUNT), at=NOW))
    assert [r["path"] for r in rows] == [
        "rules",
        "rules.all[0]",
        "rules.all[1]",
        "rules.all[1].not",
        "rules.all[2]",
    ]
    assert [r["passed"] for r in rows] == [False, True, True, False, False]
    assert rows[4]["actual"] == 120 and "120" in rows[4]["detail"]
    assert rows[0]["detail"] == "2 of 3 passed; all required"
    assert set(rows[1]) == {"path", "criterion", "passed", "actual", "detail"}


def test_referenced_fields_and_activities() -> None:
    rule = {
        "all": [
            crit("person.score", "gte", 1),
            {
                "not": {
                    "any": [
                        crit("account.country", "eq", "US"),
                        {"activity": "meeting", "within_days": 7},
                    ]
                }
            },
        ]
    }
    assert referenced_fields(rule) == {"person.score", "account.country"}
    assert referenced_activities(rule) == {"meeting"}


# --- validation -------------------------------------------------------------------------------


def paths(rules: object) -> list[str]:
    return [e.path for e in validate(rules)]


def test_a_valid_rule_set_has_no_errors() -> None:
    rule = {
        "all": [
            crit("person.country", "in", ["US", "CA", "GB"]),
            crit("account.employees", "gte", 50),
            {"not": crit("person.email_domain", "in", ["gmail.com", "yahoo.com"])},
            {
                "any": [
                    crit("person.score", "gte", 60),
                    {"activity": "form_submission", "within_days": 30, "at_least": 1},
                ]
            },
        ]
    }
    assert validate(rule) == []


def test_a_nested_mistake_is_located_by_its_path() -> None:
    rule = {
        "all": [
            crit("person.score", "gte", 1),
            crit("person.score", "gte", 1),
            {"any": [crit("person.country", "equals", "US")]},
        ]
    }
    [error] = validate(rule)
    assert isinstance(error, RuleError)
    assert error.path == "rules.all[2].any[0].op"
    assert "equals" in error.message and str(error).startswith("rules.all[2].any[0].op: ")


def test_every_problem_is_reported_not_just_the_first() -> None:
    rule = {
        "any": [
            crit("person.titel", "eq", "CEO"),
            crit("person.title", "matches", "(unclosed"),
            crit("person.score", "gte", "60"),
            crit("person.country", "in", "US"),
            crit("person.country", "in", ["US", 1]),
            crit("person.country", "gt", 3),
            crit("account.is_customer", "exists", "yes"),
            {"activity": "webinar", "within_days": 0, "at_least": True},
            {"all": []},
            "person.score > 60",
            {"not": crit("person.score", "eq", 1), "note": "x"},
            {"field": "person.score", "value": 1},
            crit("person.email", "eq"),
        ]
    }
    errors = validate(rule)
    assert [e.path for e in errors] == [
        "rules.any[0].field",
        "rules.any[1].value",
        "rules.any[2].value",
        "rules.any[3].value",
        "rules.any[4].value[1]",
        "rules.any[5].op",
        "rules.any[6].value",
        "rules.any[7].activity",
        "rules.any[7].within_days",
        "rules.any[7].at_least",
        "rules.any[8].all",
        "rules.any[9]",
        "rules.any[10].note",
        "rules.any[11].op",
        "rules.any[12].value",
    ]
    by_path = {e.path: e.message for e in errors}
    assert "did you mean 'person.title'" in by_path["rules.any[0].field"]
    assert "invalid regular expression" in by_path["rules.any[1].value"]


def test_shapes_that_are_not_rules_are_refused() -> None:
    assert paths([]) == ["rules"]
    assert paths({}) == ["rules"]
    assert paths({"all": [crit("person.score", "gte", 1)], "any": []}) == ["rules"]
    assert paths({"all": {"field": "person.score"}}) == ["rules.all"]
    assert paths(crit("person.score", "gte", float("nan"))) == ["rules.value"]
    assert paths(crit("account.employees", "eq", True)) == ["rules.value"]
    assert paths({"activity": "call"}) == ["rules.within_days"]
    assert paths({"activity": "call", "within_days": 10**9}) == ["rules.within_days"]


def test_nesting_deeper_than_twenty_levels_is_refused() -> None:
    def nest(levels: int) -> dict[str, Any]:
        node: dict[str, Any] = crit("person.score", "gte", 1)
        for _ in range(levels - 1):
            node = {"not": node}
        return node

    assert validate(nest(20)) == []
    [error] = validate(nest(21))
    assert error.path == "rules" + ".not" * 20 and "deeper" in error.message


def test_evaluating_an_invalid_rule_raises_the_first_problem() -> None:
    with pytest.raises(RuleError, match=r"rules.op: unknown operator"):
        evaluate(crit("person.score", "about"), facts(), at=NOW)


# --- the MQL instant --------------------------------------------------------------------------


def test_score_crossing_the_threshold_later_gives_that_date() -> None:
    crossed = datetime(2026, 2, 10, 9, tzinfo=UTC)
    history = {
        "person.score": [(20, CREATED), (55, datetime(2026, 1, 20, tzinfo=UTC)), (64, crossed)]
    }
    rule = {"all": [crit("person.country", "eq", "US"), crit("person.score", "gte", 60)]}
    assert (
        first_met_at(rule, facts({"country": "US", "score": 64}, history=history), now=NOW)
        == crossed
    )


def test_rules_met_at_creation_give_the_creation_instant() -> None:
    assert first_met_at(crit("person.country", "eq", "US"), facts(PERSON), now=NOW) == CREATED


def test_the_activity_that_completes_the_count_gives_its_timestamp() -> None:
    first, second = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 20, 15, tzinfo=UTC)
    acts = [
        Activity("form_submission", first),
        Activity("web_visit", datetime(2026, 1, 10, tzinfo=UTC)),
        Activity("form_submission", second),
    ]
    rule = {"activity": "form_submission", "within_days": 30, "at_least": 2}
    assert first_met_at(rule, facts(activities=acts), now=NOW) == second


def test_activities_too_far_apart_never_complete_the_count() -> None:
    acts = [
        Activity("call", datetime(2026, 1, 2, tzinfo=UTC)),
        Activity("call", datetime(2026, 2, 2, tzinfo=UTC)),
    ]
    rule = {"activity": "call", "within_days": 30, "at_least": 2}
    assert first_met_at(rule, facts(activities=acts), now=NOW) is None


def test_a_rule_never_met_gives_none() -> None:
    assert first_met_at(crit("person.country", "eq", "FR"), facts(PERSON), now=NOW) is None
    assert (
        first_met_at(
            crit("person.country", "eq", "US"), facts(PERSON), now=CREATED - timedelta(days=1)
        )
        is None
    )


def test_an_activity_leaving_its_window_can_meet_a_negated_criterion() -> None:
    visit = datetime(2025, 12, 20, tzinfo=UTC)
    rule = {"not": {"activity": "web_visit", "within_days": 14}}
    f = facts(activities=[Activity("web_visit", visit)])
    assert first_met_at(rule, f, now=NOW) == visit + timedelta(days=14)


@settings(max_examples=100, deadline=None)
@given(
    scores=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 60)), max_size=4),
    offsets=st.lists(
        st.tuples(st.sampled_from(["call", "meeting"]), st.integers(-20, 60)), max_size=5
    ),
    threshold=st.integers(0, 100),
    days=st.integers(1, 20),
    negate=st.booleans(),
)
def test_the_mql_instant_is_the_earliest_moment_the_rules_pass(
    scores: list[tuple[int, int]],
    offsets: list[tuple[str, int]],
    threshold: int,
    days: int,
    negate: bool,
) -> None:
    history = sorted(((s, CREATED + timedelta(days=d)) for s, d in scores), key=lambda h: h[1])
    acts = [Activity(kind, CREATED + timedelta(days=d)) for kind, d in offsets]
    activity: dict[str, Any] = {"activity": "call", "within_days": days}
    rule = {
        "any": [crit("person.score", "gte", threshold), {"not": activity} if negate else activity]
    }
    f = facts({"score": None}, activities=acts, history={"person.score": history})
    now = CREATED + timedelta(days=70)
    found = first_met_at(rule, f, now=now)
    hours = [CREATED + timedelta(hours=h) for h in range(0, 70 * 24 + 1, 12)]
    earliest_sampled = next((t for t in hours if passes(rule, f, at=t)), None)
    if found is None:
        assert earliest_sampled is None
    else:
        assert passes(rule, f, at=found)
        assert all(not passes(rule, f, at=t) for t in hours if t < found)


# --- SQL agrees with Python -------------------------------------------------------------------

_TEXT = st.text(alphabet="aAb%_/", min_size=1, max_size=3)
_NUMBERS = st.sampled_from([-1, 0, 1, 2.5, 50, 60, 1_000_000])
_VALUES = {FieldType.STRING: _TEXT, FieldType.NUMBER: _NUMBERS, FieldType.BOOL: st.booleans()}
_OPS = {
    FieldType.STRING: ["eq", "ne", "in", "not_in", "contains", "exists"],
    FieldType.NUMBER: ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"],
    FieldType.BOOL: ["eq", "ne", "in", "not_in", "exists"],
}
_KINDS = ["call", "meeting"]


@st.composite
def field_criteria(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(FIELDS)))
    ftype = FIELDS[name]
    op = draw(st.sampled_from(_OPS[ftype]))
    if op == "exists":
        return crit(name, op) | draw(st.sampled_from([{}, {"value": True}, {"value": False}]))
    if op in ("in", "not_in"):
        return crit(name, op, draw(st.lists(_VALUES[ftype], min_size=1, max_size=3)))
    return crit(name, op, draw(_VALUES[ftype]))


_ACTIVITY = st.builds(
    lambda kind, days, least: {"activity": kind, "within_days": days, "at_least": least},
    st.sampled_from(_KINDS),
    st.integers(1, 5),
    st.integers(1, 2),
)
_RULES = st.recursive(
    st.one_of(field_criteria(), field_criteria(), _ACTIVITY),
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        kids.map(lambda x: {"not": x}),
    ),
    max_leaves=8,
)


def _column(name: str) -> str:
    return name.replace(".", "_")


@st.composite
def people(draw: st.DrawFn) -> Facts:
    values = {
        name: draw(
            st.one_of(st.none(), st.just(""), _VALUES[ftype])
            if ftype == FieldType.STRING
            else st.one_of(st.none(), _VALUES[ftype])
        )
        for name, ftype in FIELDS.items()
    }
    person = {n.split(".")[1]: v for n, v in values.items() if n.startswith("person.")}
    account = {n.split(".")[1]: v for n, v in values.items() if n.startswith("account.")}
    acts = draw(
        st.lists(
            st.builds(
                Activity,
                st.sampled_from([*_KINDS, "email"]),
                st.sampled_from([-1, 0, 1, 1.5, 2, 3, 5, 6]).map(lambda d: NOW - timedelta(days=d)),
            ),
            max_size=5,
        )
    )
    return facts(person, account if draw(st.booleans()) else None, acts)


_METADATA = MetaData()
_PERSONS = Table(
    "persons",
    _METADATA,
    Column("id", Integer, primary_key=True),
    *(
        Column(
            _column(name),
            String if t == FieldType.STRING else Float if t == FieldType.NUMBER else Boolean,
        )
        for name, t in FIELDS.items()
    ),
)
_ACTIVITIES = Table(
    "activities",
    _METADATA,
    Column("person_id", Integer),
    Column("kind", String),
    Column("at", DateTime),
)
_ENGINES: list[Any] = []


def _engine() -> Any:
    if not _ENGINES:
        engine = create_engine("sqlite://")
        _METADATA.create_all(engine)
        _ENGINES.append(engine)
    return _ENGINES[0]


def _activity_count(kind: str, days: int) -> Any:
    now = NOW.replace(tzinfo=None)
    a = _ACTIVITIES.c
    return (
        select(func.count())
        .where(
            a.person_id == _PERSONS.c.id,
            a.kind == kind,
            a.at > now - timedelta(days=days),
            a.at <= now,
        )
        .scalar_subquery()
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=_RULES, persons=st.lists(people(), min_size=1, max_size=6))
def test_sql_selects_exactly_the_persons_python_passes(
    rules: dict[str, Any], persons: list[Facts]
) -> None:
    assert validate(rules) == []
    condition = to_sqlalchemy(
        rules, {name: _PERSONS.c[_column(name)] for name in FIELDS}, _activity_count
    )
    assert condition is not None
    with _engine().begin() as conn:
        conn.execute(_PERSONS.delete())
        conn.execute(_ACTIVITIES.delete())
        for pid, f in enumerate(persons, start=1):
            row: dict[str, Any] = {"id": pid}
            for name in FIELDS:
                entity, key = name.split(".")
                record = f.person if entity == "person" else f.account
                row[_column(name)] = None if record is None else record.get(key)
            conn.execute(_PERSONS.insert().values(row))
            for act in f.activities:
                conn.execute(
                    _ACTIVITIES.insert().values(
                        person_id=pid, kind=act.kind, at=act.at.replace(tzinfo=None)
                    )
                )
        selected = set(conn.execute(select(_PERSONS.c.id).where(condition)).scalars())
    expected = {pid for pid, f in enumerate(persons, start=1) if passes(rules, f, at=NOW)}
    assert selected == expected


def test_rules_with_patterns_are_left_to_python() -> None:
    rule = {"all": [crit("person.score", "gte", 1), crit("person.title", "matches", "^vp")]}
    columns = {name: _PERSONS.c[_column(name)] for name in FIELDS}
    assert to_sqlalchemy(rule, columns, _activity_count) is None


def test_sql_contains_treats_wildcards_literally() -> None:
    titles = {1: "a_c", 2: "abc", 3: "Growth 100%", 4: "1000 seats"}
    columns = {name: _PERSONS.c[_column(name)] for name in FIELDS}
    with _engine().begin() as conn:
        conn.execute(_PERSONS.delete())
        for pid, title in titles.items():
            conn.execute(_PERSONS.insert().values(id=pid, person_title=title))

        def chosen(fragment: str) -> set[int]:
            condition = to_sqlalchemy(
                crit("person.title", "contains", fragment), columns, _activity_count
            )
            return set(conn.execute(select(_PERSONS.c.id).where(condition)).scalars())

        assert chosen("_") == {1}
        assert chosen("0%") == {3}
        assert chosen("GROWTH") == {3}
