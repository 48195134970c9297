"""Activity windows as time passes: `flask segments refresh` applies a member leaving a window
at the exact boundary (a midnight in the program time zone), with events, and says when the
next such change is due; an activity dated in the future counts from its moment."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.factories import activity_rule, make_member, make_segment
from webapp.extensions import db
from webapp.models import MembershipEvent, Segment
from webapp.services.activities import record
from webapp.services.membership import Cause, next_refresh_at, refresh_all

ZONE = "Europe/Paris"


def _local_midnight_utc(day) -> datetime:
    zone = ZoneInfo(ZONE)
    return datetime.combine(day, time(), tzinfo=zone).astimezone(ZoneInfo("UTC")).replace(
        tzinfo=None)


def test_leaving_the_window_is_applied_at_the_midnight_and_announced(app):
    app.config["TIMEZONE"] = ZONE
    ana = make_member(external_id="ANA")
    # 2026-03-10 23:30 in Paris is 22:30 UTC: that local day counts, not the UTC one.
    bought = datetime(2026, 3, 10, 22, 30)
    segment = make_segment("Bought this week", include=[{
        "field": "activity.count", "operator": ">=", "value": 1,
        "activity": {"type": "purchase", "window": {"days": 7}}}])
    record([{"member": "ANA", "activity_type": "purchase", "external_id": "p1",
             "occurred_at": "2026-03-10T23:30:00+01:00"}], actor="test",
           now=bought + timedelta(minutes=1))
    db.session.expire_all()
    assert db.session.get(Segment, segment.id).size == 1
    # The 7-day window holds 10 March until 16 March included: it leaves at 17 March 00:00
    # Paris time, and not a microsecond earlier.
    leaves = _local_midnight_utc(datetime(2026, 3, 17).date())
    just_before = leaves - timedelta(microseconds=1)
    assert next_refresh_at(just_before - timedelta(hours=1)) == leaves
    assert refresh_all(Cause("rule", "test"), now=just_before) == []
    db.session.commit()
    deltas = refresh_all(Cause("rule", "test"), now=leaves)
    db.session.commit()
    assert [(d.segment_id, d.removed) for d in deltas] == [(segment.id, 1)]
    events = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.segment_id == segment.id).order_by(MembershipEvent.id)).all()
    assert [(e.action, e.source, e.member_id) for e in events] == [
        ("ADD", "activity", ana.id), ("REMOVE", "rule", ana.id)]


def test_an_activity_dated_in_the_future_is_the_next_change(app):
    app.config["TIMEZONE"] = ZONE
    make_member(external_id="BEN")
    make_segment("Visited", include=[{"field": "activity.count", "operator": ">=", "value": 1,
                                      "activity": {"type": "visit"}}])
    now = datetime(2026, 5, 1, 9, 0)
    record([{"member": "BEN", "activity_type": "visit", "external_id": "v1",
             "occurred_at": "2026-05-01T12:00:00Z"}], actor="test", now=now)
    segment = db.session.scalars(select(Segment).where(Segment.name == "Visited")).one()
    assert segment.size == 0  # not yet: it happens at noon
    assert next_refresh_at(now) == datetime(2026, 5, 1, 12, 0)
    refresh_all(Cause("rule", "test"), now=datetime(2026, 5, 1, 12, 0))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Segment, segment.id).size == 1


def test_no_time_dependent_rule_means_no_next_change(app):
    make_segment("Gold", include=[{"field": "tier", "operator": "equals", "value": "gold"}])
    assert next_refresh_at() is None


@pytest.fixture
def refreshes(monkeypatch) -> list[tuple[str, list[str], bool]]:
    """Each re-evaluation recording activities asks for: (segment name, member ids,
    joins_only), in order."""
    from webapp.services import membership

    calls: list[tuple[str, list[str], bool]] = []
    original = membership.refresh_segment_members

    def spy(segment, member_ids, cause, now=None, *, joins_only=False):
        calls.append((segment.name, list(member_ids), joins_only))
        return original(segment, member_ids, cause, now, joins_only=joins_only)

    monkeypatch.setattr(membership, "refresh_segment_members", spy)
    return calls


def test_recording_re_evaluates_only_where_a_criterion_measures_the_activity(app, refreshes):
    """A member is re-evaluated against a segment only when one of the segment's activity
    criteria measures one of the new activities: a backfill older than every window, a
    moment still to come or properties the filter refuses move nobody, and cost nothing."""
    ana = make_member(external_id="ANA")
    week = make_segment("Bought this week", include=[activity_rule(days=7)])
    coffee = make_segment("Coffee this month", include=[activity_rule(days=30, item="coffee")])
    now = datetime(2026, 5, 20, 9, 0)
    calls = refreshes

    def purchase(ext: str, at: datetime, item: str) -> None:
        record([{"member": "ANA", "activity_type": "purchase", "external_id": ext,
                 "occurred_at": at.isoformat() + "Z", "properties": {"item": item}}],
               actor="test", now=now)

    purchase("old", now - timedelta(days=45), "coffee")    # before every window
    purchase("later", now + timedelta(hours=2), "coffee")  # not yet
    assert calls == []
    purchase("tea", now - timedelta(days=10), "tea")       # inside 30 days, but not coffee
    assert calls == []
    purchase("tea2", now - timedelta(days=1), "tea")       # this week: only that segment
    assert [c[:2] for c in calls] == [("Bought this week", [ana.id])]
    purchase("coffee", now - timedelta(days=1), "coffee")  # both
    assert [c[:2] for c in calls[1:]] == [("Bought this week", [ana.id]),
                                          ("Coffee this month", [ana.id])]
    db.session.expire_all()
    assert (db.session.get(Segment, week.id).size, db.session.get(Segment, coffee.id).size) \
        == (1, 1)


def test_members_already_in_stay_where_new_activities_can_only_move_members_in(app,
                                                                              refreshes):
    """"At least one purchase this week" can only gain members by recording purchases, so
    those already in are not re-evaluated; "at most one" can lose them, and does."""
    ana = make_member(external_id="ANA")
    bought = make_segment("Bought this week", include=[activity_rule(days=7)])
    light = make_segment("At most one purchase", include=[activity_rule(operator="<=", days=7)])
    now = datetime(2026, 5, 20, 9, 0)
    for n in (1, 2):
        record([{"member": "ANA", "activity_type": "purchase", "external_id": f"p{n}",
                 "occurred_at": (now - timedelta(hours=n)).isoformat() + "Z"}], actor="test",
               now=now)
    assert [(name, joins_only) for name, _, joins_only in refreshes] == [
        ("Bought this week", True), ("At most one purchase", False)] * 2
    db.session.expire_all()
    events = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.member_id == ana.id).order_by(MembershipEvent.id)).all()
    assert [(e.segment_id, e.action, e.source) for e in events] == [
        (light.id, "ADD", "rule"), (bought.id, "ADD", "activity"),
        (light.id, "REMOVE", "activity")]


def test_joins_only_leaves_the_members_already_in_unevaluated(app):
    """refresh_segment_members(joins_only=True) adds who the rules now take and evaluates no
    member already in (one the rules would drop stays: that is the caller's promise)."""
    from webapp.services.membership import apply_delta, refresh_segment_members

    ana, ben = make_member(external_id="ANA"), make_member(external_id="BEN")
    segment = make_segment("Bought ever", include=[activity_rule()])
    apply_delta(segment, add=[ana.id], remove=[], via="rule", cause=Cause("rule", "test"))
    record([{"member": "BEN", "activity_type": "purchase", "external_id": "b1",
             "occurred_at": "2026-05-01T10:00:00Z"}], actor="test", refresh=False,
           now=datetime(2026, 5, 2))
    now = datetime(2026, 5, 2)
    delta = refresh_segment_members(segment, [ana.id, ben.id], Cause("rule", "test"), now,
                                    joins_only=True)
    assert (delta.added_ids, delta.removed_ids) == ([ben.id], [])
    delta = refresh_segment_members(segment, [ana.id, ben.id], Cause("rule", "test"), now)
    assert (delta.added_ids, delta.removed_ids) == ([], [ana.id])


def test_re_evaluating_a_few_members_is_planned_without_jit(app):
    """PostgreSQL compiles plans whose estimate is high (per-member subqueries over a big
    table) with JIT, ≈25 ms each; the few-member re-evaluation turns it off for its
    transaction only."""
    from sqlalchemy import text

    from webapp.services.membership import refresh_segment_members

    if db.engine.dialect.name != "postgresql":
        pytest.skip("JIT is PostgreSQL's")
    ana = make_member(external_id="ANA")
    segment = make_segment("Bought ever", include=[activity_rule()])
    default = db.session.execute(text("SHOW jit")).scalar()
    refresh_segment_members(segment, [ana.id], Cause("rule", "test"))
    assert db.session.execute(text("SHOW jit")).scalar() == "off"
    db.session.commit()
    assert db.session.execute(text("SHOW jit")).scalar() == default
