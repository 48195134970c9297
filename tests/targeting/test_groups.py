"""Groups in definitions (SPEC §8): validation, stored form, labels and the explanation tree."""

from __future__ import annotations

from typing import Any

import pytest

from webapp.targeting import (
    SegmentDefinitionError,
    compile_segment,
    describe_definition,
    evaluate_segment,
    fields_used,
    is_time_dependent,
    matches,
    parse_definition,
    referenced_segments,
)

GOLD = {"field": "tier", "operator": "equals", "value": "gold"}
RICH = {"field": "points", "operator": ">=", "value": 1000}
VIP = {"field": "custom_fields.vip", "operator": "equals", "value": True}
NEW = {"field": "created_at", "operator": ">=", "value": {"days_ago": 90}}
TARGET = {"kind": "dynamic", "include": [{"any": [{"all": [GOLD, RICH]}, {"all": [VIP, NEW]}]}],
          "exclude": []}


def refused(definition: dict[str, Any]) -> str:
    with pytest.raises(SegmentDefinitionError) as info:
        parse_definition(definition)
    return str(info.value)


def test_flat_definition_is_stored_as_it_is() -> None:
    flat = {"kind": "dynamic", "include": [GOLD, RICH], "exclude": [VIP]}
    assert parse_definition(flat).to_dict() == flat
    assert not parse_definition(flat).has_groups


def test_groups_are_stored_as_given() -> None:
    assert parse_definition(TARGET).to_dict() == TARGET
    assert parse_definition(TARGET).has_groups


def test_the_marketers_or_across_fields() -> None:
    assert matches(TARGET, {"tier": "gold", "points": 1200})
    assert not matches(TARGET, {"tier": "gold", "points": 999})
    assert matches(TARGET, {"tier": "bronze", "custom_fields": {"vip": True},
                            "created_at": "2099-01-01T00:00:00"})
    assert not matches(TARGET, {"tier": "bronze", "custom_fields": {"vip": "true"},
                                "created_at": "2099-01-01T00:00:00"})


def test_bulk_matcher_reads_groups() -> None:
    matcher = compile_segment(TARGET)
    assert matcher({"tier": "gold", "points": 1200})
    assert not matcher({"tier": "gold", "points": 12})
    by_segment = compile_segment({"include": [{"any": [
        GOLD, {"field": "segment", "operator": "in", "value": [3]}]}]})
    assert by_segment({"tier": "bronze"}, memberships={3})
    assert not by_segment({"tier": "bronze"}, memberships={4})


def test_none_group_and_exclude_group() -> None:
    d = {"include": [{"none": [GOLD, RICH]}], "exclude": [{"all": [VIP, RICH]}]}
    assert matches(d, {"tier": "bronze", "points": 5})
    assert not matches(d, {"tier": "gold", "points": 5})
    assert not matches(d, {"tier": "bronze", "points": 1000})
    d2 = {"exclude": [{"all": [VIP, {"field": "points", "operator": "<", "value": 10}]}]}
    assert matches(d2, {"points": 5})
    assert not matches(d2, {"points": 5, "custom_fields": {"vip": True}})


def test_missing_fields_inside_groups_follow_the_usual_rules() -> None:
    d = {"include": [{"any": [{"field": "points", "operator": "not_equals", "value": 3},
                              GOLD]}]}
    assert matches(d, {})  # not_equals holds on a missing field
    assert not matches({"include": [{"any": [RICH, GOLD]}]}, {})


@pytest.mark.parametrize(("definition", "words"), [
    ({"include": [{"any": []}]}, "include[0] (any group): the group is empty"),
    ({"include": [GOLD, {"all": [RICH, {"none": []}]}]},
     "include[1].all[1] (none group): the group is empty"),
    ({"include": [{"any": [GOLD], "all": [RICH]}]}, "it has any and all"),
    ({"include": [{"any": [GOLD], "junk": 1}]}, "unknown key junk"),
    ({"include": [{"any": GOLD}]}, "any is a list of criteria and groups"),
    ({"exclude": [{"any": [{"all": [{"none": [{"any": [GOLD]}]}]}]}]},
     "exclude[0].any[0].all[0].none[0] (any group): groups nest at most 3 deep"),
    ({"include": [{"any": [GOLD, {"field": "points", "operator": ">", "value": "x"}]}]},
     "include[0].any[1] (points > \"x\"): points takes a number"),
])
def test_bad_groups_are_refused_naming_the_item(definition: dict[str, Any], words: str) -> None:
    assert words in refused(definition)


def test_three_levels_are_allowed() -> None:
    d = {"include": [{"any": [{"all": [{"none": [GOLD]}, RICH]}]}]}
    assert matches(d, {"tier": "bronze", "points": 1000})


def test_limits_count_every_criterion_in_every_group() -> None:
    d = {"include": [GOLD, {"any": [RICH, VIP, {"all": [NEW, GOLD]}]}]}
    parse_definition(d, max_include=5)
    assert "at most 4 criteria per segment (5 given)" in refused_with(d, max_include=4)


def refused_with(definition: dict[str, Any], **limits: int) -> str:
    with pytest.raises(SegmentDefinitionError) as info:
        parse_definition(definition, **limits)
    return str(info.value)


def test_walkers_see_criteria_inside_groups() -> None:
    d = {"include": [{"any": [{"field": "segment", "operator": "in", "value": [4]},
                              {"all": [{"field": "age", "operator": ">=", "value": 18}]}]}],
         "exclude": [{"none": [{"field": "custom_fields.a", "operator": "exists"}]}]}
    assert referenced_segments(d) == {4}
    assert fields_used(d) == {"birthday", "custom_fields"}
    assert is_time_dependent(d)
    assert not is_time_dependent({"include": [{"any": [GOLD, RICH]}]})


def test_describe_names_each_group() -> None:
    assert describe_definition(TARGET) == (
        "(tier is gold and points at least 1,000) or (custom field vip is true and joined on "
        "or after 90 days ago)")
    d = {"include": [GOLD, {"none": [RICH, VIP]}], "exclude": [{"any": [NEW, RICH]}]}
    assert describe_definition(d) == (
        "tier is gold, and not (points at least 1,000 or custom field vip is true), except "
        "members matching (joined on or after 90 days ago or points at least 1,000)")


def test_explanation_shows_each_group_and_the_branches_that_hold() -> None:
    result = evaluate_segment(TARGET, {"tier": "gold", "points": 400})
    assert not result.matched
    include = result.explanation["children"][0]
    (outer,) = include["children"]
    assert outer["kind"] == "group" and outer["expected"] == "any"
    assert outer["label"] == "at least one of these holds: no branch holds"
    assert outer["passed"] is False and outer["actual"] == []
    first, second = outer["children"]
    assert first["label"] == "all of these hold: branch 1 of 2 holds"
    assert [c["passed"] for c in first["children"]] == [True, False]
    assert first["children"][1]["gap"] == "needs 600 more points"
    assert second["children"][0]["gap"] == "has no value for custom_fields.vip"

    passed = evaluate_segment(TARGET, {"tier": "gold", "points": 4000}).explanation
    assert passed["children"][0]["children"][0]["label"] == (
        "at least one of these holds: branch 1 of 2 holds")


def test_an_excluding_group_passes_when_it_does_not_hold() -> None:
    d = {"exclude": [{"any": [GOLD, RICH]}]}
    tree = evaluate_segment(d, {"tier": "gold", "points": 1}).explanation
    node = tree["children"][1]["children"][0]
    assert node["label"] == "excluded when at least one of these holds: branch 1 of 2 holds"
    assert node["passed"] is False and node["actual"] == [1]
    tree = evaluate_segment(d, {"tier": "bronze", "points": 1}).explanation
    assert tree["passed"] is True
    assert tree["children"][1]["children"][0]["passed"] is True


def test_segment_criteria_in_groups_read_memberships() -> None:
    d = {"include": [{"any": [GOLD, {"field": "segment", "operator": "in", "value": [7]}]}]}
    assert matches(d, {"tier": "bronze"}, memberships={7})
    assert not matches(d, {"tier": "bronze"}, memberships={8})
    with pytest.raises(SegmentDefinitionError, match="memberships"):
        evaluate_segment(d, {"tier": "bronze"})


def test_empty_groups_follow_the_spec_in_python_and_sql(member_db) -> None:
    """Refused when written, but the core itself reads all [] true, any [] false, none [] true
    (SPEC §8), in Python and in SQL alike."""
    import sqlalchemy as sa

    from tests.targeting.tables import member_row
    from webapp.targeting import Definition, Group, compile_definition
    from webapp.targeting.env import make_env
    from webapp.targeting.sql import compile_criteria

    people = [{"tier": "gold"}, {"tier": "bronze"}]
    rows = [member_row(m, i) for i, m in enumerate(people)]
    with member_db.engine.begin() as conn:
        member_db.reset(conn)
        conn.execute(member_db.members.insert(), rows)
        for mode, expected in (("all", True), ("any", False), ("none", True)):
            d = Definition(kind="dynamic", include=(Group(mode, ()),))
            compiled = compile_definition(d)
            assert [compiled.match(m, make_env()) for m in people] == [expected] * 2
            expr = compile_criteria(d, member_db.members, dialect=member_db.dialect)
            count = conn.execute(sa.select(sa.func.count()).select_from(member_db.members)
                                 .where(expr)).scalar()
            assert count == (2 if expected else 0), mode
        conn.rollback()
