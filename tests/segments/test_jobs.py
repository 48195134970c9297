"""Large rule edits run as background jobs (issue 21): sized first, applied in one
transaction through the membership service, the old membership standing until then."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from tests.factories import make_segment
from webapp import jobs as job_runner
from webapp.extensions import db
from webapp.models import AuditEntry, Member, MembershipEvent, Segment, SegmentJob
from webapp.services import segment_jobs
from webapp.services.membership import verify_all
from webapp.services.segments import SegmentError, save_segment

ROOT = Path(__file__).resolve().parents[2]
GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]
SILVER = [{"field": "tier", "operator": "equals", "value": "silver"}]


@pytest.fixture
def people(app):
    """12 gold and 8 silver members, a 'Gold' segment of the 12; jobs from 5 members."""
    app.config["SEGMENT_JOB_THRESHOLD"] = 5
    db.session.execute(insert(Member), [
        {"id": f"00000000-0000-4000-8000-{i:012d}", "external_id": f"J-{i}",
         "email": f"j{i}@example.com", "tier": "gold" if i < 12 else "silver"}
        for i in range(20)])
    db.session.commit()
    return make_segment("Gold", include=GOLD)


@pytest.fixture
def held(monkeypatch):
    """Jobs are recorded but not run (as while a worker has not picked them up yet)."""
    started: list[tuple] = []
    monkeypatch.setattr(job_runner, "enqueue", lambda path, *args: started.append(args))
    return started


def members_of(segment_id: int) -> set[str]:
    from webapp.models import SegmentMembership

    return set(db.session.scalars(select(SegmentMembership.member_id).where(
        SegmentMembership.segment_id == segment_id)))


def event_count(segment_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(MembershipEvent).where(
        MembershipEvent.segment_id == segment_id)) or 0


def test_a_small_edit_is_applied_at_once(people, app):
    app.config["SEGMENT_JOB_THRESHOLD"] = 50
    edit = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta")
    assert edit.job is None
    assert people.size == 8 and people.include == SILVER
    assert db.session.scalar(select(func.count()).select_from(SegmentJob)) == 0


def test_an_edit_sized_under_the_threshold_is_applied_from_the_sets_it_counted(people, app):
    """The program could move more than the threshold, this edit does not: it is sized and
    applied in one transaction, each set computed once, and no staging table is left."""
    app.config["SEGMENT_JOB_THRESHOLD"] = 25  # 20 members + 12 in the segment > 25
    before = event_count(people.id)
    edit = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta",
                                     expected_version=1)
    assert edit.job is None
    segment = db.session.get(Segment, people.id)
    assert segment.include == SILVER and segment.size == 8 and segment.version == 2
    assert event_count(people.id) == before + 20
    assert verify_all() == []
    if db.engine.dialect.name == "sqlite":
        assert db.session.execute(text(
            "SELECT count(*) FROM sqlite_temp_master WHERE type = 'table'")).scalar() == 0
    # A refused edit (a stale version) leaves the segment as it was.
    with pytest.raises(SegmentError) as info:
        segment_jobs.edit_segment({"include": GOLD}, segment=segment, actor="Ana",
                                  expected_version=1)
    assert "version" in info.value.errors
    assert db.session.get(Segment, people.id).include == SILVER


def test_the_estimate_is_the_set_difference(people):
    assert segment_jobs.estimate(people, {"kind": "dynamic", "include": SILVER,
                                          "exclude": []}) == (8, 12)
    assert segment_jobs.estimate(people, {"kind": "dynamic", "include": [], "exclude": []}) \
        == (8, 0)


def test_a_large_edit_runs_as_a_job_and_applies_everything(people):
    before = event_count(people.id)
    edit = segment_jobs.edit_segment({"include": SILVER, "name": "Silver"}, segment=people,
                                     actor="Marta", expected_version=1)
    job = edit.job
    assert job is not None and job.status == "done"  # JOBS_SYNC: run at once
    assert (job.to_add, job.to_remove, job.done) == (8, 12, 20)
    assert job.definition == {"kind": "dynamic", "include": SILVER, "exclude": []}
    assert job.started_at and job.finished_at and job.error is None
    segment = db.session.get(Segment, people.id)
    assert segment.name == "Silver" and segment.include == SILVER and segment.version == 2
    assert segment.size == 8 and len(members_of(segment.id)) == 8
    assert job.result == {"size_before": 12, "size": 8, "version": 2}
    assert event_count(segment.id) == before + 20
    assert verify_all() == []
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "segment.update"))
    assert entry.actor_label == "Marta" and entry.after["include"] == SILVER


def test_until_the_job_commits_the_old_membership_stands(people, held):
    gold = members_of(people.id)
    job = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta").job
    assert job.status == "queued" and held == [(job.id,)]
    segment = db.session.get(Segment, people.id)
    assert segment.include == GOLD and segment.version == 1 and segment.size == 12
    assert members_of(people.id) == gold
    assert segment_jobs.run_job(job.id) is True
    db.session.expire_all()
    assert db.session.get(SegmentJob, job.id).status == "done"
    assert db.session.get(Segment, people.id).include == SILVER
    assert len(members_of(people.id)) == 8


def test_a_second_edit_while_a_job_waits_is_refused(people, held):
    job = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta").job
    for change in ({"include": []}, {"name": "Renamed"}):
        with pytest.raises(SegmentError) as info:
            segment_jobs.edit_segment(change, segment=people, actor="Ana")
        message = info.value.errors["segment"]
        assert f"job #{job.id}" in message and "wait until it finishes" in message
    assert db.session.get(Segment, people.id).name == "Gold"
    segment_jobs.run_job(job.id)
    edit = segment_jobs.edit_segment({"name": "Renamed"}, segment=people, actor="Ana")
    assert edit.job is None and edit.segment.name == "Renamed"


def test_a_job_whose_segment_changed_meanwhile_fails_and_changes_nothing(people, held):
    job = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta").job
    # A writer outside the dashboard and the API (a script) saved in between.
    save_segment({"description": "touched"}, segment=people, actor="Script")
    events = event_count(people.id)
    assert segment_jobs.run_job(job.id) is False
    db.session.expire_all()
    job = db.session.get(SegmentJob, job.id)
    assert job.status == "failed" and "Nothing was changed" in job.error
    assert "version 1" in job.error
    segment = db.session.get(Segment, people.id)
    assert segment.include == GOLD and segment.size == 12 and segment.version == 2
    assert event_count(people.id) == events


def test_a_running_job_without_its_worker_is_interrupted_and_nothing_applied(people, held):
    gold = members_of(people.id)
    job = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta").job
    job.status = "running"  # its worker died: no runner lock is held for it
    db.session.commit()
    assert segment_jobs.active_job(people.id) is None
    db.session.expire_all()
    job = db.session.get(SegmentJob, job.id)
    assert job.status == "interrupted" and "nothing was changed" in job.error
    assert members_of(people.id) == gold
    assert db.session.get(Segment, people.id).include == GOLD
    # Nothing blocks the next edit, and a job that was interrupted never runs late.
    assert segment_jobs.run_job(job.id) is False
    edit = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta")
    assert edit.job is not None and edit.job.id != job.id


def test_a_job_that_never_started_is_interrupted_after_the_grace(people, held):
    job = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta").job
    assert segment_jobs.reap_stale() == 0  # just queued: its worker may pick it up yet
    job.created_at = job.created_at - segment_jobs.QUEUED_GRACE["thread"] * 2
    db.session.commit()
    assert segment_jobs.reap_stale() == 1
    assert db.session.get(SegmentJob, job.id).status == "interrupted"


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from sqlalchemy import event
from webapp import create_app
from webapp.extensions import db
from webapp.services.segment_jobs import run_job

url, job_id, marker, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
app = create_app({"SQLALCHEMY_DATABASE_URI": url, "JOBS_SYNC": True, "UPLOAD_FOLDER": folder})
with app.app_context():
    @event.listens_for(db.engine, "after_cursor_execute")
    def pause(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO MEMBERSHIP_EVENTS" in statement.upper():
            marker.write_text("events written, not committed")
            time.sleep(120)
    run_job(job_id)
    marker.write_text("finished")
"""


def test_a_killed_job_is_interrupted_and_changes_nothing(people, held, app, tmp_path):
    app.config["UPLOAD_FOLDER"] = str(tmp_path)
    gold, events = members_of(people.id), event_count(people.id)
    job = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta").job
    marker = tmp_path / "marker"
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, app.config["SQLALCHEMY_DATABASE_URI"],
         str(job.id), str(marker), str(tmp_path)], cwd=ROOT, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert marker.read_text() == "events written, not committed"
        db.session.expire_all()
        running = db.session.get(SegmentJob, job.id)
        assert running.status == "running"
        assert segment_jobs.reap_stale() == 0  # its worker is alive: left alone
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    db.session.expire_all()
    job = segment_jobs.get_job(job.id)
    assert job.status == "interrupted"
    assert members_of(people.id) == gold and event_count(people.id) == events
    segment = db.session.get(Segment, people.id)
    assert segment.include == GOLD and segment.size == 12 and segment.version == 1
    assert verify_all() == []


# --- the segment page ----------------------------------------------------------------------

HX = {"HX-Request": "true"}
SILVER_FORM = {"name": "Gold", "kind": "dynamic", "description": "", "url": "",
               "customer_segment_id": "", "version": "1", "include-0-field": "tier",
               "include-0-operator": "equals", "include-0-value": "silver"}


def test_the_edit_page_starts_a_job_and_the_segment_page_follows_it(people, held, client,
                                                                     auth):
    auth.login("marketer")
    response = client.post(f"/segments/{people.id}/edit", data=SILVER_FORM)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Applying the new definition of Gold in the background" in page
    assert "about +8 / −12 members" in page
    job = db.session.scalars(select(SegmentJob)).one()
    assert 'id="segment-job"' in page and "Applying definition:" in page
    assert "Tier is silver" in page or "tier is silver" in page.lower()
    assert f'hx-get="/segments/{people.id}/jobs/{job.id}"' in page
    assert 'hx-trigger="every 1s"' in page
    assert "0 of 20 members moved" in page
    assert f'href="/segments/{people.id}"' in page  # the refresh link works without JS
    assert "12" in page and db.session.get(Segment, people.id).size == 12

    fragment = client.get(f"/segments/{people.id}/jobs/{job.id}", headers=HX)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and body.lstrip().startswith('<section id="segment-job"')
    assert "Waiting to start" in body and "HX-Refresh" not in fragment.headers
    # Without htmx the URL leads to the segment page.
    assert client.get(f"/segments/{people.id}/jobs/{job.id}").status_code == 303

    # The editor says a change is being applied; a second edit is refused, naming the job.
    editor = client.get(f"/segments/{people.id}/edit").get_data(as_text=True)
    assert f"(job #{job.id}" in editor and "See its progress" in editor
    again = client.post(f"/segments/{people.id}/edit", data={**SILVER_FORM, "name": "X"})
    assert again.status_code == 422
    assert f"job #{job.id}" in again.get_data(as_text=True)

    segment_jobs.run_job(job.id)
    done = client.get(f"/segments/{people.id}/jobs/{job.id}", headers=HX)
    assert done.headers["HX-Refresh"] == "true"  # the page reloads with the new members
    assert "hx-trigger" not in done.get_data(as_text=True)  # polling stops
    page = client.get(f"/segments/{people.id}").get_data(as_text=True)
    assert "New definition applied" in page and "hx-trigger=\"every 1s\"" not in page


def test_an_interrupted_job_is_explained_on_the_segment_page(people, held, client, auth):
    auth.login("support")
    job = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta").job
    job.status = "running"
    db.session.commit()
    page = client.get(f"/segments/{people.id}").get_data(as_text=True)
    assert "Interrupted." in page and "nothing was changed" in page
    assert "Edit again" not in page  # support may not edit
    assert client.get(f"/segments/{people.id}/jobs/999", headers=HX).status_code == 404


def test_the_job_fragment_needs_a_signed_in_user(people, client):
    assert client.get(f"/segments/{people.id}/jobs/1", headers=HX).status_code in (302, 401)



@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"),
                    reason="set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/13) to test Redis")
def test_progress_of_a_worker_reaches_the_page_through_redis(people, held, app, client, auth,
                                                             tmp_path):
    """With RQ the job runs in a worker process and, on SQLite, holds the write lock: only
    Redis carries its progress to the web process (as for uploads)."""
    app.config["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    app.config["UPLOAD_FOLDER"] = str(tmp_path)
    auth.login("support")
    job = segment_jobs.edit_segment({"include": SILVER}, segment=people, actor="Marta").job
    job.status = "running"
    db.session.commit()
    with segment_jobs.runner(job.id, segment_jobs.RUNNER):  # its worker is alive
        progress = segment_jobs.JobProgress(job.id, maximum=job.total)
        progress.database = False  # as when SQLite is locked by the job itself
        progress.set(12)
        with segment_jobs._LIVE_LOCK:  # the web process does not share the worker's memory
            segment_jobs._LIVE.pop(job.id, None)
        assert segment_jobs.live_done(job) == 12
        body = client.get(f"/segments/{people.id}/jobs/{job.id}", headers=HX).get_data(
            as_text=True)
        assert "12 of 20 members moved" in body and "Adding the members who join" in body
        assert 'value="12"' in body
        progress.finish()
    assert segment_jobs.live_done(job) == 0
