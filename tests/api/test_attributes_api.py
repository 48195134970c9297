"""The attribute registry over the API: read by everyone, written by admins, typed values."""

from __future__ import annotations

from sqlalchemy import select

from tests.api.conftest import errors_of
from tests.factories import make_member
from webapp.extensions import db
from webapp.models import AttributeDefinition


def _new(**attributes):
    return {"data": {"type": "attributes", "attributes": attributes}}


def test_declare_read_change_and_remove_a_field(api, api_as):
    make_member(custom_fields={"Customer Type": "retail"})
    make_member(custom_fields={"Customer Type": "wholesale"})
    make_member(custom_fields={})
    created = api.post("/attributes", _new(key="Customer Type", value_type="string",
                                           allowed_values=["retail", "business"],
                                           description="Retail or business",
                                           example="retail"))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()["data"]
    assert body["attributes"]["allowed_values"] == ["retail", "business"]
    assert created.headers["Location"].endswith(f"/api/v1/attributes/{body['id']}")
    support = api_as("support")
    listed = support.get("/attributes").get_json()["data"]
    assert [r["attributes"]["key"] for r in listed] == ["Customer Type"]
    one = support.get("/attributes/Customer Type").get_json()["data"]["attributes"]
    assert (one["members_with_value"], one["disagreeing"]) == (2, 1)
    changed = api.patch(f"/attributes/{body['id']}", {"data": {
        "type": "attributes", "id": body["id"],
        "attributes": {"allowed_values": ["retail", "business", "wholesale"]}}})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["data"]["attributes"]["description"] == "Retail or business"
    assert support.get(f"/attributes/{body['id']}").get_json()["data"]["attributes"][
        "disagreeing"] == 0
    assert api.delete(f"/attributes/{body['id']}").status_code == 204
    assert support.get(f"/attributes/{body['id']}").status_code == 404


def test_bad_declarations_name_each_attribute(api):
    response = api.post("/attributes", _new(key="level", value_type="number",
                                            allowed_values=[1, "two"], example=3))
    assert response.status_code == 422
    errors = {e["source"]["pointer"]: e["detail"] for e in errors_of(response)}
    assert errors == {"/data/attributes/allowed_values": 'Allowed value 2: "two" is not number.'}
    wrong_example = api.post("/attributes", _new(key="vip", value_type="boolean", example="yes"))
    assert [e["source"]["pointer"] for e in errors_of(wrong_example)] == [
        "/data/attributes/example"]
    assert api.post("/attributes", _new(key="vip", value_type="boolean")).status_code == 201
    taken = api.post("/attributes", _new(key="vip", value_type="string"))
    assert taken.status_code == 409
    assert db.session.scalar(select(AttributeDefinition.key)) == "vip"


def test_only_admins_write_the_registry(api, api_as):
    api.post("/attributes", _new(key="vip", value_type="boolean"))
    marketer = api_as("marketer")
    assert marketer.get("/attributes").status_code == 200
    assert marketer.post("/attributes", _new(key="x", value_type="string")).status_code == 403
    assert marketer.delete("/attributes/vip").status_code == 403
    assert db.session.scalar(select(AttributeDefinition.key)) == "vip"
