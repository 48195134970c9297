"""Groups over the API: POST, PATCH and PUT take nested any/all/none groups, refusals point at
the item inside the group, member search takes them, the reasons show group nodes, and the
OpenAPI document describes the shape with an example."""

from __future__ import annotations

from typing import Any

import jsonschema

from tests.api.conftest import errors_of
from tests.factories import make_member, make_offer, make_segment

GOLD = {"field": "tier", "operator": "equals", "value": "gold"}
RICH = {"field": "points", "operator": ">=", "value": 1000}
VIP = {"field": "custom_fields.vip", "operator": "equals", "value": True}
NEW = {"field": "created_at", "operator": ">=", "value": {"days_ago": 90}}
TARGET = [{"any": [{"all": [GOLD, RICH]}, {"all": [VIP, NEW]}]}]


def segment_doc(**attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "segments", "attributes": attributes}}


def _people() -> None:
    make_member(external_id="rich-gold", tier="gold", points=1200)
    make_member(external_id="poor-gold", tier="gold", points=10)
    make_member(external_id="vip", tier="bronze", points=10, custom_fields={"vip": True})


def test_create_update_and_replace_with_groups(api):
    _people()
    created = api.post("/segments", segment_doc(name="Gold or VIP", kind="dynamic",
                                                include=TARGET))
    assert created.status_code == 201, created.get_json()
    attributes = created.get_json()["data"]["attributes"]
    assert attributes["include"] == TARGET and attributes["size"] == 2
    sid = created.get_json()["data"]["id"]
    patched = api.patch(f"/segments/{sid}", segment_doc(exclude=[{"none": [GOLD]}]))
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["data"]["attributes"]["exclude"] == [{"none": [GOLD]}]
    assert patched.get_json()["data"]["attributes"]["size"] == 1  # the bronze VIP is out
    replaced = api.request("PUT", f"/segments/{sid}", segment_doc(
        name="Not gold", kind="dynamic", include=[{"none": [GOLD]}]))
    assert replaced.status_code == 200, replaced.get_json()
    assert replaced.get_json()["data"]["attributes"]["exclude"] == []
    assert replaced.get_json()["data"]["attributes"]["size"] == 1


def test_refusals_point_at_the_item_inside_the_group(api):
    response = api.post("/segments", segment_doc(name="Bad", kind="dynamic", include=[
        GOLD, {"any": [RICH, {"all": [VIP, {"field": "points", "operator": ">",
                                            "value": "abc"}]}]}]))
    assert response.status_code == 422
    (error,) = errors_of(response)
    assert error["source"]["pointer"] == "/data/attributes/include/1/any/1/all/1"
    assert error["detail"].startswith('include[1].any[1].all[1] (points > "abc"): ')
    empty = api.post("/segments", segment_doc(name="Bad", kind="dynamic",
                                              exclude=[{"all": [GOLD, {"any": []}]}]))
    assert empty.status_code == 422
    (error,) = errors_of(empty)
    assert error["source"]["pointer"] == "/data/attributes/exclude/0/all/1"
    assert "the group is empty" in error["detail"]
    deep = api.post("/segments", segment_doc(name="Bad", kind="dynamic", include=[
        {"any": [{"all": [{"none": [{"any": [GOLD]}]}]}]}]))
    assert deep.status_code == 422
    pointer = "/data/attributes/include/0/any/0/all/0/none/0"
    assert errors_of(deep)[0]["source"]["pointer"] == pointer
    assert "groups nest at most 3 deep" in errors_of(deep)[0]["detail"]


def test_member_search_takes_groups(api):
    _people()
    response = api.post("/members/search", {"data": {"type": "member-searches", "attributes": {
        "include": TARGET}}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["meta"]["count"] == 2
    bad = api.post("/members/search", {"data": {"type": "member-searches", "attributes": {
        "include": [{"any": [GOLD, {"field": "nope", "operator": "exists"}]}]}}})
    assert bad.status_code == 422
    assert errors_of(bad)[0]["source"]["pointer"] == "/data/attributes/include/0/any/1"


def test_reasons_show_the_group_and_the_branch_that_held(api):
    make_member(external_id="m1", tier="gold", points=1200)
    segment = make_segment(name="Gold or VIP", include=TARGET)
    make_offer("VIP lounge", audiences=[("in_all_segments", {"segments": [segment.id]})])
    data = api.get("/members/m1/offers").get_json()["data"]
    reasons = data[0]["attributes"]["reasons"]

    def groups(node: dict[str, Any]) -> list[dict[str, Any]]:
        found = [node] if node["kind"] == "group" else []
        for child in node["children"]:
            found.extend(groups(child))
        return found
    outer = groups(reasons)[0]
    assert outer["label"] == "at least one of these holds: branch 1 of 2 holds"
    assert outer["expected"] == "any" and outer["actual"] == [1] and outer["passed"]


def test_openapi_documents_groups_with_an_example(api):
    document = api.get("/openapi.json", validate=False).get_json()
    schemas = document["components"]["schemas"]
    assert schemas["SegmentCreate"]
    example = schemas["Group"]["examples"][0]
    assert "any" in example
    # The example and the marketer's definition validate against the documented shape.
    resolver_doc = {"components": {"schemas": schemas}}
    item = {"$ref": "#/components/schemas/CriteriaItem", **resolver_doc}
    jsonschema.validate(example, item)
    jsonschema.validate(TARGET[0], item)
    for bad in ({"any": []}, {"any": [GOLD], "all": [GOLD]},
                {"any": [{"all": [{"none": [{"any": [GOLD]}]}]}]}):
        assert not jsonschema.Draft202012Validator(item).is_valid(bad), bad


def test_reference_page_explains_groups(client, auth):
    auth.login("support")
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert "Criteria and groups" in html
    assert "/data/attributes/include/0/any/1" in html
    assert "&#34;days_ago&#34;: 90" in html
    assert "include[].field" in html  # the criterion's own fields are still listed
