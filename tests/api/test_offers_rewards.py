"""Offers, audiences, rewards, required segments and decorated visibility over the API."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from tests.api.conftest import errors_of
from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import Audience, Offer


def test_custom_segment_required_on_reward_missing_then_visible(api):
    """Seed 000 (Hatch custom segments): create a segment, require it on a reward, the member
    sees missing_required_segments; add the member to the segment, the reward is visible."""
    make_member(external_id="H-1", points=500)
    segment = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "name": "Beta testers", "kind": "static"}}}).get_json()["data"]
    reward = api.post("/rewards", {"data": {"type": "rewards", "attributes": {
        "name": "Beta mug", "points": 100}}})
    assert reward.status_code == 201, reward.get_json()
    reward_id = reward.get_json()["data"]["id"]
    linked = api.post(f"/rewards/{reward_id}/relationships/required_segments",
                      {"data": [{"type": "segments", "id": segment["id"]}]})
    assert linked.status_code == 200, linked.get_json()
    assert linked.get_json()["data"] == [{"type": "segments", "id": segment["id"]}]
    before = _decorated(api, "/members/H-1/rewards", reward_id)
    assert before["visible_status"] == "missing_required_segments"
    assert before["eligible"] is False
    assert before["reasons"]["passed"] is False
    api.post(f"/segments/{segment['id']}/relationships/members",
             {"data": [{"type": "members", "id": "H-1"}]})
    after = _decorated(api, "/members/H-1/rewards", reward_id)
    assert after["visible_status"] == "visible" and after["eligible"] is True
    unlinked = api.delete(f"/rewards/{reward_id}/relationships/required_segments",
                          {"data": [{"type": "segments", "id": segment["id"]}]})
    assert unlinked.get_json()["data"] == []
    got = api.get(f"/rewards/{reward_id}/relationships/required_segments").get_json()
    assert got["data"] == []


def test_offer_with_audiences_as_in_the_seed_documents(api):
    """Seed 001 (Hatch audiences): audiences created with a relationship to their offer."""
    young = make_member(external_id="Y", birthday=date(2015, 1, 1))
    adult = make_member(external_id="A", birthday=date(1990, 1, 1))
    vip = make_segment("VIP", kind="static", customer_segment_id="VIP")
    offer = api.post("/offers", {"data": {"type": "offers", "attributes": {
        "name": "Wine tasting", "category": "events"}}})
    assert offer.status_code == 201, offer.get_json()
    offer_id = offer.get_json()["data"]["id"]
    age = api.post("/audiences", {"data": {
        "type": "audiences",
        "attributes": {"audience_type": "age_within",
                       "configuration": {"minimum_age": 18, "maximum_age": None}},
        "relationships": {"offer": {"data": {"type": "offers", "id": offer_id}}}}})
    assert age.status_code == 201, age.get_json()
    assert age.get_json()["data"]["relationships"]["offer"]["data"]["id"] == offer_id
    segments = api.post("/audiences", {"data": {
        "type": "audiences",
        "attributes": {"audience_type": "in_all_segments", "configuration": {"segments": ["VIP"]}},
        "relationships": {"offer": {"data": {"type": "offers", "id": offer_id}}}}})
    assert segments.status_code == 201, segments.get_json()
    assert segments.get_json()["data"]["attributes"]["configuration"] == {"segments": [vip.id]}
    shown = api.get(f"/offers/{offer_id}").get_json()
    assert len(shown["data"]["relationships"]["audiences"]["data"]) == 2
    assert {i["type"] for i in shown["included"]} == {"audiences"}
    assert _decorated(api, "/members/Y/offers", offer_id)["visible_status"] == "age_restricted"
    assert _decorated(api, "/members/A/offers", offer_id)["visible_status"] == \
        "missing_required_segments"
    api.post("/segments/VIP/relationships/members", {"data": [{"type": "members", "id": "A"}]})
    decision = _decorated(api, f"/members/{adult.id}/offers", offer_id)
    assert decision["visible_status"] == "visible" and decision["eligible"] is True
    assert young.id != adult.id
    audience_id = age.get_json()["data"]["id"]
    assert api.delete(f"/audiences/{audience_id}").status_code == 204
    assert db.session.get(Audience, int(audience_id)) is None


def test_audience_errors_point_at_the_offending_member(api):
    offer = api.post("/offers", {"data": {"type": "offers", "attributes": {
        "name": "X"}}}).get_json()["data"]
    bad = api.post("/audiences", {"data": {
        "type": "audiences",
        "attributes": {"audience_type": "age_within",
                       "configuration": {"minimum_age": 30, "maximum_age": 20}},
        "relationships": {"offer": {"data": {"type": "offers", "id": offer["id"]}}}}})
    assert bad.status_code == 422
    assert errors_of(bad)[0]["source"]["pointer"].startswith("/data/attributes/configuration")
    # The same words as the dashboard's form (one age check, in the targeting core).
    assert "The minimum age (30) is above the maximum age (20)." in errors_of(bad)[0]["detail"]
    missing = api.post("/audiences", {"data": {
        "type": "audiences", "attributes": {"audience_type": "age_within",
                                            "configuration": {"minimum_age": 3}}}})
    assert missing.status_code == 422
    assert errors_of(missing)[0]["source"]["pointer"] == "/data/relationships/offer"
    unknown = api.post("/audiences", {"data": {
        "type": "audiences",
        "attributes": {"audience_type": "in_any_segment", "configuration": {"segments": ["no"]}},
        "relationships": {"offer": {"data": {"type": "offers", "id": offer["id"]}}}}})
    assert unknown.status_code == 422
    assert errors_of(unknown)[0]["source"]["pointer"] == \
        "/data/attributes/configuration/segments/0"
    no_offer = api.post("/audiences", {"data": {
        "type": "audiences",
        "attributes": {"audience_type": "age_within", "configuration": {"minimum_age": 3}},
        "relationships": {"offer": {"data": {"type": "offers", "id": "999"}}}}})
    assert no_offer.status_code == 404
    assert errors_of(no_offer)[0]["source"]["pointer"] == "/data/relationships/offer/data/id"


def test_offer_and_reward_crud(api, api_as):
    created = api.post("/offers", {"data": {"type": "offers", "attributes": {
        "name": "Spring", "external_id": "OF-1", "publish_at": "2026-03-01T00:00:00Z"}}})
    offer_id = created.get_json()["data"]["id"]
    assert created.get_json()["data"]["attributes"]["publish_at"] == "2026-03-01T00:00:00Z"
    assert api.get("/offers/OF-1").get_json()["data"]["id"] == offer_id
    patched = api.patch(f"/offers/{offer_id}", {"data": {"type": "offers", "attributes": {
        "discontinued": True}}})
    assert patched.get_json()["data"]["attributes"]["discontinued"] is True
    window = api.patch(f"/offers/{offer_id}", {"data": {"type": "offers", "attributes": {
        "expire_at": "2026-01-01T00:00:00Z"}}})
    assert window.status_code == 422
    assert len(api.get("/offers").get_json()["data"]) == 1
    assert api_as("marketer").delete(f"/offers/{offer_id}").status_code == 403
    assert api.delete(f"/offers/{offer_id}").status_code == 204
    assert db.session.scalar(select(Offer.id)) is None
    reward = api.post("/rewards", {"data": {"type": "rewards", "attributes": {
        "name": "Mug", "points": -5}}})
    assert reward.status_code == 422
    assert errors_of(reward)[0]["source"]["pointer"] == "/data/attributes/points"
    reward = api.post("/rewards", {"data": {"type": "rewards", "attributes": {
        "name": "Mug", "points": 5}}}).get_json()["data"]
    renamed = api.patch(f"/rewards/{reward['id']}", {"data": {"type": "rewards", "attributes": {
        "name": "Big mug"}}})
    assert renamed.get_json()["data"]["attributes"]["name"] == "Big mug"
    unknown = api.post(f"/rewards/{reward['id']}/relationships/required_segments",
                       {"data": [{"type": "segments", "id": "nope"}]})
    assert unknown.status_code == 404
    assert errors_of(unknown)[0]["source"]["pointer"] == "/data/0/id"
    assert api.delete(f"/rewards/{reward['id']}").status_code == 204


def test_insufficient_points_is_visible_but_not_eligible(api):
    make_member(external_id="P", points=10)
    reward = api.post("/rewards", {"data": {"type": "rewards", "attributes": {
        "name": "TV", "points": 10_000}}}).get_json()["data"]
    decision = _decorated(api, "/members/P/rewards", reward["id"])
    assert decision["visible_status"] == "visible"
    assert decision["eligible"] is False and decision["reason"] == "insufficient_points"


def _decorated(api, path, resource_id):
    response = api.get(path)
    assert response.status_code == 200, response.get_json()
    for item in response.get_json()["data"]:
        if item["id"] == str(resource_id):
            return item["attributes"]
    raise AssertionError(f"{resource_id} not in {path}")
