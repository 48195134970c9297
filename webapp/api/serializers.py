"""Resource objects: how each entity looks in a JSON:API document."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Row

from webapp.api.jsonapi import link
from webapp.models import Audience, Member, MembershipEvent, Offer, Reward, Segment


def iso(value: datetime | None) -> str | None:
    """A stored naive-UTC datetime as RFC 3339 with a Z."""
    return value.isoformat() + "Z" if value else None


def member_resource(member: Member) -> dict[str, Any]:
    """A member resource (the id is the member id; attributes as SPEC §2)."""
    attributes = member.attributes()
    attributes.pop("id", None)
    return {"type": "members", "id": member.id, "attributes": attributes,
            "links": {"self": link("api.member_get", member_ref=member.id)}}


def member_identifier(member_id: str) -> dict[str, str]:
    """A member resource identifier."""
    return {"type": "members", "id": member_id}


def segment_organisation(rows: list[Segment | Row]) -> dict[int, dict[str, Any]]:
    """Tags and owner email of each segment (segment id -> {tags, owner}), in two queries."""
    from webapp.services.lookup import segment_organisation as organisation

    return organisation(rows)


def segment_resource(segment: Segment | Row,
                     organisation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A segment resource with its exact size and the link to its members (from the ORM
    object or a row of the segments table); `organisation` is its entry of
    `segment_organisation` (read here when not given)."""
    if organisation is None:
        organisation = segment_organisation([segment])[segment.id]
    return {
        "type": "segments", "id": str(segment.id),
        "attributes": {
            "name": segment.name, "description": segment.description or "",
            "kind": segment.kind, "customer_segment_id": segment.customer_segment_id,
            "url": segment.url, "include": list(segment.include or []),
            "exclude": list(segment.exclude or []), "size": segment.size or 0,
            # The Monterosa seed's name for the size; Beacon's is exact, not an estimate.
            "estimatedSize": segment.size or 0,
            "version": segment.version, "created_at": iso(segment.created_at),
            "updated_at": iso(segment.updated_at),
            "updated_by": segment.updated_by_label or None,
            "tags": organisation["tags"], "owner": organisation["owner"],
            "archived": segment.archived_at is not None,
            "archived_at": iso(segment.archived_at),
        },
        "relationships": {"members": {"links": {
            "self": link("api.segment_members", segment_ref=segment.id)},
            "meta": {"count": segment.size or 0}}},
        "links": {"self": link("api.segment_get", segment_ref=segment.id)},
    }


def offer_attributes(offer: Offer) -> dict[str, Any]:
    """An offer's own attributes."""
    return {"name": offer.name, "external_id": offer.external_id, "category": offer.category,
            "description": offer.description, "publish_at": iso(offer.publish_at),
            "expire_at": iso(offer.expire_at), "discontinued": bool(offer.discontinued),
            "requires_activation": bool(offer.requires_activation),
            "must_fulfill_within_days": offer.must_fulfill_within_days,
            "created_at": iso(offer.created_at), "updated_at": iso(offer.updated_at)}


def offer_resource(offer: Offer) -> dict[str, Any]:
    """An offer resource with its audiences as a to-many relationship."""
    return {"type": "offers", "id": str(offer.id), "attributes": offer_attributes(offer),
            "relationships": {"audiences": {"data": [
                {"type": "audiences", "id": str(a.id)} for a in offer.audiences]},
                "limits": {"data": [{"type": "limits", "id": str(lim.id)}
                                    for lim in offer.limits]}},
            "links": {"self": link("api.offer_get", offer_id=offer.id)}}


def audience_resource(audience: Audience) -> dict[str, Any]:
    """An audience resource with its offer as a to-one relationship."""
    return {"type": "audiences", "id": str(audience.id),
            "attributes": {"audience_type": audience.audience_type,
                           "configuration": dict(audience.configuration or {}),
                           "created_at": iso(audience.created_at)},
            "relationships": {"offer": {
                "data": {"type": "offers", "id": str(audience.offer_id)},
                "links": {"related": link("api.offer_get", offer_id=audience.offer_id)}}}}


def reward_attributes(reward: Reward) -> dict[str, Any]:
    """A reward's own attributes."""
    return {"name": reward.name, "external_id": reward.external_id, "category": reward.category,
            "description": reward.description, "points": reward.points,
            "publish_at": iso(reward.publish_at), "expire_at": iso(reward.expire_at),
            "discontinued": bool(reward.discontinued), "created_at": iso(reward.created_at),
            "updated_at": iso(reward.updated_at)}


def reward_resource(reward: Reward) -> dict[str, Any]:
    """A reward resource with its required segments as a to-many relationship."""
    return {"type": "rewards", "id": str(reward.id), "attributes": reward_attributes(reward),
            "relationships": {"required_segments": {
                "data": [segment_identifier(s.id) for s in reward.required_segments],
                "links": {"self": link("api.reward_required_segments", reward_id=reward.id)}}},
            "links": {"self": link("api.reward_get", reward_id=reward.id)}}


def segment_identifier(segment_id: int) -> dict[str, str]:
    """A segment resource identifier."""
    return {"type": "segments", "id": str(segment_id)}


def decision_attributes(decision: Any) -> dict[str, Any]:
    """A visibility decision's attributes: visible_status, eligible, reason, for an offer
    must_activate, activated and fulfillment_count, and reasons."""
    out = {"visible_status": decision.visible_status, "eligible": bool(decision.eligible),
           "reason": decision.reason}
    if decision.must_activate is not None:
        out["must_activate"] = decision.must_activate
        out["activated"] = decision.activated
        out["fulfillment_count"] = decision.fulfillment_count
    out["reasons"] = decision.explanation
    return out


def decorated_items(resource_type: str, catalog: Any, pairs: list[tuple[Any, Any]]) -> bytes:
    """The JSON array of offer or reward resources of the catalog, each with its own
    attributes and then its decision's (`decision_attributes`), serialized.

    The items' own attributes depend on the catalog alone and are serialized once per
    shared catalog; the decisions' trees carry their segments' subtrees pre-serialized."""
    from webapp.services.decisions import dumps

    own = offer_attributes if resource_type == "offers" else reward_attributes

    def head(item: Any) -> bytes:  # the resource up to its own attributes' last value
        return (b'{"type":' + dumps(resource_type) + b',"id":' + dumps(str(item.id))
                + b',"attributes":' + dumps(own(item))[:-1] + b",")

    return b"[" + b",".join(
        catalog.memoized(("api", resource_type, item.id), partial(head, item))
        + dumps(decision_attributes(decision))[1:] + b"}"
        for item, decision in pairs) + b"]"


def event_resource(event: MembershipEvent, external_id: str | None) -> dict[str, Any]:
    """A membership event resource (the same fields as a webhook delivery's body)."""
    from webapp.services.webhooks import event_payload

    attributes = event_payload(event, external_id)
    attributes.pop("event_id", None)
    return {"type": "membership-events", "id": str(event.id), "attributes": attributes,
            "relationships": {
                "segment": {"data": segment_identifier(event.segment_id)},
                "member": {"data": member_identifier(event.member_id)}}}


def limit_resource(limit: Any) -> dict[str, Any]:
    """An offer limit resource with its offer as a to-one relationship."""
    return {"type": "limits", "id": str(limit.id),
            "attributes": {"limit_type": limit.limit_type,
                           "configuration": dict(limit.configuration or {}),
                           "created_at": iso(limit.created_at)},
            "relationships": {"offer": {
                "data": {"type": "offers", "id": str(limit.offer_id)},
                "links": {"related": link("api.offer_get", offer_id=limit.offer_id)}}},
            "links": {"self": link("api.limit_get", limit_id=limit.id)}}


def _member_and_offer(item: Any) -> dict[str, Any]:
    return {"member": {"data": member_identifier(item.member_id)},
            "offer": {"data": {"type": "offers", "id": str(item.offer_id)}}}


def activation_resource(activation: Any) -> dict[str, Any]:
    """An activation resource (member and offer as to-one relationships)."""
    return {"type": "activations", "id": str(activation.id),
            "attributes": {"activated_at": iso(activation.activated_at),
                           "expires_at": iso(activation.expires_at),
                           "fulfilled_at": iso(activation.fulfilled_at)},
            "relationships": _member_and_offer(activation)}


def fulfillment_resource(fulfillment: Any) -> dict[str, Any]:
    """A fulfillment (award) resource (member and offer as to-one relationships)."""
    rels = _member_and_offer(fulfillment)
    if fulfillment.activation_id is not None:
        rels["activation"] = {"data": {"type": "activations",
                                       "id": str(fulfillment.activation_id)}}
    return {"type": "fulfillments", "id": str(fulfillment.id),
            "attributes": {"external_id": fulfillment.external_id,
                           "fulfilled_at": iso(fulfillment.fulfilled_at)},
            "relationships": rels}


def redemption_resource(redemption: Any) -> dict[str, Any]:
    """A reward redemption resource (member and reward as to-one relationships)."""
    rels: dict[str, Any] = {"member": {"data": member_identifier(redemption.member_id)},
                            "reward": {"data": None if redemption.reward_id is None else
                                       {"type": "rewards", "id": str(redemption.reward_id)}}}
    return {"type": "redemptions", "id": str(redemption.id),
            "attributes": {"reward_name": redemption.reward_name, "points": redemption.points,
                           "status": redemption.status, "external_id": redemption.external_id,
                           "created_at": iso(redemption.created_at),
                           "cancelled_at": iso(redemption.cancelled_at)},
            "relationships": rels,
            "links": {"self": link("api.redemption_get", redemption_id=redemption.id)}}
