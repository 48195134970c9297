"""The attribute registry over the API: declared custom fields of members.

Everyone with a token reads the declarations (a client learns the program's fields, their
types and allowed values); admins declare, change and remove them. A single field's resource
also carries the exact counts the dashboard's Member fields page shows.
"""

from __future__ import annotations

from typing import Any

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
    resource_object,
    respond,
    self_link,
)
from webapp.api.offers import int_id
from webapp.api.serializers import iso
from webapp.extensions import db
from webapp.models import AttributeDefinition
from webapp.services import attributes as registry

WRITABLE = ("key", "value_type", "allowed_values", "description", "example")
READ_ONLY = ("created_at", "updated_at", "updated_by", "members_with_value", "disagreeing")
NULLABLE = ("allowed_values", "example")


def attribute_resource(row: AttributeDefinition,
                       counts: tuple[int, int] | None = None) -> dict[str, Any]:
    """A declared field; with `counts`, how many members have a value and how many disagree."""
    attributes: dict[str, Any] = {
        "key": row.key, "value_type": row.type, "allowed_values": row.allowed_values,
        "description": row.description or "", "example": row.example,
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
        "updated_by": row.updated_by_label or None,
    }
    if counts is not None:
        attributes["members_with_value"], attributes["disagreeing"] = counts
    return {"type": "attributes", "id": str(row.id), "attributes": attributes,
            "links": {"self": link("api.attribute_get", attribute_ref=row.id)}}


def attribute_or_404(reference: str) -> AttributeDefinition:
    """A declaration by id, then by key."""
    number = int_id(reference)
    row = db.session.get(AttributeDefinition, number) if number is not None else None
    if row is None and "\x00" not in reference:
        row = db.session.scalar(db.select(AttributeDefinition).where(
            AttributeDefinition.key == reference))
    if row is None:
        raise ApiError(404, "attribute_not_found", f"No declared custom field has the id or key "
                       f"{reference!r}.", title="Not found")
    return row


def _save(attributes: dict[str, Any], row: AttributeDefinition | None = None
          ) -> AttributeDefinition:
    """Save through the registry service (JSON:API forbids an attribute named `type`, so the
    declared type travels as `value_type`)."""
    data = dict(attributes)
    if "value_type" in data:
        data["type"] = data.pop("value_type")
    try:
        return registry.save(data, actor=actor_label(), definition=row, typed=True)
    except registry.AttributeError_ as exc:
        db.session.rollback()
        errors = {("value_type" if k == "type" else k): v for k, v in exc.errors.items()}
        raise validation_error(errors, status=exc.status) from None


@bp.route("/attributes", methods=["GET"])
@access("read")
def attribute_list():
    """Every declared custom field, in key order."""
    check_query(())
    return respond({"data": [attribute_resource(r) for r in registry.definitions()],
                    "links": {"self": self_link()}})


@bp.route("/attributes/<attribute_ref>", methods=["GET"])
@access("read")
def attribute_get(attribute_ref: str):
    """One declared field (by id or key), with how many members have a value and how many
    of those values disagree with the declaration (exact)."""
    check_query(())
    row = attribute_or_404(attribute_ref)
    return respond({"data": attribute_resource(row, registry.usage((row,))[row.key]),
                    "links": {"self": self_link()}})


@bp.route("/attributes", methods=["POST"])
@access("admin")
def attribute_create():
    """Declare a custom field."""
    data = resource_object(read_document(), "attributes", creating=True)
    attributes = attributes_of(data, WRITABLE, read_only=READ_ONLY, nullable=NULLABLE)
    row = _save(attributes)
    return respond({"data": attribute_resource(row)}, 201,
                   {"Location": link("api.attribute_get", attribute_ref=row.id)})


@bp.route("/attributes/<attribute_ref>", methods=["PATCH"])
@access("admin")
def attribute_update(attribute_ref: str):
    """Change a declaration: the attributes given replace the stored ones."""
    row = attribute_or_404(attribute_ref)
    data = resource_object(read_document(), "attributes", resource_id=str(row.id))
    given = attributes_of(data, WRITABLE, read_only=READ_ONLY, nullable=NULLABLE)
    current = {"key": row.key, "value_type": row.type, "allowed_values": row.allowed_values,
               "description": row.description, "example": row.example}
    row = _save({**current, **given}, row)
    return respond({"data": attribute_resource(row)})


@bp.route("/attributes/<attribute_ref>", methods=["DELETE"])
@access("admin")
def attribute_delete(attribute_ref: str):
    """Remove a declaration; members keep their values."""
    registry.delete(attribute_or_404(attribute_ref), actor=actor_label())
    return no_content()
