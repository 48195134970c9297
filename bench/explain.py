"""The visibility explainer's member page with 500 offers and 200 rewards over 1,000,000 members.

`python -m bench explain [--members N] [--offers N] [--rewards N] [--repeat N] [--instance DIR]`

Builds (or reuses) a bench instance: `flask demo seed --members N` into its own instance folder
(a few minutes for 1,000,000), then adds the offers and rewards, each with audiences or required
segments drawn from the demo segments (a fixed seed, so reruns compare). It then times a GET of
`/members/<id>` through the Flask test client, signed in as a support agent, for members picked
across the table (median of several runs each).

Reference, measured in the same run: rendering the same page template for the same member with
the decisions already computed (`render_template` alone, no database and no evaluation) — the
cost of producing that much HTML at all, so the difference is what loading the facts and
deciding 700 visibilities adds.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._util import measure, result

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "BENCH-"


def _flask(instance: Path, *args: str) -> None:
    env = dict(os.environ, BEACON_INSTANCE_PATH=str(instance))
    env.pop("DATABASE_URL", None) if not os.environ.get("BENCH_DATABASE_URL") else env.update(
        DATABASE_URL=os.environ["BENCH_DATABASE_URL"])
    subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", *args], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)


def populate(offers: int, rewards: int, seed: int = 7) -> None:
    """Add bench offers and rewards (with audiences / required segments) unless present."""
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import Audience, AudienceSegment, Offer, Reward, Segment
    from webapp.timeutil import utcnow

    have = db.session.scalar(select(func.count()).select_from(Offer).where(
        Offer.external_id.like(PREFIX + "%")))
    if have >= offers:
        return
    rng = random.Random(seed)
    now = utcnow()
    segments = list(db.session.scalars(select(Segment).order_by(Segment.id)))
    ids = [s.id for s in segments]
    categories = ("points", "discount", "events", "travel", "partner", "app")
    for n in range(have, offers):
        o = Offer(name=f"Bench offer {n + 1:03d}", external_id=f"{PREFIX}O{n + 1:04d}",
                  category=rng.choice(categories), description="Benchmark offer.",
                  publish_at=now - rng.randrange(1, 90) * _day(),
                  expire_at=now + rng.randrange(-10, 120) * _day(),
                  discontinued=rng.random() < 0.05)
        kinds = rng.sample(["age_within", "in_all_segments", "in_any_segment"],
                           rng.randrange(0, 3))
        for kind in kinds:
            if kind == "age_within":
                lo = rng.choice((None, 16, 18, 21, 30))
                hi = rng.choice((None, 25, 40, 65)) if lo is None or lo < 25 else None
                if lo is None and hi is None:
                    lo = 18
                config = {"minimum_age": lo, "maximum_age": hi}
            else:
                config = {"segments": rng.sample(ids, rng.randrange(1, 4))}
            a = Audience(audience_type=kind, configuration=config)
            for sid in config.get("segments", []):
                a.segment_links.append(AudienceSegment(segment_id=sid))
            o.audiences.append(a)
        db.session.add(o)
    for n in range(rewards):
        r = Reward(name=f"Bench reward {n + 1:03d}", external_id=f"{PREFIX}R{n + 1:04d}",
                   category=rng.choice(categories), points=rng.choice((0, 150, 900, 5000, 20000)),
                   publish_at=now - 10 * _day(), expire_at=now + rng.randrange(-5, 200) * _day(),
                   discontinued=rng.random() < 0.05)
        r.required_segments = rng.sample(segments, rng.randrange(0, 4))
        db.session.add(r)
    db.session.commit()


def _day():
    from datetime import timedelta

    return timedelta(days=1)


def run(argv: list[str]) -> dict:
    """Build or reuse the bench instance, then time the member page against the reference."""
    parser = argparse.ArgumentParser(prog="python -m bench explain")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--offers", type=int, default=500)
    parser.add_argument("--rewards", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--instance", default=None,
                        help="instance folder (default: a fixed folder per member count)")
    args = parser.parse_args(argv)
    instance = Path(args.instance or Path(tempfile.gettempdir())
                    / f"beacon-bench-explain-{args.members}")
    instance.mkdir(parents=True, exist_ok=True)
    marker = instance / "seeded"
    if not marker.exists():
        for leftover in instance.glob("beacon.sqlite3*"):
            leftover.unlink()
        _flask(instance, "db", "upgrade", "heads")
        _flask(instance, "demo", "seed", "--members", str(args.members))
        marker.write_text(str(args.members))

    os.environ["BEACON_INSTANCE_PATH"] = str(instance)
    if os.environ.get("BENCH_DATABASE_URL"):
        os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    from webapp import create_app

    app = create_app({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    with app.app_context():
        populate(args.offers, args.rewards)
        return _measure(app, args)


def _statements(app, client, url: str) -> int:
    """How many SQL statements one member page runs."""
    from sqlalchemy import event

    from webapp.extensions import db

    seen: list[str] = []

    def count(conn, cursor, statement, *rest) -> None:
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def _measure(app, args) -> dict:
    from flask import render_template
    from sqlalchemy import func, select

    from webapp.demo import demo_password
    from webapp.extensions import db
    from webapp.members.views import page_context
    from webapp.models import Member, Offer, Reward
    from webapp.services import decisions as visibility

    total = db.session.scalar(select(func.count()).select_from(Member))
    n_offers = db.session.scalar(select(func.count()).select_from(Offer))
    n_rewards = db.session.scalar(select(func.count()).select_from(Reward))
    # Members spread across the table, and the demo's members with overrides (the first 60).
    picks = [db.session.scalar(select(Member.id).order_by(Member.external_id).offset(k))
             for k in (3, 11, total // 3, (2 * total) // 3, total - 1)]
    client = app.test_client()
    response = client.post("/login", data={"email": "support@beacon.test",
                                           "password": demo_password()})
    if response.status_code != 303:
        raise SystemExit(f"could not sign in as support@beacon.test: {response.status_code}")

    ours: list[float] = []
    ours_cpu: list[float] = []
    reference: list[float] = []
    size = 0
    for member_id in picks:
        url = f"/members/{member_id}"
        client.get(url)  # warm: compiled definitions and templates are cached per process
        for _ in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            ours.append(time.perf_counter() - start)
            ours_cpu.append(time.process_time() - cpu)
            assert response.status_code == 200, response.status_code
        size = max(size, len(response.data))
        with app.test_request_context(url):
            from flask_login import login_user

            from webapp.models import User

            login_user(db.session.scalar(select(User).where(
                User.email == "support@beacon.test")))
            member = db.session.get(Member, member_id)
            catalog = visibility.load_catalog(rows=True)
            ctx = page_context(member, visibility.explainer(member, catalog))
            render_template("members/show.html", **ctx)
            for _ in range(args.repeat):
                start = time.perf_counter()
                render_template("members/show.html", **ctx)
                reference.append(time.perf_counter() - start)
    ours_ms = statistics.median(ours) * 1000
    ref_ms = statistics.median(reference) * 1000
    out = result("explain", [measure(
        f"member page, {n_offers} offers + {n_rewards} rewards, {total:,} members "
        f"({app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]})", "ms", ours_ms, ref_ms,
        "render_template of the same page with the decisions precomputed (no DB, no evaluation)",
        200, False)])
    out["details"] = {"members": total, "offers": n_offers, "rewards": n_rewards,
                      "pages_timed": len(ours), "page_bytes": size,
                      "p90_ms": round(sorted(ours)[int(len(ours) * 0.9) - 1] * 1000, 2),
                      "max_ms": round(max(ours) * 1000, 2),
                      "cpu_median_ms": round(statistics.median(ours_cpu) * 1000, 2),
                      "sql_statements_per_page": _statements(app, client, f"/members/{picks[0]}"),
                      "load_average_1m": round(os.getloadavg()[0], 2),
                      "cpus": os.cpu_count()}
    return out
