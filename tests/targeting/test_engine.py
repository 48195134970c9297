"""Segment membership for one member: operators, missing fields, types, precedence, explanations."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from webapp.targeting import (
    OPERATORS_BY_TYPE,
    SegmentDefinitionError,
    SegmentResult,
    age_on,
    compile_definition,
    compile_segment,
    evaluate_segment,
    field_type,
    matches,
    parse_criterion,
)
from webapp.targeting import env as clock_env
from webapp.targeting.compiler import _explain_each
from webapp.targeting.env import make_env
from webapp.targeting.result import explain_membership

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
MEMBER: dict[str, Any] = {
    "external_id": "u1", "email": "Ann@Example.com", "birthday": "2000-06-20", "tier": "gold",
    "points": 880, "xp": 10, "coins": 0, "badges": ["early", "VIP"],
    "custom_fields": {"plan": "Pro", "n": 12, "f": 12.5, "s": "8", "flag": True, "one": 1,
                      "tags": ["a", "B", 3], "obj": {"k": [1, 2], "deep": {"x": "y"}},
                      "nul": None, "list_of_obj": [{"k": 1}]},
    "created_at": "2025-05-16T12:00:00Z", "updated_at": "2025-06-14T00:00:00+00:00",
}


def holds(field: str, op: str, value: Any = None, member: dict[str, Any] | None = None,
          **extra: Any) -> bool:
    crit: dict[str, Any] = {"field": field, "operator": op, **extra}
    if value is not None:
        crit["value"] = value
    seg = {"kind": "dynamic", "include": [crit], "exclude": []}
    result = evaluate_segment(seg, MEMBER if member is None else member, now=NOW)
    assert result.matched == matches(seg, MEMBER if member is None else member, now=NOW)
    return result.matched


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("tier", "equals", "gold", True), ("tier", "equals", "Gold", False),
    ("tier", "not_equals", "Gold", True), ("tier", "in", ["silver", "gold"], True),
    ("tier", "in", [], False), ("tier", "not_in", [], True), ("tier", "not_in", ["gold"], False),
    ("tier", "contains", "ol", True), ("tier", "contains", "OL", False),
    ("tier", "not_contains", "x", True), ("tier", "exists", None, True),
    ("tier", "not_exists", None, False),
    ("email", "equals", "ann@example.com", True), ("email", "equals", "ANN@EXAMPLE.COM", True),
    ("email", "in", ["x@y.z", "ANN@example.com"], True), ("email", "contains", "EXAMPLE", True),
    ("external_id", "equals", "u1", True), ("external_id", "equals", "U1", False),
    ("points", ">=", 880, True), ("points", ">", 880, False), ("points", "<", 880.5, True),
    ("points", "<=", 879.9, False), ("points", "equals", 880.0, True),
    ("points", "in", [1, 880], True), ("points", "not_in", [880], False),
    ("xp", "equals", 10, True), ("coins", "equals", 0, True), ("coins", "exists", None, True),
    ("badges", "contains", "VIP", True), ("badges", "contains", "vip", False),
    ("badges", "not_contains", "vip", True), ("badges", "in", ["x", "early"], True),
    ("badges", "in", ["x"], False), ("badges", "not_in", ["x", "y"], True),
    ("badges", "not_in", ["VIP"], False), ("badges", "equals", ["early", "VIP"], True),
    ("badges", "equals", ["VIP", "early"], False), ("badges", "not_equals", ["early"], True),
    ("custom_fields.plan", "equals", "Pro", True), ("custom_fields.plan", "equals", "pro", False),
    ("custom_fields.n", "equals", 12.0, True), ("custom_fields.n", "equals", "12", False),
    ("custom_fields.s", ">", 5, False), ("custom_fields.s", "<", 5, False),
    ("custom_fields.s", "equals", "8", True), ("custom_fields.s", "equals", 8, False),
    ("custom_fields.flag", "equals", True, True), ("custom_fields.one", "equals", True, False),
    ("custom_fields.flag", "equals", 1, False), ("custom_fields.flag", ">", 0, False),
    ("custom_fields.f", ">", 12, True), ("custom_fields.f", "<=", 12.5, True),
    ("custom_fields.tags", "contains", "a", True), ("custom_fields.tags", "contains", 3, True),
    ("custom_fields.tags", "contains", "3", False), ("custom_fields.tags", "in", ["z", 3], True),
    ("custom_fields.tags", "not_in", ["z", "b"], True),
    ("custom_fields.tags", "equals", ["a", "B", 3], True),
    ("custom_fields.tags", "equals", ["a", "B", 3.0], True),
    ("custom_fields.tags", "equals", ["a", "B"], False),
    ("custom_fields.tags", "equals", "a", False), ("custom_fields.tags", ">", 1, False),
    ("custom_fields.obj", "equals", {"k": [1, 2], "deep": {"x": "y"}}, True),
    ("custom_fields.obj", "equals", {"k": [1, 2]}, False),
    ("custom_fields.obj.k", "contains", 2, True), ("custom_fields.obj.deep.x", "equals", "y", True),
    ("custom_fields.obj", "in", ["y"], False), ("custom_fields.plan", "contains", "r", True),
    ("custom_fields.n", "contains", 1, False), ("custom_fields.plan", "in", ["Pro", 1], True),
    ("custom_fields.nul", "exists", None, False), ("custom_fields.nul", "not_exists", None, True),
    ("custom_fields.nul", "not_equals", 1, True),
    ("custom_fields.list_of_obj.k", "exists", None, False),
    ("custom_fields.tags.0", "exists", None, False),
    ("custom_fields.plan.x", "not_exists", None, True),
    ("customFields.plan", "equals", "Pro", True),
])
def test_operators(field: str, op: str, value: Any, expected: bool) -> None:
    """Each operator by field type, with JSON-type rules and no coercion."""
    assert holds(field, op, value) is expected


@pytest.mark.parametrize(("field", "value"), [
    ("tier", "gold"), ("email", "a"), ("points", 1), ("badges", "a"), ("custom_fields.x", 1),
    ("birthday", "2000-01-01"), ("created_at", "2020-01-01"), ("age", 1),
])
def test_missing_field_rules(field: str, value: Any) -> None:
    """Missing (or null) field: positive operators false; negative ones true."""
    for member in ({}, {field.split(".")[0]: None}, {"custom_fields": None}):
        for op, expected in (("equals", False), ("not_equals", True), ("exists", False),
                             ("not_exists", True)):
            v = None if op.endswith("exists") else value
            if field == "badges" and op.endswith("equals"):
                v = [value]
            assert holds(field, op, v, member) is expected, (member, op)
        if field not in ("birthday", "created_at"):
            assert holds(field, "in", [value], member) is False
            assert holds(field, "not_in", [value], member) is True
        if field not in ("points", "birthday", "created_at", "age"):
            assert holds(field, "contains", value if isinstance(value, str) else "a",
                         member) is False
            assert holds(field, "not_contains", "a", member) is True
        if field in ("points", "custom_fields.x", "age", "birthday", "created_at"):
            assert holds(field, ">=", value, member) is False
            assert holds(field, "<", value, member) is False


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("tier", "equals", "GOLD", True), ("tier", "in", ["GoLd"], True),
    ("tier", "contains", "OL", True), ("badges", "contains", "vip", True),
    ("badges", "in", ["EARLY"], True), ("badges", "equals", ["EARLY", "vip"], True),
    ("custom_fields.plan", "equals", "pro", True), ("custom_fields.tags", "contains", "b", True),
    ("custom_fields.obj", "equals", {"k": [1, 2], "deep": {"x": "Y"}}, True),
    ("custom_fields.tags", "not_in", ["A"], False),
])
def test_case_insensitive(field: str, op: str, value: Any, expected: bool) -> None:
    """case_insensitive applies to every string compared, list elements included."""
    assert holds(field, op, value, case_insensitive=True) is expected


def test_case_folding_is_ascii() -> None:
    """Case folding is ASCII-only, as in SQLite; email is lower-cased in full."""
    m = {"tier": "éclair", "email": "ÉVE@X.COM"}
    assert holds("tier", "equals", "ÉCLAIR", m, case_insensitive=True) is False
    assert holds("tier", "equals", "éCLAIR", m, case_insensitive=True) is True
    assert holds("email", "equals", "éve@x.com", m) is True


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("created_at", ">=", {"days_ago": 30}, True), ("created_at", ">", {"days_ago": 30}, False),
    ("created_at", "equals", {"days_ago": 30}, True), ("created_at", "<", "2025-05-17", True),
    ("created_at", ">=", "2025-05-16T14:00:00+02:00", True),
    ("created_at", ">", "2025-05-16T14:00:00+02:00", False),
    ("created_at", ">=", "2025-05-16", True), ("updated_at", ">=", {"days_ago": 1}, False),
    ("updated_at", "<=", "2025-06-14", True), ("updated_at", "<", "2025-06-14", False),
    ("birthday", "equals", "2000-06-20", True), ("birthday", "<", "2000-06-20", False),
    ("birthday", "<=", {"days_ago": 9125}, True), ("birthday", "exists", None, True),
])
def test_dates(field: str, op: str, value: Any, expected: bool) -> None:
    """Dates: ISO dates/datetimes, a date = start of day, relative days_ago from now."""
    assert holds(field, op, value) is expected


def test_date_only_is_start_of_day_in_zone() -> None:
    """A date without a time is the start of that day in the program's time zone."""
    seg = {"include": [{"field": "created_at", "operator": ">=", "value": "2025-05-16"}]}
    m = {"created_at": "2025-05-15T23:30:00Z"}
    assert evaluate_segment(seg, m, now=NOW).matched is False
    assert evaluate_segment(seg, m, now=NOW, tz="Europe/Paris").matched is True
    assert evaluate_segment(seg, {"created_at": datetime(2025, 5, 16)}, now=NOW).matched


@pytest.mark.parametrize(("birthday", "today", "age"), [
    (date(2000, 2, 29), date(2023, 2, 28), 22),   # common year: not yet on 28 Feb
    (date(2000, 2, 29), date(2023, 3, 1), 23),    # ... older on 1 March
    (date(2000, 2, 29), date(2024, 2, 28), 23),   # leap year: not yet on 28 Feb
    (date(2000, 2, 29), date(2024, 2, 29), 24),   # ... older on 29 Feb
    (date(2000, 2, 29), date(2024, 3, 1), 24),
    (date(2007, 6, 15), date(2025, 6, 15), 18),   # birthday today
    (date(2007, 6, 16), date(2025, 6, 15), 17),   # birthday tomorrow
    (date(2030, 1, 1), date(2025, 6, 15), -5),    # a future birthday
    (date(2025, 6, 15), date(2025, 6, 15), 0),
])
def test_age(birthday: date, today: date, age: int) -> None:
    """Whole years; a 29 February birthday turns older on 1 March in common years."""
    assert age_on(birthday, today) == age
    now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    seg = {"include": [{"field": "age", "operator": "equals", "value": age}]}
    assert evaluate_segment(seg, {"birthday": birthday.isoformat()}, now=now).matched


def test_age_edges_through_criteria() -> None:
    """No birthday fails positive age criteria; "today" is in the given zone."""
    adult = {"include": [{"field": "age", "operator": ">=", "value": 18}]}
    assert not evaluate_segment(adult, {}, now=NOW).matched
    assert evaluate_segment({"include": [{"field": "age", "operator": "not_exists"}]}, {},
                            now=NOW).matched
    m = {"birthday": "2007-06-16"}
    late = datetime(2025, 6, 15, 23, 0, tzinfo=UTC)
    assert not evaluate_segment(adult, m, now=late).matched
    assert evaluate_segment(adult, m, now=late, tz="Pacific/Kiritimati").matched
    future = evaluate_segment(adult, {"birthday": "2030-01-01"}, now=NOW)
    assert not future.matched
    assert evaluate_segment({"include": [{"field": "age", "operator": "<", "value": 0}]},
                            {"birthday": "2030-01-01"}, now=NOW).matched


def test_precedence() -> None:
    """block -> out; add -> in; static -> list; dynamic -> rules."""
    gold = {"kind": "dynamic", "include": [{"field": "tier", "operator": "equals",
                                            "value": "gold"}]}
    static = {"kind": "static", "include": [], "exclude": []}
    assert evaluate_segment(gold, MEMBER).matched
    assert not evaluate_segment(gold, MEMBER, override="block").matched
    assert evaluate_segment(gold, {"tier": "bronze"}, override="add").matched
    assert not evaluate_segment(static, MEMBER).matched
    assert evaluate_segment(static, MEMBER, on_list=True).matched
    assert not evaluate_segment(static, MEMBER, on_list=True, override="block").matched
    assert evaluate_segment(static, MEMBER, override="add").matched
    assert evaluate_segment({"kind": "dynamic"}, {}).matched  # no includes: everyone
    assert not evaluate_segment({"kind": "dynamic", "exclude": [
        {"field": "tier", "operator": "exists"}]}, MEMBER).matched
    with pytest.raises(SegmentDefinitionError, match="static segment has no criteria"):
        evaluate_segment({"kind": "static", "include": gold["include"]}, MEMBER)
    with pytest.raises(ValueError, match="override"):
        evaluate_segment(gold, MEMBER, override="remove")


def test_segment_criteria_use_memberships() -> None:
    """`segment` in/not_in read the member's other memberships."""
    seg = {"include": [{"field": "segment", "operator": "in", "value": [3, 4]}],
           "exclude": [{"field": "segment", "operator": "in", "value": [9]}]}
    assert evaluate_segment(seg, {}, memberships={4}).matched
    assert not evaluate_segment(seg, {}, memberships={4, 9}).matched
    assert not evaluate_segment(seg, {}, memberships=set()).matched
    assert evaluate_segment({"include": [{"field": "segment", "operator": "not_in",
                                          "value": [1]}]}, {}, memberships=[2]).matched
    with pytest.raises(SegmentDefinitionError, match="need the member's memberships"):
        evaluate_segment(seg, {})


def test_explanation_tree() -> None:
    """Every node has the same keys; labels, actual/expected values and gaps are filled in."""
    seg = {"kind": "dynamic",
           "include": [{"field": "tier", "operator": "in", "value": ["gold", "platinum"]},
                       {"field": "points", "operator": ">=", "value": 1000},
                       {"field": "age", "operator": ">=", "value": 30},
                       {"field": "createdAt", "operator": "<=", "value": "2025-05-04"}],
           "exclude": [{"field": "badges", "operator": "contains", "value": "VIP"},
                       {"field": "xp", "operator": "<", "value": 5}]}
    result = evaluate_segment(seg, MEMBER, now=NOW)
    tree = result.explanation
    json.dumps(tree)
    assert not result.matched

    def walk(n: dict[str, Any]) -> list[dict[str, Any]]:
        assert set(n) == {"kind", "label", "passed", "actual", "expected", "gap", "children"}
        return [n] + [x for c in n["children"] for x in walk(c)]

    nodes = walk(tree)
    crits = {n["label"]: n for n in nodes if n["kind"] == "criterion"}
    assert crits["tier is gold or platinum"]["passed"] is True
    pts = crits["points at least 1,000"]
    assert (pts["passed"], pts["actual"], pts["expected"], pts["gap"]) == (
        False, 880, 1000, "needs 120 more points")
    assert crits["age at least 30"]["gap"] == "turns 30 in 1,831 days"
    assert crits["joined on or before 2025-05-04"]["gap"] == "joined 13 days too late"
    vip = crits["excluded when has badge VIP"]
    assert vip["passed"] is False and vip["actual"] == ["early", "VIP"]
    assert crits["excluded when xp less than 5"]["passed"] is True
    assert [n["kind"] for n in tree["children"]] == ["include", "exclude"]
    assert tree["label"].startswith("tier is gold or platinum, and points at least 1,000")


@pytest.mark.parametrize(("crit", "member", "gap"), [
    ({"field": "points", "operator": ">", "value": 1000}, {"points": 880},
     "needs 121 more points"),
    ({"field": "points", "operator": "<=", "value": 100}, {"points": 880},
     "has 780 points too many"),
    ({"field": "coins", "operator": "equals", "value": 5}, {"coins": 0}, "needs 5 more coins"),
    ({"field": "xp", "operator": "<", "value": 10}, {"xp": 10}, "has 1 XP too many"),
    ({"field": "age", "operator": "<=", "value": 20}, {"birthday": "2000-06-20"},
     "is 4 years too old"),
    ({"field": "age", "operator": "equals", "value": 25}, {"birthday": "2000-06-20"},
     "turns 25 in 5 days"),
    ({"field": "birthday", "operator": ">=", "value": "2000-07-01"}, {"birthday": "2000-06-20"},
     "born 11 days too early"),
    ({"field": "created_at", "operator": ">=", "value": {"days_ago": 7}},
     {"created_at": "2025-06-01T12:00:00Z"}, "joined 7 days too early"),
    ({"field": "custom_fields.score", "operator": ">=", "value": 10},
     {"custom_fields": {"score": 7}}, "needs 3 more"),
    ({"field": "custom_fields.score", "operator": ">", "value": 5},
     {"custom_fields": {"score": "8"}}, "is a string, not a number"),
    ({"field": "points", "operator": ">=", "value": 1}, {}, "has no points"),
])
def test_gaps(crit: dict[str, Any], member: dict[str, Any], gap: str) -> None:
    """A failed numeric or date criterion says how far the member is from passing."""
    tree = evaluate_segment({"include": [crit]}, member, now=NOW).explanation
    assert tree["children"][0]["children"][0]["gap"] == gap


def test_override_and_list_nodes() -> None:
    """Override and static-list decisions appear in the tree."""
    tree = evaluate_segment({"kind": "static"}, MEMBER, on_list=True,
                            override="block").explanation
    assert [(n["kind"], n["passed"]) for n in tree["children"]] == [
        ("override", False), ("list", True)]
    assert tree["passed"] is False


def test_member_values_accept_objects_and_strings() -> None:
    """Dates may be ISO strings or date/datetime objects; aware datetimes are converted."""
    seg = {"include": [{"field": "created_at", "operator": ">=", "value": "2025-01-01T00:00:00Z"},
                       {"field": "birthday", "operator": "equals", "value": "2000-01-02"}]}
    assert evaluate_segment(seg, {"created_at": datetime(2025, 1, 1),
                                  "birthday": date(2000, 1, 2)}).matched
    assert not evaluate_segment(seg, {
        "created_at": datetime(2025, 1, 1, 1, tzinfo=UTC) + timedelta(hours=-2),
        "birthday": "2000-01-02"}).matched


def test_cache_sees_changes_and_compile_segment() -> None:
    """A changed definition dict is re-read (True is not 1); compile_segment gives a matcher."""
    flag = {"custom_fields": {"flag": True}}
    seg_true = {"include": [{"field": "custom_fields.flag", "operator": "equals", "value": True}]}
    seg_one = {"include": [{"field": "custom_fields.flag", "operator": "equals", "value": 1}]}
    assert evaluate_segment(seg_true, flag).matched
    assert not evaluate_segment(seg_one, flag).matched
    seg_one["include"][0]["value"] = True  # edited in place: True is not 1
    assert evaluate_segment(seg_one, flag).matched
    seg_one["include"][0]["value"] = 1
    assert not evaluate_segment(seg_one, flag).matched
    seg: dict[str, Any] = {"include": [{"field": "points", "operator": ">=", "value": 100}]}
    assert evaluate_segment(seg, {"points": 150}).matched
    seg["include"][0]["value"] = 200
    assert not evaluate_segment(seg, {"points": 150}).matched
    matcher = compile_segment(seg, now=NOW)
    assert [matcher(m) for m in ({"points": 250}, {"points": 1}, {})] == [True, False, False]
    refs = compile_segment({"include": [{"field": "segment", "operator": "in", "value": [1]}]})
    assert refs({}, memberships={1}) and not refs({}, memberships={2})
    assert compile_segment({"kind": "static"})({}) is False


def test_cache_sees_changes_inside_tuples() -> None:
    """A definition given with tuples is checked as strictly as one with lists."""
    crit = {"field": "custom_fields.flag", "operator": "equals", "value": True}
    seg = {"include": (crit,)}
    flag = {"custom_fields": {"flag": True}}
    assert evaluate_segment(seg, flag).matched and matches(seg, flag)
    crit["value"] = 1  # edited in place: True is not 1
    assert not evaluate_segment(seg, flag).matched and not matches(seg, flag)


EXPLAINED = {"kind": "dynamic",
             "include": [{"field": "tier", "operator": "equals", "value": "gold"},
                         {"field": "points", "operator": ">=", "value": 1000}],
             "exclude": [{"field": "badges", "operator": "contains", "value": "banned"}]}


def test_result_explanation_is_built_on_first_read() -> None:
    """The lazily built tree is the eager one; equality, repr, pickling and copies see it."""
    result = evaluate_segment(EXPLAINED, MEMBER, now=NOW)
    env = make_env(NOW)
    matched, tree = explain_membership(compile_definition(EXPLAINED), MEMBER, env,
                                       on_list=False, override=None)
    assert result.matched is matched is False
    assert result.explanation == tree
    assert result.explanation is result.explanation  # built once
    assert tree["children"][0]["children"][1]["gap"] == "needs 120 more points"
    eager = SegmentResult(matched=False, explanation=tree)
    fresh = evaluate_segment(EXPLAINED, MEMBER, now=NOW)
    assert fresh == eager and eager == fresh and fresh != SegmentResult(True, tree)
    assert repr(fresh) == f"SegmentResult(matched=False, explanation={tree!r})"
    for copied in (pickle.loads(pickle.dumps(evaluate_segment(EXPLAINED, MEMBER, now=NOW))),
                   copy.deepcopy(evaluate_segment(EXPLAINED, MEMBER, now=NOW))):
        assert copied == eager and copied.explanation == tree
    with pytest.raises(AttributeError):
        result.matched = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(result)
    assert json.loads(json.dumps(result.explanation)) == tree


def test_later_explanation_explains_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `now`, the tree read later explains the instant of the call, not of the read."""
    later = NOW + timedelta(hours=1)
    clock = iter([NOW, later, later])
    real = clock_env.make_env

    def make_env_at(now: datetime | None = None, *args: Any, **kwargs: Any) -> clock_env.Env:
        return real(next(clock) if now is None else now, *args, **kwargs)

    monkeypatch.setattr(clock_env, "make_env", make_env_at)
    seg = {"include": [{"field": "created_at", "operator": ">=", "value": {"days_ago": 1}}]}
    member = {"created_at": (NOW - timedelta(days=1)).isoformat()}
    result = evaluate_segment(seg, member)  # at NOW: joined exactly one day ago
    assert result.matched
    assert not evaluate_segment(seg, member).matched  # an hour later it no longer holds
    assert result.explanation["passed"] is True
    assert result.explanation["children"][0]["children"][0]["passed"] is True


def test_a_changed_member_cannot_be_explained_silently() -> None:
    """Changing the member before reading a lazy tree that then disagrees raises."""
    member = dict(MEMBER, points=2000)
    result = evaluate_segment(EXPLAINED, member, now=NOW)
    assert result.matched
    member["points"] = 10
    with pytest.raises(RuntimeError, match="member was changed"):
        _ = result.explanation


def test_problems_raise_at_the_call() -> None:
    """Invalid definitions, overrides, zones and missing memberships raise at the call."""
    with pytest.raises(SegmentDefinitionError, match="include"):
        evaluate_segment({"include": [{"field": "points", "operator": ">="}]}, MEMBER)
    with pytest.raises(ValueError, match="override"):
        evaluate_segment({"kind": "static"}, MEMBER, override="maybe")
    with pytest.raises(ValueError, match="time zone"):
        evaluate_segment(EXPLAINED, MEMBER, tz="Mars/Olympus")
    seg = {"include": [{"field": "tier", "operator": "equals", "value": "nobody"},
                       {"field": "segment", "operator": "in", "value": [1]}]}
    with pytest.raises(SegmentDefinitionError, match="need the member's memberships"):
        evaluate_segment(seg, MEMBER, override="add")
    assert not matches(seg, MEMBER)  # no tree: the failed first criterion decides
    asked: list[int] = []
    result = evaluate_segment(seg, MEMBER, memberships=lambda i: asked.append(i) or True)
    assert asked and set(asked) == {1} and not result.matched  # asked at the call


def _grid_definitions() -> list[dict[str, Any]]:
    out = []
    for field in ("tier", "points", "email", "age", "badges", "created_at", "custom_fields.v",
                  "custom_fields.v.a"):
        for op in OPERATORS_BY_TYPE[field_type(field) or ""]:
            for value in (None, 5, 5.0, True, "gold", "GOLD", ["gold", 5], {"days_ago": 3},
                          "2025-06-01", {"a": 5}):
                raw: dict[str, Any] = {"field": field, "operator": op}
                if value is not None:
                    raw["value"] = value
                try:
                    parse_criterion(raw)
                except SegmentDefinitionError:
                    continue
                out += [{"include": [raw]}, {"exclude": [raw]},
                        {"include": [raw, {"field": "tier", "operator": "exists"}],
                         "exclude": [raw]}]
    return out


GRID_PEOPLE: list[dict[str, Any]] = [
    MEMBER, {}, {"tier": "GOLD", "points": 5.0, "email": None, "badges": ["gold", 5]},
    {"tier": 5, "points": "5", "badges": "gold", "birthday": "2020-06-15",
     "created_at": "2025-06-12T12:00:00Z"},
    {"tier": ["gold"], "points": True, "custom_fields": {"v": 5}},
    {"custom_fields": {"v": {"a": 5.0}}}, {"custom_fields": {"v": [True, "gold"]}},
    {"custom_fields": []}, {"points": float("nan"), "custom_fields": {"v": "GOLD"}},
]


def test_generated_rules_agree_with_each_criterion() -> None:
    """The generated matcher and explainer give what each criterion's own rule gives."""
    env = make_env(NOW, memberships={1})
    definitions = _grid_definitions()
    assert len(definitions) > 300
    for definition in definitions:
        compiled = compile_definition(definition)
        bound = compiled.bind(env, lambda m, memberships: pytest.fail("no memberships given"))
        for m in GRID_PEOPLE:
            slow = _explain_each(compiled.include, compiled.exclude, m, env)
            assert compiled.explain(m, env) == slow, (definition, m)
            one_by_one = (all(c.test(m, env) for c in compiled.include)
                          and not any(c.test(m, env) for c in compiled.exclude))
            assert compiled.match(m, env) is bound(m) is one_by_one is slow[0], (definition, m)
