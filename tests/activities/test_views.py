"""Activity import pages: roles, CSRF, dry run then apply, the line report and its CSV, bad
files as 422s naming the problem (never a 500)."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from tests.activities.helpers import HEADER, coffee_csv, coffee_segment, iso, stored
from tests.factories import make_member
from webapp.extensions import db
from webapp.models import ActivityImport, MembershipEvent

HX = {"HX-Request": "true"}


@pytest.fixture
def ana(app):
    return make_member(external_id="ANA", email="ana@example.com")


def post_file(client, content: bytes | str, *, name="activities.csv", headers=None, **extra):
    """POST a file to the import form."""
    data = content.encode() if isinstance(content, str) else content
    return client.post("/activities/imports", data={"file": (io.BytesIO(data), name), **extra},
                       headers=headers or {}, content_type="multipart/form-data")


def only_import() -> ActivityImport:
    db.session.expire_all()
    return db.session.scalars(select(ActivityImport)).one()


def test_navigation_and_empty_page(client, auth):
    auth.login("marketer")
    page = client.get("/activities/imports")
    assert page.status_code == 200
    assert b'href="/activities/imports"' in page.data  # the navigation entry
    assert b'id="import-form"' in page.data and b"No imports yet" in page.data
    assert b"properties.&lt;name&gt;" in page.data  # the columns are documented


def test_support_reads_but_cannot_import_or_apply(client, auth, ana, tmp_path):
    auth.login("marketer")
    post_file(client, coffee_csv("ANA", 1))
    item = only_import()
    auth.logout()
    auth.login("support")
    page = client.get("/activities/imports")
    assert page.status_code == 200 and b'id="import-form"' not in page.data
    assert client.get(f"/activities/imports/{item.id}").status_code == 200
    assert b"Record 1 activity" not in client.get(f"/activities/imports/{item.id}").data
    assert post_file(client, coffee_csv("ANA", 1, start=5)).status_code == 403
    assert client.post(f"/activities/imports/{item.id}/apply").status_code == 403
    assert client.post(f"/activities/imports/{item.id}/discard").status_code == 403
    assert stored() == 0


def test_dry_run_then_apply_moves_the_segment(client, auth, ana):
    segment = coffee_segment()
    auth.login("marketer")
    content = coffee_csv("ANA", 3) + f"ANA,purchase,{iso()},1.23456,bad,coffee\n"
    response = post_file(client, content)
    assert response.status_code == 303
    item = only_import()
    assert response.location.endswith(f"/activities/imports/{item.id}")
    page = client.get(response.location).get_data(as_text=True)
    assert re.search(r'data-count="recorded">3<', page)
    assert re.search(r'data-count="invalid">1<', page)
    assert "Nothing has been recorded yet" in page
    assert "amount has at most 4 decimal places" in page
    assert stored() == 0
    csv_response = client.get(f"/activities/imports/{item.id}/problems.csv")
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    assert csv_response.get_data(as_text=True).splitlines()[1].startswith(
        "5,bad,invalid,amount,amount has at most 4 decimal places")
    applied = client.post(f"/activities/imports/{item.id}/apply", headers=HX)
    assert applied.status_code == 200
    assert "Import applied." in applied.headers["HX-Trigger"]
    body = applied.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="import-status"') and "Applied." in body
    assert "Coffee regulars" in body and "+1" in body
    assert stored() == 3
    event = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.segment_id == segment.id)).one()
    assert (event.action, event.source) == ("ADD", "activity")
    again = client.post(f"/activities/imports/{item.id}/apply", headers=HX)
    assert again.status_code == 422 and b"already been applied" in again.data
    assert stored() == 3


def test_discard_records_nothing(client, auth, ana):
    auth.login("admin")
    post_file(client, coffee_csv("ANA", 2))
    item = only_import()
    response = client.post(f"/activities/imports/{item.id}/discard", follow_redirects=True)
    assert b"nothing was recorded" in response.data
    assert only_import().status == "discarded" and stored() == 0


@pytest.mark.parametrize(("content", "message"), [
    (b"", "The file is empty."),
    (b"PK\x03\x04\x14\x00\x06\x00binary", "Excel workbook"),
    ("member,type,occurred_at,external_id\nANA,visit,2026-01-01T00:00:00Z,é\n".encode("cp1252"),
     "is not valid UTF-8"),
    (b"member,when,type,external_id\nANA,x,visit,1\n", "is not a column of an activity"),
    (HEADER.encode(), "only a header row"),
])
def test_bad_files_are_a_422_naming_the_problem(client, auth, ana, content, message):
    auth.login("marketer")
    response = post_file(client, content, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="import-form"')
    assert message in body
    assert db.session.scalars(select(ActivityImport)).all() == []


def test_missing_file_and_too_large_file(client, auth, app, ana):
    auth.login("marketer")
    response = client.post("/activities/imports", data={}, content_type="multipart/form-data")
    assert response.status_code == 422 and b"Choose a CSV file to import." in response.data
    app.config["UPLOAD_MAX_BYTES"] = 1024
    response = post_file(client, coffee_csv("ANA", 30), headers=HX)
    assert response.status_code == 422 and b"; the limit is 1 KB." in response.data
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = post_file(client, coffee_csv("ANA", 60))
    assert response.status_code in (413, 422)
    assert b"larger than" in response.data or b"Too large" in response.data


def test_csrf_is_required_on_every_form(app, ana):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    from tests.conftest import Auth

    app.config["WTF_CSRF_ENABLED"] = False
    Auth(client).login("marketer")
    app.config["WTF_CSRF_ENABLED"] = True
    page = client.get("/activities/imports").get_data(as_text=True)
    assert 'name="csrf_token"' in page
    assert post_file(client, coffee_csv("ANA", 1)).status_code in (400, 422)
    assert db.session.scalars(select(ActivityImport)).all() == []
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = post_file(client, coffee_csv("ANA", 1), csrf_token=token)
    assert response.status_code == 303
    item = only_import()
    show = client.get(f"/activities/imports/{item.id}").get_data(as_text=True)
    for action in ("apply", "discard"):
        form = re.search(rf'<form method="post" action="/activities/imports/{item.id}/{action}"'
                         r'.*?</form>', show, re.S).group(0)
        assert 'name="csrf_token"' in form
    assert client.post(f"/activities/imports/{item.id}/apply").status_code in (400, 422)
    assert stored() == 0
    response = client.post(f"/activities/imports/{item.id}/apply", data={"csrf_token": token})
    assert response.status_code == 303 and stored() == 1
