"""The pure limits core: validation, counting in rolling and calendar windows (program time
zone), reset times, activation, and the offer statuses' precedence (SPEC §4, §8)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.targeting import evaluate_offer
from webapp.targeting.limits import (
    Activation,
    LimitDefinitionError,
    Usage,
    check_same_count,
    count_limit,
    describe_limit,
    limit_node,
    next_usage_change,
    period_bounds,
    validate_fulfill_days,
    validate_limit,
)

NOW = datetime(2026, 12, 15, 12, 0)


def test_validation_normalizes_and_refuses_with_messages():
    assert validate_limit("global_award_count", {"limit": 5}) == {"limit": 5, "window": None}
    assert validate_limit("membership_activation", {"limit": 1, "window": {"days": 30}}) == {
        "limit": 1, "window": {"days": 30}}
    for bad, words in [
        (("global_activation", {"limit": 1, "window": {"period": "month"}}), "no window"),
        (("membership_award_count", {"limit": True}), "whole number"),
        (("membership_award_count", {"limit": 2, "window": {"days": 3, "period": "day"}}),
         "window is"),
        (("membership_award_count", []), "configuration must be an object"),
        (("award_count", {"limit": 1}), "limit_type must be one of"),
    ]:
        with pytest.raises(LimitDefinitionError, match=words):
            validate_limit(*bad)
    assert validate_fulfill_days(None) is None and validate_fulfill_days(7) == 7
    with pytest.raises(LimitDefinitionError, match="must_fulfill_within_days"):
        validate_fulfill_days(0)
    check_same_count(["global_award_count"], "membership_award_count")
    with pytest.raises(LimitDefinitionError, match="must count the same thing"):
        check_same_count(["global_activation"], "membership_award_count")


def test_describe_limit_in_words():
    assert describe_limit("membership_award_count", {"limit": 3, "window": {"period": "month"}}
                          ) == "at most 3 awards per member per calendar month"
    assert describe_limit("global_activation", {"limit": 1}) == \
        "at most 1 activation over all members"
    assert describe_limit("membership_activation", {"limit": 2, "window": {"days": 30}}) == \
        "at most 2 activations per member in any 30 days"


def test_calendar_month_counts_this_month_and_resets_at_its_end_in_the_zone():
    awards = (datetime(2026, 11, 30, 12), datetime(2026, 12, 1, 9), datetime(2026, 12, 9),
              datetime(2026, 12, 14))
    got = count_limit("membership_award_count", {"limit": 3, "window": {"period": "month"}},
                      Usage(awards=awards), NOW)
    assert (got.used, got.reached, got.resets_at) == (3, True, datetime(2027, 1, 1))
    # in Auckland (UTC+13 in December) 30 November 12:00 UTC is already 1 December
    got = count_limit("membership_award_count", {"limit": 3, "window": {"period": "month"}},
                      Usage(awards=awards), NOW, "Pacific/Auckland")
    assert got.used == 4 and got.resets_at == datetime(2026, 12, 31, 11)
    reached, n = limit_node({"limit_type": "membership_award_count",
                             "configuration": {"limit": 3, "window": {"period": "month"}}},
                            Usage(awards=awards), NOW)
    assert reached and n["passed"] is False and n["actual"] == 3
    assert n["gap"] == "3 of 3 awards this month; resets 1 January 2027"


def test_period_bounds_for_each_period():
    assert period_bounds("day", NOW, "UTC") == (datetime(2026, 12, 15), datetime(2026, 12, 16))
    assert period_bounds("week", NOW, "UTC") == (datetime(2026, 12, 14),
                                                 datetime(2026, 12, 21))  # Monday
    assert period_bounds("year", NOW, "UTC") == (datetime(2026, 1, 1), datetime(2027, 1, 1))


def test_rolling_window_frees_up_when_the_oldest_counted_award_leaves_it():
    awards = (NOW - timedelta(days=10), NOW - timedelta(days=6), NOW - timedelta(days=1))
    config = {"limit": 2, "window": {"days": 7}}
    got = count_limit("membership_award_count", config, Usage(awards=awards), NOW)
    assert got.used == 2 and got.reached
    assert got.resets_at == awards[1] + timedelta(days=7, microseconds=1)
    later = count_limit("membership_award_count", config, Usage(awards=awards), got.resets_at)
    assert later.used == 1 and not later.reached
    at_edge = count_limit("membership_award_count", config, Usage(awards=awards),
                          awards[1] + timedelta(days=7))
    assert at_edge.used == 2  # now - N days <= at: still counted on the boundary


@given(st.lists(st.integers(min_value=0, max_value=60 * 24 * 20), max_size=12),
       st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=10))
def test_rolling_counts_match_a_plain_count_and_reset_is_when_it_drops(minutes, limit, days):
    awards = tuple(NOW - timedelta(minutes=m) for m in minutes)
    config = {"limit": limit, "window": {"days": days}}
    got = count_limit("membership_award_count", config, Usage(awards=awards), NOW)
    assert got.used == sum(1 for a in awards if NOW - timedelta(days=days) <= a <= NOW)
    assert got.reached == (got.used >= limit)
    if got.reached:
        just_before = got.resets_at - timedelta(microseconds=1)
        assert count_limit("membership_award_count", config, Usage(awards=awards),
                           just_before).reached
        assert not count_limit("membership_award_count", config, Usage(awards=awards),
                               got.resets_at).reached


def test_future_dated_activity_is_not_counted_until_its_time():
    usage = Usage(awards=(NOW + timedelta(hours=1),))
    assert count_limit("membership_award_count", {"limit": 1}, usage, NOW).used == 0
    assert next_usage_change([{"limit_type": "membership_award_count",
                               "configuration": {"limit": 1}}], {}, usage, NOW) == \
        NOW + timedelta(hours=1)


def test_activation_limits_do_not_hide_the_offer_from_a_member_holding_an_activation():
    limit = {"limit_type": "global_activation", "configuration": {"limit": 1}}
    held = Usage(activations=(Activation(NOW - timedelta(days=1)),), global_activations=1)
    reached, n = limit_node(limit, held, NOW)
    assert not reached and n["passed"] and "already activated" in n["label"]
    reached, n = limit_node(limit, Usage(global_activations=1), NOW)
    assert reached and n["gap"] == "1 of 1 activations over all members; does not reset"


def _offer(**extra):
    return {"id": 1, "name": "Coffee", **extra}


def _decide(limits=(), usage=None, audiences=(), member=None, **offer):
    return evaluate_offer(_offer(**offer), list(audiences), member or {"birthday": "2015-01-01"},
                          {}, now=NOW, limits=list(limits), usage=usage)


def test_status_precedence_global_member_age_segments_visible():
    kid_age = [{"audience_type": "age_within", "configuration": {"minimum_age": 18}}]
    segs = [{"audience_type": "in_all_segments", "configuration": {"segments": [9]}}]
    g = {"limit_type": "global_award_count", "configuration": {"limit": 1, "window": None}}
    m = {"limit_type": "membership_award_count", "configuration": {"limit": 1, "window": None}}
    both = Usage(awards=(NOW - timedelta(days=1),), global_awards=1)
    assert _decide([g, m], both, kid_age + segs).visible_status == "global_limit"
    assert _decide([m], both, kid_age + segs).visible_status == "member_limit"
    assert _decide([], both, kid_age + segs).visible_status == "age_restricted"
    assert _decide([], both, segs).visible_status == "missing_required_segments"
    d = _decide([g, m], Usage())
    assert d.visible_status == "visible" and d.eligible and d.fulfillment_count == 0
    assert d.must_activate is False and d.activated is None


def test_activation_required_and_missing_is_not_eligible_with_that_reason():
    d = _decide(requires_activation=True)
    assert (d.visible_status, d.eligible, d.reason) == ("visible", False, "activation_required")
    assert (d.must_activate, d.activated) == (True, False)
    active = Usage(activations=(Activation(NOW - timedelta(days=1), NOW + timedelta(days=6)),))
    d = _decide(usage=active, requires_activation=True, must_fulfill_within_days=7)
    assert d.eligible and d.activated is True
    lapsed = Usage(activations=(Activation(NOW - timedelta(days=8), NOW - timedelta(days=1)),))
    d = _decide(usage=lapsed, requires_activation=True, must_fulfill_within_days=7)
    assert d.reason == "activation_required"
    node = next(n for n in d.explanation["children"] if n["kind"] == "activation")
    assert "lapsed on 14 December 2026" in node["gap"]
    used = Usage(activations=(Activation(NOW - timedelta(days=2), None,
                                         NOW - timedelta(days=1)),),
                 awards=(NOW - timedelta(days=1),))
    d = _decide(usage=used, requires_activation=True)
    assert d.activated is False and d.fulfillment_count == 1
    # discontinued and out-of-window still come before the missing activation
    assert _decide(requires_activation=True, discontinued=True).reason == "offer_discontinued"
    assert _decide(requires_activation=True, expire_at=date(2020, 1, 1).isoformat()
                   ).reason == "offer_expired"
