"""The JSON:API blueprint (SPEC §6): /api/v1, bearer tokens, JSON:API documents and errors.

One module per resource (`segments`, `segment_memberships`, `segment_replace`, `members`,
`overrides`, `offers` with their audiences, `limits`, `rewards`, `activity`, `events`,
`webhooks`, `tokens`), each route parsing the document, calling a service and answering;
`serializers` makes resource objects, `jsonapi` reads documents, `errors` and `pagination` are
shared; `openapi` is the OpenAPI document (one `Operation` per route; audience configurations
come from the audience registry), `docs` and `seed_guide` its readable reference. A new route
goes in its resource's module (a new module is imported at the bottom of this file) with its
`Operation` in `openapi.py`.

Every route is rate limited per principal (the API token, else the signed-in user) with one
shared budget, `API_RATE_LIMIT` (default "1200 per minute"), kept in Redis when REDIS_URL is
set; a request over it gets 429 with Retry-After and a JSON:API error.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, request
from flask_login import current_user
from werkzeug.routing import BaseConverter

from webapp.extensions import limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class MemberRefConverter(BaseConverter):
    """A member id, external id or email in /members/<ref>, except `batch` and `search`.

    Those two words are routes of their own (POST only), so GET, PATCH or DELETE on them is a
    405 whose Allow header says POST, as the OpenAPI document has it, not a member lookup.
    """

    regex = r"(?!(?:batch|search)$)[^/]+"


@bp.record_once
def _register_converters(state) -> None:
    # Runs when the blueprint is registered, before its routes are added.
    state.app.url_map.converters["member_ref"] = MemberRefConverter


def rate_limit_key() -> str:
    """Whose budget a request spends: its token, else its user, else its address."""
    token = getattr(g, "api_token", None)
    if token is not None:
        return f"token:{token.id}"
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"ip:{request.remote_addr or '127.0.0.1'}"


def rate_limit() -> str:
    """The per-principal limit from the configuration."""
    return current_app.config.get("API_RATE_LIMIT", "1200 per minute")


# Registered first among the blueprint's hooks, so every request to a view is counted.
limiter.limit_blueprint(bp, scope="api", limit=rate_limit, key=rate_limit_key)


@bp.before_request
def refuse_large_bodies():
    """413 for a body over API_MAX_BODY_BYTES before anything reads it."""
    length = request.content_length
    if length is None:  # no body (most reads): nothing to refuse
        return
    from webapp.api.errors import ApiError

    limit = int(current_app.config["API_MAX_BODY_BYTES"])
    if length > limit:
        raise ApiError(413, "body_too_large", f"The request body is larger than "
                       f"{limit // (1024 * 1024)} MB; split it into smaller requests.",
                       title="Too large", pointer="")


from webapp.api import (  # noqa: E402,F401
    activities,
    activity,
    attributes,
    docs,
    errors,
    events,
    jobs,
    limits,
    members,
    offers,
    openapi,
    overrides,
    rewards,
    segment_memberships,
    segment_replace,
    segments,
    tokens,
    webhooks,
)
