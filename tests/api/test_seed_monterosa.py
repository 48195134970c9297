"""Seed 002 (Monterosa segments API) over HTTP: `limit` and `type` on the list, PUT replacing a
segment whole, and `estimatedSize` as the exact size."""

from __future__ import annotations

from tests.api.conftest import errors_of
from tests.factories import add_to_list, make_member, make_segment


def segment_doc(**attributes):
    return {"data": {"type": "segments", "attributes": attributes}}


def test_list_takes_the_seeds_limit_and_type_as_aliases(api):
    """GET /v1/segments?limit=2&type=static, as the seed writes it (base URL /api/v1)."""
    for n in range(3):
        make_segment(f"Static {n}", kind="static")
    make_segment("Dynamic 0")
    page = api.get("/segments?limit=2&type=static").get_json()
    assert [s["attributes"]["name"] for s in page["data"]] == ["Static 0", "Static 1"]
    rest = api.get(page["links"]["next"]).get_json()  # the alias is kept in the next link
    assert [s["attributes"]["name"] for s in rest["data"]] == ["Static 2"]
    assert "limit=2" in page["links"]["next"]
    dynamic = api.get("/segments?type=dynamic").get_json()["data"]
    assert [s["attributes"]["name"] for s in dynamic] == ["Dynamic 0"]


def test_list_aliases_are_checked_like_the_parameters_they_stand_for(api):
    too_big = api.get("/segments?limit=101")
    assert too_big.status_code == 400
    assert errors_of(too_big)[0]["source"] == {"parameter": "limit"}
    assert "limit is from 1 to 100" in errors_of(too_big)[0]["detail"]
    bad_type = api.get("/segments?type=both")
    assert bad_type.status_code == 400
    assert errors_of(bad_type)[0]["source"] == {"parameter": "type"}
    both = api.get("/segments?limit=5&page[size]=5")
    assert both.status_code == 400
    assert errors_of(both)[0]["detail"] == "Give page[size] or its alias limit, not both."
    both_kinds = api.get("/segments?type=static&filter[kind]=static")
    assert both_kinds.status_code == 400
    assert errors_of(both_kinds)[0]["source"] == {"parameter": "type"}


def test_segments_carry_estimated_size_equal_to_the_exact_size(api):
    members = [make_member(points=p) for p in (5, 50, 500)]
    static = make_segment("List", kind="static")
    add_to_list(static, *members[:2])
    dynamic = make_segment("Rich", include=[{"field": "points", "operator": ">=", "value": 50}])
    for segment, size in ((static, 2), (dynamic, 2)):
        attributes = api.get(f"/segments/{segment.id}").get_json()["data"]["attributes"]
        assert attributes["size"] == attributes["estimatedSize"] == size
    listed = {s["id"]: s["attributes"] for s in api.get("/segments").get_json()["data"]}
    assert listed[str(dynamic.id)]["estimatedSize"] == 2
    created = api.post("/segments", segment_doc(name="All", kind="dynamic"))
    assert created.get_json()["data"]["attributes"]["estimatedSize"] == 3
    refused = api.patch(f"/segments/{static.id}", segment_doc(estimatedSize=9))
    assert refused.status_code == 422
    assert errors_of(refused)[0]["source"]["pointer"] == "/data/attributes/estimatedSize"
    assert errors_of(refused)[0]["detail"] == "estimatedSize is read-only."


def test_put_replaces_the_definition_whole(api):
    """PUT /v1/segments/{segmentId}: the criteria, name and description given replace the old
    ones; what is left out is cleared (PATCH keeps it)."""
    make_member(external_id="GOLD", tier="gold", points=2000)
    make_member(external_id="TEST", tier="gold", points=2000,
                custom_fields={"test_account": True})
    make_member(external_id="POOR", tier="gold", points=10)
    created = api.post("/segments", segment_doc(
        name="Engaged", kind="dynamic", description="old", customer_segment_id="ENG",
        url="https://example.com/quiz",
        include=[{"field": "tier", "operator": "equals", "value": "gold"}]))
    assert created.get_json()["data"]["attributes"]["size"] == 3
    replaced = api.request("PUT", "/segments/ENG", segment_doc(
        name="Engaged VIPs", kind="dynamic",
        include=[{"field": "tier", "operator": "in", "value": ["gold", "platinum"]},
                 {"field": "points", "operator": ">=", "value": 1000}],
        exclude=[{"field": "customFields.test_account", "operator": "equals", "value": True}]))
    assert replaced.status_code == 200, replaced.get_json()
    attributes = replaced.get_json()["data"]["attributes"]
    assert attributes["name"] == "Engaged VIPs"
    assert attributes["description"] == "" and attributes["url"] is None
    assert attributes["customer_segment_id"] == "ENG"  # identity, kept when left out
    assert attributes["exclude"] == [{"field": "custom_fields.test_account",
                                      "operator": "equals", "value": True}]
    assert attributes["size"] == attributes["estimatedSize"] == 1
    assert attributes["version"] == 2
    members = api.get("/segments/ENG/relationships/members").get_json()["data"]
    assert len(members) == 1
    cleared = api.request("PUT", "/segments/ENG", segment_doc(name="Everyone", kind="dynamic"))
    assert cleared.get_json()["data"]["attributes"]["include"] == []
    assert cleared.get_json()["data"]["attributes"]["size"] == 3


def test_put_without_the_required_attributes_is_refused_naming_them(api):
    segment = make_segment("Keep", kind="static", description="stays")
    response = api.request("PUT", f"/segments/{segment.id}",
                           segment_doc(description="only this"))
    assert response.status_code == 422
    errors = errors_of(response)
    assert [e["source"]["pointer"] for e in errors] == ["/data/attributes/name",
                                                        "/data/attributes/kind"]
    assert "name is required (missing: name, kind)" in errors[0]["detail"]
    assert "use PATCH" in errors[0]["detail"]
    unchanged = api.get(f"/segments/{segment.id}").get_json()["data"]["attributes"]
    assert unchanged["description"] == "stays" and unchanged["version"] == segment.version


def test_put_checks_version_criteria_and_roles(api, api_as):
    segment = make_segment("Versioned", kind="dynamic")
    stale = api.request("PUT", f"/segments/{segment.id}", segment_doc(
        name="X", kind="dynamic", version=segment.version + 5))
    assert stale.status_code == 409
    bad = api.request("PUT", f"/segments/{segment.id}", segment_doc(
        name="X", kind="dynamic", include=[{"field": "points", "operator": ">", "value": "a"}]))
    assert bad.status_code == 422
    assert errors_of(bad)[0]["source"]["pointer"] == "/data/attributes/include/0"
    assert api.request("PUT", "/segments/nope", segment_doc(
        name="X", kind="dynamic")).status_code == 404
    support = api_as("support").request("PUT", f"/segments/{segment.id}", segment_doc(
        name="X", kind="dynamic"))
    assert support.status_code == 403
    marketer = api_as("marketer").request("PUT", f"/segments/{segment.id}", segment_doc(
        name="By marketer", kind="dynamic"))
    assert marketer.status_code == 200
    assert marketer.get_json()["data"]["attributes"]["name"] == "By marketer"
