"""Members over the API: list, get, create, update, delete, batch upsert, search, visibility."""

from __future__ import annotations

from functools import partial

from flask import Response
from sqlalchemy import select

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import (
    MEDIA_TYPE,
    ApiError,
    error_object,
    escape,
    pointer_for,
    validation_error,
)
from webapp.api.jsonapi import (
    actor_label,
    attributes_of,
    batch_limit,
    check_query,
    check_resource,
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
    page_size,
)
from webapp.api.serializers import decorated_items, member_resource
from webapp.models import Member
from webapp.services.lookup import find_member
from webapp.services.members import (
    FIELDS,
    READ_ONLY,
    MemberError,
    create_member,
    delete_member,
    search_members,
    update_member,
    upsert_members,
)
from webapp.targeting import SegmentDefinitionError

#: The attributes that may be null (as in answers); null is refused for the others.
NULLABLE = ("email", "birthday")


def member_or_404(member_ref: str) -> Member:
    """The member named by id, external id or email; 404 otherwise."""
    member = find_member(member_ref) if "\x00" not in member_ref else None
    if member is None:
        raise ApiError(404, "member_not_found", f"No member has the id, external id or email "
                       f"{member_ref!r}.", title="Not found")
    return member


def _member_error(exc: MemberError, base: str = "/data/attributes") -> ApiError:
    return validation_error(exc.errors, base, status=exc.status,
                            code="conflict" if exc.status == 409 else "invalid_attribute")


@bp.route("/members", methods=["GET"])
@access("read")
def member_list():
    """List members by id with cursor pagination; filter[email], filter[external_id]."""
    check_query(("filter[email]", "filter[external_id]", *PAGE_PARAMS))
    query = select(Member)
    email = query_value("filter[email]", max_length=320)
    if email is not None:
        query = query.where(Member.email == email.strip().lower())
    external_id = query_value("filter[external_id]", max_length=255)
    if external_id is not None:
        query = query.where(Member.external_id == external_id)
    rows, links = keyset_page(query, Member.id, str)
    return respond({"data": [member_resource(m) for m in rows], "links": links})


@bp.route("/members", methods=["POST"])
@access("write")
def member_create():
    """Create a member; its dynamic segments are evaluated at once."""
    data = resource_object(read_document(), "members", creating=True)
    attributes = attributes_of(data, FIELDS, read_only=READ_ONLY, nullable=NULLABLE)
    try:
        member = create_member(attributes, actor=actor_label())
    except MemberError as exc:
        raise _member_error(exc) from None
    url = link("api.member_get", member_ref=member.id)
    return respond({"data": member_resource(member)}, 201, {"Location": url})


@bp.route("/members/<member_ref:member_ref>", methods=["GET"])
@access("read")
def member_get(member_ref: str):
    """One member by member id, external id or email."""
    check_query(())
    return respond({"data": member_resource(member_or_404(member_ref)),
                    "links": {"self": self_link()}})


@bp.route("/members/<member_ref:member_ref>", methods=["PATCH"])
@access("write")
def member_update(member_ref: str):
    """Change a member's profile; dynamic segments are re-evaluated (ADD/REMOVE events)."""
    member = member_or_404(member_ref)
    data = resource_object(read_document(), "members", resource_id=None)
    if "id" in data and str(data["id"]) not in (member.id, member_ref):
        raise ApiError(409, "id_mismatch", "The resource id does not match the URL.",
                       pointer="/data/id")
    attributes = attributes_of(data, FIELDS, read_only=READ_ONLY, nullable=NULLABLE)
    try:
        changed = update_member(member, attributes, actor=actor_label())
    except MemberError as exc:
        raise _member_error(exc) from None
    return respond({"data": member_resource(member), "meta": {"changed": changed}})


@bp.route("/members/<member_ref:member_ref>", methods=["DELETE"])
@access("admin")
def member_delete(member_ref: str):
    """Delete a member; a REMOVE event is recorded for every segment it was in."""
    member = member_or_404(member_ref)
    delete_member(member, actor=actor_label())
    return no_content()


@bp.route("/members/batch", methods=["POST"])
@access("write")
def member_batch():
    """Create or update up to LIMIT_BATCH members by external_id, with a result per item."""
    document = read_document()
    items = document["data"]
    if not isinstance(items, list):
        raise ApiError(400, "invalid_data", "`data` must be an array of member resource "
                       "objects.", pointer="/data")
    limit = batch_limit()
    if len(items) > limit:
        raise ApiError(413, "too_many_items", f"At most {limit:,} members per batch "
                       f"({len(items):,} given); split the request.", pointer="/data",
                       title="Too large")
    attributes: list[dict] = []
    refused: dict[int, list[dict]] = {}
    for index, item in enumerate(items):
        pointer = f"/data/{index}"
        try:
            if not isinstance(item, dict):
                raise ApiError(400, "invalid_data", "Each item is a resource object.",
                               pointer=pointer)
            check_resource(item, "members", pointer)
            attributes.append(dict(item.get("attributes") or {}))
        except ApiError as exc:
            refused[index] = exc.errors
            attributes.append({"__refused__": True})
    valid = [(i, a) for i, a in enumerate(attributes) if i not in refused]
    outcomes = upsert_members([a for _, a in valid], actor=actor_label()) if valid else []
    results: list[dict] = []
    by_index = {valid[n][0]: outcome for n, outcome in enumerate(outcomes)}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "invalid": 0}
    for index in range(len(items)):
        if index in refused:
            results.append({"index": index, "result": "invalid", "errors": refused[index]})
            counts["invalid"] += 1
            continue
        outcome = by_index[index]
        entry: dict = {"index": index, "result": outcome.status,
                       "external_id": outcome.external_id}
        if outcome.member_id:
            entry["id"] = outcome.member_id
        if outcome.changed and outcome.status == "updated":
            entry["changed"] = outcome.changed
        if outcome.errors:
            entry["errors"] = [error_object(422, "invalid_attribute", message,
                                            title="Invalid attribute",
                                            pointer=f"/data/{index}/attributes/{escape(key)}")
                               for key, message in outcome.errors.items()]
        counts[outcome.status] += 1
        results.append(entry)
    return respond({"meta": {"results": results, "counts": counts}})


@bp.route("/members/search", methods=["POST"])
@access("read")
def member_search():
    """Members matching criteria: the exact count and the first page, computed in SQL."""
    check_query(PAGE_PARAMS)
    size = page_size()
    after = decode_cursor(str)
    data = resource_object(read_document(), "member-searches")
    attributes = attributes_of(data, ("include", "exclude"))
    for group in ("include", "exclude"):
        if group in attributes and not isinstance(attributes[group], list | type(None)):
            raise ApiError(422, "invalid_criteria", f"{group} is a list of criteria "
                           "{field, operator, value}.", pointer=f"/data/attributes/{group}")
    try:
        count, rows = search_members(attributes, limit=size + 1, after=after)
    except SegmentDefinitionError as exc:
        raise ApiError(422, "invalid_criterion", str(exc), title="Invalid criterion",
                       pointer=pointer_for(exc.where) if exc.where else "/data/attributes"
                       ) from None
    meta: dict = {"count": count}
    if len(rows) > size:
        rows = rows[:size]
        meta["next_cursor"] = encode_cursor(rows[-1].id)
    return respond({"data": [member_resource(m) for m in rows], "meta": meta,
                    "links": {"self": self_link()}})


def _decorated(member_ref: str, resource_type: str) -> Response:
    """Every offer or reward decorated for a member, as a JSON:API document."""
    from webapp.services.decisions import decorated, decorated_for, dumps

    check_query(("as_of",))
    as_of = query_value("as_of", max_length=64)
    if as_of is not None:
        member = member_or_404(member_ref)  # the same 404 as every member route
        return _decorated_as_of(member.id, resource_type, as_of)
    render = partial(decorated_items, resource_type)
    # The member's columns only (no tracked ORM object): this read is the API's busiest.
    found = decorated_for(member_ref, resource_type, render) if "\x00" not in member_ref \
        else None
    if found is None:
        member = member_or_404(member_ref)  # the same 404 as every member route
        found = (member, *decorated(member, resource_type, render))
    member, data, count = found
    body = b"".join((b'{"data":', data, b',"meta":',
                     dumps({"member_id": member.id, "count": count}), b',"links":',
                     dumps({"self": self_link()}), b"}"))
    return Response(body, mimetype=MEDIA_TYPE)


def _as_of_refused(exc: Exception) -> ApiError:
    """The 400 for an `as_of` moment that cannot be replayed (the message says why)."""
    return ApiError(400, "invalid_parameter", exc.errors[""], parameter="as_of",
                    title="Cannot replay that moment")


def _decorated_as_of(member_id: str, resource_type: str, as_of: str) -> Response:
    """The decorated offers or rewards as they were at `as_of` (webapp.services.replay),
    marked with that moment in `meta.as_of`."""
    from webapp.services.decisions import dumps
    from webapp.services.replay import ReplayError, decorated_at, parse_moment

    try:
        moment = parse_moment(as_of)
        data, count = decorated_at(member_id, resource_type,
                                   partial(decorated_items, resource_type), moment)
    except ReplayError as exc:
        raise _as_of_refused(exc) from None
    body = b"".join((b'{"data":', data, b',"meta":', dumps({
        "member_id": member_id, "count": count, "as_of": moment.isoformat() + "Z"}),
        b',"links":', dumps({"self": self_link()}), b"}"))
    return Response(body, mimetype=MEDIA_TYPE)


@bp.route("/members/<member_ref>/offers", methods=["GET"])
@access("read")
def member_offers(member_ref: str):
    """Every offer decorated for this member: visible_status, eligible and the reasons tree."""
    return _decorated(member_ref, "offers")


@bp.route("/members/<member_ref>/rewards", methods=["GET"])
@access("read")
def member_rewards(member_ref: str):
    """Every reward decorated for this member: visible_status, eligible and the reasons tree."""
    return _decorated(member_ref, "rewards")


def _one_decision(member_ref: str, kind: str, item_ref: str) -> Response:
    """One offer or reward decided for a member (now, or `as_of` a past moment)."""
    from webapp.api.offers import int_id, offer_or_404
    from webapp.api.rewards import reward_or_404
    from webapp.api.serializers import decision_attributes, offer_attributes, reward_attributes
    from webapp.services.decisions import offer_decision, reward_decision
    from webapp.services.replay import ReplayError, explainer_at, parse_moment

    check_query(("as_of",))
    member = member_or_404(member_ref)
    own = offer_attributes if kind == "offers" else reward_attributes
    as_of = query_value("as_of", max_length=64)
    meta: dict = {"member_id": member.id}
    if as_of is None:
        item = offer_or_404(item_ref) if kind == "offers" else reward_or_404(item_ref)
        decision = (offer_decision(member, item) if kind == "offers"
                    else reward_decision(member, item))
    else:
        try:
            moment = parse_moment(as_of)
            ex = explainer_at(member.id, moment)
        except ReplayError as exc:
            raise _as_of_refused(exc) from None
        number = int_id(item_ref)
        items = ex.catalog.offers if kind == "offers" else ex.catalog.rewards
        item = next((i for i in items if i.id == number or (
            number is None and i.external_id == item_ref)), None)
        if item is None:
            raise ApiError(404, f"{kind[:-1]}_not_found", f"No {kind[:-1]} {item_ref!r} "
                           f"existed at {moment.isoformat()}Z.", title="Not found")
        decision = ex.offer(item) if kind == "offers" else ex.reward(item)
        meta["as_of"] = moment.isoformat() + "Z"
    return respond({"data": {"type": kind, "id": str(item.id), "attributes": {
        **own(item), **decision_attributes(decision)}}, "meta": meta,
        "links": {"self": self_link()}})


@bp.route("/members/<member_ref>/offers/<offer_id>", methods=["GET"])
@access("read")
def member_offer(member_ref: str, offer_id: str):
    """One offer decorated for this member: visible_status, eligible, reasons (as_of: then)."""
    return _one_decision(member_ref, "offers", offer_id)


@bp.route("/members/<member_ref>/rewards/<reward_id>", methods=["GET"])
@access("read")
def member_reward(member_ref: str, reward_id: str):
    """One reward decorated for this member: visible_status, eligible, reasons (as_of: then)."""
    return _one_decision(member_ref, "rewards", reward_id)
