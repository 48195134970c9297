"""Large rule edits as background jobs, with progress (issue 21).

An edit of a dynamic segment's rules is sized first, under the segment's write lock: who
would join and who would leave, computed with the same set-based anti-joins that apply it
(`membership.stage_join_and_leave`, kept in temporary tables). A small edit is applied from
those sets in the same transaction. When more than SEGMENT_JOB_THRESHOLD members would
move, the edit is not applied in the request (the sizing is rolled back): a `SegmentJob`
row records it (the definition being applied, the whole edit, the
version it was based on, the estimated counts) and a job is started through
`webapp.jobs.enqueue` (RQ with Redis, a thread without); the request returns at once.

The job applies the edit exactly as a small edit is applied, through
`segments.write_segment` (which hands the membership change to `membership.apply_delta`,
the one writer path), and marks itself `done` in the same transaction, which commits once.
So until it commits the segment keeps its stored definition and members, and a job that
fails or whose process dies changes nothing.

Decisions:

* **One rule change at a time.** While a job of a segment is queued or running, another
  edit of that segment (any attribute) is refused with a message naming the job; it can be
  made once the job has finished. Queueing edits behind a job would apply edits that were
  based on a definition their author never saw applied.
* **Progress** reuses the uploads' pattern (`uploads.Progress`: memory in this process,
  Redis for RQ workers, the database row when it can be written) in members moved
  (`done` of `to_add + to_remove`), reported after the leaving and after the joining
  members are written; the page and the API read it with `live_done`.
* **A dead worker** is found as the uploads find theirs: the job holds a runner lock (an
  flock the operating system releases however the process dies) while it runs, so a job
  found `running` without it is marked `interrupted` when it is read (`reap_stale`); its
  transaction died with it, so nothing of it was applied. A job still `queued` after
  QUEUED_GRACE (the thread or the queue that should run it is gone) is marked the same.
* Creating a segment and `flask segments refresh` stay synchronous.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Member, Segment, SegmentJob
from webapp.services.errors import Conflict
from webapp.services.membership import (
    bulk_plans,
    jit_off,
    join_and_leave,
    lock_segments,
    stage_join_and_leave,
)
from webapp.services.segments import (
    SegmentError,
    _canonical_keys,
    save_segment,
    validate,
    write_segment,
)
from webapp.services.uploads import (
    _LIVE_LOCK,
    JOB_HOURS,
    Progress,
    freshest,
    runner,
    runner_gone,
)
from webapp.timeutil import utcnow

STATUSES = ("queued", "running", "done", "failed", "interrupted")
ACTIVE = ("queued", "running")
RUNNER = "segment-job"
# A job still queued after this long will not start: its thread or its queue is gone.
QUEUED_GRACE = {"thread": timedelta(minutes=5), "rq": timedelta(hours=JOB_HOURS)}
INTERRUPTED = ("The change was interrupted: the process applying it stopped before it "
               "finished, so nothing was changed (the segment keeps its previous definition "
               "and members). Edit the segment again to apply it.")
NEVER_STARTED = ("The change never started (the worker that should have applied it is "
                 "gone), so nothing was changed. Edit the segment again to apply it.")

_LIVE: dict[int, int] = {}


class JobProgress(Progress):
    """A segment job's progress in members moved: the uploads' Progress on `done`."""

    table = SegmentJob.__table__
    column = "done"
    key = "beacon:segment-job-progress:{}"
    live = _LIVE


@dataclass
class SegmentEdit:
    """What an edit did: the segment, and the job applying it when it was too large."""

    segment: Segment
    job: SegmentJob | None = None


def threshold() -> int:
    """How many members an edit may move before it runs as a job (SEGMENT_JOB_THRESHOLD)."""
    return int(current_app.config["SEGMENT_JOB_THRESHOLD"])


def estimate(segment: Segment, definition: dict[str, Any]) -> tuple[int, int]:
    """(joining, leaving) if the segment had this definition: the set difference, counted."""
    jit_off()
    bulk_plans(True)
    joining, leaving = join_and_leave(segment, utcnow(), definition)
    count = [db.session.scalar(select(func.count()).select_from(q.subquery())) or 0
             for q in (joining, leaving)]
    bulk_plans(False)
    return count[0], count[1]


def _may_be_large(segment: Segment) -> bool:
    """Whether an edit could move more than the threshold: at most every member joins and
    every current member leaves, so small programs skip the count."""
    members = db.session.scalar(select(func.count()).select_from(Member)) or 0
    return members + (segment.size or 0) > threshold()


def busy_message(job: SegmentJob) -> str:
    """Why an edit is refused while a job applies another one."""
    state = "waiting to start" if job.status == "queued" else "being applied"
    return (f"A change of this segment's rules is {state} (job #{job.id}, "
            f"+{job.to_add:,} / −{job.to_remove:,} members); wait until it finishes, then "
            "edit again.")


def refuse_while_busy(segment: Segment) -> None:
    """Raise SegmentError (a conflict) when a job of this segment is queued or running."""
    job = active_job(segment.id)
    if job is not None:
        raise SegmentError({"segment": Conflict(busy_message(job))})


def edit_segment(data: dict, *, segment: Segment, actor: str, actor_id: int | None = None,
                 expected_version: int | None = None) -> SegmentEdit:
    """Update a segment: at once, or as a background job when its new rules would move more
    than the threshold of members (commits; the job commits on its own).

    A rule edit that may be large is sized under the segment's write lock, with the sets it
    moves kept in temporary tables; a small one is then applied from them in the same
    transaction (the sets are computed once), a large one rolled back and handed to a job.
    """
    refuse_while_busy(segment)
    values = validate(data, segment=segment) if segment.kind == "dynamic" \
        or data.get("kind") == "dynamic" else None
    definition = None
    if values is not None and values["kind"] == "dynamic":
        definition = {"kind": "dynamic", "include": values["include"],
                      "exclude": values["exclude"]}
        if definition == segment.definition() or not _may_be_large(segment):
            definition = None
    if definition is None or (expected_version is not None
                              and expected_version != segment.version):
        return SegmentEdit(save_segment(data, segment=segment, actor=actor,
                                        actor_id=actor_id, expected_version=expected_version))
    base_version = segment.version
    lock_segments([segment.id])  # reloads the segment: a save that came first is seen
    if segment.version != base_version:
        db.session.rollback()
        return SegmentEdit(save_segment(data, segment=segment, actor=actor,
                                        actor_id=actor_id, expected_version=base_version))
    try:
        staged = stage_join_and_leave(segment, definition)
        if staged.total > threshold():
            db.session.rollback()  # the sets and the lock: the job computes its own
            job = _start(segment, data, definition, staged.to_add, staged.to_remove,
                         actor=actor, actor_id=actor_id, expected_version=base_version)
            return SegmentEdit(segment, job)
        write_segment(data, segment=segment, actor=actor, actor_id=actor_id,
                      expected_version=base_version, staged=staged)
        staged.drop()
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise SegmentError({"customer_segment_id": Conflict(
            "customer segment id is already used by another segment")}) from None
    except SegmentError:
        db.session.rollback()
        raise
    return SegmentEdit(segment)


def _start(segment: Segment, data: dict, definition: dict, joining: int, leaving: int, *,
           actor: str, actor_id: int | None, expected_version: int | None) -> SegmentJob:
    """Record the job and start it (commits). Under the segment's write lock, so two edits
    at once cannot both start one, and one based on an old version is refused."""
    base_version = segment.version if expected_version is None else expected_version
    lock_segments([segment.id], dependents=False)  # reloads the segment
    if segment.version != base_version:
        db.session.rollback()
        raise SegmentError({"version": f"{segment.updated_by_label or 'someone'} changed this "
                                       f"segment while you were editing (now version "
                                       f"{segment.version}). Review the current definition "
                                       "and apply your change again."})
    busy = db.session.scalars(select(SegmentJob).where(
        SegmentJob.segment_id == segment.id, SegmentJob.status.in_(ACTIVE))).first()
    if busy is not None:
        message = busy_message(busy)
        db.session.rollback()
        raise SegmentError({"segment": Conflict(message)})
    changes = {k: v for k, v in _canonical_keys(data).items()}
    job = SegmentJob(segment_id=segment.id, status="queued", definition=definition,
                     changes=changes, base_version=base_version, to_add=joining,
                     to_remove=leaving, done=0, result={}, actor_id=actor_id,
                     actor_label=actor, created_at=utcnow())
    db.session.add(job)
    db.session.commit()
    from webapp.jobs import enqueue

    enqueue("webapp.services.segment_jobs.run_job", job.id)
    db.session.expire_all()
    return db.session.get(SegmentJob, job.id)


def run_job(job_id: int) -> bool:
    """Job: apply a queued rule change in one transaction; returns whether it was applied."""
    with runner(job_id, RUNNER):
        return _run(job_id)


def _run(job_id: int) -> bool:
    job = db.session.get(SegmentJob, job_id)
    if job is None or job.status != "queued":
        return False
    started = db.session.execute(update(SegmentJob).where(
        SegmentJob.id == job_id, SegmentJob.status == "queued").values(
        status="running", started_at=utcnow())).rowcount
    db.session.commit()
    if not started:
        return False
    job = db.session.get(SegmentJob, job_id)
    progress = JobProgress(job.id, maximum=max(job.total, 1))
    try:
        segment = db.session.get(Segment, job.segment_id)
        if segment is None:
            raise SegmentError({"segment": "the segment was deleted"})
        before = segment.size or 0
        write_segment(dict(job.changes), segment=segment, actor=job.actor_label or "unknown",
                      actor_id=job.actor_id, expected_version=job.base_version,
                      progress=progress.set)
        after = segment.size or 0
        job = db.session.get(SegmentJob, job_id)
        job.status = "done"
        job.done = max(progress.value, 0)
        job.result = {"size_before": before, "size": after, "version": segment.version}
        job.finished_at = utcnow()
        db.session.commit()
        return True
    except SegmentError as exc:
        db.session.rollback()
        _fail(job_id, f"The change could not be applied: {exc} Nothing was changed.")
    except IntegrityError:
        db.session.rollback()
        _fail(job_id, "The change could not be applied: the customer segment id is already "
              "used by another segment. Nothing was changed.")
    except Exception:
        db.session.rollback()
        current_app.logger.exception("segment job %s failed", job_id)
        _fail(job_id, "The change failed because of an unexpected error. Nothing was "
              "changed.")
    finally:
        progress.finish()
    return False


def _fail(job_id: int, error: str) -> None:
    """Store a job's failure and commit."""
    db.session.execute(update(SegmentJob).where(SegmentJob.id == job_id).values(
        status="failed", error=error, finished_at=utcnow()))
    db.session.commit()


def reap_stale(segment_id: int | None = None) -> int:
    """Mark jobs whose worker died (or never started) as interrupted; returns how many
    (commits when any). Nothing of them was applied: their transaction died with them."""
    query = select(SegmentJob).where(SegmentJob.status.in_(ACTIVE))
    if segment_id is not None:
        query = query.where(SegmentJob.segment_id == segment_id)
    mode = "rq" if current_app.config.get("REDIS_URL") else "thread"
    now = utcnow()
    dead: list[tuple[int, str, str]] = []
    for job in db.session.scalars(query):
        with _LIVE_LOCK:
            if job.id in _LIVE:
                continue
        gone = runner_gone(job.id, RUNNER)
        if job.status == "running" and gone is not False:
            dead.append((job.id, "running", INTERRUPTED))
        elif job.status == "queued" and gone is None \
                and job.created_at < now - QUEUED_GRACE[mode]:
            dead.append((job.id, "queued", NEVER_STARTED))
    marked = 0
    for job_id, status, message in dead:
        # Only if it is still in that state: a job that moved on meanwhile wins.
        marked += db.session.execute(update(SegmentJob).where(
            SegmentJob.id == job_id, SegmentJob.status == status).values(
            status="interrupted", error=message, finished_at=now)).rowcount or 0
    if dead:
        db.session.commit()
    return marked


def active_job(segment_id: int) -> SegmentJob | None:
    """The segment's job that is queued or running, if any (dead ones reaped first)."""
    reap_stale(segment_id)
    return db.session.scalars(select(SegmentJob).where(
        SegmentJob.segment_id == segment_id, SegmentJob.status.in_(ACTIVE))
        .order_by(SegmentJob.id)).first()


def latest_job(segment_id: int) -> SegmentJob | None:
    """The segment's most recent job (dead ones reaped first)."""
    reap_stale(segment_id)
    return db.session.scalars(select(SegmentJob).where(SegmentJob.segment_id == segment_id)
                              .order_by(SegmentJob.id.desc())).first()


def get_job(job_id: int) -> SegmentJob | None:
    """A job by id, reaped first if its worker died."""
    job = db.session.get(SegmentJob, job_id)
    if job is not None and job.status in ACTIVE and reap_stale(job.segment_id):
        db.session.refresh(job)
    return job


def live_done(job: SegmentJob) -> int:
    """How many members a job has moved, as fresh as known (see uploads.freshest)."""
    if job.status == "done":
        return job.done or 0
    return min(freshest(JobProgress, job.id, job.status == "running", job.done or 0),
               job.total)


def percent(job: SegmentJob) -> int:
    """The job's progress in whole percent (100 once done)."""
    if job.status == "done":
        return 100
    total = job.total
    return int(live_done(job) * 100 / total) if total else 0


def phase(job: SegmentJob) -> str:
    """What the job is doing, in the words of the progress bar's caption."""
    if job.status == "queued":
        return "Waiting to start"
    if job.status != "running":
        return {"done": "Done", "failed": "Failed", "interrupted": "Interrupted"}[job.status]
    done = live_done(job)
    if done == 0 and job.to_remove:
        return "Removing the members who leave"
    if done < job.total:
        return "Adding the members who join"
    return "Saving"

__all__ = [
    "ACTIVE", "STATUSES", "SegmentEdit", "active_job", "busy_message", "edit_segment",
    "estimate", "get_job", "latest_job", "live_done", "percent", "phase", "reap_stale",
    "refuse_while_busy", "run_job", "threshold",
]
