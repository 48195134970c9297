"""Activity benchmark: recording activities over the API, counting a behavioural segment, and
the member page with activity criteria (issue 17).

`python -m bench activities [--members 1000000] [--activities 10000000] [--ingest 1000000]
[--database-url URL] [--rounds 3] [--page-requests 30]`

Builds a throw-away database (a SQLite file unless `--database-url` names PostgreSQL, then a
database of its own next to it): migrations, M members, A activities over the last 90 days
(purchases with amounts and an item/store, visits), loaded at driver speed (COPY on
PostgreSQL, executemany in big transactions on SQLite, the two activity indexes built after
the load). Then, side by side in each round:

- `ingest`: N activities (split over the rounds) sent to `POST /api/v1/activities` in batches
  of 10,000 (real HTTP to the app under gunicorn, one keep-alive connection), with three
  dynamic segments whose activity criteria read the recorded types, so every request also
  re-evaluates the members it touched; the reference inserts rows drawn the same way (its
  own, so neither side finds pages the other just read; member ids already known) with
  `webapp.bulk.insert_rows`, a transaction per 10,000 like the API; the two go first in turn
  and both keep their rows (so each inserts into a table that grew the same way). Rates in
  activities per second; target >= 0.5x.
- `count`: the members with at least 3 coffee purchases and purchases summing to at least 50
  in the last 30 days, counted through `webapp.services.rules.rules_condition` (two activity
  criteria); the reference is one hand-written GROUP BY member_id HAVING over the same rows.
  Target >= 0.33x.
- `member page`: `GET /members/<id>` in the dashboard, signed in, for a member with
  activities, with 50 offers each targeted at its own dynamic segment with activity criteria
  (the segments are stored without materializing them over every member; the measured
  member's memberships are refreshed). p50 of the requests in milliseconds; target < 200 ms
  (reported with 200 as the reference, speedup = 200 / p50).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from bench._util import measure, result
from bench.api import _free_port, _gunicorn, _stop
from bench.upload import _postgres
from webapp.bulk import insert_rows

ROOT = Path(__file__).resolve().parent.parent
BATCH = 10_000
LOAD_CHUNK = 200_000
ITEMS = ("coffee", "tea", "sandwich", "juice")
STORES = ("north", "south", "east", "west", "station")
COLUMNS = ("member_id", "type", "occurred_at", "amount_e4", "properties", "external_id",
           "source", "recorded_at")
INDEXES = (("ix_activities_member", "member_id, type, occurred_at, amount_e4"),
           ("ix_activities_type_time", "type, occurred_at, member_id"))
COFFEE = [{"field": "properties.item", "operator": "equals", "value": "coffee"}]
COUNTED = {"kind": "dynamic", "include": [
    {"field": "activity.count", "operator": ">=", "value": 3,
     "activity": {"type": "purchase", "window": {"days": 30}, "where": COFFEE}},
    {"field": "activity.sum", "operator": ">=", "value": 50,
     "activity": {"type": "purchase", "window": {"days": 30}}}], "exclude": []}
INGEST_SEGMENTS = (
    ("Bench coffee regulars", COUNTED["include"]),
    ("Bench big spenders", [{"field": "activity.sum", "operator": ">=", "value": 200,
                             "activity": {"type": "purchase", "window": {"days": 90}}}]),
    ("Bench recent visitors", [{"field": "activity.count", "operator": ">=", "value": 2,
                                "activity": {"type": "visit", "window": {"days": 7}}}]),
)


def _member_id(i: int) -> str:
    return str(uuid.UUID(int=(i * 2654435761 + 1) % (1 << 122) | (4 << 76)))


# --- data ------------------------------------------------------------------------------------

def _seed_members(db, count: int) -> None:
    """`count` members at driver speed (ids from _member_id, external ids EXT000000001 …)."""
    from webapp.timeutil import utcnow

    now = utcnow()
    conn = db.session.connection()
    for start in range(0, count, LOAD_CHUNK):
        rows = [(_member_id(i), f"EXT{i:09d}", f"m{i}@bench.test", "bronze", i % 1000, 0, 0,
                 "[]", "{}", now, now) for i in range(start, min(count, start + LOAD_CHUNK))]
        insert_rows(conn, "members", ("id", "external_id", "email", "tier", "points", "xp",
                                      "coins", "badges", "custom_fields", "created_at",
                                      "updated_at"), rows)
    db.session.commit()


class Activities:
    """Deterministic random activities: (member index, type, occurred_at, amount_e4, props)."""

    def __init__(self, members: int, now: datetime, seed: int) -> None:
        self.members = members
        self.now = now
        self.rng = random.Random(seed)

    def one(self) -> tuple[int, str, datetime, int | None, dict]:
        """An activity of a member (a fifth of the members do most of the activities)."""
        rng = self.rng
        if rng.random() < 0.7:
            member = rng.randrange(max(1, self.members // 5))
        else:
            member = rng.randrange(self.members)
        at = self.now - timedelta(seconds=rng.randrange(90 * 86400))
        if rng.random() < 0.65:
            item = ITEMS[min(int(rng.random() * 5), 3)]   # coffee 40 %, the others 20 %
            amount = rng.randrange(150, 3000) * 100      # 1.50 to 29.99
            return member, "purchase", at, amount, {"item": item,
                                                    "store": STORES[rng.randrange(5)]}
        return member, "visit", at, None, {"store": STORES[rng.randrange(5)]}


def _storage(dialect: str, at: datetime) -> object:
    """A datetime as the driver stores it (SQLite: SQLAlchemy's text form)."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else at


def _load_activities(db, count: int, members: int, now: datetime) -> None:
    """`count` activities at driver speed, the indexes dropped during the load."""
    conn = db.session.connection()
    dialect = conn.dialect.name
    for name, _ in INDEXES:
        conn.exec_driver_sql(f"DROP INDEX {name}")
    db.session.commit()
    gen = Activities(members, now, seed=17)
    stamp = _storage(dialect, now)
    for start in range(0, count, LOAD_CHUNK):
        rows = []
        for i in range(start, min(count, start + LOAD_CHUNK)):
            m, kind, at, amount, props = gen.one()
            rows.append((_member_id(m), kind, _storage(dialect, at), amount, json.dumps(props),
                         f"seed-{i:010d}", "import", stamp))
        insert_rows(db.session.connection(), "activities", COLUMNS, rows)
        db.session.commit()
    conn = db.session.connection()
    for name, columns in INDEXES:
        conn.exec_driver_sql(f"CREATE INDEX {name} ON activities ({columns})")
    db.session.commit()
    _analyze(db)


def _analyze(db) -> None:
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as auto:
            auto.exec_driver_sql("VACUUM ANALYZE activities")
            auto.exec_driver_sql("ANALYZE members")
    else:
        conn.exec_driver_sql("ANALYZE")
        db.session.commit()
        # the load's write-ahead log written back now, not by whichever side writes first
        with db.engine.connect() as raw:
            raw.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# --- (b) counting ----------------------------------------------------------------------------

def _reference_count(db, now: datetime) -> int:
    """The same members counted by hand: one pass over the window's purchases."""
    from webapp.services.rules import program_timezone
    from webapp.targeting.env import make_env
    from webapp.targeting.values import start_of_day_utc

    env = make_env(now, program_timezone())
    start = start_of_day_utc(env.today - timedelta(days=29), env.tz)
    conn = db.session.connection()
    dialect = conn.dialect.name
    item = ("json_extract(properties, '$.item')" if dialect == "sqlite"
            else "properties ->> 'item'")
    sql = ("SELECT count(*) FROM (SELECT member_id FROM activities WHERE type = 'purchase' "
           "AND occurred_at >= :start AND occurred_at <= :now GROUP BY member_id "
           f"HAVING sum(CASE WHEN {item} = 'coffee' THEN 1 ELSE 0 END) >= 3 "
           "AND sum(amount_e4) >= 500000) AS t")
    from sqlalchemy import text
    got = db.session.execute(text(sql), {"start": start, "now": env.now}).scalar()
    db.session.rollback()
    return got


def _our_count(db, now: datetime) -> int:
    from sqlalchemy import func, select

    from webapp.models import Member
    from webapp.services.rules import rules_condition

    got = db.session.scalar(select(func.count()).select_from(Member.__table__).where(
        rules_condition(COUNTED, now=now)))
    db.session.rollback()
    return got


# --- (a) ingestion ---------------------------------------------------------------------------

def _ingest_items(gen: Activities, count: int, prefix: str) -> list[tuple]:
    """(member index, type, occurred_at, amount_e4, props, external id) for one round."""
    return [(*gen.one(), f"{prefix}-{i:09d}") for i in range(count)]


def _api_document(batch: list[tuple]) -> bytes:
    from webapp.targeting.behaviour import from_e4

    data = [{"type": "activities", "attributes": {
        "member": f"EXT{m:09d}", "activity_type": kind,
        "occurred_at": at.isoformat() + "Z", "amount": from_e4(amount), "properties": props,
        "external_id": ext}} for m, kind, at, amount, props, ext in batch]
    return json.dumps({"data": data}).encode()


def _send(conn: http.client.HTTPConnection, body: bytes, token: str) -> float:
    """POST one batch; seconds until the whole answer is read (refuses a failed item)."""
    start = time.perf_counter()
    conn.request("POST", "/api/v1/activities", body=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/vnd.api+json",
        "Accept": "application/vnd.api+json"})
    response = conn.getresponse()
    payload = response.read()
    took = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"POST /api/v1/activities: {response.status} {payload[:500]!r}")
    counts = json.loads(payload)["meta"]["counts"]
    if counts["invalid"] or counts["duplicate"]:
        raise SystemExit(f"POST /api/v1/activities: {counts}")
    return took


def _ours_ingest(port: int, token: str, items: list[tuple]) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    seconds = 0.0
    for start in range(0, len(items), BATCH):
        seconds += _send(conn, _api_document(items[start:start + BATCH]), token)
    conn.close()
    return seconds


def _reference_ingest(db, items: list[tuple], now: datetime) -> float:
    dialect = db.session.get_bind().dialect.name
    stamp = _storage(dialect, now)
    seconds = 0.0
    for start in range(0, len(items), BATCH):
        rows = [(_member_id(m), kind, _storage(dialect, at), amount, json.dumps(props),
                 ext, "ref", stamp) for m, kind, at, amount, props, ext in
                items[start:start + BATCH]]
        began = time.perf_counter()
        insert_rows(db.session.connection(), "activities", COLUMNS, rows)
        db.session.commit()
        seconds += time.perf_counter() - began
    return seconds


def _serve(env: dict, workdir: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    log = workdir / "gunicorn.log"
    server = _gunicorn("wsgi:app", port, env, ROOT, 1, 2, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return server, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


# --- (c) the member page ---------------------------------------------------------------------

def _page_setup(db, member_index: int) -> str:
    """50 offers, each on its own dynamic segment with activity criteria; the member's
    memberships refreshed. Returns the member id."""
    from webapp.models import Audience, AudienceSegment, Member, Offer, Segment
    from webapp.services.membership import Cause, refresh_members
    from webapp.timeutil import utcnow

    now = utcnow()
    for n in range(50):
        kind = ("purchase", "visit")[n % 2]
        criterion = {"field": f"activity.{('count', 'sum', 'max', 'last', 'count')[n % 5]}",
                     "operator": ">=", "activity": {"type": kind,
                                                    "window": {"days": 7 + n}}}
        if criterion["field"] == "activity.last":
            criterion["value"] = {"days_ago": n % 20}
        elif criterion["field"] == "activity.count":
            criterion["value"] = 1 + n % 4
        else:
            criterion["value"] = 5 + n
        if kind == "purchase" and n % 3 == 0:
            criterion["activity"]["where"] = [{"field": "properties.item", "operator": "equals",
                                               "value": ITEMS[n % 4]}]
        segment = Segment(name=f"Page segment {n}", kind="dynamic", include=[criterion],
                          exclude=[], size=0)
        db.session.add(segment)
        db.session.flush()
        offer = Offer(name=f"Page offer {n}", category="bench", external_id=f"PAGE-{n}",
                      publish_at=now - timedelta(days=1), expire_at=now + timedelta(days=30))
        audience = Audience(audience_type="in_any_segment",
                            configuration={"segments": [segment.id]})
        audience.segment_links.append(AudienceSegment(segment_id=segment.id))
        offer.audiences.append(audience)
        db.session.add(offer)
    db.session.commit()
    member = db.session.get(Member, _member_id(member_index))
    refresh_members([member], Cause("rule", "bench", {}), now)
    db.session.commit()
    return member.id


def _page_times(app, member_id: str, requests: int) -> list[float]:
    """Seconds of each signed-in GET /members/<id> (after two warm-up requests)."""
    client = app.test_client()
    response = client.post("/login", data={"email": "bench@bench.test",
                                           "password": "bench password 123"})
    if response.status_code != 303:
        raise SystemExit(f"login: {response.status_code}")
    times = []
    for i in range(requests + 2):
        start = time.perf_counter()
        response = client.get(f"/members/{member_id}")
        took = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"GET /members/{member_id}: {response.status_code}")
        page = response.get_data(as_text=True)
        if "cannot be evaluated" in page or page.count("Page offer") < 50:
            raise SystemExit(f"GET /members/{member_id}: not every offer decided")
        if i >= 2:
            times.append(took)
    return times


# --- the benchmark ---------------------------------------------------------------------------

def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench activities")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--activities", type=int, default=10_000_000,
                        help="Activities loaded before the measures.")
    parser.add_argument("--ingest", type=int, default=1_000_000,
                        help="Activities sent through the API (split over the rounds).")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--page-requests", type=int, default=30)
    options = parser.parse_args(argv)
    if options.members < 1000 or options.ingest < options.rounds:
        raise SystemExit("--members is at least 1000 and --ingest at least --rounds")
    return options


def run(argv: list[str]) -> dict:
    """Seed, measure the rounds, return the benchmark JSON."""
    options = _options(argv)
    folder = Path(tempfile.mkdtemp(prefix="beacon-bench-activities-"))
    drop = None
    if options.database_url and options.database_url.startswith("postgres"):
        url, drop = _postgres(options.database_url)
    else:
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["BEACON_INSTANCE_PATH"] = str(folder / "instance")
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.timeutil import utcnow

    config = {"SQLALCHEMY_DATABASE_URI": url, "JOBS_SYNC": True, "WTF_CSRF_ENABLED": False,
              "UPLOAD_FOLDER": str(folder / "uploads"), "WEBHOOKS_AUTO_DELIVER": False}
    app = create_app(config)
    server = None
    info: dict = {}
    try:
        with app.app_context():
            upgrade(revision="heads")
            dialect = db.engine.dialect.name
            now = utcnow()
            started = time.perf_counter()
            _seed_members(db, options.members)
            _load_activities(db, options.activities, options.members, now)
            info["seed_seconds"] = round(time.perf_counter() - started, 1)
            counts = {"ours": [], "reference": []}
            for _ in range(options.rounds):
                counting_now = utcnow()
                began = time.perf_counter()
                want = _reference_count(db, counting_now)
                counts["reference"].append(time.perf_counter() - began)
                began = time.perf_counter()
                got = _our_count(db, counting_now)
                counts["ours"].append(time.perf_counter() - began)
                if got != want:
                    raise SystemExit(f"count: ours {got}, hand-written SQL {want}")
            info["counted_members"] = got
            from webapp.services.segments import save_segment
            from webapp.services.tokens import create_token
            from webapp.services.users import create_user

            for name, include in INGEST_SEGMENTS:
                save_segment({"name": name, "kind": "dynamic", "include": include},
                             actor="bench")
            create_user("bench@bench.test", "bench password 123", "admin", actor="bench")
            _, token = create_token("bench", "admin")
            db.session.commit()
            env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",
                                                                    "REDIS_URL")}
            env.update(DATABASE_URL=url, API_RATE_LIMIT="1000000000 per minute",
                       PYTHONPATH=str(ROOT), FLASK_DEBUG="0",
                       BEACON_INSTANCE_PATH=str(folder / "instance"))
            server, port = _serve(env, folder)
            # Each side records rows of its own, drawn alike: with the same rows, the side
            # going second found the index pages for those members and moments already read
            # by the first (PostgreSQL: 0.35 s against 1.0 s a batch).
            ours_gen = Activities(options.members, utcnow(), seed=23)
            ref_gen = Activities(options.members, utcnow(), seed=29)
            ingest = {"ours": [], "reference": []}
            per_round = options.ingest // options.rounds
            for number in range(options.rounds):
                items = _ingest_items(ours_gen, per_round, f"api{number}")
                ref_items = _ingest_items(ref_gen, per_round, f"ref{number}")
                # Each side in turn goes first, and the reference's rows stay: deleting them
                # would leave free pages and split index pages for the next round's
                # reference to refill (SQLite measured it 2x faster from the second round).
                for side in (("reference", "ours") if number % 2 == 0
                             else ("ours", "reference")):
                    took = (_reference_ingest(db, ref_items, utcnow()) if side == "reference"
                            else _ours_ingest(port, token, items))
                    ingest[side].append(per_round / took)
            _stop(server)
            server = None
            member_id = _page_setup(db, 1)
            page = _page_times(app, member_id, options.page_requests)
            db.session.remove()
            db.engine.dispose()
    finally:
        _stop(server)
        if drop:
            drop()
        shutil.rmtree(folder, ignore_errors=True)
    p50 = statistics.median(page) * 1000
    scale = f"{options.members:,} members, {options.activities:,} activities, {dialect}"
    measures = [
        measure(f"record activities through POST /api/v1/activities, batches of {BATCH:,}, "
                f"3 segments with activity criteria ({scale})", "activities/s",
                statistics.median(ingest["ours"]), statistics.median(ingest["reference"]),
                "rows drawn alike inserted with executemany/COPY, a transaction per batch",
                0.5, True),
        measure(f"count coffee regulars (3+ coffee purchases and 50+ spent in 30 days) "
                f"({scale})", "s", statistics.median(counts["ours"]),
                statistics.median(counts["reference"]),
                "one hand-written GROUP BY member_id HAVING", 0.33, False),
        measure(f"member page with 50 offers on segments with activity criteria ({scale})",
                "ms", p50, 200.0, "the 200 ms budget", 1.0, False),
    ]
    measures[0]["rounds"] = [round(x, 1) for x in ingest["ours"]]
    measures[0]["reference_rounds"] = [round(x, 1) for x in ingest["reference"]]
    measures[1]["rounds"] = [round(x, 4) for x in counts["ours"]]
    measures[1]["reference_rounds"] = [round(x, 4) for x in counts["reference"]]
    measures[2]["p99_ms"] = round(sorted(page)[min(len(page) - 1, int(len(page) * 0.99))]
                                  * 1000, 2)
    return result("activities", measures) | {
        "members": options.members, "activities": options.activities,
        "ingested": per_round * options.rounds, "database": dialect, "rounds": options.rounds,
        **info}
