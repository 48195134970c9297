"""Offer and reward visibility (SPEC §4), audiences, overrides with expiry, segment cycles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from webapp.targeting import (
    AudienceDefinitionError,
    SegmentDefinitionError,
    SegmentFacts,
    cycle_path,
    dependency_order,
    dependents,
    evaluate_offer,
    evaluate_reward,
    find_cycle,
    segment_membership,
    validate_audience,
)

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
MEMBER = {"external_id": "u1", "tier": "gold", "points": 880, "birthday": "2007-07-22",
          "badges": ["early"]}
GOLD = SegmentFacts(1, "Gold", "dynamic", {"include": [
    {"field": "tier", "operator": "equals", "value": "gold"}]})
EARLY = SegmentFacts(2, "Early birds", "dynamic", {"include": [
    {"field": "badges", "operator": "contains", "value": "early"}]})
LIST = SegmentFacts(3, "Beta list", "static", {}, on_list=False)
GOLD_EARLY = SegmentFacts(4, "Gold early birds", "dynamic", {"include": [
    {"field": "segment", "operator": "in", "value": [1]},
    {"field": "segment", "operator": "in", "value": [2]}]})
SEGMENTS = {s.id: s for s in (GOLD, EARLY, LIST, GOLD_EARLY)}


def audience(kind: str, **config: Any) -> dict[str, Any]:
    return {"audience_type": kind, "configuration": config}


def test_offer_without_audiences_is_visible() -> None:
    """No audiences: visible to all; eligible when active and published."""
    d = evaluate_offer({"name": "Free coffee"}, [], MEMBER, SEGMENTS, now=NOW)
    assert (d.visible_status, d.eligible, d.reason) == ("visible", True, "eligible")
    json.dumps(d.to_dict())


def test_offer_age_restricted_before_segments() -> None:
    """age_within failing wins over a failing segment audience; no birthday fails it."""
    auds = [audience("in_all_segments", segments=[3]), audience("age_within", minimum_age=18)]
    d = evaluate_offer({"name": "Beer"}, auds, MEMBER, SEGMENTS, now=NOW)
    assert (d.visible_status, d.eligible, d.reason) == ("age_restricted", False,
                                                        "age_restricted")
    age = [n for n in d.explanation["children"] if n["label"] == "age at least 18"][0]
    assert (age["passed"], age["actual"], age["gap"]) == (False, 17, "turns 18 in 37 days")
    no_birthday = evaluate_offer({}, [audience("age_within", maximum_age=99)],
                                 {"tier": "gold"}, SEGMENTS, now=NOW)
    assert no_birthday.visible_status == "age_restricted"


@pytest.mark.parametrize(("lo", "hi", "birthday", "ok"), [
    (18, None, "2007-06-15", True),    # 18th birthday today: minimum met
    (18, None, "2007-06-16", False),
    (None, 25, "1999-06-16", True),    # 25 until the 26th birthday
    (None, 25, "1999-06-15", False),   # 26 today
    (18, 25, "2000-01-01", True), (0, 0, "2025-01-01", True),
])
def test_age_within_is_inclusive(lo: int | None, hi: int | None, birthday: str, ok: bool) -> None:
    """A minimum of 18 is met on the 18th birthday; a maximum of 25 holds until the 26th."""
    d = evaluate_offer({}, [audience("age_within", minimum_age=lo, maximum_age=hi)],
                       {"birthday": birthday}, {}, now=NOW)
    assert (d.visible_status == "visible") is ok


def test_offer_segments_all_and_any() -> None:
    """in_all_segments needs every segment; in_any_segment one of them."""
    all_ = evaluate_offer({}, [audience("in_all_segments", segments=[1, 3])], MEMBER, SEGMENTS,
                          now=NOW)
    assert all_.visible_status == "missing_required_segments"
    assert all_.explanation["children"][2]["gap"] == "not in Beta list"
    any_ = evaluate_offer({}, [audience("in_any_segment", segments=[1, 3])], MEMBER, SEGMENTS,
                          now=NOW)
    assert any_.visible_status == "visible"


def test_offer_eligibility_window_and_discontinued() -> None:
    """Visible but not eligible when discontinued or outside the publish window."""
    cases = [({"discontinued": True}, "offer_discontinued"),
             ({"publish_at": "2025-07-01T00:00:00Z"}, "offer_not_published"),
             ({"expire_at": "2025-06-15T12:00:00Z"}, "offer_expired"),
             ({"publish_at": "2025-06-15T12:00:00", "expire_at": "2025-06-15T12:00:01"},
              "eligible")]
    for offer, reason in cases:
        d = evaluate_offer(offer, [], MEMBER, SEGMENTS, now=NOW)
        assert (d.visible_status, d.reason, d.eligible) == ("visible", reason,
                                                            reason == "eligible")


def test_segment_references_evaluate_live() -> None:
    """A `segment` criterion reads the other segment's live membership, shown in the tree."""
    d = evaluate_offer({}, [audience("in_all_segments", segments=[4])], MEMBER, SEGMENTS, now=NOW)
    assert d.visible_status == "visible"
    seg = d.explanation["children"][2]["children"][0]
    assert seg["label"] == "segment Gold early birds"
    crit = seg["children"][0]["children"][0]
    assert crit["label"] == "in segment Gold"
    assert crit["children"][0]["label"] == "segment Gold"
    blocked = dict(SEGMENTS)
    blocked[2] = SegmentFacts(2, "Early birds", "dynamic", EARLY.definition,
                              override={"status": "block", "description": "abuse",
                                        "actor": "ops@x", "at": "2025-06-01T00:00:00Z"})
    d = evaluate_offer({}, [audience("in_all_segments", segments=[4])], MEMBER, blocked, now=NOW)
    assert d.visible_status == "missing_required_segments"
    text = json.dumps(d.explanation)
    assert "blocked by override: abuse (by ops@x)" in text


def test_override_expiry() -> None:
    """An override whose expires_at <= now does not apply."""
    def facts(expires: Any) -> dict[int, SegmentFacts]:
        return {3: SegmentFacts(3, "Beta list", "static", {}, on_list=False, override={
            "status": "add", "expires_at": expires})}
    assert segment_membership(3, MEMBER, facts(None), now=NOW).matched
    assert segment_membership(3, MEMBER, facts("2025-06-16T00:00:00Z"), now=NOW).matched
    assert not segment_membership(3, MEMBER, facts("2025-06-15T12:00:00Z"), now=NOW).matched
    assert not segment_membership(3, MEMBER, facts(datetime(2025, 6, 1)), now=NOW).matched


def test_static_list_and_unknown_segment() -> None:
    """A static segment is its list; an unknown segment id is not a membership."""
    on = {3: SegmentFacts(3, "Beta list", "static", {}, on_list=True)}
    assert segment_membership(3, MEMBER, on, now=NOW).matched
    assert not segment_membership(99, MEMBER, on, now=NOW).matched


def test_reward_status_order() -> None:
    """reward_discontinued, reward_expired, missing_required_segments, visible."""
    cases = [
        ({"points": 10, "discontinued": True, "expire_at": "2020-01-01"}, [3],
         "reward_discontinued"),
        ({"points": 10, "publish_at": "2026-01-01"}, [3], "reward_expired"),
        ({"points": 10, "expire_at": "2025-06-01"}, [3], "reward_expired"),
        ({"points": 10}, [1, 3], "missing_required_segments"),
        ({"points": 10}, [1, 2], "visible"),
    ]
    for reward, required, status in cases:
        d = evaluate_reward(reward, required, MEMBER, SEGMENTS, now=NOW)
        assert d.visible_status == status
        assert d.eligible is (status == "visible")


def test_reward_insufficient_points() -> None:
    """Short of points: still visible, not eligible, reason insufficient_points with the gap."""
    d = evaluate_reward({"name": "Mug", "points": 1000}, [], MEMBER, SEGMENTS, now=NOW)
    assert (d.visible_status, d.eligible, d.reason) == ("visible", False, "insufficient_points")
    assert d.explanation["gap"] == "needs 120 more points"
    pts = [n for n in d.explanation["children"] if n["kind"] == "points"][0]
    assert (pts["actual"], pts["expected"], pts["passed"]) == (880, 1000, False)
    exact = evaluate_reward({"points": 880}, [], MEMBER, SEGMENTS, now=NOW)
    assert exact.eligible and exact.reason == "eligible"


@pytest.mark.parametrize(("kind", "config", "message"), [
    ("age_within", {"minimum_age": None, "maximum_age": None}, "^Give a minimum age, a maximum"),
    ("age_within", {}, "^Give a minimum age, a maximum age, or both"),
    ("age_within", {"minimum_age": -1}, "0 or more"),
    ("age_within", {"minimum_age": 1.5}, "whole number"),
    ("age_within", {"minimum_age": True}, "whole number"),
    ("age_within", {"minimum_age": 30, "maximum_age": 20},
     r"^The minimum age \(30\) is above the maximum age \(20\)\.$"),
    ("age_within", {"minimum_age": 3, "max": 5}, "unknown key max"),
    ("in_all_segments", {"segments": []}, "at least one"),
    ("in_any_segment", {"segments": [1, 1]}, "listed twice"),
    ("in_any_segment", {"segments": ["1"]}, "whole numbers"),
    ("in_any_segment", {"segments": [7]}, "segment 7 does not exist"),
    ("in_any_segment", "1,2", "must be an object"),
    ("everyone", {}, "audience_type must be one of"),
])
def test_audience_validation(kind: str, config: Any, message: str) -> None:
    """Audience configurations follow SPEC §2, with a clear message."""
    with pytest.raises(AudienceDefinitionError, match=message):
        validate_audience(kind, config, segment_ids={1, 2})


def test_audience_validation_accepts() -> None:
    """Valid configurations are returned normalized."""
    assert validate_audience("age_within", {"minimum_age": 18}) == {
        "minimum_age": 18, "maximum_age": None}
    assert validate_audience("in_all_segments", {"segments": [2, 1]}) == {"segments": [2, 1]}


def test_cycles() -> None:
    """Reference cycles are found and named; order puts dependencies first."""
    defs = {1: {"include": [{"field": "segment", "operator": "in", "value": [2]}]},
            2: {"include": [{"field": "segment", "operator": "not_in", "value": [3]}]},
            3: {"include": [{"field": "tier", "operator": "exists"}]}}
    find_cycle(defs)
    assert cycle_path(defs) is None
    assert dependency_order(defs) == [3, 2, 1]
    assert dependents(defs, 3) == [2, 1]
    defs[3] = {"exclude": [{"field": "segment", "operator": "in", "value": [1]}]}
    assert cycle_path(defs) == [1, 2, 3, 1]
    with pytest.raises(SegmentDefinitionError,
                       match=r"cycle: VIP \(#1\) -> #2 -> #3 -> VIP \(#1\)"):
        find_cycle(defs, {1: "VIP"})
    with pytest.raises(SegmentDefinitionError, match="cycle"):
        find_cycle({5: {"include": [{"field": "segment", "operator": "in", "value": [5]}]}})


def test_live_cycle_is_refused() -> None:
    """Facts that reference each other in a loop raise instead of recursing forever."""
    loop = {1: SegmentFacts(1, "A", "dynamic", {"include": [
        {"field": "segment", "operator": "in", "value": [2]}]}),
        2: SegmentFacts(2, "B", "dynamic", {"include": [
            {"field": "segment", "operator": "in", "value": [1]}]})}
    with pytest.raises(SegmentDefinitionError, match=r"A \(#1\) -> B \(#2\) -> A \(#1\)"):
        segment_membership(1, MEMBER, loop, now=NOW)
