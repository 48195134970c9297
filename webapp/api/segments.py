"""Segments over the API: CRUD, a static segment's members as a relationship, overrides.

`{segment_ref}` is the segment id or its customer segment id. Sizes are the materialized
`size`, which the membership service updates in the same transaction as every change, so
it is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app, request
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, error_object, pointer_for
from webapp.api.jsonapi import (
    actor_id,
    actor_label,
    attributes_of,
    batch_limit,
    check_query,
    check_resource,
    identifier_list,
    link,
    no_content,
    query_value,
    read_document,
    resource_object,
    respond,
    self_link,
)
from webapp.api.pagination import (
    PAGE_PARAMS,
    decode_cursor,
    encode_cursor,
    keyset_page,
    next_link,
    page_size,
)
from webapp.api.serializers import member_identifier, segment_resource
from webapp.extensions import db
from webapp.models import Member, Segment, SegmentMembership, SegmentTag, User
from webapp.segments.export import csv_response
from webapp.services.errors import Conflict
from webapp.services.lookup import find_member, find_segment, segment_row_organised
from webapp.services.membership import Cause, apply_delta, current_member_ids, lock_segments
from webapp.services.segments import (
    SegmentError,
    SegmentInUse,
    SegmentStillUsed,
    archive_segment,
    restore_segment,
    save_segment,
    where_used,
)
from webapp.timeutil import parse_datetime

WRITABLE = ("name", "description", "kind", "customer_segment_id", "url", "include", "exclude",
            "customerSegmentId", "tags", "owner")
READ_ONLY = ("size", "estimatedSize", "created_at", "updated_at", "updated_by", "archived_at")
# The Monterosa seed's names for page[size] and filter[kind] on the segment list.
LIST_ALIASES = ("limit", "type")
#: The attributes that may be null (as in answers); null is refused for the others.
NULLABLE = ("customer_segment_id", "url", "owner")
OVERRIDE_ATTRIBUTES = ("member", "status", "description", "reference_id", "metadata",
                       "status_change_timestamp", "expires_at")
# The Village seed's names, accepted on input: user for member, user_status for status.
OVERRIDE_ALIASES = {"user": "member", "user_status": "status"}


def segment_or_404(segment_ref: str) -> Segment:
    """The segment named by id or customer segment id; 404 otherwise."""
    segment = find_segment(segment_ref)
    if segment is None:
        raise _segment_not_found(segment_ref)
    return segment


def _segment_not_found(segment_ref: str) -> ApiError:
    return ApiError(404, "segment_not_found", f"No segment has the id or customer segment "
                    f"id {segment_ref!r}.", title="Not found")


def _segment_error(exc: Exception) -> ApiError:
    """A SegmentError as 422 (409 for a version conflict) with pointers per attribute."""
    errors = getattr(exc, "errors", {}) or {"": str(exc)}
    objects = []
    status = 422
    for key, message in errors.items():
        if key == "version":
            status = 409
            objects.append(error_object(409, "version_conflict", message, title="Conflict",
                                        pointer="/data/attributes/version"))
            continue
        if key in ("segment", ""):
            pointer = "/data"
        else:
            pointer = pointer_for(key)
        if isinstance(message, Conflict):
            objects.append(error_object(409, "conflict", message, title="Conflict",
                                        pointer=pointer))
            continue
        objects.append(error_object(422, "invalid_attribute", message,
                                    title="Invalid attribute", pointer=pointer))
    if objects and all(o["status"] == "409" for o in objects):
        status = 409
    if status == 409:
        objects = [o for o in objects if o["status"] == "409"]
    return ApiError(status, errors=objects)


def _aliased(name: str, alias: str) -> str:
    """Which of a query parameter and its seed-document alias the request uses (not both)."""
    if name in request.args and alias in request.args:
        raise ApiError(400, "repeated_parameter", f"Give {name} or its alias {alias}, not "
                       "both.", parameter=alias)
    return alias if alias in request.args else name


@bp.route("/segments", methods=["GET"])
@access("read")
def segment_list():
    """List segments with exact sizes; filter[kind] (or type), filter[tag], filter[owner],
    filter[archived], page[size] (or limit)."""
    check_query(("filter[kind]", "filter[customer_segment_id]", "filter[tag]", "filter[owner]",
                 "filter[archived]", *PAGE_PARAMS, *LIST_ALIASES))
    query = select(Segment).options(selectinload(Segment.tag_rows), selectinload(Segment.owner))
    kind_parameter = _aliased("filter[kind]", "type")
    kind = query_value(kind_parameter)
    if kind is not None:
        if kind not in ("static", "dynamic"):
            raise ApiError(400, "invalid_filter", f"{kind_parameter} is static or dynamic.",
                           parameter=kind_parameter)
        query = query.where(Segment.kind == kind)
    customer_id = query_value("filter[customer_segment_id]", max_length=255)
    if customer_id is not None:
        query = query.where(Segment.customer_segment_id == customer_id)
    tag = query_value("filter[tag]", max_length=200)
    if tag is not None:
        query = query.where(Segment.id.in_(select(SegmentTag.segment_id).where(
            SegmentTag.tag == " ".join(tag.split()).lower())))
    owner = query_value("filter[owner]", max_length=320)
    if owner is not None:
        query = query.where(Segment.owner_id.in_(select(User.id).where(
            func.lower(User.email) == owner.strip().lower())))
    archived = query_value("filter[archived]")
    if archived is not None:
        if archived not in ("true", "false"):
            raise ApiError(400, "invalid_filter", "filter[archived] is true or false (leave it "
                           "out for every segment).", parameter="filter[archived]")
        query = query.where(Segment.archived_at.is_not(None) if archived == "true"
                            else Segment.archived_at.is_(None))
    size = page_size(parameter=_aliased("page[size]", "limit"))
    rows, links = keyset_page(query, Segment.id, size=size)
    return respond({"data": [segment_resource(s, {
        "tags": s.tags, "owner": s.owner.email if s.owner else None}) for s in rows],
        "links": links})


@bp.route("/segments", methods=["POST"])
@access("write")
def segment_create():
    """Create a static or dynamic segment; a dynamic one is materialized at once."""
    data = resource_object(read_document(), "segments", creating=True)
    attributes = attributes_of(data, WRITABLE, read_only=(*READ_ONLY, "version", "archived"),
                               nullable=NULLABLE)
    try:
        segment = save_segment(attributes, actor=actor_label(), actor_id=actor_id())
    except SegmentError as exc:
        raise _segment_error(exc) from None
    return respond({"data": segment_resource(segment)}, 201,
                   {"Location": link("api.segment_get", segment_ref=segment.id)})


@bp.route("/segments/<segment_ref>", methods=["GET"])
@access("read")
def segment_get(segment_ref: str):
    """One segment by id or customer segment id, with its exact size."""
    check_query(())
    # Read-only columns, tags and owner on one connection: nothing to track or flush.
    found = segment_row_organised(segment_ref)
    if found is None:
        raise _segment_not_found(segment_ref)
    segment, organisation = found
    return respond({"data": segment_resource(segment, organisation),
                    "links": {"self": self_link()}})


@bp.route("/segments/<segment_ref>", methods=["PATCH"])
@access("write")
def segment_update(segment_ref: str):
    """Change a segment; give `version` to refuse the change if someone saved meanwhile."""
    segment = segment_or_404(segment_ref)
    data = resource_object(read_document(), "segments")
    if "id" in data and str(data["id"]) not in (str(segment.id), segment_ref):
        raise ApiError(409, "id_mismatch", "The resource id does not match the URL.",
                       pointer="/data/id")
    attributes = attributes_of(data, (*WRITABLE, "version", "archived"), read_only=READ_ONLY,
                               nullable=NULLABLE)
    expected = attributes.pop("version", None)
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
        raise ApiError(422, "invalid_attribute", "version is the whole number this segment "
                       "had when you read it.", pointer="/data/attributes/version")
    archived = attributes.pop("archived", None)
    if archived is not None and not isinstance(archived, bool):
        raise ApiError(422, "invalid_attribute", "archived is true (archive the segment) or "
                       "false (restore it).", pointer="/data/attributes/archived")
    archiving = archived is True and segment.archived_at is None
    if archiving:
        _refuse_if_used(segment)  # before anything is saved: a refused request changes nothing
    try:
        if attributes or expected is not None:
            segment = save_segment(attributes, segment=segment, actor=actor_label(),
                                   actor_id=actor_id(), expected_version=expected)
        if archiving:
            archive_segment(segment, actor=actor_label())
        elif archived is False and segment.archived_at is not None:
            restore_segment(segment, actor=actor_label())
    except SegmentStillUsed as exc:
        raise _in_use(exc) from None
    except SegmentError as exc:
        raise _segment_error(exc) from None
    return respond({"data": segment_resource(segment)})


def _in_use(exc: SegmentInUse | SegmentStillUsed) -> ApiError:
    """409 segment_in_use naming every use (meta.uses) of a segment being deleted or archived."""
    uses = [{k: v for k, v in use.items() if v is not None} for use in exc.uses]
    return ApiError(409, "segment_in_use", str(exc.errors.get("segment", exc)),
                    title="Segment in use", meta={"uses": uses})


def _refuse_if_used(segment: Segment) -> None:
    """Refuse to archive a segment something still uses (409 naming the uses)."""
    uses = where_used(segment)
    if uses:
        raise _in_use(SegmentStillUsed(segment, uses))


@bp.route("/segments/<segment_ref>", methods=["DELETE"])
@access("admin")
def segment_delete(segment_ref: str):
    """Delete an unused segment; 409 segment_in_use lists where it is still used."""
    from webapp.services.segments import delete_segment

    segment = segment_or_404(segment_ref)
    try:
        delete_segment(segment, actor=actor_label())
    except SegmentInUse as exc:
        raise _in_use(exc) from None
    except SegmentError as exc:
        raise _segment_error(exc) from None
    return no_content()


# --- the members relationship -------------------------------------------------------------------

@bp.route("/segments/<segment_ref>/relationships/members", methods=["GET"])
@access("read")
def segment_members(segment_ref: str):
    """The segment's members as resource identifiers, by member id, cursor-paginated."""
    check_query(PAGE_PARAMS)
    segment = segment_or_404(segment_ref)
    size = page_size()
    after = decode_cursor(str)
    query = select(SegmentMembership.member_id).where(
        SegmentMembership.segment_id == segment.id).order_by(SegmentMembership.member_id)
    if after is not None:
        query = query.where(SegmentMembership.member_id > after)
    ids = list(db.session.scalars(query.limit(size + 1)))
    links = {"self": self_link()}
    if len(ids) > size:
        ids = ids[:size]
        links["next"] = next_link(encode_cursor(ids[-1]))
    return respond({"data": [member_identifier(i) for i in ids], "links": links,
                    "meta": {"count": segment.size or 0, "kind": segment.kind}})


@bp.route("/segments/<segment_ref>/members.csv", methods=["GET"])
@access("read")
def segment_members_csv(segment_ref: str):
    """The segment's members as CSV: member_id, external_id, email, why (list, rule or
    override), in member-id order, streamed in chunks however many members there are."""
    check_query(())
    return csv_response(segment_or_404(segment_ref))


def resolve_members(identifiers: list[str]) -> dict[str, str]:
    """Member ids for identifiers: member id, then external id, then email (batched queries)."""
    found: dict[str, str] = {}
    pending = list(dict.fromkeys(identifiers))
    for column in ("id", "external_id", "email"):
        if not pending:
            break
        keys = {p: (p.lower() if column == "email" else p) for p in pending}
        if column == "id":
            keys = {p: k for p, k in keys.items() if len(k) == 36}
        elif column == "email":
            keys = {p: k for p, k in keys.items() if "@" in k}
        by_key: dict[str, str] = {}
        values = sorted(set(keys.values()))
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            col = getattr(Member, column)
            for member_id, key in db.session.execute(select(Member.id, col).where(
                    col.in_(chunk))):
                by_key[key] = member_id
        for ident, key in keys.items():
            if key in by_key:
                found[ident] = by_key[key]
        pending = [p for p in pending if p not in found]
    return found


def _identifiers(document: dict) -> tuple[list[dict], dict[int, str]]:
    """Per item: the identifier string, or an `invalid` result (index -> message)."""
    items = identifier_list(document, limit=batch_limit())
    idents: list[Any] = []
    invalid: dict[int, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            invalid[index] = 'Each item is a resource identifier {"type": "members", "id": ...}.'
        elif item.get("type") != "members":
            invalid[index] = 'The type of a member identifier is "members".'
        elif not isinstance(item.get("id"), str) or not item["id"].strip():
            invalid[index] = "The id is a member id, external id or email (a non-empty string)."
        elif len(item["id"]) > 320:
            invalid[index] = "The id is longer than 320 characters."
        idents.append(item.get("id").strip() if index not in invalid else None)
    return idents, invalid


def _change_list(segment_ref: str, adding: bool):
    """Add or remove members of a static segment's list: a result per item, one transaction."""
    segment = segment_or_404(segment_ref)
    document = read_document()
    check_query(())
    if segment.kind != "static":
        raise ApiError(409, "segment_not_static", f"{segment.name} is a dynamic segment: its "
                       "rules decide who is in. Pin members in or out with POST "
                       f"/api/v1/segments/{segment.id}/overrides instead.",
                       title="Conflict", pointer="/data")
    idents, invalid = _identifiers(document)
    resolved = resolve_members([i for i in idents if i is not None])
    # The segment's write lock before reading its list: what is read is what the last
    # writer committed, and no other writer changes it until this request commits.
    lock_segments([segment.id])
    present = current_member_ids(segment.id, sorted(set(resolved.values())))
    results: list[dict] = []
    chosen: list[str] = []
    seen: set[str] = set()
    for index, ident in enumerate(idents):
        entry: dict[str, Any] = {"index": index}
        if index in invalid:
            entry.update(result="invalid", detail=invalid[index])
            results.append(entry)
            continue
        entry["id"] = ident
        member_id = resolved.get(ident)
        if member_id is None:
            entry.update(result="unknown_member", detail="No member has this id, external id "
                                                         "or email.")
            results.append(entry)
            continue
        entry["member_id"] = member_id
        if adding:
            if member_id in present or member_id in seen:
                entry["result"] = "already_member"
            else:
                entry["result"] = "added"
                chosen.append(member_id)
        else:
            if member_id not in present or member_id in seen:
                entry["result"] = "not_member"
            else:
                entry["result"] = "removed"
                chosen.append(member_id)
        seen.add(member_id)
        results.append(entry)
    if adding:
        limit = int(current_app.config.get("LIMIT_STATIC_MEMBERS", 5_000_000))
        if (segment.size or 0) + len(chosen) > limit:
            raise ApiError(422, "limit_exceeded", f"The limit is {limit:,} members per static "
                           f"segment; it has {segment.size:,} and this "
                           f"request adds {len(chosen):,}. Nothing was changed.", pointer="/data")
    if chosen:
        actor = actor_label()
        cause = Cause("api", actor, {"operation": "add_members" if adding else "remove_members",
                                     "items": len(idents)})
        if adding:
            done = set(apply_delta(segment, add=chosen, via="list", cause=cause).added_ids)
        else:
            done = set(apply_delta(segment, remove=chosen, via="list",
                                   cause=cause).removed_ids)
        db.session.commit()
        for entry in results:
            # Only a member deleted meanwhile can differ from what was read under the lock.
            if entry["result"] in ("added", "removed") and entry["member_id"] not in done:
                entry.update(result="unknown_member",
                             detail="No member has this id, external id or email.")
    counts: dict[str, int] = {}
    for entry in results:
        counts[entry["result"]] = counts.get(entry["result"], 0) + 1
    return respond({"meta": {"results": results, "counts": counts,
                             "size": segment.size or 0}})


@bp.route("/segments/<segment_ref>/relationships/members", methods=["POST"])
@access("write")
def segment_members_add(segment_ref: str):
    """Add members to a static segment by member id, external id or email (a result per item)."""
    return _change_list(segment_ref, adding=True)


@bp.route("/segments/<segment_ref>/relationships/members", methods=["DELETE"])
@access("write")
def segment_members_remove(segment_ref: str):
    """Remove members from a static segment by member id, external id or email."""
    return _change_list(segment_ref, adding=False)


# --- overrides ---------------------------------------------------------------------------------

def _moment(value: Any, pointer: str) -> datetime | None:
    """A Unix timestamp (seconds) or ISO 8601 text as naive UTC; raises ApiError."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value < 253402300800:
            raise ApiError(422, "invalid_attribute", "A Unix timestamp is seconds since "
                           "1970-01-01 (UTC).", pointer=pointer)
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    if isinstance(value, str) and len(value) <= 40:
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    raise ApiError(422, "invalid_attribute", "Give a Unix timestamp in seconds or an ISO 8601 "
                   "time such as 2026-11-22T09:30:00Z.", pointer=pointer)


def _override_pointer(exc: Exception, base: str) -> str:
    """The pointer of the attribute an OverrideError is about (the item itself if none)."""
    field = next(iter(getattr(exc, "errors", {}) or {""}))
    return f"{base}/attributes/{field}" if field else base


def _override_item(item: Any, index: int, pointer: str) -> dict[str, Any]:
    """One override request item, checked; raises ApiError naming the bad member."""
    if not isinstance(item, dict):
        raise ApiError(400, "invalid_data", "Each item is a resource object of type "
                       '"overrides".', pointer=pointer)
    check_resource(item, "overrides", pointer)
    attributes = attributes_of(item, (*OVERRIDE_ATTRIBUTES, *OVERRIDE_ALIASES), pointer=pointer)
    given_as = {"member": "member", "status": "status"}  # for pointers into the request
    for alias, name in OVERRIDE_ALIASES.items():
        if alias in attributes:
            given_as[name] = alias
            if name in attributes:
                raise ApiError(422, "invalid_attribute", f"{alias} is another name for {name}; "
                               "give one of the two.", pointer=f"{pointer}/attributes/{alias}")
            attributes[name] = attributes.pop(alias)
    member_ref = attributes.pop("member", None)
    rel = (item.get("relationships") or {}).get("member")
    if rel is not None:
        linkage = rel.get("data") if isinstance(rel, dict) else None
        if not isinstance(linkage, dict) or linkage.get("type") != "members" \
                or not isinstance(linkage.get("id"), str):
            raise ApiError(422, "invalid_relationship", 'member is {"data": {"type": '
                           '"members", "id": ...}}.', pointer=f"{pointer}/relationships/member")
        member_ref = linkage["id"]
    if not isinstance(member_ref, str) or not member_ref.strip() or len(member_ref) > 320:
        raise ApiError(422, "missing_member", "Name the member: attributes.member (or user) "
                       "or the member relationship (member id, external id or email).",
                       pointer=f"{pointer}/attributes/{given_as['member']}")
    status = attributes.get("status")
    if status not in ("add", "block", "reset"):
        raise ApiError(422, "invalid_attribute", f"{given_as['status']} is add, block or reset.",
                       pointer=f"{pointer}/attributes/{given_as['status']}")
    for key in ("description", "reference_id"):
        value = attributes.get(key)
        if value is not None and not isinstance(value, str):
            raise ApiError(422, "invalid_attribute", f"{key} is text.",
                           pointer=f"{pointer}/attributes/{key}")
    if len(attributes.get("description") or "") > 2_000:
        raise ApiError(422, "invalid_attribute", "description is at most 2,000 characters.",
                       pointer=f"{pointer}/attributes/description")
    metadata = attributes.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ApiError(422, "invalid_attribute", "metadata is a JSON object.",
                       pointer=f"{pointer}/attributes/metadata")
    return {"member": member_ref.strip(), "status": status,
            "description": attributes.get("description") or "",
            "reference_id": attributes.get("reference_id"), "metadata": metadata,
            "status_change_timestamp": _moment(attributes.get("status_change_timestamp"),
                                               f"{pointer}/attributes/status_change_timestamp"),
            "expires_at": _moment(attributes.get("expires_at"),
                                  f"{pointer}/attributes/expires_at")}


def _override_attributes(override: Any) -> dict[str, Any] | None:
    """The override as it stands now: None once reset (by this item or a later request)."""
    if override is None:
        return None
    from sqlalchemy.exc import InvalidRequestError

    from webapp.api.serializers import iso

    try:
        db.session.refresh(override)
    except InvalidRequestError:  # its row is gone: reset since
        return None
    return {"id": override.id, "status": override.status, "description": override.description,
            "reference_id": override.reference_id, "metadata": dict(override.metadata_ or {}),
            "status_change_timestamp": iso(override.status_change_timestamp),
            "expires_at": iso(override.expires_at), "actor": override.actor_label}


@bp.route("/segments/<segment_ref>/overrides", methods=["POST"])
@access("admin")
def segment_overrides(segment_ref: str):
    """Add, block or reset one or many members' overrides of a dynamic segment (a result each)."""
    from webapp.services.overrides import OverrideError, set_override

    segment = segment_or_404(segment_ref)
    document = read_document()
    check_query(())
    data = document["data"]
    single = isinstance(data, dict)
    items = [data] if single else data
    if not isinstance(items, list):
        raise ApiError(400, "invalid_data", "`data` is an override resource object or an array "
                       "of them.", pointer="/data")
    limit = batch_limit()
    if len(items) > limit:
        raise ApiError(413, "too_many_items", f"At most {limit:,} overrides per request "
                       f"({len(items):,} given).", pointer="/data", title="Too large")
    if segment.kind != "dynamic":
        raise ApiError(409, "segment_not_dynamic", f"{segment.name} is a static segment: edit "
                       f"its list with /api/v1/segments/{segment.id}/relationships/members; "
                       "overrides apply to rule-managed (dynamic) segments.", title="Conflict",
                       pointer="/data")
    actor = actor_label()
    results: list[dict] = []
    for index, item in enumerate(items):
        pointer = "/data" if single else f"/data/{index}"
        entry: dict[str, Any] = {"index": index}
        try:
            request_item = _override_item(item, index, pointer)
        except ApiError as exc:
            entry.update(result="invalid", errors=exc.errors)
            results.append(entry)
            continue
        entry.update(member=request_item["member"], status=request_item["status"])
        member = find_member(request_item["member"])
        if member is None:
            entry.update(result="unknown_member",
                         detail="No member has this id, external id or email.")
            results.append(entry)
            continue
        entry["member_id"] = member.id
        try:
            outcome = set_override(
                segment, member, request_item["status"],
                description=request_item["description"],
                reference_id=request_item["reference_id"], metadata=request_item["metadata"],
                status_change_timestamp=request_item["status_change_timestamp"],
                expires_at=request_item["expires_at"], actor=actor, actor_id=actor_id(),
                require_reason=False)
        except OverrideError as exc:
            db.session.rollback()
            entry.update(result="invalid", errors=[error_object(
                422, "invalid_override", str(exc), title="Invalid override",
                pointer=_override_pointer(exc, pointer))])
            results.append(entry)
            continue
        entry.update(result="applied" if outcome.changed else "unchanged",
                     detail=outcome.message, effect=outcome.effect,
                     override=_override_attributes(outcome.override))
        results.append(entry)
    counts: dict[str, int] = {}
    for entry in results:
        counts[entry["result"]] = counts.get(entry["result"], 0) + 1
    db.session.refresh(segment)
    return respond({"meta": {"results": results, "counts": counts, "size": segment.size or 0}})
