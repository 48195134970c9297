"""Helpers for the upload tests: files on disk and uploads through the service."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import MembershipEvent, SegmentMembership, Upload
from webapp.services import uploads as service


def write(tmp_path: Path, content: str | bytes, name: str = "list.csv") -> Path:
    """A file with exactly these bytes (str is encoded as UTF-8)."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def dry_run(segment, path: Path, mode: str = "add", *, column: str | None = None,
            header: bool | None = None, actor: str = "Tester") -> Upload:
    """Create an upload for a file and run its dry run; returns the refreshed row."""
    upload = service.create_upload(segment, stored_path=path, filename=path.name, mode=mode,
                                   actor_label=actor, column=column, header=header)
    service.run_dry_run(upload.id)
    db.session.expire_all()
    return db.session.get(Upload, upload.id)


def upload_and_apply(segment, path: Path, mode: str = "add", **kw) -> Upload:
    """Dry run, then apply; returns the refreshed row."""
    upload = dry_run(segment, path, mode, **kw)
    assert upload.status == "ready", (upload.status, upload.error, upload.report)
    service.request_apply(upload)
    db.session.expire_all()
    return db.session.get(Upload, upload.id)


def list_ids(segment_id: int) -> set[str]:
    """Member ids on a static segment's list."""
    return set(db.session.scalars(select(SegmentMembership.member_id).where(
        SegmentMembership.segment_id == segment_id)))


def events(segment_id: int) -> list[tuple[str, str, int | None]]:
    """(action, member_id, upload_id) of a segment's events, in order."""
    return [(e.action, e.member_id, e.upload_id) for e in db.session.scalars(
        select(MembershipEvent).where(MembershipEvent.segment_id == segment_id)
        .order_by(MembershipEvent.id))]
