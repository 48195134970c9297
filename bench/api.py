"""API read throughput and latency under gunicorn, next to a bare Flask endpoint.

`python -m bench api [--members N] [--seconds S] [--rounds R] [--clients C] [--workers W]
[--threads T] [--database-url URL] [--redis-url URL] [--profile N]`

Builds a throw-away instance (SQLite in a temp folder unless `--database-url` is given):
migrations, `flask demo seed`, extra offers up to 100 (with age, any-segment and
all-segment audiences), limits on half of the offers (per-member monthly and rolling caps,
global caps) with ten awards already made to the measured member, a support-role token from
`flask tokens create`. It then serves the
app and a tiny Flask app (one route returning a small JSON object) with the same gunicorn
settings (gthread workers, keep-alive) on 127.0.0.1, and measures, one after the other:

- the bare endpoint (the reference),
- `GET /api/v1/segments/{id}` (a simple read),
- `GET /api/v1/members/{id}/offers` (100 offers decorated with visible_status, eligible,
  reasons) for one member, again and again: after the first request the server answers
  from its per-member result cache (the catalog and the member's facts are still read and
  checked on every request),
- the same route round-robin over many distinct members (`member_offers_many`): every
  client of every round walks its own slice of the members, so no member is asked twice
  unless a slice runs out (`repeats` says how often that happened); this measures the
  computation itself, with the per-process catalog cache warm and the result cache cold,

each with C client processes, each holding one keep-alive HTTP/1.1 connection and sending
requests back to back for S seconds (after a short warm-up). Prints requests per second and
p50/p99 latency. Targets: simple reads >= 0.5x the bare rate with p99 under 10 ms; the
decorated offers >= 0.3x the bare rate (the many-members measure is reported next to it,
with the same 0.3x for comparison).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench._util import measure, result

ROOT = Path(__file__).resolve().parent.parent
OFFERS = 100
BARE_APP = textwrap.dedent('''
    """The reference: the least a Flask app can do per request."""
    from flask import Flask, jsonify

    app = Flask(__name__)


    @app.get("/ping")
    def ping():
        return jsonify({"data": {"type": "ping", "id": "1", "attributes": {"ok": True}}})
''')


# --- load generation --------------------------------------------------------------------

def _client(port: int, paths: str | list[str], headers: dict[str, str], seconds: float,
            warmup: float) -> tuple[list[float], dict[int, int], int]:
    """One keep-alive connection sending requests back to back (cycling through `paths`);
    latencies after warm-up, statuses, and how many requests repeated an earlier path."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cycle = [paths] if isinstance(paths, str) else paths
    sent = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds
    while True:
        t0 = time.perf_counter()
        if t0 >= stop:
            break
        path = cycle[sent % len(cycle)]
        sent += 1
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t1 = time.perf_counter()
        if t0 >= measure_from:
            latencies.append(t1 - t0)
            statuses[status] = statuses.get(status, 0) + 1
    conn.close()
    return latencies, statuses, max(0, sent - len(cycle)) if len(cycle) > 1 else 0


def _client_entry(args: tuple) -> tuple[list[float], dict[int, int], int]:
    return _client(*args)


def load(port: int, path: str | list[list[str]], headers: dict[str, str], *, clients: int,
         seconds: float, warmup: float = 1.0) -> dict:
    """Requests per second and latency percentiles of `clients` concurrent connections
    (`path`: one path for all, or a list of paths per client, each cycled through)."""
    ctx = multiprocessing.get_context("fork")
    per_client = [path] * clients if isinstance(path, str) else path
    with ctx.Pool(clients) as pool:
        outcomes = pool.map(_client_entry,
                            [(port, p, headers, seconds, warmup) for p in per_client])
    latencies = sorted(x for lat, _, _ in outcomes for x in lat)
    repeats = sum(r for _, _, r in outcomes)
    label = path if isinstance(path, str) else (
        f"{per_client[0][0].rsplit('/', 2)[0]}/<{sum(map(len, per_client))} members>/"
        f"{per_client[0][0].rsplit('/', 1)[1]}")
    path = label
    statuses: dict[int, int] = {}
    for _, st, _ in outcomes:
        for code, n in st.items():
            statuses[code] = statuses.get(code, 0) + n
    count = len(latencies)
    if not count:
        return {"path": path, "requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None,
                "statuses": statuses}
    return {
        "path": path,
        "requests": count,
        "rps": round(count / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[min(count - 1, int(count * 0.99))] * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **({} if isinstance(per_client[0], str) else {"repeats": repeats}),
    }


def _combine(runs: list[dict]) -> dict:
    """Rounds of one endpoint: the median round's rate and latencies, and every round."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    middle = ordered[len(ordered) // 2]
    out = {**middle, "rps_rounds": [r["rps"] for r in runs],
           "p99_ms_rounds": [r["p99_ms"] for r in runs]}
    if "repeats" in middle:
        out["repeats_rounds"] = [r["repeats"] for r in runs]
    return out


# --- servers ----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gunicorn(app: str, port: int, env: dict, cwd: Path, workers: int, threads: int,
              log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers),
               "--threads", str(threads), "--keep-alive", "30", "-b", f"127.0.0.1:{port}",
               "--log-level", "warning", "--config", str(ROOT / "gunicorn.conf.py"), app]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def _wait_ready(port: int, path: str, headers: dict[str, str], process: subprocess.Popen,
                log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:500]!r}")
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not answer within {timeout} s")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- data -------------------------------------------------------------------------------

def _flask(env: dict, *args: str) -> str:
    completed = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", *args],
                               cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed: {completed.stderr[-2000:]}")
    return completed.stdout


PREPARE = textwrap.dedent('''
    """Top the demo offers up to {offers} and pick a member and a segment to read."""
    import json, random
    from datetime import timedelta
    from sqlalchemy import func, select
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Audience, AudienceSegment, Member, Offer, Segment, SegmentMembership
    from webapp.timeutil import utcnow

    app = create_app()
    with app.app_context():
        rng = random.Random(7)
        now = utcnow()
        segments = list(db.session.scalars(select(Segment.id).order_by(Segment.id)))
        have = db.session.scalar(select(func.count()).select_from(Offer))
        for n in range(have, {offers}):
            offer = Offer(name=f"Bench offer {{n}}", category="bench", external_id=f"BENCH-{{n}}",
                          publish_at=now - timedelta(days=10), expire_at=now + timedelta(days=50))
            kind = n % 4
            audiences = []
            if kind == 1:
                audiences.append(("age_within", {{"minimum_age": 18 + n % 20,
                                                  "maximum_age": None}}))
            elif kind == 2 and segments:
                audiences.append(("in_any_segment", {{"segments": rng.sample(
                    segments, min(2, len(segments)))}}))
            elif kind == 3 and segments:
                audiences.append(("in_all_segments", {{"segments": [rng.choice(segments)]}}))
                audiences.append(("age_within", {{"minimum_age": None, "maximum_age": 70}}))
            for audience_type, configuration in audiences:
                audience = Audience(audience_type=audience_type, configuration=configuration)
                for sid in configuration.get("segments", []):
                    audience.segment_links.append(AudienceSegment(segment_id=sid))
                offer.audiences.append(audience)
            db.session.add(offer)
        db.session.commit()
        # The member in the most segments: the decorated offers do the most work for them.
        member_id = db.session.scalar(
            select(SegmentMembership.member_id).group_by(SegmentMembership.member_id)
            .order_by(func.count().desc(), SegmentMembership.member_id).limit(1)
        ) or db.session.scalar(select(Member.id).limit(1))
        segment_id = db.session.scalar(
            select(Segment.id).order_by(Segment.size.desc(), Segment.id).limit(1))
        # Limits on half of the offers (a monthly per-member cap with a global one, or a
        # rolling 30-day cap), and the measured member has used ten of them.
        from webapp.models import OfferFulfillment, OfferLimit, OfferUsage
        offer_ids = list(db.session.scalars(select(Offer.id).order_by(Offer.id)))
        for i, oid in enumerate(offer_ids):
            if i % 4 == 0:
                db.session.add(OfferLimit(offer_id=oid, limit_type="membership_award_count",
                                          configuration={{"limit": 3,
                                                          "window": {{"period": "month"}}}}))
                db.session.add(OfferLimit(offer_id=oid, limit_type="global_award_count",
                                          configuration={{"limit": 100000, "window": None}}))
            elif i % 4 == 2:
                db.session.add(OfferLimit(offer_id=oid, limit_type="membership_award_count",
                                          configuration={{"limit": 2, "window": {{"days": 30}}}}))
        for j, oid in enumerate(offer_ids[:20:2]):
            db.session.add(OfferFulfillment(offer_id=oid, member_id=member_id,
                                            external_id=f"bench-{{j}}", actor_label="bench",
                                            fulfilled_at=now - timedelta(days=j)))
            db.session.add(OfferUsage(offer_id=oid, activations=0, awards=1))
        db.session.commit()
        # Distinct members for the many-members measure, in a fixed shuffled order.
        many = list(db.session.scalars(select(Member.id).order_by(Member.id)))
        rng.shuffle(many)
        print(json.dumps({{"member_id": member_id, "segment_id": segment_id,
                           "offers": db.session.scalar(select(func.count()).select_from(Offer)),
                           "many": many}}))
''')


PROFILE = textwrap.dedent('''
    """cProfile N requests per path through the test client; where the time goes, as JSON."""
    import cProfile, json, pstats, sys, time
    from webapp import create_app

    paths, token, count = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.api+json"}
    WATCH = ("/webapp/", "flask_limiter", "/limits/", "/json/")

    def label(file, line, name):
        for marker in ("/webapp/", "site-packages/", "/lib/python3"):
            if marker in file:
                file = file.split(marker, 1)[1]
                if marker == "/webapp/":
                    file = "webapp/" + file
                break
        return f"{file}:{line}({name})"

    out = {}
    for name, path in paths.items():
        cycle = [path] if isinstance(path, str) else path
        for i in range(3):
            client.get(cycle[-1 - i % len(cycle)], headers=headers)
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        for i in range(count):
            client.get(cycle[i % len(cycle)], headers=headers)
        profile.disable()
        per_request = (time.perf_counter() - start) / count * 1000
        stats = pstats.Stats(profile).stats
        rows = [(ct / count * 1000, tt / count * 1000, nc / count, file, line, fn)
                for (file, line, fn), (cc, nc, tt, ct, callers) in stats.items()]
        cumulative = sorted((r for r in rows if any(w in r[3] for w in WATCH)),
                            key=lambda r: -r[0])[:18]
        own = sorted(rows, key=lambda r: -r[1])[:10]
        out[name] = {
            "requests": count, "ms_per_request_profiled": round(per_request, 2),
            "cumulative_ms": [[label(f, ln, fn), round(ct, 2), round(nc, 1)]
                              for ct, tt, nc, f, ln, fn in cumulative],
            "self_ms": [[label(f, ln, fn), round(tt, 2), round(nc, 1)]
                        for ct, tt, nc, f, ln, fn in own],
        }
    print(json.dumps(out))
''')


def _profile(env: dict, paths: dict[str, str | list[str]], token: str, count: int) -> dict:
    """Where a request's time goes: cProfile in-process over the same instance."""
    completed = subprocess.run(
        [sys.executable, "-c", PROFILE, json.dumps(paths), token, str(count)], cwd=ROOT,
        env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return {"error": completed.stderr[-2000:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _prepare(env: dict, members: int) -> dict:
    _flask(env, "db", "upgrade", "heads")
    _flask(env, "demo", "seed", "--members", str(members))
    completed = subprocess.run([sys.executable, "-c", PREPARE.format(offers=OFFERS)], cwd=ROOT,
                               env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"preparing the offers failed: {completed.stderr[-2000:]}")
    picked = json.loads(completed.stdout.strip().splitlines()[-1])
    picked["token"] = _flask(env, "tokens", "create", "bench", "--role", "support").strip()
    return picked


# --- the benchmark ----------------------------------------------------------------------

def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench api")
    parser.add_argument("--members", type=int, default=20000,
                        help="Demo members to seed (enough that the many-members measure "
                             "need not repeat a member).")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default=None,
                        help="An empty database to use instead of a temporary SQLite file.")
    parser.add_argument("--redis-url", default=None,
                        help="Serve with REDIS_URL (rate-limit counters in Redis, as in "
                             "production); default: in-memory counters.")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Rounds; each loads every endpoint once, in turn.")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="Also cProfile N requests of each API path in-process and "
                             "report where the time goes.")
    parser.add_argument("--bare-only", action="store_true",
                        help="Measure only the bare endpoint (checks the harness).")
    options = parser.parse_args(argv)
    options.clients = max(1, min(options.clients, 64))
    options.seconds = max(0.5, min(options.seconds, 120.0))
    options.rounds = max(1, min(options.rounds, 20))
    return options


def run(argv: list[str]) -> dict:
    """Serve both apps, load each endpoint in turn and return the measures."""
    options = _options(argv)
    workdir = Path(tempfile.mkdtemp(prefix="beacon-bench-api-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "BEACON_INSTANCE_PATH": str(workdir / "instance"),
        "API_RATE_LIMIT": "1000000000 per minute",
        "PYTHONPATH": str(ROOT),
        "FLASK_DEBUG": "0",
    })
    if options.database_url:
        env["DATABASE_URL"] = options.database_url
    # Seeding runs without Redis (it would queue webhook delivery jobs nobody runs); the
    # served app gets REDIS_URL so its rate-limit counters live in Redis as in production.
    server_env = dict(env, REDIS_URL=options.redis_url) if options.redis_url else env
    (workdir / "bare.py").write_text(BARE_APP)
    servers: list[subprocess.Popen] = []
    log = workdir / "gunicorn.log"
    settings = {"workers": options.workers, "threads": options.threads,
                "worker_class": "gthread", "clients": options.clients,
                "seconds": options.seconds, "rounds": options.rounds, "host": "127.0.0.1",
                "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
                "database": "given" if options.database_url else "sqlite (temporary)",
                "rate_limit_storage": "redis" if options.redis_url else "memory"}
    try:
        bare_port = _free_port()
        bare = _gunicorn("bare:app", bare_port, env, workdir, options.workers,
                         options.threads, log)
        servers.append(bare)
        _wait_ready(bare_port, "/ping", {}, bare, log)
        targets = [("bare", bare_port, "/ping", {})]
        picked: dict = {}
        if not options.bare_only:
            picked = _prepare(env, options.members)
            headers = {"Authorization": f"Bearer {picked['token']}",
                       "Accept": "application/vnd.api+json"}
            port = _free_port()
            beacon = _gunicorn("wsgi:app", port, server_env, ROOT, options.workers,
                               options.threads, log)
            servers.append(beacon)
            segment_path = f"/api/v1/segments/{picked['segment_id']}"
            offers_path = f"/api/v1/members/{picked['member_id']}/offers"
            _wait_ready(port, segment_path, headers, beacon, log)
            _wait_ready(port, offers_path, headers, beacon, log)
            targets += [("segment_get", port, segment_path, headers),
                        ("member_offers", port, offers_path, headers),
                        ("member_offers_many", port, None, headers)]
            many = [f"/api/v1/members/{m}/offers" for m in picked["many"]]
            slices = options.rounds * options.clients
        # Rounds interleave the endpoints so that other load on the machine hits all alike.
        rounds: dict[str, list[dict]] = {name: [] for name, *_ in targets}
        for number in range(options.rounds):
            for name, target_port, path, target_headers in targets:
                if path is None:  # every client of every round: its own slice of members
                    path = [many[(number * options.clients + c)::slices]
                            for c in range(options.clients)]
                rounds[name].append(load(target_port, path, target_headers,
                                         clients=options.clients, seconds=options.seconds))
        settings["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        profile = None
        if options.profile and not options.bare_only:
            for process in servers:
                _stop(process)
            profile = _profile(env, {"segment_get": segment_path, "member_offers": offers_path,
                                     "member_offers_many": many[:options.profile]},
                               picked["token"], options.profile)
    finally:
        for process in servers:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)

    summary = {name: _combine(runs) for name, runs in rounds.items()}
    reference = summary["bare"]
    if options.bare_only:
        out = result("api", [])
        out.update(settings=settings, bare=reference)
        return out
    segment, offers = summary["segment_get"], summary["member_offers"]
    offers_many = summary["member_offers_many"]
    bare_name = "bare Flask endpoint (same gunicorn settings)"
    measures = [
        measure("segment_get_rps", "requests/s", segment["rps"], reference["rps"], bare_name,
                0.5, True),
        measure("member_offers_rps", "requests/s", offers["rps"], reference["rps"], bare_name,
                0.3, True),
        measure("member_offers_many_members_rps", "requests/s", offers_many["rps"],
                reference["rps"], bare_name, 0.3, True),
        {"name": "segment_get_p99", "unit": "ms", "ours": segment["p99_ms"],
         "reference": reference["p99_ms"], "reference_name": bare_name, "target": 10.0,
         "met": segment["p99_ms"] is not None and segment["p99_ms"] < 10.0},
    ]
    out = result("api", measures)
    out.update(settings=settings, offers=picked["offers"], bare=reference, segment_get=segment,
               member_offers=offers, member_offers_many=offers_many,
               distinct_members=len(picked["many"]))
    if profile is not None:
        out["profile"] = profile
    return out
