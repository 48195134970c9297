"""Seed 004 (Village segments API) over HTTP: overrides set with the seed's own field names
(`user`, `user_status`) and read back with GET /segments/{id}/overrides."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tests.api.conftest import errors_of
from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import Override
from webapp.timeutil import utcnow

# The seed's request, field for field (segment_id is the URL's, the rest are attributes).
VILLAGE_REQUEST = {"user": "dev@example.com", "segment_id": 1, "user_status": "add",
                   "metadata": {"source": "signup", "gps": "Miami"},
                   "reference_id": "REF-1001", "status_change_timestamp": 1700000000,
                   "description": "Developer Test Account"}


def village_item(request: dict) -> dict:
    """The seed's flat request as an override resource object of Beacon's route."""
    return {"type": "overrides",
            "attributes": {k: v for k, v in request.items() if k != "segment_id"}}


def _power_users():
    return make_segment("Power Users", customer_segment_id="power-users",
                        include=[{"field": "points", "operator": ">=", "value": 1000}])


def test_the_seeds_add_block_reset_with_user_and_user_status(api):
    dev = make_member(external_id="DEV", email="dev@example.com", points=5)
    segment = _power_users()
    url = f"/segments/{segment.id}/overrides"
    added = api.post(url, {"data": village_item(VILLAGE_REQUEST)})
    assert added.status_code == 200, added.get_json()
    result = added.get_json()["meta"]["results"][0]
    assert (result["result"], result["status"], result["member_id"]) == ("applied", "add",
                                                                          dev.id)
    assert added.get_json()["meta"]["size"] == 1
    listed = api.get(url).get_json()["data"]
    assert len(listed) == 1
    attributes = listed[0]["attributes"]
    assert attributes["member_id"] == dev.id and attributes["member_external_id"] == "DEV"
    assert attributes["status"] == "add"
    assert attributes["reference_id"] == "REF-1001"
    assert attributes["metadata"] == {"source": "signup", "gps": "Miami"}
    assert attributes["status_change_timestamp"] == "2023-11-14T22:13:20Z"
    assert attributes["description"] == "Developer Test Account"
    assert attributes["expired"] is False and attributes["actor"] == "token admin-token"
    assert listed[0]["relationships"]["member"]["data"] == {"type": "members", "id": dev.id}
    blocked = api.post("/segments/power-users/overrides", {"data": [village_item(
        {"user": "DEV", "user_status": "block", "description": "Churned"})]})
    assert blocked.get_json()["meta"]["results"][0]["result"] == "applied"
    assert blocked.get_json()["meta"]["size"] == 0
    after_block = api.get(url).get_json()["data"][0]["attributes"]
    assert after_block["status"] == "block" and after_block["description"] == "Churned"
    reset = api.post(url, {"data": village_item({"user": dev.id, "user_status": "reset"})})
    assert reset.get_json()["meta"]["results"][0]["result"] == "applied"
    assert api.get(url).get_json()["data"] == []


def test_aliases_are_refused_beside_their_canonical_names_and_named_in_errors(api):
    make_member(external_id="DEV")
    segment = _power_users()
    response = api.post(f"/segments/{segment.id}/overrides", {"data": [
        {"type": "overrides", "attributes": {"user": "DEV", "member": "DEV", "status": "add"}},
        {"type": "overrides", "attributes": {"user": "DEV", "user_status": "pin"}},
        {"type": "overrides", "attributes": {"user_status": "add"}}]})
    results = response.get_json()["meta"]["results"]
    assert [r["result"] for r in results] == ["invalid", "invalid", "invalid"]
    assert results[0]["errors"][0]["source"]["pointer"] == "/data/0/attributes/user"
    assert results[0]["errors"][0]["detail"] == ("user is another name for member; give one "
                                                 "of the two.")
    assert results[1]["errors"][0]["source"]["pointer"] == "/data/1/attributes/user_status"
    assert results[1]["errors"][0]["detail"] == "user_status is add, block or reset."
    assert "attributes.member (or user)" in results[2]["errors"][0]["detail"]
    assert api.get(f"/segments/{segment.id}/overrides").get_json()["data"] == []


def test_list_filters_by_member_status_and_expiry_with_pagination(api):
    segment = _power_users()
    people = [make_member(external_id=f"P{n}", email=f"p{n}@example.com") for n in range(5)]
    items = [{"type": "overrides", "attributes": {"user": p.external_id,
                                                  "user_status": "add" if n % 2 else "block",
                                                  "reference_id": f"R{n}"}}
             for n, p in enumerate(people)]
    items[4]["attributes"]["expires_at"] = (utcnow() + timedelta(hours=1)).isoformat() + "Z"
    assert api.post(f"/segments/{segment.id}/overrides", {"data": items}).status_code == 200
    # The expiry passes (as time would), so the fifth override no longer applies.
    db.session.execute(update(Override).where(Override.member_id == people[4].id).values(
        expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    url = "/segments/power-users/overrides"

    def refs(query: str) -> list[str]:
        response = api.get(url + query)
        assert response.status_code == 200, response.get_json()
        return [o["attributes"]["reference_id"] for o in response.get_json()["data"]]

    assert refs("") == ["R0", "R1", "R2", "R3", "R4"]
    assert refs("?filter[status]=add") == ["R1", "R3"]
    assert refs("?filter[status]=block") == ["R0", "R2", "R4"]
    assert refs("?filter[member]=p2@example.com") == ["R2"]
    assert refs(f"?filter[member]={people[3].id}") == ["R3"]
    assert refs("?filter[member]=nobody") == []
    assert refs("?filter[expired]=true") == ["R4"]
    assert refs("?filter[expired]=false&filter[status]=block") == ["R0", "R2"]
    expired = api.get(url + "?filter[expired]=true").get_json()["data"][0]["attributes"]
    assert expired["expired"] is True and expired["expires_at"].endswith("Z")
    first = api.get(url + "?page[size]=2").get_json()
    assert [o["attributes"]["reference_id"] for o in first["data"]] == ["R0", "R1"]
    second = api.get(first["links"]["next"]).get_json()
    assert [o["attributes"]["reference_id"] for o in second["data"]] == ["R2", "R3"]
    for query, parameter in (("?filter[status]=reset", "filter[status]"),
                             ("?filter[expired]=yes", "filter[expired]"),
                             ("?filter[user]=x", "filter[user]")):
        bad = api.get(url + query)
        assert bad.status_code == 400
        assert errors_of(bad)[0]["source"] == {"parameter": parameter}


def test_listing_overrides_is_for_every_role_and_404_for_an_unknown_segment(api_as):
    segment = _power_users()
    support = api_as("support")
    assert support.get(f"/segments/{segment.id}/overrides").status_code == 200
    refused = support.post(f"/segments/{segment.id}/overrides", {"data": {
        "type": "overrides", "attributes": {"user": "x", "user_status": "add"}}})
    assert refused.status_code == 403
    missing = support.get("/segments/no-such-segment/overrides")
    assert missing.status_code == 404
    assert errors_of(missing)[0]["code"] == "segment_not_found"
