"""Members activating offers and being awarded them (fulfillments), never past a limit.

Each write takes the offer's lock (webapp.services.locking), decides the offer for the member
again under it, and writes the activity with the offer's usage counts in the same
transaction, or raises :class:`ActivityRefused` carrying the decision and changes nothing.
So N concurrent fulfillments against a global limit of L award exactly min(N, L).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Member, Offer, OfferActivation, OfferFulfillment, OfferUsage
from webapp.services.locking import lock_offer
from webapp.targeting.visibility import ACTIVATION_REQUIRED, ELIGIBLE, VISIBLE, Decision
from webapp.timeutil import utcnow

MAX_EXTERNAL_ID = 255


class ActivityRefused(Exception):
    """A refused activation, fulfillment or redemption: HTTP-ish status, a code, a message
    and the decision that refused it (None when no decision was involved)."""

    def __init__(self, status: int, code: str, message: str,
                 decision: Decision | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.decision = decision


def why(decision: Decision) -> str:
    """The decision's near misses in one line ("3 of 3 awards this month; resets ...")."""
    from webapp.services.decisions import near_misses

    misses = near_misses(decision.explanation)
    return "; ".join(misses) if misses else decision.reason.replace("_", " ")


def _refuse_unless(decision: Decision, member: Member, item: Any, kind: str, *,
                   allow: tuple[str, ...] = (ELIGIBLE,)) -> None:
    name = f"{kind} {item.name}"
    if decision.visible_status != VISIBLE:
        raise ActivityRefused(409, f"{kind}_not_visible",
                              f"{name.capitalize()} is not visible to member "
                              f"{member.external_id} ({decision.visible_status}): "
                              f"{why(decision)}.", decision)
    if decision.reason not in allow:
        raise ActivityRefused(409, f"{kind}_not_eligible",
                              f"Member {member.external_id} is not eligible for {name} "
                              f"({decision.reason}): {why(decision)}.", decision)


def _decide(member: Member, offer: Offer, now: datetime) -> Decision:
    from webapp.services.decisions import offer_decision

    return offer_decision(member, offer, now=now)


def _count(offer_id: int, *, activations: int = 0, awards: int = 0) -> None:
    """Add to the offer's usage counts (the caller holds the offer's lock)."""
    table = OfferUsage.__table__
    done = db.session.execute(sa.update(table).where(table.c.offer_id == offer_id).values(
        activations=table.c.activations + activations, awards=table.c.awards + awards))
    if done.rowcount == 0:
        db.session.execute(sa.insert(table).values(offer_id=offer_id, activations=activations,
                                                   awards=awards))


def current_activation(member_id: str, offer_id: int, now: datetime) -> OfferActivation | None:
    """The member's usable activation of the offer at `now` (unused, not lapsed)."""
    return db.session.scalar(sa.select(OfferActivation).where(
        OfferActivation.member_id == member_id, OfferActivation.offer_id == offer_id,
        OfferActivation.activated_at <= now, OfferActivation.fulfilled_at.is_(None),
        sa.or_(OfferActivation.expires_at.is_(None), OfferActivation.expires_at > now)
    ).order_by(OfferActivation.activated_at.desc(), OfferActivation.id.desc()).limit(1))


def activate(member: Member, offer: Offer, *, actor: str, now: datetime | None = None
             ) -> tuple[OfferActivation, Decision]:
    """Activate the offer for the member (commits); returns the activation and the decision
    after it. Refused when the offer does not require activation, is not visible, is not
    eligible for another reason than the missing activation, or is activated already."""
    if not offer.requires_activation:
        raise ActivityRefused(409, "activation_not_required",
                              f"Offer {offer.name} does not require activation; record its "
                              "fulfillments directly.")
    lock_offer(offer.id)
    now = now or utcnow()
    try:
        decision = _decide(member, offer, now)
        _refuse_unless(decision, member, offer, "offer", allow=(ACTIVATION_REQUIRED,
                                                                ELIGIBLE))
        if decision.activated:
            raise ActivityRefused(409, "already_activated",
                                  f"Member {member.external_id} has already activated offer "
                                  f"{offer.name}: {why_activated(decision)}", decision)
    except ActivityRefused:
        db.session.rollback()
        raise
    days = offer.must_fulfill_within_days
    activation = OfferActivation(offer_id=offer.id, member_id=member.id, activated_at=now,
                                 expires_at=now + timedelta(days=days) if days else None,
                                 actor_label=actor)
    db.session.add(activation)
    _count(offer.id, activations=1)
    db.session.commit()
    return activation, _decide(member, offer, now)


def why_activated(decision: Decision) -> str:
    """The activation node's label of a decision (when and until when)."""
    for n in decision.explanation.get("children") or ():
        if n.get("kind") == "activation":
            return str(n.get("label"))
    return "activated"


def clean_external_id(value: Any) -> str | None:
    """A caller's external id: a non-empty string of at most 255 characters, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ActivityRefused(422, "invalid_external_id",
                              "external_id is a non-empty string (your id for this award).")
    value = value.strip()
    if len(value) > MAX_EXTERNAL_ID:
        raise ActivityRefused(422, "invalid_external_id",
                              f"external_id is at most {MAX_EXTERNAL_ID} characters "
                              f"({len(value):,} given).")
    return value


def fulfill(member: Member, offer: Offer, *, external_id: str | None, actor: str,
            now: datetime | None = None) -> tuple[OfferFulfillment, bool, Decision | None]:
    """Award the offer to the member (commits): (the fulfillment, whether it is new, the
    decision after it). The same external id again returns the first award unchanged.
    Refused when the offer is not visible or not eligible for the member at this moment
    (a reached limit makes it invisible); an offer that requires activation uses up the
    member's activation."""
    external_id = clean_external_id(external_id)
    lock_offer(offer.id)
    now = now or utcnow()
    try:
        if external_id is not None:
            earlier = db.session.scalar(sa.select(OfferFulfillment).where(
                OfferFulfillment.offer_id == offer.id,
                OfferFulfillment.external_id == external_id))
            if earlier is not None:
                if earlier.member_id != member.id:
                    raise ActivityRefused(
                        409, "external_id_conflict",
                        f"external_id {external_id!r} already names an award of offer "
                        f"{offer.name} to another member; use a new id for a new award.")
                db.session.commit()
                return earlier, False, None
        decision = _decide(member, offer, now)
        _refuse_unless(decision, member, offer, "offer")
    except ActivityRefused:
        db.session.rollback()
        raise
    activation = current_activation(member.id, offer.id, now) \
        if offer.requires_activation else None
    fulfillment = OfferFulfillment(offer_id=offer.id, member_id=member.id,
                                   external_id=external_id, fulfilled_at=now,
                                   activation_id=activation.id if activation else None,
                                   actor_label=actor)
    if activation is not None:
        activation.fulfilled_at = now
    db.session.add(fulfillment)
    _count(offer.id, awards=1)
    db.session.commit()
    return fulfillment, True, _decide(member, offer, now)


def member_activity(member_id: str) -> dict[int, dict[str, Any]]:
    """Per offer id: the member's activations and fulfillments (newest first), for the
    member page."""
    out: dict[int, dict[str, Any]] = {}
    for a in db.session.scalars(sa.select(OfferActivation).where(
            OfferActivation.member_id == member_id).order_by(OfferActivation.id.desc())):
        out.setdefault(a.offer_id, {"activations": [], "fulfillments": []})[
            "activations"].append(a)
    for f in db.session.scalars(sa.select(OfferFulfillment).where(
            OfferFulfillment.member_id == member_id).order_by(OfferFulfillment.id.desc())):
        out.setdefault(f.offer_id, {"activations": [], "fulfillments": []})[
            "fulfillments"].append(f)
    return out
