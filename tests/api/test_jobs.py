"""The job resource: a PATCH or PUT whose rules move many members answers 202 with the job."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from tests.factories import make_segment
from webapp import jobs as job_runner
from webapp.extensions import db
from webapp.models import Member
from webapp.services import segment_jobs

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
    monkeypatch.setattr(job_runner, "enqueue", lambda path, *args: None)


def test_patch_answers_202_with_the_job_to_follow(people, held, api, api_as):
    response = api.patch(f"/segments/{people.id}", {"data": {
        "type": "segments", "attributes": {"include": SILVER, "version": 1}}})
    assert response.status_code == 202
    data = response.get_json()["data"]
    assert data["type"] == "jobs" and data["attributes"]["status"] == "queued"
    assert data["attributes"]["to_add"] == 8 and data["attributes"]["to_remove"] == 12
    assert data["attributes"]["definition"]["include"] == SILVER
    location = response.headers["Location"]
    assert location.endswith(f"/api/v1/jobs/{data['id']}")
    assert data["relationships"]["segment"]["data"] == {"type": "segments",
                                                       "id": str(people.id)}
    # The segment is unchanged until the job is done; a second change is refused (409).
    segment = api.get(f"/segments/{people.id}").get_json()["data"]["attributes"]
    assert segment["include"] == GOLD and segment["size"] == 12
    refused = api.patch(f"/segments/{people.id}", {"data": {
        "type": "segments", "attributes": {"name": "Other"}}})
    assert refused.status_code == 409
    assert f"job #{data['id']}" in refused.get_json()["errors"][0]["detail"]

    segment_jobs.run_job(int(data["id"]))
    job = api_as("support").get(f"/jobs/{data['id']}")
    assert job.status_code == 200
    attributes = job.get_json()["data"]["attributes"]
    assert attributes["status"] == "done" and attributes["done"] == 20
    assert attributes["percent"] == 100 and attributes["result"]["size"] == 8
    assert api.get(f"/segments/{people.id}").get_json()["data"]["attributes"]["size"] == 8


def test_put_answers_202_too_and_unknown_jobs_are_404(people, api):
    response = api.request("PUT", f"/segments/{people.id}", {"data": {
        "type": "segments", "attributes": {"name": "Silver", "kind": "dynamic",
                                           "include": SILVER}}})
    assert response.status_code == 202  # JOBS_SYNC: already done
    assert response.get_json()["data"]["attributes"]["status"] == "done"
    for missing in ("999", "abc", "0"):
        answer = api.get(f"/jobs/{missing}")
        assert answer.status_code == 404
        assert answer.get_json()["errors"][0]["code"] == "job_not_found"
