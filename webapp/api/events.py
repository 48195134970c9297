"""The membership event feed: every ADD and REMOVE, oldest first, to follow with a cursor.

A client reads pages with `page[cursor]` and keeps `meta.cursor` of the last page: asking again
with it later returns only the events recorded since. `filter[after]` starts after a known
event id. Events of deleted segments and members stay readable (the feed is append-only).
"""

from __future__ import annotations

from sqlalchemy import exists, select

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError
from webapp.api.jsonapi import check_query, query_value, respond, self_link
from webapp.api.pagination import PAGE_PARAMS, decode_cursor, encode_cursor, next_link, page_size
from webapp.api.serializers import event_resource
from webapp.extensions import db
from webapp.models import Member, MembershipEvent, Segment
from webapp.services.lookup import find_member, find_segment
from webapp.timeutil import parse_datetime

FILTERS = ("filter[segment]", "filter[member]", "filter[action]", "filter[source]",
           "filter[after]", "filter[since]")
SOURCES = ("static_list", "upload", "api", "override", "rule", "profile_change")


@bp.route("/events", methods=["GET"])
@access("read")
def event_list():
    """Membership events oldest first: filter by segment, member, action, source, start."""
    check_query((*FILTERS, *PAGE_PARAMS))
    size = page_size()
    after = decode_cursor(int)
    query = select(MembershipEvent).order_by(MembershipEvent.id)
    segment_ref = query_value("filter[segment]", max_length=255)
    if segment_ref is not None:
        query = query.where(_segment_condition(segment_ref))
    member_ref = query_value("filter[member]", max_length=320)
    if member_ref is not None:
        member = find_member(member_ref)
        query = query.where(MembershipEvent.member_id == (member.id if member else member_ref))
    action = query_value("filter[action]")
    if action is not None:
        if action.upper() not in ("ADD", "REMOVE"):
            raise ApiError(400, "invalid_filter", "filter[action] is ADD or REMOVE.",
                           parameter="filter[action]")
        query = query.where(MembershipEvent.action == action.upper())
    source = query_value("filter[source]")
    if source is not None:
        if source not in SOURCES:
            raise ApiError(400, "invalid_filter", f"filter[source] is one of "
                           f"{', '.join(SOURCES)}.", parameter="filter[source]")
        query = query.where(MembershipEvent.source == source)
    start = query_value("filter[after]")
    if start is not None:
        if not start.isdigit() or len(start) > 18:
            raise ApiError(400, "invalid_filter", "filter[after] is an event id (a whole "
                           "number); the feed starts after it.", parameter="filter[after]")
        query = query.where(MembershipEvent.id > int(start))
    since = query_value("filter[since]", max_length=40)
    if since is not None:
        try:
            moment = parse_datetime(since)
        except ValueError:
            raise ApiError(400, "invalid_filter", "filter[since] is an ISO 8601 date or time, "
                           "e.g. 2026-11-22T09:30:00Z.", parameter="filter[since]") from None
        query = query.where(MembershipEvent.created_at >= moment)
    if after is not None:
        query = query.where(MembershipEvent.id > after)
    rows = list(db.session.scalars(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    member_ids = sorted({e.member_id for e in rows})
    external = dict(db.session.execute(select(Member.id, Member.external_id).where(
        Member.id.in_(member_ids))).all()) if member_ids else {}
    cursor = encode_cursor(rows[-1].id) if rows else (
        request_cursor() or encode_cursor(int(start) if start else 0))
    links = {"self": self_link()}
    if more:
        links["next"] = next_link(cursor)
    return respond({"data": [event_resource(e, external.get(e.member_id)) for e in rows],
                    "meta": {"cursor": cursor, "more": more}, "links": links})


def _segment_condition(ref: str):
    """Events of the ONE segment `ref` names: segment id first, then customer segment id.

    A number is a segment id when that segment exists or has events (a deleted segment's
    events stay); otherwise the text is a live segment's customer id (filtered by that
    segment's id, indexed) or, for a deleted segment, the customer id its events kept.
    The two readings are never mixed.
    """
    text = ref.strip()
    if text.isascii() and text.isdigit() and len(text) < 10:
        by_id = MembershipEvent.segment_id == int(text)
        if db.session.get(Segment, int(text)) is not None or db.session.scalar(
                select(exists().where(by_id))):
            return by_id
    segment = find_segment(text)
    if segment is not None:
        return MembershipEvent.segment_id == segment.id
    return MembershipEvent.customer_segment_id == text


def request_cursor() -> str | None:
    """The page[cursor] this request came with, if any."""
    from flask import request

    return request.args.get("page[cursor]") or None
