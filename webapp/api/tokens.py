"""API tokens over the API (admin): list, create (the value is shown once) and revoke."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, validation_error
from webapp.api.jsonapi import (
    actor_label,
    attributes_of,
    check_query,
    no_content,
    read_document,
    resource_object,
    respond,
    self_link,
)
from webapp.api.offers import int_id
from webapp.api.serializers import iso
from webapp.extensions import db
from webapp.models import ROLES, ApiToken
from webapp.services.audit import record
from webapp.services.tokens import create_token
from webapp.timeutil import utcnow


def token_resource(token: ApiToken, raw: str | None = None) -> dict[str, Any]:
    """A token resource: never the value, except `token` in the creation response."""
    attributes: dict[str, Any] = {
        "name": token.name, "role": token.role, "prefix": token.prefix,
        "created_at": iso(token.created_at), "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
        "created_by": token.created_by.label if token.created_by else None,
    }
    if raw is not None:
        attributes["token"] = raw
    return {"type": "tokens", "id": str(token.id), "attributes": attributes}


@bp.route("/tokens", methods=["GET"])
@access("admin")
def token_list():
    """Every API token (name, role, prefix, last use, revocation), never its value."""
    check_query(())
    rows = db.session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
    return respond({"data": [token_resource(t) for t in rows], "links": {"self": self_link()}})


@bp.route("/tokens", methods=["POST"])
@access("admin")
def token_create():
    """Create a token with a role; the response carries its value, which is never shown again."""
    data = resource_object(read_document(), "tokens", creating=True)
    attributes = attributes_of(data, ("name", "role"),
                               read_only=("prefix", "created_at", "last_used_at", "revoked_at",
                                          "created_by", "token"))
    errors: dict[str, str] = {}
    name = attributes.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
        errors["name"] = "name is required: up to 120 characters saying which system uses it."
    role = attributes.get("role")
    if role not in ROLES:
        errors["role"] = f"role is one of {', '.join(ROLES)}."
    if errors:
        raise validation_error(errors)
    token, raw = create_token(name.strip(), role)
    record(actor_label(), "token.create", "api_token", token.id,
           f"Created API token {token.name} ({token.role}) through the API")
    db.session.commit()
    return respond({"data": token_resource(token, raw)}, 201)


@bp.route("/tokens/<token_id>", methods=["DELETE"])
@access("admin")
def token_revoke(token_id: str):
    """Revoke a token: requests with it are refused from now on (the record stays)."""
    number = int_id(token_id)
    token = db.session.get(ApiToken, number) if number is not None else None
    if token is None:
        raise ApiError(404, "token_not_found", f"No API token has the id {token_id!r}.",
                       title="Not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(actor_label(), "token.revoke", "api_token", token.id,
               f"Revoked API token {token.name} through the API")
        db.session.commit()
    return no_content()
