"""Reward service: validation, audit, required segments, reach and affordability in SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.models import AuditEntry, Reward, RewardRequiredSegment
from webapp.services.rewards import (
    RewardError,
    change_required_segments,
    delete_reward,
    reward_reach,
    reward_reach_detail,
    save_reward,
)


@pytest.mark.parametrize(("data", "field"), [
    ({"name": "R", "points": -1}, "points"),
    ({"name": "R", "points": "ten"}, "points"),
    ({"name": "R", "points": True}, "points"),
    ({"name": "R", "publish_at": "2026-05-02", "expire_at": "2026-05-01"}, "expire_at"),
    ({"points": 5}, "name"),
])
def test_save_reward_refuses_bad_input(app, data, field):
    with pytest.raises(RewardError) as err:
        save_reward(data, actor="t")
    assert field in err.value.errors
    assert db.session.scalar(select(func.count()).select_from(Reward)) == 0


def test_save_change_delete_with_audit(app):
    reward = save_reward({"name": "Spa day", "points": 12000, "external_id": "RW-1"}, actor="Mira")
    save_reward({"points": 10000}, reward=reward, actor="Mira")
    assert reward.points == 10000 and reward.name == "Spa day"
    with pytest.raises(RewardError):
        save_reward({"name": "Copy", "external_id": "RW-1"}, actor="Mira")
    delete_reward(reward, actor="Ada")
    actions = list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["reward.create", "reward.update", "reward.delete"]


@pytest.mark.parametrize("mode", ["add", "replace"])
def test_required_segment_ids_beyond_64_bits_do_not_exist(app, mode):
    reward = save_reward({"name": "R"}, actor="t")
    with pytest.raises(RewardError, match=r"segment #100000000000000000000 does not exist"):
        change_required_segments(reward, [10**20], mode=mode, actor="t")
    assert change_required_segments(reward, [2**63], mode="remove", actor="t") is reward
    assert db.session.scalar(select(func.count()).select_from(RewardRequiredSegment)) == 0


def test_change_required_segments_modes(app):
    a, b, c = (make_segment(n, refresh=False) for n in "ABC")
    reward = save_reward({"name": "R"}, actor="t")

    def required():
        db.session.expire_all()
        return sorted(db.session.scalars(select(RewardRequiredSegment.segment_id)))

    change_required_segments(reward, [a.id, b.id, a.id], mode="add", actor="t")
    assert required() == sorted([a.id, b.id])
    change_required_segments(reward, [b.id], mode="add", actor="t")
    change_required_segments(reward, [a.id], mode="remove", actor="t")
    assert required() == [b.id]
    change_required_segments(reward, [c.id, a.id], mode="replace", actor="t")
    assert required() == sorted([a.id, c.id])
    with pytest.raises(RewardError, match="#999 does not exist"):
        change_required_segments(reward, [999], mode="add", actor="t")
    with pytest.raises(RewardError):
        change_required_segments(reward, [a.id], mode="toggle", actor="t")
    assert required() == sorted([a.id, c.id])
    summaries = list(db.session.scalars(select(AuditEntry.summary).where(
        AuditEntry.action == "reward.segments").order_by(AuditEntry.id)))
    assert summaries == ["Reward R: required A, B", "Reward R: no longer requires A",
                         "Reward R: required A, C; no longer requires B"]


def test_reach_counts_members_in_all_segments_and_who_can_afford(app):
    members = [make_member(tier="gold", points=p) for p in (50, 500, 5000)]
    make_member(tier="bronze", points=9000)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals", "value": "gold"}])
    staff = make_segment("Staff", kind="static")
    add_to_list(staff, members[1], members[2])
    assert reward_reach([]) == 4
    assert reward_reach([gold.id]) == 3
    assert reward_reach([gold.id, staff.id]) == 2
    assert reward_reach([gold.id], cost=500) == 2
    assert reward_reach_detail([gold.id, staff.id], 1000) == (2, 1)
    assert reward_reach_detail([], 0) == (4, 4)
