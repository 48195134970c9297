"""The one membership path: rows, events and audit together; rule refreshes; verification."""

from __future__ import annotations

from sqlalchemy import func, select, union_all

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.models import (
    AuditEntry,
    Member,
    MembershipEvent,
    SegmentMembership,
)
from webapp.services.membership import (
    Cause,
    apply_delta,
    refresh_member,
    refresh_segment,
    segment_ids_of,
    verify_all,
)


def _events(segment_id):
    return db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.segment_id == segment_id).order_by(MembershipEvent.id)).all()


def test_list_add_writes_rows_events_and_audit_once(app):
    segment = make_segment("Beta", kind="static", customer_segment_id="crm-beta")
    a, b = make_member(), make_member()
    delta = apply_delta(segment, add=[a.id, b.id, a.id], via="list",
                        cause=Cause("static_list", "tester", {"note": "x"}))
    db.session.commit()
    assert (delta.added, delta.removed) == (2, 0)
    assert segment.size == 2
    events = _events(segment.id)
    assert [(e.action, e.member_id, e.source, e.customer_segment_id) for e in events] == [
        ("ADD", a.id, "static_list", "crm-beta"), ("ADD", b.id, "static_list", "crm-beta")]
    again = apply_delta(segment, add=[a.id], via="list", cause=Cause("static_list", "tester"))
    db.session.commit()
    assert again.added == 0 and len(_events(segment.id)) == 2
    audits = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "membership.change")).all()
    assert len(audits) == 1 and audits[0].after["added"] == 2


def test_remove_only_members_present(app):
    segment = make_segment(kind="static")
    a, b = make_member(), make_member()
    add_to_list(segment, a)
    delta = apply_delta(segment, remove=[a.id, b.id], via="list",
                        cause=Cause("api", "token crm"))
    db.session.commit()
    assert delta.removed == 1 and segment.size == 0
    assert [e.action for e in _events(segment.id)] == ["ADD", "REMOVE"]


def test_select_based_add_is_set_based_and_skips_present(app):
    segment = make_segment(kind="static")
    members = [make_member(tier="gold") for _ in range(3)] + [make_member(tier="bronze")]
    add_to_list(segment, members[0])
    ids = select(Member.id.label("member_id")).where(Member.tier == "gold")
    delta = apply_delta(segment, add=ids, via="list", cause=Cause("upload", "u", upload_id=7))
    db.session.commit()
    assert delta.added == 2 and segment.size == 3
    uploads = [e for e in _events(segment.id) if e.upload_id == 7]
    assert len(uploads) == 2


def test_refresh_segment_follows_rules_and_records_events(app):
    gold = make_member(tier="gold", points=50)
    make_member(tier="bronze", points=5000)
    segment = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                             "value": "gold"}])
    assert segment.size == 1
    assert segment_ids_of(gold.id) == {segment.id}
    gold.tier = "bronze"
    db.session.commit()
    deltas = refresh_member(gold, Cause("profile_change", "api", {"fields": ["tier"]}))
    db.session.commit()
    assert [(d.added, d.removed) for d in deltas] == [(0, 1)]
    last = _events(segment.id)[-1]
    assert (last.action, last.source, last.cause) == ("REMOVE", "profile_change",
                                                      {"fields": ["tier"]})
    assert verify_all() == []


def test_dependent_segments_cascade(app):
    vip = make_member(custom_fields={"vip": True}, tier="gold")
    base = make_segment("VIP", include=[{"field": "custom_fields.vip", "operator": "equals",
                                         "value": True}])
    derived = make_segment("Gold VIP", include=[
        {"field": "segment", "operator": "in", "value": [base.id]},
        {"field": "tier", "operator": "equals", "value": "gold"}])
    assert derived.size == 1
    vip.custom_fields = {"vip": False}
    db.session.commit()
    base.include = [{"field": "custom_fields.vip", "operator": "equals", "value": True}]
    deltas = refresh_segment(base, Cause("rule", "tester"))
    db.session.commit()
    assert {(d.segment_id, d.removed) for d in deltas} == {(base.id, 1), (derived.id, 1)}
    assert derived.size == 0


def test_verify_reports_tampering(app):
    make_member(points=10)
    segment = make_segment("Rich", include=[{"field": "points", "operator": ">=",
                                             "value": 5}])
    db.session.execute(SegmentMembership.__table__.delete())
    db.session.commit()
    problems = verify_all()
    assert len(problems) == 1
    assert problems[0]["segment_id"] == segment.id and len(problems[0]["missing"]) == 1
    assert db.session.scalar(select(func.count()).select_from(SegmentMembership)) == 0


def test_list_changes_reach_dependent_segments(app):
    gold, bronze = make_member(tier="gold"), make_member(tier="bronze")
    beta = make_segment("Beta", kind="static")
    gold_beta = make_segment("Gold beta", include=[
        {"field": "segment", "operator": "in", "value": [beta.id]},
        {"field": "tier", "operator": "equals", "value": "gold"}])
    add_to_list(beta, gold, bronze)
    assert segment_ids_of(gold.id) == {beta.id, gold_beta.id}
    assert segment_ids_of(bronze.id) == {beta.id}
    cascaded = [e for e in _events(gold_beta.id)]
    assert [(e.action, e.source, e.cause["via_segment"]) for e in cascaded] == [
        ("ADD", "rule", beta.id)]
    everyone = select(Member.id.label("member_id"))
    apply_delta(beta, remove=everyone, via="list", cause=Cause("upload", "u", upload_id=3))
    db.session.commit()
    assert gold_beta.size == 0 and segment_ids_of(gold.id) == set()
    assert verify_all() == []


def test_ids_of_deleted_rows_are_never_reused(app):
    first = make_segment("Temporary", kind="static")
    first_id = first.id
    db.session.delete(first)
    db.session.commit()
    second = make_segment("Next", kind="static")
    assert second.id != first_id


def test_select_based_changes_write_one_event_per_member_that_changed(app):
    """The set-based path (one statement on PostgreSQL): candidates named twice count once,
    members already in (add) or not in (remove) get no row change and no event."""
    segment = make_segment("Set based", kind="static")
    members = [make_member(tier="gold") for _ in range(4)]
    add_to_list(segment, members[0])
    golds = select(Member.id.label("member_id")).where(Member.tier == "gold")
    twice = union_all(golds, golds).subquery()
    delta = apply_delta(segment, add=select(twice.c.member_id), via="list",
                        cause=Cause("upload", "u", {"upload_id": 9}, upload_id=9))
    db.session.commit()
    assert delta.added == 3 and segment.size == 4
    added = [e for e in _events(segment.id) if e.upload_id == 9]
    assert sorted(e.member_id for e in added) == sorted(m.id for m in members[1:])
    assert {(e.action, e.source, e.cause["upload_id"]) for e in added} == {("ADD", "upload", 9)}
    outsider = make_member(tier="bronze")
    chosen = select(Member.id.label("member_id")).where(
        Member.id.in_([members[1].id, members[2].id, outsider.id]))
    delta = apply_delta(segment, remove=chosen, via="list",
                        cause=Cause("upload", "u", {"upload_id": 10}, upload_id=10))
    db.session.commit()
    assert delta.removed == 2 and segment.size == 2
    removed = [(e.action, e.member_id) for e in _events(segment.id) if e.upload_id == 10]
    assert sorted(removed) == sorted(("REMOVE", m.id) for m in members[1:3])
    audits = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "membership.change", AuditEntry.entity_id == str(segment.id))
        .order_by(AuditEntry.id)).all()
    assert [(a.after["added"], a.after["removed"]) for a in audits][-2:] == [(3, 0), (0, 2)]


def test_verify_reports_a_size_that_differs_from_the_rows(app):
    member = make_member()
    listed = make_segment("Listed", kind="static")
    add_to_list(listed, member)
    assert verify_all() == []
    listed.size = 5
    db.session.commit()
    problems = verify_all()
    assert [(p["segment_id"], p["cached_size"], p["actual_size"]) for p in problems] == [
        (listed.id, 5, 1)]


def test_a_list_add_reports_exactly_who_joined(app):
    first, second = make_member(), make_member()
    listed = make_segment("Listed", kind="static")
    add_to_list(listed, first)
    delta = apply_delta(listed, add=[first.id, second.id, "no-such-member"], via="list",
                        cause=Cause("api", "tester"))
    db.session.commit()
    assert delta.added_ids == [second.id] and listed.size == 2
    assert [e.member_id for e in _events(listed.id)] == [first.id, second.id]
