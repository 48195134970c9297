"""A Beacon under gunicorn (several workers) on a database of its own, for the concurrency suite.

The suite drives the server over HTTP from several processes at once (tests/concurrency/
client.py) and then checks, straight in the database, what Beacon promises to the systems
that follow it: every segment's `size` equals its rows, and the ADD/REMOVE events of each
(segment, member) alternate and replay to the rows. `flask segments verify` must agree.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.concurrency.client import call

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "concurrency-suite-password"
MARKETER = "marketer@concurrency.test"


@dataclass
class Server:
    """The running gunicorn, its admin token and its database."""

    port: int
    token: str
    env: dict
    engine: Engine
    workdir: Path
    process: subprocess.Popen | None = None
    member_ids: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, body=None):
        """One request from this process (setup and checks)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            return call(connection, self.token, method, path, body)
        finally:
            connection.close()

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a `flask` command against this server's database."""
        completed = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", *args],
                                   cwd=ROOT, env=self.env, capture_output=True, text=True,
                                   timeout=300)
        if check and completed.returncode != 0:
            raise AssertionError(f"flask {' '.join(args)} failed:\n{completed.stdout}\n"
                                 f"{completed.stderr[-3000:]}")
        return completed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(server: Server, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-3000:]}")
        try:
            status, _ = server.api("GET", "/segments")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout} s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="package")
def server():
    """Migrated database, an admin token, a marketer, 240 members; gunicorn with 4 workers."""
    from tests.conftest import _postgres_database

    workdir = Path(tempfile.mkdtemp(prefix="beacon-concurrency-"))
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        url, drop = _postgres_database(base)
    else:
        url, drop = f"sqlite:///{workdir / 'beacon.sqlite3'}", lambda: None
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "TEST_DATABASE_URL", "DATABASE_URL")}
    env.update(DATABASE_URL=url, BEACON_INSTANCE_PATH=str(workdir / "instance"),
               SECRET_KEY="concurrency-suite", API_RATE_LIMIT="1000000 per minute",
               BEACON_PASSWORD=PASSWORD)
    engine = create_engine(url)
    server = Server(port=_free_port(), token="", env=env, engine=engine, workdir=workdir)
    log = workdir / "gunicorn.log"
    log_file = log.open("ab")
    try:
        server.flask("db", "upgrade", "heads")
        server.token = server.flask("tokens", "create", "suite", "--role", "admin").stdout.strip()
        server.flask("users", "create", MARKETER, "--role", "marketer")
        server.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "4", "--threads", "2",
             "-b", f"127.0.0.1:{server.port}", "--log-level", "warning",
             "--config", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        _wait_ready(server, log)
        status, body = server.api("POST", "/members/batch", {"data": [
            {"type": "members", "attributes": {
                "external_id": f"c{n:03d}", "email": f"c{n:03d}@concurrency.test",
                "points": (n * 7) % 100, "tier": ("bronze", "silver", "gold")[n % 3]}}
            for n in range(240)]})
        assert status == 200, body
        server.member_ids = [r["id"] for r in body["meta"]["results"]]
        yield server
    finally:
        if server.process is not None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
        log_file.close()
        engine.dispose()
        drop()
        errors = log.read_text() if log.exists() else ""
        if "Traceback" in errors:
            print(errors[-5000:], file=sys.stderr)


def check_invariants(server: Server) -> None:
    """Sizes equal rows; each (segment, member)'s events alternate ADD/REMOVE from an ADD and
    replay to the rows; `flask segments verify` finds nothing."""
    with server.engine.connect() as conn:
        sizes = dict(conn.execute(text("SELECT id, size FROM segments")).all())
        rows = dict(conn.execute(text(
            "SELECT segment_id, count(*) FROM segment_memberships GROUP BY segment_id")).all())
        wrong = {sid: (size, rows.get(sid, 0)) for sid, size in sizes.items()
                 if size != rows.get(sid, 0)}
        assert not wrong, f"segment id: (size, rows) differ: {wrong}"
        state: dict[tuple[int, str], str] = {}
        broken: list[str] = []
        for segment_id, member_id, action, event_id in conn.execute(text(
                "SELECT segment_id, member_id, action, id FROM membership_events ORDER BY id")):
            before = state.get((segment_id, member_id), "REMOVE")
            if before == action:
                broken.append(f"event {event_id}: {action} of {member_id} in segment "
                              f"{segment_id} follows another {action}")
            state[(segment_id, member_id)] = action
        assert not broken, "\n".join(broken[:20])
        present = set(conn.execute(text(
            "SELECT segment_id, member_id FROM segment_memberships")).tuples())
        replayed = {key for key, action in state.items() if action == "ADD"}
        assert replayed == present, (f"events replay to {len(replayed)} rows, the table "
                                     f"has {len(present)}; first differences: "
                                     f"{sorted(replayed ^ present)[:10]}")
    verify = server.flask("segments", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
