"""POST /api/v1/segment-memberships: add or remove members across many static segments at once.

The CleverTap seed's Update Segment API: one request names up to 100 segments (by id or customer
segment id) and up to 100 member identities, and answers with a result per (segment, member)
using the statuses of every bulk membership edit (SPEC §6). With
`meta.create_unknown_members`, an identity no member has becomes a new member before it is
added, as CleverTap creates a profile. Everything valid is applied in one transaction through
the membership service; invalid items are skipped and reported; a limit breach refuses the
whole request.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, error_object
from webapp.api.jsonapi import actor_label, check_query, read_document, respond
from webapp.api.segments import resolve_members
from webapp.extensions import db
from webapp.models import Segment
from webapp.services.lookup import find_segment
from webapp.services.membership import Cause, apply_delta, current_member_ids

MAX_SEGMENTS = 100
MAX_PROFILES = 100
ACTIONS = ("add", "remove")
ATTRIBUTES = ("segment", "action", "members")
META_FLAGS = ("create_unknown_members",)
TYPE = "segment-memberships"


def _invalid(index: int, detail: str, pointer: str, **entry: Any) -> dict[str, Any]:
    """An `invalid` result whose error points into the request."""
    return {"index": index, **entry, "result": "invalid", "detail": detail,
            "errors": [error_object(422, "invalid_item", detail, title="Invalid item",
                                    pointer=pointer)]}


def _read_flags(document: dict[str, Any]) -> bool:
    """The request's `meta.create_unknown_members` (false when absent)."""
    meta = document.get("meta", {})
    if not isinstance(meta, dict):
        raise ApiError(400, "invalid_document", "`meta` must be an object.", pointer="/meta")
    for name in meta:
        if name not in META_FLAGS:
            raise ApiError(400, "unknown_meta", f"Unknown meta member {name!r}; this route "
                           f"takes {', '.join(META_FLAGS)}.", pointer=f"/meta/{name}")
    flag = meta.get("create_unknown_members", False)
    if not isinstance(flag, bool):
        raise ApiError(400, "invalid_meta", "create_unknown_members is true or false.",
                       pointer="/meta/create_unknown_members")
    return flag


def _parse_item(item: Any, index: int) -> tuple[dict[str, Any] | None, list[dict]]:
    """One item's segment reference, action and identities, or the results refusing it."""
    where = f"/data/{index}"
    if not isinstance(item, dict):
        return None, [_invalid(index, f'Each item is a resource object of type "{TYPE}".',
                               where)]
    if item.get("type") != TYPE:
        return None, [_invalid(index, f'The type of each item is "{TYPE}".', f"{where}/type")]
    attributes = item.get("attributes")
    if not isinstance(attributes, dict):
        return None, [_invalid(index, "The item needs attributes: segment, action and "
                               "members.", f"{where}/attributes")]
    for name in attributes:
        if name not in ATTRIBUTES:
            return None, [_invalid(index, f"Unknown attribute {name!r}; the attributes are "
                                   f"{', '.join(ATTRIBUTES)}.", f"{where}/attributes/{name}")]
    segment_ref = attributes.get("segment")
    if isinstance(segment_ref, bool) or not isinstance(segment_ref, str | int) \
            or not str(segment_ref).strip():
        return None, [_invalid(index, "segment is the segment's id or customer segment id.",
                               f"{where}/attributes/segment")]
    action = attributes.get("action")
    if action not in ACTIONS:
        return None, [_invalid(index, "action is add or remove.", f"{where}/attributes/action",
                               segment=str(segment_ref))]
    members = attributes.get("members")
    if not isinstance(members, list) or not members:
        return None, [_invalid(index, "members is a non-empty list of member ids, external "
                               "ids or emails.", f"{where}/attributes/members",
                               segment=str(segment_ref))]
    return {"segment": str(segment_ref).strip(), "action": action, "members": members}, []


def _identity(value: Any) -> str | None:
    """A member identity as given, stripped, or None when it cannot be one."""
    if not isinstance(value, str) or not value.strip() or len(value) > 320:
        return None
    return value.strip()


def _check_limits(items: list[Any], parsed: list[dict[str, Any] | None]) -> None:
    """Refuse the whole request beyond 100 segments or 100 member profiles (413)."""
    if len(items) > MAX_SEGMENTS:
        raise ApiError(413, "too_many_segments", f"The limit is {MAX_SEGMENTS} segments per "
                       f"request (one item per segment); {len(items)} were given. Split the "
                       "request.", pointer="/data", title="Too large")
    profiles: set[str] = set()
    for index, item in enumerate(parsed):
        if item is None:
            continue
        if len(item["members"]) > MAX_PROFILES:
            raise ApiError(413, "too_many_profiles", f"The limit is {MAX_PROFILES} member "
                           f"profiles per request; item {index} lists "
                           f"{len(item['members'])}. Split the request.",
                           pointer=f"/data/{index}/attributes/members", title="Too large")
        profiles.update(i for i in map(_identity, item["members"]) if i is not None)
    if len(profiles) > MAX_PROFILES:
        raise ApiError(413, "too_many_profiles", f"The limit is {MAX_PROFILES} member profiles "
                       f"per request; {len(profiles)} different members were named. Split the "
                       "request.", pointer="/data", title="Too large")


def _segments(parsed: list[dict[str, Any] | None]) -> dict[str, Segment]:
    """The segments the items name, locked in id order so parallel requests queue up."""
    found = {}
    for item in parsed:
        if item is not None and item["segment"] not in found:
            found[item["segment"]] = find_segment(item["segment"])
    ids = sorted({s.id for s in found.values() if s is not None})
    if ids:
        # Re-read under the lock: the static-list limit is checked against the current size.
        db.session.scalars(select(Segment).where(Segment.id.in_(ids)).order_by(Segment.id)
                           .with_for_update().execution_options(populate_existing=True)).all()
    return {ref: segment for ref, segment in found.items() if segment is not None}


@bp.route("/segment-memberships", methods=["POST"])
@access("write")
def segment_memberships():
    """Add or remove members across up to 100 static segments: a result per segment and member."""
    from webapp.services.members import create_from_identities

    document = read_document()
    check_query(())
    create_unknown = _read_flags(document)
    items = document["data"]
    if not isinstance(items, list):
        raise ApiError(400, "invalid_data", f'`data` is an array of "{TYPE}" resource objects '
                       "(one per segment).", pointer="/data")
    parsed: list[dict[str, Any] | None] = []
    results_by_item: dict[int, list[dict]] = {}
    for index, item in enumerate(items[:MAX_SEGMENTS + 1]):
        request_item, refused = _parse_item(item, index)
        parsed.append(request_item)
        if refused:
            results_by_item[index] = refused
    _check_limits(items, parsed)
    segments = _segments(parsed)
    identities = sorted({i for item in parsed if item is not None
                         for i in map(_identity, item["members"]) if i is not None})
    resolved = resolve_members(identities)
    created: dict[str, Any] = {}
    refused_identities: dict[str, str] = {}
    if create_unknown:
        wanted = sorted({i for item in parsed if item is not None and item["action"] == "add"
                         and item["segment"] in segments
                         and segments[item["segment"]].kind == "static"
                         for i in map(_identity, item["members"])
                         if i is not None and i not in resolved})
        if wanted:
            created, refused_identities = create_from_identities(
                wanted, actor=actor_label(), reason="named in POST /segment-memberships")
            resolved.update({identity: member.id for identity, member in created.items()})
    actor = actor_label()
    limit = int(current_app.config.get("LIMIT_STATIC_MEMBERS", 5_000_000))
    touched: dict[int, Segment] = {}
    for index, item in enumerate(parsed):
        if item is None:
            continue
        segment = segments.get(item["segment"])
        results_by_item[index] = _apply_item(index, item, segment, resolved, created,
                                             refused_identities, actor, limit)
        if segment is not None:
            touched[segment.id] = segment
    db.session.commit()
    results = [entry for index in sorted(results_by_item) for entry in results_by_item[index]]
    counts: dict[str, int] = {}
    for entry in results:
        counts[entry["result"]] = counts.get(entry["result"], 0) + 1
    return respond({"meta": {
        "results": results, "counts": counts,
        "members_created": len({m.id for m in created.values()}),
        "segments": [{"id": str(s.id), "customer_segment_id": s.customer_segment_id,
                      "name": s.name, "size": s.size or 0} for s in touched.values()]}})


def _apply_item(index: int, item: dict[str, Any], segment: Segment | None,
                resolved: dict[str, str], created: dict[str, Any],
                refused_identities: dict[str, str], actor: str, limit: int) -> list[dict]:
    """Apply one item's add or remove through the membership service; a result per member."""
    where = f"/data/{index}/attributes"
    base = {"segment": item["segment"]}
    refusal = None
    if segment is None:
        refusal = f"No segment has the id or customer segment id {item['segment']!r}."
    elif segment.kind != "static":
        base["segment_id"] = str(segment.id)
        refusal = (f"{segment.name} is a dynamic segment: its rules decide who is in. Pin "
                   f"members in or out with POST /api/v1/segments/{segment.id}/overrides.")
    if refusal is not None:  # still a result per (segment, member), each saying why
        return [_invalid(index, refusal, f"{where}/segment", **base, position=position,
                         **({"id": _identity(value)} if _identity(value) else {}))
                for position, value in enumerate(item["members"])]
    base["segment_id"] = str(segment.id)
    adding = item["action"] == "add"
    ids = [resolved[i] for i in map(_identity, item["members"]) if i in resolved]
    present = current_member_ids(segment.id, sorted(set(ids)))
    results: list[dict] = []
    chosen: list[str] = []
    seen: set[str] = set()
    for position, value in enumerate(item["members"]):
        identity = _identity(value)
        entry: dict[str, Any] = {**base, "position": position}
        if identity is None:
            results.append(_invalid(index, "A member is named by a non-empty member id, "
                                    "external id or email (at most 320 characters).",
                                    f"{where}/members/{position}", **base, position=position))
            continue
        entry["id"] = identity
        if identity in refused_identities:
            results.append(_invalid(index, f"No member has this identity, and none can be "
                                    f"created from it: {refused_identities[identity]}",
                                    f"{where}/members/{position}", **entry))
            continue
        member_id = resolved.get(identity)
        if member_id is None:
            entry.update(result="unknown_member", detail="No member has this id, external id "
                         "or email" + ("." if adding else "; nothing to remove."))
            results.append({"index": index, **entry})
            continue
        entry["member_id"] = member_id
        if identity in created:
            entry["member_created"] = True
        if adding:
            fresh = member_id not in present and member_id not in seen
            entry["result"] = "added" if fresh else "already_member"
        else:
            fresh = member_id in present and member_id not in seen
            entry["result"] = "removed" if fresh else "not_member"
        if fresh:
            chosen.append(member_id)
        seen.add(member_id)
        results.append({"index": index, **entry})
    if adding and (segment.size or 0) + len(chosen) > limit:
        db.session.rollback()
        raise ApiError(422, "limit_exceeded", f"The limit is {limit:,} members per static "
                       f"segment; {segment.name} has {segment.size or 0:,} and item {index} "
                       f"adds {len(chosen):,}. Nothing was changed.", pointer=f"/data/{index}")
    if chosen:
        cause = Cause("api", actor, {"operation": "segment_memberships",
                                     "action": item["action"], "items": len(item["members"])})
        if adding:
            apply_delta(segment, add=chosen, via="list", cause=cause)
        else:
            apply_delta(segment, remove=chosen, via="list", cause=cause)
    return results
