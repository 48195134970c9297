"""Seed 003 (CleverTap API segments) over HTTP: POST /segment-memberships adds and removes
members across many segments, named by id or customer segment id, with a result per (segment,
member), optionally creating unknown members; one transaction, limits, roles."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.api.conftest import errors_of
from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import Member, MembershipEvent, SegmentMembership


def item(segment, action, *members):
    return {"type": "segment-memberships",
            "attributes": {"segment": segment, "action": action, "members": list(members)}}


def body(*items, **meta):
    document = {"data": list(items)}
    if meta:
        document["meta"] = meta
    return document


def members_of(segment) -> set[str]:
    return set(db.session.scalars(select(Member.external_id).join(
        SegmentMembership, SegmentMembership.member_id == Member.id).where(
        SegmentMembership.segment_id == segment.id)))


def test_add_and_remove_across_segments_with_a_result_per_pair(api):
    """The seed's flow: a segment created with a Customer Segment ID, then updated by it."""
    ana = make_member(external_id="U-ANA", email="ana@example.com")
    make_member(external_id="U-BOB")
    created = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "name": "Gold Users", "kind": "static", "customer_segment_id": "SEG12345"}}})
    gold_id = int(created.get_json()["data"]["id"])
    churn = make_segment("Churn risk", kind="static")
    response = api.post("/segment-memberships", body(
        item("SEG12345", "add", "U-ANA", "bob-nobody", "ANA@example.com"),
        item(churn.id, "add", ana.id, "U-BOB"),
        item(str(churn.id), "remove", "U-BOB", "U-BOB")))
    assert response.status_code == 200, response.get_json()
    meta = response.get_json()["meta"]
    pairs = [(r["index"], r.get("id"), r["result"]) for r in meta["results"]]
    assert pairs == [(0, "U-ANA", "added"), (0, "bob-nobody", "unknown_member"),
                     (0, "ANA@example.com", "already_member"),
                     (1, ana.id, "added"), (1, "U-BOB", "added"),
                     (2, "U-BOB", "removed"), (2, "U-BOB", "not_member")]
    assert meta["results"][0]["segment_id"] == str(gold_id)
    assert meta["results"][0]["member_id"] == ana.id
    assert meta["counts"] == {"added": 3, "unknown_member": 1, "already_member": 1,
                              "removed": 1, "not_member": 1}
    assert meta["members_created"] == 0
    sizes = {s["id"]: s["size"] for s in meta["segments"]}
    assert sizes == {str(gold_id): 1, str(churn.id): 1}
    assert members_of(churn) == {"U-ANA"}
    assert api.get("/segments/SEG12345").get_json()["data"]["attributes"]["size"] == 1
    events = api.get("/events?filter[segment]=SEG12345").get_json()["data"]
    assert [(e["attributes"]["action"], e["attributes"]["customer_segment_id"],
             e["attributes"]["segment_name"], e["attributes"]["source"]) for e in events] == [
        ("ADD", "SEG12345", "Gold Users", "api")]
    assert events[0]["attributes"]["cause"]["operation"] == "segment_memberships"


def test_unknown_members_are_created_when_the_request_asks(api):
    make_member(external_id="KNOWN")
    segment = make_segment("API segment", kind="static", customer_segment_id="api-seg")
    rich = make_segment("Everyone bronze", include=[{"field": "tier", "operator": "equals",
                                                     "value": "bronze"}])
    response = api.post("/segment-memberships", body(
        item("api-seg", "add", "KNOWN", "new-77", "New.Person@Example.com",
             "new.person@example.com"),
        item("api-seg", "remove", "never-seen"),
        create_unknown_members=True))
    assert response.status_code == 200, response.get_json()
    meta = response.get_json()["meta"]
    results = meta["results"]
    assert [(r["id"], r["result"], r.get("member_created", False)) for r in results] == [
        ("KNOWN", "added", False), ("new-77", "added", True),
        ("New.Person@Example.com", "added", True),
        ("new.person@example.com", "already_member", True),
        ("never-seen", "unknown_member", False)]
    assert meta["members_created"] == 2  # one person, named twice by email
    assert results[2]["member_id"] == results[3]["member_id"]
    created = api.get("/members/new.person@example.com").get_json()["data"]["attributes"]
    assert created["email"] == "new.person@example.com"
    assert created["external_id"] == "New.Person@Example.com"
    assert api.get("/members/new-77").get_json()["data"]["attributes"]["email"] is None
    assert api.get("/members/never-seen", validate=False).status_code == 404
    assert members_of(segment) == {"KNOWN", "new-77", "New.Person@Example.com"}
    # A new member is placed in the dynamic segments it matches, in the same transaction.
    assert {"new-77", "New.Person@Example.com"} <= members_of(rich)
    long_identity = "x" * 300  # a member may be named by 320 characters, an external id 255
    too_long = api.post("/segment-memberships", body(item("api-seg", "add", long_identity),
                                                     create_unknown_members=True))
    refused = too_long.get_json()["meta"]["results"][0]
    assert refused["result"] == "invalid"
    assert "none can be created from it: external_id has at most 255 characters" in \
        refused["detail"]
    assert refused["errors"][0]["source"]["pointer"] == "/data/0/attributes/members/0"
    without_flag = api.post("/segment-memberships", body(item("api-seg", "add", "other-9")))
    assert without_flag.get_json()["meta"]["results"][0]["result"] == "unknown_member"
    assert db.session.scalar(select(func.count()).select_from(Member).where(
        Member.external_id == "other-9")) == 0


def test_invalid_items_are_reported_and_skipped_while_the_rest_applies(api):
    make_member(external_id="M1")
    static = make_segment("List", kind="static", customer_segment_id="list")
    dynamic = make_segment("Rules", customer_segment_id="rules",
                           include=[{"field": "points", "operator": ">=", "value": 10**6}])
    response = api.post("/segment-memberships", body(
        item("no-such-segment", "add", "M1", "M2"),
        item("rules", "add", "M1"),
        item("list", "toggle", "M1"),
        {"type": "segments", "attributes": {}},
        item("list", "add", "M1", "", 42),
        "not an object"))
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["meta"]["results"]
    by_index = {}
    for r in results:
        by_index.setdefault(r["index"], []).append(r)
    assert "no segment has the id or customer segment id 'no-such-segment'" in \
        by_index[0][0]["detail"].lower()
    assert by_index[0][0]["errors"][0]["source"]["pointer"] == "/data/0/attributes/segment"
    assert [(r["id"], r["position"], r["result"]) for r in by_index[0]] == [
        ("M1", 0, "invalid"), ("M2", 1, "invalid")]
    assert by_index[1][0]["segment_id"] == str(dynamic.id)
    assert f"/api/v1/segments/{dynamic.id}/overrides" in by_index[1][0]["detail"]
    assert by_index[2][0]["errors"][0]["source"]["pointer"] == "/data/2/attributes/action"
    assert by_index[3][0]["errors"][0]["source"]["pointer"] == "/data/3/type"
    assert [r["result"] for r in by_index[4]] == ["added", "invalid", "invalid"]
    assert by_index[4][2]["errors"][0]["source"]["pointer"] == "/data/4/attributes/members/2"
    assert by_index[5][0]["result"] == "invalid"
    assert members_of(static) == {"M1"} and members_of(dynamic) == set()


def test_limits_refuse_the_whole_request_naming_the_limit(app, api):
    make_member(external_id="M1")
    segment = make_segment("List", kind="static", customer_segment_id="list")
    too_many_segments = api.post("/segment-memberships", body(
        *[item("list", "add", "M1") for _ in range(101)]))
    assert too_many_segments.status_code == 413
    assert "The limit is 100 segments per request" in errors_of(too_many_segments)[0]["detail"]
    profiles = [f"P-{n}" for n in range(60)]
    too_many_profiles = api.post("/segment-memberships", body(
        item("list", "add", "M1", *profiles), item("list", "remove", *[f"Q-{n}" for n in
                                                                        range(41)]),
        create_unknown_members=True))
    assert too_many_profiles.status_code == 413
    error = errors_of(too_many_profiles)[0]
    assert "The limit is 100 member profiles per request; 102 different members" in \
        error["detail"]
    long_item = api.post("/segment-memberships", body(item("list", "add", *["M1"] * 101)))
    assert long_item.status_code == 413
    assert errors_of(long_item)[0]["source"]["pointer"] == "/data/0/attributes/members"
    app.config["LIMIT_STATIC_MEMBERS"] = 1
    over = api.post("/segment-memberships", body(
        item("list", "add", "M1"), item("list", "add", "new-1"), create_unknown_members=True))
    assert over.status_code == 422
    assert "The limit is 1 members per static segment" in errors_of(over)[0]["detail"]
    assert errors_of(over)[0]["source"]["pointer"] == "/data/1"
    # Refused whole: neither the first item's add nor the created member remains.
    assert members_of(segment) == set()
    assert db.session.scalar(select(func.count()).select_from(Member)) == 1
    assert db.session.scalar(select(func.count()).select_from(MembershipEvent)) == 0


def test_bad_documents_and_roles(api, api_as):
    make_segment("List", kind="static", customer_segment_id="list")
    not_a_list = api.post("/segment-memberships", {"data": item("list", "add", "x")})
    assert not_a_list.status_code == 400
    assert errors_of(not_a_list)[0]["source"]["pointer"] == "/data"
    bad_flag = api.post("/segment-memberships", body(item("list", "add", "x"),
                                                     create_unknown_members="yes"))
    assert bad_flag.status_code == 400
    assert errors_of(bad_flag)[0]["source"]["pointer"] == "/meta/create_unknown_members"
    misspelt = api.post("/segment-memberships", body(item("list", "add", "x"),
                                                     create_members=True))
    assert errors_of(misspelt)[0]["source"]["pointer"] == "/meta/create_members"
    support = api_as("support").post("/segment-memberships", body(item("list", "add", "x")))
    assert support.status_code == 403
    marketer = api_as("marketer").post("/segment-memberships", body(
        item("list", "add", "x"), create_unknown_members=True))
    assert marketer.status_code == 200
    assert marketer.get_json()["meta"]["results"][0]["result"] == "added"
