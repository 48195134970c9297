"""Segments over the API: CRUD by id or customer segment id, lists, overrides, scenarios."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.api.conftest import errors_of
from tests.factories import add_to_list, make_member, make_offer, make_reward, make_segment
from webapp.extensions import db
from webapp.models import MembershipEvent, Segment, SegmentMembership


def segment_doc(**attributes):
    return {"data": {"type": "segments", "attributes": attributes}}


def members(*ids):
    return {"data": [{"type": "members", "id": i} for i in ids]}


def test_customer_segment_add_and_remove_members_by_identity_with_events(api):
    """Seed 003 (CleverTap): a segment with a customer segment id, members added and removed
    by their identities, and the ADD/REMOVE events read back with the segment's ids."""
    ana = make_member(external_id="U-ANA", email="ana@example.com")
    bob = make_member(external_id="U-BOB", email="bob@example.com")
    cy = make_member(external_id="U-CY", email="cy@example.com")
    created = api.post("/segments", segment_doc(name="Gold Users", kind="static",
                                                customer_segment_id="SEG12345"))
    assert created.status_code == 201, created.get_json()
    segment_id = created.get_json()["data"]["id"]
    response = api.post("/segments/SEG12345/relationships/members",
                        members(ana.id, "U-BOB", "CY@example.com", "nobody", "U-BOB"))
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["meta"]["results"]
    assert [r["result"] for r in results] == ["added", "added", "added", "unknown_member",
                                              "already_member"]
    assert [r.get("member_id") for r in results[:3]] == [ana.id, bob.id, cy.id]
    got = api.get("/segments/SEG12345").get_json()["data"]
    assert got["id"] == segment_id and got["attributes"]["size"] == 3
    removed = api.delete("/segments/SEG12345/relationships/members",
                         members("bob@example.com", "U-BOB", "nobody", {"bad": 1}))
    assert [r["result"] for r in removed.get_json()["meta"]["results"]] == [
        "removed", "not_member", "unknown_member", "invalid"]
    feed = api.get("/events?filter[segment]=SEG12345").get_json()
    rows = [(e["attributes"]["action"], e["attributes"]["member_id"]) for e in feed["data"]]
    assert rows == [("ADD", ana.id), ("ADD", bob.id), ("ADD", cy.id), ("REMOVE", bob.id)]
    first = feed["data"][0]["attributes"]
    assert first["segment_name"] == "Gold Users"
    assert first["customer_segment_id"] == "SEG12345"
    assert first["segment_id"] == int(segment_id)
    assert first["source"] == "api" and first["cause"]["actor"] == "token admin-token"
    assert first["member_external_id"] == "U-ANA"
    only_removes = api.get(f"/events?filter[segment]={segment_id}&filter[action]=REMOVE")
    assert [e["attributes"]["member_id"] for e in only_removes.get_json()["data"]] == [bob.id]
    assert api.get("/events?filter[member]=U-BOB").get_json()["data"][-1]["attributes"][
        "action"] == "REMOVE"
    members_page = api.get("/segments/SEG12345/relationships/members").get_json()
    assert sorted(i["id"] for i in members_page["data"]) == sorted([ana.id, cy.id])


def test_list_segments_with_page_size_and_kind_filter(api):
    """Seed 002 (Monterosa): list with a limit and a type filter."""
    for n in range(4):
        make_segment(f"Static {n}", kind="static")
    for n in range(3):
        make_segment(f"Dynamic {n}")
    page = api.get("/segments?page[size]=2&filter[kind]=static").get_json()
    assert [s["attributes"]["kind"] for s in page["data"]] == ["static", "static"]
    rest = api.get(page["links"]["next"]).get_json()
    assert [s["attributes"]["name"] for s in rest["data"]] == ["Static 2", "Static 3"]
    assert "next" not in rest["links"]
    dynamic = api.get("/segments?filter[kind]=dynamic").get_json()["data"]
    assert len(dynamic) == 3
    assert len(api.get("/segments").get_json()["data"]) == 7
    too_big = api.get("/segments?page[size]=101")
    assert too_big.status_code == 400
    assert errors_of(too_big)[0]["source"] == {"parameter": "page[size]"}
    bad_kind = api.get("/segments?filter[kind]=both")
    assert errors_of(bad_kind)[0]["source"] == {"parameter": "filter[kind]"}
    unknown = api.get("/segments?filter[colour]=red")
    assert unknown.status_code == 400
    assert errors_of(unknown)[0]["source"] == {"parameter": "filter[colour]"}
    by_customer = make_segment("Mine", kind="static", customer_segment_id="C-9")
    found = api.get("/segments?filter[customer_segment_id]=C-9").get_json()["data"]
    assert [s["id"] for s in found] == [str(by_customer.id)]


def test_add_block_and_reset_a_member(api):
    """Seed 004 (Village): add, block and reset with reference id, metadata, timestamp."""
    member = make_member(external_id="V-1", points=10)
    segment = make_segment("Power users", include=[{"field": "points", "operator": ">=",
                                                    "value": 1000}])
    url = f"/segments/{segment.id}/overrides"
    added = api.post(url, {"data": {"type": "overrides", "attributes": {
        "member": "V-1", "status": "add", "reference_id": "R-1", "description": "Developer",
        "metadata": {"source": "crm"}, "status_change_timestamp": 1700000000}}})
    assert added.status_code == 200, added.get_json()
    result = added.get_json()["meta"]["results"][0]
    assert result["result"] == "applied" and result["member_id"] == member.id
    assert result["override"]["reference_id"] == "R-1"
    assert result["override"]["status_change_timestamp"] == "2023-11-14T22:13:20Z"
    assert _in(segment, member)
    blocked = api.post(url, {"data": [{"type": "overrides", "attributes": {
        "member": "V-1", "status": "block"}}]})
    assert blocked.get_json()["meta"]["results"][0]["result"] == "applied"
    assert not _in(segment, member)
    reset = api.post(url, {"data": [
        {"type": "overrides", "relationships": {"member": {"data": {
            "type": "members", "id": member.email}}}, "attributes": {"status": "reset"}},
        {"type": "overrides", "attributes": {"member": "ghost", "status": "add"}},
        {"type": "overrides", "attributes": {"member": "V-1", "status": "pin"}}]})
    results = reset.get_json()["meta"]["results"]
    assert [r["result"] for r in results] == ["applied", "unknown_member", "invalid"]
    assert results[2]["errors"][0]["source"]["pointer"] == "/data/2/attributes/status"
    assert not _in(segment, member)
    actions = db.session.scalars(select(MembershipEvent.action).where(
        MembershipEvent.segment_id == segment.id).order_by(MembershipEvent.id)).all()
    assert actions == ["ADD", "REMOVE"]


def test_overrides_refused_on_static_segment_and_lists_on_dynamic(api):
    static = make_segment("List", kind="static")
    dynamic = make_segment("Rules")
    make_member(external_id="Z")
    response = api.post(f"/segments/{static.id}/overrides", {"data": {
        "type": "overrides", "attributes": {"member": "Z", "status": "add"}}})
    assert response.status_code == 409
    assert errors_of(response)[0]["code"] == "segment_not_dynamic"
    response = api.post(f"/segments/{dynamic.id}/relationships/members", members("Z"))
    assert response.status_code == 409
    assert errors_of(response)[0]["code"] == "segment_not_static"


def test_create_dynamic_segment_refuses_bad_criterion_with_pointer(api):
    response = api.post("/segments", segment_doc(name="Bad", kind="dynamic", include=[
        {"field": "tier", "operator": "equals", "value": "gold"},
        {"field": "points", "operator": ">", "value": "abc"}]))
    assert response.status_code == 422
    assert errors_of(response)[0]["source"]["pointer"] == "/data/attributes/include/1"
    assert db.session.scalar(select(func.count()).select_from(Segment)) == 0


def test_create_dynamic_segment_is_materialized_with_exact_size(api):
    make_member(tier="gold")
    make_member(tier="gold")
    make_member(tier="bronze")
    response = api.post("/segments", segment_doc(name="Gold", kind="dynamic", include=[
        {"field": "tier", "operator": "equals", "value": "gold"}]))
    assert response.get_json()["data"]["attributes"]["size"] == 2
    segment_id = response.get_json()["data"]["id"]
    patched = api.patch(f"/segments/{segment_id}", {"data": {
        "type": "segments", "id": segment_id, "attributes": {
            "include": [{"field": "tier", "operator": "in", "value": ["gold", "bronze"]}],
            "version": 1}}})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["data"]["attributes"]["size"] == 3
    stale = api.patch(f"/segments/{segment_id}", {"data": {
        "type": "segments", "attributes": {"name": "Renamed", "version": 1}}})
    assert stale.status_code == 409
    assert errors_of(stale)[0]["source"]["pointer"] == "/data/attributes/version"


def test_delete_segment_in_use_is_409_listing_uses(api, api_as):
    segment = make_segment("Needed", kind="static")
    make_reward("Coffee", required=[segment])
    make_offer("Spa", audiences=[("in_any_segment", {"segments": [segment.id]})])
    assert api_as("marketer").delete(f"/segments/{segment.id}").status_code == 403
    response = api.delete(f"/segments/{segment.id}")
    assert response.status_code == 409
    error = errors_of(response)[0]
    assert error["code"] == "segment_in_use"
    assert {u["kind"] for u in error["meta"]["uses"]} == {"reward", "offer_audience"}
    assert db.session.get(Segment, segment.id) is not None
    unused = make_segment("Unused", kind="static")
    member = make_member()
    add_to_list(unused, member)
    assert api.delete(f"/segments/{unused.id}").status_code == 204
    assert db.session.scalar(select(func.count()).select_from(SegmentMembership)) == 0


def test_list_change_cascades_to_dependent_dynamic_segments(api):
    member = make_member(external_id="D1")
    base = make_segment("Base", kind="static")
    created = api.post("/segments", segment_doc(name="Derived", kind="dynamic", include=[
        {"field": "segment", "operator": "in", "value": [base.id]}]))
    derived = db.session.get(Segment, int(created.get_json()["data"]["id"]))
    api.post(f"/segments/{base.id}/relationships/members", members("D1"))
    assert _in(derived, member)
    api.delete(f"/segments/{base.id}/relationships/members", members("D1"))
    assert not _in(derived, member)


def test_static_list_limit_is_refused_whole(app, api):
    app.config["LIMIT_STATIC_MEMBERS"] = 2
    segment = make_segment("Small", kind="static")
    for n in range(3):
        make_member(external_id=f"L{n}")
    response = api.post(f"/segments/{segment.id}/relationships/members",
                        members("L0", "L1", "L2"))
    assert response.status_code == 422
    detail = errors_of(response)[0]["detail"]
    assert "The limit is 2 members per static segment" in detail
    assert "LIMIT_STATIC_MEMBERS" not in detail
    assert db.session.scalar(select(func.count()).select_from(SegmentMembership)) == 0


def _in(segment, member) -> bool:
    return db.session.scalar(select(func.count()).select_from(SegmentMembership).where(
        SegmentMembership.segment_id == segment.id,
        SegmentMembership.member_id == member.id)) == 1


def test_customer_segment_id_refused_when_all_digits_or_unsafe_in_a_url(api):
    other = make_segment("Numbered", kind="static")
    for bad in (str(other.id), "2", "a/b?c#d", "with space", "..", "café"):
        response = api.post("/segments", segment_doc(name="New", kind="static",
                                                     customer_segment_id=bad))
        assert response.status_code == 422, bad
        error = errors_of(response)[0]
        assert error["source"]["pointer"] == "/data/attributes/customer_segment_id", bad
        assert "Customer segment id" in error["detail"]
        assert "- _ . : ~" in error["detail"]
    assert db.session.scalar(select(func.count()).select_from(Segment)) == 1
    created = api.post("/segments", segment_doc(name="New", kind="static",
                                                customer_segment_id="crm:VIP_2026.v1~x"))
    assert created.status_code == 201
    got = api.get("/segments/crm:VIP_2026.v1~x").get_json()["data"]
    assert got["id"] == created.get_json()["data"]["id"]
    assert api.get(f"/segments/{other.id}").get_json()["data"]["attributes"]["name"] == \
        "Numbered"


def test_get_by_id_wins_over_a_numeric_customer_segment_id(api):
    first = make_segment("First", kind="static")
    clash = make_segment("Clash", kind="static", customer_segment_id=str(first.id))
    named = make_segment("Named", kind="static", customer_segment_id="crm:VIP")
    for reference, expected in ((first.id, first), ("crm:VIP", named), (clash.id, clash)):
        document = api.get(f"/segments/{reference}").get_json()
        assert document["data"]["id"] == str(expected.id)
        assert document["data"]["attributes"]["name"] == expected.name
    missing = api.get("/segments/nope")
    assert missing.status_code == 404
    assert missing.get_json()["errors"][0]["code"] == "segment_not_found"


def test_self_links_are_absolute_uris_of_the_request(api):
    segment = make_segment("Linked", kind="static", customer_segment_id="crm:VIP_2026.v1~x")
    document = api.get("/segments/crm:VIP_2026.v1~x").get_json()
    assert document["links"]["self"] == "http://localhost/api/v1/segments/crm:VIP_2026.v1~x"
    assert document["data"]["links"]["self"] == f"http://localhost/api/v1/segments/{segment.id}"
    assert document["data"]["relationships"]["members"]["links"]["self"] == \
        f"http://localhost/api/v1/segments/{segment.id}/relationships/members"
    listed = api.get("/segments?page[size]=1").get_json()
    assert listed["links"]["self"] == "http://localhost/api/v1/segments?page%5Bsize%5D=1"
    prefixed = api.get("/segments/crm:VIP_2026.v1~x", base_url="https://beacon.example/x")
    assert prefixed.get_json()["links"]["self"] == \
        "https://beacon.example/x/api/v1/segments/crm:VIP_2026.v1~x"
