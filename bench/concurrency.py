"""Membership changes under concurrent writers, and the cost of writing events.

`python -m bench concurrency [--members N] [--seconds S] [--clients C] [--workers W]
[--threads T] [--segments K] [--batch B] [--rows R] [--database-url URL]`

Builds a throw-away instance (SQLite in a temp folder unless `--database-url` is given, then
that database must be empty): migrations, N members (API batch upserts), K static segments
and an admin token. Serves it with gunicorn (gthread workers) and measures:

- `changes_per_second`: membership changes (members added plus removed, as the per-item
  results report them) per second while C client processes each send back-to-back
  `POST`/`DELETE .../relationships/members` of B random members to one of the K segments,
  against the same workload from one client. The scaling ratio must be at least 1.0:
  concurrency never makes Beacon slower, whatever it serializes.
- `event_write_rate`: rows per second of `apply_delta` adding R members to a segment (rows,
  one event each, size, snapshot, audit; in process, no HTTP) against a raw insert of the
  same membership and event rows with no checks (the reference).

Afterwards every segment's size is checked against its rows (`flask segments verify`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._util import measure, result
from bench.api import _flask, _free_port, _gunicorn, _stop, _wait_ready

ROOT = Path(__file__).resolve().parent.parent
JSONAPI = "application/vnd.api+json"

EVENT_RATE = '''
import json, sys, time, statistics
from sqlalchemy import delete, insert, select
from webapp import create_app
from webapp.extensions import db
from webapp.services.membership import Cause, apply_delta, events_t, memberships_t
from webapp.models import Member, Segment
from webapp.timeutil import utcnow

rows = int(sys.argv[1])
app = create_app()
with app.app_context():
    ids = list(db.session.scalars(select(Member.id).order_by(Member.id).limit(rows)))
    segment = Segment(name="event-rate", kind="static", size=0)
    db.session.add(segment)
    db.session.commit()

    def clear():
        db.session.execute(delete(memberships_t).where(memberships_t.c.segment_id == segment.id))
        db.session.execute(delete(events_t).where(events_t.c.segment_id == segment.id))
        segment.size = 0
        db.session.commit()

    def ours():
        apply_delta(segment, add=ids, via="list", cause=Cause("api", "bench"))
        db.session.commit()

    def raw():
        now = utcnow()
        db.session.execute(insert(memberships_t), [
            {"segment_id": segment.id, "member_id": m, "via": "list", "since": now} for m in ids])
        db.session.execute(insert(events_t), [{
            "action": "ADD", "segment_id": segment.id, "segment_name": segment.name,
            "customer_segment_id": None, "member_id": m, "source": "api", "cause": {},
            "actor_label": "bench", "upload_id": None, "override_id": None,
            "created_at": now} for m in ids])
        db.session.commit()

    times = {"ours": [], "raw": []}
    for _ in range(3):
        for name, fn in (("raw", raw), ("ours", ours)):
            clear()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    clear()
    db.session.delete(segment)
    db.session.commit()
    print(json.dumps({"rows": len(ids), "ours": statistics.median(times["ours"]),
                      "raw": statistics.median(times["raw"])}))
'''


def _client(port: int, token: str, segments: list[int], members: list[str], batch: int,
            seconds: float, seed: int, barrier, out) -> None:
    """Back-to-back list edits for `seconds`; reports (changes, requests, failures)."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Accept": JSONAPI, "Content-Type": JSONAPI}
    changes = requests = failures = 0
    barrier.wait()
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        method = rng.choice(("POST", "DELETE"))
        body = json.dumps({"data": [{"type": "members", "id": m}
                                    for m in rng.sample(members, batch)]})
        conn.request(method, f"/api/v1/segments/{rng.choice(segments)}/relationships/members",
                     body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        requests += 1
        if response.status != 200:
            failures += 1
            continue
        counts = json.loads(payload)["meta"]["counts"]
        changes += counts.get("added", 0) + counts.get("removed", 0)
    conn.close()
    out.put((changes, requests, failures))


def load(port: int, token: str, segments: list[int], members: list[str], clients: int,
         batch: int, seconds: float) -> dict:
    """Run `clients` client processes at once; their combined rates."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(clients + 1)
    out = context.Queue()
    processes = [context.Process(target=_client, args=(
        port, token, segments, members, batch, seconds, 1000 + n, barrier, out))
        for n in range(clients)]
    for process in processes:
        process.start()
    barrier.wait()
    start = time.perf_counter()
    reports = [out.get(timeout=seconds + 120) for _ in processes]
    elapsed = max(time.perf_counter() - start, seconds)
    for process in processes:
        process.join()
    changes = sum(r[0] for r in reports)
    requests = sum(r[1] for r in reports)
    return {"clients": clients, "changes": changes, "requests": requests,
            "failures": sum(r[2] for r in reports), "seconds": round(elapsed, 3),
            "changes_per_second": round(changes / elapsed, 1),
            "requests_per_second": round(requests / elapsed, 1)}


def _api(port: int, token: str, method: str, path: str, body) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, f"/api/v1{path}", body=json.dumps(body), headers={
        "Authorization": f"Bearer {token}", "Accept": JSONAPI, "Content-Type": JSONAPI})
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    if response.status not in (200, 201):
        raise RuntimeError(f"{method} {path} answered {response.status}: {payload}")
    return payload


def run(argv: list[str]) -> dict:
    """Measure the scaling ratio of concurrent membership writers and the event-write rate."""
    parser = argparse.ArgumentParser(prog="python -m bench concurrency")
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--database-url", default=None)
    options = parser.parse_args(argv)
    if options.members < max(options.batch, options.rows, 1):
        parser.error("--members must be at least --batch and --rows")

    workdir = Path(tempfile.mkdtemp(prefix="beacon-bench-concurrency-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"BEACON_INSTANCE_PATH": str(workdir / "instance"),
                "API_RATE_LIMIT": "1000000000 per minute", "PYTHONPATH": str(ROOT),
                "FLASK_DEBUG": "0", "SECRET_KEY": "bench-concurrency"})
    env["DATABASE_URL"] = options.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    log = workdir / "gunicorn.log"
    server = None
    settings = {"workers": options.workers, "threads": options.threads,
                "worker_class": "gthread", "clients": options.clients,
                "seconds": options.seconds, "segments": options.segments,
                "batch": options.batch, "members": options.members, "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "database": "given" if options.database_url else "sqlite (temporary)"}
    try:
        _flask(env, "db", "upgrade", "heads")
        token = _flask(env, "tokens", "create", "bench", "--role", "admin").strip()
        port = _free_port()
        server = _gunicorn("wsgi:app", port, env, ROOT, options.workers, options.threads, log)
        headers = {"Authorization": f"Bearer {token}", "Accept": JSONAPI}
        _wait_ready(port, "/api/v1/segments", headers, server, log)
        members: list[str] = []
        for start in range(0, options.members, 5000):
            body = {"data": [{"type": "members", "attributes": {"external_id": f"b{n}"}}
                             for n in range(start, min(start + 5000, options.members))]}
            members += [r["id"] for r in _api(port, token, "POST", "/members/batch",
                                               body)["meta"]["results"]]
        segments = [int(_api(port, token, "POST", "/segments", {"data": {
            "type": "segments", "attributes": {"name": f"bench {n}", "kind": "static"}}})
            ["data"]["id"]) for n in range(options.segments)]
        pool = members[:max(options.batch * 10, 200)]
        single = load(port, token, segments, pool, 1, options.batch, options.seconds)
        many = load(port, token, segments, pool, options.clients, options.batch,
                    options.seconds)
        _stop(server)
        server = None
        completed = subprocess.run([sys.executable, "-c", EVENT_RATE, str(options.rows)],
                                   cwd=ROOT, env=env, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"event-rate measure failed: {completed.stderr[-2000:]}")
        events = json.loads(completed.stdout.strip().splitlines()[-1])
        verify = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "segments",
                                 "verify"], cwd=ROOT, env=env, capture_output=True, text=True)
        settings["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        _stop(server)
        shutil.rmtree(workdir, ignore_errors=True)

    measures = [
        measure("changes_per_second", "changes/s", many["changes_per_second"],
                single["changes_per_second"], "the same workload from 1 client", 1.0, True),
        measure("event_write_rate", "rows/s", events["rows"] / events["ours"],
                events["rows"] / events["raw"],
                "raw INSERT of the same membership and event rows", 0.5, True),
    ]
    out = result("concurrency", measures)
    out.update(settings=settings, one_client=single, many_clients=many, event_rows=events,
               failed_requests=single["failures"] + many["failures"],
               verify_ok=verify.returncode == 0, verify_output=verify.stdout.strip()[-500:])
    return out
