"""Upload benchmark: validate and apply N identifiers in add mode to an empty static list.

`python -m bench upload [--sizes 100000,1000000] [--database-url URL] [--repeat 1]`

Ours is the real pipeline end to end (read the CSV file, stage the identifiers, resolve them
to members, count the dry-run report, apply_delta with one event per member, commit). The
reference, measured in the same run on the same database, is a plain insert of the same
(segment_id, member_id, via, since) rows into a table shaped like segment_memberships:
executemany on SQLite, COPY on PostgreSQL. Throughput is rows per second; the targets are
0.5x the reference on SQLite and 0.8x on PostgreSQL. Without --database-url or DATABASE_URL
the database is a fresh SQLite file; a PostgreSQL URL gets a throw-away database next to it.
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
    columns = ("id, external_id, email, tier, points, xp, coins, badges, custom_fields, "
               "created_at, updated_at")
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY members ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        conn.exec_driver_sql(f"INSERT INTO members ({columns}) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.session.commit()
    if conn.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE members"))
        db.session.commit()
    return pairs


def _ours(db, pairs: list[tuple[str, str]], folder: Path, n: int) -> tuple[float, int]:
    """Seconds to validate and apply the first n external ids to a new static segment."""
    from webapp.models import Segment
    from webapp.uploads import service

    segment = Segment(name=f"bench {n} {uuid.uuid4().hex[:6]}", kind="static")
    db.session.add(segment)
    db.session.commit()
    path = folder / f"ids-{n}-{segment.id}.csv"
    path.write_text("external_id\n" + "\n".join(ext for _, ext in pairs[:n]) + "\n")
    start = time.perf_counter()
    upload = service.create_upload(segment, stored_path=path, filename=path.name, mode="add",
                                   actor_label="bench")
    ok = service.run_apply(upload.id)
    elapsed = time.perf_counter() - start
    db.session.refresh(upload)
    if not ok or upload.report["applied"]["added"] != n:
        raise SystemExit(f"upload failed: {upload.status} {upload.error}")
    return elapsed, segment.id


def _reference(db, pairs: list[tuple[str, str]], n: int, segment_id: int,
               foreign_keys: bool = True) -> float:
    """Seconds to insert the same n (segment, member) rows with executemany / COPY.

    The table has segment_memberships' columns, primary key, member index and (unless
    told otherwise) its foreign keys to segments and members.
    """
    from webapp.timeutil import utcnow

    conn = db.session.connection()
    postgres = conn.dialect.name == "postgresql"
    since = "TIMESTAMP WITHOUT TIME ZONE" if postgres else "DATETIME"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW_TABLE}")
    conn.exec_driver_sql(
        f"CREATE TABLE {RAW_TABLE} (segment_id INTEGER NOT NULL, member_id VARCHAR(36) NOT "
        f"NULL, via VARCHAR(16) NOT NULL, since {since} NOT NULL, "
        "PRIMARY KEY (segment_id, member_id)"
        + (", FOREIGN KEY (segment_id) REFERENCES segments (id) ON DELETE CASCADE, "
           "FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE CASCADE"
           if foreign_keys else "") + ")")
    conn.exec_driver_sql(f"CREATE INDEX ix_{RAW_TABLE}_member ON {RAW_TABLE} "
                         "(member_id, segment_id)")
    db.session.commit()
    now = utcnow()
    start = time.perf_counter()
    rows = [(segment_id, mid, "list", now) for mid, _ in pairs[:n]]
    conn = db.session.connection()
    if postgres:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {RAW_TABLE} (segment_id, member_id, via, since) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        conn.exec_driver_sql(f"INSERT INTO {RAW_TABLE} (segment_id, member_id, via, since) "
                             "VALUES (?, ?, ?, ?)", rows)
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
            for n in sizes:
                # Each round measures ours and both references back to back, so load from
                # other work on the machine falls on all three alike.
                ours_runs, reference_runs, without_fk_runs = [], [], []
                for _ in range(args.repeat):
                    seconds, segment_id = _ours(db, pairs, folder, n)
                    ours_runs.append(seconds)
                    reference_runs.append(_reference(db, pairs, n, segment_id))
                    without_fk_runs.append(_reference(db, pairs, n, segment_id, False))
                ours = statistics.median(ours_runs)
                reference = statistics.median(reference_runs)
                without_fk = statistics.median(without_fk_runs)
                postgres = dialect == "postgresql"
                # Each round's own ratio: under changing load, the side-by-side figure.
                rounds = [round(r / o, 3) for o, r in zip(ours_runs, reference_runs, strict=True)]
                measures.append(measure(
                    f"add {n:,} identifiers to an empty list ({dialect})", "rows/s",
                    n / ours, n / reference,
                    "COPY into a table shaped like segment_memberships (same keys, index "
                    "and foreign keys)" if postgres else
                    "executemany into a table shaped like segment_memberships (same keys, "
                    "index and foreign keys)",
                    0.8 if postgres else 0.5, higher_is_better=True)
                    | {"seconds": round(ours, 3), "reference_seconds": round(reference, 3),
                       "reference_without_foreign_keys_seconds": round(without_fk, 3),
                       "round_speedups": rounds,
                       "round_speedup_median": round(statistics.median(rounds), 3)})
            db.session.remove()
            db.engine.dispose()
    finally:
        if drop:
            drop()
    return result("upload", measures)
