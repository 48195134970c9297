"""Rewards and their required segments: create, change, delete, and the exact reach in SQL.

The dashboard views and the JSON:API both call these functions; each one validates, writes its
audit entry and commits, or raises :class:`RewardError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Member, Reward, RewardRequiredSegment, Segment
from webapp.services.audit import record
from webapp.services.errors import ServiceError
from webapp.services.offers import (
    MAX_ID,
    member_exists,
    moment_text,
    parse_catalog_fields,
    segment_driven_count,
    store_item,
)
from webapp.timeutil import utcnow

REWARD_FIELDS = ("name", "external_id", "category", "description", "points", "publish_at",
                 "expire_at", "discontinued")
MAX_POINTS = 2**63 - 1
MODES = ("add", "remove", "replace")


class RewardError(ServiceError):
    """A refused reward change; `.errors` maps each field to what is wrong with it."""


def reward_snapshot(reward: Reward) -> dict[str, Any]:
    """The reward's fields and required segment ids as JSON, for audit before/after."""
    return {"name": reward.name, "external_id": reward.external_id, "category": reward.category,
            "description": reward.description, "points": reward.points,
            "publish_at": moment_text(reward.publish_at),
            "expire_at": moment_text(reward.expire_at), "discontinued": reward.discontinued,
            "required_segments": sorted(s.id for s in reward.required_segments)}


def _parse_points(data: Mapping[str, Any], errors: dict[str, str]) -> int:
    value = data.get("points", 0)
    if value is None:
        value = 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        errors["points"] = "must be a whole number of points"
        return 0
    if value < 0:
        errors["points"] = "must be 0 or more"
    elif value > MAX_POINTS:
        errors["points"] = f"must be at most {MAX_POINTS:,}"
    return value


def save_reward(data: Mapping[str, Any], *, reward: Reward | None = None, actor: str) -> Reward:
    """Create a reward, or change the given fields of an existing one; audits and commits."""
    errors = {str(k): "is not an attribute of this resource"
              for k in data if k not in REWARD_FIELDS}
    values = parse_catalog_fields(data, reward, Reward, "reward", errors)
    if reward is None or "points" in data:
        values["points"] = _parse_points(data, errors)
    if errors:
        raise RewardError(errors)
    creating = reward is None
    before = None if creating else reward_snapshot(reward)
    if creating:
        reward = Reward()
        reward.required_segments = []
        db.session.add(reward)
    return store_item(reward, values, kind="reward", before=before, snapshot=reward_snapshot,
                      error=RewardError, actor=actor)


def delete_reward(reward: Reward, *, actor: str) -> None:
    """Delete a reward (its required-segment links go with it); audits and commits."""
    record(actor, "reward.delete", "reward", reward.id, f"Deleted reward {reward.name}",
           reward_snapshot(reward), None)
    db.session.delete(reward)
    db.session.commit()


def change_required_segments(reward: Reward, segment_ids: Sequence[Any], *, mode: str,
                             actor: str) -> Reward:
    """Add, remove or replace a reward's required segments (ids must exist); audits, commits.

    Adding a segment already required, or removing one that is not, changes nothing for it.
    """
    if mode not in MODES:
        raise RewardError({"mode": f"must be one of {', '.join(MODES)}"})
    if not isinstance(segment_ids, list | tuple):
        raise RewardError({"segment_ids": "must be a list of segment ids"})
    ids: list[int] = []
    for sid in segment_ids:
        if not isinstance(sid, int) or isinstance(sid, bool):
            raise RewardError({"segment_ids": f"segment ids are whole numbers, not {sid!r}"})
        if sid not in ids:
            ids.append(sid)
    in_range = [sid for sid in ids if 0 < sid <= MAX_ID]
    found = set(db.session.scalars(sa.select(Segment.id).where(Segment.id.in_(in_range)))) \
        if in_range else set()
    missing = [sid for sid in ids if sid not in found]
    if missing and mode != "remove":
        which = ", ".join(f"#{m}" for m in missing) + (" does" if len(missing) == 1 else " do")
        raise RewardError({"segment_ids": f"segment {which} not exist"},
                          words={"segment_ids": f"Segment {which} not exist."})
    before = reward_snapshot(reward)
    current = set(before["required_segments"])
    if mode != "remove":
        from webapp.services.segments import archived_among, archived_message

        archived = archived_among(ids, keep=current)
        if archived:
            name = next(iter(archived.values()))
            raise RewardError({"segment_ids": archived_message(name)},
                              words={"segment_ids": archived_message(name, sentence=True)})
    if mode == "add":
        wanted = current | set(ids)
    elif mode == "remove":
        wanted = current - set(ids)
    else:
        wanted = set(ids)
    table = RewardRequiredSegment.__table__
    gone = current - wanted
    new = wanted - current
    if gone:
        db.session.execute(sa.delete(table).where(table.c.reward_id == reward.id,
                                                  table.c.segment_id.in_(sorted(gone))))
    if new:
        db.session.execute(sa.insert(table), [{"reward_id": reward.id, "segment_id": sid}
                                              for sid in sorted(new)])
    if gone or new:
        reward.updated_at = utcnow()
        db.session.flush()
        db.session.expire(reward, ["required_segments"])
        after = reward_snapshot(reward)
        names = dict(db.session.execute(sa.select(Segment.id, Segment.name).where(
            Segment.id.in_(sorted(gone | new)))).all())
        parts = []
        if new:
            parts.append("required " + ", ".join(names.get(i, f"#{i}") for i in sorted(new)))
        if gone:
            parts.append("no longer requires " + ", ".join(names.get(i, f"#{i}")
                                                          for i in sorted(gone)))
        record(actor, "reward.segments", "reward", reward.id,
               f"Reward {reward.name}: " + "; ".join(parts), before, after)
    db.session.commit()
    return reward


def _sets(segment_ids: Sequence[int]) -> list[list[int]]:
    ids = list(dict.fromkeys(segment_ids))
    sizes = dict(db.session.execute(sa.select(Segment.id, Segment.size).where(
        Segment.id.in_(ids))).all())
    return [[sid] for sid in sorted(ids, key=lambda sid: sizes.get(sid, 0))]


def reward_reach(segment_ids: Sequence[int], *, cost: int | None = None) -> int:
    """Members in ALL the segments (every member when none); with `cost`, only those who can
    afford it (points >= cost). Counted in SQL over materialized membership."""
    members = Member.__table__
    if not segment_ids:
        query = sa.select(sa.func.count()).select_from(members)
        if cost is not None:
            query = query.where(members.c.points >= cost)
        return int(db.session.scalar(query) or 0)
    query, base = segment_driven_count(_sets(segment_ids))
    if cost is not None:
        query = query.where(member_exists(base.c.member_id, members.c.points >= cost))
    return int(db.session.scalar(query) or 0)


def reward_reach_detail(segment_ids: Sequence[int], cost: int) -> tuple[int, int]:
    """(members in all the segments, how many of them have points >= cost)."""
    return reward_reach(segment_ids), reward_reach(segment_ids, cost=cost)
