"""A killed apply leaves the list and its events exactly as they were (one transaction)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import insert

from tests.factories import add_to_list, make_member, make_segment
from tests.uploads.helpers import events, list_ids, write
from webapp.extensions import db
from webapp.models import Member, Segment
from webapp.services import uploads as service

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, time
from pathlib import Path
from sqlalchemy import event
from webapp import create_app
from webapp.extensions import db
from webapp.services.uploads import run_apply

url, upload_id, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
app = create_app({"SQLALCHEMY_DATABASE_URI": url, "JOBS_SYNC": True})
with app.app_context():
    @event.listens_for(db.engine, "after_cursor_execute")
    def pause(conn, cursor, statement, parameters, context, executemany):
        # Events are written by a plain INSERT or after a data-modifying WITH (PostgreSQL).
        if "INSERT INTO MEMBERSHIP_EVENTS" in statement.upper():
            marker.write_text("events written, not committed")
            time.sleep(120)
    run_apply(upload_id)
    marker.write_text("finished")
"""


def test_killed_apply_changes_nothing(app, tmp_path):
    db.session.execute(insert(Member), [
        {"id": f"00000000-0000-4000-8000-{i:012d}", "external_id": f"KILL-{i}",
         "email": f"kill{i}@example.com"} for i in range(3000)])
    db.session.commit()
    segment = make_segment("Killed", kind="static")
    kept = make_member(external_id="KEEP-1")
    add_to_list(segment, kept)
    before_list, before_events = list_ids(segment.id), events(segment.id)
    path = write(tmp_path, "\n".join(f"KILL-{i}" for i in range(3000)))
    upload = service.create_upload(segment, stored_path=path, filename="big.csv",
                                   mode="replace", actor_label="Killer")
    upload.status = "applying"
    db.session.commit()
    marker = tmp_path / "marker"
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, app.config["SQLALCHEMY_DATABASE_URI"], str(upload.id),
         str(marker)], cwd=ROOT, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert marker.exists() and marker.read_text() == "events written, not committed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    db.session.expire_all()
    assert list_ids(segment.id) == before_list
    assert events(segment.id) == before_events
    assert db.session.get(Segment, segment.id).size == 1
