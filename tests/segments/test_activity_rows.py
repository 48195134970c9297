"""The builder's activity rows: "bought coffee at least 3 times in the last 30 days and spent
at least 50" built from form rows, counted live, saved, and shown again for editing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from tests.factories import make_member
from webapp.extensions import db
from webapp.models import Member, Segment
from webapp.segments.builder import Builder
from webapp.services.activities import record
from webapp.timeutil import utcnow

HX = {"HX-Request": "true"}
COFFEE = {"include-0-field": "activity", "include-0-measure": "count",
          "include-0-activity_type": "purchase", "include-0-operator": ">=",
          "include-0-value": "3", "include-0-window": "days", "include-0-window_days": "30",
          "include-0-prop_key": "item", "include-0-prop_value": "coffee",
          "include-1-field": "activity", "include-1-measure": "sum",
          "include-1-activity_type": "purchase", "include-1-operator": ">=",
          "include-1-value": "50", "include-1-window": "days", "include-1-window_days": "30"}


def _buy(member, n, amount, item="coffee", days_ago=1):
    return [{"member": member.external_id, "activity_type": "purchase",
             "external_id": f"{member.external_id}-{item}-{i}-{days_ago}", "amount": amount,
             "properties": {"item": item},
             "occurred_at": (utcnow() - timedelta(days=days_ago, minutes=i)).isoformat()}
            for i in range(n)]


@pytest.fixture
def buyers(app):
    regular = make_member(external_id="REGULAR")    # 3 coffees of 20: in
    cheap = make_member(external_id="CHEAP")        # 3 coffees of 5: spent too little
    rare = make_member(external_id="RARE")          # 2 coffees of 40 + a tea
    make_member(external_id="NONE")
    record(_buy(regular, 3, 20) + _buy(cheap, 3, 5) + _buy(rare, 2, 40)
           + _buy(rare, 1, 40, item="tea"), actor="test")
    return regular


def test_rows_become_activity_criteria():
    rows = Builder.from_form(MultiDict(COFFEE), {}).rows("include")
    assert rows[0].criterion() == {
        "field": "activity.count", "operator": ">=", "value": 3,
        "activity": {"type": "purchase", "window": {"days": 30},
                     "where": [{"field": "properties.item", "operator": "equals",
                                "value": "coffee"}]}}
    assert rows[1].criterion()["value"] == 50
    last = Builder.from_form(MultiDict({
        "include-0-field": "activity", "include-0-measure": "last",
        "include-0-activity_type": "visit", "include-0-operator": "<",
        "include-0-date_mode": "days_ago", "include-0-days": "60",
        "include-0-window": "all"}), {}).rows("include")[0]
    assert last.criterion() == {"field": "activity.last", "operator": "<",
                                "value": {"days_ago": 60}, "activity": {"type": "visit"}}


def test_the_preview_counts_and_the_saved_segment_is_exact(client, auth, buyers):
    auth.login("marketer")
    preview = client.post("/segments/builder/preview", headers=HX,
                          data={"name": "Coffee regulars", "kind": "dynamic", **COFFEE})
    assert 'data-count="1"' in preview.get_data(as_text=True)
    saved = client.post("/segments/new", data={
        "name": "Coffee regulars", "kind": "dynamic", "description": "", "url": "",
        "customer_segment_id": "", **COFFEE})
    assert saved.status_code in (302, 303), saved.get_data(as_text=True)[:2000]
    segment = db.session.scalars(select(Segment).where(Segment.name == "Coffee regulars")).one()
    assert segment.size == 1
    edit = client.get(f"/segments/{segment.id}/edit").get_data(as_text=True)
    assert 'value="purchase"' in edit and 'value="coffee"' in edit
    # One more cheap coffee of 35 puts CHEAP over 50: it joins at once.
    cheap = db.session.scalars(select(Member).where(Member.external_id == "CHEAP")).one()
    record(_buy(cheap, 1, 35, days_ago=0), actor="test")
    db.session.expire_all()
    assert db.session.get(Segment, segment.id).size == 2


def test_an_unfinished_activity_row_says_what_it_needs(client, auth):
    auth.login("marketer")
    response = client.post("/segments/builder/row", headers=HX, data={
        "row": "include-0", "include-0-field": "activity", "include-0-measure": "count",
        "include-0-operator": ">=", "include-0-value": "3"})
    assert "name the activity type" in response.get_data(as_text=True)


def test_a_property_filter_takes_the_custom_field_operators_and_reads_back():
    form = MultiDict({"include-0-field": "activity", "include-0-measure": "count",
                      "include-0-activity_type": "purchase", "include-0-operator": ">=",
                      "include-0-value": "1", "include-0-window": "all",
                      "include-0-prop_key": "store", "include-0-prop_op": "in",
                      "include-0-prop_value": "Lisbon, 12"})
    row = Builder.from_form(form, {}).rows("include")[0]
    criterion = row.criterion()
    assert criterion["activity"] == {"type": "purchase", "where": [
        {"field": "properties.store", "operator": "in", "value": ["Lisbon", 12]}]}
    again = Builder.from_segment([criterion], [], {})
    shown = again.rows("include")[0]
    assert (shown.prop_op, shown.prop_value, shown.window) == ("in", "Lisbon, 12", "all")
    exists = Builder.from_form(MultiDict({**form, "include-0-prop_op": "not_exists"}),
                               {}).rows("include")[0]
    assert exists.criterion()["activity"]["where"] == [
        {"field": "properties.store", "operator": "not_exists"}]
