"""Segment references: the id wins, then the customer segment id, in one indexed query."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.factories import make_segment
from webapp.extensions import db
from webapp.services.lookup import find_segment, segment_row


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
