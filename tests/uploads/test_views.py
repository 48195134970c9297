"""Upload pages: roles, the form's 422s, fragments vs full pages, apply, problems CSV, undo."""

from __future__ import annotations

import io

import pytest

from tests.factories import add_to_list, make_member, make_segment
from tests.uploads.helpers import list_ids
from webapp.extensions import db
from webapp.models import Upload

HX = {"HX-Request": "true"}


@pytest.fixture
def people(app):
    """Four members."""
    return [make_member(external_id=f"V-{i}", email=f"view{i}@example.com") for i in range(4)]


@pytest.fixture
def static(app):
    """An empty static segment."""
    return make_segment("Newsletter", kind="static")


def post_file(client, segment, content: bytes | str, *, name: str = "list.csv",
              mode: str = "add", headers=None, **fields):
    """POST a file to the upload form."""
    data = content.encode() if isinstance(content, str) else content
    form = {"file": (io.BytesIO(data), name), "mode": mode, "header": "auto", **fields}
    return client.post(f"/segments/{segment.id}/uploads", data=form, headers=headers or {},
                       content_type="multipart/form-data")


def test_page_full_and_history_fragment(client, auth, static):
    auth.login("marketer")
    page = client.get(f"/segments/{static.id}/uploads")
    assert page.status_code == 200
    assert b"<html" in page.data and b'id="upload-form"' in page.data
    assert b"No uploads yet" in page.data
    fragment = client.get(f"/segments/{static.id}/uploads/history", headers=HX)
    assert fragment.status_code == 200
    assert fragment.data.lstrip().startswith(b'<section class="card" id="upload-history"')
    assert b"<html" not in fragment.data
    full = client.get(f"/segments/{static.id}/uploads/history")
    assert b"<html" in full.data and b'id="upload-history"' in full.data


def test_support_reads_but_cannot_upload(client, auth, static, people):
    auth.login("support")
    page = client.get(f"/segments/{static.id}/uploads")
    assert page.status_code == 200 and b'id="upload-form"' not in page.data
    response = post_file(client, static, people[0].email)
    assert response.status_code == 403
    assert list_ids(static.id) == set()


def test_missing_file_is_422_fragment_and_full_page(client, auth, static):
    auth.login("marketer")
    response = client.post(f"/segments/{static.id}/uploads", data={"mode": "add"},
                           headers=HX, content_type="multipart/form-data")
    assert response.status_code == 422
    assert response.data.lstrip().startswith(b'<form id="upload-form"')
    assert b"Choose a file to upload." in response.data
    response = client.post(f"/segments/{static.id}/uploads", data={"mode": "add"},
                           content_type="multipart/form-data")
    assert response.status_code == 422 and b"<html" in response.data
    assert b"Choose a file to upload." in response.data


@pytest.mark.parametrize(("content", "message"), [
    (b"", b"The file is empty."),
    (b"\n\r\n  \n", b"only blank lines"),
    (b"email\n", b"only a header row"),
    (b"PK\x03\x04\x14\x00\x06\x00binary", b"Excel workbook"),
    (b"\x00\x01\x02\x03ab", b"not text"),
    ("caf\u00e9@example.com\n".encode("latin-1"),
     b"Line 1, column 4: byte 0xE9 is not valid UTF-8"),
    (b'[{"email": "a@example.com"}]', b"looks like JSON"),
    (b"<html><body>hi</body></html>", b"looks like HTML"),
])
def test_unreadable_files_get_a_clear_422(client, auth, static, content, message):
    auth.login("marketer")
    response = post_file(client, static, content, headers=HX)
    assert response.status_code == 422
    assert message in response.data, response.data
    assert db.session.query(Upload).count() == 0


def test_too_large_file(client, auth, app, static):
    auth.login("marketer")
    app.config["UPLOAD_MAX_BYTES"] = 1024
    response = post_file(client, static, "a@example.com\n" * 200, headers=HX)
    assert response.status_code == 422
    assert b"the limit is" in response.data


def test_too_large_request_is_refused_clearly(client, auth, app, static):
    auth.login("marketer")
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = post_file(client, static, "a@example.com\n" * 500)
    assert response.status_code in (413, 422)
    assert b"larger than" in response.data or b"Too large" in response.data


def test_dynamic_segment_refused(client, auth, people):
    dynamic = make_segment("Everyone", kind="dynamic")
    auth.login("marketer")
    page = client.get(f"/segments/{dynamic.id}/uploads")
    assert b"is a dynamic segment" in page.data and b'id="upload-form"' not in page.data
    response = post_file(client, dynamic, people[0].email)
    assert response.status_code == 422 and b"is a dynamic segment" in response.data
    fragment = post_file(client, dynamic, people[0].email, headers=HX)
    assert fragment.status_code == 422
    assert b"Only static segments take uploaded lists" in fragment.data
    assert db.session.query(Upload).count() == 0


def test_upload_report_apply_and_undo(client, auth, static, people):
    auth.login("marketer")
    add_to_list(static, people[0])
    content = f"email\n{people[0].email}\n{people[1].email}\nghost@example.com\n{people[1].email}\n"
    response = post_file(client, static, content)
    assert response.status_code == 303
    upload = db.session.query(Upload).one()
    assert response.location.endswith(f"/segments/{static.id}/uploads/{upload.id}")
    page = client.get(response.location)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-count="added">+1<' in text and 'data-count="unknown">1<' in text
    assert 'data-count="duplicates">1<' in text and 'data-count="on_list">1<' in text
    assert "Nothing has changed yet" in text
    assert list_ids(static.id) == {people[0].id}

    problems = client.get(f"/segments/{static.id}/uploads/{upload.id}/problems.csv")
    assert problems.status_code == 200 and problems.mimetype == "text/csv"
    lines = problems.get_data(as_text=True).splitlines()
    problems.close()
    assert lines == [
        "line,identifier,problem,detail",
        "4,ghost@example.com,unknown_member,"
        "\"no member has this member id, external id or email\"",
        "5,view1@example.com,duplicate,same member as line 3"]

    fragment = client.post(f"/segments/{static.id}/uploads/{upload.id}/apply", headers=HX)
    assert fragment.status_code == 200
    assert fragment.data.lstrip().startswith(b'<div id="upload-status"')
    assert "showMessage" in fragment.headers["HX-Trigger"]
    assert b"Applied." in fragment.data
    assert list_ids(static.id) == {people[0].id, people[1].id}

    again = client.post(f"/segments/{static.id}/uploads/{upload.id}/apply", headers=HX)
    assert again.status_code == 422 and b"already been applied" in again.data

    history = client.get(f"/segments/{static.id}/uploads/history", headers=HX)
    assert b"Undo" in history.data and b"list.csv" in history.data
    undo = client.post(f"/segments/{static.id}/uploads/{upload.id}/undo", headers=HX)
    undo_row = db.session.query(Upload).filter_by(mode="undo").one()
    assert undo.status_code == 204
    assert undo.headers["HX-Redirect"].endswith(f"/uploads/{undo_row.id}")
    assert list_ids(static.id) == {people[0].id}
    undo_again = client.post(f"/segments/{static.id}/uploads/{upload.id}/undo", headers=HX)
    assert undo_again.status_code == 422 and b"Only the latest" in undo_again.data


def test_apply_without_htmx_redirects(client, auth, static, people):
    auth.login("admin")
    post_file(client, static, people[2].external_id, name="one.txt")
    upload = db.session.query(Upload).one()
    response = client.post(f"/segments/{static.id}/uploads/{upload.id}/apply")
    assert response.status_code == 303
    assert list_ids(static.id) == {people[2].id}
    page = client.get(response.location)
    assert b"the list now has" in page.data


def test_htmx_upload_redirects_with_hx_redirect(client, auth, static, people):
    auth.login("marketer")
    response = post_file(client, static, people[0].email, headers=HX)
    assert response.status_code == 204
    upload = db.session.query(Upload).one()
    assert response.headers["HX-Redirect"].endswith(f"/uploads/{upload.id}")


def test_progress_block_polls_while_running(client, auth, static, people):
    auth.login("support")
    upload = Upload(segment_id=static.id, filename="big.csv", mode="add", status="applying",
                    report={}, progress=420, total=1000, actor_label="Someone")
    db.session.add(upload)
    db.session.commit()
    fragment = client.get(f"/segments/{static.id}/uploads/{upload.id}", headers=HX)
    assert fragment.status_code == 200
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="upload-status"')
    assert 'hx-trigger="every 1s"' in body and 'value="420"' in body
    assert "Reading the file" in body
    full = client.get(f"/segments/{static.id}/uploads/{upload.id}")
    assert b"<html" in full.data and b"You can leave this page" in full.data


def test_upload_of_another_segment_is_404(client, auth, static, people):
    auth.login("marketer")
    other = make_segment("Other", kind="static")
    post_file(client, static, people[0].email)
    upload = db.session.query(Upload).one()
    assert client.get(f"/segments/{other.id}/uploads/{upload.id}").status_code == 404
    assert client.get("/segments/999/uploads").status_code == 404


def test_discard(client, auth, static, people):
    auth.login("marketer")
    post_file(client, static, people[0].email)
    upload = db.session.query(Upload).one()
    response = client.post(f"/segments/{static.id}/uploads/{upload.id}/discard")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Upload, upload.id).status == "discarded"
    assert list_ids(static.id) == set()


LONG_NOTE = "n" * 140_000  # over Python csv's 128 KiB field limit
ROWS = "".join(f"view{i}@example.com,ok\n" for i in range(4))


@pytest.mark.parametrize(("content", "where"), [
    (f"email,note\n{ROWS}view0@example.com,{LONG_NOTE}\n", b"Line 6, column 19"),
    # past the part of the file read before the dry run, and a quote never closed
    # (kept under 500 KB, past which the test client spools the body to a file it never closes)
    ("email,note\n" + ROWS * 100 + 'view1@example.com,"oops\n' + ROWS * 2_000,
     b"Line 402, column 19"),
], ids=["long-note", "unclosed-quote-late"])
def test_a_field_over_128_kib_gets_a_clear_422(client, auth, static, people, caplog,
                                                content, where):
    """The dry run refuses the file with the line and column, logs no traceback, keeps nothing."""
    auth.login("marketer")
    response = post_file(client, static, content, headers=HX)
    assert response.status_code == 422
    assert where in response.data and b"(note) is longer than 131,072 characters" in \
        response.data, response.data[-2000:]
    assert not [r for r in caplog.records if r.exc_info]
    assert db.session.query(Upload).count() == 0 and list_ids(static.id) == set()
