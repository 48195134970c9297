"""Offer limits, activations, fulfillments and reward redemptions over the API (issue 16):
every offer status and reward status reproduced with Hatch-shaped requests, with the reasons
a support agent reads, and limits held under concurrent requests against a live server."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.api.conftest import MEDIA, errors_of
from tests.factories import make_member, make_offer, make_reward, make_segment
from webapp.extensions import db
from webapp.models import Member, OfferFulfillment, RewardRedemption
from webapp.timeutil import utcnow


def _limit(api, offer_id, limit_type, limit, window=None):
    configuration = {"limit": limit}
    if window is not None:
        configuration["window"] = window
    return api.post("/limits", {"data": {
        "type": "limits", "attributes": {"limit_type": limit_type,
                                         "configuration": configuration},
        "relationships": {"offer": {"data": {"type": "offers", "id": str(offer_id)}}}}})


def _offer(api, name, **attributes):
    response = api.post("/offers", {"data": {"type": "offers", "attributes": {
        "name": name, **attributes}}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def _decorated(api, member, offer_id, kind="offers"):
    response = api.get(f"/members/{member}/{kind}")
    assert response.status_code == 200, response.get_json()
    return next(item["attributes"] for item in response.get_json()["data"]
                if item["id"] == str(offer_id))


def _fulfill(api, member, offer_id, external_id=None):
    body = {"data": {"type": "fulfillments", "attributes": {}}}
    if external_id is not None:
        body["data"]["attributes"]["external_id"] = external_id
    return api.post(f"/members/{member}/offers/{offer_id}/fulfillments", body)


def _limit_nodes(attributes):
    return [n for n in attributes["reasons"]["children"] if n["kind"] == "limit"]


# --- limits ----------------------------------------------------------------------------------


def test_limits_are_created_shown_on_the_offer_and_deleted(api, api_as):
    offer = _offer(api, "Coffee")
    created = _limit(api, offer["id"], "membership_award_count", 3, {"period": "month"})
    assert created.status_code == 201, created.get_json()
    limit = created.get_json()["data"]
    assert limit["attributes"] == {"limit_type": "membership_award_count",
                                   "configuration": {"limit": 3, "window": {"period": "month"}},
                                   "created_at": limit["attributes"]["created_at"]}
    assert created.headers["Location"].endswith(f"/api/v1/limits/{limit['id']}")
    shown = api.get(f"/offers/{offer['id']}").get_json()
    assert shown["data"]["relationships"]["limits"]["data"] == [
        {"type": "limits", "id": limit["id"]}]
    assert any(i["type"] == "limits" and i["id"] == limit["id"] for i in shown["included"])
    assert api.get(f"/limits/{limit['id']}").get_json()["data"]["id"] == limit["id"]
    support = api_as("support")
    assert support.get(f"/limits/{limit['id']}").status_code == 200
    assert _limit(support, offer["id"], "global_award_count", 5).status_code == 403
    assert support.delete(f"/limits/{limit['id']}").status_code == 403
    assert api.delete(f"/limits/{limit['id']}").status_code == 204
    assert api.get(f"/limits/{limit['id']}").status_code == 404
    assert api.delete(f"/limits/{limit['id']}").status_code == 404


@pytest.mark.parametrize(("limit_type", "configuration", "pointer", "words"), [
    ("membership_award_count", {"limit": 0}, "/data/attributes/configuration/limit",
     "limit must be a whole number from 1"),
    ("membership_award_count", {"limit": "3"}, "/data/attributes/configuration/limit",
     "limit must be a whole number"),
    ("global_award_count", {"limit": 3, "window": {"days": 7}},
     "/data/attributes/configuration/window", "takes no window"),
    ("membership_award_count", {"limit": 3, "window": {"period": "fortnight"}},
     "/data/attributes/configuration/window", "window period must be one of day, week"),
    ("membership_award_count", {"limit": 3, "window": {"days": 0}},
     "/data/attributes/configuration/window", "window days must be a whole number"),
    ("per_member", {"limit": 3}, "/data/attributes/limit_type", "limit_type must be one of"),
    ("membership_award_count", {"limit": 3, "cap": 2}, "/data/attributes/configuration",
     "unknown key cap"),
])
def test_bad_limits_are_refused_with_a_message_naming_what_is_wrong(
        api, limit_type, configuration, pointer, words):
    offer = _offer(api, "Coffee")
    response = api.post("/limits", {"data": {
        "type": "limits", "attributes": {"limit_type": limit_type,
                                         "configuration": configuration},
        "relationships": {"offer": {"data": {"type": "offers", "id": offer["id"]}}}}})
    assert response.status_code == 422, response.get_json()
    error = errors_of(response)[0]
    assert error["source"]["pointer"] == pointer
    assert words in error["detail"]
    assert api.get(f"/offers/{offer['id']}").get_json()["data"]["relationships"][
        "limits"]["data"] == []


def test_a_global_and_a_member_limit_must_count_the_same_thing(api):
    offer = _offer(api, "Coffee", requires_activation=True)
    assert _limit(api, offer["id"], "global_award_count", 100).status_code == 201
    mixed = _limit(api, offer["id"], "membership_activation", 1)
    assert mixed.status_code == 422
    detail = errors_of(mixed)[0]["detail"]
    assert "membership_activation counts activations" in detail
    assert "global_award_count limit, which counts awards" in detail
    assert _limit(api, offer["id"], "membership_award_count", 2).status_code == 201
    again = _limit(api, offer["id"], "membership_award_count", 5)
    assert again.status_code == 422 and "already has this limit" in errors_of(again)[0]["detail"]
    plain = _offer(api, "Tea")
    refused = _limit(api, plain["id"], "global_activation", 10)
    assert refused.status_code == 422
    assert "does not require activation" in errors_of(refused)[0]["detail"]


def test_unknown_offer_of_a_limit_is_a_404_with_a_pointer(api):
    response = _limit(api, 99999, "global_award_count", 3)
    assert response.status_code == 404
    assert errors_of(response)[0]["source"]["pointer"] == "/data/relationships/offer/data/id"


# --- the five offer statuses ------------------------------------------------------------------


def test_every_offer_status_on_demand_with_precedence_and_reasons(api):
    make_member(external_id="ANA", birthday=date(2012, 1, 1), points=10)
    other = make_member(external_id="BEN", birthday=date(1990, 1, 1))
    vip = make_segment("VIP", kind="static")
    offer = _offer(api, "Coffee")
    oid = offer["id"]
    assert _decorated(api, "ANA", oid)["visible_status"] == "visible"
    api.post("/audiences", {"data": {"type": "audiences", "attributes": {
        "audience_type": "in_all_segments", "configuration": {"segments": [vip.id]}},
        "relationships": {"offer": {"data": {"type": "offers", "id": oid}}}}})
    assert _decorated(api, "ANA", oid)["visible_status"] == "missing_required_segments"
    api.post("/audiences", {"data": {"type": "audiences", "attributes": {
        "audience_type": "age_within", "configuration": {"minimum_age": 18}},
        "relationships": {"offer": {"data": {"type": "offers", "id": oid}}}}})
    assert _decorated(api, "ANA", oid)["visible_status"] == "age_restricted"
    # limits come first; BEN (adult, not in VIP) is used to fill them
    for audience in api.get(f"/offers/{oid}").get_json()["data"]["relationships"][
            "audiences"]["data"]:
        api.delete(f"/audiences/{audience['id']}")
    assert _limit(api, oid, "membership_award_count", 1, {"period": "month"}
                  ).status_code == 201
    assert _fulfill(api, "ANA", oid, "order-1").status_code == 201
    api.post("/audiences", {"data": {"type": "audiences", "attributes": {
        "audience_type": "age_within", "configuration": {"minimum_age": 18}},
        "relationships": {"offer": {"data": {"type": "offers", "id": oid}}}}})
    got = _decorated(api, "ANA", oid)
    assert got["visible_status"] == "member_limit" and got["eligible"] is False
    assert got["fulfillment_count"] == 1
    (node,) = _limit_nodes(got)
    assert node["passed"] is False and node["actual"] == 1
    assert node["gap"].startswith("1 of 1 awards this month; resets 1 ")
    assert node["expected"]["limit"] == 1 and node["expected"]["window"] == {"period": "month"}
    assert _limit(api, oid, "global_award_count", 2).status_code == 201
    assert _decorated(api, "BEN", oid)["visible_status"] == "visible"
    assert _fulfill(api, "BEN", oid, "order-2").status_code == 201
    for who in ("ANA", "BEN"):
        got = _decorated(api, who, oid)
        assert got["visible_status"] == "global_limit", who
        assert got["reason"] == "global_limit"
    texts = [n["gap"] for n in _limit_nodes(_decorated(api, "BEN", oid)) if n["gap"]]
    assert "2 of 2 awards over all members; does not reset" in texts
    assert other.id


def test_near_misses_on_the_member_page_name_the_limit(api, client, auth):
    make_member(external_id="ANA")
    offer = _offer(api, "Coffee")
    _limit(api, offer["id"], "membership_award_count", 2, {"days": 30})
    assert _fulfill(api, "ANA", offer["id"], "a").status_code == 201
    got = _decorated(api, "ANA", offer["id"])
    (node,) = _limit_nodes(got)
    assert node["passed"] is True
    assert node["label"].startswith("1 of 2 awards in the last 30 days; 1 left")
    assert _fulfill(api, "ANA", offer["id"], "b").status_code == 201
    member = db.session.scalar(select(Member).where(Member.external_id == "ANA"))
    auth.login("support")
    page = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert "2 of 2 awards in the last 30 days; resets" in page


# --- activation -------------------------------------------------------------------------------


def test_activation_required_then_activated_then_used_by_an_award(api):
    make_member(external_id="ANA")
    offer = _offer(api, "Double points", requires_activation=True, must_fulfill_within_days=7)
    assert offer["attributes"]["requires_activation"] is True
    assert offer["attributes"]["must_fulfill_within_days"] == 7
    got = _decorated(api, "ANA", offer["id"])
    assert (got["must_activate"], got["activated"], got["fulfillment_count"]) == (True, False, 0)
    assert got["visible_status"] == "visible" and got["eligible"] is False
    assert got["reason"] == "activation_required"
    refused = _fulfill(api, "ANA", offer["id"], "x-1")
    assert refused.status_code == 409
    error = errors_of(refused)[0]
    assert error["code"] == "offer_not_eligible" and "not activated" in error["detail"]
    assert error["meta"]["decision"]["reason"] == "activation_required"
    activated = api.post(f"/members/ANA/offers/{offer['id']}/activation")
    assert activated.status_code == 201, activated.get_json()
    body = activated.get_json()
    assert body["data"]["type"] == "activations"
    assert body["data"]["attributes"]["expires_at"] is not None
    assert body["meta"]["decision"]["activated"] is True
    assert body["meta"]["decision"]["eligible"] is True
    again = api.post(f"/members/ANA/offers/{offer['id']}/activation")
    assert again.status_code == 409 and errors_of(again)[0]["code"] == "already_activated"
    assert _fulfill(api, "ANA", offer["id"], "x-1").status_code == 201
    got = _decorated(api, "ANA", offer["id"])
    assert (got["activated"], got["fulfillment_count"], got["eligible"]) == (False, 1, False)
    plain = _offer(api, "Plain")
    got = _decorated(api, "ANA", plain["id"])
    assert (got["must_activate"], got["activated"]) == (False, None)
    refused = api.post(f"/members/ANA/offers/{plain['id']}/activation")
    assert refused.status_code == 409
    assert errors_of(refused)[0]["code"] == "activation_not_required"


def test_activation_refused_with_the_decision_when_not_visible(api):
    make_member(external_id="KID", birthday=date(2015, 1, 1))
    offer = _offer(api, "Wine", requires_activation=True)
    api.post("/audiences", {"data": {"type": "audiences", "attributes": {
        "audience_type": "age_within", "configuration": {"minimum_age": 18}},
        "relationships": {"offer": {"data": {"type": "offers", "id": offer["id"]}}}}})
    refused = api.post(f"/members/KID/offers/{offer['id']}/activation",
                       {"data": {"type": "activations"}})
    assert refused.status_code == 409
    error = errors_of(refused)[0]
    assert error["code"] == "offer_not_visible"
    assert error["meta"]["decision"]["visible_status"] == "age_restricted"
    assert "turns 18 in" in error["detail"]


def test_an_activation_lapses_after_must_fulfill_within_days(api, monkeypatch):
    from webapp.services import decisions as visibility
    from webapp.services import offer_activity as activity

    make_member(external_id="ANA")
    offer = _offer(api, "Week", requires_activation=True, must_fulfill_within_days=2)
    assert api.post(f"/members/ANA/offers/{offer['id']}/activation").status_code == 201
    later = utcnow() + timedelta(days=2, minutes=1)
    monkeypatch.setattr(visibility, "utcnow", lambda: later)
    monkeypatch.setattr(activity, "utcnow", lambda: later)
    got = _decorated(api, "ANA", offer["id"])
    assert got["activated"] is False and got["reason"] == "activation_required"
    node = next(n for n in got["reasons"]["children"] if n["kind"] == "activation")
    assert "lapsed on" in node["gap"]
    assert _fulfill(api, "ANA", offer["id"], "late").status_code == 409
    assert api.post(f"/members/ANA/offers/{offer['id']}/activation").status_code == 201


def test_bad_activity_bodies_are_refused_clearly(api):
    make_member(external_id="ANA")
    offer = _offer(api, "Coffee")
    long = _fulfill(api, "ANA", offer["id"], "x" * 300)
    assert long.status_code == 422
    assert errors_of(long)[0]["source"]["pointer"] == "/data/attributes/external_id"
    wrong = api.post(f"/members/ANA/offers/{offer['id']}/fulfillments", {"data": {
        "type": "fulfillments", "attributes": {"amount": 3}}})
    assert wrong.status_code == 422
    assert api.post(f"/members/NOBODY/offers/{offer['id']}/fulfillments").status_code == 404
    assert api.post("/members/ANA/offers/999999/fulfillments").status_code == 404


# --- fulfillments -----------------------------------------------------------------------------


def test_fulfillments_are_idempotent_by_external_id(api, api_as):
    make_member(external_id="ANA")
    make_member(external_id="BEN")
    offer = _offer(api, "Coffee")
    first = _fulfill(api, "ANA", offer["id"], "order-7")
    assert first.status_code == 201
    again = _fulfill(api, "ANA", offer["id"], "order-7")
    assert again.status_code == 200
    assert again.get_json()["data"]["id"] == first.get_json()["data"]["id"]
    assert _decorated(api, "ANA", offer["id"])["fulfillment_count"] == 1
    clash = _fulfill(api, "BEN", offer["id"], "order-7")
    assert clash.status_code == 409 and errors_of(clash)[0]["code"] == "external_id_conflict"
    assert _fulfill(api_as("support"), "ANA", offer["id"], "order-8").status_code == 403
    assert _decorated(api, "ANA", offer["id"])["fulfillment_count"] == 1


def test_a_fulfillment_past_a_member_limit_is_refused_with_the_reason(api):
    make_member(external_id="ANA")
    offer = _offer(api, "Coffee")
    _limit(api, offer["id"], "membership_award_count", 3, {"period": "month"})
    for n in range(3):
        assert _fulfill(api, "ANA", offer["id"], f"o{n}").status_code == 201
    refused = _fulfill(api, "ANA", offer["id"], "o3")
    assert refused.status_code == 409
    error = errors_of(refused)[0]
    assert error["code"] == "offer_not_visible"
    assert "member_limit" in error["detail"]
    assert "3 of 3 awards this month; resets 1 " in error["detail"]
    assert error["meta"]["decision"]["visible_status"] == "member_limit"
    assert db.session.scalar(select(func.count()).select_from(OfferFulfillment)) == 3


def _post(url: str, token: str, body: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": MEDIA})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _concurrently(n: int, send) -> list[int]:
    barrier = threading.Barrier(n)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        status = send(i)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return statuses


def test_concurrent_fulfillments_never_pass_a_global_limit(api, live_server, token_for):
    members = [make_member(external_id=f"C{i}").id for i in range(8)]
    offer_id = make_offer("Launch").id
    assert _limit(api, offer_id, "global_award_count", 3).status_code == 201
    token = token_for("marketer")
    base = f"{live_server}/api/v1/members"
    statuses = _concurrently(8, lambda i: _post(
        f"{base}/{members[i]}/offers/{offer_id}/fulfillments", token,
        {"data": {"type": "fulfillments", "attributes": {"external_id": f"race-{i}"}}}))
    assert sorted(statuses) == [201] * 3 + [409] * 5
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(OfferFulfillment)) == 3
    assert _decorated(api, members[0], offer_id)["visible_status"] == "global_limit"


def test_concurrent_fulfillments_of_one_member_never_pass_a_member_limit(api, live_server,
                                                                        token_for):
    member = make_member(external_id="SOLO")
    offer = make_offer("Daily")
    assert _limit(api, offer.id, "membership_award_count", 2, {"period": "day"}
                  ).status_code == 201
    token = token_for("marketer")
    url = f"{live_server}/api/v1/members/{member.id}/offers/{offer.id}/fulfillments"
    statuses = _concurrently(6, lambda i: _post(url, token,
        {"data": {"type": "fulfillments", "attributes": {"external_id": f"solo-{i}"}}}))
    assert sorted(statuses) == [201] * 2 + [409] * 4
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(OfferFulfillment)) == 2


# --- redemptions and the four reward statuses -------------------------------------------------


def _redeem(api, member, reward_id, external_id=None):
    attributes = {} if external_id is None else {"external_id": external_id}
    return api.post("/redemptions", {"data": {
        "type": "redemptions", "attributes": attributes,
        "relationships": {"member": {"data": {"type": "members", "id": member}},
                          "reward": {"data": {"type": "rewards", "id": str(reward_id)}}}}})


def test_every_reward_status_and_redemption_refusals_carry_the_decision(api):
    make_member(external_id="ANA", points=380)
    vip = make_segment("VIP", kind="static")
    gone = make_reward("Old mug", discontinued=True, points=10)
    late = make_reward("Summer hat", expire_at=datetime(2020, 1, 1), points=10)
    locked = make_reward("VIP lounge", required=[vip], points=10)
    dear = make_reward("Coffee machine", points=500)
    statuses = {r.id: _decorated(api, "ANA", r.id, "rewards")["visible_status"]
                for r in (gone, late, locked, dear)}
    assert statuses == {gone.id: "reward_discontinued", late.id: "reward_expired",
                        locked.id: "missing_required_segments", dear.id: "visible"}
    for reward, code, status in ((gone, "reward_not_visible", "reward_discontinued"),
                                 (late, "reward_not_visible", "reward_expired"),
                                 (locked, "reward_not_visible", "missing_required_segments"),
                                 (dear, "reward_not_eligible", "visible")):
        refused = _redeem(api, "ANA", reward.id)
        assert refused.status_code == 409, reward.name
        error = errors_of(refused)[0]
        assert error["code"] == code
        assert error["meta"]["decision"]["visible_status"] == status
    refused = errors_of(_redeem(api, "ANA", dear.id))[0]
    assert refused["meta"]["decision"]["reason"] == "insufficient_points"
    assert "needs 120 more points" in refused["detail"]
    assert db.session.scalar(select(func.count()).select_from(RewardRedemption)) == 0
    db.session.expire_all()
    assert db.session.scalar(select(Member.points).where(Member.external_id == "ANA")) == 380


def test_redeem_debits_and_cancel_refunds(api):
    make_member(external_id="ANA", points=500)
    rich = make_segment("Rich", include=[{"field": "points", "operator": ">=", "value": 400}])
    reward = make_reward("Mug", points=200)
    redeemed = _redeem(api, "ANA", reward.id, "pos-1")
    assert redeemed.status_code == 201, redeemed.get_json()
    body = redeemed.get_json()
    assert body["data"]["attributes"]["points"] == 200
    assert body["data"]["attributes"]["status"] == "redeemed"
    assert body["meta"]["decision"]["eligible"] is True
    member = api.get("/members/ANA").get_json()["data"]
    assert member["attributes"]["points"] == 300
    # the points change is a profile change: the member left the points-based segment
    events = api.get(f"/events?filter[segment]={rich.id}&filter[action]=REMOVE").get_json()
    assert [e["attributes"]["cause"].get("redemption_id") for e in events["data"]] == [
        int(body["data"]["id"])]
    replay = _redeem(api, "ANA", reward.id, "pos-1")
    assert replay.status_code == 200 and replay.get_json()["data"]["id"] == body["data"]["id"]
    assert api.get("/members/ANA").get_json()["data"]["attributes"]["points"] == 300
    short = api.post("/redemptions", {"data": {"type": "redemptions", "attributes": {
        "member": "ANA", "reward": str(reward.id)}}})
    assert short.status_code == 201  # the short form: member and reward as attributes
    assert api.get("/members/ANA").get_json()["data"]["attributes"]["points"] == 100
    cancelled = api.patch(f"/redemptions/{body['data']['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.get_json()["data"]["attributes"]["status"] == "cancelled"
    assert api.get("/members/ANA").get_json()["data"]["attributes"]["points"] == 300
    twice = api.patch(f"/redemptions/{body['data']['id']}/cancel",
                      {"data": {"type": "redemptions", "id": body["data"]["id"]}})
    assert twice.status_code == 409 and errors_of(twice)[0]["code"] == "already_cancelled"
    assert api.get("/members/ANA").get_json()["data"]["attributes"]["points"] == 300
    assert api.get(f"/redemptions/{body['data']['id']}").status_code == 200
    assert api.patch("/redemptions/999999/cancel").status_code == 404


def test_unknown_member_or_reward_of_a_redemption_is_a_404_with_a_pointer(api):
    make_member(external_id="ANA")
    reward = make_reward("Mug", points=1)
    response = _redeem(api, "NOBODY", reward.id)
    assert response.status_code == 404
    assert errors_of(response)[0]["source"]["pointer"] == "/data/relationships/member/data/id"
    response = _redeem(api, "ANA", 999999)
    assert response.status_code == 404
    assert errors_of(response)[0]["source"]["pointer"] == "/data/relationships/reward/data/id"


def test_concurrent_redemptions_never_take_a_balance_below_zero(api, live_server, token_for):
    member = make_member(external_id="ANA", points=100)
    reward = make_reward("Coffee", points=30)
    token = token_for("marketer")
    body = {"data": {"type": "redemptions", "attributes": {"member": member.id,
                                                           "reward": str(reward.id)}}}
    statuses = _concurrently(8, lambda i: _post(f"{live_server}/api/v1/redemptions", token,
                                                body))
    assert sorted(statuses) == [201] * 3 + [409] * 5
    db.session.expire_all()
    assert db.session.get(Member, member.id).points == 10
    assert db.session.scalar(select(func.count()).select_from(RewardRedemption)) == 3


def test_deleting_offers_rewards_and_members_with_activity(api):
    make_member(external_id="ANA", points=100)
    offer = _offer(api, "Coffee", requires_activation=True)
    _limit(api, offer["id"], "global_activation", 5)
    assert api.post(f"/members/ANA/offers/{offer['id']}/activation").status_code == 201
    assert _fulfill(api, "ANA", offer["id"], "o-1").status_code == 201
    reward = make_reward("Mug", points=10)
    redemption = _redeem(api, "ANA", reward.id).get_json()["data"]
    assert api.delete(f"/offers/{offer['id']}").status_code == 204
    assert db.session.scalar(select(func.count()).select_from(OfferFulfillment)) == 0
    assert api.delete(f"/rewards/{reward.id}").status_code == 204
    kept = api.get(f"/redemptions/{redemption['id']}").get_json()["data"]
    assert kept["attributes"]["reward_name"] == "Mug"
    assert kept["relationships"]["reward"]["data"] is None
    assert api.delete("/members/ANA").status_code == 204
    assert api.get(f"/redemptions/{redemption['id']}").status_code == 404


def test_requires_activation_cannot_be_switched_off_under_an_activation_limit(api):
    offer = _offer(api, "Coffee", requires_activation=True)
    assert _limit(api, offer["id"], "membership_activation", 1).status_code == 201
    response = api.patch(f"/offers/{offer['id']}", {"data": {
        "type": "offers", "attributes": {"requires_activation": False}}})
    assert response.status_code == 422
    error = errors_of(response)[0]
    assert error["source"]["pointer"] == "/data/attributes/requires_activation"
    assert "delete that limit first" in error["detail"]
    bad = api.patch(f"/offers/{offer['id']}", {"data": {
        "type": "offers", "attributes": {"must_fulfill_within_days": -3}}})
    assert bad.status_code == 422
    assert "whole number of days" in errors_of(bad)[0]["detail"]
