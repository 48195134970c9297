"""Member activities over the API: record one or a batch (purchases, visits …), list a member's.

What segments' activity criteria read (webapp/targeting/behaviour.py). Not to be confused with
`activity.py`, which is what members do with offers (activations, fulfillments, redemptions).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, error_object, escape
from webapp.api.jsonapi import (
    actor_label,
    batch_limit,
    check_query,
    check_resource,
    link,
    query_value,
    read_document,
    respond,
)
from webapp.api.members import member_or_404
from webapp.api.pagination import PAGE_PARAMS, keyset_page
from webapp.models import Activity
from webapp.services.activities import record
from webapp.targeting.behaviour import from_e4


def activity_resource(a: Activity) -> dict[str, Any]:
    """An activity resource."""
    return {"type": "activities", "id": str(a.id), "attributes": {
        "member_id": a.member_id, "activity_type": a.type,
        "occurred_at": a.occurred_at.isoformat() + "Z", "amount": from_e4(a.amount_e4),
        "properties": a.properties, "external_id": a.external_id, "source": a.source,
        "recorded_at": a.recorded_at.isoformat() + "Z"}}


@bp.route("/activities", methods=["POST"])
@access("write")
def activities_record():
    """Record one activity (`data` an object) or a batch (`data` an array, at most
    LIMIT_BATCH): a result per item, valid items written in one transaction, segments with
    activity criteria updated before the answer."""
    document = read_document()
    data = document["data"]
    single = isinstance(data, dict)
    items = [data] if single else data
    if not isinstance(items, list):
        raise ApiError(400, "invalid_data", "`data` is an activity resource object or an "
                       "array of them.", pointer="/data")
    limit = batch_limit()
    if len(items) > limit:
        raise ApiError(413, "too_many_items", f"At most {limit:,} activities per request "
                       f"({len(items):,} given); split the request.", pointer="/data",
                       title="Too large")
    attributes: list[dict[str, Any]] = []
    refused: dict[int, list[dict]] = {}
    for index, item in enumerate(items):
        pointer = "/data" if single else f"/data/{index}"
        try:
            if not isinstance(item, dict):
                raise ApiError(400, "invalid_data", "Each item is a resource object.",
                               pointer=pointer)
            check_resource(item, "activities", pointer)
            if "id" in item:
                raise ApiError(403, "client_generated_id", "Beacon assigns ids; name the "
                               "activity by its external_id.", pointer=f"{pointer}/id")
            attrs = item.get("attributes")
            if not isinstance(attrs, dict):
                raise ApiError(422, "invalid_attribute", "attributes is an object with member, "
                               "activity_type, occurred_at and external_id.",
                               pointer=f"{pointer}/attributes")
            attributes.append(attrs)
        except ApiError as exc:
            refused[index] = exc.errors
            attributes.append({})
    valid = [i for i in range(len(items)) if i not in refused]
    done = record([attributes[i] for i in valid], actor=actor_label()) if valid else None
    outcomes = dict(zip(valid, done.outcomes, strict=True)) if done else {}
    results: list[dict[str, Any]] = []
    counts = {"recorded": 0, "duplicate": 0, "invalid": 0}
    for index in range(len(items)):
        base = "/data" if single else f"/data/{index}"
        if index in refused:
            results.append({"index": index, "result": "invalid", "errors": refused[index]})
            counts["invalid"] += 1
            continue
        out = outcomes[index]
        entry: dict[str, Any] = {"index": index, "result": out.status}
        if out.external_id is not None:
            entry["external_id"] = out.external_id
        if out.id is not None:
            entry["id"] = str(out.id)
        if out.member_id is not None:
            entry["member_id"] = out.member_id
        if out.errors:
            entry["errors"] = [error_object(422, "invalid_attribute", message,
                                            title="Invalid attribute",
                                            pointer=f"{base}/attributes/{escape(key)}")
                               for key, message in out.errors.items()]
        counts[out.status] += 1
        results.append(entry)
    meta: dict[str, Any] = {"results": results, "counts": counts}
    if done is not None:
        meta["membership_changes"] = [
            {"segment_id": d.segment_id, "added": d.added_ids, "removed": d.removed_ids}
            for d in done.deltas if d.changed]
    if single and counts["invalid"]:
        # One activity, refused: an error document (the status of its first error).
        errors = results[0]["errors"]
        raise ApiError(int(errors[0]["status"]), errors=errors)
    return respond({"meta": meta})


@bp.route("/members/<member_ref:member_ref>/activities", methods=["GET"])
@access("read")
def member_activities(member_ref: str):
    """A member's activities, newest recorded first, with cursor pagination;
    filter[activity_type]."""
    check_query(("filter[activity_type]", *PAGE_PARAMS))
    member = member_or_404(member_ref)
    query = select(Activity).where(Activity.member_id == member.id)
    kind = query_value("filter[activity_type]", max_length=100)
    if kind is not None:
        query = query.where(Activity.type == kind)
    rows, links = keyset_page(query, Activity.id, int, descending=True)
    return respond({"data": [activity_resource(a) for a in rows], "links": links,
                    "meta": {"member": link("api.member_get", member_ref=member.id)}})
