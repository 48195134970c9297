"""Offer limits: add, remove, and how many members have reached each (SPEC §8).

The dashboard and the JSON:API both call these; each validates, audits and commits, or
raises :class:`~webapp.services.offers.OfferError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Offer, OfferActivation, OfferFulfillment, OfferLimit, OfferUsage
from webapp.services.audit import record
from webapp.services.locking import lock_offer
from webapp.services.offers import OfferError
from webapp.services.rules import program_timezone
from webapp.targeting.limits import (
    ACTIVATIONS,
    LimitDefinitionError,
    check_same_count,
    counts,
    describe_limit,
    is_global,
    period_bounds,
    validate_limit,
)
from webapp.timeutil import utcnow


def limit_snapshot(limit: OfferLimit) -> dict[str, Any]:
    """A limit as JSON, for audit before/after."""
    return {"id": limit.id, "limit_type": limit.limit_type,
            "configuration": dict(limit.configuration or {})}


def add_limit(offer: Offer, limit_type: Any, configuration: Any, *, actor: str) -> OfferLimit:
    """Validate and add a limit to an offer; audits and commits.

    Refused: an invalid configuration, a limit counting other things than the offer's other
    limits (activations vs awards), an activation limit on an offer that does not require
    activation, and a second limit of the same type and window."""
    try:
        config = validate_limit(limit_type, configuration)
    except LimitDefinitionError as exc:
        raise OfferError({exc.field: str(exc)}) from exc
    lock_offer(offer.id)
    db.session.refresh(offer)
    existing = list(offer.limits)
    try:
        check_same_count([lim.limit_type for lim in existing], limit_type)
    except LimitDefinitionError as exc:
        db.session.rollback()
        raise OfferError({"limit_type": str(exc)}) from exc
    if counts(limit_type) == ACTIVATIONS and not offer.requires_activation:
        db.session.rollback()
        raise OfferError({"limit_type": f"{limit_type} counts activations, but offer "
                          f"{offer.name} does not require activation (set "
                          "requires_activation first)"})
    for other in existing:
        if other.limit_type == limit_type and (other.configuration or {}).get(
                "window") == config["window"]:
            db.session.rollback()
            words = describe_limit(other.limit_type, other.configuration)
            raise OfferError({"limit_type": f"offer {offer.name} already has this limit "
                              f"(#{other.id}: {words}); delete it first to change it"})
    limit = OfferLimit(offer_id=offer.id, limit_type=limit_type, configuration=config)
    db.session.add(limit)
    offer.updated_at = utcnow()
    db.session.flush()
    record(actor, "limit.create", "offer", offer.id,
           f"Added limit to offer {offer.name}: {describe_limit(limit_type, config)}",
           None, limit_snapshot(limit))
    db.session.commit()
    db.session.refresh(offer)
    return limit


def remove_limit(limit: OfferLimit, *, actor: str) -> None:
    """Remove one limit from its offer; audits and commits."""
    offer = limit.offer
    record(actor, "limit.delete", "offer", limit.offer_id,
           f"Removed limit from offer {offer.name}: "
           f"{describe_limit(limit.limit_type, limit.configuration or {})}",
           limit_snapshot(limit), None)
    db.session.delete(limit)
    offer.updated_at = utcnow()
    db.session.commit()
    db.session.refresh(offer)


def window_start(configuration: Mapping[str, Any], now: datetime, tz: str) -> datetime | None:
    """Where a limit's window starts at `now` (None: it counts over all time)."""
    window = configuration.get("window") or None
    if window is None:
        return None
    if "days" in window:
        return now - timedelta(days=int(window["days"]))
    return period_bounds(window["period"], now, tz)[0]


def limit_standing(offer: Offer, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each limit of the offer in words, with its count: for a global limit the count over
    all members, for a membership limit how many members have reached it (in its current
    window)."""
    now = now or utcnow()
    tz = program_timezone()
    usage = db.session.get(OfferUsage, offer.id)
    out = []
    for limit in offer.limits:
        config = limit.configuration or {}
        row: dict[str, Any] = {"limit": limit, "text": describe_limit(limit.limit_type, config),
                               "counts": counts(limit.limit_type),
                               "global": is_global(limit.limit_type)}
        if row["global"]:
            used = 0 if usage is None else (usage.activations if row["counts"] == ACTIVATIONS
                                            else usage.awards)
            row.update(used=int(used), reached=used >= config["limit"])
        else:
            row["members_reached"] = members_reached(offer.id, limit.limit_type, config, now,
                                                     tz)
        out.append(row)
    return out


def members_reached(offer_id: int, limit_type: str, configuration: Mapping[str, Any],
                    now: datetime, tz: str) -> int:
    """How many members' count (in the limit's current window) is at its limit."""
    if counts(limit_type) == ACTIVATIONS:
        table, at = OfferActivation.__table__, OfferActivation.__table__.c.activated_at
    else:
        table, at = OfferFulfillment.__table__, OfferFulfillment.__table__.c.fulfilled_at
    start = window_start(configuration, now, tz)
    inner = sa.select(table.c.member_id).where(table.c.offer_id == offer_id, at <= now)
    if start is not None:
        inner = inner.where(at >= start)
    inner = inner.group_by(table.c.member_id).having(
        sa.func.count() >= int(configuration["limit"])).subquery()
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(inner)) or 0)
