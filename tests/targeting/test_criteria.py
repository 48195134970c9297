"""Criteria validation: every refused combination raises with a message naming the criterion."""

from __future__ import annotations

from typing import Any

import pytest

from webapp.targeting import (
    FIELDS,
    OPERATORS,
    OPERATORS_BY_TYPE,
    SegmentDefinitionError,
    describe_definition,
    fields_used,
    is_time_dependent,
    parse_criterion,
    parse_definition,
    referenced_segments,
)


def refused(raw: Any, where: str = "include[2]") -> str:
    with pytest.raises(SegmentDefinitionError) as info:
        parse_criterion(raw, where)
    return str(info.value)


def test_message_names_the_criterion() -> None:
    """The brief's example message, word for word."""
    assert refused({"field": "points", "operator": ">", "value": "abc"}) == (
        'include[2] (points > "abc"): points takes a number')


def test_definition_errors_name_the_position() -> None:
    """A bad criterion inside a definition is named by its group and index."""
    with pytest.raises(SegmentDefinitionError, match=r"^exclude\[1\] \(tier > 3\)"):
        parse_definition({"kind": "dynamic", "include": [], "exclude": [
            {"field": "tier", "operator": "exists"}, {"field": "tier", "operator": ">",
                                                      "value": 3}]})


@pytest.mark.parametrize(("raw", "message"), [
    ({"field": "nope", "operator": "equals", "value": 1}, "unknown field 'nope'"),
    ({"field": "custom_fields", "operator": "exists"}, "name a custom field"),
    ({"field": "custom_fields.a b", "operator": "exists"}, "custom field path"),
    ({"field": "custom_fields.a..b", "operator": "exists"}, "custom field path"),
    ({"field": "tier", "operator": "like", "value": "x"}, "unknown operator"),
    ({"field": "tier", "operator": ">", "value": "a"}, "cannot be ordered"),
    ({"field": "badges", "operator": "<", "value": "a"}, "cannot be ordered"),
    ({"field": "custom_fields.x", "operator": ">", "value": "a"}, "ordering two strings"),
    ({"field": "custom_fields.x", "operator": ">", "value": True}, "takes a number"),
    ({"field": "points", "operator": "contains", "value": 1}, "does not apply to points"),
    ({"field": "birthday", "operator": "in", "value": ["2020-01-01"]}, "does not apply"),
    ({"field": "segment", "operator": "equals", "value": 1}, "does not apply to segment"),
    ({"field": "segment", "operator": "in", "value": ["a"]}, "segment ids"),
    ({"field": "segment", "operator": "in", "value": [True]}, "segment ids"),
    ({"field": "tier", "operator": "in", "value": "gold"}, "in takes a list"),
    ({"field": "tier", "operator": "not_in", "value": {"a": 1}}, "not_in takes a list"),
    ({"field": "tier", "operator": "in", "value": ["gold", 1]}, "list of strings"),
    ({"field": "points", "operator": "in", "value": [1, "2"]}, "list of numbers"),
    ({"field": "points", "operator": "in", "value": [True]}, "list of numbers"),
    ({"field": "custom_fields.x", "operator": "in", "value": [[1]]}, "strings, numbers or"),
    ({"field": "custom_fields.x", "operator": "in", "value": [None]}, "strings, numbers or"),
    ({"field": "tier", "operator": "equals", "value": 1}, "tier takes a string"),
    ({"field": "email", "operator": "contains", "value": ["a"]}, "email takes a string"),
    ({"field": "points", "operator": ">=", "value": True}, "points takes a number"),
    ({"field": "xp", "operator": "equals", "value": "10"}, "xp takes a number"),
    ({"field": "coins", "operator": "<", "value": float("inf")}, "not finite"),
    ({"field": "age", "operator": ">=", "value": 2**70}, "64 bits"),
    ({"field": "badges", "operator": "contains", "value": 1}, "one badge id"),
    ({"field": "badges", "operator": "equals", "value": "a"}, "whole list"),
    ({"field": "tier", "operator": "exists", "value": "x"}, "exists takes no value"),
    ({"field": "tier", "operator": "not_exists", "value": 0}, "not_exists takes no value"),
    ({"field": "tier", "operator": "equals"}, "equals needs a value"),
    ({"field": "tier", "operator": "equals", "value": None}, "equals needs a value"),
    ({"field": "custom_fields.x", "operator": "equals", "value": [1, None]}, "null is not"),
    ({"field": "custom_fields.x", "operator": "equals", "value": {"a\u0000b": 1}}, "object key"),
    ({"field": "custom_fields.x", "operator": "contains", "value": [1]}, "string, number or"),
    ({"field": "birthday", "operator": ">", "value": "2020-01-01T00:00:00Z"}, "without a time"),
    ({"field": "birthday", "operator": ">", "value": 20200101}, "takes a date"),
    ({"field": "created_at", "operator": ">", "value": "2020-1-1"}, "not an ISO 8601"),
    ({"field": "created_at", "operator": ">", "value": "20200101"}, "not an ISO 8601"),
    ({"field": "created_at", "operator": ">", "value": "2020-W01-1"}, "not an ISO 8601"),
    ({"field": "created_at", "operator": ">", "value": "2020-02-30"}, "not an ISO 8601"),
    ({"field": "created_at", "operator": ">", "value": "yesterday"}, "not an ISO 8601"),
    ({"field": "created_at", "operator": ">", "value": {"days": 3}}, "days_ago"),
    ({"field": "created_at", "operator": ">", "value": {"days_ago": -1}}, "days_ago takes"),
    ({"field": "created_at", "operator": ">", "value": {"days_ago": 1.5}}, "days_ago takes"),
    ({"field": "points", "operator": ">", "value": 1, "case_insensitive": True},
     "case_insensitive applies to text"),
    ({"field": "tier", "operator": "equals", "value": "a", "case_insensitive": "yes"},
     "true or false"),
    ({"field": "tier", "operator": "equals", "value": "a", "weight": 1}, "unknown key weight"),
    ("tier = gold", "a criterion is an object"),
    ({"operator": "exists"}, "field is missing"),
])
def test_refused(raw: Any, message: str) -> None:
    """Each refused criterion raises SegmentDefinitionError naming it and the problem."""
    text = refused(raw)
    assert text.startswith("include[2] (")
    assert message in text


@pytest.mark.parametrize(("raw", "field"), [
    ({"field": "customFields.vip", "operator": "exists"}, "custom_fields.vip"),
    ({"field": "createdAt", "operator": "exists"}, "created_at"),
    ({"field": "updatedAt", "operator": "exists"}, "updated_at"),
    ({"field": "custom_fields.a.b-c", "operator": "exists"}, "custom_fields.a.b-c"),
])
def test_camel_case_is_stored_canonically(raw: dict[str, Any], field: str) -> None:
    """camelCase spellings are accepted and stored in snake_case."""
    assert parse_criterion(raw).to_dict()["field"] == field


def test_case_insensitive_camel_key_and_round_trip() -> None:
    """`caseInsensitive` is accepted; the canonical form keeps only what matters."""
    c = parse_criterion({"field": "tier", "operator": "equals", "value": "Gold",
                         "caseInsensitive": True})
    assert c.to_dict() == {"field": "tier", "operator": "equals", "value": "Gold",
                           "case_insensitive": True}
    assert parse_criterion({"field": "tier", "operator": "exists", "value": None}).to_dict() == {
        "field": "tier", "operator": "exists"}


@pytest.mark.parametrize("value", [
    "2024-06-15", "2024-06-15T09:30:00Z", "2024-06-15T09:30:00+02:00", "2024-06-15T09:30:00",
    "2024-06-15T09:30:00.123456Z", "2024-06-15 09:30:00-05:00", {"days_ago": 0},
    {"days_ago": 30}])
def test_dates_accepted(value: Any) -> None:
    """ISO 8601 / RFC 3339 dates and relative dates are accepted for datetime fields."""
    parse_criterion({"field": "created_at", "operator": ">=", "value": value})


def test_allowed_shapes() -> None:
    """Empty lists are allowed for in/not_in; mixed JSON types for custom fields."""
    parse_criterion({"field": "tier", "operator": "in", "value": []})
    parse_criterion({"field": "custom_fields.x", "operator": "in", "value": [1, "1", True]})
    parse_criterion({"field": "custom_fields.x", "operator": "equals",
                     "value": {"a": [1, {"b": "c"}]}})
    parse_criterion({"field": "badges", "operator": "equals", "value": ["a", "b"]})
    parse_criterion({"field": "age", "operator": ">=", "value": 17.5})


def test_definition_rules() -> None:
    """Static segments have no criteria; limits; kind; shape."""
    crit = {"field": "tier", "operator": "exists"}
    with pytest.raises(SegmentDefinitionError, match="static segment has no criteria"):
        parse_definition({"kind": "static", "include": [crit]})
    with pytest.raises(SegmentDefinitionError, match="at most 50 criteria"):
        parse_definition({"kind": "dynamic", "include": [crit] * 51})
    with pytest.raises(SegmentDefinitionError, match="kind is static or dynamic"):
        parse_definition({"kind": "smart"})
    with pytest.raises(SegmentDefinitionError, match="include is a list"):
        parse_definition({"kind": "dynamic", "include": crit})
    assert parse_definition({"kind": "static"}).include == ()
    assert parse_definition({"kind": "dynamic", "include": None}).exclude == ()


def test_vocabulary_tables() -> None:
    """The builder's tables are consistent: every operator fits some type."""
    assert set(FIELDS.values()) == set(OPERATORS_BY_TYPE)
    assert {op for ops in OPERATORS_BY_TYPE.values() for op in ops} == set(OPERATORS)
    assert FIELDS["badges"] == "list" and FIELDS["age"] == "integer"


def test_describe_definition() -> None:
    """A whole definition reads as words."""
    d = {"kind": "dynamic",
         "include": [{"field": "tier", "operator": "in", "value": ["gold", "platinum"]},
                     {"field": "points", "operator": ">=", "value": 1000}],
         "exclude": [{"field": "badges", "operator": "contains", "value": "banned"}]}
    assert describe_definition(d) == (
        "tier is gold or platinum, and points at least 1,000, except members with badge banned")
    assert describe_definition({"kind": "static"}) == "members on the list"
    assert describe_definition({"kind": "dynamic"}) == "everyone"
    named = {"kind": "dynamic", "include": [
        {"field": "segment", "operator": "in", "value": [3, 4]},
        {"field": "createdAt", "operator": ">=", "value": {"days_ago": 30}},
        {"field": "custom_fields.plan", "operator": "equals", "value": "pro",
         "case_insensitive": True}],
        "exclude": [{"field": "segment", "operator": "in", "value": [9]},
                    {"field": "tier", "operator": "equals", "value": "bronze"}]}
    assert describe_definition(named, {3: "VIPs", 4: "Staff", 9: "Fraud"}) == (
        'in segment VIPs or Staff, and joined on or after 30 days ago, and custom field plan '
        'is "pro" (ignoring case), except members in segment Fraud or members whose tier is '
        "bronze")


def test_helpers_for_the_membership_service() -> None:
    """References, fields read and time dependence."""
    d = {"kind": "dynamic", "include": [
        {"field": "segment", "operator": "not_in", "value": [5, 2]},
        {"field": "age", "operator": ">=", "value": 18},
        {"field": "customFields.a.b", "operator": "exists"}]}
    assert referenced_segments(d) == {2, 5}
    assert fields_used(d) == {"birthday", "custom_fields"}
    assert is_time_dependent(d)
    assert not is_time_dependent({"include": [
        {"field": "created_at", "operator": ">", "value": "2024-01-01"}]})
    assert is_time_dependent({"include": [
        {"field": "created_at", "operator": ">", "value": {"days_ago": 3}}]})


@pytest.mark.parametrize(("raw", "label"), [
    ({"field": "tier", "operator": "not_in", "value": ["bronze", "silver"]},
     "tier is neither bronze nor silver"),
    ({"field": "tier", "operator": "not_in", "value": ["a", "b", "c"]}, "tier is none of a, b, c"),
    ({"field": "points", "operator": ">=", "value": 1000}, "points at least 1,000"),
    ({"field": "badges", "operator": "contains", "value": "banned"}, "has badge banned"),
    ({"field": "age", "operator": "exists"}, "has birthday"),
    ({"field": "email", "operator": "contains", "value": "@acme.com"},
     'email contains "@acme.com"'),
    ({"field": "custom_fields.vip", "operator": "equals", "value": True},
     "custom field vip is true"),
    ({"field": "updatedAt", "operator": ">", "value": "2024-06-15T09:30:00Z"},
     "updated after 2024-06-15T09:30:00Z"),
    ({"field": "segment", "operator": "not_in", "value": [4]}, "not in segment #4"),
])
def test_labels(raw: dict[str, Any], label: str) -> None:
    """Each criterion reads as plain words."""
    from webapp.targeting import criterion_label

    assert criterion_label(parse_criterion(raw)) == label


def test_describe_exclusions_read_as_people() -> None:
    """Exclusions read 'except members who/with/whose …'."""
    assert describe_definition({"include": [{"field": "points", "operator": ">", "value": 10}],
                                "exclude": [{"field": "email", "operator": "not_exists"},
                                            {"field": "createdAt", "operator": ">=",
                                             "value": {"days_ago": 7}}]}) == (
        "points more than 10, except members with no email or members who joined on or after "
        "7 days ago")
