"""Members over the API: CRUD, filters, cursor pagination, batch upsert, search, events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.api.conftest import errors_of
from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import Member, MembershipEvent
from webapp.services.members import MemberError, clean_attributes
from webapp.targeting.paths import custom_field


def new_member(**attributes):
    return {"data": {"type": "members", "attributes": attributes}}


def test_create_get_update_delete_member(api):
    response = api.post("/members", new_member(external_id="U-1", email="Ana@Example.com",
                                               birthday="1990-04-01", tier="gold", points=50,
                                               badges=["a", "a", "b"],
                                               custom_fields={"city": "Lisbon"}))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()["data"]
    member_id = body["id"]
    assert body["attributes"]["email"] == "ana@example.com"
    assert body["attributes"]["badges"] == ["a", "b"]
    assert response.headers["Location"].endswith(f"/api/v1/members/{member_id}")
    for ref in (member_id, "U-1", "ana@example.com", "ANA@example.com"):
        got = api.get(f"/members/{ref}")
        assert got.status_code == 200 and got.get_json()["data"]["id"] == member_id
    patched = api.patch("/members/U-1", {"data": {"type": "members", "id": member_id,
                                                  "attributes": {"points": 75}}})
    assert patched.status_code == 200
    assert patched.get_json()["data"]["attributes"]["points"] == 75
    assert patched.get_json()["meta"]["changed"] == ["points"]
    assert api.delete("/members/U-1").status_code == 204
    assert api.get(f"/members/{member_id}").status_code == 404
    assert db.session.get(Member, member_id) is None


def test_list_filters_and_cursor_pagination(api):
    for n in range(7):
        make_member(external_id=f"P{n}", email=f"p{n}@example.com")
    seen = []
    url = "/members?page[size]=3"
    while url:
        page = api.get(url).get_json()
        assert len(page["data"]) <= 3
        seen.extend(m["id"] for m in page["data"])
        url = page["links"].get("next")
    assert len(seen) == 7 == len(set(seen)) and seen == sorted(seen)
    only = api.get("/members?filter[email]=P3@EXAMPLE.com").get_json()["data"]
    assert [m["attributes"]["external_id"] for m in only] == ["P3"]
    only = api.get("/members?filter[external_id]=P5").get_json()["data"]
    assert [m["attributes"]["email"] for m in only] == ["p5@example.com"]


def test_invalid_attributes_name_each_pointer_and_change_nothing(api):
    response = api.post("/members", new_member(external_id="", points="many", tier="diamond",
                                               birthday="1990-02-30", favourite="x", id="y"))
    assert response.status_code == 422
    pointers = {e["source"]["pointer"] for e in errors_of(response)}
    assert {"/data/attributes/favourite", "/data/attributes/id"} <= pointers
    response = api.post("/members", new_member(external_id="", points="many", tier="diamond",
                                               birthday="1990-02-30"))
    pointers = {e["source"]["pointer"] for e in errors_of(response)}
    assert pointers == {"/data/attributes/external_id", "/data/attributes/points",
                        "/data/attributes/tier", "/data/attributes/birthday"}
    assert db.session.scalar(select(Member.id)) is None


def test_duplicate_external_id_or_email_is_409(api):
    make_member(external_id="DUP", email="dup@example.com")
    response = api.post("/members", new_member(external_id="DUP"))
    assert response.status_code == 409
    assert errors_of(response)[0]["source"]["pointer"] == "/data/attributes/external_id"
    response = api.post("/members", new_member(external_id="OTHER", email="DUP@example.com"))
    assert response.status_code == 409
    assert errors_of(response)[0]["source"]["pointer"] == "/data/attributes/email"


def test_profile_change_moves_member_between_dynamic_segments_with_events(api):
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    member = make_member(external_id="M1", tier="bronze")
    response = api.patch("/members/M1", {"data": {"type": "members",
                                                  "attributes": {"tier": "gold"}}})
    assert response.status_code == 200
    events = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.member_id == member.id)).all()
    assert [(e.action, e.segment_id, e.source) for e in events] == [
        ("ADD", gold.id, "profile_change")]
    assert events[0].cause["fields"] == ["tier"]
    assert events[0].actor_label == "token admin-token"
    api.patch("/members/M1", {"data": {"type": "members", "attributes": {"tier": "silver"}}})
    api.delete("/members/M1")
    actions = db.session.scalars(select(MembershipEvent.action).where(
        MembershipEvent.member_id == member.id).order_by(MembershipEvent.id)).all()
    assert actions == ["ADD", "REMOVE"]


def test_delete_records_remove_events_for_every_segment(api):
    member = make_member(external_id="GONE")
    everyone = make_segment("Everyone")
    assert everyone.size == 1
    assert api.delete("/members/GONE").status_code == 204
    event = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.member_id == member.id, MembershipEvent.action == "REMOVE")).one()
    assert event.segment_id == everyone.id and event.cause["member_deleted"] is True
    db.session.refresh(everyone)
    assert everyone.size == 0


def test_batch_upsert_reports_each_item_and_applies_valid_ones(api):
    make_member(external_id="B1", points=1, email="b1@example.com")
    rich = make_segment("Rich", include=[{"field": "points", "operator": ">=", "value": 1000}])
    body = {"data": [
        {"type": "members", "attributes": {"external_id": "B1", "points": 5000}},
        {"type": "members", "attributes": {"external_id": "B2", "email": "b2@example.com"}},
        {"type": "members", "attributes": {"external_id": "B3", "points": "lots"}},
        {"type": "members", "attributes": {"external_id": "B2"}},
        {"type": "members", "attributes": {"external_id": "B4", "email": "b1@example.com"}},
        {"type": "people", "attributes": {"external_id": "B5"}},
        "nonsense",
    ]}
    response = api.post("/members/batch", body)
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["meta"]["results"]
    assert [r["result"] for r in results] == [
        "updated", "created", "invalid", "invalid", "invalid", "invalid", "invalid"]
    assert results[2]["errors"][0]["source"]["pointer"] == "/data/2/attributes/points"
    assert results[5]["errors"][0]["source"]["pointer"] == "/data/5/type"
    assert response.get_json()["meta"]["counts"] == {"created": 1, "updated": 1,
                                                     "unchanged": 0, "invalid": 5}
    assert db.session.scalar(select(Member.points).where(Member.external_id == "B1")) == 5000
    assert db.session.scalar(select(Member.id).where(Member.external_id == "B4")) is None
    db.session.refresh(rich)
    assert rich.size == 1
    again = api.post("/members/batch", {"data": [
        {"type": "members", "attributes": {"external_id": "B1", "points": 5000}}]})
    assert again.get_json()["meta"]["results"][0]["result"] == "unchanged"


def test_batch_over_the_limit_is_413_and_changes_nothing(app, api):
    app.config["LIMIT_BATCH"] = 3
    body = {"data": [{"type": "members", "attributes": {"external_id": f"X{n}"}}
                     for n in range(4)]}
    response = api.post("/members/batch", body)
    assert response.status_code == 413
    assert errors_of(response)[0]["source"]["pointer"] == "/data"
    assert db.session.scalar(select(Member.id)) is None


def test_search_counts_exactly_and_returns_first_page(api):
    for n in range(5):
        make_member(external_id=f"S{n}", tier="gold" if n % 2 == 0 else "bronze", points=n * 500)
    body = {"data": {"type": "member-searches", "attributes": {
        "include": [{"field": "tier", "operator": "equals", "value": "gold"}],
        "exclude": [{"field": "points", "operator": "<", "value": 500}]}}}
    response = api.post("/members/search?page[size]=1", body)
    assert response.status_code == 200, response.get_json()
    document = response.get_json()
    assert document["meta"]["count"] == 2
    assert len(document["data"]) == 1 and "next_cursor" in document["meta"]
    rest = api.post(f"/members/search?page[cursor]={document['meta']['next_cursor']}", body)
    assert len(rest.get_json()["data"]) == 1
    assert rest.get_json()["data"][0]["id"] != document["data"][0]["id"]


def test_search_refuses_a_bad_criterion_with_its_pointer(api):
    body = {"data": {"type": "member-searches", "attributes": {"include": [
        {"field": "tier", "operator": "equals", "value": "gold"},
        {"field": "points", "operator": ">", "value": "abc"}]}}}
    response = api.post("/members/search", body)
    assert response.status_code == 422
    error = errors_of(response)[0]
    assert error["source"]["pointer"] == "/data/attributes/include/1"
    assert "points" in error["detail"]


def test_batch_keeps_materialized_membership_equal_to_the_rules(api):
    """The batched re-evaluation agrees with live evaluation, dependent segments and
    overrides included (membership.verify_all is the oracle)."""
    from webapp.services.membership import verify_all

    def create(name, include):
        response = api.post("/segments", {"data": {"type": "segments", "attributes": {
            "name": name, "kind": "dynamic", "include": include}}})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]["id"]

    rich = create("Rich", [{"field": "points", "operator": ">=", "value": 1000}])
    create("Rich gold", [{"field": "segment", "operator": "in", "value": [int(rich)]},
                         {"field": "tier", "operator": "equals", "value": "gold"}])
    create("Not rich", [{"field": "segment", "operator": "not_in", "value": [int(rich)]}])
    items = [{"type": "members", "attributes": {"external_id": f"V{n}", "points": n * 300,
                                                "tier": "gold" if n % 2 else "silver"}}
             for n in range(8)]
    assert api.post("/members/batch", {"data": items}).status_code == 200
    api.post(f"/segments/{rich}/overrides", {"data": {"type": "overrides", "attributes": {
        "member": "V0", "status": "add"}}})
    assert verify_all() == []
    flipped = [{"type": "members", "attributes": {"external_id": f"V{n}",
                                                  "points": (7 - n) * 300}} for n in range(8)]
    assert api.post("/members/batch", {"data": flipped}).status_code == 200
    assert verify_all() == []


def test_only_an_admin_token_deletes_a_member(api_as):
    make_member(external_id="KEEP")
    for role in ("marketer", "support"):
        response = api_as(role).delete("/members/KEEP")
        assert response.status_code == 403, role
    assert db.session.scalar(select(Member.external_id)) == "KEEP"
    assert api_as("admin").delete("/members/KEEP").status_code == 204


def test_negative_points_xp_coins_are_refused_with_their_pointer(api):
    make_member(external_id="N1", points=10)
    for name in ("points", "xp", "coins"):
        response = api.patch("/members/N1", {"data": {"type": "members",
                                                      "attributes": {name: -5}}})
        assert response.status_code == 422, name
        error = errors_of(response)[0]
        assert error["source"]["pointer"] == f"/data/attributes/{name}"
        assert "0 or more" in error["detail"]
    response = api.post("/members", new_member(external_id="N2", points=-1))
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.scalar(select(Member.points).where(Member.external_id == "N1")) == 10
    assert api.patch("/members/N1", {"data": {"type": "members",
                                              "attributes": {"points": 0}}}).status_code == 200


AWKWARD_KEYS = ["attr/a", "a~b", "$groups", "ключ", 'a"b', "a.b", "Customer Type", " ", "[0]"]


def test_every_stored_custom_field_key_can_be_targeted(api):
    """Issue 14.7: a key the API stores is found by a criterion naming it (quoted as needed)."""
    for n, key in enumerate(AWKWARD_KEYS):
        response = api.post("/members", new_member(
            external_id=f"K{n}", custom_fields={key: n, "nested": {key: f"v{n}"}}))
        assert response.status_code == 201, response.get_json()
    for n, key in enumerate(AWKWARD_KEYS):
        for path, value in (([key], n), (["nested", key], f"v{n}")):
            body = {"data": {"type": "member-searches", "attributes": {"include": [
                {"field": custom_field(path), "operator": "equals", "value": value}]}}}
            response = api.post("/members/search", body)
            assert response.status_code == 200, (key, response.get_json())
            found = response.get_json()["data"]
            assert [m["attributes"]["external_id"] for m in found] == [f"K{n}"], key


def test_a_key_no_database_stores_is_refused_on_every_path(app, api):
    """Only keys that can never be targeted (U+0000, lone surrogates) are refused on write: the
    API refuses them as text, and the service, which the dashboard and uploads use, by key."""

    response = api.post("/members", new_member(external_id="Z", custom_fields={
        "ok": {"a\u0000b": 1}}))
    assert response.status_code == 400 and "NUL" in errors_of(response)[0]["detail"]
    for key, words in (("a\u0000b", "U+0000"), ("\ud800", "lone surrogate")):
        with pytest.raises(MemberError) as refused:
            clean_attributes({"custom_fields": {"ok": {key: 1}}}, partial=True)
        assert words in refused.value.errors["custom_fields"]
    assert clean_attributes({"custom_fields": {"": 1, "a.b": {"$x": 2}}}, partial=True) == {
        "custom_fields": {"": 1, "a.b": {"$x": 2}}}
    assert db.session.scalar(select(Member.id)) is None
