"""The one path for membership changes.

Every change of who is in a segment (static list edit, upload and its undo, override and its
expiry, member create / update / batch / delete, rule edit and `segments refresh`, segment
delete, and the cascade to segments whose `segment` criteria name a changed one) goes through
`apply_delta`, which writes the materialized rows, one ADD/REMOVE event per member that really
joined or left, the segment's `size` and an audit entry in the caller's transaction. Callers
commit once, so a change and its events land together or not at all. `refresh_segment`
(whole segment, set-based in SQL) and `refresh_member` (one member, in Python) only compute
who should join and leave, and hand that to `apply_delta`.

Concurrency: many writers (gunicorn workers, RQ jobs, the command line) may change one
segment at the same moment. The invariants kept under any interleaving are: `size` equals the
segment's rows; the events of each (segment, member) alternate ADD/REMOVE and replay to the
rows; per-item results (`added`, `removed`, `already_member`, `not_member`) are true; and no
valid request fails because of another writer. The design:

* **One writer per segment at a time.** Before a transaction reads the membership it is about
  to change, it takes the segment's write lock with `lock_segments`, for the segment and every
  segment that depends on it (the cascade's targets), all at once and in ascending id order, so
  two writers never wait for each other in a cycle (no deadlock). Locks are held until commit
  or rollback; taking one twice is free (the held set lives in the session's info).
  A profile change can move a member in or out of any dynamic segment, so it locks them all
  (`lock_dynamic_segments`) before reading the member's memberships.
* **PostgreSQL:** the lock is `SELECT ... FOR NO KEY UPDATE` of the segment rows (which also
  reloads them: after the lock, what this transaction reads is what the previous writer
  committed). NO KEY UPDATE does not conflict with the KEY SHARE locks that foreign-key checks
  take, so inserting overrides or memberships elsewhere never waits on it; an UPDATE of the
  segment row (a rule edit, a size change) does, so those are ordered by the same lock.
* **SQLite** has one writer at a time for the whole database. The driver reads outside a
  transaction until the first write, which begins one and takes the write lock; writers
  queue for it on an flock first (webapp/__init__.py), so none fails with "database is
  locked" or sleeps in SQLite's busy handler. `lock_segments` makes that first write a
  no-op UPDATE when nothing was written yet, so the lock is held before the membership is
  read (and the locked segments are re-read): a read-then-write cannot be overtaken.
* **Counts from what changed.** Rows are written with INSERT ... ON CONFLICT DO NOTHING
  RETURNING and DELETE ... RETURNING (or, set-based, a data-modifying CTE whose RETURNING
  feeds the events); the events are written for exactly the returned rows and `size` moves by
  their number (`UPDATE segments SET size = size + n`), never from a count read earlier.
* **Set-based rule refreshes.** Who joins and who leaves a dynamic segment is computed with
  anti-joins (NOT EXISTS over the indexed segment_memberships primary key and members
  primary key), linear in the members involved; `verify_all` uses the same anti-joins.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    Column,
    MetaData,
    Select,
    String,
    Table,
    and_,
    delete,
    event,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from webapp.bulk import CHUNK, one_of
from webapp.extensions import db
from webapp.models import (
    JSONType,
    Member,
    MembershipEvent,
    Override,
    Segment,
    SegmentDependency,
    SegmentMembership,
    SegmentSizeSnapshot,
)
from webapp.services import activities
from webapp.services.audit import record
from webapp.services.rules import program_timezone, rules_condition
from webapp.targeting.graph import dependency_order
from webapp.timeutil import utcnow

SOURCES = ("static_list", "upload", "api", "override", "rule", "profile_change", "activity")

members_t = Member.__table__
segments_t = Segment.__table__
memberships_t = SegmentMembership.__table__
events_t = MembershipEvent.__table__
overrides_t = Override.__table__
dependencies_t = SegmentDependency.__table__


@dataclass
class Delta:
    """What one change did to one segment."""

    segment_id: int
    added: int = 0
    removed: int = 0
    added_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    cascaded: list[Delta] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anyone joined or left."""
        return bool(self.added or self.removed)

    def with_cascade(self) -> list[Delta]:
        """This delta followed by those of the dependent segments it refreshed."""
        deltas = [self]
        for child in self.cascaded:
            deltas.extend(child.with_cascade())
        return deltas


@dataclass(frozen=True)
class Cause:
    """Why a membership changed: carried by every event of the change."""

    source: str
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)
    upload_id: int | None = None
    override_id: int | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown membership source {self.source!r}")


def _chunks(ids: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def current_member_ids(segment_id: int, candidates: Sequence[str]) -> set[str]:
    """Which of the candidate members are in the segment now (materialized)."""
    if not candidates:
        return set()
    return set(db.session.scalars(select(memberships_t.c.member_id).where(
        memberships_t.c.segment_id == segment_id,
        one_of(memberships_t.c.member_id, candidates))))


# --- Write locks ----------------------------------------------------------------------------

# The segment ids whose write lock this session's transaction holds (cleared when it ends).
LOCKED = "beacon_locked_segments"
@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction) -> None:
    """A transaction's locks end with it."""
    if transaction.parent is None:
        session.info.pop(LOCKED, None)


def dependents_closure(segment_ids: Iterable[int]) -> set[int]:
    """The segments and every segment whose criteria depend on them, transitively."""
    found = set(segment_ids)
    frontier = set(found)
    while frontier:
        nxt = set(db.session.scalars(select(dependencies_t.c.segment_id).where(
            dependencies_t.c.depends_on_id.in_(sorted(frontier)))))
        frontier = nxt - found
        found |= frontier
    return found


def lock_segments(segment_ids: Iterable[int], *, dependents: bool = True) -> None:
    """Take the write locks of these segments (and of their dependents) for this transaction.

    All the locks one change needs are taken at once, in ascending id order, before the
    membership is read; see the module docstring. The locked Segment objects are reloaded.
    """
    wanted = set(segment_ids)
    if dependents:
        wanted = dependents_closure(wanted)
    session = db.session
    held: set[int] = session.info.setdefault(LOCKED, set())
    missing = sorted(wanted - held)
    if not missing:
        return
    query = select(Segment).where(Segment.id.in_(missing)).order_by(Segment.id) \
        .execution_options(populate_existing=True)
    if session.connection().dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)
    else:
        hold_sqlite_write_lock()
    list(session.scalars(query))
    held.update(missing)


def without_jit() -> None:
    """PostgreSQL: no JIT compilation for the rest of this transaction, whose statements read a
    few members each. A per-member subquery over a big table carries the plan's estimate past
    jit_above_cost, and compiling it took ≈25 ms a statement, longer than running it."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))


def hold_sqlite_write_lock() -> None:
    """SQLite: hold the database's write lock from now on, before reading what will change.

    Nothing written yet in this transaction: a no-op write takes the lock now (after queueing
    for it, webapp/__init__.py). PostgreSQL: nothing to do (writers lock segment rows).
    """
    connection = db.session.connection()
    if connection.dialect.name == "sqlite" \
            and not connection.connection.dbapi_connection.in_transaction:
        db.session.execute(update(segments_t).where(segments_t.c.id == -1).values(size=0))


def lock_dynamic_segments() -> None:
    """Lock every dynamic segment (a profile change may move a member in or out of any)."""
    lock_segments(db.session.scalars(select(segments_t.c.id).where(
        segments_t.c.kind == "dynamic")).all(), dependents=True)


# Set in the session's info when the transaction wrote membership events: the webhooks'
# commit hook then schedules a delivery pass (webapp/webhooks/delivery.py).
EVENTS_WRITTEN = "beacon_membership_events_written"


def _events_written() -> None:
    db.session.info[EVENTS_WRITTEN] = True


def _event_rows(segment: Segment, action: str, member_ids: Iterable[str], cause: Cause,
                now: datetime) -> list[dict]:
    return [{
        "action": action, "segment_id": segment.id, "segment_name": segment.name,
        "customer_segment_id": segment.customer_segment_id, "member_id": member_id,
        "source": cause.source, "cause": cause.detail, "actor_label": cause.actor,
        "upload_id": cause.upload_id, "override_id": cause.override_id, "created_at": now,
    } for member_id in member_ids]


def _event_select(segment: Segment, action: str, ids: Select, cause: Cause,
                  now: datetime) -> Select:
    return select(
        literal(action), literal(segment.id), literal(segment.name),
        literal(segment.customer_segment_id), ids.c.member_id, literal(cause.source),
        literal(cause.detail, JSONType), literal(cause.actor), literal(cause.upload_id),
        literal(cause.override_id), literal(now),
    ).select_from(ids)


EVENT_COLUMNS = ("action", "segment_id", "segment_name", "customer_segment_id", "member_id",
                 "source", "cause", "actor_label", "upload_id", "override_id", "created_at")


def apply_delta(segment: Segment, *, add: Sequence[str] | Select = (),
                remove: Sequence[str] | Select = (), via: str, cause: Cause,
                audit: bool = True, retag: bool = False, cascade: bool = True,
                members_locked: bool = False,
                progress: Callable[[int], None] | None = None) -> Delta:
    """Add and remove members of a segment with their events, size and audit entry (no commit).

    `add` and `remove` are member ids, or a SELECT yielding a `member_id` column for changes
    too large for Python (uploads, rule refreshes). Members already in (for add) or not in
    (for remove) are left alone and get no event; so are ids of members that do not exist
    (any more). With `retag`, members already in get their `via` updated (e.g. a rule member
    pinned by an override) without an event. The delta's `added_ids` and `removed_ids` (for
    id lists) say exactly who joined and left.

    Takes the segment's write lock first (and its dependents' with `cascade`), see
    `lock_segments`. With `cascade` (the default), segments whose `segment` criteria name
    this one are brought up to date too, their deltas in `cascaded`: for the changed members
    only when they are known, else whole. Callers that already walk every dynamic segment
    in dependency order pass cascade=False.

    `members_locked` says that an `add` SELECT yields distinct, existing members that this
    transaction already holds FOR KEY SHARE (an upload locks them while it resolves its
    file), so a set-based add need neither deduplicate nor lock them again.

    `progress`, when given, is told how many members have moved so far after each direction
    (a background job's progress bar); nothing is committed for it.
    """
    lock_segments([segment.id], dependents=cascade)
    now = utcnow()
    delta = Delta(segment.id)
    known = True
    if isinstance(remove, Select):
        known = False
        delta.removed += _apply_select(segment, remove, "REMOVE", via, cause, now)
    elif remove:
        gone = _remove_ids(segment, list(dict.fromkeys(remove)), cause, now)
        delta.removed += len(gone)
        delta.removed_ids = gone
    if progress is not None:
        progress(delta.removed)
    if isinstance(add, Select):
        known = False
        delta.added += _apply_select(segment, add, "ADD", via, cause, now, members_locked)
    elif add:
        wanted = list(dict.fromkeys(add))
        new = _add_ids(segment, wanted, via, cause, now)
        if retag:
            kept = sorted(set(wanted) - set(new))
            for chunk in _chunks(kept):
                db.session.execute(update(memberships_t).where(
                    memberships_t.c.segment_id == segment.id,
                    memberships_t.c.member_id.in_(chunk),
                    memberships_t.c.via != via).values(via=via))
        delta.added += len(new)
        delta.added_ids = new
    if progress is not None:
        progress(delta.removed + delta.added)
    if delta.changed:
        _record_size(segment, delta, now)
        if audit:
            record(cause.actor, "membership.change", "segment", segment.id,
                   f"+{delta.added:,} / −{delta.removed:,} members ({cause.source})",
                   after={"added": delta.added, "removed": delta.removed,
                          "source": cause.source, **cause.detail})
        if cascade:
            changed_ids = delta.added_ids + delta.removed_ids if known else None
            delta.cascaded = _cascade(segment, changed_ids, cause, now)
    return delta


def _insert(connection):
    """The dialect's INSERT, which has ON CONFLICT DO NOTHING."""
    return pg_insert if connection.dialect.name == "postgresql" else sqlite_insert


def _add_ids(segment: Segment, wanted: list[str], via: str, cause: Cause,
             now: datetime) -> list[str]:
    """Insert the listed members that exist and are not in yet; returns who was inserted.

    The INSERT's RETURNING decides: a member already in conflicts and is skipped. Members
    are taken FOR KEY SHARE on PostgreSQL (what the foreign-key check would take), so a
    member deleted meanwhile drops out instead of failing the statement.
    """
    connection = db.session.connection()
    postgres = connection.dialect.name == "postgresql"
    inserted: list[str] = []
    for chunk in _chunks(wanted):
        existing = select(members_t.c.id).where(members_t.c.id.in_(chunk))
        if postgres:
            existing = existing.with_for_update(read=True, key_share=True)
        exists_now = set(db.session.scalars(existing))
        rows = [{"segment_id": segment.id, "member_id": m, "via": via, "since": now}
                for m in chunk if m in exists_now]
        if not rows:
            continue
        statement = _insert(connection)(memberships_t).on_conflict_do_nothing() \
            .returning(memberships_t.c.member_id)
        inserted.extend(connection.execute(statement, rows).scalars())
    if inserted:
        order = {m: i for i, m in enumerate(wanted)}
        inserted.sort(key=order.__getitem__)
        db.session.execute(insert(events_t), _event_rows(segment, "ADD", inserted, cause, now))
        _events_written()
    return inserted


def _remove_ids(segment: Segment, wanted: list[str], cause: Cause, now: datetime) -> list[str]:
    """Delete the listed members' rows; returns whose row the DELETE removed."""
    gone: list[str] = []
    for chunk in _chunks(wanted):
        gone.extend(db.session.scalars(delete(memberships_t).where(
            memberships_t.c.segment_id == segment.id,
            memberships_t.c.member_id.in_(chunk)).returning(memberships_t.c.member_id)))
    if gone:
        order = {m: i for i, m in enumerate(wanted)}
        gone.sort(key=order.__getitem__)
        db.session.execute(insert(events_t), _event_rows(segment, "REMOVE", gone, cause, now))
        _events_written()
    return gone


def _cascade(segment: Segment, member_ids: list[str] | None, cause: Cause,
             now: datetime) -> list[Delta]:
    """Re-evaluate the segments that depend on `segment` after its membership changed."""
    deltas: list[Delta] = []
    for dependent in dependents_of(segment.id):
        rule_cause = Cause("rule", cause.actor, {**cause.detail, "via_segment": segment.id},
                           upload_id=cause.upload_id, override_id=cause.override_id)
        if member_ids is None:
            deltas.extend(refresh_segment(dependent, rule_cause, now))
        else:
            delta = refresh_segment_members(dependent, member_ids, rule_cause, now)
            if delta.changed:
                deltas.append(delta)
    return deltas


def refresh_segment_members(segment: Segment, member_ids: Sequence[str], cause: Cause,
                            now: datetime | None = None, *, joins_only: bool = False) -> Delta:
    """Bring some members' membership of a dynamic segment in line with its rules (no commit;
    the segments depending on it follow, through `apply_delta`'s cascade). With `joins_only`
    (the caller knows that what changed can only move members in, e.g.
    `behaviour.only_joins`), the members already in are left as they are, unevaluated."""
    if segment.kind != "dynamic" or not member_ids:
        return Delta(segment.id)
    lock_segments([segment.id])
    now = now or utcnow()
    present = current_member_ids(segment.id, member_ids)
    if joins_only:
        member_ids = [m for m in member_ids if m not in present]
    condition = desired_condition(segment.id, segment.definition(), now, per_member=True)
    without_jit()
    wanted = set(db.session.scalars(select(members_t.c.id).where(
        one_of(members_t.c.id, member_ids), condition))) if member_ids else set()
    return apply_delta(segment, add=sorted(wanted - present),
                       remove=[] if joins_only else sorted(present - wanted), via="rule",
                       cause=cause)


def _apply_select(segment: Segment, ids: Select, action: str, via: str, cause: Cause,
                  now: datetime, members_locked: bool = False) -> int:
    """Set-based add or remove: the candidate ids come from a SELECT (member_id column).

    Returns how many members joined (ADD) or left (REMOVE); only they get an event.
    """
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return _apply_returning(connection, segment, ids, action, via, cause, now,
                                members_locked)
    return _apply_staged(connection, segment, ids, action, via, cause, now)


def _apply_returning(connection, segment: Segment, ids: Select, action: str, via: str,
                     cause: Cause, now: datetime, members_locked: bool = False) -> int:
    """PostgreSQL: change the rows and write their events in one statement.

    The membership INSERT (or DELETE) runs as a data-modifying CTE whose RETURNING rows feed
    the events INSERT, so the candidate query runs once, nothing is staged, and exactly the
    rows that changed get an event. Only candidates that are members are added.

    Foreign keys of an add are checked set-based when the role may (see set_based_checks):
    the segment and the members it adds are locked FOR KEY SHARE, the lock each per-row
    foreign-key check takes, the members in one join instead of two trigger queries per
    row, with those triggers off for the statement only.
    """
    candidates = ids.subquery("candidates")
    set_based = False
    if action == "ADD":
        set_based = set_based_checks(connection)
        if set_based and connection.scalar(select(segments_t.c.id).where(
                segments_t.c.id == segment.id).with_for_update(read=True, key_share=True)) \
                is None:
            return 0  # the segment was deleted meanwhile (the per-row check would refuse)
        absent = ~exists().where(memberships_t.c.segment_id == segment.id,
                                 memberships_t.c.member_id == candidates.c.member_id)
        if members_locked:  # distinct, existing and locked by the caller already
            chosen = select(candidates.c.member_id).where(absent)
        else:
            wanted = select(candidates.c.member_id).where(absent).distinct().subquery("wanted")
            chosen = select(members_t.c.id.label("member_id")) \
                .join_from(wanted, members_t, members_t.c.id == wanted.c.member_id)
            if set_based:
                # A member deleted meanwhile drops out here (and is then not added); one
                # being deleted waits for this transaction, as with the per-row checks.
                chosen = chosen.with_for_update(read=True, key_share=True, of=members_t)
        chosen = chosen.cte("chosen")
        # Inserting in member_id order keeps the index inserts local (member_id leads the
        # memberships index and the events index).
        changed = insert(memberships_t).from_select(
            ["segment_id", "member_id", "via", "since"],
            select(literal(segment.id), chosen.c.member_id, literal(via), literal(now))
            .order_by(chosen.c.member_id)).returning(memberships_t.c.member_id).cte("changed")
        # RETURNING hands the rows back as inserted, so the events follow member_id order too.
        events = _event_select(segment, action, changed, cause, now)
    else:
        changed = delete(memberships_t).where(
            memberships_t.c.segment_id == segment.id,
            memberships_t.c.member_id.in_(select(candidates.c.member_id)),
        ).returning(memberships_t.c.member_id).cte("changed")
        events = _event_select(segment, action, changed, cause, now) \
            .order_by(changed.c.member_id)
    statement = insert(events_t).from_select(list(EVENT_COLUMNS), events).add_cte(changed)
    if set_based:
        # Transaction-scoped; an error aborts the transaction (or savepoint), which undoes it.
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    # preserve_rowcount: SQLAlchemy keeps cursor.rowcount only for UPDATE/DELETE otherwise.
    result = connection.execute(statement.execution_options(preserve_rowcount=True))
    if set_based:
        connection.exec_driver_sql("SET LOCAL session_replication_role = DEFAULT")
    count = result.rowcount
    if count is None or count < 0:
        raise RuntimeError("the database did not report how many events were written")
    if count:
        _events_written()
    return count


# Cached per database connection: whether its role may set session_replication_role.
_SET_BASED_KEY = "beacon_set_based_checks"


def set_based_checks(connection) -> bool:
    """Whether a set-based add on this PostgreSQL connection checks its foreign keys itself.

    It turns the per-row foreign-key triggers off for its one statement, which takes
    `session_replication_role`: superuser, or on PostgreSQL 15 and later a role granted
    `SET ON PARAMETER session_replication_role`. segment_memberships has no triggers but
    its two foreign keys' (tests/test_membership_keys.py keeps it so), and the statement
    locks exactly what they would. Config SET_BASED_KEY_CHECKS=False keeps the per-row
    triggers. The answer is remembered per connection.
    """
    if not current_app.config.get("SET_BASED_KEY_CHECKS", True):
        return False
    info = connection.connection.info
    allowed = info.get(_SET_BASED_KEY)
    if allowed is None:
        if (connection.dialect.server_version_info or (0,)) >= (15,):
            query = "SELECT has_parameter_privilege('session_replication_role', 'SET')"
        else:
            query = "SELECT current_setting('is_superuser') = 'on'"
        allowed = info[_SET_BASED_KEY] = bool(connection.exec_driver_sql(query).scalar())
    return allowed


def _apply_staged(connection, segment: Segment, ids: Select, action: str, via: str,
                  cause: Cause, now: datetime) -> int:
    """SQLite: the chosen ids are staged once in a temporary table, so the (possibly
    expensive) candidate query runs once for the events and the rows alike."""
    candidates = ids.subquery("candidates")
    in_segment = exists().where(memberships_t.c.segment_id == segment.id,
                                memberships_t.c.member_id == candidates.c.member_id)
    chosen_ids = select(candidates.c.member_id).where(
        ~in_segment if action == "ADD" else in_segment).distinct()
    staged = Table(f"delta_{uuid.uuid4().hex[:12]}", MetaData(),
                   Column("member_id", String(36), primary_key=True), prefixes=["TEMPORARY"])
    staged.create(connection)
    try:
        count = connection.execute(
            insert(staged).from_select(["member_id"], chosen_ids)).rowcount
        if count is None or count < 0:
            count = connection.scalar(select(func.count()).select_from(staged)) or 0
        if not count:
            return 0
        # Inserting in member_id order keeps index inserts local (member_id leads the
        # events and memberships indexes); in hash order a million rows take twice as long.
        chosen = select(staged.c.member_id).subquery("chosen")
        connection.execute(insert(events_t).from_select(
            list(EVENT_COLUMNS),
            _event_select(segment, action, chosen, cause, now).order_by(chosen.c.member_id)))
        _events_written()
        if action == "ADD":
            connection.execute(insert(memberships_t).from_select(
                ["segment_id", "member_id", "via", "since"],
                select(literal(segment.id), staged.c.member_id, literal(via), literal(now))
                .order_by(staged.c.member_id)))
        else:
            connection.execute(delete(memberships_t).where(
                memberships_t.c.segment_id == segment.id,
                memberships_t.c.member_id.in_(select(staged.c.member_id))))
        return count
    finally:
        staged.drop(connection)


def _record_size(segment: Segment, delta: Delta, now: datetime) -> None:
    """Move the cached size by what this change wrote, and keep today's snapshot current.

    The UPDATE adds to the stored value (under the segment's write lock, the one the
    previous writer committed), so a size read before another writer committed never lands.
    """
    size = db.session.execute(
        update(segments_t).where(segments_t.c.id == segment.id)
        .values(size=func.coalesce(segments_t.c.size, 0) + delta.added - delta.removed)
        .returning(segments_t.c.size)).scalar_one()
    set_committed_value(segment, "size", size)
    snapshot = db.session.scalar(select(SegmentSizeSnapshot).where(
        SegmentSizeSnapshot.segment_id == segment.id, SegmentSizeSnapshot.day == now.date()))
    if snapshot is None:
        db.session.add(SegmentSizeSnapshot(segment_id=segment.id, day=now.date(), size=size))
    else:
        snapshot.size = size


# --- Effective membership from the rules -------------------------------------------------

def active_override_condition(now: datetime):
    """SQL: an override that is in force at `now`."""
    return or_(overrides_t.c.expires_at.is_(None), overrides_t.c.expires_at > now)


def rule_condition(segment: Segment, now: datetime | None = None):
    """SQL boolean over `members` for the segment's include/exclude rules."""
    return rules_condition(segment.definition(), now=now)


def desired_condition(segment_id: int, definition: dict, now: datetime | None = None,
                      per_member: bool = False):
    """SQL boolean over `members`: who should be in a dynamic segment (rules + overrides);
    `per_member` for a few members (see `rules_condition`)."""
    now = now or utcnow()
    rule = rules_condition(definition, now=now, per_member=per_member)

    def pinned(status: str):
        # EXISTS over the (segment_id, member_id) unique index: a probe per member, where
        # NOT IN over a list would not become an anti-join.
        return exists().where(overrides_t.c.segment_id == segment_id,
                              overrides_t.c.member_id == members_t.c.id,
                              overrides_t.c.status == status, active_override_condition(now))

    return or_(pinned("add"), and_(rule, not_(pinned("block"))))


def join_and_leave(segment: Segment, now: datetime,
                   definition: dict | None = None) -> tuple[Select, Select]:
    """SELECTs of who should join and who should leave a dynamic segment (set-based).

    Both are anti-joins over primary keys: joining = members matching the rules with no row
    in segment_memberships; leaving = rows of the segment whose member no longer matches.
    `definition` (default: the stored one) lets a rule edit be sized before it is applied.
    """
    desired = desired_condition(segment.id, definition or segment.definition(), now)
    in_segment = exists().where(memberships_t.c.segment_id == segment.id,
                                memberships_t.c.member_id == members_t.c.id)
    joining = select(members_t.c.id.label("member_id")).where(desired, ~in_segment)
    still_wanted = exists().where(members_t.c.id == memberships_t.c.member_id, desired)
    leaving = select(memberships_t.c.member_id).where(
        memberships_t.c.segment_id == segment.id, ~still_wanted)
    return joining, leaving


@dataclass
class Staged:
    """Who joins and who leaves a dynamic segment, computed once into temporary tables."""

    joining: Select
    leaving: Select
    to_add: int
    to_remove: int
    tables: tuple[Table, ...]
    now: datetime

    @property
    def total(self) -> int:
        """How many members would move."""
        return self.to_add + self.to_remove

    def drop(self) -> None:
        """Drop the tables (PostgreSQL drops them at commit anyway; SQLite keeps them)."""
        connection = db.session.connection()
        if connection.dialect.name != "postgresql":
            for table in self.tables:
                table.drop(connection)


def stage_join_and_leave(segment: Segment, definition: dict,
                         now: datetime | None = None) -> Staged:
    """Count who would join and leave if the segment had `definition`, keeping both sets
    (no commit): a rule edit sizes itself and, when it is applied in the same transaction
    (under the segment's write lock, taken first), `refresh_segment(staged=...)` moves
    exactly these members without computing the sets again."""
    now = now or utcnow()
    jit_off()
    bulk_plans(True)
    connection = db.session.connection()
    options: dict[str, Any] = {"prefixes": ["TEMPORARY"]}
    if connection.dialect.name == "postgresql":
        options["postgresql_on_commit"] = "DROP"
    joining, leaving = join_and_leave(segment, now, definition)
    tables = []
    counts = []
    for name, query in (("joining", joining), ("leaving", leaving)):
        table = Table(f"{name}_{uuid.uuid4().hex[:12]}", MetaData(),
                      Column("member_id", String(36), primary_key=True), **options)
        table.create(connection)
        count = connection.execute(insert(table).from_select(["member_id"], query)).rowcount
        if count is None or count < 0:
            count = connection.scalar(select(func.count()).select_from(table)) or 0
        tables.append(table)
        counts.append(count)
    bulk_plans(False)
    return Staged(select(tables[0].c.member_id), select(tables[1].c.member_id),
                  counts[0], counts[1], tuple(tables), now)


def refresh_segment(segment: Segment, cause: Cause, now: datetime | None = None,
                    cascade: bool = True, progress: Callable[[int], None] | None = None,
                    staged: Staged | None = None) -> list[Delta]:
    """Bring a dynamic segment's materialized membership in line with its rules (no commit).

    Computes who joins and leaves set-based and hands both to `apply_delta` (the one writer
    path: rows, events, size, audit, cascade). Returns the deltas of this segment and of the
    segments whose `segment` criteria depend on it, refreshed after it. `progress` is handed
    to `apply_delta` (members moved so far). `staged` (from `stage_join_and_leave` in this
    transaction, with the definition the segment now has) gives the sets already computed.
    """
    if segment.kind != "dynamic":
        return []
    lock_segments([segment.id], dependents=cascade)
    jit_off()
    if staged is not None:
        now, joining, leaving = staged.now, staged.joining, staged.leaving
    else:
        now = now or utcnow()
        joining, leaving = join_and_leave(segment, now)
    bulk_plans(True)
    delta = apply_delta(segment, add=joining, remove=leaving, via="rule", cause=cause,
                        cascade=cascade, progress=progress)
    bulk_plans(False)
    _retag_overrides(segment, now)
    return delta.with_cascade()


def jit_off() -> None:
    """PostgreSQL: no JIT for the rest of this transaction.

    The anti-joins are cheap per row but estimated as large, which turns on the JIT:
    compiling them cost more (about 0.4 s each at 200,000 members) than running them.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))


def bulk_plans(on: bool) -> None:
    """PostgreSQL: no nested-loop joins for a rule refresh's set-based statements (on), or
    back to the default (off).

    A segment created or grown since segment_memberships was last analyzed is estimated at
    one row, so the planner joined its rows to the leaving set by a nested loop filtering
    every pair: quadratic, over 9 minutes for 40,000 leaving a segment of 400,000 (issue
    21). Hash and merge joins are linear whatever the estimates; at worst they read the
    members table once more than an index probe per row would.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(f"SET LOCAL enable_nestloop = {'off' if on else 'DEFAULT'}"))


def _retag_overrides(segment: Segment, now: datetime) -> None:
    """Mark members who are in because of an add override as via='override'."""
    pinned = exists().where(
        overrides_t.c.segment_id == segment.id,
        overrides_t.c.member_id == memberships_t.c.member_id,
        overrides_t.c.status == "add", active_override_condition(now))
    db.session.execute(update(memberships_t).where(
        memberships_t.c.segment_id == segment.id, pinned,
        memberships_t.c.via != "override").values(via="override"))
    db.session.execute(update(memberships_t).where(
        memberships_t.c.segment_id == segment.id, ~pinned,
        memberships_t.c.via == "override").values(via="rule"))


def dependents_of(segment_id: int) -> list[Segment]:
    """Segments whose `segment` criteria name this one."""
    return list(db.session.scalars(select(Segment).join(
        SegmentDependency, SegmentDependency.segment_id == Segment.id).where(
        SegmentDependency.depends_on_id == segment_id).order_by(Segment.id)))


def dynamic_segments_in_order() -> list[Segment]:
    """All dynamic segments, each after the segments it depends on."""
    segments = {s.id: s for s in db.session.scalars(
        select(Segment).where(Segment.kind == "dynamic"))}
    order = dependency_order({sid: s.definition() for sid, s in segments.items()})
    return [segments[sid] for sid in order]


def refresh_member(member: Member, cause: Cause, now: datetime | None = None) -> list[Delta]:
    """Re-evaluate one member against every dynamic segment, in Python (no commit)."""
    return refresh_members([member], cause, now)


def refresh_members(members: Sequence[Member], cause: Cause,
                    now: datetime | None = None) -> list[Delta]:
    """Re-evaluate members against every dynamic segment, in Python (no commit).

    Locks every dynamic segment first, then re-reads the members, so the profiles,
    memberships and overrides read here are what the last writer of each committed. One
    `apply_delta` per segment and direction (and `via`) for all the members at once.
    The activities the segments' activity criteria read are loaded for the members.
    """
    from webapp.targeting import matches

    lock_dynamic_segments()
    db.session.flush()
    for start in range(0, len(members), CHUNK):
        # Re-read after the locks: another writer's committed profile change is then seen.
        list(db.session.scalars(select(Member).where(
            Member.id.in_([m.id for m in members[start:start + CHUNK]]))
            .execution_options(populate_existing=True)))
    now = now or utcnow()
    segments = dynamic_segments_in_order()
    if not segments or not members:
        return []
    tz = program_timezone()
    ids = [m.id for m in members]
    in_now: dict[str, set[int]] = {member_id: set() for member_id in ids}
    overrides: dict[tuple[str, int], str] = {}
    for chunk in _chunks(ids):
        for member_id, segment_id in db.session.execute(select(
                memberships_t.c.member_id, memberships_t.c.segment_id).where(
                memberships_t.c.member_id.in_(chunk))):
            in_now[member_id].add(segment_id)
        for member_id, segment_id, status in db.session.execute(select(
                overrides_t.c.member_id, overrides_t.c.segment_id, overrides_t.c.status).where(
                overrides_t.c.member_id.in_(chunk), active_override_condition(now))):
            overrides[(member_id, segment_id)] = status
    attrs = [(m.id, m.attributes()) for m in members]
    criteria = activities.activity_criteria(s.definition() for s in segments)
    if criteria:
        loaded = activities.load(ids, criteria, now)
        for member_id, member_attrs in attrs:
            member_attrs["activities"] = tuple(loaded[member_id])
    deltas: list[Delta] = []
    for segment in segments:
        definition = segment.definition()
        add_rule: list[str] = []
        add_override: list[str] = []
        remove: list[str] = []
        for member_id, member_attrs in attrs:
            override = overrides.get((member_id, segment.id))
            inside = matches(definition, member_attrs, override=override, now=now,
                             memberships=in_now[member_id], tz=tz)
            if inside and segment.id not in in_now[member_id]:
                (add_override if override == "add" else add_rule).append(member_id)
                in_now[member_id].add(segment.id)
            elif not inside and segment.id in in_now[member_id]:
                remove.append(member_id)
                in_now[member_id].discard(segment.id)
        for via, wanted in (("rule", add_rule), ("override", add_override)):
            if wanted:
                deltas.append(apply_delta(segment, add=wanted, via=via, cause=cause,
                                          cascade=False))
        if remove:
            deltas.append(apply_delta(segment, remove=remove, via="rule", cause=cause,
                                      cascade=False))
    return [d for d in deltas if d.changed]


def segments_reading_activities(types: set[str]) -> list[tuple[int, Segment, Any, list[Any]]]:
    """The dynamic segments whose activity criteria read one of these activity types, each
    after the segments it depends on: (its rank in that order among all dynamic segments,
    the segment, its parsed definition, those of its activity criteria that do). A
    definition that no longer validates is left out (evaluating it reports the problem)."""
    from webapp.targeting import SegmentDefinitionError
    from webapp.targeting.criteria import parse_definition

    out = []
    for rank, segment in enumerate(dynamic_segments_in_order()):
        try:
            definition = parse_definition(segment.definition())
        except SegmentDefinitionError:
            continue
        criteria = [c for c in activities.activity_criteria([definition])
                    if c.activity.type in types]
        if criteria:
            out.append((rank, segment, definition, criteria))
    return out


def refresh_all(cause: Cause, now: datetime | None = None) -> list[Delta]:
    """Re-evaluate every dynamic segment (time-dependent criteria, expiries) (no commit)."""
    now = now or utcnow()
    lock_dynamic_segments()
    deltas: list[Delta] = []
    for segment in dynamic_segments_in_order():
        deltas.extend(d for d in refresh_segment(segment, cause, now, cascade=False)
                      if d.changed)
    return deltas


def next_refresh_at(now: datetime | None = None) -> datetime | None:
    """The first instant after `now` at which a dynamic segment's rules may answer differently
    with nothing stored changing, so `refresh_all` is due: the next midnight in the program
    time zone for ages, calendar dates and activity windows (an activity leaves a `days`
    window at a midnight), a `from`/`to` window's edge, the moment of the earliest activity
    recorded in the future of a type a rule reads. None when no rule depends on time.
    (A {"days_ago": N} criterion on created_at/updated_at moves with every member's own
    moment; those are applied by the next refresh after it.)"""
    from webapp.targeting import is_time_dependent
    from webapp.targeting.behaviour import next_change
    from webapp.targeting.env import make_env
    from webapp.targeting.values import start_of_day_utc

    now = now or utcnow()
    env = make_env(now, program_timezone())
    definitions = [s.definition() for s in db.session.scalars(
        select(Segment).where(Segment.kind == "dynamic"))]
    timed = []
    for definition in definitions:
        try:
            if is_time_dependent(definition):
                timed.append(definition)
        except Exception:  # noqa: BLE001 - an invalid definition is reported where evaluated
            continue
    if not timed:
        return None
    until = start_of_day_utc(env.today + timedelta(days=1), env.tz)
    criteria = activities.activity_criteria(timed)
    if criteria:
        types = sorted({c.activity.type for c in criteria})
        a = activities.activities_t.c
        future = db.session.scalar(select(func.min(a.occurred_at)).where(
            a.type.in_(types), a.occurred_at > env.now))
        acts = [(t, future, None, None) for t in types] if future is not None else []
        changes = next_change(criteria, acts, env.now, env.today, env.tz)
        if changes is not None:
            until = min(until, changes)
    return until


def verify_all(now: datetime | None = None) -> list[dict]:
    """Differences between materialized membership and live evaluation, per segment.

    Dynamic segments are checked against their rules (the same anti-joins as a refresh);
    every segment's cached size against its rows.
    """
    now = now or utcnow()
    problems = []
    dynamic = {s.id for s in dynamic_segments_in_order()}
    jit_off()
    bulk_plans(True)
    actual = dict(db.session.execute(select(memberships_t.c.segment_id, func.count())
                                     .group_by(memberships_t.c.segment_id)).all())
    for segment in db.session.scalars(select(Segment).order_by(Segment.id)):
        missing: list[str] = []
        extra: list[str] = []
        if segment.id in dynamic:
            joining, leaving = join_and_leave(segment, now)
            missing = list(db.session.scalars(joining.order_by(members_t.c.id).limit(20)))
            extra = list(db.session.scalars(leaving.order_by(memberships_t.c.member_id)
                                            .limit(20)))
        size = int(actual.get(segment.id, 0))
        if missing or extra or size != (segment.size or 0):
            problems.append({"segment_id": segment.id, "name": segment.name,
                             "missing": missing, "extra": extra,
                             "cached_size": segment.size, "actual_size": size})
    bulk_plans(False)
    return problems


def segment_ids_of(member_id: str) -> set[int]:
    """The segments a member is in now (materialized)."""
    return set(db.session.scalars(select(memberships_t.c.segment_id).where(
        memberships_t.c.member_id == member_id)))


__all__ = [
    "Cause", "Delta", "apply_delta", "refresh_segment", "refresh_member", "refresh_members",
    "refresh_all",
    "verify_all", "desired_condition", "refresh_segment_members", "rule_condition", "dependents_of",
    "dynamic_segments_in_order", "segment_ids_of", "current_member_ids", "true",
    "lock_segments", "lock_dynamic_segments", "join_and_leave",
]
