"""Offer limits over the API: POST /limits (related to their offer), GET and DELETE one."""

from __future__ import annotations

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, validation_error
from webapp.api.jsonapi import (
    actor_label,
    check_query,
    link,
    no_content,
    respond,
    self_link,
)
from webapp.api.offers import int_id, offer_part
from webapp.api.serializers import limit_resource
from webapp.extensions import db
from webapp.models import OfferLimit


def limit_or_404(limit_id: str) -> OfferLimit:
    """The limit with this id; 404 otherwise."""
    number = int_id(limit_id)
    limit = db.session.get(OfferLimit, number) if number is not None else None
    if limit is None:
        raise ApiError(404, "limit_not_found", f"No limit has the id {limit_id!r}.",
                       title="Not found")
    return limit


@bp.route("/limits", methods=["POST"])
@access("write")
def limit_create():
    """Add a limit (global_activation, membership_activation, global_award_count,
    membership_award_count; {limit, window}) to the offer it names."""
    from webapp.services.offer_limits import add_limit
    from webapp.services.offers import OfferError

    offer, attributes = offer_part("limits", "limit_type")
    try:
        limit = add_limit(offer, attributes["limit_type"], attributes["configuration"],
                          actor=actor_label())
    except OfferError as exc:
        raise validation_error(exc.errors) from None
    return respond({"data": limit_resource(limit)}, 201,
                   {"Location": link("api.limit_get", limit_id=limit.id)})


@bp.route("/limits/<limit_id>", methods=["GET"])
@access("read")
def limit_get(limit_id: str):
    """One limit by id."""
    check_query(())
    return respond({"data": limit_resource(limit_or_404(limit_id)),
                    "links": {"self": self_link()}})


@bp.route("/limits/<limit_id>", methods=["DELETE"])
@access("write")
def limit_delete(limit_id: str):
    """Remove a limit from its offer."""
    from webapp.services.offer_limits import remove_limit

    remove_limit(limit_or_404(limit_id), actor=actor_label())
    return no_content()
