"""The job resource: a PATCH or PUT whose rules move many members answers 202 with the job."""

from __future__ import annotations

from tests.segments import test_jobs as segment_job_tests
from tests.segments.test_jobs import GOLD, SILVER
from webapp.services import segment_jobs

# The segment job tests' fixtures: 20 members, a 'Gold' segment, jobs from 5 members.
people = segment_job_tests.people
held = segment_job_tests.held


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
