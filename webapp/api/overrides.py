"""Reading a segment's overrides back (the Village seed): GET /api/v1/segments/{id}/overrides.

Setting them is POST on the same path (webapp/api/segments.py). Each override is a resource of
type `overrides` with what was given when it was set — reference id, metadata, status-change
timestamp, description — and whether its expiry has passed (an expired override no longer
applies but stays listed until it is reset or replaced).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError
from webapp.api.jsonapi import check_query, link, query_value, respond
from webapp.api.pagination import PAGE_PARAMS, keyset_page
from webapp.api.segments import segment_or_404
from webapp.api.serializers import iso, member_identifier, segment_identifier
from webapp.models import Override
from webapp.services.lookup import find_member
from webapp.timeutil import utcnow

FILTERS = ("filter[member]", "filter[status]", "filter[expired]")


def override_resource(override: Override, now: Any) -> dict[str, Any]:
    """An override resource: its status and everything given with it, and its member."""
    member = override.member
    expired = override.expires_at is not None and override.expires_at <= now
    return {
        "type": "overrides", "id": str(override.id),
        "attributes": {
            "member_id": override.member_id, "member_external_id": member.external_id,
            "member_email": member.email, "status": override.status,
            "description": override.description or "", "reference_id": override.reference_id,
            "metadata": dict(override.metadata_ or {}),
            "status_change_timestamp": iso(override.status_change_timestamp),
            "expires_at": iso(override.expires_at), "expired": expired,
            "actor": override.actor_label or None, "created_at": iso(override.created_at),
        },
        "relationships": {
            "segment": {"data": segment_identifier(override.segment_id),
                        "links": {"related": link("api.segment_get",
                                                  segment_ref=override.segment_id)}},
            "member": {"data": member_identifier(override.member_id),
                       "links": {"related": link("api.member_get",
                                                 member_ref=override.member_id)}},
        },
    }


@bp.route("/segments/<segment_ref>/overrides", methods=["GET"])
@access("read")
def segment_override_list(segment_ref: str):
    """List a segment's overrides; filter[member], filter[status], filter[expired]."""
    check_query((*FILTERS, *PAGE_PARAMS))
    segment = segment_or_404(segment_ref)
    now = utcnow()
    query = select(Override).options(joinedload(Override.member)).where(
        Override.segment_id == segment.id)
    member_ref = query_value("filter[member]", max_length=320)
    if member_ref is not None:
        member = find_member(member_ref)
        # An unknown member has no overrides: an empty page, as the event feed answers.
        query = query.where(Override.member_id == (member.id if member else None))
    status = query_value("filter[status]")
    if status is not None:
        if status not in ("add", "block"):
            raise ApiError(400, "invalid_filter", "filter[status] is add or block (a reset "
                           "override is deleted, so it is not listed).",
                           parameter="filter[status]")
        query = query.where(Override.status == status)
    expired = query_value("filter[expired]")
    if expired is not None:
        if expired not in ("true", "false"):
            raise ApiError(400, "invalid_filter", "filter[expired] is true or false.",
                           parameter="filter[expired]")
        has_passed = Override.expires_at.is_not(None) & (Override.expires_at <= now)
        query = query.where(has_passed if expired == "true" else or_(
            Override.expires_at.is_(None), Override.expires_at > now))
    rows, links = keyset_page(query, Override.id)
    return respond({"data": [override_resource(o, now) for o in rows], "links": links,
                    "meta": {"segment": {"id": str(segment.id), "name": segment.name,
                                         "kind": segment.kind}}})
