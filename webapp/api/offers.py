"""Offers and their audiences over the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, validation_error
from webapp.api.jsonapi import (
    actor_label,
    attributes_of,
    check_query,
    link,
    no_content,
    read_document,
    relationship_linkage,
    resource_object,
    respond,
    self_link,
)
from webapp.api.pagination import (
    PAGE_PARAMS,
    keyset_page,
)
from webapp.api.serializers import audience_resource, limit_resource, offer_resource
from webapp.extensions import db
from webapp.models import Audience, Offer
from webapp.services.lookup import find_segment
from webapp.targeting.audiences import REGISTRY, SEGMENT_IDS

OFFER_ATTRIBUTES = ("name", "external_id", "category", "description", "publish_at",
                    "expire_at", "discontinued", "requires_activation",
                    "must_fulfill_within_days")
READ_ONLY = ("created_at", "updated_at")
#: The attributes of offers and rewards that may be null (as in answers); null is refused for
#: the others.
CATALOG_NULLABLE = ("external_id", "publish_at", "expire_at")
#: An offer's too: null must_fulfill_within_days is no deadline, as the document says.
NULLABLE = (*CATALOG_NULLABLE, "must_fulfill_within_days")


def int_id(value: str) -> int | None:
    """A path segment as a database id, or None when it cannot be one."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def offer_or_404(offer_id: str) -> Offer:
    """The offer with this id (or external id); 404 otherwise."""
    offer = None
    number = int_id(offer_id)
    if number is not None:
        offer = db.session.get(Offer, number)
    if offer is None and "\x00" not in offer_id:
        offer = db.session.scalar(select(Offer).where(Offer.external_id == offer_id))
    if offer is None:
        raise ApiError(404, "offer_not_found", f"No offer has the id {offer_id!r}.",
                       title="Not found")
    return offer


def offer_part(resource_type: str, type_key: str) -> tuple[Offer, dict[str, Any]]:
    """A new part of an offer (an audience, a limit) from the request: the offer its `offer`
    relationship names (404 pointing at it) and its attributes `type_key` and `configuration`,
    both required."""
    data = resource_object(read_document(), resource_type, creating=True)
    attributes = attributes_of(data, (type_key, "configuration"), read_only=("created_at",))
    offer_ref = relationship_linkage(data, "offer", "offers") or ""
    try:
        offer = offer_or_404(offer_ref)
    except ApiError as exc:
        exc.errors[0]["source"] = {"pointer": "/data/relationships/offer/data/id"}
        raise
    for key in (type_key, "configuration"):
        if key not in attributes:
            raise ApiError(422, "missing_attribute", f"{key} is required.",
                           pointer=f"/data/attributes/{key}")
    return offer, attributes


def _included(offers: list[Offer]) -> list[dict[str, Any]]:
    return [audience_resource(a) for offer in offers for a in offer.audiences] + [
        limit_resource(lim) for offer in offers for lim in offer.limits]


@bp.route("/offers", methods=["GET"])
@access("read")
def offer_list():
    """List offers by id (cursor pagination), their audiences included."""
    check_query(PAGE_PARAMS)
    rows, links = keyset_page(select(Offer).options(
        selectinload(Offer.audiences), selectinload(Offer.limits)), Offer.id)
    return respond({"data": [offer_resource(o) for o in rows], "included": _included(rows),
                    "links": links})


@bp.route("/offers", methods=["POST"])
@access("write")
def offer_create():
    """Create an offer (add audiences with POST /audiences)."""
    from webapp.services.offers import OfferError, save_offer

    data = resource_object(read_document(), "offers", creating=True)
    attributes = attributes_of(data, OFFER_ATTRIBUTES, read_only=READ_ONLY,
                               nullable=NULLABLE)
    try:
        offer = save_offer(attributes, actor=actor_label())
    except OfferError as exc:
        raise validation_error(exc.errors) from None
    return respond({"data": offer_resource(offer), "included": _included([offer])}, 201,
                   {"Location": link("api.offer_get", offer_id=offer.id)})


@bp.route("/offers/<offer_id>", methods=["GET"])
@access("read")
def offer_get(offer_id: str):
    """One offer by id or external id, its audiences included."""
    check_query(())
    offer = offer_or_404(offer_id)
    return respond({"data": offer_resource(offer), "included": _included([offer]),
                    "links": {"self": self_link()}})


@bp.route("/offers/<offer_id>", methods=["PATCH"])
@access("write")
def offer_update(offer_id: str):
    """Change the given attributes of an offer."""
    from webapp.services.offers import OfferError, save_offer

    offer = offer_or_404(offer_id)
    data = resource_object(read_document(), "offers")
    if "id" in data and str(data["id"]) not in (str(offer.id), offer_id):
        raise ApiError(409, "id_mismatch", "The resource id does not match the URL.",
                       pointer="/data/id")
    attributes = attributes_of(data, OFFER_ATTRIBUTES, read_only=READ_ONLY,
                               nullable=NULLABLE)
    try:
        offer = save_offer(attributes, offer=offer, actor=actor_label())
    except OfferError as exc:
        raise validation_error(exc.errors) from None
    return respond({"data": offer_resource(offer), "included": _included([offer])})


@bp.route("/offers/<offer_id>", methods=["DELETE"])
@access("admin")
def offer_delete(offer_id: str):
    """Delete an offer and its audiences."""
    from webapp.services.offers import delete_offer

    delete_offer(offer_or_404(offer_id), actor=actor_label())
    return no_content()


def _segment_ids(audience_type: Any, configuration: Any) -> Any:
    """Segment references in an audience configuration as ids (customer segment ids accepted),
    in every field the audience registry marks as a list of segments."""
    kind = REGISTRY.get(audience_type) if isinstance(audience_type, str) else None
    if kind is None or not isinstance(configuration, dict):
        return configuration
    resolved = dict(configuration)
    for spec in kind.fields:
        refs = configuration.get(spec.name)
        if spec.input != SEGMENT_IDS or not isinstance(refs, list):
            continue
        ids: list[Any] = []
        for index, ref in enumerate(refs):
            if isinstance(ref, str):
                segment = find_segment(ref) if ref.strip() and "\x00" not in ref else None
                if segment is None:
                    raise ApiError(422, "unknown_segment", f"No segment has the id or customer "
                                   f"segment id {ref!r}.", title="Invalid attribute",
                                   pointer=f"/data/attributes/configuration/{spec.name}/{index}")
                ids.append(segment.id)
            else:
                ids.append(ref)
        resolved[spec.name] = ids
    return resolved


@bp.route("/audiences", methods=["POST"])
@access("write")
def audience_create():
    """Add an audience (one of the audience registry's types) to the offer it names."""
    from webapp.services.offers import OfferError, add_audience

    offer, attributes = offer_part("audiences", "audience_type")
    configuration = _segment_ids(attributes["audience_type"], attributes["configuration"])
    try:
        audience = add_audience(offer, attributes["audience_type"], configuration,
                                actor=actor_label())
    except OfferError as exc:
        raise validation_error(exc.errors) from None
    return respond({"data": audience_resource(audience)}, 201)


@bp.route("/audiences/<audience_id>", methods=["DELETE"])
@access("write")
def audience_delete(audience_id: str):
    """Remove an audience from its offer."""
    from webapp.services.offers import remove_audience

    number = int_id(audience_id)
    audience = db.session.get(Audience, number) if number is not None else None
    if audience is None:
        raise ApiError(404, "audience_not_found", f"No audience has the id {audience_id!r}.",
                       title="Not found")
    remove_audience(audience, actor=actor_label())
    return no_content()
