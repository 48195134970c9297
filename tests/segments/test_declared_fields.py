"""The builder offers declared custom fields (Administration → Member fields) by name, with
the operators that fit their type and value pickers: allowed values as a select, dates as
date inputs; undeclared custom fields stay possible."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from tests.admin.test_attributes import declare
from tests.factories import make_member
from webapp.extensions import db
from webapp.models import Segment
from webapp.segments.builder import Builder, Row
from webapp.services.attributes import declared

HX = {"HX-Request": "true"}


@pytest.fixture
def fields(app):
    declare("level", "string", "gold\nsilver\nbronze")
    declare("vip", "boolean")
    declare("joined on", "date")
    declare("store.no", "number")
    make_member(custom_fields={"level": "gold", "vip": True, "store.no": 76})
    make_member(custom_fields={"level": "silver", "vip": False, "store.no": 12})
    make_member(custom_fields={"level": "bronze", "joined on": "2026-01-31"})
    return declared()


def _row(registry, **parts) -> Row:
    form = MultiDict([(f"include-0-{k}", v) for k, vs in parts.items()
                      for v in (vs if isinstance(vs, list) else [vs])])
    return Builder.from_form(form, registry).rows("include")[0]


def test_a_declared_field_becomes_a_criterion_on_its_exact_key(fields):
    row = _row(fields, field="declared:level", operator="in", value=["gold", "silver"])
    assert row.criterion() == {"field": "custom_fields.level", "operator": "in",
                               "value": ["gold", "silver"]}
    dotted = _row(fields, field="declared:store.no", operator=">=", value="70")
    assert dotted.criterion() == {"field": 'custom_fields["store.no"]', "operator": ">=",
                                  "value": 70}
    spaced = _row(fields, field="declared:joined on", operator="equals", value="2026-01-31")
    assert spaced.criterion()["field"] == 'custom_fields["joined on"]'


def test_only_the_operators_that_fit_the_declared_type_are_offered(fields):
    ops = [op for op, _ in _row(fields, field="declared:vip").operators]
    assert ops == ["equals", "not_equals", "exists", "not_exists"]
    numbers = [op for op, _ in _row(fields, field="declared:store.no").operators]
    assert ">=" in numbers and "contains" not in numbers
    undeclared = [op for op, _ in _row(fields, field="custom_fields", key="other").operators]
    assert ">=" in undeclared and "contains" in undeclared


def test_a_stored_criterion_on_a_declared_key_shows_as_that_field(fields):
    builder = Builder.from_segment(
        [{"field": 'custom_fields["store.no"]', "operator": ">=", "value": 70},
         {"field": "custom_fields.city", "operator": "equals", "value": "Lyon"}], [], fields)
    declared_row, plain_row = builder.rows("include")
    assert declared_row.field_choice == "declared:store.no" and declared_row.value == "70"
    assert plain_row.field_choice == "custom_fields" and plain_row.key == "city"


def test_the_builder_page_offers_declared_fields_with_pickers(client, auth, fields):
    auth.login("marketer")
    added = client.post("/segments/builder/row", headers=HX, data={
        "row": "include-0", "include-0-field": "declared:level",
        "include-0-previous_field": "", "include-0-operator": "in"})
    body = added.get_data(as_text=True)
    assert added.status_code == 200
    assert '<option value="declared:level" selected>level (custom field)</option>' in body
    assert 'multiple' in body and '<option value="silver"' in body
    assert 'name="include-0-key"' not in body  # the key comes with the field
    date = client.post("/segments/builder/row", headers=HX, data={
        "row": "include-0", "include-0-field": "declared:joined on",
        "include-0-previous_field": "", "include-0-operator": "equals"})
    assert 'type="date"' in date.get_data(as_text=True)


def test_a_segment_saved_from_declared_fields_counts_exactly(client, auth, fields):
    auth.login("marketer")
    response = client.post("/segments/new", data=MultiDict([
        ("name", "Gold or silver VIPs"), ("kind", "dynamic"),
        ("include-0-field", "declared:level"), ("include-0-operator", "in"),
        ("include-0-value", "gold"), ("include-0-value", "silver"),
        ("include-1-field", "declared:vip"), ("include-1-operator", "equals"),
        ("include-1-value", "true")]))
    assert response.status_code == 303, response.get_data(as_text=True)
    segment = db.session.scalar(select(Segment))
    assert segment.include == [
        {"field": "custom_fields.level", "operator": "in", "value": ["gold", "silver"]},
        {"field": "custom_fields.vip", "operator": "equals", "value": True}]
    assert segment.size == 1
    edit = client.get(f"/segments/{segment.id}/edit").get_data(as_text=True)
    assert '<option value="declared:vip" selected>' in edit
