"""Webhook subscriptions over the API (admin): the webhooks service does the work."""

from __future__ import annotations

from sqlalchemy import select

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, error_object, escape, validation_error
from webapp.api.jsonapi import (
    actor_label,
    check_query,
    link,
    no_content,
    read_document,
    resource_object,
    respond,
    self_link,
)
from webapp.api.offers import int_id
from webapp.extensions import db
from webapp.models import Webhook


def webhook_or_404(webhook_id: str) -> Webhook:
    """The webhook with this id; 404 otherwise."""
    number = int_id(webhook_id)
    webhook = db.session.get(Webhook, number) if number is not None else None
    if webhook is None:
        raise ApiError(404, "webhook_not_found", f"No webhook has the id {webhook_id!r}.",
                       title="Not found")
    return webhook


def webhook_resource(webhook: Webhook, attributes: dict) -> dict:
    """A webhook resource from the service's serialized attributes."""
    return {"type": "webhooks", "id": str(webhook.id), "attributes": attributes,
            "links": {"self": link("api.webhook_get", webhook_id=webhook.id)}}


def _attributes(data: dict) -> dict:
    attributes = data.get("attributes") or {}
    # null for an attribute that always has a value (`"event_filter": null` included: the
    # filter for every event is {"actions": null, "segments": null}) is refused, as documented.
    nulls = [name for name, value in attributes.items() if value is None]
    if nulls:
        raise ApiError(422, errors=[error_object(
            422, "invalid_attribute", f"{name} cannot be null: give a value, or leave it out"
            + (' ({"actions": null, "segments": null} for every event).'
               if name == "event_filter" else "."),
            title="Invalid attribute", pointer=f"/data/attributes/{escape(name)}")
            for name in nulls])
    return dict(attributes)


@bp.route("/webhooks", methods=["GET"])
@access("admin")
def webhook_list():
    """Every webhook subscription with its delivery counts (never the secret)."""
    from webapp.services.webhooks import delivery_stats, serialize_webhook

    check_query(())
    rows = list(db.session.scalars(select(Webhook).order_by(Webhook.id)))
    stats = delivery_stats([w.id for w in rows])
    return respond({"data": [webhook_resource(w, serialize_webhook(w, stats=stats[w.id]))
                             for w in rows], "links": {"self": self_link()}})


@bp.route("/webhooks", methods=["POST"])
@access("admin")
def webhook_create():
    """Subscribe a URL to membership events; the response shows the signing secret once."""
    from webapp.services.webhooks import WebhookError, create_webhook, serialize_webhook

    data = resource_object(read_document(), "webhooks", creating=True)
    try:
        webhook, _secret = create_webhook(_attributes(data), actor=actor_label())
    except WebhookError as exc:
        raise validation_error(exc.errors) from None
    return respond({"data": webhook_resource(webhook, serialize_webhook(
        webhook, include_secret=True))}, 201,
        {"Location": link("api.webhook_get", webhook_id=webhook.id)})


@bp.route("/webhooks/<webhook_id>", methods=["GET"])
@access("admin")
def webhook_get(webhook_id: str):
    """One webhook subscription (never the secret)."""
    from webapp.services.webhooks import serialize_webhook

    check_query(())
    webhook = webhook_or_404(webhook_id)
    return respond({"data": webhook_resource(webhook, serialize_webhook(webhook)),
                    "links": {"self": self_link()}})


@bp.route("/webhooks/<webhook_id>", methods=["PATCH"])
@access("admin")
def webhook_update(webhook_id: str):
    """Change a webhook's URL, description, event filter, active flag or secret."""
    from webapp.services.webhooks import WebhookError, serialize_webhook, update_webhook

    webhook = webhook_or_404(webhook_id)
    data = resource_object(read_document(), "webhooks")
    if "id" in data and str(data["id"]) != str(webhook.id):
        raise ApiError(409, "id_mismatch", "The resource id does not match the URL.",
                       pointer="/data/id")
    try:
        webhook = update_webhook(webhook, _attributes(data), actor=actor_label())
    except WebhookError as exc:
        raise validation_error(exc.errors) from None
    return respond({"data": webhook_resource(webhook, serialize_webhook(webhook))})


@bp.route("/webhooks/<webhook_id>", methods=["DELETE"])
@access("admin")
def webhook_delete(webhook_id: str):
    """Delete a webhook subscription and its delivery log."""
    from webapp.services.webhooks import delete_webhook

    delete_webhook(webhook_or_404(webhook_id), actor=actor_label())
    return no_content()
