"""Static-list uploads: dry run, apply, undo; one transaction per upload.

The pipeline (`process`) reads the file with `webapp.services.upload_parser`, stages the identifiers
in temporary tables (executemany on SQLite, COPY on PostgreSQL), resolves them to members in
SQL (member id, then external id, then email, as SPEC §6 says), counts what the file holds
and what applying would do, writes the problems report, and, when applying, hands the set of
member ids to `webapp.services.membership.apply_delta` as SELECTs. Nothing is committed here
except by
the job functions at the bottom, once per upload, so a crash or a kill changes nothing.
"""

from __future__ import annotations

import csv
import fcntl
import heapq
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from webapp.bulk import insert_rows
from webapp.extensions import db
from webapp.models import Member, MembershipEvent, Segment, SegmentMembership, Upload
from webapp.services.membership import Cause, apply_delta, lock_segments
from webapp.services.upload_parser import (
    FileRejected,
    FileShape,
    ParseStats,
    Problem,
    choose_column,
    inspect,
    read_identifiers,
    spreadsheet_safe,
)
from webapp.timeutil import utcnow

MODES = ("add", "remove", "replace")
MODE_LABELS = {"add": "Add to the list", "remove": "Remove from the list",
               "replace": "Replace the list", "undo": "Undo"}
SAMPLE_PROBLEMS = 50
# Files up to this size get their dry run during the request; larger ones in the background.
SYNC_BYTES = 2 * 1024 * 1024
TERMINAL = ("ready", "rejected", "applied", "failed", "discarded", "interrupted")
RUNNING = ("analyzing", "applying")
# An upload whose job died: nothing of it was applied; it can be applied (or checked) again.
INTERRUPTED_MESSAGE = ("The {what} was interrupted: the process running it stopped before it "
                       "finished, so nothing was changed. {again}")
JOB_HOURS = 2

members_t = Member.__table__
memberships_t = SegmentMembership.__table__
events_t = MembershipEvent.__table__
segments_t = Segment.__table__

# Progress of jobs running in this process, per upload id, in thousandths; fresher than the
# database row, which SQLite cannot update while the upload's own transaction holds the lock.
_LIVE: dict[int, int] = {}
_LIVE_LOCK = threading.Lock()


class UploadError(Exception):
    """An upload request that is refused; the message says why and nothing changed."""

    def __init__(self, message: str, report: dict[str, Any] | None = None):
        super().__init__(message)
        self.report = report


# --- Progress ------------------------------------------------------------------------------

PHASES = ((0, "Reading the file"), (600, "Finding the members"), (700, "Counting"),
          (800, "Applying"), (1000, "Done"))


def phase_label(progress: int) -> str:
    """What a progress value (thousandths) means, for the progress bar's caption."""
    label = PHASES[0][1]
    for start, name in PHASES:
        if progress >= start:
            label = name
    return label


PROGRESS_KEY = "beacon:upload-progress:{}"
def _progress_redis():
    """The Redis client for live progress when REDIS_URL is set (jobs then run in RQ workers,
    another process than the web server), else None. Short timeouts: progress is a courtesy
    and must never hold up an upload or a page."""
    from webapp.jobs import redis_client

    url = current_app.config.get("REDIS_URL")
    return redis_client(url, 0.5) if url else None


class Progress:
    """Reports an upload's progress: in memory at once, in Redis (when jobs run in RQ) at
    most four times a second, in the database at most twice a second.

    On SQLite the upload's transaction holds the write lock, so the database row cannot
    follow; Redis carries the progress to the web process instead.

    Other background work with a progress bar (segment jobs) subclasses it, naming its own
    table, column, Redis key and in-memory map; `maximum` is the value that means finished.
    """

    table = Upload.__table__
    column = "progress"
    key = PROGRESS_KEY
    live = _LIVE

    def __init__(self, upload_id: int | None, callback: Callable[[int], None] | None = None,
                 maximum: int = 1000):
        self.upload_id = upload_id
        self.callback = callback
        self.maximum = maximum
        self.value = 0
        self.database = upload_id is not None
        self.redis = _progress_redis() if upload_id is not None else None
        self._written = 0.0
        self._pushed = 0.0

    def set(self, value: int) -> None:
        """Move to `value` thousandths (never backwards)."""
        value = max(self.value, min(self.maximum, int(value)))
        if value == self.value:
            return
        self.value = value
        if self.callback is not None:
            self.callback(value)
        if self.upload_id is None:
            return
        with _LIVE_LOCK:
            self.live[self.upload_id] = value
        now = time.monotonic()
        if self.redis is not None and (now - self._pushed > 0.25 or value == self.maximum):
            self._pushed = now
            self._push(value)
        if self.database and now - self._written > 0.5:
            self._written = now
            self._write(value)

    def _push(self, value: int) -> None:
        """Store the progress in Redis for the web process; on failure stop trying."""
        try:
            self.redis.set(self.key.format(self.upload_id), value, ex=JOB_HOURS * 3600)
        except Exception:  # Redis gone: the database row and the final state still tell
            current_app.logger.warning("could not store upload progress in Redis",
                                       exc_info=True)
            self.redis = None

    def _write(self, value: int) -> None:
        """Commit the progress on a separate connection, giving up at once if it would wait."""
        sqlite = db.engine.dialect.name == "sqlite"
        try:
            # Not queued (webapp/__init__.py): it must not wait for the lock it gives up on.
            with db.engine.connect().execution_options(sqlite_deferred=True) as conn:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA busy_timeout = 50")
                try:
                    if not sqlite:
                        conn.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
                    conn.execute(update(self.table).where(
                        self.table.c.id == self.upload_id).values({self.column: value}))
                    conn.commit()
                finally:
                    if sqlite:
                        conn.rollback()
                        conn.exec_driver_sql("PRAGMA busy_timeout = 30000")
        except OperationalError:
            if sqlite:
                self.database = False  # the upload holds the write lock: memory only

    def finish(self) -> None:
        """Forget the live value (the job stores the final state itself)."""
        if self.upload_id is None:
            return
        with _LIVE_LOCK:
            self.live.pop(self.upload_id, None)
        if self.redis is not None:
            try:
                self.redis.delete(self.key.format(self.upload_id))
            except Exception:  # the key expires on its own
                current_app.logger.warning("could not clear upload progress in Redis",
                                           exc_info=True)


def live_progress(upload: Upload) -> int:
    """The freshest known progress of an upload, in thousandths (this process's jobs, an RQ
    worker's through Redis, or the database row)."""
    return freshest(Progress, upload.id, upload.status in RUNNING, upload.progress or 0)


def freshest(progress: type[Progress], row_id: int, running: bool, stored: int) -> int:
    """The freshest known value of a row's progress: this process's jobs, an RQ worker's
    through Redis (while it runs), or the database row (`stored`)."""
    with _LIVE_LOCK:
        live = progress.live.get(row_id) or 0
    if running:
        try:
            client = _progress_redis()
            value = client.get(progress.key.format(row_id)) if client is not None else None
            live = max(live, int(value or 0))
        except Exception:  # Redis gone or a stray value: fall back to what else is known
            current_app.logger.warning("could not read live progress from Redis")
    return max(live, stored)


# --- Configuration and files ---------------------------------------------------------------

def max_bytes() -> int:
    """The largest file accepted, in bytes (UPLOAD_MAX_BYTES, else MAX_CONTENT_LENGTH)."""
    config = current_app.config
    return int(config["UPLOAD_MAX_BYTES"] or config["MAX_CONTENT_LENGTH"])


def upload_folder() -> Path:
    """Where uploaded files and problem reports are kept (UPLOAD_FOLDER or instance/uploads)."""
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _runner_path(upload_id: int, kind: str = "upload") -> Path:
    return upload_folder() / "runners" / f"{kind}-{upload_id}.lock"


@contextmanager
def runner(upload_id: int, kind: str = "upload") -> Iterator[None]:
    """Hold the upload's runner lock while its job (or command) works on it.

    An exclusive flock on a file beside the uploads: the operating system releases it when
    the process dies, however it dies (kill -9 included), so `reap_stale` can tell a running
    upload from one whose process is gone without waiting for a timeout. The status is
    committed before the lock is let go. Other background work (segment jobs) passes its
    own `kind`.
    """
    path = _runner_path(upload_id, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def runner_gone(upload_id: int, kind: str = "upload") -> bool | None:
    """Whether the process that ran this upload is gone (None: it never started one here)."""
    path = _runner_path(upload_id, kind)
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def new_file_path(segment_id: int) -> Path:
    """A fresh path to store an uploaded file for a segment."""
    return upload_folder() / f"segment-{segment_id}-{secrets.token_hex(8)}.csv"


def problems_path(upload: Upload) -> Path | None:
    """The problems CSV of an upload, when it has one."""
    path = upload.report.get("problems_file") if upload.report else None
    return Path(path) if path and Path(path).exists() else None


# --- Staging and resolution ----------------------------------------------------------------

def _memory_temp_store() -> None:
    """SQLite: keep staging tables in memory rather than a temporary file.

    Only possible outside a transaction, so it runs before the segment lock; changing it
    drops the connection's temporary tables, and ours are created after it.
    """
    conn = db.session.connection()
    if conn.dialect.name != "sqlite":
        return
    try:
        if conn.exec_driver_sql("PRAGMA temp_store").scalar() != 2:
            conn.exec_driver_sql("PRAGMA temp_store = MEMORY")
    except OperationalError:
        pass  # inside a transaction already: the default temporary file works too


class Staging:
    """Temporary tables of one upload run: file rows, their members, the distinct members."""

    def __init__(self) -> None:
        self.conn = db.session.connection()
        self.dialect = self.conn.dialect.name
        if self.dialect == "postgresql":
            self._postgres_memory()
        suffix = secrets.token_hex(6)
        metadata = MetaData()
        options: dict[str, Any] = {"prefixes": ["TEMPORARY"]}
        if self.dialect == "postgresql":
            options["postgresql_on_commit"] = "DROP"
        self.rows = Table(f"upload_rows_{suffix}", metadata,
                          Column("line", Integer, primary_key=True, autoincrement=False),
                          Column("ident", Text, nullable=False), **options)
        # member_id is unique by construction (GROUP BY); SQLite wants it as the key for its
        # lookups, PostgreSQL hashes instead and is spared the index maintenance.
        postgres = self.dialect == "postgresql"
        self.members = Table(f"upload_members_{suffix}", metadata,
                             Column("member_id", String(36), primary_key=not postgres,
                                    nullable=False),
                             Column("line", Integer, nullable=False),
                             Column("rows", Integer, nullable=False),
                             sqlite_with_rowid=False, **options)
        self.tables = (self.rows, self.members)
        for table in self.tables:
            table.create(self.conn)

    def _postgres_memory(self) -> None:
        """Room for the staging tables and their sorts in memory, and no JIT, for this
        transaction.

        temp_buffers can only grow before the session's first temporary table, so on a
        pooled connection that already had one the setting is kept as it is.
        """
        self.conn.exec_driver_sql("SET LOCAL work_mem = '128MB'")
        # The planner's cost of the identifier lookups over a large file passes the JIT
        # thresholds, and compiling them takes longer than running them (0.3 s at 100,000).
        self.conn.exec_driver_sql("SET LOCAL jit = off")
        try:
            with self.conn.begin_nested():
                self.conn.exec_driver_sql("SET LOCAL temp_buffers = '256MB'")
        except DBAPIError:
            pass

    def stage(self, batch: list[tuple[int, str]]) -> None:
        """Append (line, identifier) rows: COPY on PostgreSQL, executemany elsewhere."""
        insert_rows(self.conn, self.rows.name, ("line", "ident"), batch)

    def _resolution(self):
        """(FROM clause, member id expression) naming each staged row's member or NULL."""
        rows = self.rows
        if self.dialect == "postgresql":
            matches = self._matches()  # the same matching as resolve(): one definition
            return (rows.outerjoin(matches, matches.c.line == rows.c.line),
                    matches.c.member_id)
        # One index probe per kind that can match: ids are 36 characters, emails have @.
        return rows, func.coalesce(
            case((func.length(rows.c.ident) == 36, select(members_t.c.id).where(
                members_t.c.id == rows.c.ident).scalar_subquery())),
            select(members_t.c.id).where(
                members_t.c.external_id == rows.c.ident).scalar_subquery(),
            case((func.instr(rows.c.ident, "@") > 0, select(members_t.c.id).where(
                members_t.c.email == func.lower(rows.c.ident)).scalar_subquery())))

    def resolved(self, materialized: bool = False):
        """Every staged row: line, ident, member_id (NULL when unknown).

        `materialized` computes it once (SQLite would otherwise evaluate the lookups again
        for each use of member_id in the statement).
        """
        joined, member = self._resolution()
        query = select(self.rows.c.line, self.rows.c.ident, member.label("member_id")) \
            .select_from(joined)
        if materialized and self.dialect == "sqlite":
            return query.cte("resolved").prefix_with("MATERIALIZED")
        return query.subquery("resolved")

    def _matches(self, lock: bool = False):
        """PostgreSQL: each staged row that names a member, with that member (line, member_id).

        One inner join per kind of identifier, each over the rows that can be of that kind
        and are not taken by an earlier kind (member id, then external id, then email: SPEC
        section 6), so every line appears at most once without sorting the rows. A join
        whose rows cannot match costs next to nothing, where outer joins would each hash
        every member.

        With `lock`, each join also locks the members it finds FOR KEY SHARE (the lock a
        foreign-key check takes), so the apply that follows need not join them again.
        """
        rows = self.rows
        by_id, by_ext = members_t.alias("by_id"), members_t.alias("by_ext")
        is_id = func.length(rows.c.ident) == 36
        not_an_id = case((is_id, ~exists().where(by_id.c.id == rows.c.ident)), else_=true())
        branches = [
            select(rows.c.line, members_t.c.id.label("member_id"))
            .join_from(rows, members_t, members_t.c.id == rows.c.ident).where(is_id),
            select(rows.c.line, members_t.c.id.label("member_id"))
            .join_from(rows, members_t, members_t.c.external_id == rows.c.ident)
            .where(not_an_id),
            select(rows.c.line, members_t.c.id.label("member_id"))
            .join_from(rows, members_t, members_t.c.email == func.lower(rows.c.ident))
            .where(func.strpos(rows.c.ident, "@") > 0, not_an_id,
                   ~exists().where(by_ext.c.external_id == rows.c.ident)),
        ]
        if lock:  # row locks are not allowed beside UNION: each branch locks in its own CTE
            branches = [select(cte.c.line, cte.c.member_id) for cte in (
                branch.with_for_update(read=True, key_share=True, of=members_t)
                .cte(f"locked_{kind}") for kind, branch in enumerate(branches))]
        return union_all(*branches).subquery("matches")

    def resolve(self, lock: bool = False) -> None:
        """The distinct members the rows name, each with its first line and its row count.

        `lock` (PostgreSQL): hold FOR KEY SHARE on those members until the transaction ends.
        """
        if self.dialect == "postgresql":
            self.conn.exec_driver_sql(f"ANALYZE {self.rows.name}")
            matches = self._matches(lock)
            grouped = select(matches.c.member_id, func.min(matches.c.line), func.count()) \
                .group_by(matches.c.member_id)
            if lock:
                # For an apply, in member_id order: grouping by sorting beats hashing a
                # million groups, and the add then inserts in index order from input that is
                # already sorted. The locking CTEs have no statistics (the planner guesses 200
                # groups and would hash them), hence the setting for this one statement.
                self.conn.exec_driver_sql("SET LOCAL enable_hashagg = off")
                grouped = grouped.order_by(matches.c.member_id)
            self.conn.execute(insert(self.members).from_select(
                ["member_id", "line", "rows"], grouped))
            if lock:
                self.conn.exec_driver_sql("SET LOCAL enable_hashagg = DEFAULT")
            self.conn.exec_driver_sql(f"ANALYZE {self.members.name}")
            return
        resolved = self.resolved(materialized=True)
        self.conn.execute(insert(self.members).from_select(
            ["member_id", "line", "rows"],
            select(resolved.c.member_id, func.min(resolved.c.line), func.count())
            .where(resolved.c.member_id.is_not(None)).group_by(resolved.c.member_id)))

    def count(self, query) -> int:
        """A count query's value."""
        return int(self.conn.scalar(query) or 0)

    def on_list(self, segment_id: int):
        """SQL condition: the staged member is on the segment's list now."""
        return exists().where(memberships_t.c.segment_id == segment_id,
                              memberships_t.c.member_id == self.members.c.member_id)

    def member_ids(self):
        """SELECT of the distinct members the file names (a `member_id` column)."""
        return select(self.members.c.member_id)

    def not_in_file(self, segment_id: int):
        """SELECT of the list's members the file does not name (for replace)."""
        return select(memberships_t.c.member_id).where(
            memberships_t.c.segment_id == segment_id,
            ~exists().where(self.members.c.member_id == memberships_t.c.member_id))

    def problems(self, segment_id: int, report: dict[str, Any]) -> Iterator[Problem]:
        """Unknown, duplicate and (for remove) not-on-list rows, each sorted by line."""
        rows, members = self.rows, self.members
        streams: list[Iterable[Problem]] = []
        if report["unknown"]:
            streams.append(self._unknown())
        if report["duplicates"]:
            streams.append(self._duplicates())
        if report["mode"] == "remove" and report["not_on_list"]:
            absent = self.conn.execute(
                select(members.c.line, rows.c.ident).join(rows, rows.c.line == members.c.line)
                .where(~self.on_list(segment_id)).order_by(members.c.line))
            streams.append(Problem(line, ident, "not_on_list",
                                   "not on the list, so there is nothing to remove")
                           for line, ident in absent)
        return heapq.merge(*streams, key=lambda p: p.line)

    def _unknown(self) -> Iterator[Problem]:
        resolved = self.resolved()
        unknown = self.conn.execute(
            select(resolved.c.line, resolved.c.ident)
            .where(resolved.c.member_id.is_(None)).order_by(resolved.c.line))
        for line, ident in unknown:
            yield Problem(line, ident, "unknown_member",
                          "no member has this member id, external id or email")

    def _duplicates(self) -> Iterator[Problem]:
        resolved, members = self.resolved(), self.members
        duplicate = self.conn.execute(
            select(resolved.c.line, resolved.c.ident, members.c.line)
            .join(members, members.c.member_id == resolved.c.member_id)
            .where(resolved.c.line != members.c.line).order_by(resolved.c.line))
        for line, ident, first in duplicate:
            yield Problem(line, ident, "duplicate", f"same member as line {first}")

    def drop(self) -> None:
        """Drop the tables (PostgreSQL drops them at the end of the transaction anyway)."""
        if self.dialect == "postgresql":
            return
        for table in self.tables:
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table.name}")


def score_column(values: list[str]) -> int:
    """How many of these sample values name a known member (to detect the id column)."""
    values = [v for v in values if v][:200]
    if not values:
        return 0
    lowered = [v.lower() for v in values]
    found = db.session.scalar(select(func.count()).select_from(members_t).where(or_(
        members_t.c.id.in_(values), members_t.c.external_id.in_(values),
        members_t.c.email.in_(lowered))))
    return int(found or 0)


# --- Locking -------------------------------------------------------------------------------

def lock_segment(segment_id: int) -> Segment:
    """Take the segment's write lock for this transaction (uploads to it are serialized).

    PostgreSQL: SELECT ... FOR UPDATE on the segment row. SQLite has one writer at a time;
    a no-op write takes that lock now, before anything is read, so the transaction cannot
    be overtaken between reading the list and writing it.
    """
    try:
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL lock_timeout = '120s'"))
        # The one membership write lock (webapp.membership): this segment and its dependents.
        lock_segments([segment_id])
        segment = db.session.get(Segment, segment_id)
    except OperationalError as exc:
        db.session.rollback()
        raise UploadError("Another change to this segment is being saved and did not finish "
                          "in time. Nothing was changed; try again in a moment.") from exc
    if segment is None:
        raise UploadError("The segment no longer exists.")
    return segment


def mark_changed(segment: Segment, upload: Upload) -> None:
    """Record who last changed the segment (its list); `version` guards definitions only."""
    segment.updated_by_label = (upload.actor_label or "unknown")[:200]
    segment.updated_by_id = upload.actor_id
    segment.updated_at = utcnow()


# --- The pipeline --------------------------------------------------------------------------

def effect(mode: str, current: int, distinct: int, on_list: int) -> dict[str, int]:
    """What applying would do to a list of `current` members."""
    if mode == "add":
        added, removed = distinct - on_list, 0
    elif mode == "remove":
        added, removed = 0, on_list
    else:
        added, removed = distinct - on_list, current - on_list
    new_size = current + added - removed
    return {"added": added, "removed": removed, "unchanged": new_size - added,
            "new_size": new_size}


def over_limit_message(new_size: int, limit: int) -> str | None:
    """The refusal when a list would exceed the per-segment member limit."""
    if new_size <= limit:
        return None
    return (f"The list would have {new_size:,} members; the limit per static segment is "
            f"{limit:,}, so this upload is {new_size - limit:,} over.")


def list_marker(segment_id: int) -> dict[str, int]:
    """The list's state for telling whether a dry run is out of date: size and last event."""
    last = db.session.scalar(select(func.max(events_t.c.id)).where(
        events_t.c.segment_id == segment_id))
    # The cached size (kept by apply_delta) costs one row read, not a count of the list.
    size = db.session.scalar(select(segments_t.c.size).where(segments_t.c.id == segment_id))
    return {"last_event": int(last or 0), "size": int(size or 0)}


def is_stale(upload: Upload) -> bool:
    """Whether the list changed since this upload's dry run was computed."""
    if upload.status not in ("ready", "interrupted") or not (upload.report or {}).get("effect"):
        return False
    seen = (upload.report or {}).get("list_marker")
    return seen != list_marker(upload.segment_id)


STALE_MESSAGE = ("The list changed since this dry run, so its numbers were out of date; "
                 "nothing was applied. The report is computed again against the list as it "
                 "is now: review the new numbers, then confirm.")


class StaleReport(UploadError):
    """Applying found the list changed since the dry run: the confirmed numbers are wrong."""


def rerun_dry_run(upload: Upload) -> str:
    """Compute an upload's dry run again against the list as it is now (commits)."""
    if upload.status not in ("ready", "interrupted") or upload.mode == "undo":
        raise UploadError(_not_ready(upload))
    upload.status = "analyzing"
    upload.progress = 0
    upload.error = None
    db.session.commit()
    return start_dry_run(upload)


def process(upload: Upload, *, apply: bool, progress: Progress | None = None,
            problems_file: Path | None = None) -> dict[str, Any]:
    """Read, resolve and count an upload's file; with `apply`, change the list (no commit).

    Raises FileRejected when the file cannot be read as a list and UploadError when the
    change is refused (dynamic segment, member limit, nothing to apply); either way nothing
    has been written.
    """
    progress = progress or Progress(None)
    options = dict(upload.report.get("options") or {})
    mode = upload.mode
    path = Path(upload.stored_path or "")
    if not path.is_file():
        raise FileRejected("The uploaded file is no longer stored; upload it again.")
    shape = inspect(path, max_bytes=max_bytes(), header=options.get("header"))
    column, detected_by = choose_column(shape, options.get("column"), score=score_column)
    _memory_temp_store()
    segment = lock_segment(upload.segment_id) if apply else db.session.get(
        Segment, upload.segment_id)
    if segment is None:
        raise UploadError("The segment no longer exists.")
    if segment.kind != "static":
        raise UploadError(f"{segment.name!r} is a dynamic segment: its members come from its "
                          "rules. Only static segments take uploaded lists.")
    staging = Staging()
    try:
        stats = ParseStats()
        size = max(shape.size, 1)
        for batch in read_identifiers(path, shape, column, stats,
                                      progress=lambda done: progress.set(600 * done / size)):
            staging.stage(batch)
        progress.set(600)
        # Members locked while resolving (FOR KEY SHARE, as a foreign-key check does) spare
        # the apply another join with them to check and lock them (webapp.services.membership).
        locked = apply and mode != "remove" and staging.dialect == "postgresql"
        staging.resolve(lock=locked)
        progress.set(700)
        report = _report(upload, segment, shape, column, detected_by, stats, staging)
        report["list_marker"] = list_marker(segment.id)
        problems = _write_problems(staging.problems(segment.id, report), stats.invalid,
                                   problems_file)
        report.update(problems)
        progress.set(800)
        refusal = report["refusal"]
        if apply:
            # A confirmed dry run must still hold (the command line applies without one).
            confirmed = (upload.report or {}).get("effect")
            if confirmed is not None and confirmed != report["effect"]:
                raise StaleReport(STALE_MESSAGE, report)
            if refusal:
                raise UploadError(refusal, report)
            cause = Cause("upload", upload.actor_label or "unknown",
                          {"upload_id": upload.id, "filename": upload.filename, "mode": mode},
                          upload_id=upload.id)
            if mode == "add":
                delta = apply_delta(segment, add=staging.member_ids(), via="list", cause=cause,
                                    members_locked=locked)
            elif mode == "remove":
                delta = apply_delta(segment, remove=staging.member_ids(), via="list",
                                    cause=cause)
            else:
                delta = apply_delta(segment, add=staging.member_ids(),
                                    remove=staging.not_in_file(segment.id), via="list",
                                    cause=cause, members_locked=locked)
            report["applied"] = {"added": delta.added, "removed": delta.removed,
                                 "size": segment.size}
            mark_changed(segment, upload)
            progress.set(980)
        return report
    finally:
        staging.drop()


def _report(upload: Upload, segment: Segment, shape: FileShape, column: int,
            detected_by: str, stats: ParseStats, staging: Staging) -> dict[str, Any]:
    """The dry-run counts and effect."""
    named = staging.conn.execute(select(func.count(), func.coalesce(
        func.sum(staging.members.c.rows), 0))).one()
    distinct, matched = int(named[0]), int(named[1])
    unknown = stats.valid - matched
    on_list = staging.count(select(func.count()).select_from(staging.members).where(
        staging.on_list(segment.id)))
    current = staging.count(select(func.count()).select_from(memberships_t).where(
        memberships_t.c.segment_id == segment.id))
    outcome = effect(upload.mode, current, distinct, on_list)
    limit = int(current_app.config["LIMIT_STATIC_MEMBERS"])
    refusal = over_limit_message(outcome["new_size"], limit)
    if distinct == 0 and refusal is None:
        refusal = ("No row names a known member, so there is nothing to apply."
                   if stats.valid else "The file has no usable identifiers.")
    return {
        "mode": upload.mode,
        "options": upload.report.get("options") or {},
        "file": {"size": shape.size, "bom": shape.bom, "delimiter": shape.delimiter,
                 "header": shape.has_header, "columns": shape.columns,
                 "column_names": shape.header, "line_endings": shape.line_endings},
        "column": {"index": column, "label": shape.column_label(column),
                   "detected_by": detected_by},
        "rows": stats.rows, "blank_lines": stats.blank_lines, "valid": stats.valid,
        "invalid": len(stats.invalid), "unknown": unknown,
        "duplicates": matched - distinct, "distinct": distinct,
        "on_list": on_list, "not_on_list": distinct - on_list, "current_size": current,
        "effect": outcome, "limit": limit, "refusal": refusal,
    }


def _write_problems(found: Iterator[Problem], invalid: list[Problem],
                    path: Path | None) -> dict[str, Any]:
    """Write every problem, in line order, to a CSV file; keep the first ones for the page."""
    sample: list[dict] = []
    counts: dict[str, int] = {}
    handle = path.open("w", newline="", encoding="utf-8") if path else None
    try:
        writer = csv.writer(handle) if handle else None
        if writer:
            writer.writerow(["line", "identifier", "problem", "detail"])
        for problem in heapq.merge(invalid, found, key=lambda p: p.line):
            counts[problem.problem] = counts.get(problem.problem, 0) + 1
            if len(sample) < SAMPLE_PROBLEMS:
                sample.append(problem.as_dict())
            if writer:
                writer.writerow([spreadsheet_safe(cell) for cell in (
                    problem.line, problem.identifier, problem.problem, problem.detail)])
    finally:
        if handle:
            handle.close()
    total = sum(counts.values())
    return {"problems": sample, "problem_count": total, "problem_counts": counts,
            "problems_file": str(path) if path and total else None}


# --- Uploads from the dashboard and the command line ---------------------------------------

def create_upload(segment: Segment, *, stored_path: Path, filename: str, mode: str,
                  actor_label: str, actor_id: int | None = None, column: str | None = None,
                  header: bool | None = None) -> Upload:
    """Record a new upload of a stored file to a static segment (commits)."""
    if segment.kind != "static":
        raise UploadError(f"{segment.name!r} is a dynamic segment: its members come from its "
                          "rules. Only static segments take uploaded lists.")
    if segment.archived_at is not None:
        raise UploadError(f"{segment.name!r} is archived: restore it on its page before "
                          "uploading a list to it.")
    if mode not in MODES:
        raise UploadError(f"Unknown mode {mode!r}: choose add, remove or replace.")
    upload = Upload(segment_id=segment.id, filename=(filename or "upload.csv")[:255],
                    mode=mode, status="analyzing", stored_path=str(stored_path),
                    identifier_column=None, actor_id=actor_id, actor_label=actor_label,
                    report={"options": {"column": column or None, "header": header}},
                    progress=0, total=1000)
    db.session.add(upload)
    db.session.commit()
    return upload


PROBLEMS_SUFFIX = ".problems.csv"
KEEP_HOURS = 24
SWEPT_MESSAGE = ("Discarded automatically: it was not applied within {hours:g} hours of the "
                 "upload. Upload the file again to apply it.")


def sweep_unapplied(now: datetime | None = None) -> int:
    """Discard dry runs not applied within UPLOAD_KEEP_HOURS (default 24) and delete the
    files nothing needs any more; returns how many files were deleted (commits).

    Kept: the files of uploads still running or awaiting confirmation within the age, and
    the problems report of applied uploads (the history links to it). Deleted: the stored
    files of older unapplied, refused and failed uploads, and stray files in the folder
    older than the age that no upload names (a request that died before recording one).
    """
    hours = float(current_app.config.get("UPLOAD_KEEP_HOURS") or KEEP_HOURS)
    now = now or utcnow()
    cutoff = now - timedelta(hours=hours)
    folder = upload_folder()
    removed = 0
    for upload in db.session.scalars(select(Upload).where(
            Upload.status.in_(("ready", "rejected", "failed")),
            Upload.stored_path.is_not(None), Upload.created_at < cutoff)):
        removed += _remove_files(upload)
        if upload.status == "ready":
            upload.status = "discarded"
            upload.error = SWEPT_MESSAGE.format(hours=hours)
            upload.finished_at = now
        upload.stored_path = None
    db.session.commit()
    stray: dict[str, list[Path]] = {}
    oldest = time.time() - hours * 3600
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mtime < oldest:
            source = str(folder / path.name.removesuffix(PROBLEMS_SUFFIX))
            stray.setdefault(source, []).append(path)
    if not stray:
        return removed
    named = dict(db.session.execute(select(Upload.stored_path, Upload.status).where(
        Upload.stored_path.in_(list(stray)))).tuples().all())
    for source, paths in stray.items():
        status = named.get(source)
        if status in ("analyzing", "applying", "ready"):
            continue
        for path in paths:
            if status == "applied" and path.name.endswith(PROBLEMS_SUFFIX):
                continue
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def start_dry_run(upload: Upload) -> str:
    """Run the dry run now for small files, in the background for large ones.

    Old unapplied uploads' files are swept first, so the folder does not grow forever.
    """
    try:
        sweep_unapplied()
    except OSError:  # a file that cannot be deleted now is tried again at the next upload
        db.session.rollback()
        current_app.logger.warning("could not sweep old upload files", exc_info=True)
    size = Path(upload.stored_path or "").stat().st_size if upload.stored_path else 0
    if size <= SYNC_BYTES:
        run_dry_run(upload.id)
        return "now"
    from webapp.jobs import enqueue

    return enqueue("webapp.services.uploads.run_dry_run", upload.id)


def run_dry_run(upload_id: int) -> None:
    """Job: compute an upload's dry-run report and store it (the list is not touched)."""
    with runner(upload_id):
        _run_dry_run(upload_id)


def _run_dry_run(upload_id: int) -> None:
    upload = db.session.get(Upload, upload_id)
    if upload is None:
        return
    progress = Progress(upload.id)
    problems_file = Path(str(upload.stored_path) + PROBLEMS_SUFFIX)
    try:
        report = process(upload, apply=False, progress=progress, problems_file=problems_file)
    except (FileRejected, UploadError) as exc:
        db.session.rollback()
        _finish(upload_id, "rejected", error=str(exc))
        return
    except Exception:
        db.session.rollback()
        current_app.logger.exception("dry run of upload %s failed", upload_id)
        _finish(upload_id, "failed", error="The file could not be checked because of an "
                "unexpected error. Nothing was changed.")
        return
    finally:
        progress.finish()
    db.session.rollback()
    _finish(upload_id, "ready", report=report, finished=False)


def _finish(upload_id: int, status: str, *, report: dict | None = None,
            error: str | None = None, finished: bool = True) -> None:
    """Store an upload's outcome and commit."""
    upload = db.session.get(Upload, upload_id)
    if upload is None:
        return
    upload.status = status
    upload.error = error
    upload.progress = 1000
    if report is not None:
        upload.report = report
        upload.identifier_column = report["column"]["label"][:255]
        upload.total = report["rows"]
    if finished:
        upload.finished_at = utcnow()
    db.session.commit()


def reap_stale(segment_id: int) -> int:
    """Mark uploads whose job died as interrupted; returns how many (commits when any).

    A job holds its runner lock (`runner`) while it runs, so one whose process died is
    found at once; one that never started (a queue lost with its worker) after JOB_HOURS.
    Its transaction died with it, so nothing was changed, and it can be run again.
    """
    cutoff = (utcnow() - timedelta(hours=JOB_HOURS)).isoformat()
    dead = []
    for upload in db.session.scalars(select(Upload).where(
            Upload.segment_id == segment_id, Upload.status.in_(RUNNING))):
        with _LIVE_LOCK:
            if upload.id in _LIVE:
                continue
        gone = runner_gone(upload.id)
        if gone or (gone is None and (upload.report or {}).get(
                "started_at", upload.created_at.isoformat()) < cutoff):
            dead.append(upload)
    marked = 0
    for upload in dead:
        if upload.mode == "undo":
            again = "Undo the upload again if you still want it undone."
        elif upload.status == "applying" and (upload.report or {}).get("effect"):
            again = "Review the dry run and apply it again."
        else:
            again = "Run the dry run again."
        what = {"undo": "undo"}.get(upload.mode, "upload" if upload.status == "applying"
                                    else "dry run")
        # Only if it is still running: a job that finished between the read and now wins.
        marked += db.session.execute(update(Upload).where(
            Upload.id == upload.id, Upload.status.in_(RUNNING)).values(
            status="interrupted", progress=0, finished_at=utcnow(),
            error=INTERRUPTED_MESSAGE.format(what=what, again=again))).rowcount or 0
    if dead:
        db.session.commit()
        for upload in dead:
            db.session.refresh(upload)
    return marked


def applying_upload(segment_id: int, exclude: int | None = None) -> Upload | None:
    """An upload (or undo) to this segment that is being applied now, if any."""
    reap_stale(segment_id)
    query = select(Upload).where(Upload.segment_id == segment_id, Upload.status == "applying")
    if exclude is not None:
        query = query.where(Upload.id != exclude)
    return db.session.scalars(query.order_by(Upload.id)).first()


def request_apply(upload: Upload) -> str:
    """Confirm a dry-run upload: mark it applying and start the job (commits).

    An interrupted apply can be confirmed again (its dry run is checked against the list).
    """
    if upload.status not in ("ready", "interrupted") or upload.mode == "undo" \
            or not (upload.report or {}).get("effect"):
        raise UploadError(_not_ready(upload))
    refusal = (upload.report or {}).get("refusal")
    if refusal:
        raise UploadError(refusal)
    busy = applying_upload(upload.segment_id, exclude=upload.id)
    if busy is not None:
        raise UploadError(f"Upload #{busy.id} to this segment is being applied; wait until it "
                          "finishes, then apply this one.")
    if is_stale(upload):
        rerun_dry_run(upload)
        raise StaleReport(STALE_MESSAGE)
    upload.status = "applying"
    upload.progress = 0
    upload.report = {**upload.report, "started_at": utcnow().isoformat()}
    db.session.commit()
    from webapp.jobs import enqueue

    return enqueue("webapp.services.uploads.run_apply", upload.id)


def _not_ready(upload: Upload) -> str:
    return {
        "analyzing": "The file is still being checked; apply it when the report is ready.",
        "applying": "This upload is already being applied.",
        "applied": "This upload has already been applied.",
        "rejected": "This file was refused; upload a corrected file.",
        "failed": "This upload failed; upload the file again.",
        "discarded": "This upload was discarded; upload the file again.",
        "interrupted": ("This undo was interrupted; undo the upload again."
                        if upload.mode == "undo" else
                        "This dry run was interrupted; run it again before applying."),
    }.get(upload.status, f"This upload cannot be applied ({upload.status}).")


def run_apply(upload_id: int, progress_callback: Callable[[int], None] | None = None) -> bool:
    """Job: apply a confirmed upload in one transaction; returns whether it was applied."""
    with runner(upload_id):
        return _run_apply(upload_id, progress_callback)


def _run_apply(upload_id: int, progress_callback: Callable[[int], None] | None = None) -> bool:
    upload = db.session.get(Upload, upload_id)
    if upload is None:
        return False
    progress = Progress(upload.id, progress_callback)
    problems_file = Path(str(upload.stored_path) + PROBLEMS_SUFFIX) if upload.stored_path \
        else None
    try:
        report = process(upload, apply=True, progress=progress, problems_file=problems_file)
        upload.report = report
        upload.identifier_column = report["column"]["label"][:255]
        upload.total = report["rows"]
        upload.status = "applied"
        upload.error = None
        upload.progress = 1000
        upload.finished_at = utcnow()
        db.session.commit()
        _remove_source(upload)
    except StaleReport as exc:
        db.session.rollback()
        if exc.report is None:
            _finish(upload_id, "failed", error=f"{exc} Nothing was changed.")
            return False
        # The fresh counts (taken under the lock) become the dry run to review.
        _finish(upload_id, "ready", report=exc.report, finished=False, error=str(exc))
        return False
    except (FileRejected, UploadError) as exc:
        db.session.rollback()
        _finish(upload_id, "failed", error=f"{exc} Nothing was changed.")
        _remove_source(db.session.get(Upload, upload_id))
        return False
    except Exception:
        db.session.rollback()
        current_app.logger.exception("applying upload %s failed", upload_id)
        _finish(upload_id, "failed", error="The upload failed because of an unexpected error. "
                "Nothing was changed.")
        return False
    finally:
        progress.finish()
    return True


def discard(upload: Upload) -> None:
    """Drop a dry-run upload that will not be applied, with its stored files (commits)."""
    if upload.status not in ("ready", "rejected", "failed", "interrupted") \
            or upload.mode == "undo":
        raise UploadError(_not_ready(upload))
    _remove_files(upload)
    upload.status = "discarded"
    upload.finished_at = utcnow()
    db.session.commit()


def _remove_source(upload: Upload | None) -> None:
    """Delete the uploaded file once it cannot be applied again (the report stays)."""
    if upload is not None and upload.stored_path:
        Path(upload.stored_path).unlink(missing_ok=True)


def _remove_files(upload: Upload) -> int:
    """Delete an upload's stored file and problems report; returns how many existed."""
    removed = 0
    for path in (upload.stored_path, (upload.report or {}).get("problems_file")):
        if path and Path(path).exists():
            Path(path).unlink(missing_ok=True)
            removed += 1
    return removed


# --- History and undo ----------------------------------------------------------------------

def latest_undoable(segment_id: int) -> Upload | None:
    """The segment's most recent applied upload that has not been undone."""
    return db.session.scalars(
        select(Upload).where(Upload.segment_id == segment_id, Upload.status == "applied",
                             Upload.mode.in_(MODES), Upload.undone_at.is_(None))
        .order_by(Upload.finished_at.desc(), Upload.id.desc())).first()


def request_undo(upload: Upload, *, actor_label: str, actor_id: int | None = None) -> Upload:
    """Start undoing the segment's latest upload; returns the undo's own upload row (commits)."""
    latest = latest_undoable(upload.segment_id)
    if latest is None or latest.id != upload.id:
        raise UploadError("Only the latest applied upload of a segment can be undone.")
    busy = applying_upload(upload.segment_id)
    if busy is not None:
        raise UploadError(f"Upload #{busy.id} to this segment is being applied; wait until it "
                          "finishes.")
    undo = Upload(segment_id=upload.segment_id, filename=upload.filename, mode="undo",
                  status="applying", actor_id=actor_id, actor_label=actor_label,
                  report={"undo_of": upload.id}, progress=0, total=1000)
    db.session.add(undo)
    db.session.commit()
    from webapp.jobs import enqueue

    enqueue("webapp.services.uploads.run_undo", undo.id)
    return undo


def undo_upload(undo: Upload, progress: Progress | None = None) -> dict[str, Any]:
    """Reverse the upload named by `undo.report['undo_of']`: re-add whom it removed and remove
    whom it added, with events carrying the undo's own upload id (no commit)."""
    progress = progress or Progress(None)
    segment = lock_segment(undo.segment_id)
    target = db.session.get(Upload, int(undo.report["undo_of"]))
    if target is None or target.undone_at is not None or target.status != "applied":
        raise UploadError("That upload has already been undone or was never applied.")
    latest = latest_undoable(undo.segment_id)
    if latest is None or latest.id != target.id:
        raise UploadError("A later upload was applied since; only the latest can be undone.")
    added = select(events_t.c.member_id).where(events_t.c.upload_id == target.id,
                                               events_t.c.segment_id == segment.id,
                                               events_t.c.action == "ADD")
    removed = select(events_t.c.member_id).where(events_t.c.upload_id == target.id,
                                                 events_t.c.segment_id == segment.id,
                                                 events_t.c.action == "REMOVE")
    back = select(func.count()).select_from(removed.subquery()).scalar_subquery()
    new_size = db.session.scalar(select(
        literal(segment.size) + back - select(func.count()).select_from(memberships_t).where(
            memberships_t.c.segment_id == segment.id,
            memberships_t.c.member_id.in_(added)).scalar_subquery())) or 0
    limit = int(current_app.config["LIMIT_STATIC_MEMBERS"])
    refusal = over_limit_message(int(new_size), limit)
    if refusal:
        raise UploadError(refusal)
    progress.set(500)
    cause = Cause("upload", undo.actor_label or "unknown",
                  {"upload_id": undo.id, "undo_of": target.id, "mode": "undo"},
                  upload_id=undo.id)
    delta = apply_delta(segment, add=removed, remove=added, via="list", cause=cause)
    target.undone_at = utcnow()
    mark_changed(segment, undo)
    progress.set(980)
    return {"undo_of": target.id, "applied": {"added": delta.added, "removed": delta.removed,
                                              "size": segment.size}}


def run_undo(undo_id: int) -> bool:
    """Job: apply an undo in one transaction; returns whether it was applied."""
    with runner(undo_id):
        return _run_undo(undo_id)


def _run_undo(undo_id: int) -> bool:
    undo = db.session.get(Upload, undo_id)
    if undo is None:
        return False
    progress = Progress(undo.id)
    try:
        report = undo_upload(undo, progress)
        undo.report = report
        undo.status = "applied"
        undo.progress = 1000
        undo.finished_at = utcnow()
        db.session.commit()
    except UploadError as exc:
        db.session.rollback()
        _finish(undo_id, "failed", error=f"{exc} Nothing was changed.")
        return False
    except Exception:
        db.session.rollback()
        current_app.logger.exception("undo %s failed", undo_id)
        _finish(undo_id, "failed", error="The undo failed because of an unexpected error. "
                "Nothing was changed.")
        return False
    finally:
        progress.finish()
    return True


def history(segment_id: int, page: int = 1, per_page: int = 20):
    """The segment's uploads, newest first, paginated."""
    return db.paginate(select(Upload).where(Upload.segment_id == segment_id)
                       .order_by(Upload.id.desc()), page=page, per_page=per_page,
                       error_out=False)
