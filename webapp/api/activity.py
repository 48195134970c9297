"""What members do with offers and rewards over the API: activations, fulfillments (awards)
and reward redemptions. A refused request is 409 (422 for bad input) with the decision that
refused it in the error's `meta.decision` (visible_status, eligible, reason, reasons)."""

from __future__ import annotations

from typing import Any

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError
from webapp.api.jsonapi import (
    actor_label,
    attributes_of,
    check_query,
    link,
    read_document,
    relationship_linkage,
    resource_object,
    respond,
    self_link,
)
from webapp.api.members import member_or_404
from webapp.api.offers import int_id, offer_or_404
from webapp.api.rewards import reward_or_404
from webapp.api.serializers import (
    activation_resource,
    decision_attributes,
    fulfillment_resource,
    redemption_resource,
)
from webapp.extensions import db
from webapp.models import RewardRedemption
from webapp.services.offer_activity import ActivityRefused


def _refused(exc: ActivityRefused, pointer: str | None = None) -> ApiError:
    meta = {"decision": decision_attributes(exc.decision)} if exc.decision else None
    return ApiError(exc.status, exc.code, exc.message, pointer=pointer, meta=meta,
                    title="Refused" if exc.status == 409 else None)


def _meta(decision: Any) -> dict[str, Any]:
    return {"decision": decision_attributes(decision)} if decision is not None else {}


def _optional_document() -> dict[str, Any]:
    """The request's resource document, or an empty one when there is no body."""
    from flask import request

    if not request.get_data(cache=True).strip():
        return {}
    return read_document()


@bp.route("/members/<member_ref>/offers/<offer_id>/activation", methods=["POST"])
@access("write")
def offer_activate(member_ref: str, offer_id: str):
    """Activate an offer that requires activation for a member (refused with the decision
    when it is not visible, not eligible, or already activated)."""
    check_query(())
    member = member_or_404(member_ref)
    offer = offer_or_404(offer_id)
    document = _optional_document()
    if document:
        data = resource_object(document, "activations", creating=True)
        attributes_of(data, ())
    from webapp.services.offer_activity import activate

    try:
        activation, decision = activate(member, offer, actor=actor_label())
    except ActivityRefused as exc:
        raise _refused(exc) from None
    return respond({"data": activation_resource(activation), "meta": _meta(decision)}, 201)


@bp.route("/members/<member_ref>/offers/<offer_id>/fulfillments", methods=["POST"])
@access("write")
def offer_fulfill(member_ref: str, offer_id: str):
    """Record an award of the offer to the member, idempotent by `external_id` (201 new,
    200 the same award again); refused with the decision when the offer is not visible or
    not eligible at this moment, so never past a limit."""
    check_query(())
    member = member_or_404(member_ref)
    offer = offer_or_404(offer_id)
    document = _optional_document()
    attributes: dict[str, Any] = {}
    if document:
        data = resource_object(document, "fulfillments", creating=True)
        attributes = attributes_of(data, ("external_id",), read_only=("fulfilled_at",))
    from webapp.services.offer_activity import fulfill

    try:
        fulfillment, created, decision = fulfill(
            member, offer, external_id=attributes.get("external_id"), actor=actor_label())
    except ActivityRefused as exc:
        raise _refused(exc, "/data/attributes/external_id"
                       if exc.code.startswith(("invalid_external", "external_id")) else None
                       ) from None
    return respond({"data": fulfillment_resource(fulfillment), "meta": _meta(decision)},
                   201 if created else 200)


def _reference(data: dict[str, Any], attributes: dict[str, Any], name: str,
               resource_type: str) -> str:
    """A member or reward named by a relationship or, the short form, by an attribute."""
    if name in attributes:
        value = attributes[name]
        # JSON Schema counts 421.0 as an integer, as the OpenAPI document's "integer" does.
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise ApiError(422, "invalid_id", f"{name} is the {resource_type[:-1]}'s id.",
                           pointer=f"/data/attributes/{name}")
        return value
    return relationship_linkage(data, name, resource_type) or ""


@bp.route("/redemptions", methods=["POST"])
@access("write")
def redemption_create():
    """Redeem a reward for a member: debits its points in the same transaction; refused with
    the decision when the reward is not visible or not eligible (e.g. short of points)."""
    check_query(())
    data = resource_object(read_document(), "redemptions", creating=True)
    attributes = attributes_of(data, ("member", "reward", "external_id"),
                               read_only=("points", "status", "created_at", "cancelled_at",
                                          "reward_name"))
    member_ref = _reference(data, attributes, "member", "members")
    reward_ref = _reference(data, attributes, "reward", "rewards")
    try:
        member = member_or_404(member_ref)
        reward = reward_or_404(reward_ref)
    except ApiError as exc:
        name = "member" if exc.errors[0]["code"] == "member_not_found" else "reward"
        exc.errors[0]["source"] = {"pointer": f"/data/attributes/{name}" if name in
                                   attributes else f"/data/relationships/{name}/data/id"}
        raise
    from webapp.services.redemptions import redeem

    try:
        redemption, created, decision = redeem(member, reward, actor=actor_label(),
                                               external_id=attributes.get("external_id"))
    except ActivityRefused as exc:
        raise _refused(exc, "/data/attributes/external_id"
                       if exc.code.startswith(("invalid_external", "external_id")) else None
                       ) from None
    return respond({"data": redemption_resource(redemption), "meta": _meta(decision)},
                   201 if created else 200,
                   {"Location": link("api.redemption_get", redemption_id=redemption.id)}
                   if created else None)


def redemption_or_404(redemption_id: str) -> RewardRedemption:
    """The redemption with this id; 404 otherwise."""
    number = int_id(redemption_id)
    redemption = db.session.get(RewardRedemption, number) if number is not None else None
    if redemption is None:
        raise ApiError(404, "redemption_not_found",
                       f"No redemption has the id {redemption_id!r}.", title="Not found")
    return redemption


@bp.route("/redemptions/<redemption_id>", methods=["GET"])
@access("read")
def redemption_get(redemption_id: str):
    """One redemption by id."""
    check_query(())
    return respond({"data": redemption_resource(redemption_or_404(redemption_id)),
                    "links": {"self": self_link()}})


@bp.route("/redemptions/<redemption_id>/cancel", methods=["PATCH"])
@access("write")
def redemption_cancel(redemption_id: str):
    """Cancel a redemption and refund its points to the member (refused if already
    cancelled)."""
    check_query(())
    redemption = redemption_or_404(redemption_id)
    document = _optional_document()
    if document:
        data = resource_object(document, "redemptions", resource_id=str(redemption.id))
        attributes_of(data, ())
    from webapp.services.redemptions import cancel

    try:
        redemption = cancel(redemption, actor=actor_label())
    except ActivityRefused as exc:
        raise _refused(exc) from None
    return respond({"data": redemption_resource(redemption)})
