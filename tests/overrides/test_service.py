"""The override service: precedence, idempotency, reset, expiry, refusals, bulk reset."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.models import AuditEntry, MembershipEvent, Override, OverrideHistory
from webapp.services.membership import segment_ids_of
from webapp.services.overrides import (
    OverrideError,
    apply_expiries,
    bulk_reset,
    preview,
    reset_override,
    set_override,
)
from webapp.timeutil import utcnow

GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]


def events(member, segment):
    return [(e.action, e.source, e.override_id) for e in db.session.scalars(
        select(MembershipEvent).where(MembershipEvent.member_id == member.id,
                                      MembershipEvent.segment_id == segment.id)
        .order_by(MembershipEvent.id))]


def history(member, segment):
    return [h.action for h in db.session.scalars(
        select(OverrideHistory).where(OverrideHistory.member_id == member.id,
                                      OverrideHistory.segment_id == segment.id)
        .order_by(OverrideHistory.id))]


def test_block_beats_the_rules(app):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    assert gold.id in segment_ids_of(member.id)
    outcome = set_override(gold, member, "block", description="Fraud case", actor="Ada",
                           reference_id="CASE-7", metadata={"ticket": "7"})
    assert outcome.changed
    assert outcome.effect == "the rules say in; the override says out"
    assert gold.id not in segment_ids_of(member.id)
    assert gold.size == 0
    override = outcome.override
    assert events(member, gold)[-1] == ("REMOVE", "override", override.id)
    event = db.session.scalars(select(MembershipEvent).order_by(MembershipEvent.id.desc())).first()
    assert event.cause["reason"] == "Fraud case"
    assert event.actor_label == "Ada"
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "override.block"))
    assert audit.after["reason"] == "Fraud case" and audit.after["metadata"] == {"ticket": "7"}


def test_add_beats_the_rules(app):
    member = make_member(tier="silver")
    gold = make_segment("Gold", include=GOLD)
    assert gold.id not in segment_ids_of(member.id)
    outcome = set_override(gold, member, "add", description="VIP the data misses", actor="Ada")
    assert outcome.effect == "the rules say out; the override says in"
    assert gold.id in segment_ids_of(member.id)
    assert events(member, gold) == [("ADD", "override", outcome.override.id)]


def test_block_beats_add(app):
    member = make_member(tier="silver")
    gold = make_segment("Gold", include=GOLD)
    set_override(gold, member, "add", description="VIP", actor="Ada")
    outcome = set_override(gold, member, "block", description="Actually a test account",
                           actor="Ada")
    assert outcome.changed
    assert gold.id not in segment_ids_of(member.id)
    assert db.session.scalar(select(Override.status)) == "block"
    assert history(member, gold) == ["add", "block"]


def test_add_on_a_member_already_in_pins_without_an_event(app):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    before = events(member, gold)
    outcome = set_override(gold, member, "add", description="Keep them", actor="Ada")
    assert "no change today" in outcome.effect
    assert events(member, gold) == before
    # The member now stays in when the rules stop matching.
    member.tier = "bronze"
    db.session.commit()
    from webapp.services.membership import Cause, refresh_segment

    refresh_segment(gold, Cause("rule", "test"))
    db.session.commit()
    assert gold.id in segment_ids_of(member.id)


def test_setting_the_same_status_again_changes_nothing(app):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    set_override(gold, member, "block", description="Fraud", actor="Ada")
    counts = (db.session.query(OverrideHistory).count(), db.session.query(AuditEntry).count(),
              db.session.query(MembershipEvent).count())
    again = set_override(gold, member, "block", description="Fraud again", actor="Bob")
    assert not again.changed
    assert "already blocked from Gold; nothing changed" in again.message
    assert again.override.description == "Fraud"
    assert counts == (db.session.query(OverrideHistory).count(),
                      db.session.query(AuditEntry).count(),
                      db.session.query(MembershipEvent).count())


def test_reset_restores_the_rule_result_and_keeps_history(app):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    blocked = set_override(gold, member, "block", description="Fraud", actor="Ada")
    outcome = reset_override(gold, member, actor="Bob", description="Cleared")
    assert outcome.changed and "They joined the segment" in outcome.message
    assert gold.id in segment_ids_of(member.id)
    assert db.session.scalar(select(Override)) is None
    assert history(member, gold) == ["block", "reset"]
    reset_line = db.session.scalars(select(OverrideHistory).order_by(OverrideHistory.id)).all()[-1]
    assert reset_line.description == "Cleared — lifted the block override (Fraud)"
    assert reset_line.actor_label == "Bob"
    assert events(member, gold)[-2:] == [("REMOVE", "override", blocked.override.id),
                                         ("ADD", "override", blocked.override.id)]
    again = reset_override(gold, member, actor="Bob")
    assert not again.changed and "nothing to reset" in again.message


def test_static_segments_refuse_overrides(app):
    member = make_member()
    static = make_segment("VIP list", kind="static")
    add_to_list(static, member)
    with pytest.raises(OverrideError, match="edit the list of static segment VIP list"):
        set_override(static, member, "block", description="x", actor="Ada")
    assert db.session.scalar(select(Override)) is None
    assert static.id in segment_ids_of(member.id)


BAD_REQUESTS = [
    ({"status": "maybe"}, "Unknown override status"),
    ({"description": "  "}, "Reason is required"),
    ({"expires_at": "past"}, "expiry is in the past"),
    ({"status_change_timestamp": "future"}, "status-change time is in the future"),
    ({"status_change_timestamp": "past", "expires_at": "before"}, "expiry is in the past"),
    ({"metadata": ["a"]}, "Metadata must be an object"),
    ({"metadata": {"": "x"}}, "non-empty text"),
    ({"metadata": {"k": object()}}, "plain JSON values"),
    ({"reference_id": "x" * 300}, "Reference id must be at most 255 characters"),
    ({"description": "a\x00b"}, "reason contains a NUL character"),
    ({"metadata": {"k": "a\x00"}}, "Metadata contains a NUL character"),
]


def test_bad_requests_are_refused_and_change_nothing(app):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    times = {"past": utcnow() - timedelta(days=2), "future": utcnow() + timedelta(days=1),
             "before": utcnow() - timedelta(days=3)}
    for kwargs, message in BAD_REQUESTS:
        args = {"status": "block", "description": "Fraud", "actor": "Ada"}
        args.update({k: times.get(v, v) if isinstance(v, str) else v
                     for k, v in kwargs.items()})
        status = args.pop("status")
        with pytest.raises(OverrideError, match=message):
            set_override(gold, member, status, **args)
        assert db.session.scalar(select(Override)) is None
        assert db.session.query(OverrideHistory).count() == 0
        assert gold.id in segment_ids_of(member.id)


def test_reason_is_optional_when_not_required(app):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    outcome = set_override(gold, member, "block", description="", actor="token CRM",
                           require_reason=False)
    assert outcome.changed


def test_expiry_restores_the_rules_and_is_recorded(app, runner):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    outcome = set_override(gold, member, "block", description="Cooling off", actor="Ada",
                           expires_at=utcnow() + timedelta(hours=1))
    assert gold.id not in segment_ids_of(member.id)
    assert apply_expiries("test") == 0
    assert apply_expiries("test", now=utcnow() + timedelta(hours=2)) == 1
    db.session.commit()
    assert gold.id in segment_ids_of(member.id)
    override = db.session.scalar(select(Override))
    assert override is not None and override.expired_applied_at is not None
    assert history(member, gold) == ["block", "expire"]
    assert events(member, gold)[-1] == ("ADD", "override", outcome.override.id)
    # Applying again finds nothing new.
    assert apply_expiries("test", now=utcnow() + timedelta(hours=3)) == 0


def test_refresh_command_applies_expiries(app, runner):
    member = make_member(tier="silver")
    gold = make_segment("Gold", include=GOLD)
    set_override(gold, member, "add", description="Trial", actor="Ada",
                 expires_at=utcnow() + timedelta(hours=1))
    assert gold.id in segment_ids_of(member.id)
    override = db.session.scalar(select(Override))
    override.expires_at = utcnow() - timedelta(seconds=1)  # time passes
    db.session.commit()
    result = runner.invoke(args=["segments", "refresh"])
    assert result.exit_code == 0, result.output
    assert "Expiries: 1 override expired" in result.output
    db.session.expire_all()
    assert gold.id not in segment_ids_of(member.id)
    assert history(member, gold) == ["add", "expire"]
    removal = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.action == "REMOVE")).one()
    assert removal.source == "override" and removal.actor_label == "flask segments refresh"
    assert db.session.scalar(select(Override)).expired_applied_at is not None


def test_expired_override_no_longer_counts_and_can_be_set_again(app):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    set_override(gold, member, "block", description="Short", actor="Ada",
                 expires_at=utcnow() + timedelta(hours=1))
    override = db.session.scalar(select(Override))
    override.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert preview(gold, member, None).rules_in
    again = set_override(gold, member, "block", description="Again", actor="Ada")
    assert again.changed
    assert history(member, gold) == ["block", "expire", "block"]
    assert db.session.scalar(select(Override)).expires_at is None


def test_bulk_reset(app):
    members = [make_member(tier="gold") for _ in range(3)]
    gold = make_segment("Gold", include=GOLD)
    ids = [set_override(gold, m, "block", description="Fraud ring", actor="Ada").override.id
           for m in members]
    assert gold.size == 0
    assert bulk_reset(ids[:2] + [99999], actor="Bob") == 2
    assert db.session.scalar(select(Override.id)) == ids[2]
    assert {m.id for m in members[:2]} == {
        e.member_id for e in db.session.scalars(select(MembershipEvent).where(
            MembershipEvent.action == "ADD", MembershipEvent.actor_label == "Bob"))}
    assert db.session.query(AuditEntry).filter_by(action="override.reset").count() == 2
    assert gold.size == 2


def test_dependent_segments_follow(app):
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=GOLD)
    not_gold = make_segment("Not gold", include=[
        {"field": "segment", "operator": "not_in", "value": [gold.id]}], refresh=False)
    from webapp.services.membership import Cause, refresh_segment

    refresh_segment(not_gold, Cause("rule", "test"))
    db.session.commit()
    assert not_gold.id not in segment_ids_of(member.id)
    set_override(gold, member, "block", description="Fraud", actor="Ada")
    assert not_gold.id in segment_ids_of(member.id)
