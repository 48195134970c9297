"""As-of decisions (GET /members/{id}/offers?as_of=…): the answer replayed for any past moment
is, byte for byte, the answer that was computed live at that moment; the present replays to the
live answer; moments without an exact answer are refused."""

from __future__ import annotations

import itertools
import json
import time
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_member, make_offer, make_reward, make_segment
from webapp.extensions import db
from webapp.models import OfferLimit
from webapp.services import decisions
from webapp.timeutil import utcnow


def _live(api, member_id: str, kind: str, moment) -> bytes:
    """The live answer at `moment` (no cache), as the route renders it."""
    from functools import partial

    from webapp.api.serializers import decorated_items
    from webapp.services.lookup import member_row

    app = api.client.application
    before = app.config.get("VISIBILITY_CACHE_BYTES")
    app.config["VISIBILITY_CACHE_BYTES"] = 0
    try:
        db.session.expire_all()
        data, _ = decisions.decorated(member_row(member_id), kind,
                                      partial(decorated_items, kind), now=moment)
    finally:
        app.config["VISIBILITY_CACHE_BYTES"] = before
    db.session.rollback()
    return data


def _as_of(api, member_id: str, kind: str, moment) -> bytes:
    response = api.get(f"/members/{member_id}/{kind}?as_of={moment.isoformat()}Z")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["meta"]["as_of"] == moment.isoformat() + "Z"
    return json.dumps(body["data"], separators=(",", ":")).encode()


def _norm(data: bytes) -> bytes:
    return json.dumps(json.loads(data), separators=(",", ":")).encode()


def _world(n: int = 0):
    gold = make_segment(f"Gold {n}", include=[{"field": "tier", "operator": "equals",
                                               "value": "gold"}])
    staff = make_segment(f"Staff {n}", kind="static")
    make_offer(f"Gold treat {n}", audiences=[("in_any_segment", {"segments": [gold.id]})])
    make_offer(f"Staff lunch {n}", audiences=[("in_any_segment", {"segments": [staff.id]})])
    make_reward(f"Mug {n}", required=[gold], points=100)
    buyers = make_segment(f"Buyers {n}", include=[{
        "field": "activity.count", "operator": ">=", "value": 2,
        "activity": {"type": "purchase", "window": {"days": 30}}}])
    make_offer(f"Buyers' bonus {n}", audiences=[("in_any_segment", {"segments": [buyers.id]})])
    coffee = make_offer(f"Coffee {n}")
    db.session.add(OfferLimit(offer_id=coffee.id, limit_type="membership_award_count",
                              configuration={"limit": 2}))
    cake = make_offer(f"Cake {n}")
    db.session.add(OfferLimit(offer_id=cake.id, limit_type="global_award_count",
                              configuration={"limit": 5}))
    db.session.commit()
    return gold, staff


def test_the_present_replays_to_the_live_answer(app, api):
    gold, staff = _world()
    ana = make_member(external_id="ANA", tier="gold", points=150)
    db.session.commit()
    time.sleep(0.002)
    moment = utcnow()
    for kind in ("offers", "rewards"):
        assert _as_of(api, ana.id, kind, moment) == _norm(_live(api, ana.id, kind, moment))


def test_moments_without_an_exact_answer_are_refused(app, api):
    ana = make_member(external_id="ANA")
    future = api.get(f"/members/{ana.id}/offers?as_of=2999-01-01T00:00:00Z")
    assert future.status_code == 400
    assert "is in the future" in future.get_json()["errors"][0]["detail"]
    early = api.get(f"/members/{ana.id}/offers?as_of=2001-01-01T00:00:00Z")
    assert "before the history begins" in early.get_json()["errors"][0]["detail"]
    assert early.get_json()["errors"][0]["source"] == {"parameter": "as_of"}
    bad = api.get(f"/members/{ana.id}/offers?as_of=last%20tuesday")
    assert "is not a moment" in bad.get_json()["errors"][0]["detail"]
    app.config["HISTORY_RETENTION_DAYS"] = 1
    try:
        old = utcnow() - timedelta(days=2)
        from webapp.models import HistoryMeta
        db.session.get(HistoryMeta, 1).begins_at = old - timedelta(days=1)
        db.session.commit()
        kept = api.get(f"/members/{ana.id}/offers?as_of={old.isoformat()}Z")
        assert "beyond the history's retention" in kept.get_json()["errors"][0]["detail"]
    finally:
        app.config.pop("HISTORY_RETENTION_DAYS", None)


_EXAMPLES = itertools.count(1)
CHANGES = st.lists(st.sampled_from([
    "tier_gold", "tier_bronze", "points_up", "points_down", "list_add", "list_remove",
    "override_add", "override_block", "override_reset", "rule_points", "rule_tier",
    "offer_new", "offer_rename", "audience_change", "reward_points", "purchase", "fulfill",
]), min_size=3, max_size=10)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(changes=CHANGES)
def test_every_past_moment_replays_to_what_was_answered_live_then(app, api, changes):
    n = next(_EXAMPLES)
    gold, staff = _world(n)
    ana = make_member(external_id=f"ANA-{n}", tier="silver", points=50)
    db.session.commit()
    recorded = []

    def moment_now():
        time.sleep(0.003)  # history is stamped to the millisecond (SQLite)
        moment = utcnow()
        recorded.append((moment, {kind: _live(api, ana.id, kind, moment)
                                  for kind in ("offers", "rewards")}))
        time.sleep(0.003)

    moment_now()
    for change in changes:
        _apply(api, change, ana, gold, staff)
        moment_now()
    for moment, live in recorded:
        for kind, data in live.items():
            assert _as_of(api, ana.id, kind, moment) == _norm(data), (change, kind, moment)


def _apply(api, change: str, ana, gold, staff) -> None:
    def ok(response, *codes):
        assert response.status_code in (codes or (200, 201, 204)), response.get_data(
            as_text=True)

    member = f"/members/{ana.id}"
    if change.startswith("tier_"):
        ok(api.patch(member, {"data": {"type": "members", "attributes": {
            "tier": change[5:]}}}))
    elif change.startswith("points_"):
        current = api.get(member).get_json()["data"]["attributes"]["points"]
        ok(api.patch(member, {"data": {"type": "members", "attributes": {
            "points": max(0, current + (70 if change == "points_up" else -40))}}}))
    elif change in ("list_add", "list_remove"):
        path = f"/segments/{staff.id}/relationships/members"
        body = {"data": [{"type": "members", "id": ana.id}]}
        ok(api.post(path, body) if change == "list_add" else api.delete(path, body))
    elif change.startswith("override_"):
        status = change[len("override_"):]
        ok(api.post(f"/segments/{gold.id}/overrides", {"data": {
            "type": "overrides", "attributes": {"member": ana.id, "status": status,
                                                "description": f"test {status}"}}}))
    elif change.startswith("rule_"):
        include = ([{"field": "points", "operator": ">=", "value": 100}]
                   if change == "rule_points" else
                   [{"field": "tier", "operator": "equals", "value": "gold"}])
        ok(api.patch(f"/segments/{gold.id}", {"data": {
            "type": "segments", "id": str(gold.id), "attributes": {"include": include}}}))
    elif change == "offer_new":
        make_offer(f"Flash {utcnow().microsecond}",
                   audiences=[("in_all_segments", {"segments": [gold.id, staff.id]})])
        db.session.commit()
    elif change == "offer_rename":
        offers = api.get("/offers").get_json()["data"]
        ok(api.patch(f"/offers/{offers[0]['id']}", {"data": {
            "type": "offers", "id": offers[0]["id"],
            "attributes": {"name": offers[0]["attributes"]["name"] + "!"}}}))
    elif change == "audience_change":
        offers = api.get("/offers").get_json()["data"]
        target = offers[-1]["id"]
        ok(api.post("/audiences", {"data": {
            "type": "audiences", "attributes": {
                "audience_type": "age_within",
                "configuration": {"minimum_age": 18, "maximum_age": None}},
            "relationships": {"offer": {"data": {"type": "offers", "id": target}}}}}), 201)
    elif change == "purchase":
        ok(api.post("/activities", {"data": {"type": "activities", "attributes": {
            "member": ana.id, "activity_type": "purchase", "external_id": f"p{utcnow()}",
            "occurred_at": utcnow().isoformat() + "Z", "amount": 3}}}))
    elif change == "fulfill":
        coffee = next(o for o in api.get("/offers?page[size]=100").get_json()["data"]
                      if o["attributes"]["name"].startswith("Coffee"))
        ok(api.post(f"{member}/offers/{coffee['id']}/fulfillments", {"data": {
            "type": "fulfillments", "attributes": {"external_id": f"f{utcnow()}"}}}),
           201, 409)
    elif change == "reward_points":
        rewards = api.get("/rewards").get_json()["data"]
        ok(api.patch(f"/rewards/{rewards[0]['id']}", {"data": {
            "type": "rewards", "id": rewards[0]["id"], "attributes": {"points": 60}}}))


def test_pruning_keeps_what_later_moments_read_and_moves_the_start(app, api, runner):
    from webapp.models import HistoryMeta
    from webapp.services import replay

    gold, _ = _world(99)
    ana = make_member(external_id="PRUNED", tier="gold", points=10)
    db.session.commit()
    assert api.patch(f"/members/{ana.id}", {"data": {"type": "members", "attributes": {
        "points": 150}}}).status_code == 200
    time.sleep(0.003)
    moment = utcnow()
    time.sleep(0.003)
    before = {kind: _as_of(api, ana.id, kind, moment) for kind in ("offers", "rewards")}
    # Everything so far is "older than the retention" when the clock says a day later.
    gone = replay.prune(1, now=moment + timedelta(days=1))
    db.session.commit()
    assert gone >= 1  # the member's first version: no moment kept reads it
    assert db.session.get(HistoryMeta, 1).begins_at == moment
    after = {kind: _as_of(api, ana.id, kind, moment) for kind in ("offers", "rewards")}
    assert after == before
    refused = api.get(f"/members/{ana.id}/offers?as_of="
                      f"{(moment - timedelta(seconds=1)).isoformat()}Z")
    assert "before the history begins" in refused.get_json()["errors"][0]["detail"]
    result = runner.invoke(args=["history", "prune"])
    assert result.exit_code != 0 and "HISTORY_RETENTION_DAYS is 0" in result.output


def test_one_offer_or_reward_now_and_as_of_then(app, api):
    gold, _ = _world(7)
    ana = make_member(external_id="ONE", tier="silver", points=150)
    db.session.commit()
    time.sleep(0.003)
    then = utcnow()
    time.sleep(0.003)
    assert api.patch(f"/members/{ana.id}", {"data": {"type": "members", "attributes": {
        "tier": "gold"}}}).status_code == 200
    offer = next(o for o in api.get("/offers?page[size]=100").get_json()["data"]
                 if o["attributes"]["name"] == "Gold treat 7")
    now = api.get(f"/members/{ana.id}/offers/{offer['id']}").get_json()
    assert now["data"]["attributes"]["visible_status"] == "visible"
    past = api.get(f"/members/{ana.id}/offers/{offer['id']}?as_of={then.isoformat()}Z")
    assert past.status_code == 200, past.get_json()
    body = past.get_json()
    assert body["data"]["attributes"]["visible_status"] == "missing_required_segments"
    assert body["meta"]["as_of"] == then.isoformat() + "Z"
    # the same decision as the whole list gave for that moment
    listed = json.loads(_as_of(api, ana.id, "offers", then))
    same = next(d for d in listed if d["id"] == offer["id"])
    assert same["attributes"] == body["data"]["attributes"]
    reward = api.get("/rewards?page[size]=100").get_json()["data"][0]
    assert api.get(f"/members/{ana.id}/rewards/{reward['id']}?as_of={then.isoformat()}Z"
                   ).status_code == 200
    gone = api.get(f"/members/{ana.id}/offers/999999?as_of={then.isoformat()}Z")
    assert gone.status_code == 404
