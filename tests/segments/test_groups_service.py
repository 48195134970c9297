"""Groups through the segment services: save, refusals by path, references, preview, warnings."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import SegmentDependency
from webapp.segments.pages import describe, segment_names
from webapp.services.segments import SegmentError, preview, save_segment, warnings, where_used

GOLD = {"field": "tier", "operator": "equals", "value": "gold"}
RICH = {"field": "points", "operator": ">=", "value": 1000}
VIP = {"field": "custom_fields.vip", "operator": "equals", "value": True}
NEW = {"field": "created_at", "operator": ">=", "value": {"days_ago": 90}}
TARGET = [{"any": [{"all": [GOLD, RICH]}, {"all": [VIP, NEW]}]}]


def _people() -> None:
    make_member(tier="gold", points=1200)
    make_member(tier="gold", points=10)
    make_member(tier="bronze", points=10, custom_fields={"vip": True})
    make_member(tier="bronze", points=10, custom_fields={"vip": False})


def test_save_stores_groups_and_materializes_them(app):
    _people()
    segment = save_segment({"name": "Gold or VIP", "kind": "dynamic", "include": TARGET},
                           actor="t")
    assert segment.include == TARGET
    assert segment.size == 2
    assert describe(segment).startswith("(tier is gold and points at least 1,000) or ")


def test_preview_counts_nested_definitions(app):
    _people()
    result = preview({"kind": "dynamic", "include": TARGET, "exclude": []})
    assert result["count"] == 2
    result = preview({"kind": "dynamic", "include": [], "exclude": [{"none": [GOLD]}]})
    assert result["count"] == 2


def test_refusals_name_the_item_inside_the_group(app):
    with pytest.raises(SegmentError) as info:
        save_segment({"name": "x", "kind": "dynamic", "include": [
            GOLD, {"any": [RICH, {"field": "points", "operator": ">", "value": "many"}]},
            {"all": []}]}, actor="t")
    errors = info.value.errors
    assert errors["include[1].any[1]"].startswith("include[1].any[1] (points > \"many\"): ")
    assert "the group is empty" in errors["include[2]"]


def test_limit_counts_criteria_inside_groups(app):
    app.config["LIMIT_CRITERIA"] = 3
    with pytest.raises(SegmentError) as info:
        save_segment({"name": "x", "kind": "dynamic",
                      "include": [GOLD, {"any": [RICH, VIP, NEW]}]}, actor="t")
    assert "the limit is 3 include criteria" in info.value.errors["include"]
    assert "4 were given" in info.value.errors["include"]


def test_segment_criteria_in_groups_are_dependencies(app):
    _people()
    gold = make_segment(name="Gold", include=[GOLD])
    nested = save_segment({"name": "Nested", "kind": "dynamic", "include": [
        {"any": [{"field": "segment", "operator": "in", "value": [gold.customer_segment_id
                                                                  or gold.id]}, VIP]}]},
        actor="t")
    deps = set(db.session.scalars(select(SegmentDependency.depends_on_id).where(
        SegmentDependency.segment_id == nested.id)))
    assert deps == {gold.id}
    assert [u["name"] for u in where_used(gold)] == ["Nested"]
    assert segment_names(nested) == {gold.id: "Gold"}
    assert nested.size == 3  # two gold members and the bronze VIP
    with pytest.raises(SegmentError) as info:
        save_segment({"include": [{"all": [{"field": "segment", "operator": "in",
                                            "value": [nested.id]}]}]}, segment=gold, actor="t")
    assert "cycle" in info.value.errors["include[0].all[0]"]


def test_group_warnings(app):
    _people()
    found = warnings({"kind": "dynamic", "include": [
        {"all": [{"field": "points", "operator": ">", "value": 500},
                 {"field": "points", "operator": "<", "value": 100}]}, GOLD]}, 0, 4)
    assert any("include[0] (an all group)" in w and "contradict" in w for w in found)
    assert any("include[0] (an all group) holds for no member" in w
               and "the segment matches no one" in w for w in found)
    always = warnings({"kind": "dynamic", "include": [
        {"any": [GOLD, {"field": "tier", "operator": "not_equals", "value": "gold"}]}]}, 4, 4)
    assert any("include[0] (an any group) holds for every member, so it is always true" in w
               for w in always)
    repeated = warnings({"kind": "dynamic", "include": [{"any": [GOLD, RICH, GOLD]}]}, 2, 4)
    assert any("include[0].any[2] repeats include[0].any[0] (tier is gold)" in w
               for w in repeated)
    single = warnings({"kind": "dynamic", "include": [{"all": [GOLD]}]}, 2, 4)
    assert any("include[0] (an all group) has one item" in w and "flatten it" in w
               for w in single)
    excluding = warnings({"kind": "dynamic", "exclude": [
        {"none": [{"field": "tier", "operator": "in", "value": []}]}]}, 0, 4)
    assert any("exclude[0] (a none group) holds for every member" in w
               and "excludes every member" in w for w in excluding)
    assert warnings({"kind": "dynamic", "include": TARGET}, 2, 4) == []


def test_ordering_pairs_are_not_always_true(app):
    """points >= 5 or points < 5 leaves out members without points: no 'always' warning."""
    found = warnings({"kind": "dynamic", "include": [
        {"any": [{"field": "custom_fields.n", "operator": ">=", "value": 5},
                 {"field": "custom_fields.n", "operator": "<", "value": 5}]}]}, 0, 0)
    assert not any("always true" in w for w in found)
    found = warnings({"kind": "dynamic", "include": [
        {"any": [{"field": "custom_fields.n", "operator": "exists"},
                 {"field": "custom_fields.n", "operator": "not_exists"}]}]}, 0, 0)
    assert any("always true" in w for w in found)
