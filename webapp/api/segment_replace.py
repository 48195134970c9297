"""PUT /api/v1/segments/{id}: replace a segment's definition whole (the Monterosa seed's update).

PATCH changes only the attributes it names; PUT states the whole segment, so `name` and `kind`
are required and an optional attribute left out takes its default (no description, no url, no
include or exclude criteria). The customer segment id is the segment's identity rather than
its definition: left out, it is kept (send null to clear it).
"""

from __future__ import annotations

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, error_object
from webapp.api.jsonapi import (
    actor_id,
    actor_label,
    attributes_of,
    read_document,
    resource_object,
    respond,
)
from webapp.api.segments import READ_ONLY, WRITABLE, _segment_error, segment_or_404
from webapp.api.serializers import segment_resource

REQUIRED = ("name", "kind")
DEFAULTS = {"description": "", "url": None, "include": [], "exclude": []}


@bp.route("/segments/<segment_ref>", methods=["PUT"])
@access("write")
def segment_replace(segment_ref: str):
    """Replace a segment whole: name and kind required, omitted criteria become empty."""
    from webapp.api.jobs import accepted
    from webapp.services.segment_jobs import edit_segment
    from webapp.services.segments import SegmentError

    segment = segment_or_404(segment_ref)
    data = resource_object(read_document(), "segments")
    if "id" in data and str(data["id"]) not in (str(segment.id), segment_ref):
        raise ApiError(409, "id_mismatch", "The resource id does not match the URL.",
                       pointer="/data/id")
    attributes = attributes_of(data, (*WRITABLE, "version"), read_only=READ_ONLY)
    missing = [name for name in REQUIRED if name not in attributes]
    if missing:
        raise ApiError(422, errors=[error_object(
            422, "missing_attribute", f"PUT replaces the whole segment, so {name} is required "
            f"(missing: {', '.join(missing)}); to change only some attributes use PATCH.",
            title="Missing attribute", pointer=f"/data/attributes/{name}") for name in missing])
    expected = attributes.pop("version", None)
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
        raise ApiError(422, "invalid_attribute", "version is the whole number this segment "
                       "had when you read it.", pointer="/data/attributes/version")
    try:
        edit = edit_segment({**DEFAULTS, **attributes}, segment=segment, actor=actor_label(),
                            actor_id=actor_id(), expected_version=expected)
    except SegmentError as exc:
        raise _segment_error(exc) from None
    if edit.job is not None:
        return accepted(edit.job)
    return respond({"data": segment_resource(edit.segment)})
