"""QA regressions: stale dry runs, formula cells in problems.csv, sizes after apply and undo,
the file-shape sentence, and who last changed the segment."""

from __future__ import annotations

import csv
import io

import pytest

from tests.factories import add_to_list, make_member, make_segment, make_user
from tests.uploads.helpers import dry_run, list_ids, upload_and_apply, write
from webapp.extensions import db
from webapp.models import Segment, Upload
from webapp.services import uploads as service

HX = {"HX-Request": "true"}


@pytest.fixture
def people(app):
    """Five members."""
    return [make_member(external_id=f"Q-{i}", email=f"qa{i}@example.com") for i in range(5)]


@pytest.fixture
def static(app):
    """An empty static segment."""
    return make_segment("QA list", kind="static")


def _reload(upload: Upload) -> Upload:
    db.session.expire_all()
    return db.session.get(Upload, upload.id)


def test_older_dry_run_is_recomputed_instead_of_applied(tmp_path, people, static):
    first = dry_run(static, write(tmp_path, "\n".join(p.email for p in people[:3]), "a.txt"))
    assert first.report["effect"]["added"] == 3
    assert not service.is_stale(first)
    upload_and_apply(static, write(tmp_path, "\n".join(p.email for p in people[:2]), "b.txt"))
    first = _reload(first)
    assert service.is_stale(first)

    with pytest.raises(service.StaleReport, match="list changed since this dry run"):
        service.request_apply(first)
    first = _reload(first)
    assert first.status == "ready"
    assert first.report["effect"] == {"added": 1, "removed": 0, "unchanged": 2, "new_size": 3}
    assert list_ids(static.id) == {people[0].id, people[1].id}
    assert not service.is_stale(first)

    service.request_apply(first)
    first = _reload(first)
    assert first.status == "applied" and first.report["applied"]["added"] == 1


def test_apply_refuses_numbers_the_list_no_longer_matches(tmp_path, people, static):
    for p in people:
        add_to_list(static, p)
    upload = dry_run(static, write(tmp_path, people[0].email), "replace")
    assert upload.report["effect"]["removed"] == 4
    # The list changes after the page was checked but before the job takes the lock.
    upload.status = "applying"
    db.session.commit()
    from webapp.services.membership import Cause, apply_delta

    apply_delta(db.session.get(Segment, static.id), remove=[people[4].id], via="list",
                cause=Cause("static_list", "test", {}))
    db.session.commit()

    assert service.run_apply(upload.id) is False
    upload = _reload(upload)
    assert upload.status == "ready" and "list changed" in upload.error
    assert upload.report["effect"]["removed"] == 3 and upload.report["current_size"] == 4
    assert len(list_ids(static.id)) == 4
    service.request_apply(upload)
    upload = _reload(upload)
    assert upload.status == "applied" and upload.error is None
    assert list_ids(static.id) == {people[0].id}


def test_stale_report_is_marked_and_can_be_run_again(client, auth, tmp_path, people, static):
    auth.login("marketer")
    first = dry_run(static, write(tmp_path, "\n".join(p.email for p in people[:3]), "a.txt"))
    url = f"/segments/{static.id}/uploads/{first.id}"
    assert b"Out of date" not in client.get(url).data
    add_to_list(static, people[0], people[4])

    page = client.get(url).get_data(as_text=True)
    assert "Out of date" in page and "Run the dry run again" in page and "Apply:" not in page
    refused = client.post(f"{url}/apply", headers=HX)
    assert refused.status_code == 422 and b"list changed since this dry run" in refused.data
    assert b'data-count="added">+2<' in refused.data
    assert list_ids(static.id) == {people[0].id, people[4].id}

    add_to_list(static, people[1])
    again = client.post(f"{url}/recheck", headers=HX)
    assert again.status_code == 200 and b'data-count="added">+1<' in again.data
    assert b"Out of date" not in again.data and b"Apply: +1 / \xe2\x88\x920" in again.data
    assert client.post(f"{url}/recheck").status_code == 303


def test_problem_csv_neutralises_formulas(client, auth, tmp_path, people, static):
    auth.login("marketer")
    evil = ['=HYPERLINK("http://evil")', "+cmd", "@SUM(1)", "-x"]
    upload = dry_run(static, write(tmp_path, "\n".join([people[0].email, *evil]), "e.txt"))
    response = client.get(f"/segments/{static.id}/uploads/{upload.id}/problems.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    response.close()
    assert [row[1] for row in rows[1:]] == ["'" + value for value in evil]
    assert service.spreadsheet_safe("\tx") == "'\tx" and service.spreadsheet_safe(5) == 5


def test_applied_page_shows_size_after_and_before(client, auth, tmp_path, people, static):
    auth.login("marketer")
    add_to_list(static, people[0])
    upload = upload_and_apply(static, write(tmp_path, f"{people[1].email}\n{people[2].email}"))
    page = client.get(f"/segments/{static.id}/uploads/{upload.id}").get_data(as_text=True)
    assert 'class="new-size">3<' in page and "was 1 ·" in page and "now 1" not in page


def test_undo_leads_to_its_page_with_the_size_after(client, auth, tmp_path, people, static):
    auth.login("marketer")
    add_to_list(static, people[0])
    upload = upload_and_apply(static, write(tmp_path, f"{people[1].email}\n{people[2].email}"))
    response = client.post(f"/segments/{static.id}/uploads/{upload.id}/undo")
    undo = db.session.query(Upload).filter_by(mode="undo").one()
    assert response.status_code == 303
    assert response.location.endswith(f"/segments/{static.id}/uploads/{undo.id}")
    page = client.get(response.location).get_data(as_text=True)
    assert "The list now has\n      <strong>1</strong> members" in page


def test_file_shape_sentence_reads_well(client, auth, tmp_path, people, static):
    auth.login("marketer")
    one = dry_run(static, write(tmp_path, people[0].email, "one.txt"))
    page = client.get(f"/segments/{static.id}/uploads/{one.id}").get_data(as_text=True)
    assert "· one value per line ·" in " ".join(page.split())
    assert "line separated" not in page
    two = dry_run(static, write(tmp_path, f"email,x\n{people[0].email},1\n", "two.csv"))
    page = client.get(f"/segments/{static.id}/uploads/{two.id}").get_data(as_text=True)
    assert "comma-separated values" in page


def test_apply_and_undo_record_who_changed_the_segment(tmp_path, people, static):
    user = make_user(role="marketer")
    version = static.version
    upload = service.create_upload(static, stored_path=write(tmp_path, people[0].email),
                                   filename="list.csv", mode="add", actor_label="Mia Marketer",
                                   actor_id=user.id)
    service.run_dry_run(upload.id)
    service.request_apply(_reload(upload))
    segment = db.session.get(Segment, static.id)
    assert (segment.updated_by_label, segment.updated_by_id) == ("Mia Marketer", user.id)
    assert segment.version == version
    stamp = segment.updated_at

    service.request_undo(_reload(upload), actor_label="Otto Admin", actor_id=None)
    db.session.expire_all()
    segment = db.session.get(Segment, static.id)
    assert (segment.updated_by_label, segment.updated_by_id) == ("Otto Admin", None)
    assert segment.updated_at >= stamp and segment.version == version


def test_problem_files_written_before_the_fix_are_served_safely(client, auth, tmp_path, people,
                                                                static):
    auth.login("support")
    upload = dry_run(static, write(tmp_path, f"{people[0].email}\nghost\n", "p.txt"))
    old = service.problems_path(upload)
    old.write_text('line,identifier,problem,detail\n2,"=HYPERLINK(""x"")",unknown_member,d\n'
                   "3,'+safe,unknown_member,d\n", encoding="utf-8")
    response = client.get(f"/segments/{static.id}/uploads/{upload.id}/problems.csv")
    assert response.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["line", "identifier", "problem", "detail"]
    assert [row[1] for row in rows[1:]] == ["'=HYPERLINK(\"x\")", "'+safe"]
