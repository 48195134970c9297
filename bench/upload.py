"""Upload benchmark: validate and apply N identifiers in add mode to an empty static list.

`python -m bench upload [--sizes 100000,1000000] [--database-url URL] [--repeat 1]`

Ours is the real pipeline end to end (read the CSV file, stage the identifiers, resolve them
to members, count the dry-run report, apply_delta with one event per member, commit). The
reference, measured in the same round on the same database, is a plain insert of the same
(segment_id, member_id, via, since) rows into segment_memberships itself, for another new
segment: executemany on SQLite, COPY on PostgreSQL. It runs just before ours and its rows are
then deleted, so both insert into the table as earlier rounds left it (same keys, indexes,
foreign keys and rows). Throughput is rows per second; the targets are 0.5x the reference on
SQLite and 0.8x on PostgreSQL.

On PostgreSQL ours checks its foreign keys set-based when the role may set
session_replication_role (webapp.services.membership.set_based_checks); a second measure runs ours
with the per-row foreign-key triggers, as for a role without that privilege. For scale, each
round also times COPY into a new table like segment_memberships without foreign keys.

Without --database-url or DATABASE_URL the database is a fresh SQLite file; a PostgreSQL URL
gets a throw-away database next to it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench._util import measure, result
from webapp.bulk import insert_rows

RAW_TABLE = "bench_raw_memberships"


def _postgres(url: str):
    """A throw-away database next to `url`; returns (its url, dropper)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    name = f"beacon_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return parsed.set(database=name).render_as_string(hide_password=False), drop


def _seed_members(db, count: int) -> list[tuple[str, str]]:
    """Insert `count` members as fast as the database allows; returns (id, external_id)."""
    from webapp.timeutil import utcnow

    now = utcnow()
    pairs = [(str(uuid.UUID(int=(i * 2654435761 + 1) % (1 << 122) | (4 << 76))),
              f"EXT{i:09d}") for i in range(count)]
    conn = db.session.connection()
    rows = [(mid, ext, f"m{i}@bench.test", "bronze", 0, 0, 0, "[]", "{}", now, now)
            for i, (mid, ext) in enumerate(pairs)]
    insert_rows(conn, "members", ("id", "external_id", "email", "tier", "points", "xp",
                                  "coins", "badges", "custom_fields", "created_at",
                                  "updated_at"), rows)
    db.session.commit()
    if conn.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE members"))
        db.session.commit()
    return pairs


def _ours(db, pairs: list[tuple[str, str]], folder: Path, n: int,
          set_based: bool = True) -> float:
    """Seconds to validate and apply the first n external ids to a new static segment."""
    from flask import current_app

    from webapp.models import Segment
    from webapp.services import uploads as service

    segment = _new_segment(db, n)
    path = folder / f"ids-{n}-{segment.id}.csv"
    path.write_text("external_id\n" + "\n".join(ext for _, ext in pairs[:n]) + "\n")
    current_app.config["SET_BASED_KEY_CHECKS"] = set_based
    try:
        start = time.perf_counter()
        upload = service.create_upload(segment, stored_path=path, filename=path.name,
                                       mode="add", actor_label="bench")
        ok = service.run_apply(upload.id)
        elapsed = time.perf_counter() - start
    finally:
        current_app.config["SET_BASED_KEY_CHECKS"] = True
    db.session.refresh(upload)
    if not ok or upload.report["applied"]["added"] != n:
        raise SystemExit(f"upload failed: {upload.status} {upload.error}")
    if db.session.get(Segment, segment.id).size != n:
        raise SystemExit("upload did not fill the list")
    return elapsed


def _new_segment(db, n: int):
    from webapp.models import Segment

    segment = Segment(name=f"bench {n} {uuid.uuid4().hex[:6]}", kind="static")
    db.session.add(segment)
    db.session.commit()
    return segment


def _insert(db, table: str, rows: list[tuple]) -> None:
    insert_rows(db.session.connection(), table, ("segment_id", "member_id", "via", "since"),
                rows)


def _reference(db, pairs: list[tuple[str, str]], n: int) -> float:
    """Seconds to insert the same n (segment, member) rows into segment_memberships with
    executemany / COPY, for a new segment; the rows and segment are deleted afterwards."""
    from webapp.models import Segment
    from webapp.timeutil import utcnow

    segment = _new_segment(db, n)
    now = utcnow()
    start = time.perf_counter()
    _insert(db, "segment_memberships", [(segment.id, mid, "list", now) for mid, _ in pairs[:n]])
    db.session.commit()
    elapsed = time.perf_counter() - start
    conn = db.session.connection()
    conn.exec_driver_sql(f"DELETE FROM segment_memberships WHERE segment_id = {segment.id}")
    db.session.delete(db.session.get(Segment, segment.id))
    db.session.commit()
    if conn.dialect.name == "postgresql":  # the deleted rows' space, as autovacuum would
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as auto:
            auto.exec_driver_sql("VACUUM ANALYZE segment_memberships")
    return elapsed


def _without_foreign_keys(db, pairs: list[tuple[str, str]], n: int) -> float:
    """Seconds to insert the same rows into a new table like segment_memberships (same
    primary key and member index) without its foreign keys: for scale only."""
    from webapp.timeutil import utcnow

    conn = db.session.connection()
    since = "TIMESTAMP WITHOUT TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW_TABLE}")
    conn.exec_driver_sql(
        f"CREATE TABLE {RAW_TABLE} (segment_id INTEGER NOT NULL, member_id VARCHAR(36) NOT "
        f"NULL, via VARCHAR(16) NOT NULL, since {since} NOT NULL, "
        "PRIMARY KEY (segment_id, member_id))")
    conn.exec_driver_sql(f"CREATE INDEX ix_{RAW_TABLE}_member ON {RAW_TABLE} "
                         "(member_id, segment_id)")
    db.session.commit()
    now = utcnow()
    start = time.perf_counter()
    # No foreign key: any segment id will do.
    _insert(db, RAW_TABLE, [(0, mid, "list", now) for mid, _ in pairs[:n]])
    db.session.commit()
    elapsed = time.perf_counter() - start
    db.session.connection().exec_driver_sql(f"DROP TABLE {RAW_TABLE}")
    db.session.commit()
    return elapsed


def run(argv: list[str]) -> dict:
    """Measure both pipelines for each size; returns the benchmark JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench upload")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    folder = Path(tempfile.mkdtemp(prefix="beacon-bench-upload-"))
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
                      "UPLOAD_FOLDER": str(folder / "uploads")})
    measures = []
    try:
        with app.app_context():
            upgrade(revision="heads")
            dialect = db.engine.dialect.name
            pairs = _seed_members(db, max(sizes))
            postgres = dialect == "postgresql"
            checks = "per row"
            if postgres:
                from webapp.services.membership import set_based_checks

                if set_based_checks(db.session.connection()):
                    checks = "set-based (the role may set session_replication_role)"
                db.session.commit()
            reference_name = (
                "COPY of the same rows into segment_memberships (its keys, indexes, foreign "
                "keys and earlier rows)" if postgres else
                "executemany of the same rows into segment_memberships (its keys, indexes, "
                "foreign keys and earlier rows)")
            for n in sizes:
                # Each round measures the reference and ours back to back, so load from other
                # work on the machine falls on both alike.
                runs: dict[str, list[float]] = {"ours": [], "reference": [], "per_row": [],
                                                "without_fk": []}
                for _ in range(args.repeat):
                    runs["reference"].append(_reference(db, pairs, n))
                    runs["ours"].append(_ours(db, pairs, folder, n))
                    if postgres:
                        runs["per_row"].append(_ours(db, pairs, folder, n, set_based=False))
                    runs["without_fk"].append(_without_foreign_keys(db, pairs, n))
                reference = statistics.median(runs["reference"])
                variants = [("ours", f"add {n:,} identifiers to an empty list ({dialect})",
                             checks)]
                if postgres:
                    variants.append(("per_row", f"add {n:,} identifiers to an empty list "
                                     f"({dialect}, per-row foreign-key checks)", "per row"))
                for key, name, how in variants:
                    ours = statistics.median(runs[key])
                    # Each round's own ratio: under changing load, the side-by-side figure.
                    rounds = [round(r / o, 3)
                              for o, r in zip(runs[key], runs["reference"], strict=True)]
                    measures.append(measure(
                        name, "rows/s", n / ours, n / reference, reference_name,
                        0.8 if postgres else 0.5, higher_is_better=True)
                        | {"seconds": round(ours, 3), "reference_seconds": round(reference, 3),
                           "foreign_key_checks": how,
                           "reference_without_foreign_keys_seconds": round(
                               statistics.median(runs["without_fk"]), 3),
                           "round_speedups": rounds,
                           "round_speedup_median": round(statistics.median(rounds), 3)})
            db.session.remove()
            db.engine.dispose()
    finally:
        if drop:
            drop()
    return result("upload", measures)
