"""As-of decisions (issue 19): a member's 500 offers and 200 rewards replayed at a moment months
ago from a year of row history, next to the live decision of the same member.

`python -m bench replay [--members 1000000] [--events 20000000] [--offers 500] [--rewards 200]
[--database-url URL] [--rounds 7] [--storage-rows N]`

Builds a throw-away database (a fresh SQLite file unless `--database-url` or DATABASE_URL names
PostgreSQL, which gets a throw-away database next to it), migrated to heads, with the history
beginning a year ago (`history_meta.begins_at`):

- the members, inserted at driver speed (executemany on SQLite, COPY on PostgreSQL) with the
  history triggers firing (one `I` row each), then dated to the start of the history;
- the catalog through the ORM (segments: rule, age, static list and activity ones; offers with
  age and segment audiences and some per-member or global limits; rewards with required
  segments), its trigger rows dated to the start too;
- a year of member attribute changes (points, tier) for every member but the measured one, and
  a year of catalog edits (offer descriptions, reward points, segment names, re-saved audiences
  and limits), written inside the database by INSERT ... SELECT with the row as JSON built the
  way the triggers build it (`json_object` of every column on SQLite, `to_jsonb` on
  PostgreSQL), each version dated through the year, in order; the last version of each row is
  the live row;
- overrides set (and half of them reset) through plain SQL with the triggers firing, and list
  events with their membership rows, dated through the year;
- the measured member's own history through the services (profile updates, overrides set and
  reset, list adds and removes), then dated through the year;

together at least `--events` history and event rows. The row_history indexes are dropped for
the load and built again after it (as the migration declares them), then the tables analyzed
(and vacuumed on PostgreSQL, as autovacuum would have over the year).

Measured, `--rounds` times each, for the one member: the live decision (`decisions.decorated`
of offers and of rewards with VISIBILITY_CACHE_BYTES=0, the reference) and the as-of decision
(`replay.decorated_at` of offers and of rewards at a moment 120 days ago). The first as-of call
(the catalog of that moment not yet replayed) is reported apart (`as_of_cold_ms`); the rounds
then use the per-process catalog of that version, as the live side uses its cached catalog.
Targets: as-of within 3x of live (speedup >= 0.33) and its median under 200 ms.

Storage (`--storage-rows N`, default the member count, 0 skips): on a fresh database of N
members, `UPDATE members SET xp = xp + 1` of all of them with the trigger (N history rows) and
without it (triggers dropped on SQLite, disabled on PostgreSQL), alternately; the growth of
row_history and its indexes (SQLite: dbstat; PostgreSQL: pg_relation_size and
pg_indexes_size) per million changes, and the write time with against without the trigger.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import text

from bench._util import measure, result
from bench.upload import _postgres
from webapp.bulk import insert_rows
from webapp.timeutil import utcnow

ROOT = Path(__file__).resolve().parent.parent
YEAR = timedelta(days=366)
AGO = timedelta(days=120)
CHUNK = 100_000
TIERS = ("bronze", "silver", "gold", "platinum")
CATALOG_EDITS = 12
STATIC_LISTS = 10


# --- helpers --------------------------------------------------------------------------------


def _migration():
    """The 0017_history migration module, for the exact JSON its triggers write."""
    path = ROOT / "migrations" / "versions" / "0017_history.py"
    spec = importlib.util.spec_from_file_location("bench_history_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row_json(conn, table: str, alias: str, changes: dict[str, str]) -> str:
    """SQL for a row of `table` (as `alias`) as the history triggers store it, with some
    columns replaced by SQL expressions."""
    if conn.dialect.name == "postgresql":
        if not changes:
            return f"to_jsonb({alias})"
        pairs = ", ".join(f"'{k}', {v}" for k, v in changes.items())
        return f"(to_jsonb({alias}) || jsonb_build_object({pairs}))"
    module = _migration()
    columns = [c["name"] for c in sa.inspect(conn).get_columns(table)]
    module._columns = lambda _table: columns
    base = module._sqlite_row(table, alias)
    if not changes:
        return base
    return f"json_set({base}, " + ", ".join(f"'$.{k}', {v}" for k, v in changes.items()) + ")"


def at_seconds(conn, seconds: str) -> str:
    """SQL for the moment `seconds` (an SQL expression) after the :begins parameter."""
    if conn.dialect.name == "postgresql":
        return f"(CAST(:begins AS timestamp) + ({seconds}) * interval '1 second')"
    return (f"strftime('%Y-%m-%d %H:%M:%f', :begins, '+' || printf('%.3f', {seconds}) "
            "|| ' seconds')")


def stored(conn, value: datetime | date):
    """A datetime or date in the form the driver stores it (text on SQLite)."""
    if conn.dialect.name == "postgresql":
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value.isoformat()


def member_id(i: int) -> str:
    """The id of the i-th bench member (a fixed, spread-out UUID)."""
    return str(uuid.UUID(int=(i * 2654435761 + 1) % (1 << 122) | (4 << 76)))


def history_indexes() -> list[sa.Index]:
    """The row_history indexes as the model (and the migration) declare them."""
    from webapp.models import RowHistory

    return sorted(RowHistory.__table__.indexes, key=lambda ix: ix.name)


def restamp(db, after_id: int, begins: datetime, start: timedelta, span: timedelta) -> int:
    """Date the history rows after `after_id` evenly from begins + start over `span`, in id
    order (they were written now, by the triggers); returns how many."""
    conn = db.session.connection()
    lo, hi = conn.execute(text("SELECT MIN(id), MAX(id) FROM row_history WHERE id > :a"),
                          {"a": after_id}).one()
    if lo is None:
        return 0
    step = span.total_seconds() / max(1, hi - lo + 1)
    offset = start.total_seconds()
    conn.execute(text(f"UPDATE row_history SET changed_at = "
                      f"{at_seconds(conn, f'{offset} + (id - :lo) * {step}')} "
                      "WHERE id >= :lo"), {"lo": lo, "begins": stored(conn, begins)})
    db.session.commit()
    return hi - lo + 1


def last_history_id(db) -> int:
    """The newest history row id (0 when empty)."""
    return db.session.scalar(text("SELECT COALESCE(MAX(id), 0) FROM row_history"))


# --- the data --------------------------------------------------------------------------------


def seed_members(db, count: int, now: datetime) -> None:
    """`count` members (tiers, points, birthdays spread) created at `now`, inserted with the
    triggers on."""
    conn = db.session.connection()
    columns = ("id", "external_id", "email", "birthday", "tier", "points", "xp", "coins",
               "badges", "custom_fields", "created_at", "updated_at")
    at = stored(conn, now)
    for start in range(0, count, CHUNK):
        rows = [(member_id(i), f"EXT{i:09d}", f"m{i}@bench.test",
                 stored(conn, date(1950 + i % 58, 1 + i % 12, 1 + i % 28)), TIERS[i % 4],
                 (i * 7919) % 5000, 0, 0, "[]", "{}", at, at)
                for i in range(start, min(count, start + CHUNK))]
        insert_rows(conn, "members", columns, rows)
    db.session.commit()


def build_catalog(db, offers: int, rewards: int, seed: int = 19) -> dict[str, list[int]]:
    """Segments, offers (audiences, limits) and rewards (required segments) via the ORM."""
    import random

    from webapp.models import (
        Audience,
        AudienceSegment,
        Offer,
        OfferLimit,
        Reward,
        Segment,
    )
    from webapp.timeutil import utcnow

    rng = random.Random(seed)
    now = utcnow()
    segments = [Segment(name=f"Tier {t}", kind="dynamic", include=[
        {"field": "tier", "operator": "equals", "value": t}]) for t in TIERS]
    segments += [Segment(name=f"Points {p}+", kind="dynamic", include=[
        {"field": "points", "operator": ">=", "value": p}]) for p in range(500, 5000, 500)]
    segments += [Segment(name=f"Age {a}+", kind="dynamic", include=[
        {"field": "age", "operator": ">=", "value": a}]) for a in (18, 30, 50, 65)]
    segments.append(Segment(name="Buyers", kind="dynamic", include=[{
        "field": "activity.count", "operator": ">=", "value": 2,
        "activity": {"type": "purchase", "window": {"days": 30}}}]))
    lists = [Segment(name=f"List {n}", kind="static") for n in range(STATIC_LISTS)]
    db.session.add_all(segments + lists)
    db.session.flush()
    ids = [s.id for s in segments + lists]
    for n in range(offers):
        offer = Offer(name=f"Bench offer {n + 1:03d}", external_id=f"BO{n + 1:04d}",
                      category=rng.choice(("points", "travel", "partner")),
                      description="Benchmark offer.",
                      publish_at=now - timedelta(days=rng.randrange(200, 360)),
                      expire_at=now + timedelta(days=rng.randrange(-100, 200)),
                      discontinued=rng.random() < 0.05)
        for kind in rng.sample(["age_within", "in_all_segments", "in_any_segment"],
                               rng.randrange(0, 3)):
            config = ({"minimum_age": rng.choice((18, 21, 30)), "maximum_age": None}
                      if kind == "age_within" else
                      {"segments": rng.sample(ids, rng.randrange(1, 4))})
            audience = Audience(audience_type=kind, configuration=config)
            for sid in config.get("segments", []):
                audience.segment_links.append(AudienceSegment(segment_id=sid))
            offer.audiences.append(audience)
        if n % 5 == 0:
            offer.limits.append(OfferLimit(limit_type=rng.choice(
                ("membership_award_count", "global_award_count")), configuration={"limit": 3}))
        db.session.add(offer)
    everything = segments + lists
    for n in range(rewards):
        reward = Reward(name=f"Bench reward {n + 1:03d}", external_id=f"BR{n + 1:04d}",
                        category="points", points=rng.choice((0, 150, 900, 5000)),
                        publish_at=now - timedelta(days=300),
                        expire_at=now + timedelta(days=rng.randrange(-50, 200)),
                        discontinued=rng.random() < 0.05)
        reward.required_segments = rng.sample(everything, rng.randrange(0, 4))
        db.session.add(reward)
    db.session.commit()
    return {"dynamic": [s.id for s in segments], "lists": [s.id for s in lists]}


def numbers(db, count: int) -> None:
    """A helper table bench_k(n) of 0..count-1 to multiply rows by."""
    conn = db.session.connection()
    conn.execute(text("DROP TABLE IF EXISTS bench_k"))
    conn.execute(text("CREATE TABLE bench_k (n INTEGER PRIMARY KEY)"))
    insert_rows(conn, "bench_k", ("n",), [(n,) for n in range(count)])
    db.session.commit()


def member_versions(db, versions: int, begins: datetime, span: timedelta, skip: str) -> None:
    """`versions` versions of every member but `skip` dated through the year (the last one is
    the live row): points and tier as they were before."""
    conn = db.session.connection()
    last = versions - 1
    points = (f"CASE WHEN k.n = {last} THEN m.points "
              f"ELSE (m.points + 37 * ({last} - k.n)) % 5000 END")
    tier = (f"CASE WHEN k.n = {last} THEN m.tier ELSE CASE (k.n + m.points) % 4 "
            + " ".join(f"WHEN {i} THEN '{t}'" for i, t in enumerate(TIERS)) + " END END")
    spread = f"{span.total_seconds() / versions} * (k.n + (m.points % 997) / 997.0)"
    conn.execute(text(
        "INSERT INTO row_history (table_name, row_key, member_id, op, data, changed_at) "
        f"SELECT 'members', m.id, m.id, 'U', "
        f"{row_json(conn, 'members', 'm', {'points': points, 'tier': tier})}, "
        f"{at_seconds(conn, spread)} FROM bench_k k CROSS JOIN members m "
        f"WHERE k.n < {versions} AND m.id <> :skip"), {"begins": stored(conn, begins),
                                                        "skip": skip})
    db.session.commit()


def catalog_edits(db, begins: datetime, span: timedelta) -> None:
    """CATALOG_EDITS versions of every catalog row dated through the year, written in time
    order (so a later id is a later catalog); the last is the live row."""
    conn = db.session.connection()
    last = CATALOG_EDITS - 1
    edits = {
        "offers": ("CAST(t.id AS TEXT)", {"description": f"CASE WHEN k.n = {last} THEN "
                                                         "t.description ELSE 'Edition ' || "
                                                         "CAST(k.n AS TEXT) END"}),
        "rewards": ("CAST(t.id AS TEXT)", {"points": f"CASE WHEN k.n = {last} THEN t.points "
                                                     "ELSE t.points + 10 * k.n END"}),
        "segments": ("CAST(t.id AS TEXT)", {"name": f"CASE WHEN k.n = {last} THEN t.name ELSE "
                                                    "t.name || ' v' || CAST(k.n AS TEXT) END"}),
        "audiences": ("CAST(t.id AS TEXT)", {}),
        "offer_limits": ("CAST(t.id AS TEXT)", {}),
    }
    step = span.total_seconds() / CATALOG_EDITS
    parts = [f"SELECT '{table}' AS table_name, {key} AS row_key, 'U' AS op, "
             f"{row_json(conn, table, 't', changes)} AS data, "
             f"{at_seconds(conn, f'{step} * (k.n + (t.id % 101) / 101.0)')} AS changed_at "
             f"FROM bench_k k CROSS JOIN {table} t WHERE k.n < {CATALOG_EDITS}"
             for table, (key, changes) in edits.items()]
    conn.execute(text(
        "INSERT INTO row_history (table_name, row_key, member_id, op, data, changed_at) "
        "SELECT table_name, row_key, NULL, op, data, changed_at FROM ("
        + " UNION ALL ".join(parts) + ") edits ORDER BY changed_at"),
        {"begins": stored(conn, begins)})
    db.session.commit()


def overrides_and_lists(db, members: int, segments: dict[str, list[int]], begins: datetime,
                        span: timedelta, now: datetime, skip: int) -> int:
    """Overrides on 2 % of the members (half reset again) with the triggers firing, dated
    through the year; list adds (a quarter removed again) of 20 % of the members, as
    membership events and rows; returns the number of list events."""
    conn = db.session.connection()
    before = last_history_id(db)
    dynamic = segments["dynamic"]
    at = stored(conn, now)
    picked = [i for i in range(0, members, 50) if i != skip]
    insert_rows(conn, "overrides", (
        "segment_id", "member_id", "status", "description", "metadata",
        "status_change_timestamp", "actor_label", "created_at"),
        [(dynamic[i % len(dynamic)], member_id(i), ("add", "block")[i % 2],
          "Bench override", "{}", at, "bench", at) for i in picked])
    conn.execute(text("DELETE FROM overrides WHERE id % 2 = 0"))
    db.session.commit()
    restamp(db, before, begins, timedelta(days=1), span)
    conn = db.session.connection()
    lists = segments["lists"]
    events = 0
    columns = ("action", "segment_id", "segment_name", "member_id", "source", "cause",
               "actor_label", "created_at")
    for start in range(0, members, CHUNK):
        rows, kept = [], []
        for i in range(start, min(members, start + CHUNK), 5):
            if i == skip:
                continue
            sid = lists[i % len(lists)]
            added = begins + span * ((i % 1000) / 2000)
            rows.append(("ADD", sid, f"List {sid}", member_id(i), "static_list", "{}",
                         "bench", stored(conn, added)))
            if i % 4 == 0:
                rows.append(("REMOVE", sid, f"List {sid}", member_id(i), "static_list", "{}",
                             "bench", stored(conn, added + span / 3)))
            else:
                kept.append((sid, member_id(i), "list", stored(conn, added)))
        insert_rows(conn, "membership_events", columns, rows)
        insert_rows(conn, "segment_memberships", ("segment_id", "member_id", "via", "since"),
                    kept)
        events += len(rows)
    db.session.commit()
    return events


def offer_usage(db, members: int, begins: datetime, span: timedelta, mid: str) -> int:
    """Activations (half of the members) and awards (one per member) of the bench offers
    through the year, a few of them the measured member's, and the offers' usage counters;
    returns how many rows."""
    conn = db.session.connection()
    offers = [i for (i,) in conn.execute(text("SELECT id FROM offers ORDER BY id"))]
    count = 0
    for start in range(0, members, CHUNK):
        acts, awards = [], []
        for i in range(start, min(members, start + CHUNK)):
            who = mid if i % 50_000 == 7 else member_id(i)
            offer = offers[(i * 31) % len(offers)]
            at = begins + span * ((i * 7) % 1000 / 1000)
            if i % 2 == 0:
                acts.append((offer, who, stored(conn, at), stored(conn, at + span / 8),
                             None, "bench"))
            awards.append((offer, who, f"BF{i}", stored(conn, at + timedelta(hours=1)),
                           "bench"))
        insert_rows(conn, "offer_activations", ("offer_id", "member_id", "activated_at",
                                                "expires_at", "fulfilled_at", "actor_label"),
                    acts)
        insert_rows(conn, "offer_fulfillments", ("offer_id", "member_id", "external_id",
                                                 "fulfilled_at", "actor_label"), awards)
        count += len(acts) + len(awards)
    conn.execute(text(
        "INSERT INTO offer_usage (offer_id, activations, awards) SELECT o.id, "
        "(SELECT COUNT(*) FROM offer_activations a WHERE a.offer_id = o.id), "
        "(SELECT COUNT(*) FROM offer_fulfillments f WHERE f.offer_id = o.id) FROM offers o"))
    db.session.commit()
    return count


def measured_member_history(db, mid: str, segments: dict[str, list[int]], begins: datetime,
                            span: timedelta) -> int:
    """The measured member's history through the services (profile updates, overrides,
    list entries), then dated through the year; returns its history rows."""
    from webapp.models import Member, MembershipEvent, Segment
    from webapp.services.members import update_member
    from webapp.services.membership import Cause, apply_delta
    from webapp.services.overrides import reset_override, set_override

    before = last_history_id(db)
    events_before = db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(
        MembershipEvent.id), 0)))
    member = db.session.get(Member, mid)
    gold, points = (db.session.get(Segment, sid) for sid in segments["dynamic"][2:4])
    staff = db.session.get(Segment, segments["lists"][0])

    def listed(add: bool) -> None:
        apply_delta(staff, **{"add" if add else "remove": [mid]}, via="list",
                    cause=Cause("static_list", "bench", {}))
        db.session.commit()

    steps = [
        lambda: update_member(member, {"points": 400, "tier": "silver"}, actor="bench"),
        lambda: listed(True),
        lambda: set_override(gold, member, "add", description="Bench VIP", actor="bench"),
        lambda: update_member(member, {"points": 1300}, actor="bench"),
        lambda: update_member(member, {"tier": "gold"}, actor="bench"),
        lambda: set_override(points, member, "block", description="Bench block",
                             actor="bench"),
        lambda: listed(False),
        lambda: reset_override(gold, member, actor="bench"),
        lambda: update_member(member, {"points": 2600, "tier": "platinum"}, actor="bench"),
        lambda: listed(True),
        lambda: update_member(member, {"points": 3100}, actor="bench"),
    ]
    for step in steps:
        step()
    rows = restamp(db, before, begins, timedelta(days=2), span - timedelta(days=4))
    e = MembershipEvent.__table__.c
    conn = db.session.connection()
    ids = [i for (i,) in conn.execute(sa.select(e.id).where(e.id > events_before,
                                                            e.member_id == mid).order_by(e.id))]
    for n, event_id in enumerate(ids):
        conn.execute(sa.update(MembershipEvent.__table__).where(e.id == event_id).values(
            created_at=begins + timedelta(days=2) + (span - timedelta(days=4)) * (
                (2 * n + 1) / (2 * len(ids) + 1))))
    db.session.commit()
    return rows


def vacuum(db) -> None:
    """Statistics for the planner; on PostgreSQL also the visibility map a year of
    autovacuum would have set (index-only scans, e.g. the global counts of an offer)."""
    if db.engine.dialect.name != "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        return
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def build(db, args, now: datetime) -> dict:
    """The whole bench database; returns what was built and how long it took."""
    started = time.perf_counter()
    conn = db.session.connection()
    begins = now - YEAR
    span = YEAR - timedelta(days=2)
    conn.execute(text("UPDATE history_meta SET begins_at = :b"), {"b": stored(conn, begins)})
    for ix in history_indexes():
        ix.drop(conn)
    db.session.commit()
    measured_index = args.members // 2
    mid = member_id(measured_index)
    seed_members(db, args.members, begins)
    segments = build_catalog(db, args.offers, args.rewards)
    restamp(db, 0, begins, timedelta(0), timedelta(seconds=1))
    list_events = overrides_and_lists(db, args.members, segments, begins, span, now,
                                      measured_index)
    list_events += offer_usage(db, args.members, begins, span, mid)
    have = last_history_id(db) + list_events + CATALOG_EDITS * (args.offers * 2
                                                                + args.rewards + 40)
    versions = max(1, -(-(args.events - have) // max(1, args.members - 1)))
    numbers(db, max(versions, CATALOG_EDITS))
    member_versions(db, versions, begins, span, mid)
    catalog_edits(db, begins, span)
    own = measured_member_history(db, mid, segments, begins, span)
    loaded = time.perf_counter()
    conn = db.session.connection()
    conn.execute(text("DROP TABLE bench_k"))
    for ix in history_indexes():
        ix.create(conn)
    db.session.commit()
    vacuum(db)
    history = db.session.scalar(text("SELECT COUNT(*) FROM row_history"))
    events = db.session.scalar(text(
        "SELECT (SELECT COUNT(*) FROM membership_events) + (SELECT COUNT(*) FROM "
        "offer_activations) + (SELECT COUNT(*) FROM offer_fulfillments)"))
    return {"member": mid, "history_rows": history, "other_events": events,
            "member_versions": versions, "measured_member_history_rows": own + 1,
            "load_seconds": round(loaded - started, 1),
            "index_seconds": round(time.perf_counter() - loaded, 1)}


# --- the measures ----------------------------------------------------------------------------


def live(app, mid: str, now: datetime) -> bytes:
    """The member's offers and rewards decided live (no result cache)."""
    from webapp.api.serializers import decorated_items
    from webapp.services import decisions
    from webapp.services.lookup import member_row

    app.config["VISIBILITY_CACHE_BYTES"] = 0
    row = member_row(mid)
    return b"".join(decisions.decorated(row, kind, partial(decorated_items, kind), now=now)[0]
                    for kind in ("offers", "rewards"))


def as_of(mid: str, moment: datetime) -> bytes:
    """The member's offers and rewards replayed at `moment`."""
    from webapp.api.serializers import decorated_items
    from webapp.services.replay import decorated_at

    return b"".join(decorated_at(mid, kind, partial(decorated_items, kind), moment)[0]
                    for kind in ("offers", "rewards"))


def timed(fn) -> float:
    """Seconds one call of fn takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_replay(app, db, built: dict, args, now: datetime) -> tuple[list[dict], dict]:
    """The as-of decision against the live one, in rounds; measures and details."""
    from webapp.services.replay import member_at

    mid = built["member"]
    moment = now - AGO
    details: dict = {}
    with app.test_request_context("/api/v1/members"):
        details["as_of_cold_ms"] = round(timed(lambda: as_of(mid, moment)) * 1000, 2)
        db.session.rollback()
        present = utcnow()
        details["present_replays_to_live"] = json_equal(as_of(mid, present),
                                                        live(app, mid, present))
        details["attributes_at_moment"] = member_at(mid, moment)
        details["attributes_now"] = member_at(mid, present)
        db.session.rollback()
        ours, reference = [], []
        for _ in range(args.rounds):
            reference.append(timed(lambda: live(app, mid, utcnow())))
            db.session.rollback()
            ours.append(timed(lambda: as_of(mid, moment)))
            db.session.rollback()
    dialect = db.engine.dialect.name
    ours_ms = statistics.median(ours) * 1000
    ref_ms = statistics.median(reference) * 1000
    what = (f"{args.offers} offers + {args.rewards} rewards for one member, "
            f"{args.members:,} members, {built['history_rows']:,} history rows + "
            f"{built['other_events']:,} list events, activations and awards ({dialect})")
    measures = [
        measure(f"as-of decision {AGO.days} days ago vs live: {what}", "ms", ours_ms, ref_ms,
                "live decisions.decorated of the same member (result cache off)", 0.33, False),
        measure(f"as-of decision p50 under 200 ms: {what}", "ms", ours_ms, 200.0,
                "200 ms budget", 1.0, False),
    ]
    details.update(as_of_ms=[round(x * 1000, 2) for x in ours],
                   live_ms=[round(x * 1000, 2) for x in reference],
                   moment=moment.isoformat() + "Z")
    return measures, details


def json_equal(a: bytes, b: bytes) -> bool:
    """The two answers carry the same decisions (the evaluation moment aside)."""
    import json

    def strip(data: bytes):
        text_ = data.decode()
        return json.loads("[" + text_.replace("][", "],[") + "]")

    def scrub(value):
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k not in ("evaluated_at",)}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value
    return scrub(strip(a)) == scrub(strip(b))


# --- storage ---------------------------------------------------------------------------------


def history_bytes(db) -> dict[str, int]:
    """Bytes of row_history and of its indexes."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        table, indexes = conn.execute(text(
            "SELECT pg_relation_size('row_history') + pg_relation_size("
            "(SELECT reltoastrelid FROM pg_class WHERE relname = 'row_history')), "
            "pg_indexes_size('row_history')")).one()
        return {"table": int(table), "indexes": int(indexes)}
    names = [ix.name for ix in history_indexes()]
    got = dict(conn.execute(text(
        "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ('row_history', "
        + ", ".join(f"'{n}'" for n in names) + ") GROUP BY name")).all())
    return {"table": int(got.get("row_history", 0)),
            "indexes": int(sum(v for k, v in got.items() if k != "row_history"))}


def members_triggers(db, on: bool, saved: list[str]) -> None:
    """Switch the members history triggers off (saving them on SQLite) or back on."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ALTER TABLE members {'ENABLE' if on else 'DISABLE'} TRIGGER "
                          "row_history_members"))
    elif on:
        for sql in saved:
            conn.exec_driver_sql(sql)
        saved.clear()
    else:
        for name, sql in conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND "
                "tbl_name = 'members' AND name LIKE 'row_history_%'")).all():
            saved.append(sql)
            conn.exec_driver_sql(f"DROP TRIGGER {name}")
    db.session.commit()


def measure_storage(db, rows: int, now: datetime, rounds: int = 2) -> tuple[list[dict], dict]:
    """History bytes per million member updates and the UPDATE time with / without it."""
    seed_members(db, rows, now)
    conn = db.session.connection()
    conn.execute(text("ANALYZE"))
    db.session.commit()
    saved: list[str] = []
    with_t, without_t, grown = [], [], None

    def update() -> None:
        db.session.execute(text("UPDATE members SET xp = xp + 1"))
        db.session.commit()

    for _ in range(rounds):
        members_triggers(db, False, saved)
        without_t.append(timed(update))
        members_triggers(db, True, saved)
        before, count = history_bytes(db), last_history_id(db)
        with_t.append(timed(update))
        if grown is None:
            after = history_bytes(db)
            written = last_history_id(db) - count
            grown = {k: (after[k] - before[k]) * 1_000_000 / written for k in after}
    dialect = db.engine.dialect.name
    ours, reference = statistics.median(with_t), statistics.median(without_t)
    measures = [measure(f"UPDATE of {rows:,} members with the history trigger vs without "
                        f"({dialect})", "s", ours, reference,
                        "the same UPDATE with the members history trigger off", 0.0, False)]
    details = {"rows": rows, "dialect": dialect,
               "history_table_bytes_per_million_changes": round(grown["table"]),
               "history_index_bytes_per_million_changes": round(grown["indexes"]),
               "history_total_mb_per_million_changes": round(
                   (grown["table"] + grown["indexes"]) / 2**20, 1),
               "update_with_trigger_s": [round(x, 3) for x in with_t],
               "update_without_trigger_s": [round(x, 3) for x in without_t]}
    return measures, details


# --- driver ----------------------------------------------------------------------------------


def database(args, folder: Path, name: str):
    """A throw-away database URL and its dropper (None for SQLite files)."""
    if args.database_url and args.database_url.startswith("postgres"):
        return _postgres(args.database_url)
    return f"sqlite:///{folder / name}", None


def with_app(url: str, folder: Path, work):
    """Run work(app, db) in an app on `url` migrated to heads."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    os.environ["BEACON_INSTANCE_PATH"] = str(folder / "instance")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "JOBS_SYNC": True,
                      "WEBHOOKS_AUTO_DELIVER": False, "UPLOAD_FOLDER": str(folder / "up")})
    with app.app_context():
        upgrade(revision="heads")
        try:
            return work(app, db)
        finally:
            db.session.remove()
            db.engine.dispose()


def run(argv: list[str]) -> dict:
    """Build the history, time the as-of decision against the live one, then the storage."""
    parser = argparse.ArgumentParser(prog="python -m bench replay")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--offers", type=int, default=500)
    parser.add_argument("--rewards", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--storage-rows", type=int, default=None,
                        help="members updated for the storage figures (default --members, "
                             "0 skips)")
    args = parser.parse_args(argv)
    if args.members < 1000:
        raise SystemExit("--members must be at least 1000")
    folder = Path(tempfile.mkdtemp(prefix="beacon-bench-replay-"))
    now = utcnow().replace(microsecond=0)
    url, drop = database(args, folder, "replay.sqlite3")
    try:
        def replay_work(app, db):
            built = build(db, args, now)
            measures, details = measure_replay(app, db, built, args, now)
            return measures, built | details
        measures, details = with_app(url, folder, replay_work)
    finally:
        if drop:
            drop()
        for leftover in folder.glob("replay.sqlite3*"):
            leftover.unlink()
    storage_rows = args.members if args.storage_rows is None else args.storage_rows
    storage = None
    if not storage_rows:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        url, drop = database(args, folder, "storage.sqlite3")
        try:
            more, storage = with_app(url, folder, lambda app, db: measure_storage(
                db, storage_rows, now))
            measures += more
        finally:
            if drop:
                drop()
            shutil.rmtree(folder, ignore_errors=True)
    return result("replay", measures) | {"details": details, "storage": storage}
