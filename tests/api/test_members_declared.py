"""Member writes checked against the attribute registry (ATTRIBUTE_CHECK refuse / flag)."""

from __future__ import annotations

from sqlalchemy import select

from tests.admin.test_attributes import declare
from tests.api.conftest import errors_of
from webapp.extensions import db
from webapp.models import Member
from webapp.services import attributes as registry


def test_member_writes_that_disagree_are_refused_naming_the_field(api):
    declare("vip", "boolean")
    declare("level", "string", "bronze\nsilver")
    response = api.post("/members", {"data": {"type": "members", "attributes": {
        "external_id": "A-1", "custom_fields": {"vip": "yes", "level": "silver", "x": 1}}}})
    assert response.status_code == 422
    error = errors_of(response)[0]
    assert error["source"]["pointer"] == "/data/attributes/custom_fields"
    assert "Custom field 'vip' is declared as true / false" in error["detail"]
    assert db.session.scalar(select(Member.id)) is None
    ok = api.post("/members", {"data": {"type": "members", "attributes": {
        "external_id": "A-1", "custom_fields": {"vip": True, "level": "silver", "x": 1}}}})
    assert ok.status_code == 201
    batch = api.post("/members/batch", {"data": [
        {"type": "members", "attributes": {"external_id": "A-2",
                                           "custom_fields": {"level": "gold"}}},
        {"type": "members", "attributes": {"external_id": "A-3",
                                           "custom_fields": {"level": "bronze"}}}]})
    results = batch.get_json()["meta"]["results"]
    assert [r["result"] for r in results] == ["invalid", "created"]
    assert results[0]["errors"][0]["source"]["pointer"] == "/data/0/attributes/custom_fields"
    assert "allows \"bronze\", \"silver\"" in results[0]["errors"][0]["detail"]


def test_with_flag_mode_writes_are_accepted_and_shown_on_the_member_page(app, api, client,
                                                                         auth):
    app.config["ATTRIBUTE_CHECK"] = "flag"
    declare("vip", "boolean")
    response = api.post("/members", {"data": {"type": "members", "attributes": {
        "external_id": "F-1", "custom_fields": {"vip": "yes"}}}})
    assert response.status_code == 201
    assert registry.usage() == {"vip": (1, 1)}
    auth.login("support")
    page = client.get(f"/members/{response.get_json()['data']['id']}")
    assert page.status_code == 200
    assert b"disagrees" in page.data and b"declared as true / false" in page.data


