"""Upload housekeeping: old unapplied files are swept; live progress crosses processes."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from tests.factories import make_member, make_segment
from tests.uploads.helpers import dry_run, upload_and_apply, write
from webapp.extensions import db
from webapp.models import Upload
from webapp.services import uploads as service
from webapp.timeutil import utcnow


@pytest.fixture
def folder(app, tmp_path):
    """An upload folder of this test's own (the sweep looks at every file in it)."""
    path = tmp_path / "uploads"
    app.config["UPLOAD_FOLDER"] = str(path)
    return service.upload_folder()


def _stored(tmp_path: Path, folder: Path, content: str) -> Path:
    """A file stored in the upload folder as the views store one."""
    path = service.new_file_path(1)
    path.write_bytes(write(tmp_path, content).read_bytes())
    return path


def _age(upload: Upload, hours: float) -> None:
    """Pretend the upload and its files were made `hours` ago."""
    upload.created_at = utcnow() - timedelta(hours=hours)
    db.session.commit()
    moment = time.time() - hours * 3600
    for path in (upload.stored_path, (upload.report or {}).get("problems_file")):
        if path and Path(path).exists():
            os.utime(path, (moment, moment))


def test_a_new_dry_run_sweeps_old_unapplied_uploads_and_keeps_the_rest(app, tmp_path,
                                                                        folder):
    segment = make_segment("Swept", kind="static")
    for i in range(3):
        make_member(external_id=f"S-{i}")
    old = dry_run(segment, _stored(tmp_path, folder, "S-0\nNOBODY\n"))
    assert old.status == "ready" and service.problems_path(old) is not None
    old_files = [Path(old.stored_path), service.problems_path(old)]
    applied = upload_and_apply(segment, _stored(tmp_path, folder, "S-1\nNOBODY-2\n"))
    assert applied.status == "applied" and service.problems_path(applied) is not None
    recent = dry_run(segment, _stored(tmp_path, folder, "S-2\n"))
    _age(old, 25)
    _age(applied, 25)
    stray_old = folder / "segment-1-0000000000000000.csv"
    stray_old.write_text("S-0\n")
    os.utime(stray_old, (time.time() - 30 * 3600,) * 2)
    stray_new = folder / "segment-1-1111111111111111.csv"
    stray_new.write_text("S-0\n")

    fresh = service.create_upload(segment, stored_path=_stored(tmp_path, folder, "S-0\n"),
                                  filename="fresh.csv", mode="add", actor_label="Tester")
    assert service.start_dry_run(fresh) == "now"

    db.session.expire_all()
    fresh = db.session.get(Upload, fresh.id)
    old = db.session.get(Upload, old.id)
    assert old.status == "discarded" and "not applied within 24 hours" in old.error
    assert not any(path.exists() for path in old_files)
    assert not stray_old.exists() and stray_new.exists()
    assert service.problems_path(db.session.get(Upload, applied.id)) is not None
    recent = db.session.get(Upload, recent.id)
    assert recent.status == "ready" and Path(recent.stored_path).exists()
    assert fresh.status == "ready" and Path(fresh.stored_path).exists()
    with pytest.raises(service.UploadError):
        service.request_apply(old)


def test_the_age_is_configurable(app, tmp_path, folder):
    app.config["UPLOAD_KEEP_HOURS"] = 2
    segment = make_segment("Short", kind="static")
    make_member(external_id="K-1")
    upload = dry_run(segment, _stored(tmp_path, folder, "K-1\n"))
    _age(upload, 1)
    assert service.sweep_unapplied() == 0
    _age(upload, 3)
    assert service.sweep_unapplied() == 1
    db.session.expire_all()
    assert db.session.get(Upload, upload.id).status == "discarded"


class FakeRedis:
    """The few Redis commands live progress uses, shared like a real server."""

    store: dict[str, bytes] = {}

    @classmethod
    def from_url(cls, url, **kwargs):
        return cls()

    def set(self, key, value, ex=None):
        self.store[key] = str(value).encode()

    def get(self, key):
        return self.store.get(key)

    def delete(self, key):
        self.store.pop(key, None)


def test_progress_reaches_the_web_process_through_redis(app, monkeypatch, tmp_path):
    """With RQ the job runs in a worker process; on SQLite the upload's transaction holds
    the write lock, so only Redis can carry its progress to the page."""
    monkeypatch.setattr(redis, "Redis", FakeRedis)
    monkeypatch.setattr(FakeRedis, "store", {})
    app.config["REDIS_URL"] = "redis://fake-progress/0"
    segment = make_segment("Progress", kind="static")
    upload = service.create_upload(segment, stored_path=write(tmp_path, "X\n"),
                                   filename="x.csv", mode="add", actor_label="T")
    upload.status = "applying"
    db.session.commit()
    progress = service.Progress(upload.id)
    progress.database = False  # as when SQLite is locked by the upload itself
    progress.set(420)
    with service._LIVE_LOCK:  # the web process does not share the worker's memory
        service._LIVE.pop(upload.id, None)
    assert upload.progress == 0
    assert service.live_progress(upload) == 420
    progress.finish()
    assert FakeRedis.store == {}
    assert service.live_progress(upload) == 0


def test_progress_survives_redis_being_down(app, tmp_path):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    segment = make_segment("No Redis", kind="static")
    upload = service.create_upload(segment, stored_path=write(tmp_path, "X\n"),
                                   filename="x.csv", mode="add", actor_label="T")
    upload.status = "applying"
    upload.progress = 300
    db.session.commit()
    progress = service.Progress(upload.id)
    progress.database = False
    progress.set(600)
    assert progress.redis is None  # gave up after the first failure
    progress.finish()
    assert service.live_progress(upload) == 300
