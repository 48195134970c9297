"""The segment services: save, validation, limits, versions, delete, where-used, preview."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import set_committed_value

from tests.factories import add_to_list, make_member, make_offer, make_reward, make_segment
from webapp.extensions import db
from webapp.models import AuditEntry, MembershipEvent, Segment, SegmentDependency
from webapp.services.segments import (
    SegmentError,
    SegmentInUse,
    delete_segment,
    preview,
    save_segment,
    warnings,
    where_used,
)


def _dynamic(name="Gold", include=None, exclude=None, **kw):
    return {"name": name, "kind": "dynamic",
            "include": include if include is not None else
            [{"field": "tier", "operator": "equals", "value": "gold"}],
            "exclude": exclude or [], **kw}


def test_create_materializes_canonical_criteria_and_audits(app):
    gold = make_member(tier="gold", custom_fields={"vip": True})
    make_member(tier="bronze")
    segment = save_segment(_dynamic(include=[
        {"field": "tier", "operator": "equals", "value": "gold"},
        {"field": "customFields.vip", "operator": "equals", "value": True}]),
        actor="Marta", actor_id=None)
    assert segment.include[1]["field"] == "custom_fields.vip"
    assert segment.size == 1 and segment.version == 1
    assert segment.updated_by_label == "Marta"
    events = db.session.scalars(select(MembershipEvent)).all()
    assert [(e.action, e.member_id) for e in events] == [("ADD", gold.id)]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "segment.create"))
    assert entry.after["include"][0] == {"field": "tier", "operator": "equals", "value": "gold"}


def test_invalid_criterion_is_named_and_nothing_is_written(app):
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(include=[
            {"field": "tier", "operator": "equals", "value": "gold"},
            {"field": "points", "operator": ">", "value": "abc"}]), actor="Marta")
    assert "include[1]" in info.value.errors
    assert "points takes a number" in info.value.errors["include[1]"]
    assert "include[1]" in str(info.value)
    assert db.session.scalar(select(func.count()).select_from(Segment)) == 0


def test_static_segment_refuses_criteria(app):
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(kind="static"), actor="Marta")
    assert "static segment has no include criteria" in info.value.errors["include"]


def test_required_fields_and_url(app):
    with pytest.raises(SegmentError) as info:
        save_segment({"name": " ", "kind": "weird", "url": "javascript:alert(1)"}, actor="x")
    assert set(info.value.errors) == {"name", "kind", "url"}


def test_duplicate_customer_segment_id_refused(app):
    first = save_segment(_dynamic(customer_segment_id="GOLD-1"), actor="x")
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(name="Other", customer_segment_id="GOLD-1"), actor="x")
    assert f"#{first.id}" in info.value.errors["customer_segment_id"]


def test_segment_limit_names_the_limit(app):
    app.config["LIMIT_SEGMENTS"] = 2
    save_segment(_dynamic(name="A"), actor="x")
    save_segment(_dynamic(name="B"), actor="x")
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(name="C"), actor="x")
    assert "The limit is 2 segments" in info.value.errors["segment"]
    assert "LIMIT_" not in info.value.errors["segment"]


def test_criteria_limit_names_the_limit(app):
    app.config["LIMIT_CRITERIA"] = 3
    rows = [{"field": "points", "operator": ">", "value": n} for n in range(4)]
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(include=rows), actor="x")
    assert "the limit is 3 include criteria per segment" in info.value.errors["include"]
    assert "4 were given" in info.value.errors["include"]
    assert "LIMIT_" not in info.value.errors["include"]


def test_segment_references_unknown_self_and_cycles(app):
    a = save_segment(_dynamic(name="A"), actor="x")
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(name="B", include=[
            {"field": "segment", "operator": "in", "value": [a.id, 999]}]), actor="x")
    assert "#999" in info.value.errors["include[0]"]
    b = save_segment(_dynamic(name="B", include=[
        {"field": "segment", "operator": "in", "value": [a.id]}]), actor="x")
    assert db.session.scalars(select(SegmentDependency.depends_on_id).where(
        SegmentDependency.segment_id == b.id)).all() == [a.id]
    with pytest.raises(SegmentError) as info:
        save_segment({"include": [{"field": "segment", "operator": "in", "value": [b.id]}]},
                     segment=a, actor="x")
    assert "cycle" in info.value.errors["include[0]"]
    with pytest.raises(SegmentError) as info:
        save_segment({"include": [{"field": "segment", "operator": "in", "value": [a.id]}]},
                     segment=a, actor="x")
    assert "itself" in info.value.errors["include[0]"]


def test_update_bumps_version_and_refuses_stale_version(app):
    make_member(tier="gold", points=600)
    make_member(tier="gold", points=50)
    segment = save_segment(_dynamic(), actor="Marta")
    assert segment.size == 2
    save_segment({"include": [{"field": "points", "operator": ">", "value": 500}]},
                 segment=segment, actor="Sam", expected_version=1)
    assert segment.version == 2 and segment.size == 1
    with pytest.raises(SegmentError) as info:
        save_segment({"name": "Stale"}, segment=segment, actor="Marta", expected_version=1)
    assert "Sam changed this segment" in info.value.errors["version"]
    db.session.refresh(segment)
    assert segment.name == "Gold" and segment.version == 2
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "segment.update"))
    assert entry.before["include"][0]["field"] == "tier"
    assert entry.after["include"][0]["field"] == "points"


def test_concurrent_writer_detected_by_the_version_in_the_database(app):
    segment = save_segment(_dynamic(), actor="Marta")
    # Someone else saved after we loaded the row: our in-memory version is now stale.
    db.session.execute(Segment.__table__.update().values(version=5, updated_by_label="Sam"))
    db.session.commit()
    set_committed_value(segment, "version", 1)
    with pytest.raises(SegmentError) as info:
        save_segment({"name": "Mine"}, segment=segment, actor="Marta")
    assert "Sam changed this segment" in info.value.errors["version"]
    assert db.session.scalar(select(Segment.name)) == "Gold"


def test_kind_cannot_change_once_members_exist(app):
    make_member(tier="gold")
    segment = save_segment(_dynamic(), actor="x")
    with pytest.raises(SegmentError) as info:
        save_segment({"kind": "static", "include": []}, segment=segment, actor="x")
    assert "kind cannot change" in info.value.errors["kind"]
    empty = save_segment(_dynamic(name="Empty", include=[
        {"field": "tier", "operator": "equals", "value": "nobody"}]), actor="x")
    changed = save_segment({"kind": "static", "include": []}, segment=empty, actor="x")
    assert changed.kind == "static"


def test_delete_refused_while_used_then_allowed(app):
    member = make_member(tier="gold")
    segment = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                             "value": "gold"}])
    offer = make_offer("Lounge", audiences=[("in_any_segment", {"segments": [segment.id]})])
    reward = make_reward("Upgrade", required=[segment])
    other = save_segment(_dynamic(name="Uses gold", include=[
        {"field": "segment", "operator": "in", "value": [segment.id]}]), actor="x")
    with pytest.raises(SegmentInUse) as info:
        delete_segment(segment, actor="admin")
    kinds = {(u["kind"], u["name"]) for u in info.value.uses}
    assert kinds == {("offer_audience", "Lounge"), ("reward", "Upgrade"),
                     ("segment", "Uses gold")}
    assert "Lounge" in str(info.value)
    assert db.session.get(Segment, segment.id) is not None
    assert len(where_used(segment)) == 3
    db.session.delete(offer)
    db.session.delete(reward)
    db.session.commit()
    delete_segment(other, actor="admin")
    sid = segment.id
    delete_segment(segment, actor="admin")
    assert db.session.get(Segment, sid) is None
    events = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.segment_id == sid).order_by(MembershipEvent.id)).all()
    assert [(e.action, e.member_id) for e in events] == [("ADD", member.id),
                                                         ("REMOVE", member.id)]
    assert db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "segment.delete", AuditEntry.entity_id == str(sid))) is not None


def test_preview_counts_and_impact(app):
    keep = make_member(tier="gold", points=900)
    leave = make_member(tier="gold", points=100)
    join = make_member(tier="silver", points=950)
    make_member(tier="bronze", points=10)
    segment = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                             "value": "gold"}])
    make_offer("Lounge", audiences=[("in_all_segments", {"segments": [segment.id]})])
    fresh = preview({"kind": "dynamic", "include": [
        {"field": "points", "operator": ">=", "value": 900}]})
    assert fresh["count"] == 2 and fresh["total_members"] == 4
    assert {s["id"] for s in fresh["samples"]} == {keep.id, join.id}
    impact = preview({"kind": "dynamic", "include": [
        {"field": "points", "operator": ">=", "value": 900}]}, segment=segment)
    assert (impact["count"], impact["joining"], impact["leaving"]) == (2, 1, 1)
    assert [s["id"] for s in impact["joining_samples"]] == [join.id]
    assert [s["id"] for s in impact["leaving_samples"]] == [leave.id]
    assert [o["name"] for o in impact["affected"]["offers"]] == ["Lounge"]
    same = preview({"kind": "dynamic", "include": [
        {"field": "tier", "operator": "equals", "value": "gold"}]}, segment=segment)
    assert (same["count"], same["joining"], same["leaving"]) == (2, 0, 0)
    assert {s["id"] for s in same["samples"]} == {keep.id, leave.id}
    assert same["affected"] == {"offers": [], "rewards": [], "segments": []}
    with pytest.raises(SegmentError) as info:
        preview({"kind": "dynamic", "include": [{"field": "nope", "operator": "equals",
                                                 "value": 1}]})
    assert "unknown field" in info.value.errors["include[0]"]


def test_preview_of_static_segment_is_its_list(app):
    member = make_member()
    segment = make_segment("List", kind="static")
    add_to_list(segment, member)
    result = preview({"kind": "static"}, segment=segment)
    assert result["count"] == 1 and result["joining"] == 0 and result["leaving"] == 0


def test_warnings(app):
    make_member(tier="gold", points=10)
    make_member(tier="silver", points=10)
    assert any("matches every member" in w for w in warnings(
        {"kind": "dynamic", "include": [], "exclude": []}, 2, 2))
    contradiction = warnings({"kind": "dynamic", "include": [
        {"field": "points", "operator": ">", "value": 500},
        {"field": "points", "operator": "<", "value": 100}]}, 0, 2)
    assert any("contradict" in w and "points more than 500" in w for w in contradiction)
    assert not any("contradict" in w for w in warnings({"kind": "dynamic", "include": [
        {"field": "points", "operator": ">=", "value": 100},
        {"field": "points", "operator": "<=", "value": 100}]}, 0, 2))
    assert any("contradict" in w for w in warnings({"kind": "dynamic", "include": [
        {"field": "points", "operator": ">", "value": 5},
        {"field": "points", "operator": "<", "value": 6}]}, 0, 2))
    dup = warnings({"kind": "dynamic", "include": [
        {"field": "tier", "operator": "equals", "value": "gold"},
        {"field": "tier", "operator": "equals", "value": "gold"}]}, 1, 2)
    assert any("include[1] repeats include[0]" in w for w in dup)
    excluded = warnings({"kind": "dynamic", "include": [
        {"field": "points", "operator": "<", "value": 50}], "exclude": [
        {"field": "points", "operator": ">=", "value": 0}]}, 0, 2)
    assert any("remove everyone the include criteria admit (2 members)" in w for w in excluded)
    assert warnings({"kind": "dynamic", "include": [
        {"field": "tier", "operator": "equals", "value": "gold"}]}, 1, 2) == []


def test_customer_segment_id_only_url_safe_and_not_all_digits(app):
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(customer_segment_id="2"), actor="x")
    message = info.value.errors["customer_segment_id"]
    assert "only digits" in message and "segment #2" in message
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(customer_segment_id="a/b?c#d"), actor="x")
    message = info.value.errors["customer_segment_id"]
    assert "'/'" in message and "'?'" in message and "'#'" in message
    assert "letters A-Z and a-z, digits 0-9 and the characters - _ . : ~" in message
    assert db.session.scalar(select(func.count()).select_from(Segment)) == 0
    segment = save_segment(_dynamic(customer_segment_id="crm-2"), actor="x")
    assert segment.customer_segment_id == "crm-2"


def test_segment_criterion_listing_a_segment_twice_is_refused(app):
    gold = save_segment(_dynamic(), actor="x")
    with pytest.raises(SegmentError) as info:
        save_segment(_dynamic(name="Twice", include=[
            {"field": "segment", "operator": "in", "value": [gold.id, gold.id]}]), actor="x")
    assert f"segment #{gold.id} is listed more than once" in info.value.errors["include[0]"]
    assert db.session.scalar(select(func.count()).select_from(Segment)) == 1
