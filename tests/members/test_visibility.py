"""Visibility precedence (SPEC §4) through webapp.services.decisions against the database."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import add_to_list, make_member, make_offer, make_reward, make_segment
from webapp.extensions import db
from webapp.models import Override
from webapp.services import decisions as visibility

NOW = datetime(2026, 6, 15, 12, 0)
TODAY = NOW.date()


def _override(segment, member, status, description="test reason", actor="Ada Admin",
              expires_at=None):
    db.session.add(Override(segment_id=segment.id, member_id=member.id, status=status,
                            description=description, actor_label=actor,
                            status_change_timestamp=NOW - timedelta(days=3),
                            expires_at=expires_at))
    db.session.commit()


def _offer_status(member, offer, **kw):
    d = visibility.offer_decision(member, offer, now=NOW, **kw)
    return d.visible_status, d.eligible, d.reason


def _reward_status(member, reward, **kw):
    d = visibility.reward_decision(member, reward, now=NOW, **kw)
    return d.visible_status, d.eligible, d.reason


# --- offers ---------------------------------------------------------------------------------


def test_offer_without_audiences_is_visible_and_eligible(app):
    member = make_member()
    offer = make_offer()
    assert _offer_status(member, offer) == ("visible", True, "eligible")


@pytest.mark.parametrize(("birthday", "config", "expected"), [
    (date(2008, 6, 15), {"minimum_age": 18, "maximum_age": None}, "visible"),   # 18 today
    (date(2008, 6, 16), {"minimum_age": 18, "maximum_age": None}, "age_restricted"),
    (date(2000, 6, 16), {"minimum_age": None, "maximum_age": 25}, "visible"),   # 25 until 26th
    (date(2000, 6, 15), {"minimum_age": None, "maximum_age": 25}, "age_restricted"),
    (None, {"minimum_age": 0, "maximum_age": None}, "age_restricted"),          # no birthday
    (date(1990, 1, 1), {"minimum_age": 30, "maximum_age": 40}, "visible"),
])
def test_age_within_is_inclusive(app, birthday, config, expected):
    member = make_member(birthday=birthday)
    offer = make_offer(audiences=[("age_within", config)])
    assert _offer_status(member, offer)[0] == expected


def test_leap_day_birthday_turns_older_on_first_of_march(app):
    member = make_member(birthday=date(2008, 2, 29))
    offer = make_offer(audiences=[("age_within", {"minimum_age": 18, "maximum_age": None})])
    feb28 = visibility.offer_decision(member, offer, now=datetime(2026, 2, 28, 12))
    mar1 = visibility.offer_decision(member, offer, now=datetime(2026, 3, 1, 12))
    assert (feb28.visible_status, mar1.visible_status) == ("age_restricted", "visible")
    assert visibility.near_misses(feb28.explanation)[0].startswith("turns 18 in 1 day")


def test_age_restriction_wins_over_missing_segments(app):
    member = make_member(birthday=date(2015, 1, 1), tier="bronze")
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    offer = make_offer(audiences=[("in_all_segments", {"segments": [gold.id]}),
                                  ("age_within", {"minimum_age": 18, "maximum_age": None})])
    assert _offer_status(member, offer) == ("age_restricted", False, "age_restricted")


def test_in_all_segments_needs_every_segment(app):
    member = make_member(tier="gold", points=50)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    rich = make_segment("Rich", include=[{"field": "points", "operator": ">=", "value": 170}])
    offer = make_offer(audiences=[("in_all_segments", {"segments": [gold.id, rich.id]})])
    decision = visibility.offer_decision(member, offer, now=NOW)
    assert (decision.visible_status, decision.eligible) == ("missing_required_segments", False)
    assert "Rich: needs 120 more points" in visibility.near_misses(decision.explanation)
    either = make_offer(audiences=[("in_any_segment", {"segments": [gold.id, rich.id]})])
    assert _offer_status(member, either) == ("visible", True, "eligible")


def test_static_list_and_overrides_decide_segment_membership(app):
    listed, unlisted, blocked, added = (make_member(tier="bronze") for _ in range(4))
    beta = make_segment("Beta", kind="static")
    add_to_list(beta, listed)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    _override(gold, added, "add")
    blocked.tier = "gold"
    db.session.commit()
    _override(gold, blocked, "block", description="Chargeback dispute", actor="Ada Admin")
    beta_offer = make_offer(audiences=[("in_any_segment", {"segments": [beta.id]})])
    gold_offer = make_offer(audiences=[("in_all_segments", {"segments": [gold.id]})])
    assert _offer_status(listed, beta_offer)[0] == "visible"
    assert _offer_status(unlisted, beta_offer)[0] == "missing_required_segments"
    assert _offer_status(added, gold_offer)[0] == "visible"
    decision = visibility.offer_decision(blocked, gold_offer, now=NOW)
    assert decision.visible_status == "missing_required_segments"
    misses = visibility.near_misses(decision.explanation)
    assert misses == ["Gold: blocked by override: Chargeback dispute (Ada Admin, 2026-06-12)"]


def test_expired_override_no_longer_applies(app):
    member = make_member(tier="bronze")
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    _override(gold, member, "add", expires_at=NOW - timedelta(hours=1))
    offer = make_offer(audiences=[("in_all_segments", {"segments": [gold.id]})])
    assert _offer_status(member, offer)[0] == "missing_required_segments"


def test_segment_criteria_reaching_other_segments_are_loaded(app):
    member = make_member(tier="gold", custom_fields={"vip": True})
    vip = make_segment("VIP", include=[{"field": "custom_fields.vip", "operator": "equals",
                                        "value": True}])
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    both = make_segment("Gold VIP", include=[
        {"field": "segment", "operator": "in", "value": [vip.id]},
        {"field": "segment", "operator": "in", "value": [gold.id]}])
    offer = make_offer(audiences=[("in_all_segments", {"segments": [both.id]})])
    assert _offer_status(member, offer)[0] == "visible"
    # what-if: losing the VIP flag drops the member out of the nested segment
    assert _offer_status(member, offer, attributes={"custom_fields": {}})[0] == \
        "missing_required_segments"


@pytest.mark.parametrize(("kw", "reason"), [
    ({"discontinued": True}, "offer_discontinued"),
    ({"publish_at": NOW + timedelta(days=2)}, "offer_not_published"),
    ({"expire_at": NOW - timedelta(seconds=1)}, "offer_expired"),
    ({"publish_at": NOW - timedelta(days=1), "expire_at": NOW + timedelta(days=1)}, "eligible"),
])
def test_offer_eligibility_needs_active_window(app, kw, reason):
    member = make_member()
    offer = make_offer(**kw)
    status, eligible, got = _offer_status(member, offer)
    assert (status, eligible, got) == ("visible", reason == "eligible", reason)
    misses = visibility.near_misses(visibility.offer_decision(member, offer, now=NOW).explanation)
    assert misses == {"offer_discontinued": ["offer is discontinued"],
                      "offer_not_published": ["not published until 2026-06-17 12:00 UTC"],
                      "offer_expired": ["expired on 2026-06-15 11:59 UTC"],
                      "eligible": []}[reason]


def test_member_offers_loads_everything_in_a_handful_of_queries(app):
    member = make_member(tier="gold")
    segs = [make_segment(f"S{i}", include=[{"field": "points", "operator": ">=", "value": i}])
            for i in range(5)]
    for i in range(30):
        make_offer(audiences=[("in_any_segment", {"segments": [segs[i % 5].id]}),
                              ("age_within", {"minimum_age": i % 40, "maximum_age": None})])
    for i in range(20):
        make_reward(required=segs[: i % 4], points=i * 10)
    statements = []

    from sqlalchemy import event

    def count(*args):
        statements.append(args[2])

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        catalog = visibility.load_catalog()
        explainer = visibility.explainer(member, catalog, now=NOW)
        offers, rewards = explainer.offers(), explainer.rewards()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(offers) == 30 and len(rewards) == 20
    # 8, and since offer limits: the limits and the member's activity (one query each)
    assert len(statements) <= 10, statements


# --- rewards --------------------------------------------------------------------------------


def test_reward_precedence_discontinued_expired_segments(app):
    member = make_member(points=10)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    expired_window = {"expire_at": NOW - timedelta(days=1)}
    cases = [
        (make_reward(required=[gold], discontinued=True, **expired_window, points=500),
         ("reward_discontinued", False, "reward_discontinued")),
        (make_reward(required=[gold], **expired_window, points=500),
         ("reward_expired", False, "reward_expired")),
        (make_reward(required=[gold], publish_at=NOW + timedelta(days=1)),
         ("reward_expired", False, "reward_expired")),
        (make_reward(required=[gold], points=0),
         ("missing_required_segments", False, "missing_required_segments")),
        (make_reward(points=130), ("visible", False, "insufficient_points")),
        (make_reward(points=10), ("visible", True, "eligible")),
    ]
    for reward, expected in cases:
        assert _reward_status(member, reward) == expected, reward.name


def test_reward_near_miss_says_how_many_points(app):
    member = make_member(points=30)
    reward = make_reward(points=150)
    decision = visibility.reward_decision(member, reward, now=NOW)
    assert visibility.near_misses(decision.explanation) == ["needs 120 more points"]


def test_reward_required_segments_all_needed(app):
    member = make_member(tier="gold", points=1000)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    staff = make_segment("Staff", kind="static")
    reward = make_reward(required=[gold, staff], points=100)
    assert _reward_status(member, reward)[0] == "missing_required_segments"
    add_to_list(staff, member)
    assert _reward_status(member, reward) == ("visible", True, "eligible")


def test_what_if_changes_decisions_and_saves_nothing(app):
    member = make_member(tier="bronze", points=10)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    reward = make_reward(required=[gold], points=100)
    offer = make_offer(audiences=[("in_all_segments", {"segments": [gold.id]})])
    attrs = {"tier": "gold", "points": 500}
    rewards = dict(visibility.member_rewards(member, now=NOW, attributes=attrs))
    offers = dict(visibility.member_offers(member, now=NOW, attributes=attrs))
    assert rewards[reward].eligible and offers[offer].eligible
    db.session.expire_all()
    assert (member.tier, member.points) == ("bronze", 10)
    from webapp.models import SegmentMembership

    assert db.session.scalar(select(func.count()).select_from(SegmentMembership)) == 0
    assert not visibility.reward_decision(member, reward, now=NOW).eligible


def test_shared_segment_evaluation_gives_the_cores_exact_decisions(app):
    from webapp.targeting import evaluate_offer, evaluate_reward

    members = [make_member(tier=t, points=p, birthday=b, custom_fields=c) for t, p, b, c in (
        ("gold", 5000, date(1990, 1, 1), {"vip": True}),
        ("bronze", 10, None, {}),
        ("platinum", 200, date(2010, 6, 16), {"vip": False}),
    )]
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "in",
                                          "value": ["gold", "platinum"]}])
    vip = make_segment("VIP", include=[{"field": "custom_fields.vip", "operator": "equals",
                                        "value": True}])
    nested = make_segment("Gold VIP", include=[
        {"field": "segment", "operator": "in", "value": [vip.id]},
        {"field": "segment", "operator": "in", "value": [gold.id]}])
    staff = make_segment("Staff", kind="static")
    add_to_list(staff, members[1])
    _override(vip, members[2], "add", description="Press partner")
    make_offer("all", audiences=[("in_all_segments", {"segments": [gold.id, nested.id]}),
                                 ("age_within", {"minimum_age": 18, "maximum_age": None})])
    make_offer("any", audiences=[("in_any_segment", {"segments": [staff.id, nested.id]})])
    make_offer("none")
    make_reward("r1", required=[gold, vip], points=100)
    make_reward("r2", required=[staff], points=0, expire_at=NOW - timedelta(days=1))
    catalog = visibility.load_catalog()
    for member in members:
        explainer = visibility.explainer(member, catalog, now=NOW)
        for offer, fast in explainer.offers():
            slow = evaluate_offer(visibility.offer_data(offer), catalog.audiences.get(offer.id, []),
                                  explainer.attributes, explainer.facts, now=NOW)
            assert fast == slow, (member.tier, offer.name)
        for reward, fast in explainer.rewards():
            slow = evaluate_reward(visibility.reward_data(reward), catalog.required.get(
                reward.id, []), explainer.attributes, explainer.facts, now=NOW)
            assert fast == slow, (member.tier, reward.name)
