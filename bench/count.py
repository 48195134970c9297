"""Benchmark counting a six-criterion segment in the database: our compiled SQL vs hand-written.

Generates `--members` members (default 1,000,000) with INSERT ... SELECT from a recursive CTE
(SQLite) or generate_series (PostgreSQL) into private tables, then counts the segment
tier in (gold, platinum) AND points >= 1000 AND custom_fields.plan = "pro" AND badges contains
"vip" AND created_at within the last 365 days, excluding members younger than 18 — once through
`compile_criteria` (compiling included in the time) and once with the same query written by
hand, interleaved, medians of `--repeat` rounds. SQLite by default; PostgreSQL with
`--database-url URL` or DATABASE_URL. The tables are dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from bench._util import measure, result
from webapp.targeting.sql import compile_criteria
from webapp.targeting.values import age_cutoff

SEGMENT = {
    "kind": "dynamic",
    "include": [
        {"field": "tier", "operator": "in", "value": ["gold", "platinum"]},
        {"field": "points", "operator": ">=", "value": 1000},
        {"field": "customFields.plan", "operator": "equals", "value": "pro"},
        {"field": "badges", "operator": "contains", "value": "vip"},
        {"field": "created_at", "operator": ">=", "value": {"days_ago": 365}},
    ],
    "exclude": [{"field": "age", "operator": "<", "value": 18}],
}


def tables(prefix: str) -> tuple[sa.MetaData, sa.Table]:
    """The members table as the model defines it (JSONB on PostgreSQL)."""
    md = sa.MetaData()
    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    members = sa.Table(
        f"{prefix}members", md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("external_id", sa.String(255), unique=True, nullable=False),
        sa.Column("email", sa.String(320), unique=True),
        sa.Column("birthday", sa.Date),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("points", sa.BigInteger),
        sa.Column("xp", sa.BigInteger),
        sa.Column("coins", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("badges", json_type),
        sa.Column("custom_fields", json_type),
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
    )
    return md, members


def _fill_sqlite(conn: sa.Connection, name: str, n: int, now: datetime) -> None:
    start = (now - timedelta(days=730)).strftime("%Y-%m-%d %H:%M:%S")
    conn.execute(sa.text(f"""
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
        INSERT INTO {name} (id, external_id, email, birthday, tier, points, xp, coins, badges,
                            custom_fields, created_at, updated_at)
        SELECT printf('%08d-0000-4000-8000-%012d', i, i), 'ext-' || i,
               CASE WHEN i % 5 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
               CASE WHEN i % 11 = 0 THEN NULL
                    ELSE date('1950-01-01', '+' || ((i * 7919) % 27000) || ' days') END,
               CASE i % 4 WHEN 0 THEN 'bronze' WHEN 1 THEN 'silver' WHEN 2 THEN 'gold'
                          ELSE 'platinum' END,
               (i * 104729) % 5000, (i * 31) % 1000, i % 100,
               CASE i % 3 WHEN 0 THEN json_array('vip', 'early') WHEN 1 THEN json_array('new')
                          ELSE json_array() END,
               json_object('plan', CASE i % 3 WHEN 0 THEN 'pro' WHEN 1 THEN 'free'
                                   ELSE 'team' END, 'score', i % 97),
               strftime('%Y-%m-%d %H:%M:%S', '{start}',
                        '+' || ((i * 1103515245 + 12345) % 63072000) || ' seconds')
                   || '.000000',
               strftime('%Y-%m-%d %H:%M:%S', '{start}') || '.000000'
        FROM seq
    """))


def _fill_postgres(conn: sa.Connection, name: str, n: int, now: datetime) -> None:
    start = (now - timedelta(days=730)).strftime("%Y-%m-%d %H:%M:%S")
    conn.execute(sa.text(f"""
        INSERT INTO {name} (id, external_id, email, birthday, tier, points, xp, coins, badges,
                            custom_fields, created_at, updated_at)
        SELECT lpad(i::text, 8, '0') || '-0000-4000-8000-' || lpad(i::text, 12, '0'),
               'ext-' || i,
               CASE WHEN i % 5 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
               CASE WHEN i % 11 = 0 THEN NULL
                    ELSE date '1950-01-01' + ((i::bigint * 7919) % 27000)::int END,
               CASE i % 4 WHEN 0 THEN 'bronze' WHEN 1 THEN 'silver' WHEN 2 THEN 'gold'
                          ELSE 'platinum' END,
               (i::bigint * 104729) % 5000, (i * 31) % 1000, i % 100,
               CASE i % 3 WHEN 0 THEN jsonb_build_array('vip', 'early')
                          WHEN 1 THEN jsonb_build_array('new') ELSE '[]'::jsonb END,
               jsonb_build_object('plan', CASE i % 3 WHEN 0 THEN 'pro' WHEN 1 THEN 'free'
                                          ELSE 'team' END, 'score', i % 97),
               timestamp '{start}'
                   + ((i::bigint * 1103515245 + 12345) % 63072000) * interval '1 second',
               timestamp '{start}'
        FROM generate_series(1, {n}) AS i
    """))


def hand_written(dialect: str, name: str) -> str:
    """The same count as a person would write it for this database."""
    if dialect == "sqlite":
        return f"""
            SELECT count(*) FROM {name}
            WHERE tier IN ('gold', 'platinum') AND points >= 1000
              AND json_extract(custom_fields, '$.plan') = 'pro'
              AND EXISTS (SELECT 1 FROM json_each({name}.badges) WHERE value = 'vip')
              AND created_at >= :since
              AND (birthday IS NULL OR birthday <= :adult_born_by)"""
    return f"""
        SELECT count(*) FROM {name}
        WHERE tier IN ('gold', 'platinum') AND points >= 1000
          AND custom_fields ->> 'plan' = 'pro'
          AND badges @> '["vip"]'::jsonb
          AND created_at >= :since
          AND (birthday IS NULL OR birthday <= :adult_born_by)"""


def run(argv: list[str]) -> dict:
    """Generate the members, time both counts, drop the tables, return the benchmark JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench count")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    tmp = None
    url = args.database_url
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="bench-count-")
        url = f"sqlite:///{tmp.name}/count.db"
    engine = sa.create_engine(url)
    dialect = engine.dialect.name
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    md, members = tables(prefix)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        md.create_all(engine)
        started = time.perf_counter()
        with engine.begin() as conn:
            fill = _fill_sqlite if dialect == "sqlite" else _fill_postgres
            fill(conn, members.name, args.members, now)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        generated = time.perf_counter() - started

        today = now.date()
        cutoff = age_cutoff(18, today)
        params: dict[str, Any] = {
            "since": (now - timedelta(days=365)).replace(tzinfo=None),
            "adult_born_by": cutoff if isinstance(cutoff, date) else date.max}
        reference_sql = sa.text(hand_written(dialect, members.name))

        def ours(conn: sa.Connection) -> int:
            expr = compile_criteria(SEGMENT, members, dialect=dialect, now=now)
            return conn.execute(sa.select(sa.func.count()).select_from(members)
                                .where(expr)).scalar_one()

        def reference(conn: sa.Connection) -> int:
            return conn.execute(reference_sql, params).scalar_one()

        ours_times, ref_times = [], []
        with engine.connect() as conn:
            count_ours, count_ref = ours(conn), reference(conn)  # warm caches once
            if count_ours != count_ref:
                raise AssertionError(f"counts differ: ours {count_ours}, hand-written {count_ref}")
            for _ in range(args.repeat):
                for fn, times in ((ours, ours_times), (reference, ref_times)):
                    t0 = time.perf_counter()
                    fn(conn)
                    times.append(time.perf_counter() - t0)
    finally:
        md.drop_all(engine)
        engine.dispose()
        if tmp is not None:
            tmp.cleanup()
    out = result("count", [measure(
        f"count a six-criterion segment over {args.members:,} members ({dialect}; "
        f"{count_ours:,} match)", "seconds", statistics.median(ours_times),
        statistics.median(ref_times), "hand-written SQL", 0.33, False)])
    out["generated_seconds"] = round(generated, 1)
    return out
