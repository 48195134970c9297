"""Segment criteria name segments by id or customer segment id, as audiences and required
segments do; the stored criteria hold the canonical ids."""

from __future__ import annotations

from tests.api.conftest import errors_of
from tests.factories import add_to_list, make_member, make_segment


def segment_doc(**attributes):
    return {"data": {"type": "segments", "attributes": attributes}}


def _two_lists():
    ana, bob, cy = (make_member(external_id=n) for n in ("ANA", "BOB", "CY"))
    gold = make_segment("Gold list", kind="static", customer_segment_id="gold-list")
    vip = make_segment("VIP list", kind="static", customer_segment_id="vip-list")
    add_to_list(gold, ana, bob)
    add_to_list(vip, bob)
    return gold, vip


def test_criteria_take_customer_segment_ids_and_store_segment_ids(api):
    gold, vip = _two_lists()
    created = api.post("/segments", segment_doc(
        name="Gold not VIP", kind="dynamic",
        include=[{"field": "segment", "operator": "in", "value": ["gold-list"]}],
        exclude=[{"field": "segment", "operator": "in", "value": ["vip-list"]}]))
    assert created.status_code == 201, created.get_json()
    attributes = created.get_json()["data"]["attributes"]
    assert attributes["include"] == [{"field": "segment", "operator": "in", "value": [gold.id]}]
    assert attributes["exclude"] == [{"field": "segment", "operator": "in", "value": [vip.id]}]
    assert attributes["size"] == 1  # Ana: in gold, not in VIP
    # Renaming the customer id later does not break the rule: it holds the segment id.
    assert api.patch("/segments/gold-list", segment_doc(
        customer_segment_id="gold-2027")).status_code == 200
    again = api.get(f"/segments/{created.get_json()['data']['id']}").get_json()["data"]
    assert again["attributes"]["size"] == 1


def test_one_segment_named_twice_by_id_and_customer_id_is_refused_as_a_repeat(api):
    gold, _ = _two_lists()
    response = api.post("/segments", segment_doc(
        name="Twice", kind="dynamic",
        include=[{"field": "segment", "operator": "in", "value": [gold.id, "gold-list"]}]))
    assert response.status_code == 422
    assert f"segment #{gold.id} is listed more than once" in errors_of(response)[0]["detail"]


def test_mixed_ids_and_customer_ids_and_digit_strings_resolve(api):
    gold, vip = _two_lists()
    created = api.post("/segments", segment_doc(
        name="Either", kind="dynamic",
        include=[{"field": "segment", "operator": "in", "value": [str(gold.id), "vip-list"]}]))
    assert created.status_code == 201, created.get_json()
    data = created.get_json()["data"]
    assert data["attributes"]["include"][0]["value"] == [gold.id, vip.id]
    assert data["attributes"]["size"] == 2
    patched = api.patch(f"/segments/{data['id']}", segment_doc(
        include=[{"field": "segment", "operator": "not_in", "value": ["gold-list"]}]))
    assert patched.get_json()["data"]["attributes"]["include"] == [
        {"field": "segment", "operator": "not_in", "value": [gold.id]}]
    assert patched.get_json()["data"]["attributes"]["size"] == 1  # Cy


def test_an_unknown_segment_is_refused_naming_it(api):
    _two_lists()
    response = api.post("/segments", segment_doc(
        name="Bad", kind="dynamic",
        include=[{"field": "points", "operator": ">=", "value": 1},
                 {"field": "segment", "operator": "in", "value": ["gold-list", "no-such",
                                                                   "99999"]}]))
    assert response.status_code == 422
    error = errors_of(response)[0]
    assert error["source"]["pointer"] == "/data/attributes/include/1"
    assert "no segment has the id or customer segment id 'no-such', '99999'" in error["detail"]
    assert error["detail"].startswith("include[1] (segment in")
    assert api.get("/segments?filter[customer_segment_id]=Bad").get_json()["data"] == []


def test_a_customer_id_cannot_hide_a_cycle(api):
    gold, _ = _two_lists()
    first = api.post("/segments", segment_doc(
        name="A", kind="dynamic", customer_segment_id="seg-a",
        include=[{"field": "segment", "operator": "in", "value": ["gold-list"]}]))
    second = api.post("/segments", segment_doc(
        name="B", kind="dynamic", customer_segment_id="seg-b",
        include=[{"field": "segment", "operator": "in", "value": ["seg-a"]}]))
    assert first.status_code == second.status_code == 201
    cycle = api.patch("/segments/seg-a", segment_doc(
        include=[{"field": "segment", "operator": "in", "value": ["seg-b"]}]))
    assert cycle.status_code == 422
    assert errors_of(cycle)[0]["source"]["pointer"] == "/data/attributes/include/0"
    itself = api.patch("/segments/seg-a", segment_doc(
        include=[{"field": "segment", "operator": "in", "value": ["seg-a"]}]))
    assert "cannot refer to itself" in errors_of(itself)[0]["detail"]


def test_member_search_takes_customer_segment_ids(api):
    _two_lists()
    found = api.post("/members/search", {"data": {"type": "member-searches", "attributes": {
        "include": [{"field": "segment", "operator": "in", "value": ["gold-list"]}],
        "exclude": [{"field": "segment", "operator": "in", "value": ["vip-list"]}]}}})
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["meta"]["count"] == 1
    assert found.get_json()["data"][0]["attributes"]["external_id"] == "ANA"
    unknown = api.post("/members/search", {"data": {"type": "member-searches", "attributes": {
        "exclude": [{"field": "segment", "operator": "in", "value": ["ghost"]}]}}})
    assert unknown.status_code == 422
    assert errors_of(unknown)[0]["source"]["pointer"] == "/data/attributes/exclude/0"
    assert "'ghost'" in errors_of(unknown)[0]["detail"]
