"""The decorated offers/rewards cache: a cached answer is byte for byte a fresh computation.

Every kind of change (profile, batch upsert, list edit, upload, override add/block/reset and
expiry, rule edit, segment rename, offer/audience/reward/required-segment create, update and
delete) and time moving past every kind of boundary (publish, expiry, override expiry,
midnight in the program time zone, relative-date criteria) is followed by the same check: for
every member and both routes, what the cache serves equals the response computed with the
cache switched off, at the same clock, and both equal the core's decisions.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.factories import activity_rule, make_member, make_offer, make_reward, make_segment
from webapp.api.serializers import decision_attributes, offer_attributes, reward_attributes
from webapp.extensions import db
from webapp.models import Upload
from webapp.services import decisions as visibility
from webapp.timeutil import utcnow

ZONE = "Pacific/Auckland"


class Clock:
    """The time the visibility loader sees (the same for cached and fresh answers)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app, monkeypatch):
    app.config["TIMEZONE"] = ZONE
    visibility.RESULTS.clear()
    got = Clock(utcnow())
    monkeypatch.setattr(visibility, "utcnow", got)
    return got


def _get(api, path: str, *, cache: bool) -> bytes:
    app = api.client.application
    before = app.config.get("VISIBILITY_CACHE_BYTES")
    app.config["VISIBILITY_CACHE_BYTES"] = visibility.DEFAULT_CACHE_BYTES if cache else 0
    try:
        response = api.get(path)
    finally:
        app.config["VISIBILITY_CACHE_BYTES"] = before
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data()


def _core(member_id: str, kind: str, now: datetime) -> list[dict]:
    """The same data from the core over ORM objects, without any cache."""
    from webapp.models import Member

    db.session.expire_all()
    member = db.session.get(Member, member_id)
    if kind == "offers":
        pairs, own = visibility.member_offers(member, now=now), offer_attributes
    else:
        pairs, own = visibility.member_rewards(member, now=now), reward_attributes
    return [{"type": kind, "id": str(item.id), "attributes": {
        **own(item), **decision_attributes(d)}} for item, d in pairs]


def check(api, clock: Clock, members: list, stats: dict) -> None:
    """Cached == fresh (bytes) == the core (data), for every member and both routes."""
    for member in members:
        for kind in ("offers", "rewards"):
            path = f"/members/{member.id}/{kind}"
            hits = visibility.RESULTS.hits
            first = _get(api, path, cache=True)
            second = _get(api, path, cache=True)
            fresh = _get(api, path, cache=False)
            assert first == fresh, (kind, member.external_id, clock.now)
            assert second == fresh, (kind, member.external_id, clock.now)
            stats["hits"] += visibility.RESULTS.hits - hits
            stats["checks"] += 1
            assert json.loads(fresh)["data"] == json.loads(json.dumps(
                _core(member.id, kind, clock.now))), (kind, member.external_id)


def _override(api, segment, member, status: str, **extra) -> None:
    response = api.post(f"/segments/{segment.id}/overrides", {"data": {
        "type": "overrides", "attributes": {"member": member.id, "status": status,
                                            "description": f"test {status}", **extra}}})
    assert response.status_code == 200, response.get_data(as_text=True)


def _upload(client, auth, segment, member) -> None:
    auth.login("marketer")
    form = {"file": (io.BytesIO(f"email\n{member.email}\n".encode()), "list.csv"),
            "mode": "add", "header": "auto"}
    response = client.post(f"/segments/{segment.id}/uploads", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)
    upload = db.session.query(Upload).order_by(Upload.id.desc()).first()
    applied = client.post(f"/segments/{segment.id}/uploads/{upload.id}/apply")
    assert applied.status_code in (200, 303), applied.get_data(as_text=True)
    client.post("/logout")


def _next_midnight(now: datetime) -> datetime:
    zone = ZoneInfo(ZONE)
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=zone)
    return midnight.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def test_cached_answers_equal_fresh_ones_through_every_kind_of_change(
        app, api, client, auth, clock):
    start = clock.now
    local_today = start.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(ZONE)).date()
    tomorrow = local_today + timedelta(days=1)
    turns_18 = make_member(external_id="T18", tier="gold", points=100,
                           birthday=date(tomorrow.year - 18, tomorrow.month, tomorrow.day)
                           if (tomorrow.month, tomorrow.day) != (2, 29) else date(2000, 3, 1),
                           created_at=start - timedelta(days=1, minutes=-90))
    plain = make_member(external_id="PLAIN", tier="bronze", points=5, birthday=None,
                        created_at=start - timedelta(days=3, hours=5))
    target = make_member(external_id="TARGET", tier="silver", points=80,
                         custom_fields={"vip": True}, created_at=start - timedelta(hours=20))
    members = [turns_18, plain, target]
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    recent = make_segment("Recent", include=[{"field": "created_at", "operator": ">=",
                                              "value": {"days_ago": 1}}])
    staff = make_segment("Staff", kind="static")
    nested = make_segment("Gold with points", include=[
        {"field": "segment", "operator": "in", "value": [gold.id]},
        {"field": "points", "operator": ">=", "value": 50}])
    make_offer("Adults", audiences=[("age_within", {"minimum_age": 18, "maximum_age": None})])
    make_offer("Staff or recent", audiences=[("in_any_segment",
                                              {"segments": [staff.id, recent.id]})])
    make_offer("Gold launch", audiences=[("in_all_segments", {"segments": [gold.id, nested.id]})],
               publish_at=start + timedelta(hours=3), expire_at=start + timedelta(days=10))
    make_offer("Everyone, briefly", expire_at=start + timedelta(hours=5))
    make_reward("Gold mug", required=[gold], points=50)
    make_reward("Staff lunch", required=[staff, recent], publish_at=start - timedelta(days=1))
    stats = {"hits": 0, "checks": 0}
    check(api, clock, members, stats)

    # profile changes: PATCH and batch upsert
    assert api.patch(f"/members/{turns_18.id}", {"data": {
        "type": "members", "attributes": {"points": 10}}}).status_code == 200
    check(api, clock, members, stats)
    batch = api.post("/members/batch", {"data": [{"type": "members", "attributes": {
        "external_id": "PLAIN", "tier": "gold"}}]})
    assert batch.get_json()["meta"]["counts"]["updated"] == 1
    check(api, clock, members, stats)

    # list edits: add, remove, upload
    api.post(f"/segments/{staff.id}/relationships/members",
             {"data": [{"type": "members", "id": plain.id}]})
    check(api, clock, members, stats)
    api.delete(f"/segments/{staff.id}/relationships/members",
               {"data": [{"type": "members", "id": plain.id}]})
    check(api, clock, members, stats)
    _upload(client, auth, staff, target)
    check(api, clock, members, stats)

    # overrides: add (with an expiry), block, reset
    expires = start + timedelta(hours=2)
    _override(api, recent, plain, "add", expires_at=expires.isoformat() + "Z")
    check(api, clock, members, stats)
    _override(api, gold, target, "block")
    check(api, clock, members, stats)
    _override(api, gold, target, "reset")
    check(api, clock, members, stats)

    # time alone: before and past the override's expiry, then the expiry applied
    clock.now = start + timedelta(hours=1)
    check(api, clock, members, stats)
    clock.now = expires + timedelta(seconds=1)
    check(api, clock, members, stats)
    from webapp.services.overrides import apply_expiries

    assert apply_expiries(actor="test", now=clock.now) == 1
    db.session.commit()
    check(api, clock, members, stats)

    # past the offer's publish time and the other's expiry
    clock.now = start + timedelta(hours=3)
    check(api, clock, members, stats)
    clock.now = start + timedelta(hours=5, microseconds=1)
    check(api, clock, members, stats)

    # rule edit and segment rename
    assert api.patch(f"/segments/{gold.id}", {"data": {"type": "segments", "id": str(gold.id),
                     "attributes": {"include": [{"field": "tier", "operator": "in",
                                                 "value": ["gold", "silver"]}]}}}
                     ).status_code == 200
    check(api, clock, members, stats)
    assert api.patch(f"/segments/{staff.id}", {"data": {"type": "segments", "id": str(staff.id),
                     "attributes": {"name": "Staff and family"}}}).status_code == 200
    check(api, clock, members, stats)

    # offers and audiences: create, update, delete
    offer = api.post("/offers", {"data": {"type": "offers", "attributes": {
        "name": "New offer", "category": "new"}}}).get_json()["data"]
    check(api, clock, members, stats)
    api.patch(f"/offers/{offer['id']}", {"data": {"type": "offers", "id": offer["id"],
              "attributes": {"description": "Changed", "discontinued": True}}})
    check(api, clock, members, stats)
    audience = api.post("/audiences", {"data": {
        "type": "audiences", "attributes": {"audience_type": "in_any_segment",
                                            "configuration": {"segments": [nested.id]}},
        "relationships": {"offer": {"data": {"type": "offers", "id": offer["id"]}}}}}
    ).get_json()["data"]
    check(api, clock, members, stats)
    assert api.delete(f"/audiences/{audience['id']}").status_code == 204
    check(api, clock, members, stats)
    assert api.delete(f"/offers/{offer['id']}").status_code == 204
    check(api, clock, members, stats)

    # rewards and required segments: create, update, link, unlink, delete
    reward = api.post("/rewards", {"data": {"type": "rewards", "attributes": {
        "name": "New reward", "points": 20}}}).get_json()["data"]
    check(api, clock, members, stats)
    api.patch(f"/rewards/{reward['id']}", {"data": {"type": "rewards", "id": reward["id"],
              "attributes": {"points": 5}}})
    check(api, clock, members, stats)
    api.post(f"/rewards/{reward['id']}/relationships/required_segments",
             {"data": [{"type": "segments", "id": str(recent.id)}]})
    check(api, clock, members, stats)
    api.delete(f"/rewards/{reward['id']}/relationships/required_segments",
               {"data": [{"type": "segments", "id": str(recent.id)}]})
    check(api, clock, members, stats)
    assert api.delete(f"/rewards/{reward['id']}").status_code == 204
    check(api, clock, members, stats)

    # midnight in the program time zone (a birthday), then days for the relative criterion
    midnight = _next_midnight(clock.now)
    clock.now = midnight - timedelta(microseconds=1)
    check(api, clock, members, stats)
    clock.now = midnight
    check(api, clock, members, stats)
    for hours in (7, 30, 75):
        clock.now = midnight + timedelta(hours=hours)
        check(api, clock, members, stats)
    # The cache did serve: the second request of every check with unchanged inputs hits.
    assert stats["hits"] >= stats["checks"], stats


def test_a_hit_shows_the_moment_of_the_request(app, api, clock):
    make_member(external_id="M1")
    make_offer("Open", publish_at=clock.now - timedelta(days=1))
    make_reward("Mug", points=10)
    first = _get(api, "/members/M1/offers", cache=True)
    hits = visibility.RESULTS.hits
    clock.now += timedelta(minutes=3)
    second = _get(api, "/members/M1/offers", cache=True)
    assert visibility.RESULTS.hits == hits + 1
    assert first != second
    assert second == _get(api, "/members/M1/offers", cache=False)
    window = [n for n in json.loads(second)["data"][0]["attributes"]["reasons"]["children"]
              if n["kind"] == "window"]
    assert window[0]["actual"] == clock.now.isoformat()


def test_a_member_value_that_looks_like_the_moment_is_not_cached(app, api, clock):
    clock.now = clock.now.replace(microsecond=123456)
    make_member(external_id="M2", custom_fields={"note": clock.now.isoformat()})
    make_segment("Noted", include=[{"field": "custom_fields.note", "operator": "exists"}])
    segment = make_segment("Noted 2", include=[{"field": "custom_fields.note",
                                                "operator": "equals", "value": "x"}])
    make_offer("Noted", audiences=[("in_any_segment", {"segments": [segment.id]})])
    body = _get(api, "/members/M2/offers", cache=True)
    assert body.count(json.dumps(clock.now.isoformat()).encode()) == 2
    assert len(visibility.RESULTS) == 0
    assert _get(api, "/members/M2/offers", cache=True) == body


def test_catalog_token_changes_with_every_kind_of_catalog_write(app):
    import sqlalchemy as sa

    from webapp.models import (
        Audience,
        Offer,
        OfferLimit,
        Reward,
        RewardRequiredSegment,
        Segment,
    )

    tokens = [visibility.catalog_token()]

    def changed() -> bool:
        db.session.commit()
        tokens.append(visibility.catalog_token())
        return tokens[-1] != tokens[-2]

    assert tokens[0] is not None
    segment = make_segment("S", include=[{"field": "points", "operator": ">", "value": 1}])
    assert tokens[-1] != visibility.catalog_token() or changed()
    changed()
    db.session.execute(sa.update(Segment).where(Segment.id == segment.id).values(size=99))
    assert not changed(), "a segment's size is not part of the catalog"
    db.session.execute(sa.update(Segment).where(Segment.id == segment.id).values(
        include=[{"field": "points", "operator": ">", "value": 2}]))
    assert changed()
    db.session.execute(sa.update(Segment).where(Segment.id == segment.id).values(name="T"))
    assert changed()
    offer = make_offer("O")
    changed()
    db.session.execute(sa.update(Offer).values(description="bulk"))
    assert changed()
    db.session.execute(sa.insert(Audience).values(offer_id=offer.id, audience_type="age_within",
                                                  configuration={"minimum_age": 3}))
    assert changed()
    db.session.execute(sa.delete(Audience))
    assert changed()
    reward = make_reward("R")
    changed()
    db.session.execute(sa.insert(RewardRequiredSegment).values(reward_id=reward.id,
                                                               segment_id=segment.id))
    assert changed()
    db.session.execute(sa.delete(RewardRequiredSegment))
    assert changed()
    db.session.execute(sa.update(Reward).values(points=7))
    assert changed()
    offer = make_offer("P")
    changed()
    db.session.execute(sa.insert(OfferLimit).values(
        offer_id=offer.id, limit_type="global_award_count",
        configuration={"limit": 3, "window": None}))
    assert changed()
    db.session.execute(sa.delete(OfferLimit))
    assert changed()
    db.session.execute(sa.delete(Offer))
    assert changed()
    # a rolled-back change leaves the token as it was
    before = visibility.catalog_token()
    db.session.execute(sa.update(Reward).values(points=8))
    db.session.rollback()
    assert visibility.catalog_token() == before


def test_relative_boundary_is_when_the_gap_text_moves():
    from webapp.targeting.gaps import _duration

    now = datetime(2026, 6, 1, 12)
    for created in (now - timedelta(days=3, hours=5), now - timedelta(hours=20, seconds=7),
                    now - timedelta(days=1, minutes=-90), now - timedelta(days=1, seconds=30),
                    now - timedelta(days=9)):
        until = visibility._relative_boundary(created, 1, now)

        def text(t: datetime, c=created) -> tuple[int, str]:
            delta = (t - timedelta(days=1)) - c
            sign = (delta > timedelta(0)) - (delta < timedelta(0))
            return sign, _duration(abs(delta))

        if until == now:  # exactly on a step (8 days, 30 seconds): the text moves at once
            assert text(now + timedelta(microseconds=1)) != text(now)
            continue
        # constant up to the boundary, and the boundary is where it moves
        span = until - now
        for k in range(0, 101):
            assert text(now + span * k / 100 - (timedelta(microseconds=1) if k == 100
                                                 else timedelta(0))) == text(now)
        assert text(until) != text(now) or text(until + timedelta(microseconds=1)) != text(now)


def test_cached_answers_follow_activations_fulfillments_redemptions_and_window_resets(
        app, api, clock, monkeypatch):
    """The member's counts key the cache: activations, awards (own and, for a global limit,
    anyone's), redemptions and cancellations, and time moving a limit's window on (a rolling
    window letting an award go, a calendar period ending) or an activation lapsing."""
    from webapp.services import offer_activity as activity
    from webapp.services import redemptions
    from webapp.targeting.limits import period_bounds

    monkeypatch.setattr(activity, "utcnow", clock)
    monkeypatch.setattr(redemptions, "utcnow", clock)
    start = clock.now
    ana = make_member(external_id="ANA", points=300)
    ben = make_member(external_id="BEN", points=50)
    members = [ana, ben]
    weekly = make_offer("Weekly coffee")
    monthly = make_offer("Monthly treat")
    launch = make_offer("Launch", requires_activation=True, must_fulfill_within_days=2)
    mug = make_reward("Mug", points=100)
    stats = {"hits": 0, "checks": 0}

    def limit(offer, limit_type, n, window=None):
        config = {"limit": n, **({"window": window} if window else {})}
        assert api.post("/limits", {"data": {
            "type": "limits", "attributes": {"limit_type": limit_type, "configuration": config},
            "relationships": {"offer": {"data": {"type": "offers", "id": str(offer.id)}}}}}
        ).status_code == 201

    def fulfill(member, offer, ref):
        response = api.post(f"/members/{member.id}/offers/{offer.id}/fulfillments", {"data": {
            "type": "fulfillments", "attributes": {"external_id": ref}}})
        assert response.status_code == 201, response.get_json()

    limit(weekly, "membership_award_count", 1, {"days": 7})
    limit(monthly, "membership_award_count", 1, {"period": "month"})
    limit(launch, "global_activation", 1)
    check(api, clock, members, stats)
    fulfill(ana, weekly, "w-1")
    check(api, clock, members, stats)
    fulfill(ana, monthly, "m-1")
    check(api, clock, members, stats)
    # an activation by BEN reaches the global limit: ANA's answer changes too
    assert api.post(f"/members/{ben.id}/offers/{launch.id}/activation").status_code == 201
    check(api, clock, members, stats)
    assert [d["attributes"]["visible_status"] for d in json.loads(
        _get(api, f"/members/{ana.id}/offers", cache=True))["data"]
        if d["id"] == str(launch.id)] == ["global_limit"]
    # a redemption and its cancellation (points debited, then refunded)
    redeemed = api.post("/redemptions", {"data": {"type": "redemptions", "attributes": {
        "member": ana.id, "reward": str(mug.id)}}})
    assert redeemed.status_code == 201
    check(api, clock, members, stats)
    assert api.patch(f"/redemptions/{redeemed.get_json()['data']['id']}/cancel"
                     ).status_code == 200
    check(api, clock, members, stats)
    # BEN's activation lapses after two days (and the global count still holds)
    clock.now = start + timedelta(days=2, seconds=1)
    check(api, clock, members, stats)
    # the rolling week lets ANA's award go: just before, at, and after
    clock.now = start + timedelta(days=7)
    check(api, clock, members, stats)
    clock.now = start + timedelta(days=7, microseconds=1)
    check(api, clock, members, stats)
    # the calendar month (in the program time zone) ends
    _, month_end = period_bounds("month", start, ZONE)
    if month_end > clock.now:
        clock.now = month_end - timedelta(microseconds=1)
        check(api, clock, members, stats)
    clock.now = max(clock.now, month_end)
    check(api, clock, members, stats)
    assert [d["attributes"]["visible_status"] for d in json.loads(
        _get(api, f"/members/{ana.id}/offers", cache=True))["data"]
        if d["id"] in (str(weekly.id), str(monthly.id))] == ["visible", "visible"]
    assert stats["hits"] >= stats["checks"], stats


def test_cached_answers_follow_activities_and_their_windows(app, api, clock, monkeypatch):
    """A member's activities key the cache (a new purchase changes the answer at once), and
    time moving a `days` window on (an activity leaving it at a midnight in the program time
    zone) or reaching an activity dated in the future ends a cached answer."""
    from webapp.services import activities

    start = clock.now
    ana = make_member(external_id="ANA")
    ben = make_member(external_id="BEN")
    members = [ana, ben]
    regulars = make_segment("Regulars", include=[activity_rule(value=2, days=2)])
    spenders = make_segment("Spenders", include=[activity_rule("sum", value=10, days=2,
                                                               item="coffee")])
    make_offer("Regulars' treat", audiences=[("in_any_segment", {"segments": [regulars.id]})])
    make_reward("Spenders' mug", required=[spenders])
    stats = {"hits": 0, "checks": 0}

    def buy(member, ref, when, amount=6):
        activities.record([{"member": member.id, "activity_type": "purchase",
                            "external_id": ref, "amount": amount,
                            "properties": {"item": "coffee"},
                            "occurred_at": when.isoformat() + "Z"}], actor="test")

    check(api, clock, members, stats)
    buy(ana, "a-1", start - timedelta(minutes=5))
    check(api, clock, members, stats)
    buy(ana, "a-2", start - timedelta(minutes=4))
    check(api, clock, members, stats)
    offers = json.loads(_get(api, f"/members/{ana.id}/offers", cache=True))["data"]
    assert offers[0]["attributes"]["visible_status"] == "visible"
    # BEN's second purchase is dated an hour ahead: counted only once that hour comes.
    buy(ben, "b-1", start - timedelta(minutes=3))
    buy(ben, "b-2", start + timedelta(hours=1))
    check(api, clock, members, stats)
    clock.now = start + timedelta(hours=1, seconds=1)
    check(api, clock, members, stats)
    ben_offers = json.loads(_get(api, f"/members/{ben.id}/offers", cache=True))["data"]
    assert ben_offers[0]["attributes"]["visible_status"] == "visible"
    # Two midnights later both members' purchases have left the 2-day window.
    clock.now = _next_midnight(_next_midnight(start)) + timedelta(seconds=1)
    check(api, clock, members, stats)
    offers = json.loads(_get(api, f"/members/{ana.id}/offers", cache=True))["data"]
    assert offers[0]["attributes"]["visible_status"] == "missing_required_segments"
    assert stats["hits"] > 0


def test_a_hit_reads_one_statement_and_every_reference_gets_the_same_answer(app, api, clock):
    """A member id reads the member and every input of the key in one statement; an external
    id, an email or a 36-character external id (not an id) find the same member, a reference
    nobody has is the member routes' 404."""
    from sqlalchemy import event

    member = make_member(external_id="REF-1", email="ref@example.com", tier="gold")
    uuid_like = make_member(external_id="f" * 8 + "-0000-4000-8000-" + "0" * 12)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    staff = make_segment("Staff", kind="static")
    make_offer("Gold", audiences=[("in_any_segment", {"segments": [gold.id, staff.id]})])
    make_reward("Mug", required=[gold], points=10)
    api.post(f"/segments/{staff.id}/relationships/members",
             {"data": [{"type": "members", "id": member.id}]})
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    for kind in ("offers", "rewards"):
        by_id = _get(api, f"/members/{member.id}/{kind}", cache=True)
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert _get(api, f"/members/{member.id}/{kind}", cache=True) == by_id
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert len(statements) == 1, statements
        statements.clear()
        for reference in ("REF-1", "ref@example.com", " REF@example.com "):
            got = json.loads(_get(api, f"/members/{reference}/{kind}", cache=True))
            assert (got["data"], got["meta"]) == (json.loads(by_id)["data"],
                                                  json.loads(by_id)["meta"])
        other = json.loads(_get(api, f"/members/{uuid_like.external_id}/{kind}", cache=True))
        assert other["meta"]["member_id"] == uuid_like.id
        assert api.get(f"/members/{'0' * 36}/{kind}").status_code == 404
        assert api.get(f"/members/nobody@example.com/{kind}").status_code == 404
