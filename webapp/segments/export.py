"""A segment's members as CSV (member id, external id, email, why: list / rule / override),
streamed for the segment page and the API.

The rows are read in chunks by keyset on the membership's primary key (segment_id, member_id):
each chunk is a short range scan of that index starting after the last member id sent, then
one primary-key lookup of those members' external ids and emails. So a segment of a million
members is never held in memory, no server-side cursor stays open between chunks, every chunk
costs the same however far into the segment it is (a join would make PostgreSQL walk the
members table from its start for each chunk), and the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from flask import Response, stream_with_context
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Member, Segment, SegmentMembership

COLUMNS = ("member_id", "external_id", "email", "why")
CHUNK = 5000
LOOKUP = 1000  # ids per members lookup (well under SQLite's bound-parameter limit)
#: Text a spreadsheet would run as a formula gets a leading quote (as in the other exports).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

_members = Member.__table__
_memberships = SegmentMembership.__table__


def _cell(value: str | None) -> str:
    text = value or ""
    return "'" + text if text.startswith(_FORMULA) else text


def member_chunks(segment_id: int, chunk: int = CHUNK) -> Iterator[list[tuple[str, ...]]]:
    """The segment's members in member-id order as (member_id, external_id, email, why),
    `chunk` rows at a time (keyset pages)."""
    sm, m = _memberships.c, _members.c
    # Ordered exactly as the primary key, so the database reads the index range in order.
    query = (select(sm.member_id, sm.via).where(sm.segment_id == segment_id)
             .order_by(sm.segment_id, sm.member_id).limit(chunk))
    after: str | None = None
    while True:
        page = query if after is None else query.where(sm.member_id > after)
        memberships = db.session.execute(page).all()
        if not memberships:
            return
        ids = [row.member_id for row in memberships]
        found: dict[str, tuple[str, str | None]] = {}
        for start in range(0, len(ids), LOOKUP):
            found.update((row.id, (row.external_id, row.email)) for row in db.session.execute(
                select(m.id, m.external_id, m.email).where(m.id.in_(ids[start:start + LOOKUP]))))
        yield [(member_id, *found.get(member_id, ("", None)), via)
               for member_id, via in memberships]
        if len(memberships) < chunk:
            return
        after = ids[-1]


def csv_chunks(segment_id: int, chunk: int = CHUNK) -> Iterator[str]:
    """The CSV text: the header, then one piece per chunk of members."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    for rows in member_chunks(segment_id, chunk):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows((member_id, _cell(external_id), _cell(email), via)
                         for member_id, external_id, email, via in rows)
        yield buffer.getvalue()


def filename(segment: Segment) -> str:
    """A download name such as 'segment-12-gold-members.csv' (ASCII, no quotes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", segment.name.lower()).strip("-")[:60] or "members"
    return f"segment-{segment.id}-{slug}.csv"


def csv_response(segment: Segment) -> Response:
    """A streamed CSV download of the segment's members (for the dashboard and the API)."""
    return Response(stream_with_context(csv_chunks(segment.id)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename(segment)}"',
                             "Cache-Control": "no-store"})
