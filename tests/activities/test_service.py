"""Activity imports, the service: the dry run's counts and line report, apply in one
transaction (segments with activity criteria move, with events), bad files refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.activities.helpers import (
    HEADER,
    coffee_csv,
    coffee_segment,
    iso,
    stored,
    write,
)
from tests.factories import make_member
from webapp.extensions import db
from webapp.models import Activity, ActivityImport, MembershipEvent
from webapp.services import activity_imports as service


@pytest.fixture
def ana(app):
    return make_member(external_id="ANA", email="ana@example.com")


def run(tmp_path, content, *, apply=False):
    """Create an import of this content, run its dry run (and apply); the refreshed row."""
    path = write(tmp_path, content)
    item = service.create(stored_path=path, filename=path.name, actor_label="Tester")
    service.run_check(item.id)
    if apply:
        db.session.expire_all()
        service.request_apply(db.session.get(ActivityImport, item.id))
    db.session.expire_all()
    return db.session.get(ActivityImport, item.id)


def test_dry_run_counts_and_line_report_change_nothing(tmp_path, ana):
    content = (HEADER
               + f"ANA,purchase,{iso()},4.5,t1,coffee\n"
               + f"ana@example.com,purchase,{iso()},1.23456,t2,tea\n"
               + f"NOBODY,visit,{iso()},,t3,\n"
               + f"ANA,purchase,{iso()},4.5,t1,coffee\n"
               + "\n"
               + "ANA,visit,yesterday,,t4,\n")
    item = run(tmp_path, content)
    assert item.status == "ready", item.error
    report = item.report
    assert report["counts"] == {"recorded": 1, "duplicate": 1, "invalid": 3}
    assert report["rows"] == 5 and item.rows == 5
    lines = [(p["line"], p["column"], p["problem"]) for p in report["problems"]]
    assert lines == [(3, "amount", "invalid"), (4, "member", "invalid"),
                     (5, "external_id", "duplicate"), (7, "occurred_at", "invalid")]
    assert "amount has at most 4 decimal places" in report["problems"][0]["detail"]
    assert "also on line 2" in report["problems"][2]["detail"]
    assert stored() == 0
    problems = service.problems_path(item).read_text().splitlines()
    assert problems[0] == "line,external_id,problem,column,detail"
    assert problems[1].startswith("3,t2,invalid,amount,amount has at most 4 decimal places")


def test_apply_records_in_one_transaction_and_moves_the_segment(tmp_path, ana):
    segment = coffee_segment()
    assert segment.size == 0
    item = run(tmp_path, coffee_csv("ANA", 3), apply=True)
    assert item.status == "applied", item.error
    assert item.report["applied"]["counts"] == {"recorded": 3, "duplicate": 0, "invalid": 0}
    assert item.report["applied"]["segments"] == [
        {"segment_id": segment.id, "name": "Coffee regulars", "added": 1, "removed": 0}]
    rows = db.session.scalars(select(Activity)).all()
    assert {(a.source, a.amount_e4, a.properties["item"]) for a in rows} == {
        ("upload", 35000, "coffee")}
    event = db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.segment_id == segment.id)).one()
    assert (event.action, event.source, event.member_id) == ("ADD", "activity", ana.id)
    db.session.refresh(segment)
    assert segment.size == 1
    # The same file again: every line a duplicate, nothing counted twice.
    again = run(tmp_path, coffee_csv("ANA", 3))
    assert again.report["counts"] == {"recorded": 0, "duplicate": 3, "invalid": 0}
    assert "already recorded" in again.report["problems"][0]["detail"]


def test_dry_run_counts_equal_what_apply_does(tmp_path, ana):
    content = coffee_csv("ANA", 4) + f"ANA,purchase,{iso()},x,bad1,coffee\nANA,visit,{iso()},,c1,\n"
    checked = run(tmp_path, content)
    applied = run(tmp_path, content.replace("c", "c", 1), apply=True)
    assert checked.report["counts"] == applied.report["applied"]["counts"] == {
        "recorded": 4, "duplicate": 1, "invalid": 1}


def test_a_failure_while_applying_changes_nothing(tmp_path, ana, monkeypatch):
    segment = coffee_segment()

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(service.activities, "refresh_due", boom)
    item = run(tmp_path, coffee_csv("ANA", 3), apply=True)
    assert item.status == "failed"
    assert "Nothing was recorded." in item.error
    assert stored() == 0
    assert db.session.scalars(select(MembershipEvent).where(
        MembershipEvent.segment_id == segment.id)).all() == []


def test_large_files_are_applied_in_chunks_in_one_commit(tmp_path, ana, monkeypatch):
    monkeypatch.setattr(service, "CHUNK", 7)
    commits = []
    item = run(tmp_path, coffee_csv("ANA", 30))
    original = db.session.commit
    monkeypatch.setattr(db.session, "commit", lambda: (commits.append(1), original())[1])
    service.request_apply(item)
    db.session.expire_all()
    item = db.session.get(ActivityImport, item.id)
    assert item.status == "applied" and stored() == 30
    assert len(commits) == 2  # marked applying, then the whole import with its outcome


@pytest.mark.parametrize(("content", "message"), [
    (b"", "The file is empty."),
    (b"\n \n", "no activities"),
    (HEADER.encode(), "only a header row"),
    (b"PK\x03\x04\x14\x00\x06\x00binary", "Excel workbook"),
    ("member,activity_type,occurred_at,external_id\nANA,visit,2026-01-01T00:00:00Z,é\n"
     .encode("latin-1"), "Line 2, column 32: byte 0xE9 is not valid UTF-8"),
    (b"member,activity_type,external_id\nANA,visit,x\n", "no occurred_at column"),
    (b"member,kind,occurred_at,external_id\nANA,visit,x,y\n", "'kind', is not a column"),
    (b"member,type,activity_type,occurred_at,external_id\nA,b,c,d,e\n", "both name activity_type"),
    (b"ANA\nBOB\n", "single column"),
])
def test_bad_files_are_refused_with_a_clear_message(tmp_path, ana, content, message):
    item = run(tmp_path, content)
    assert item.status == "rejected"
    assert message in item.error


def test_properties_column_and_type_synonym(tmp_path, ana):
    content = ('type,member,occurred_at,external_id,properties\n'
               f'purchase,ANA,{iso()},p1,"{{""item"": ""coffee"", ""size"": 2}}"\n'
               f'purchase,ANA,{iso()},p2,[1]\n'
               f'purchase,ANA,{iso()},p3,{{oops\n')
    item = run(tmp_path, content, apply=True)
    assert item.report["applied"]["counts"] == {"recorded": 1, "duplicate": 0, "invalid": 2}
    details = [p["detail"] for p in item.report["problems"]]
    assert "properties is a JSON object" in details[0]
    assert "not valid JSON" in details[1]
    assert db.session.scalars(select(Activity)).one().properties == {"item": "coffee", "size": 2}


@pytest.mark.parametrize(("cell", "value", "problem"), [
    ("4", 4, None), ("-2.5", -2.5, None), ("0.0001", 0.0001, None),
    ("4,50", None, "Use a dot for the decimals"), ("1e3", None, "not a number"),
    ("12345678901234.5678", None, "significant digits"),
])
def test_amount_cells(cell, value, problem):
    parsed, error = service.parse_amount(cell)
    assert parsed == value
    assert (error is None) if problem is None else problem in error


def test_the_report_names_a_column_as_the_file_header_does(tmp_path, ana):
    content = ('Type,Member,occurred_at,external_id\n'
               f',ANA,{iso()},p1\n'
               f'purchase,NOBODY,{iso()},p2\n')
    item = run(tmp_path, content)
    assert [(p["line"], p["column"]) for p in item.report["problems"]] == [
        (2, "Type"), (3, "Member")]
