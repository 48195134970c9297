"""Background jobs over the API: a large rule change of a segment (issue 21).

PATCH or PUT /segments/{ref} whose new rules would move more than SEGMENT_JOB_THRESHOLD
members answers 202 Accepted with the job (Location and Content-Location name it); GET
/jobs/{id} follows it: status queued, running, done, failed or interrupted, the counts
estimated when it was asked for (`to_add`, `to_remove`), how many have moved (`done`), the
definition being applied, timestamps and the error. Until the job is `done` the segment
keeps its previous definition and members.
"""

from __future__ import annotations

from typing import Any

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError
from webapp.api.jsonapi import check_query, link, respond
from webapp.api.serializers import iso, segment_identifier
from webapp.models import SegmentJob
from webapp.services import segment_jobs


def job_resource(job: SegmentJob) -> dict[str, Any]:
    """A segment job as a JSON:API resource, with its freshest progress."""
    done = segment_jobs.live_done(job)
    return {
        "type": "jobs", "id": str(job.id),
        "attributes": {
            "kind": "segment_rules", "status": job.status,
            "to_add": job.to_add or 0, "to_remove": job.to_remove or 0,
            "total": job.total, "done": done, "percent": segment_jobs.percent(job),
            "definition": {"kind": (job.definition or {}).get("kind", "dynamic"),
                           "include": list((job.definition or {}).get("include") or []),
                           "exclude": list((job.definition or {}).get("exclude") or [])},
            "base_version": job.base_version,
            "result": {k: v for k, v in (job.result or {}).items()
                       if k in ("size_before", "size", "version")} or None,
            "error": job.error, "created_by": job.actor_label or None,
            "created_at": iso(job.created_at), "started_at": iso(job.started_at),
            "finished_at": iso(job.finished_at),
        },
        "relationships": {"segment": {
            "data": segment_identifier(job.segment_id),
            "links": {"related": link("api.segment_get", segment_ref=job.segment_id)}}},
        "links": {"self": link("api.job_get", job_id=job.id)},
    }


def accepted(job: SegmentJob):
    """202 Accepted: the job that applies the change, and where to follow it."""
    where = link("api.job_get", job_id=job.id)
    return respond({"data": job_resource(job), "links": {"self": where}}, 202,
                   {"Location": where, "Content-Location": where})


@bp.route("/jobs/<job_id>", methods=["GET"])
@access("read")
def job_get(job_id: str):
    """A background job (a large rule change of a segment): status, counts and progress."""
    check_query(())
    number = int(job_id) if job_id.isascii() and job_id.isdigit() and len(job_id) < 10 \
        else 0
    job = segment_jobs.get_job(number) if number > 0 else None
    if job is None:
        raise ApiError(404, "job_not_found", f"No job has the id {job_id}.", title="Not found")
    return respond({"data": job_resource(job), "links": {"self": link("api.job_get",
                                                                      job_id=job.id)}})
