"""Segments over the API: tags, owner, archive and restore, and the list's filters."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.api.conftest import errors_of
from tests.factories import make_member, make_offer, make_reward, make_segment, make_user
from webapp.extensions import db
from webapp.models import AuditEntry, MembershipEvent


def segment_doc(**attributes):
    return {"data": {"type": "segments", "attributes": attributes}}


def patch_doc(segment_id, **attributes):
    return {"data": {"type": "segments", "id": str(segment_id), "attributes": attributes}}


def listed(response):
    assert response.status_code == 200, response.get_json()
    return [item["attributes"]["name"] for item in response.get_json()["data"]]


def test_tags_and_owner_are_saved_normalised_and_read_back(api):
    make_user("marketer", email="mia@example.test")
    created = api.post("/segments", segment_doc(
        name="VIPs", kind="static", tags=["  Q4  Campaign ", "loyalty", "LOYALTY"],
        owner="MIA@example.test"))
    assert created.status_code == 201, created.get_json()
    attributes = created.get_json()["data"]["attributes"]
    assert attributes["tags"] == ["loyalty", "q4 campaign"]
    assert attributes["owner"] == "mia@example.test"
    assert attributes["archived"] is False and attributes["archived_at"] is None
    segment_id = created.get_json()["data"]["id"]
    got = api.get(f"/segments/{segment_id}").get_json()["data"]["attributes"]
    assert (got["tags"], got["owner"]) == (["loyalty", "q4 campaign"], "mia@example.test")
    # PATCH of other attributes keeps them; null clears the owner; [] clears the tags.
    kept = api.patch(f"/segments/{segment_id}", patch_doc(segment_id, description="x"))
    assert kept.get_json()["data"]["attributes"]["tags"] == ["loyalty", "q4 campaign"]
    cleared = api.patch(f"/segments/{segment_id}", patch_doc(segment_id, owner=None, tags=[]))
    attributes = cleared.get_json()["data"]["attributes"]
    assert (attributes["tags"], attributes["owner"]) == ([], None)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "segment.update")
                               .order_by(AuditEntry.id.desc())).first()
    assert entry.before["owner"] == "mia@example.test" and entry.after["owner"] is None
    assert "tags" in entry.summary and "owner" in entry.summary


def test_tags_refuse_control_characters_only(api):
    """White space is collapsed, other text (however unusual) kept; control characters are
    refused, as the document's pattern says."""
    created = api.post("/segments", segment_doc(name="T", kind="static",
                                                tags=["q4\tcampaign", "caf\u00e9\u200b"]))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["data"]["attributes"]["tags"] == ["caf\u00e9\u200b",
                                                                "q4 campaign"]
    bell = api.post("/segments", segment_doc(name="U", kind="static", tags=["bell\u0007"]))
    assert bell.status_code == 422
    assert "no control characters" in errors_of(bell)[0]["detail"]


def test_bad_tags_and_unknown_owner_are_refused_with_messages(api):
    for attributes, pointer, words in [
        ({"tags": "loyalty"}, "/data/attributes/tags", "list"),
        ({"tags": ["x" * 41]}, "/data/attributes/tags", "at most 40 characters"),
        ({"tags": ["a,b"]}, "/data/attributes/tags", "comma"),
        ({"tags": [f"t{i}" for i in range(21)]}, "/data/attributes/tags", "at most 20 tags"),
        ({"tags": [1]}, "/data/attributes/tags", "list of words"),
        ({"owner": "nobody@example.test"}, "/data/attributes/owner", "not a user"),
        ({"owner": 12.5}, "/data/attributes/owner", "email"),
    ]:
        response = api.post("/segments", segment_doc(name="S", kind="static", **attributes))
        assert response.status_code == 422, (attributes, response.get_json())
        error = errors_of(response)[0]
        assert error["source"]["pointer"] == pointer
        assert words in error["detail"], (attributes, error["detail"])


def test_list_filters_by_tag_owner_and_archived(api):
    mia = make_user("marketer", email="mia@example.test")
    make_user("marketer", email="max@example.test")
    for name, tags, owner in [("A", ["vip"], "mia@example.test"), ("B", ["vip", "q4"], None),
                              ("C", ["q4"], "max@example.test"), ("D", [], None)]:
        response = api.post("/segments", segment_doc(name=name, kind="static", tags=tags,
                                                      owner=owner))
        assert response.status_code == 201
    assert listed(api.get("/segments?filter[tag]=VIP")) == ["A", "B"]
    assert listed(api.get("/segments?filter[owner]=Mia@example.test")) == ["A"]
    assert listed(api.get("/segments?filter[tag]=q4&filter[owner]=max@example.test")) == ["C"]
    assert listed(api.get("/segments?filter[owner]=nobody@example.test")) == []
    segment_d = api.get("/segments?filter[tag]=q4").get_json()["data"][0]["id"]
    api.patch(f"/segments/{segment_d}", patch_doc(segment_d, archived=True))
    assert listed(api.get("/segments")) == ["A", "B", "C", "D"]  # the API lists every one
    assert listed(api.get("/segments?filter[archived]=true")) == ["B"]
    assert listed(api.get("/segments?filter[archived]=false")) == ["A", "C", "D"]
    bad = api.get("/segments?filter[archived]=maybe")
    assert bad.status_code == 400
    assert errors_of(bad)[0]["source"]["parameter"] == "filter[archived]"
    assert mia.id  # the owner is a user


def test_archive_keeps_members_and_history_and_restore_brings_it_back(api):
    member = make_member(tier="gold")
    segment = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                             "value": "gold"}])
    events_before = db.session.scalar(select(func.count()).select_from(MembershipEvent))
    archived = api.patch(f"/segments/{segment.id}", patch_doc(segment.id, archived=True))
    assert archived.status_code == 200, archived.get_json()
    attributes = archived.get_json()["data"]["attributes"]
    assert attributes["archived"] is True and attributes["archived_at"].endswith("Z")
    assert attributes["size"] == 1  # members kept
    members = api.get(f"/segments/{segment.id}/relationships/members").get_json()
    assert [m["id"] for m in members["data"]] == [member.id]
    assert db.session.scalar(select(func.count()).select_from(MembershipEvent)) == events_before
    again = api.patch(f"/segments/{segment.id}", patch_doc(segment.id, archived=True))
    assert again.status_code == 200  # archiving an archived segment changes nothing
    restored = api.patch(f"/segments/{segment.id}", patch_doc(segment.id, archived=False))
    assert restored.get_json()["data"]["attributes"]["archived"] is False
    actions = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_id == str(segment.id)).order_by(AuditEntry.id)))
    assert actions[-2:] == ["segment.archive", "segment.restore"]


def test_archive_is_refused_while_used_naming_the_uses_and_nothing_changes(api):
    segment = make_segment("Used")
    make_offer("Spring sale", audiences=[("in_any_segment", {"segments": [segment.id]})])
    make_reward("Lounge", required=[segment])
    make_segment("Depends", include=[{"field": "segment", "operator": "in",
                                      "value": [segment.id]}])
    response = api.patch(f"/segments/{segment.id}",
                         patch_doc(segment.id, archived=True, description="changed"))
    assert response.status_code == 409
    error = errors_of(response)[0]
    assert error["code"] == "segment_in_use"
    for words in ("offer Spring sale", "reward Lounge", "segment Depends", "archiving"):
        assert words in error["detail"]
    assert {u["kind"] for u in error["meta"]["uses"]} == {"offer_audience", "reward", "segment"}
    got = api.get(f"/segments/{segment.id}").get_json()["data"]["attributes"]
    assert got["archived"] is False and got["description"] == ""  # nothing was saved


def test_archived_segment_cannot_be_newly_used(api):
    archived = make_segment("Old", kind="static")
    live = make_segment("Live", kind="static")
    api.patch(f"/segments/{archived.id}", patch_doc(archived.id, archived=True))
    offer = make_offer("Offer")
    audience = api.post("/audiences", {"data": {
        "type": "audiences", "attributes": {"audience_type": "in_any_segment",
                                            "configuration": {"segments": [archived.id]}},
        "relationships": {"offer": {"data": {"type": "offers", "id": str(offer.id)}}}}})
    assert audience.status_code == 422
    assert "Old is archived" in errors_of(audience)[0]["detail"]
    reward = make_reward("Reward")
    required = api.post(f"/rewards/{reward.id}/relationships/required_segments",
                        {"data": [{"type": "segments", "id": str(archived.id)}]})
    assert required.status_code == 422
    assert "Old is archived" in errors_of(required)[0]["detail"]
    criterion = api.post("/segments", segment_doc(name="New", kind="dynamic", include=[
        {"field": "segment", "operator": "in", "value": [archived.id]}]))
    assert criterion.status_code == 422
    error = errors_of(criterion)[0]
    assert error["source"]["pointer"] == "/data/attributes/include/0"
    assert "Old is archived" in error["detail"]
    fine = api.post("/segments", segment_doc(name="New", kind="dynamic", include=[
        {"field": "segment", "operator": "in", "value": [live.id]}]))
    assert fine.status_code == 201


def test_archived_cannot_be_set_on_create_and_must_be_a_boolean(api):
    created = api.post("/segments", segment_doc(name="S", kind="static", archived=True))
    assert created.status_code == 422
    assert errors_of(created)[0]["detail"] == "archived is read-only."
    segment = make_segment("S2", kind="static")
    bad = api.patch(f"/segments/{segment.id}", patch_doc(segment.id, archived="yes"))
    assert bad.status_code == 422
    assert errors_of(bad)[0]["source"]["pointer"] == "/data/attributes/archived"


def test_support_cannot_archive(api_as):
    segment = make_segment("S", kind="static")
    response = api_as("support").patch(f"/segments/{segment.id}",
                                       patch_doc(segment.id, archived=True))
    assert response.status_code == 403


def test_openapi_describes_tags_owner_and_archive(client):
    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    attributes = schemas["SegmentAttributes"]["properties"]
    for name in ("tags", "owner", "archived", "archived_at"):
        assert name in attributes
    parameters = {p["name"] for p in document["paths"]["/segments"]["get"]["parameters"]}
    assert {"filter[tag]", "filter[owner]", "filter[archived]"} <= parameters
