"""The upload pipeline: dry-run counts, modes, events, limit, undo, serialization."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import add_to_list, make_member, make_segment
from tests.uploads.helpers import dry_run, events, list_ids, upload_and_apply, write
from webapp.extensions import db
from webapp.models import AuditEntry, Segment, Upload
from webapp.services import uploads as service
from webapp.timeutil import utcnow


@pytest.fixture
def people(app):
    """Six members with predictable identifiers."""
    return [make_member(external_id=f"C-{i}", email=f"person{i}@example.com")
            for i in range(6)]


@pytest.fixture
def static(app):
    """An empty static segment."""
    return make_segment("VIP list", kind="static")


def test_messy_file_dry_run_counts_and_changes_nothing(tmp_path, people, static):
    add_to_list(static, people[0])
    content = ("\ufeffEmail,Name\r\n"
               f"{people[0].email},already\r\n"
               f"  {people[1].email.upper()}  ,padded upper case\r\n"
               "\r\n"
               f'"{people[2].email}","quoted, with comma"\r\n'
               "nobody@example.com,unknown\r\n"
               f"{people[1].email},duplicate\r\n"
               ",no identifier\r\n"
               f"{'x' * 400}@example.com,too long\r\n")
    upload = dry_run(static, write(tmp_path, content))
    report = upload.report
    assert upload.status == "ready"
    assert report["column"]["label"] == "Email" and report["column"]["detected_by"] == "header"
    assert report["file"]["bom"] is True and report["file"]["line_endings"] == "CRLF"
    assert (report["rows"], report["valid"], report["invalid"]) == (7, 5, 2)
    assert (report["unknown"], report["duplicates"], report["distinct"]) == (1, 1, 3)
    assert report["on_list"] == 1
    assert report["effect"] == {"added": 2, "removed": 0, "unchanged": 1, "new_size": 3}
    problems = [(p["line"], p["problem"]) for p in report["problems"]]
    assert problems == [(6, "unknown_member"), (7, "duplicate"), (8, "invalid"),
                        (9, "invalid")]
    assert report["problems"][1]["detail"] == "same member as line 3"
    assert "Email" in report["problems"][2]["detail"]
    assert list_ids(static.id) == {people[0].id}
    assert len(events(static.id)) == 1


def test_add_applies_with_events_carrying_the_upload(tmp_path, people, static):
    upload = upload_and_apply(static, write(tmp_path, "\n".join(
        [people[0].id, people[1].external_id, people[2].email])))
    assert upload.status == "applied", upload.error
    assert upload.report["applied"] == {"added": 3, "removed": 0, "size": 3}
    assert list_ids(static.id) == {p.id for p in people[:3]}
    assert sorted(events(static.id)) == sorted(("ADD", p.id, upload.id) for p in people[:3])
    db.session.expire_all()
    assert db.session.get(Segment, static.id).size == 3
    audit = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "membership.change")).all()
    assert audit[-1].actor_label == "Tester" and audit[-1].after["filename"] == "list.csv"


def test_remove_mode(tmp_path, people, static):
    add_to_list(static, *people[:4])
    upload = upload_and_apply(static, write(tmp_path, f"{people[1].email}\n{people[5].email}\n"),
                              "remove")
    assert upload.report["effect"]["removed"] == 1
    assert upload.report["problem_counts"] == {"not_on_list": 1}
    assert list_ids(static.id) == {people[0].id, people[2].id, people[3].id}
    assert events(static.id)[-1] == ("REMOVE", people[1].id, upload.id)


def test_replace_mode_events(tmp_path, people, static):
    add_to_list(static, *people[:3])
    before = len(events(static.id))
    upload = upload_and_apply(static, write(
        tmp_path, "external_id\n" + "\n".join(p.external_id for p in people[2:5])), "replace")
    assert upload.report["effect"] == {"added": 2, "removed": 2, "unchanged": 1, "new_size": 3}
    assert list_ids(static.id) == {p.id for p in people[2:5]}
    new = events(static.id)[before:]
    assert sorted(new) == sorted([("REMOVE", people[0].id, upload.id),
                                  ("REMOVE", people[1].id, upload.id),
                                  ("ADD", people[3].id, upload.id),
                                  ("ADD", people[4].id, upload.id)])


def test_replace_with_no_known_member_is_refused(tmp_path, people, static):
    add_to_list(static, *people[:2])
    upload = dry_run(static, write(tmp_path, "ghost@example.com\n"), "replace")
    assert upload.report["refusal"] == "No row names a known member, so there is nothing to apply."
    with pytest.raises(service.UploadError):
        service.request_apply(upload)
    assert list_ids(static.id) == {people[0].id, people[1].id}


def test_member_limit_says_how_many_over(tmp_path, app, people, static):
    app.config["LIMIT_STATIC_MEMBERS"] = 3
    add_to_list(static, *people[:2])
    upload = dry_run(static, write(tmp_path, "\n".join(p.email for p in people[2:6])))
    assert upload.report["refusal"] == ("The list would have 6 members; the limit per static "
                                        "segment is 3, so this upload is 3 over.")
    with pytest.raises(service.UploadError, match="3 over"):
        service.request_apply(upload)
    assert len(list_ids(static.id)) == 2


def test_apply_rechecks_the_limit_when_the_list_grew(tmp_path, app, people, static):
    app.config["LIMIT_STATIC_MEMBERS"] = 3
    upload = dry_run(static, write(tmp_path, "\n".join(p.email for p in people[:3])))
    assert upload.report["refusal"] is None
    add_to_list(static, people[5])
    with pytest.raises(service.StaleReport):
        service.request_apply(upload)
    db.session.expire_all()
    upload = db.session.get(Upload, upload.id)
    assert upload.status == "ready" and "1 over" in upload.report["refusal"]
    with pytest.raises(service.UploadError, match="1 over"):
        service.request_apply(upload)
    assert list_ids(static.id) == {people[5].id}


def test_dynamic_segment_is_refused(tmp_path, people):
    dynamic = make_segment("Gold", kind="dynamic")
    with pytest.raises(service.UploadError, match="dynamic segment"):
        service.create_upload(dynamic, stored_path=write(tmp_path, "x\n"), filename="x.csv",
                              mode="add", actor_label="T")


def test_undo_restores_the_list_with_its_own_events(tmp_path, people, static):
    add_to_list(static, *people[:3])
    first = upload_and_apply(static, write(tmp_path, "\n".join(p.id for p in people[2:5]),
                                           "a.csv"), "replace")
    assert list_ids(static.id) == {p.id for p in people[2:5]}
    undo = service.request_undo(first, actor_label="Undoer")
    db.session.expire_all()
    undo = db.session.get(Upload, undo.id)
    assert undo.status == "applied" and undo.mode == "undo", undo.error
    assert list_ids(static.id) == {p.id for p in people[:3]}
    undo_events = [e for e in events(static.id) if e[2] == undo.id]
    assert sorted(undo_events) == sorted([("ADD", people[0].id, undo.id),
                                          ("ADD", people[1].id, undo.id),
                                          ("REMOVE", people[3].id, undo.id),
                                          ("REMOVE", people[4].id, undo.id)])
    assert db.session.get(Upload, first.id).undone_at is not None
    with pytest.raises(service.UploadError):
        service.request_undo(first, actor_label="Again")


def test_only_the_latest_upload_can_be_undone(tmp_path, people, static):
    first = upload_and_apply(static, write(tmp_path, people[0].email, "a.csv"))
    second = upload_and_apply(static, write(tmp_path, people[1].email, "b.csv"))
    with pytest.raises(service.UploadError, match="latest"):
        service.request_undo(first, actor_label="T")
    service.request_undo(second, actor_label="T")
    assert list_ids(static.id) == {people[0].id}
    service.request_undo(db.session.get(Upload, first.id), actor_label="T")
    assert list_ids(static.id) == set()


def test_column_chosen_by_content_without_header(tmp_path, people, static):
    content = "\n".join(f"row{i};{p.external_id};note" for i, p in enumerate(people[:3]))
    upload = dry_run(static, write(tmp_path, content))
    assert upload.report["file"]["delimiter"] == ";"
    assert upload.report["column"] == {"index": 1, "label": "column 2",
                                       "detected_by": "content"}
    assert upload.report["distinct"] == 3


def test_column_chosen_by_the_user(tmp_path, people, static):
    content = "email,external_id\n" + "\n".join(f"x{i}@nowhere.test,{p.external_id}"
                                                for i, p in enumerate(people[:2]))
    upload = dry_run(static, write(tmp_path, content), column="external_id")
    assert upload.report["column"]["label"] == "external_id"
    assert upload.report["distinct"] == 2
    upload = dry_run(static, write(tmp_path, content, "b.csv"), column="9")
    assert upload.status == "rejected" and "Column 9 does not exist" in upload.error


def test_a_second_apply_waits_for_the_first(tmp_path, people, static):
    """Two applies to one segment never interleave: the later one runs after the first."""
    first = dry_run(static, write(tmp_path, "\n".join(p.id for p in people[:3]), "a.csv"))
    second = dry_run(static, write(tmp_path, "\n".join(p.id for p in people[3:]), "b.csv"),
                     "replace")
    first.status = "applying"
    db.session.commit()
    with pytest.raises(service.UploadError, match=f"Upload #{first.id}"):
        service.request_apply(second)
    first.status = "ready"
    db.session.commit()
    service.request_apply(first)
    with pytest.raises(service.StaleReport):  # its dry run predates the first's changes
        service.request_apply(second)
    db.session.expire_all()
    service.request_apply(db.session.get(Upload, second.id))
    assert list_ids(static.id) == {p.id for p in people[3:]}


def test_an_upload_whose_job_died_does_not_block_the_segment(tmp_path, people, static):
    dead = Upload(segment_id=static.id, filename="dead.csv", mode="add", status="applying",
                  report={"started_at": (utcnow() - timedelta(hours=3)).isoformat()},
                  actor_label="Gone")
    db.session.add(dead)
    db.session.commit()
    upload = upload_and_apply(static, write(tmp_path, people[0].email))
    assert upload.status == "applied"
    db.session.expire_all()
    dead = db.session.get(Upload, dead.id)
    assert dead.status == "interrupted" and "nothing was changed" in dead.error
    assert not Path(upload.stored_path).exists()


def test_concurrent_applies_are_serialized_never_interleaved(app, tmp_path, people, static,
                                                             monkeypatch):
    """B starts while A holds the segment lock mid-transaction: B waits, then reads the list
    as A left it; its dry run no longer holds, so it goes back for review, then applies."""
    import threading

    first = dry_run(static, write(tmp_path, "\n".join(p.id for p in people[:3]), "a.csv"))
    second = dry_run(static, write(tmp_path, "\n".join(p.id for p in people[2:]), "b.csv"),
                     "replace")
    for upload in (first, second):
        upload.status = "applying"
    db.session.commit()
    first_id, second_id = first.id, second.id
    a_inside, order = threading.Event(), []
    original = service.apply_delta

    def slow_apply_delta(segment, **kw):
        delta = original(segment, **kw)
        if kw["cause"].upload_id == first_id:
            a_inside.set()
            time.sleep(1.0)
        order.append(kw["cause"].upload_id)
        return delta

    monkeypatch.setattr(service, "apply_delta", slow_apply_delta)

    outcomes = {}

    def run(upload_id):
        with app.app_context():
            outcomes[upload_id] = service.run_apply(upload_id)

    thread_a = threading.Thread(target=run, args=(first_id,))
    thread_a.start()
    assert a_inside.wait(30)
    thread_b = threading.Thread(target=run, args=(second_id,))
    thread_b.start()
    thread_a.join(60)
    thread_b.join(60)
    assert outcomes == {first_id: True, second_id: False}
    assert order == [first_id]
    db.session.expire_all()
    second = db.session.get(Upload, second_id)
    assert second.status == "ready" and second.report["current_size"] == 3  # after A
    service.request_apply(second)
    assert order == [first_id, second_id]
    db.session.expire_all()
    ids = [e[2] for e in events(static.id)]
    assert ids == sorted(ids, key=lambda u: (u != first_id, u))  # all of A's, then all of B's
    assert list_ids(static.id) == {p.id for p in people[2:]}
    assert db.session.get(Upload, second_id).report["applied"] == {
        "added": 3, "removed": 2, "size": 4}


def test_identifiers_are_tried_as_member_id_then_external_id_then_email(tmp_path, static):
    """SPEC section 6: the same text can name one member by id and another by external id
    (or by external id and by email); the earlier kind wins, on every database."""
    by_id = make_member(external_id="ID-OWNER")
    shadow = make_member(external_id=by_id.id)
    by_ext = make_member(external_id="taken@example.com")
    by_email = make_member(external_id="MAIL-OWNER", email="taken@example.com")
    other = make_member(external_id="E-1", email="plain@example.com")
    path = write(tmp_path, f"{by_id.id}\ntaken@example.com\nPLAIN@Example.com\nnobody\n")
    upload = upload_and_apply(static, path)
    assert upload.status == "applied", upload.error
    assert list_ids(static.id) == {by_id.id, by_ext.id, other.id}
    assert shadow.id not in list_ids(static.id) and by_email.id not in list_ids(static.id)
    assert upload.report["unknown"] == 1 and upload.report["distinct"] == 3
