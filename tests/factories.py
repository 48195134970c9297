"""Plain factory functions for test data."""

from __future__ import annotations

import itertools
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    Audience,
    AudienceSegment,
    Member,
    Offer,
    Reward,
    Segment,
    SegmentDependency,
    User,
)
from webapp.passwords import hash_password

_counter = itertools.count(1)
PASSWORD = "correct horse battery"


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return hash_password(PASSWORD)


def make_user(role: str = "admin", email: str | None = None, **kw: Any) -> User:
    """A user with the shared test password (reused when the email exists)."""
    email = (email or f"{role}{next(_counter)}@example.test").lower()
    existing = db.session.scalar(select(User).where(User.email == email))
    if existing:
        return existing
    user = User(email=email, role=role, name=kw.pop("name", role.capitalize()),
                password_hash=_password_hash(), **kw)
    db.session.add(user)
    db.session.commit()
    return user


def make_member(**kw: Any) -> Member:
    """A member; every attribute can be given."""
    n = next(_counter)
    values: dict[str, Any] = {
        "external_id": f"EXT{n:06d}", "email": f"member{n}@example.com",
        "birthday": date(1990, 5, 17), "tier": "bronze", "points": 100, "xp": 0, "coins": 0,
        "badges": [], "custom_fields": {},
    }
    values.update(kw)
    member = Member(**values)
    db.session.add(member)
    db.session.commit()
    return member


def activity_rule(measure: str = "count", operator: str = ">=", value: Any = 1,
                  kind: str = "purchase", days: int | None = None,
                  item: str | None = None) -> dict[str, Any]:
    """An activity criterion: `measure` of the member's `kind` activities (over the last
    `days`, those whose properties.item equals `item`) compared with `value`."""
    activity: dict[str, Any] = {"type": kind}
    if days is not None:
        activity["window"] = {"days": days}
    if item is not None:
        activity["where"] = [{"field": "properties.item", "operator": "equals", "value": item}]
    return {"field": f"activity.{measure}", "operator": operator, "value": value,
            "activity": activity}


def make_segment(name: str | None = None, kind: str = "dynamic", include=None, exclude=None,
                 refresh: bool = True, **kw: Any) -> Segment:
    """A segment; dynamic ones are materialized through the membership service."""
    from webapp.services.membership import Cause, refresh_segment
    from webapp.targeting import SegmentDefinitionError, referenced_segments

    segment = Segment(name=name or f"Segment {next(_counter)}", kind=kind,
                      include=include or [], exclude=exclude or [], **kw)
    db.session.add(segment)
    db.session.flush()
    try:
        depends = referenced_segments(segment.definition())
    except SegmentDefinitionError:  # some tests store broken rules on purpose
        depends = frozenset()
    for depends_on in depends:
        db.session.add(SegmentDependency(segment_id=segment.id, depends_on_id=depends_on))
    db.session.flush()
    if refresh and kind == "dynamic":
        refresh_segment(segment, Cause("rule", "test", {}))
    db.session.commit()
    return segment


def add_to_list(segment: Segment, *members: Member) -> None:
    """Put members on a static segment's list through the membership service."""
    from webapp.services.membership import Cause, apply_delta

    apply_delta(segment, add=[m.id for m in members], via="list",
                cause=Cause("static_list", "test", {}))
    db.session.commit()


def make_offer(name: str | None = None, audiences: list[tuple[str, dict]] = (),
               **kw: Any) -> Offer:
    """An offer with (audience_type, configuration) audiences."""
    offer = Offer(name=name or f"Offer {next(_counter)}", **kw)
    for audience_type, configuration in audiences:
        audience = Audience(audience_type=audience_type, configuration=configuration)
        for sid in configuration.get("segments", []):
            audience.segment_links.append(AudienceSegment(segment_id=sid))
        offer.audiences.append(audience)
    db.session.add(offer)
    db.session.commit()
    return offer


def make_reward(name: str | None = None, required: list[Segment] = (), **kw: Any) -> Reward:
    """A reward requiring the given segments."""
    reward = Reward(name=name or f"Reward {next(_counter)}", **kw)
    reward.required_segments = list(required)
    db.session.add(reward)
    db.session.commit()
    return reward
