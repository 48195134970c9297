"""The "Coming from Hatch / CleverTap / Village / Monterosa" page of the API reference, the
OpenAPI document describing the seed-shaped routes, and seed 000/001 (Hatch) requests as
written."""

from __future__ import annotations

import re

from tests.factories import add_to_list, make_member, make_segment
from webapp.api.seed_guide import SEED_SYSTEMS


def test_every_mapping_names_a_route_the_openapi_document_describes(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    described = {(method, path) for path, methods in spec["paths"].items() for method in methods}
    mappings = [m for system in SEED_SYSTEMS for m in system.mappings]
    assert [s.name for s in SEED_SYSTEMS] == ["Hatch", "CleverTap", "Village", "Monterosa"]
    assert len(mappings) >= 20
    assert [(m.method, m.path) for m in mappings if (m.method, m.path) not in described] == []


def test_the_reference_page_maps_each_seed_request(client, auth):
    auth.login("support")
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="#coming-from"' in html
    section = html[html.index('id="coming-from"'):html.index('class="api-tag"')]
    assert "Coming from Hatch / CleverTap / Village / Monterosa" in section
    for anchor in ("from-hatch", "from-clevertap", "from-village", "from-monterosa"):
        assert f'id="{anchor}"' in section
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td><a href=\"#([a-z_]+)\">", section, re.S)
    assert len(rows) == sum(len(s.mappings) for s in SEED_SYSTEMS)
    anchors = set(re.findall(r'class="card api-op" id="([a-z_]+)"', html))
    assert {anchor for _, anchor in rows} <= anchors  # every Beacon request links its route
    seeds = {seed for seed, _ in rows}
    assert "Update Segment API (add or remove users by identity; up to 100 segments and 100 " \
        "profiles; creates unknown users)" in seeds
    assert "PUT /v1/segments/{segmentId}" in seeds
    assert "segment-memberships" in section and "create_unknown_members" in section
    assert "<code>user</code>/<code>user_status</code> are accepted as written" in section
    assert "<code>estimatedSize</code> is there, equal to <code>size</code>" in section


def test_the_openapi_document_describes_the_seed_shapes_with_examples(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    assert "estimatedSize" in schemas["SegmentAttributes"]["properties"]
    listing = spec["paths"]["/segments"]["get"]
    assert {"limit", "type", "page[size]", "filter[kind]"} <= {p["name"] for p in
                                                              listing["parameters"]}
    put = spec["paths"]["/segments/{segment_ref}"]["put"]
    assert put["x-access"] == "write"
    assert schemas["SegmentReplace"]["properties"]["data"]["properties"]["attributes"][
        "required"] == ["name", "kind"]
    assert put["requestBody"]["content"]["application/vnd.api+json"]["example"]
    overrides = spec["paths"]["/segments/{segment_ref}/overrides"]
    assert {p["name"] for p in overrides["get"]["parameters"]} >= {
        "filter[member]", "filter[status]", "filter[expired]"}
    example = overrides["post"]["requestBody"]["content"]["application/vnd.api+json"]["example"]
    assert example["data"][1]["attributes"]["user_status"] == "block"
    bulk = spec["paths"]["/segment-memberships"]["post"]
    assert bulk["x-access"] == "write"
    assert bulk["requestBody"]["content"]["application/vnd.api+json"]["example"]["meta"] == {
        "create_unknown_members": True}
    request = schemas["SegmentMembershipsRequest"]["properties"]
    assert request["data"]["maxItems"] == 100
    # An item is described, and one that does not match is reported, not refused (anyOf).
    described, anything = request["data"]["items"]["anyOf"]
    assert anything == {"$ref": "#/components/schemas/JsonValue"}
    assert described["properties"]["attributes"]["properties"]["members"]["maxItems"] == 100


# Seed 001's example payloads, comments removed; ids are the seed's own, used as the offer's
# external id and the segments' customer segment ids.
HATCH_OFFER = "d7aa712d-e28b-4b53-b2b0-496e029fe743"
HATCH_SEGMENTS = ["ad629e56-cafb-487e-9d88-93ee0e2147ea", "86d2ba4a-33e5-4635-b8a2-5ec431368f6a"]


def hatch_audience(audience_type: str, configuration: dict) -> dict:
    return {"data": {"type": "audiences",
                     "attributes": {"audience_type": audience_type,
                                    "configuration": configuration},
                     "relationships": {"offer": {"data": {"type": "offers",
                                                          "id": HATCH_OFFER}}}}}


def test_hatch_audience_payloads_work_as_written(api):
    ana = make_member(external_id="ANA")
    for n, customer_id in enumerate(HATCH_SEGMENTS):
        created = api.post("/segments", {"data": {"type": "segments", "attributes": {
            "name": f"Hatch {n}", "kind": "static", "customer_segment_id": customer_id}}})
        assert created.status_code == 201, created.get_json()
    offer = api.post("/offers", {"data": {"type": "offers", "attributes": {
        "name": "Behavioral offer", "external_id": HATCH_OFFER}}})
    assert offer.status_code == 201, offer.get_json()
    for payload in (hatch_audience("age_within", {"minimum_age": 18, "maximum_age": None}),
                    hatch_audience("in_all_segments", {"segments": HATCH_SEGMENTS}),
                    hatch_audience("in_any_segment", {"segments": HATCH_SEGMENTS})):
        response = api.post("/audiences", payload)
        assert response.status_code == 201, response.get_json()
    decorated = api.get("/members/ANA/offers").get_json()["data"][0]["attributes"]
    assert decorated["visible_status"] == "missing_required_segments"
    # Seed 000: add the membership to the segments through the relationship.
    for customer_id in HATCH_SEGMENTS:
        added = api.post(f"/segments/{customer_id}/relationships/members",
                         {"data": [{"type": "members", "id": ana.id}]})
        assert added.get_json()["meta"]["results"][0]["result"] == "added"
    decorated = api.get("/members/ANA/offers").get_json()["data"][0]["attributes"]
    assert decorated["visible_status"] == "visible" and decorated["eligible"] is True


def test_hatch_required_segments_on_a_reward(api):
    member = make_member(external_id="BEA", points=500)
    segment = make_segment("Gold tier", kind="static", customer_segment_id=HATCH_SEGMENTS[0])
    reward = api.post("/rewards", {"data": {"type": "rewards", "attributes": {
        "name": "Lounge", "points": 100}}}).get_json()["data"]
    linked = api.post(f"/rewards/{reward['id']}/relationships/required_segments",
                      {"data": [{"type": "segments", "id": HATCH_SEGMENTS[0]}]})
    assert linked.status_code == 200, linked.get_json()
    attributes = api.get("/members/BEA/rewards").get_json()["data"][0]["attributes"]
    assert (attributes["visible_status"], attributes["eligible"]) == (
        "missing_required_segments", False)
    add_to_list(segment, member)
    attributes = api.get("/members/BEA/rewards").get_json()["data"][0]["attributes"]
    assert (attributes["visible_status"], attributes["eligible"]) == ("visible", True)
