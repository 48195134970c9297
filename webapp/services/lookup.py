"""Find members and segments by any of the identifiers people and files use."""

from __future__ import annotations

from sqlalchemy import Connection, Row, Select, bindparam, case, func, or_, select

from webapp.extensions import db
from webapp.models import Member, Segment, SegmentTag, User


def _member_tries(identifier: str | None) -> list[tuple[str, str]]:
    """(column, value) lookups for a member reference, in order: member id (when it has an
    id's length), external id, email (when it has an @, lower-cased); none for no reference."""
    identifier = (identifier or "").strip()
    if not identifier or "\x00" in identifier or len(identifier) > 320:
        return []
    return ([("id", identifier)] if len(identifier) == 36 else []) + [
        ("external_id", identifier)] + ([("email", identifier.lower())]
                                        if "@" in identifier else [])


def member_id_reference(identifier: str | None) -> str | None:
    """The member id a reference is tried as first (None when it is not tried as an id)."""
    tries = _member_tries(identifier)
    return tries[0][1] if tries and tries[0][0] == "id" else None


def find_member(identifier: str) -> Member | None:
    """A member by member id, external id or email, tried in that order."""
    for column, value in _member_tries(identifier):
        member = (db.session.get(Member, value) if column == "id" else db.session.scalar(
            select(Member).where(getattr(Member, column) == value)))
        if member is not None:
            return member
    return None


_MEMBERS = Member.__table__
# Built once with bound parameters: compiled once, and rows instead of tracked ORM objects.
_MEMBER_ROW = {column: select(_MEMBERS).where(_MEMBERS.c[column] == bindparam("value"))
               for column in ("id", "external_id", "email")}


def member_row(identifier: str, connection: Connection | None = None) -> Row | None:
    """A member's columns (read-only, no ORM object) by member id, external id or email,
    tried in that order, on `connection` (default: the session's): for reads that only need
    the values (`webapp.models.member_attributes` turns the row into the member's
    attributes)."""
    tries = _member_tries(identifier)
    if tries and connection is None:
        connection = db.session.connection()
    for column, value in tries:
        row = connection.execute(_MEMBER_ROW[column], {"value": value}).first()
        if row is not None:
            return row
    return None


def _by_reference(query: Select, columns) -> tuple[Select, Select]:
    """`query` narrowed to one segment reference, as one indexed lookup.

    A reference that could be an id matches the primary key or the (unique) customer segment
    id, the id winning when both match; anything else matches the customer segment id alone.
    The statements are built once with bound parameters, so SQLAlchemy compiles them once.
    """
    number, text = bindparam("number"), bindparam("text")
    by_id_or_customer = (
        query.where(or_(columns.id == number, columns.customer_segment_id == text))
        .order_by(case((columns.id == number, 0), else_=1)).limit(1))
    by_customer = query.where(columns.customer_segment_id == text).limit(1)
    return by_id_or_customer, by_customer


_SEGMENT = _by_reference(select(Segment), Segment)
# Plain table columns (no ORM attributes anywhere in the statement): rows, not objects.
_SEGMENT_ROW = _by_reference(select(*Segment.__table__.c), Segment.__table__.c)


def _reference(identifier: str | int) -> tuple[int, dict] | None:
    """Which lookup a segment reference takes (0: id or customer id, 1: customer id)."""
    text = str(identifier).strip()
    if not text or "\x00" in text or len(text) > 255:
        return None
    if text.isdigit() and len(text) < 10:
        return 0, {"number": int(text), "text": text}
    return 1, {"text": text}


def find_segment(identifier: str | int, *, by_name: bool = False) -> Segment | None:
    """A segment by id, then customer segment id (then name, when by_name)."""
    reference = _reference(identifier)
    if reference is None:
        return None
    which, params = reference
    segment = db.session.scalars(_SEGMENT[which], params).first()
    if segment is None and by_name:
        text = params["text"]
        segment = db.session.scalar(select(Segment).where(func.lower(Segment.name) == text.lower()))
    return segment


def segment_row(identifier: str | int) -> Row | None:
    """A segment's columns (read-only, no ORM object) by id, then customer segment id.

    One statement on a connection of its own: a read that needs no ORM session (creating
    and closing one costs more than the query).
    """
    reference = _reference(identifier)
    if reference is None:
        return None
    which, params = reference
    with db.engine.connect() as connection:
        return connection.execute(_SEGMENT_ROW[which], params).first()


_TAGS = (select(SegmentTag.segment_id, SegmentTag.tag)
         .where(SegmentTag.segment_id.in_(bindparam("ids", expanding=True)))
         .order_by(SegmentTag.tag))
_OWNERS = select(User.id, User.email).where(User.id.in_(bindparam("ids", expanding=True)))


def segment_organisation(rows, connection=None) -> dict[int, dict]:
    """Tags and owner email of each segment (segment id -> {tags, owner}), in at most two
    statements (built once) on `connection` (default: the session's)."""
    ids = [r.id for r in rows]
    out: dict[int, dict] = {i: {"tags": [], "owner": None} for i in ids}
    if not ids:
        return out
    connection = connection if connection is not None else db.session.connection()
    for segment_id, tag in connection.execute(_TAGS, {"ids": ids}):
        out[segment_id]["tags"].append(tag)
    owner_ids = sorted({r.owner_id for r in rows if r.owner_id is not None})
    if owner_ids:
        emails = dict(connection.execute(_OWNERS, {"ids": owner_ids}).all())
        for r in rows:
            out[r.id]["owner"] = emails.get(r.owner_id)
    return out


def segment_row_organised(identifier: str | int) -> tuple[Row, dict] | None:
    """`segment_row` and the segment's `segment_organisation` entry, on one connection."""
    reference = _reference(identifier)
    if reference is None:
        return None
    which, params = reference
    with db.engine.connect() as connection:
        row = connection.execute(_SEGMENT_ROW[which], params).first()
        if row is None:
            return None
        return row, segment_organisation([row], connection)[row.id]
