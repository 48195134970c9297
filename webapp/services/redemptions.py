"""Members redeeming rewards for points, and cancelling (refunding) redemptions.

A redemption takes the member's lock (webapp.services.locking), decides the reward for the
member again under it, and debits the points with a guarded UPDATE (points >= cost) in the
same transaction as the redemption row, so concurrent redemptions never take a balance
below zero. The points change is a profile change: the member's dynamic segments are
re-evaluated through the membership service, with events naming the redemption.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Member, Reward, RewardRedemption
from webapp.services.audit import record
from webapp.services.locking import lock_member
from webapp.services.membership import Cause, refresh_member
from webapp.services.offer_activity import ActivityRefused, _refuse_unless, clean_external_id
from webapp.targeting.visibility import Decision
from webapp.timeutil import utcnow

REDEEMED = "redeemed"
CANCELLED = "cancelled"


def redemption_snapshot(redemption: RewardRedemption) -> dict[str, Any]:
    """A redemption as JSON, for audit before/after."""
    return {"id": redemption.id, "reward_id": redemption.reward_id,
            "reward_name": redemption.reward_name, "member_id": redemption.member_id,
            "points": redemption.points, "status": redemption.status,
            "external_id": redemption.external_id}


def _change_points(member: Member, delta: int, *, actor: str, detail: dict[str, Any],
                   now: datetime) -> None:
    """Add `delta` to the member's points (refused below zero) and re-evaluate its dynamic
    segments; no commit."""
    table = Member.__table__
    condition = table.c.id == member.id
    if delta < 0:  # a debit never takes the balance below zero (a refund always applies)
        condition = sa.and_(condition, table.c.points + delta >= 0)
    done = db.session.execute(sa.update(table).where(condition).values(
        points=table.c.points + delta, updated_at=now))
    if done.rowcount != 1:
        raise ActivityRefused(409, "insufficient_points",
                              f"Member {member.external_id} does not have the points.")
    db.session.refresh(member)
    refresh_member(member, Cause("profile_change", actor, {"fields": ["points"], **detail}),
                   now=now)


def redeem(member: Member, reward: Reward, *, actor: str, external_id: str | None = None,
           now: datetime | None = None) -> tuple[RewardRedemption, bool, Decision | None]:
    """Redeem the reward for the member (commits): (the redemption, whether it is new, the
    decision after it). The same external id again returns the first redemption. Refused
    with the decision when the reward is not visible or not eligible (short of points)."""
    from webapp.services.decisions import reward_decision

    external_id = clean_external_id(external_id)
    lock_member(member.id)
    now = now or utcnow()
    try:
        if external_id is not None:
            earlier = db.session.scalar(sa.select(RewardRedemption).where(
                RewardRedemption.external_id == external_id))
            if earlier is not None:
                if earlier.member_id != member.id or earlier.reward_id != reward.id:
                    raise ActivityRefused(
                        409, "external_id_conflict",
                        f"external_id {external_id!r} already names another redemption; "
                        "use a new id for a new redemption.")
                db.session.commit()
                return earlier, False, None
        db.session.refresh(member)  # the balance as of the lock
        decision = reward_decision(member, reward, now=now)
        _refuse_unless(decision, member, reward, "reward")
        redemption = RewardRedemption(reward_id=reward.id, reward_name=reward.name,
                                      member_id=member.id, points=int(reward.points or 0),
                                      status=REDEEMED, external_id=external_id,
                                      created_at=now, actor_label=actor)
        db.session.add(redemption)
        db.session.flush()
        if redemption.points:
            _change_points(member, -redemption.points, actor=actor,
                           detail={"redemption_id": redemption.id}, now=now)
    except ActivityRefused:
        db.session.rollback()
        raise
    record(actor, "reward.redeem", "member", member.id,
           f"Member {member.external_id} redeemed reward {reward.name} for "
           f"{redemption.points:,} points", None, redemption_snapshot(redemption))
    db.session.commit()
    return redemption, True, reward_decision(member, reward, now=now)


def cancel(redemption: RewardRedemption, *, actor: str, now: datetime | None = None
           ) -> RewardRedemption:
    """Cancel a redemption and refund its points (commits); refused when already
    cancelled."""
    member = db.session.get(Member, redemption.member_id)
    lock_member(redemption.member_id)
    now = now or utcnow()
    db.session.refresh(redemption)
    if redemption.status == CANCELLED:
        db.session.rollback()
        raise ActivityRefused(409, "already_cancelled",
                              f"Redemption #{redemption.id} was cancelled on "
                              f"{redemption.cancelled_at:%Y-%m-%d %H:%M} UTC; its points were "
                              "refunded then.")
    before = redemption_snapshot(redemption)
    redemption.status = CANCELLED
    redemption.cancelled_at = now
    if redemption.points:
        _change_points(member, redemption.points, actor=actor,
                       detail={"redemption_id": redemption.id, "cancelled": True}, now=now)
    record(actor, "reward.cancel", "member", redemption.member_id,
           f"Cancelled redemption #{redemption.id} of {redemption.reward_name}: refunded "
           f"{redemption.points:,} points", before, redemption_snapshot(redemption))
    db.session.commit()
    return redemption


def member_redemptions(member_id: str) -> dict[int | None, list[RewardRedemption]]:
    """The member's redemptions per reward id, newest first (for the member page)."""
    out: dict[int | None, list[RewardRedemption]] = {}
    for r in db.session.scalars(sa.select(RewardRedemption).where(
            RewardRedemption.member_id == member_id).order_by(RewardRedemption.id.desc())):
        out.setdefault(r.reward_id, []).append(r)
    return out
