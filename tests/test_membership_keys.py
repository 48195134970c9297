"""PostgreSQL: a set-based add checks its foreign keys itself, exactly as the triggers would.

webapp.services.membership._apply_returning turns segment_memberships' per-row foreign-key triggers
off for its one statement (session_replication_role) and instead locks the members and the
segment it adds FOR KEY SHARE in one join. These tests hold it to the same guarantees: the
same rows and events as the per-row path, nothing added for a member that is gone, a member
being added cannot be deleted until the transaction ends (and its deletion then cascades),
no other trigger is skipped, and a role that may not set the parameter keeps the triggers.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, literal, select, text, union_all

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.models import Member, MembershipEvent, SegmentMembership
from webapp.services.membership import Cause, apply_delta, set_based_checks


@pytest.fixture(autouse=True)
def _postgres_only(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("session_replication_role and row locks are PostgreSQL's")


def _rows(segment_id):
    return sorted(db.session.scalars(select(SegmentMembership.member_id).where(
        SegmentMembership.segment_id == segment_id)))


def _events(segment_id):
    return sorted(db.session.execute(select(
        MembershipEvent.action, MembershipEvent.member_id, MembershipEvent.upload_id).where(
        MembershipEvent.segment_id == segment_id)).all())


@contextmanager
def _other_connection(database_url):
    """A second session on the test database, that waits at most 200 ms for a lock."""
    other = create_engine(database_url)
    try:
        with other.connect() as conn:
            conn.execute(text("SET lock_timeout = '200ms'"))
            yield conn
    finally:
        other.dispose()


def _assert_undeletable(conn, member_ids):
    """Each member's deletion waits for a lock this test's session holds (then gives up)."""
    for member_id in member_ids:
        with pytest.raises(Exception, match="lock timeout"), conn.begin_nested():
            conn.execute(text("DELETE FROM members WHERE id = :id"), {"id": member_id})
    conn.rollback()


def test_memberships_have_no_trigger_but_their_foreign_keys():
    """The set-based add skips every trigger on segment_memberships for its statement: only
    the two foreign keys' may be there. A new trigger on the table (or on the events) must
    come with a look at _apply_returning."""
    triggers = db.session.execute(text("""
        SELECT t.tgrelid::regclass::text, t.tgisinternal, c.conname, c.contype
        FROM pg_trigger t LEFT JOIN pg_constraint c ON c.oid = t.tgconstraint
        WHERE t.tgrelid IN ('segment_memberships'::regclass, 'membership_events'::regclass)
    """)).all()
    assert triggers, "the foreign keys' triggers were not found"
    assert {(table, internal, kind) for table, internal, _, kind in triggers} == {
        ("segment_memberships", True, "f")}
    assert {name for *_, name, _ in triggers if name} == {
        "fk_segment_memberships_member_id_members",
        "fk_segment_memberships_segment_id_segments"}


@pytest.mark.parametrize("set_based", [True, False], ids=["set-based", "per-row"])
def test_both_paths_add_the_same_rows_and_events(app, set_based):
    app.config["SET_BASED_KEY_CHECKS"] = set_based
    segment = make_segment(kind="static")
    on_list, new_a, new_b = make_member(), make_member(), make_member()
    add_to_list(segment, on_list)
    gone = str(uuid.uuid4())  # names no member (one deleted since the file was read)
    ids = union_all(*(select(literal(m).label("member_id"))
                      for m in (on_list.id, new_a.id, new_b.id, new_a.id, gone)))
    assert set_based_checks(db.session.connection()) is set_based
    delta = apply_delta(segment, add=select(ids.subquery().c.member_id), via="list",
                        cause=Cause("upload", "tester", upload_id=41))
    role = db.session.execute(text("SHOW session_replication_role")).scalar()
    db.session.commit()
    assert role == "origin"  # back to normal for the rest of the transaction
    assert delta.added == 2 and segment.size == 3
    assert _rows(segment.id) == sorted([on_list.id, new_a.id, new_b.id])
    assert _events(segment.id) == sorted([("ADD", on_list.id, None), ("ADD", new_a.id, 41),
                                          ("ADD", new_b.id, 41)])


def test_a_member_being_added_cannot_be_deleted_until_commit(app, database_url):
    segment = make_segment(kind="static")
    member = make_member()
    db.session.commit()
    assert set_based_checks(db.session.connection())
    apply_delta(segment, add=select(Member.id.label("member_id")).where(Member.id == member.id),
                via="list", cause=Cause("upload", "tester", upload_id=1))
    with _other_connection(database_url) as conn:
        _assert_undeletable(conn, [member.id])
        db.session.commit()  # the add lands; the member's deletion may now go ahead
        conn.execute(text("DELETE FROM members WHERE id = :id"), {"id": member.id})
        conn.commit()
    db.session.expire_all()
    assert _rows(segment.id) == []  # ON DELETE CASCADE took the new row with the member


def test_a_segment_deleted_meanwhile_gets_no_rows(app):
    segment = make_segment(kind="static")
    member = make_member()
    db.session.commit()
    db.session.execute(text("DELETE FROM segments WHERE id = :id"), {"id": segment.id})
    delta = apply_delta(segment, add=select(Member.id.label("member_id")), via="list",
                        cause=Cause("upload", "tester"), audit=False, cascade=False)
    assert delta.added == 0
    assert db.session.scalar(select(SegmentMembership.member_id).where(
        SegmentMembership.member_id == member.id)) is None
    db.session.rollback()


def test_a_role_may_use_it_only_when_granted_the_parameter(app):
    """Superuser, or (PostgreSQL 15+) GRANT SET ON PARAMETER session_replication_role."""
    role = f"beacon_test_{uuid.uuid4().hex[:8]}"
    version = db.engine.dialect.server_version_info
    with db.engine.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        try:
            conn.execute(text(f"SET ROLE {role}"))
            assert set_based_checks(conn) is False
            conn.execute(text("RESET ROLE"))
            conn.connection.info.clear()
            if version >= (15,):
                conn.execute(text(
                    f"GRANT SET ON PARAMETER session_replication_role TO {role}"))
                conn.execute(text(f"SET ROLE {role}"))
                assert set_based_checks(conn) is True
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(text("RESET ROLE"))
        finally:
            conn.rollback()  # nothing of the role outlives the test
            conn.connection.info.clear()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"),
                            {"r": role}).scalar() == 0


@pytest.mark.parametrize("set_based", [True, False], ids=["set-based", "per-row"])
@pytest.mark.parametrize("mode", ["add", "replace"])
def test_uploads_apply_alike_on_both_paths(app, tmp_path, set_based, mode):
    from tests.uploads.helpers import events, list_ids, upload_and_apply, write

    app.config["SET_BASED_KEY_CHECKS"] = set_based
    segment = make_segment(kind="static")
    people = [make_member(external_id=f"K-{i}", email=f"k{i}@example.com") for i in range(4)]
    add_to_list(segment, people[3])
    upload = upload_and_apply(segment, write(tmp_path, "\n".join(
        [people[0].id, people[1].external_id, people[2].email, people[1].email, "nobody"])),
        mode=mode)
    assert upload.status == "applied", upload.error
    kept = {people[3].id} if mode == "add" else set()
    assert list_ids(segment.id) == {p.id for p in people[:3]} | kept
    assert {e for e in events(segment.id) if e[2] == upload.id} == {
        ("ADD", p.id, upload.id) for p in people[:3]} | (
        set() if mode == "add" else {("REMOVE", people[3].id, upload.id)})


def test_an_applying_upload_holds_its_members_until_commit(app, tmp_path, database_url):
    """The upload locks the members it adds while resolving them (all three identifier
    kinds), so none can be deleted before the list and its events are committed."""
    from tests.uploads.helpers import dry_run, write
    from webapp.services import uploads as service

    segment = make_segment(kind="static")
    people = [make_member(external_id=f"L-{i}", email=f"l{i}@example.com") for i in range(3)]
    upload = dry_run(segment, write(tmp_path, "\n".join(
        [people[0].id, people[1].external_id, people[2].email])))
    report = service.process(upload, apply=True)
    assert report["applied"]["added"] == 3
    try:
        with _other_connection(database_url) as conn:
            _assert_undeletable(conn, [person.id for person in people])
    finally:
        db.session.rollback()
