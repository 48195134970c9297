"""Segment references: the id wins, then the customer segment id, in one indexed query.
Member references: member id, then external id, then email, as rows or ORM objects alike."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import member_attributes
from webapp.services.lookup import (
    find_member,
    find_segment,
    member_row,
    segment_organisation,
    segment_row,
    segment_row_organised,
)


@pytest.fixture
def segments(app):
    first = make_segment("First", kind="static")
    # A numeric customer segment id naming another segment's id (older data allowed it).
    clash = make_segment("Clash", kind="static", customer_segment_id=str(first.id))
    far = make_segment("Far", kind="static", customer_segment_id="900000001")
    named = make_segment("Named Thing", kind="static", customer_segment_id="crm:VIP")
    return {"first": first.id, "clash": clash.id, "far": far.id, "named": named.id}


def _count_queries():
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    return statements, lambda: event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize(("reference", "expected"), [
    ("first-id", "first"), ("clash-id", "clash"), (" first-id ", "first"),
    ("900000001", "far"), ("crm:VIP", "named"),
])
def test_the_id_wins_then_the_customer_segment_id(segments, reference, expected):
    text = reference.replace("first-id", str(segments["first"])) \
        .replace("clash-id", str(segments["clash"]))
    db.session.expunge_all()
    statements, stop = _count_queries()
    try:
        found = find_segment(text)
        row = segment_row(text)
    finally:
        stop()
    assert found is not None and found.id == segments[expected]
    assert row is not None and row.id == segments[expected] and row.name == found.name
    assert len(statements) == 2  # one query each


@pytest.mark.parametrize("reference", ["", "  ", "nope", "123456789", "x\x00y", "9" * 300,
                                       "12345678901234567890"])
def test_unknown_references_find_nothing(segments, reference):
    assert find_segment(reference) is None
    assert segment_row(reference) is None


def test_names_only_when_asked(segments):
    assert find_segment("named thing") is None
    assert find_segment("named thing", by_name=True).id == segments["named"]


def test_a_segment_row_comes_with_its_tags_and_owner_on_one_connection(app, segments):
    from webapp.models import Segment, SegmentTag
    from webapp.services.users import create_user

    owner = create_user("owner@example.com", "long enough password 1", "marketer")
    db.session.add_all([SegmentTag(segment_id=segments["first"], tag="zeta"),
                        SegmentTag(segment_id=segments["first"], tag="alpha")])
    db.session.get(Segment, segments["first"]).owner_id = owner.id
    db.session.commit()
    row, organisation = segment_row_organised(str(segments["first"]))
    assert row.id == segments["first"]
    assert organisation == {"tags": ["alpha", "zeta"], "owner": "owner@example.com"}
    assert segment_organisation([row])[row.id] == organisation
    assert segment_row_organised("nope") is None
    assert segment_row_organised(str(segments["far"]))[1] == {"tags": [], "owner": None}


@pytest.mark.parametrize("how", ["id", "external_id", "email", "EMAIL", " padded "])
def test_a_member_row_is_found_like_the_member(app, how):
    member = make_member(external_id="CRM-1", email="ana@example.com", badges=["vip"],
                         custom_fields={"city": "Lyon"})
    reference = {"id": member.id, "external_id": "CRM-1", "email": "ana@example.com",
                 "EMAIL": "ANA@example.com", " padded ": " CRM-1 "}[how]
    row = member_row(reference)
    assert row is not None and row.id == member.id
    assert member_attributes(row) == find_member(reference).attributes()


@pytest.mark.parametrize("reference", ["", "nobody", "nobody@example.com", "x\x00y", "9" * 400])
def test_unknown_members_find_no_row(app, reference):
    make_member(external_id="CRM-2")
    assert member_row(reference) is None and find_member(reference) is None
