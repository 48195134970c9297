"""Rule benchmark: create a large dynamic segment, edit its rules, verify (issue 21).

`python -m bench rules [--members 1000000] [--database-url URL] [--repeat 3]`

At N members (points spread evenly over 0..999), each round measures, side by side:

- `create`: a dynamic segment `points >= 600` (40 % of members) created through
  `segments.save_segment` (rows, one ADD event each, size, audit, commit);
- `edit`: its rules changed to `points >= 560 and points < 960`, so 4 % leave and 4 % join,
  through `segment_jobs.edit_segment` as the dashboard and the API do it (the change is
  sized first; above SEGMENT_JOB_THRESHOLD it is applied by a job, run at once here);
- `verify`: `membership.verify_all` (the anti-joins of `flask segments verify`).

The reference of each is hand-written SQL doing the same set difference and inserts on a
segment of its own, measured in the same round just before ours: INSERT ... SELECT of the
matching members not in the segment and their events; for the edit a DELETE of the members
that no longer match and an INSERT of those that now do, each with its events (a
data-modifying WITH on PostgreSQL, a temporary table on SQLite), and the size; for verify
the two anti-joins and the row count. On PostgreSQL the reference, like ours, runs without
JIT and without nested-loop joins: a segment created since segment_memberships was last
analyzed is estimated at one row, and a nested loop over it is quadratic. Both segments'
rows and events are deleted at the end of each round, so each round starts from the same
tables. Times are medians over the rounds;
speedup = reference time / our time (target 0.5).

Members are seeded with executemany on SQLite and COPY on PostgreSQL. Without
--database-url or DATABASE_URL the database is a fresh SQLite file; a PostgreSQL URL gets a
throw-away database next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from bench._util import measure, result
from bench.upload import _postgres
from webapp.bulk import insert_rows

FIRST = [{"field": "points", "operator": ">=", "value": 600}]
SECOND = [{"field": "points", "operator": ">=", "value": 560},
          {"field": "points", "operator": "<", "value": 960}]
FIRST_SQL = "m.points >= 600"
SECOND_SQL = "m.points >= 560 AND m.points < 960"
EVENT_COLUMNS = ("action, segment_id, segment_name, customer_segment_id, member_id, source, "
                 "cause, actor_label, upload_id, override_id, created_at")


def _seed_members(db, count: int) -> None:
    """Insert `count` members (points 0..999, evenly spread) at driver speed."""
    from webapp.timeutil import utcnow

    now = utcnow()
    conn = db.session.connection()
    rows = ((str(uuid.UUID(int=(i * 2654435761 + 1) % (1 << 122) | (4 << 76))),
             f"EXT{i:09d}", f"m{i}@bench.test", "bronze", (i * 7919) % 1000, 0, 0, "[]", "{}",
             now, now) for i in range(count))
    insert_rows(conn, "members", ("id", "external_id", "email", "tier", "points", "xp",
                                  "coins", "badges", "custom_fields", "created_at",
                                  "updated_at"), rows)
    db.session.commit()
    if conn.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE members"))
        db.session.commit()


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- the reference: hand-written SQL ----------------------------------------------------------

def _reference_segment(conn, name: str) -> int:
    """A plain segment row for the reference (static, so verify_all only counts it)."""
    conn.exec_driver_sql(
        "INSERT INTO segments (name, description, kind, include, exclude, size, version, "
        "updated_by_label, created_at, updated_at) VALUES "
        f"('{name}', '', 'static', '[]', '[]', 0, 1, '', CURRENT_TIMESTAMP, "
        "CURRENT_TIMESTAMP)")
    return conn.exec_driver_sql(f"SELECT id FROM segments WHERE name = '{name}'").scalar()


def _event_select(segment_id: int, action: str, source_table: str, column: str) -> str:
    return (f"SELECT '{action}', {segment_id}, 'reference', NULL, {column}, 'rule', "
            f"'{{}}', 'bench', NULL, NULL, CURRENT_TIMESTAMP FROM {source_table}")


def _reference_create(db, segment_id: int) -> None:
    """The 40 % who match and are not in yet: rows, events, size; one commit."""
    conn = db.session.connection()
    absent = (f"NOT EXISTS (SELECT 1 FROM segment_memberships s WHERE s.segment_id = "
              f"{segment_id} AND s.member_id = m.id)")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
        conn.exec_driver_sql(
            f"WITH added AS (INSERT INTO segment_memberships (segment_id, member_id, via, "
            f"since) SELECT {segment_id}, m.id, 'rule', CURRENT_TIMESTAMP FROM members m "
            f"WHERE {FIRST_SQL} AND {absent} ORDER BY m.id RETURNING member_id) "
            f"INSERT INTO membership_events ({EVENT_COLUMNS}) "
            f"{_event_select(segment_id, 'ADD', 'added', 'member_id')}")
    else:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE ref_joining (member_id VARCHAR(36) PRIMARY KEY)")
        conn.exec_driver_sql(f"INSERT INTO ref_joining SELECT m.id FROM members m WHERE "
                             f"{FIRST_SQL} AND {absent}")
        conn.exec_driver_sql(f"INSERT INTO membership_events ({EVENT_COLUMNS}) "
                             f"{_event_select(segment_id, 'ADD', 'ref_joining', 'member_id')}"
                             " ORDER BY member_id")
        conn.exec_driver_sql(f"INSERT INTO segment_memberships (segment_id, member_id, via, "
                             f"since) SELECT {segment_id}, member_id, 'rule', "
                             "CURRENT_TIMESTAMP FROM ref_joining ORDER BY member_id")
        conn.exec_driver_sql("DROP TABLE ref_joining")
    conn.exec_driver_sql(f"UPDATE segments SET size = (SELECT count(*) FROM "
                         f"segment_memberships WHERE segment_id = {segment_id}) "
                         f"WHERE id = {segment_id}")
    db.session.commit()


def _reference_edit(db, segment_id: int) -> None:
    """Those who no longer match leave, those who now match join, each with an event."""
    conn = db.session.connection()
    still = f"EXISTS (SELECT 1 FROM members m WHERE m.id = s.member_id AND {SECOND_SQL})"
    absent = (f"NOT EXISTS (SELECT 1 FROM segment_memberships s WHERE s.segment_id = "
              f"{segment_id} AND s.member_id = m.id)")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
        conn.exec_driver_sql(
            f"WITH gone AS (DELETE FROM segment_memberships s WHERE s.segment_id = "
            f"{segment_id} AND NOT {still} RETURNING member_id) "
            f"INSERT INTO membership_events ({EVENT_COLUMNS}) "
            f"{_event_select(segment_id, 'REMOVE', 'gone', 'member_id')} ORDER BY member_id")
        conn.exec_driver_sql(
            f"WITH added AS (INSERT INTO segment_memberships (segment_id, member_id, via, "
            f"since) SELECT {segment_id}, m.id, 'rule', CURRENT_TIMESTAMP FROM members m "
            f"WHERE {SECOND_SQL} AND {absent} ORDER BY m.id RETURNING member_id) "
            f"INSERT INTO membership_events ({EVENT_COLUMNS}) "
            f"{_event_select(segment_id, 'ADD', 'added', 'member_id')}")
    else:
        conn.exec_driver_sql("CREATE TEMP TABLE ref_leaving (member_id VARCHAR(36) PRIMARY KEY)")
        conn.exec_driver_sql(f"INSERT INTO ref_leaving SELECT s.member_id FROM "
                             f"segment_memberships s WHERE s.segment_id = {segment_id} AND "
                             f"NOT {still}")
        conn.exec_driver_sql(f"INSERT INTO membership_events ({EVENT_COLUMNS}) "
                             f"{_event_select(segment_id, 'REMOVE', 'ref_leaving', 'member_id')}"
                             " ORDER BY member_id")
        conn.exec_driver_sql(f"DELETE FROM segment_memberships WHERE segment_id = {segment_id} "
                             "AND member_id IN (SELECT member_id FROM ref_leaving)")
        conn.exec_driver_sql("CREATE TEMP TABLE ref_joining (member_id VARCHAR(36) PRIMARY KEY)")
        conn.exec_driver_sql(f"INSERT INTO ref_joining SELECT m.id FROM members m WHERE "
                             f"{SECOND_SQL} AND {absent}")
        conn.exec_driver_sql(f"INSERT INTO membership_events ({EVENT_COLUMNS}) "
                             f"{_event_select(segment_id, 'ADD', 'ref_joining', 'member_id')}"
                             " ORDER BY member_id")
        conn.exec_driver_sql(f"INSERT INTO segment_memberships (segment_id, member_id, via, "
                             f"since) SELECT {segment_id}, member_id, 'rule', "
                             "CURRENT_TIMESTAMP FROM ref_joining ORDER BY member_id")
        conn.exec_driver_sql("DROP TABLE ref_leaving")
        conn.exec_driver_sql("DROP TABLE ref_joining")
    conn.exec_driver_sql(f"UPDATE segments SET size = (SELECT count(*) FROM "
                         f"segment_memberships WHERE segment_id = {segment_id}) "
                         f"WHERE id = {segment_id}")
    db.session.commit()


def _reference_verify(db, segment_id: int) -> list:
    """The set difference both ways (the first 20 of each) and the row count."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
    missing = conn.exec_driver_sql(
        f"SELECT m.id FROM members m WHERE {SECOND_SQL} AND NOT EXISTS (SELECT 1 FROM "
        f"segment_memberships s WHERE s.segment_id = {segment_id} AND s.member_id = m.id) "
        "ORDER BY m.id LIMIT 20").all()
    extra = conn.exec_driver_sql(
        f"SELECT s.member_id FROM segment_memberships s WHERE s.segment_id = {segment_id} "
        f"AND NOT EXISTS (SELECT 1 FROM members m WHERE m.id = s.member_id AND {SECOND_SQL}) "
        "ORDER BY s.member_id LIMIT 20").all()
    rows = conn.exec_driver_sql(f"SELECT count(*) FROM segment_memberships WHERE "
                                f"segment_id = {segment_id}").scalar()
    db.session.rollback()
    return [missing, extra, rows]


def _drop_segment(db, segment_id: int) -> None:
    """Remove a segment with its rows and events (so the next round starts alike)."""
    conn = db.session.connection()
    for table, column in (("membership_events", "segment_id"),
                          ("segment_memberships", "segment_id"),
                          ("segment_size_snapshots", "segment_id"),
                          ("segment_jobs", "segment_id"),
                          ("segments", "id")):
        conn.exec_driver_sql(f"DELETE FROM {table} WHERE {column} = {segment_id}")
    db.session.commit()
    if conn.dialect.name == "postgresql":  # the deleted rows' space, as autovacuum would
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as auto:
            auto.exec_driver_sql("VACUUM ANALYZE segment_memberships")
            auto.exec_driver_sql("VACUUM ANALYZE membership_events")


# --- one round -----------------------------------------------------------------------------

def _round(db, n: int, index: int) -> dict[str, float]:
    """Each step, the reference then ours; returns the seconds of each."""
    from webapp.models import Segment
    from webapp.services.membership import verify_all
    from webapp.services.segment_jobs import edit_segment
    from webapp.services.segments import save_segment

    times: dict[str, float] = {}
    reference_id = _reference_segment(db.session.connection(), f"reference {index}")
    db.session.commit()
    times["create_reference"] = _timed(lambda: _reference_create(db, reference_id))
    holder: dict[str, Segment] = {}

    def create() -> None:
        holder["segment"] = save_segment({"name": f"ours {index}", "kind": "dynamic",
                                          "include": FIRST}, actor="bench")

    times["create_ours"] = _timed(create)
    segment = holder["segment"]
    expected = sum(1 for i in range(n) if (i * 7919) % 1000 >= 600)
    if segment.size != expected:
        raise SystemExit(f"create: {segment.size} members, {expected} expected")

    times["edit_reference"] = _timed(lambda: _reference_edit(db, reference_id))
    edits: dict[str, object] = {}

    def edit() -> None:
        edits["edit"] = edit_segment({"include": SECOND}, segment=segment, actor="bench",
                                     expected_version=1)

    times["edit_ours"] = _timed(edit)
    job = edits["edit"].job
    db.session.expire_all()
    size = db.session.get(Segment, segment.id).size
    expected = sum(1 for i in range(n) if 560 <= (i * 7919) % 1000 < 960)
    if size != expected:
        raise SystemExit(f"edit: {size} members, {expected} expected")
    times["edit_moved"] = job.total if job is not None else -1
    times["edit_as_job"] = 1.0 if job is not None else 0.0

    found: list = []
    times["verify_reference"] = _timed(lambda: found.append(_reference_verify(db,
                                                                             reference_id)))
    if found[0][:2] != [[], []] or found[0][2] != expected:
        raise SystemExit(f"reference verify found differences: {found[0]}")
    _drop_segment(db, reference_id)
    problems: list = []
    times["verify_ours"] = _timed(lambda: problems.extend(verify_all()))
    db.session.rollback()
    if problems:
        raise SystemExit(f"verify found differences: {json.dumps(problems)[:500]}")
    _drop_segment(db, segment.id)
    return times


def run(argv: list[str]) -> dict:
    """Seed N members, measure the rounds; returns the benchmark JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench rules")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if args.members < 1000:
        raise SystemExit("--members must be at least 1000")
    folder = Path(tempfile.mkdtemp(prefix="beacon-bench-rules-"))
    drop = None
    if args.database_url and args.database_url.startswith("postgres"):
        url, drop = _postgres(args.database_url)
    else:
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["BEACON_INSTANCE_PATH"] = str(folder / "instance")
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "JOBS_SYNC": True,
                      "UPLOAD_FOLDER": str(folder / "uploads"),
                      "WEBHOOKS_AUTO_DELIVER": False})
    measures = []
    try:
        with app.app_context():
            upgrade(revision="heads")
            dialect = db.engine.dialect.name
            started = time.perf_counter()
            _seed_members(db, args.members)
            seeded = time.perf_counter() - started
            rounds = [_round(db, args.members, i) for i in range(args.repeat)]
            n = args.members
            threshold = app.config["SEGMENT_JOB_THRESHOLD"]
            steps = (
                ("create", f"create a dynamic segment of 40 % of {n:,} members ({dialect})",
                 "INSERT ... SELECT of the matching members not in the segment, their ADD "
                 "events and the size, by hand"),
                ("edit", f"edit its rules so 4 % leave and 4 % join ({dialect})",
                 "DELETE of the members no longer matching and INSERT of those now matching "
                 "(anti-joins), their events and the size, by hand"),
                ("verify", f"segments verify after the edit ({dialect})",
                 "the two anti-joins (first 20 each) and the row count, by hand"),
            )
            for step, name, reference_name in steps:
                ours = [r[f"{step}_ours"] for r in rounds]
                reference = [r[f"{step}_reference"] for r in rounds]
                entry = measure(name, "s", statistics.median(ours),
                                statistics.median(reference), reference_name, 0.5,
                                higher_is_better=False)
                entry["round_speedups"] = [round(r / o, 3) for o, r in zip(ours, reference,
                                                                         strict=True)]
                if step == "edit":
                    entry["members_moved"] = int(rounds[0]["edit_moved"])
                    entry["ran_as_job"] = bool(rounds[0]["edit_as_job"])
                    entry["job_threshold"] = threshold
                measures.append(entry)
            db.session.remove()
            db.engine.dispose()
    finally:
        if drop:
            drop()
    return result("rules", measures) | {"members": args.members, "database": dialect,
                                        "rounds": args.repeat,
                                        "seed_seconds": round(seeded, 3)}
