"""Find members and segments by any of the identifiers people and files use."""

from __future__ import annotations

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import Member, Segment


def find_member(identifier: str) -> Member | None:
    """A member by member id, external id or email, tried in that order."""
    identifier = (identifier or "").strip()
    if not identifier or "\x00" in identifier or len(identifier) > 320:
        return None
    member = db.session.get(Member, identifier) if len(identifier) == 36 else None
    if member is None:
        member = db.session.scalar(select(Member).where(Member.external_id == identifier))
    if member is None and "@" in identifier:
        member = db.session.scalar(select(Member).where(Member.email == identifier.lower()))
    return member


def find_segment(identifier: str | int, *, by_name: bool = False) -> Segment | None:
    """A segment by id, then customer segment id (then name, when by_name)."""
    text = str(identifier).strip()
    if not text or "\x00" in text or len(text) > 255:
        return None
    segment = db.session.get(Segment, int(text)) if text.isdigit() and len(text) < 10 else None
    if segment is None:
        segment = db.session.scalar(select(Segment).where(Segment.customer_segment_id == text))
    if segment is None and by_name:
        segment = db.session.scalar(select(Segment).where(func.lower(Segment.name) == text.lower()))
    return segment
