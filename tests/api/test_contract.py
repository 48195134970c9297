"""The server keeps to its OpenAPI document where schemathesis (all checks) found it did not."""

from __future__ import annotations

import pytest

from tests.api.conftest import errors_of
from tests.factories import make_member, make_offer, make_segment


@pytest.mark.parametrize("path", ["/members/batch", "/members/search"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "OPTIONS"])
def test_post_only_routes_advertise_only_post(api, path, method):
    """GET/PATCH/DELETE are 405 (not a lookup of a member named "batch"); Allow is POST."""
    make_member(external_id="batch")
    make_member(external_id="search")
    response = api.request(method, path, validate=method != "OPTIONS")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed - {"OPTIONS"} == {"POST"}
    if method != "OPTIONS":
        assert response.status_code == 405
        assert errors_of(response)[0]["code"] == "method_not_allowed"


def test_a_member_named_like_a_word_is_still_found_by_id(api):
    member = make_member(external_id="batch", email="batch@example.com")
    assert api.get(f"/members/{member.id}").get_json()["data"]["attributes"][
        "external_id"] == "batch"
    assert api.get("/members/batch@example.com").status_code == 200
    assert api.get("/members/batch/offers").status_code == 200  # a path of its own: no clash


@pytest.mark.parametrize(("path", "body", "attribute"), [
    ("/offers", {"name": "Spring", "discontinued": None}, "discontinued"),
    ("/offers", {"name": "Spring", "description": None}, "description"),
    ("/rewards", {"name": "Mug", "points": None}, "points"),
    ("/webhooks", {"url": "https://example.com/h", "event_filter": None}, "event_filter"),
    ("/members", {"external_id": "N-1", "badges": None}, "badges"),
    ("/segments", {"name": "S", "kind": "static", "description": None}, "description"),
])
def test_null_is_refused_where_the_document_does_not_allow_it(api, path, body, attribute):
    """Each attribute that is never null in answers refuses null, naming it; nothing is made."""
    kind = path.strip("/")
    response = api.post(path, {"data": {"type": kind, "attributes": body}})
    assert response.status_code == 422
    error = errors_of(response)[0]
    assert error["source"]["pointer"] == f"/data/attributes/{attribute}"
    assert f"{attribute} cannot be null" in error["detail"]
    assert api.get(path).get_json()["data"] == []


def test_null_still_clears_what_may_be_null(api):
    offer = make_offer("Spring")
    response = api.patch(f"/offers/{offer.id}", {"data": {"type": "offers", "attributes": {
        "external_id": None, "expire_at": None}}})
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["expire_at"] is None
    response = api.patch(f"/offers/{offer.id}", {"data": {"type": "offers", "attributes": {
        "discontinued": None}}})
    assert response.status_code == 422


def test_a_null_fulfilment_deadline_means_no_deadline(api):
    """must_fulfill_within_days is nullable in the document: null is taken as no deadline."""
    response = api.post("/offers", {"data": {"type": "offers", "attributes": {
        "name": "Spring", "requires_activation": True, "must_fulfill_within_days": None}}})
    assert response.status_code == 201
    offer = response.get_json()["data"]
    assert offer["attributes"]["must_fulfill_within_days"] is None
    api.patch(f"/offers/{offer['id']}", {"data": {"type": "offers", "attributes": {
        "must_fulfill_within_days": 7}}})
    response = api.patch(f"/offers/{offer['id']}", {"data": {"type": "offers", "attributes": {
        "must_fulfill_within_days": None}}})
    assert response.status_code == 200
    assert response.get_json()["data"]["attributes"]["must_fulfill_within_days"] is None


def test_an_empty_event_filter_means_every_event(api):
    response = api.post("/webhooks", {"data": {"type": "webhooks", "attributes": {
        "url": "https://example.com/h", "event_filter": {"actions": None, "segments": None}}}})
    assert response.status_code == 201
    assert response.get_json()["data"]["attributes"]["event_filter"] == {
        "actions": None, "segments": None}


def test_a_taken_unique_value_is_a_409_conflict(api):
    make_segment("First", kind="static", customer_segment_id="CRM-1")
    response = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "name": "Second", "kind": "static", "customer_segment_id": "CRM-1"}}})
    assert response.status_code == 409
    error = errors_of(response)[0]
    assert error["code"] == "conflict"
    assert error["source"]["pointer"] == "/data/attributes/customer_segment_id"
    make_offer("Spring", external_id="OF-1")
    response = api.post("/offers", {"data": {"type": "offers", "attributes": {
        "name": "Summer", "external_id": "OF-1"}}})
    assert response.status_code == 409 and "already used" in errors_of(response)[0]["detail"]


@pytest.mark.parametrize(("document", "pointer"), [
    ({"data": {"type": "offers", "attributes": {"name": "X"}}, "extra": 1}, "/extra"),
    ({"data": {"type": "offers", "attributes": {"name": "X"}, "extra": 1}}, "/data/extra"),
    ({"data": {"type": "offers", "attributes": {"name": "X"}}, "meta": 5}, "/meta"),
    ({"data": {"type": "offers", "attributes": {"name": "X"}}, "meta": {"": 1}}, "/meta/"),
    ({"data": {"type": "offers", "attributes": {"name": "X", "description": 1e300}}},
     "/data/attributes/description"),
])
def test_members_json_api_does_not_define_are_refused(api, document, pointer):
    """Unknown document or resource members, empty member names, numbers beyond 64 bits."""
    response = api.post("/offers", document)
    assert response.status_code in (400, 422)
    assert errors_of(response)[0]["source"]["pointer"] == pointer
    assert api.get("/offers").get_json()["data"] == []


def test_a_resource_id_is_a_string(api):
    member = make_member(external_id="0", points=7)
    response = api.patch("/members/0", {"data": {"type": "members", "id": 0,
                                                 "attributes": {"points": 5}}})
    assert response.status_code == 400
    assert errors_of(response)[0]["source"]["pointer"] == "/data/id"
    assert api.get(f"/members/{member.id}").get_json()["data"]["attributes"]["points"] == 7


def test_the_document_describes_what_the_server_refuses(api):
    """additionalProperties false, no NUL, 64-bit numbers, and links from each create."""
    spec = api.get("/openapi.json", validate=False).get_json()
    schemas = spec["components"]["schemas"]
    offer = schemas["OfferCreate"]
    assert offer["additionalProperties"] is False
    attributes = offer["properties"]["data"]["properties"]["attributes"]
    assert attributes["additionalProperties"] is False
    assert schemas["Criterion"]["additionalProperties"] is False
    assert schemas["MemberCreate"]["properties"]["data"]["properties"]["attributes"][
        "properties"]["tier"]["enum"] == ["bronze", "silver", "gold", "platinum"]
    event_filter = schemas["WebhookCreate"]["properties"]["data"]["properties"]["attributes"][
        "properties"]["event_filter"]
    assert event_filter["type"] == "object" and event_filter["additionalProperties"] is False
    assert attributes["properties"]["discontinued"] == {"type": "boolean"}
    links = spec["paths"]["/offers"]["post"]["responses"]["201"]["links"]
    assert links["offer_get"]["parameters"] == {"offer_id": "$response.body#/data/id"}
    allow = spec["paths"]["/members/batch"]
    assert set(allow) == {"post"}
