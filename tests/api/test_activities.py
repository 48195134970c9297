"""Activities over the API: recording one or a batch, repeats, bad items by pointer, and the
segments with activity criteria that move at once (events with source `activity`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.api.conftest import errors_of
from tests.factories import make_member
from webapp.extensions import db
from webapp.models import Activity, MembershipEvent
from webapp.timeutil import utcnow

COFFEE_3_IN_30 = {"field": "activity.count", "operator": ">=", "value": 3,
                  "activity": {"type": "purchase", "window": {"days": 30},
                               "where": [{"field": "properties.item", "operator": "equals",
                                          "value": "coffee"}]}}


def act(member, external_id, *, kind="purchase", days_ago=1, amount=None, **props):
    attrs = {"member": member, "activity_type": kind, "external_id": external_id,
             "occurred_at": (utcnow() - timedelta(days=days_ago)).isoformat() + "Z"}
    if amount is not None:
        attrs["amount"] = amount
    if props:
        attrs["properties"] = props
    return {"type": "activities", "attributes": attrs}


def coffee_segment(api, **extra):
    attributes = {"name": "Coffee regulars", "kind": "dynamic", "include": [COFFEE_3_IN_30]}
    attributes.update(extra)
    response = api.post("/segments", {"data": {"type": "segments", "attributes": attributes}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def size_of(api, segment):
    return api.get(f"/segments/{segment['id']}").get_json()["data"]["attributes"]["size"]


def test_a_batch_records_each_item_and_a_repeat_is_not_counted_twice(api):
    make_member(external_id="ANA")
    body = {"data": [act("ANA", "t1", amount=4.5, item="coffee"),
                     act("ANA", "t2", amount="4.50"),
                     act("ANA", "t1", item="coffee"),
                     act("NOBODY", "t3")]}
    response = api.post("/activities", body)
    assert response.status_code == 200, response.get_json()
    meta = response.get_json()["meta"]
    assert [r["result"] for r in meta["results"]] == ["recorded", "invalid", "duplicate",
                                                       "invalid"]
    assert meta["counts"] == {"recorded": 1, "duplicate": 1, "invalid": 2}
    amount_error = meta["results"][1]["errors"][0]
    assert amount_error["source"]["pointer"] == "/data/1/attributes/amount"
    assert "not the string '4.50'" in amount_error["detail"]
    assert meta["results"][3]["errors"][0]["source"]["pointer"] == "/data/3/attributes/member"
    # Sent again (a retry): recognised, nothing new stored.
    again = api.post("/activities", {"data": [act("ANA", "t1", item="coffee")]})
    assert again.get_json()["meta"]["results"][0]["result"] == "duplicate"
    assert db.session.scalar(select(func.count()).select_from(Activity)) == 1


def test_a_large_batch_with_stored_repeats_gives_each_item_its_own_id(api):
    """Past one insert statement's worth of rows, each recorded item still gets the id of
    its own row, and those already stored are answered as duplicates with their ids."""
    make_member(external_id="ANA")
    first = api.post("/activities", {"data": [act("ANA", f"big-{i}") for i in (7, 901)]})
    stored = {r["external_id"]: r["id"] for r in first.get_json()["meta"]["results"]}
    body = {"data": [act("ANA", f"big-{i}", amount=i) for i in range(1200)]}
    meta = api.post("/activities", body).get_json()["meta"]
    assert meta["counts"] == {"recorded": 1198, "duplicate": 2, "invalid": 0}
    for r in meta["results"]:
        if r["external_id"] in stored:
            assert (r["result"], r["id"]) == ("duplicate", stored[r["external_id"]])
    rows = dict(db.session.execute(select(Activity.external_id, Activity.id)).tuples().all())
    assert {r["external_id"]: int(r["id"]) for r in meta["results"]} == rows
    amounts = dict(db.session.execute(select(Activity.id, Activity.amount_e4)).tuples().all())
    assert all(amounts[int(r["id"])] == r["index"] * 10_000 for r in meta["results"]
               if r["result"] == "recorded")


def test_each_item_gets_its_own_id_whatever_ids_the_database_picks(api):
    """SQLite picks ids at random once the largest id is 2^63 - 1: the ids the answer gives
    are still those of each item's own row."""
    ana = make_member(external_id="ANA")
    db.session.add(Activity(id=2**63 - 1, member_id=ana.id, type="visit",
                            occurred_at=utcnow() - timedelta(days=400), external_id="top",
                            source="api", recorded_at=utcnow()))
    db.session.commit()
    meta = api.post("/activities", {"data": [act("ANA", f"r-{i}", amount=i)
                                             for i in range(50)]}).get_json()["meta"]
    assert meta["counts"]["recorded"] == 50
    rows = dict(db.session.execute(select(Activity.external_id, Activity.id)).tuples().all())
    assert {r["external_id"]: int(r["id"]) for r in meta["results"]} == {
        f"r-{i}": rows[f"r-{i}"] for i in range(50)}


def test_one_more_purchase_moves_the_member_in_within_the_request(api):
    ana = make_member(external_id="ANA")
    segment = coffee_segment(api)
    assert segment["attributes"]["size"] == 0
    api.post("/activities", {"data": [act("ANA", f"c{i}", item="coffee") for i in range(2)]})
    assert size_of(api, segment) == 0
    response = api.post("/activities", {"data": act("ANA", "c3", item="coffee")})
    assert response.status_code == 200, response.get_json()
    changes = response.get_json()["meta"]["membership_changes"]
    assert changes == [{"segment_id": int(segment["id"]), "added": [ana.id], "removed": []}]
    assert size_of(api, segment) == 1
    event = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.segment_id == int(segment["id"]))).one()
    assert (event.action, event.source, event.member_id) == ("ADD", "activity", ana.id)
    # A tea does not count; an old coffee is outside the window.
    api.post("/activities", {"data": [act("ANA", "tea", item="tea"),
                                      act("ANA", "old", item="coffee", days_ago=40)]})
    assert size_of(api, segment) == 1


def test_each_type_is_read_over_its_own_window_when_members_move(api):
    """Segments reading visits over 7 days and purchases over 60 days: recording either type
    re-evaluates both rightly (each type loaded as far back as its criteria read)."""
    make_member(external_id="ANA")
    visits = coffee_segment(api, name="Visited this week", include=[
        {"field": "activity.count", "operator": ">=", "value": 2,
         "activity": {"type": "visit", "window": {"days": 7}}}])
    buyers = coffee_segment(api, name="Spent 10", include=[
        {"field": "activity.sum", "operator": ">=", "value": 10,
         "activity": {"type": "purchase", "window": {"days": 60}}},
        {"field": "activity.count", "operator": ">=", "value": 1,
         "activity": {"type": "visit", "window": {"days": 30}}}])
    api.post("/activities", {"data": [act("ANA", "p1", amount=6, days_ago=50),
                                      act("ANA", "v1", kind="visit", days_ago=20)]})
    assert (size_of(api, visits), size_of(api, buyers)) == (0, 0)
    # Both segments re-evaluated (a visit too): the visit 20 days ago still counts.
    api.post("/activities", {"data": [act("ANA", "p2", amount=4, days_ago=1),
                                      act("ANA", "v0", kind="visit", days_ago=40)]})
    assert (size_of(api, visits), size_of(api, buyers)) == (0, 1)
    api.post("/activities", {"data": [act("ANA", "v2", kind="visit", days_ago=2)]})
    assert (size_of(api, visits), size_of(api, buyers)) == (0, 1)
    api.post("/activities", {"data": [act("ANA", "v3", kind="visit", days_ago=0)]})
    assert (size_of(api, visits), size_of(api, buyers)) == (1, 1)


def test_the_segment_counts_in_sql_what_python_decides(api):
    for n in range(4):
        make_member(external_id=f"M{n}")
    # M0: 3 coffees, M1: 2 coffees + 1 tea, M2: 3 coffees but one 31 days ago, M3: none.
    api.post("/activities", {"data": [
        act("M0", "a1", item="coffee"), act("M0", "a2", item="coffee"),
        act("M0", "a3", item="coffee", days_ago=28),
        act("M1", "b1", item="coffee"), act("M1", "b2", item="coffee"),
        act("M1", "b3", item="tea"),
        act("M2", "c1", item="coffee"), act("M2", "c2", item="coffee"),
        act("M2", "c3", item="coffee", days_ago=31)]})
    segment = coffee_segment(api)  # sized in SQL over everyone at creation
    assert segment["attributes"]["size"] == 1
    nobody = coffee_segment(api, name="Did not buy", include=[
        {"field": "activity.count", "operator": "equals", "value": 0,
         "activity": {"type": "purchase", "window": {"days": 30}}}])
    assert nobody["attributes"]["size"] == 1  # M3


def test_bad_criteria_are_refused_naming_the_criterion(api):
    response = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "name": "Bad", "kind": "dynamic", "include": [
            {"field": "activity.count", "operator": ">=", "value": 2.5,
             "activity": {"type": "purchase", "window": {"days": 30}}}]}}})
    assert response.status_code == 422
    assert "include[0] (activity.count >= 2.5): a count takes a whole number from 0" in \
        errors_of(response)[0]["detail"]
    response = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "name": "Bad", "kind": "dynamic", "include": [
            {"field": "activity.sum", "operator": ">=", "value": 5,
             "activity": {"type": "purchase", "window": {"days": 0}}}]}}})
    assert "window days is a whole number from 1 to 3,660" in errors_of(response)[0]["detail"]


def test_a_member_page_of_activities_newest_first(api):
    make_member(external_id="ANA")
    api.post("/activities", {"data": [act("ANA", f"x{i}", days_ago=i) for i in range(3)]})
    response = api.get("/members/ANA/activities?page[size]=2")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [a["attributes"]["external_id"] for a in body["data"]] == ["x2", "x1"]
    assert "next" in body["links"]


def test_one_refused_activity_answers_an_error_document_naming_it(api):
    make_member(external_id="ANA")
    response = api.post("/activities", {"data": act("ANA", "x", amount=1.23456)})
    assert response.status_code == 422
    error = errors_of(response)[0]
    assert error["source"]["pointer"] == "/data/attributes/amount"
    assert "at most 4 decimal places" in error["detail"]
    assert db.session.scalar(select(func.count()).select_from(Activity)) == 0


def test_what_is_stored_reads_back_as_sent(api):
    """Every field as written (PostgreSQL copies the rows past the ORM): text, amounts,
    moments, nested and non-ASCII properties, and no properties at all."""
    member = make_member(external_id="ANA")
    props = {"item": "café", "tags": ["a", "ü"], "n": {"deep": 1.5, "none": None}}
    body = {"data": [act("ANA", "p1", amount=12.3456, days_ago=2, **props),
                     act("ANA", "v1", kind="visit", days_ago=3)]}
    response = api.post("/activities", body)
    assert response.get_json()["meta"]["counts"]["recorded"] == 2
    rows = {a.external_id: a for a in db.session.scalars(select(Activity))}
    sent = {item["attributes"]["external_id"]: item["attributes"] for item in body["data"]}
    for ext, row in rows.items():
        assert row.member_id == member.id and row.source == "api"
        assert row.occurred_at.isoformat() + "Z" == sent[ext]["occurred_at"]
    assert rows["p1"].type == "purchase" and rows["p1"].amount_e4 == 123456
    assert rows["p1"].properties == props
    assert rows["v1"].type == "visit" and rows["v1"].amount_e4 is None
    assert not rows["v1"].properties
    listed = api.get(f"/members/{member.id}/activities").get_json()["data"]
    by_ext = {a["attributes"]["external_id"]: a["attributes"] for a in listed}
    assert by_ext["p1"]["properties"] == props and by_ext["p1"]["amount"] == 12.3456
    assert by_ext["v1"]["properties"] is None
